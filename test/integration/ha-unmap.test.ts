// UNMAP through the HA pair (issue #3): the deallocation is mirrored as a copy without data,
// the LUN file gives its blocks back (holes), the range reads as zeros, and a primary killed
// right after UNMAP returned GOOD leaves the secondary a discard to replay.
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { IscsiInitiatorConnection, SCSI_GOOD } from '../../src/initiator/index.js'
import { adminGetJson } from '../../src/admin/client.js'
import { startPair, type BenchPair as Pair } from '../../src/bench/pair.js'

const MIB = 1024 * 1024
const WRITTEN = 4 * MIB

/** Bytes the file system has allocated to the LUN file (st_blocks × 512). */
async function allocated(pair: Pair): Promise<number> {
  return (await stat(join(pair.dir, 'lun0.img'))).blocks * 512
}

async function connect(pair: Pair, name: string): Promise<IscsiInitiatorConnection> {
  const conn = await IscsiInitiatorConnection.open({
    host: pair.service.host, port: pair.service.port, targetName: pair.iqn,
    initiatorName: `iqn.2026-11.io.iscsi-ha:${name}`, commandTimeoutMs: 10_000,
  })
  await conn.readCapacity16()
  return conn
}

/** Recognisable data: every 512-byte block carries its LBA. */
function pattern(lba: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes, 0xa5)
  for (let off = 0; off < bytes; off += 512) b.writeUInt32BE(lba + off / 512, off)
  return b
}

/** UNMAP (SBC-3 §5.28) of the given extents, in blocks. */
async function unmap(conn: IscsiInitiatorConnection, extents: Array<{ lba: number; blocks: number }>): Promise<void> {
  const params = Buffer.alloc(8 + 16 * extents.length)
  params.writeUInt16BE(params.length - 2, 0)
  params.writeUInt16BE(16 * extents.length, 2)
  extents.forEach((e, i) => {
    params.writeBigUInt64BE(BigInt(e.lba), 8 + 16 * i)
    params.writeUInt32BE(e.blocks, 16 + 16 * i)
  })
  const cdb = Buffer.alloc(10)
  cdb[0] = 0x42
  cdb.writeUInt16BE(params.length, 7)
  const r = await conn.scsi(cdb, { dataOut: params })
  expect(r.status, `UNMAP status, sense ${JSON.stringify(r.sense)}`).toBe(SCSI_GOOD)
}

async function writeData(conn: IscsiInitiatorConnection): Promise<void> {
  for (let off = 0; off < WRITTEN; off += MIB) await conn.write(off / 512, pattern(off / 512, MIB))
  await conn.synchronizeCache() // every write completed to the LUN file
}

/** The first `WRITTEN` bytes must be: pattern outside [from, to), zeros inside. */
function expectImage(img: Buffer, from: number, to: number): void {
  expect(img.length).toBe(WRITTEN)
  expect(img.subarray(0, from).equals(pattern(0, from)), 'data before the range').toBe(true)
  expect(img.subarray(from, to).every((b) => b === 0), 'the unmapped range reads as zeros').toBe(true)
  expect(img.subarray(to).equals(pattern(to / 512, WRITTEN - to)), 'data after the range').toBe(true)
}

describe('UNMAP through the HA pair', () => {
  let pair: Pair | undefined
  let conns: IscsiInitiatorConnection[] = []
  afterEach(async () => {
    for (const c of conns) c.destroy()
    conns = []
    await pair?.cleanup()
    pair = undefined
  })

  it('gives the space back: the LUN file loses its blocks, the range reads zeros, a later write wins', async () => {
    pair = await startPair({ serviceHost: '127.0.0.81' })
    const conn = await connect(pair, 'unmap-host')
    conns.push(conn)
    await writeData(conn)
    const before = await allocated(pair)
    // Most of it, as two descriptors: [512 KiB, 1.5 MiB) and [1.5 MiB, 3.5 MiB).
    const from = MIB / 2
    const to = WRITTEN - MIB / 2
    await unmap(conn, [{ lba: from / 512, blocks: 2048 }, { lba: (from + MIB) / 512, blocks: (to - from - MIB) / 512 }])
    // Reads through the pair see zeros at once (from the overlay or the holes).
    expectImage(await conn.read(0, WRITTEN / 512), from, to)
    await conn.synchronizeCache() // the discards completed on storage
    const after = await allocated(pair)
    console.log(`UNMAP of ${(to - from) / MIB} MiB through the pair: LUN file allocated ${before} bytes before, ${after} after`)
    expect(before).toBeGreaterThanOrEqual(WRITTEN)
    expect(before - after).toBeGreaterThanOrEqual(to - from - 64 * 1024)
    expectImage(await conn.read(0, WRITTEN / 512), from, to)
    // The secondary dropped the copies once they were on storage.
    const b = await pair.nodes.b.status()
    expect(b.role).toBe('secondary')
    await pair.waitFor((_a, bb) => bb?.journal.entries === 0, 5000)
    // A later write inside the range wins over the discard.
    await conn.write(2 * MIB / 512, pattern(2 * MIB / 512, 64 * 1024))
    const again = await conn.read(0, WRITTEN / 512)
    expect(again.subarray(2 * MIB, 2 * MIB + 64 * 1024).equals(pattern(2 * MIB / 512, 64 * 1024))).toBe(true)
    expect(again.subarray(from, 2 * MIB).every((x) => x === 0)).toBe(true)
    expect(again.subarray(2 * MIB + 64 * 1024, to).every((x) => x === 0)).toBe(true)
  }, 60_000)

  it('kill -9 of the primary right after UNMAP returned GOOD: the secondary replays the discard', async () => {
    // Slow storage (300 ms a write) keeps the acknowledged UNMAP off the LUN file when the
    // primary dies: only the secondary's copy can complete it.
    pair = await startPair({ serviceHost: '127.0.0.82', env: { ISCSI_HA_FAULT_STORAGE_DELAY_MS: '300' } })
    const conn = await connect(pair, 'unmap-kill')
    conns.push(conn)
    await writeData(conn)
    const before = await allocated(pair)
    const from = MIB / 2
    const to = WRITTEN - MIB / 2
    await unmap(conn, [{ lba: from / 512, blocks: (to - from) / 512 }])
    // GOOD: committed, i.e. the secondary holds the discard. Look at it, then kill the primary.
    const journal = (await adminGetJson(pair.nodes.b.admin, '/v1/journal', { timeoutMs: 1000 })) as {
      entries: Array<{ kind?: string; offset: number; bytes: number }>
    }
    await pair.nodes.a.kill('SIGKILL')
    expect(journal.entries).toContainEqual(expect.objectContaining({ kind: 'discard', offset: from, bytes: to - from }))
    // The data is still on the LUN file: the dead primary never completed the UNMAP.
    expect(await allocated(pair)).toBeGreaterThanOrEqual(before - 64 * 1024)
    // The role says serving before the takeover's replay ran; lastTakeover is recorded after it.
    await pair.waitFor((_a, b) => b?.role === 'primary' && b.serving === true && b.lastTakeover !== undefined, 10_000)
    const b = await pair.nodes.b.status()
    expect(b.lastTakeover?.kind).toBe('failover')
    expect(b.lastTakeover!.replayed).toBeGreaterThanOrEqual(1)
    const after = await allocated(pair)
    console.log(`kill -9 after UNMAP: LUN file allocated ${before} bytes before, ${after} after the secondary replayed ${b.lastTakeover!.replayed} copies`)
    expect(before - after).toBeGreaterThanOrEqual(to - from - 64 * 1024)
    const host = await connect(pair, 'unmap-kill-again')
    conns.push(host)
    expectImage(await host.read(0, WRITTEN / 512), from, to)
  }, 60_000)
})
