// Growing a LUN of the HA pair live: the primary refuses until its partner serves the new size
// (the partner's journal must be able to replay writes past the old end), the secondary grows
// first, then the primary holds writes, drains its mirrored device and serves the new size.
// The partner's size comes over the peer link: the pair below is configured as the README's is
// on two machines, every admin API on each machine's loopback, so neither node can reach the
// other's.
// Writes in flight across the grow all land; a write past the old end survives kill -9 of the
// primary through the partner's journal.
import { execa } from 'execa'
import { readFile, writeFile } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli } from '../helpers/node-process.js'
import { startPair, type BenchPair as Pair } from '../../src/bench/pair.js'
import {
  IscsiInitiatorConnection,
  SCSI_CHECK_CONDITION,
  SCSI_GOOD,
  cdbRead16,
  cdbReadCapacity16,
  cdbTestUnitReady,
  cdbWrite16,
  parseReadCapacity16,
  type ScsiCallOptions,
  type ScsiResult,
} from '../../src/initiator/index.js'
import type { ReloadReport } from '../../src/admin/reload-report.js'

const MiB = 1024 * 1024
const HOST = 'iqn.2026-11.io.iscsi-ha:reload-pair-host'

async function reload(admin: string): Promise<{ exitCode: number; report: ReloadReport; stderr: string }> {
  const r = await execa('node', [cli, 'node', 'reload', '--admin', admin, '--json'], { reject: false, timeout: 60_000 })
  return { exitCode: r.exitCode ?? -1, report: JSON.parse(r.stdout) as ReloadReport, stderr: r.stderr }
}

/** As a host does: a unit attention is noted and the command sent again. */
async function command(conn: IscsiInitiatorConnection, cdb: Buffer, opts: ScsiCallOptions, seen: number[]): Promise<ScsiResult> {
  for (let attempt = 0; ; attempt++) {
    const r = await conn.scsi(cdb, opts)
    if (r.status === SCSI_CHECK_CONDITION && r.sense?.key === 0x06 && attempt < 4) {
      seen.push((r.sense.asc << 8) | r.sense.ascq)
      continue
    }
    return r
  }
}

async function growInFile(pair: Pair): Promise<void> {
  for (const path of new Set([pair.configPaths.a, pair.configPaths.b])) {
    const text = await readFile(path, 'utf8')
    expect(text).toContain('size: 64MiB')
    await writeFile(path, text.replace('size: 64MiB', 'size: 128MiB'))
  }
}

/** Each node's own file says every admin API is at its own address: its partner's is out of reach. */
function adminsOnOwnLoopback(name: 'a' | 'b', yaml: string, admins: { a: string; b: string }): string {
  const out = yaml.replace(/^( {4}admin: ).*$/gm, `$1${admins[name]}`)
  expect(out.match(new RegExp(`admin: ${admins[name]}$`, 'gm'))).toHaveLength(2)
  return out
}

async function connect(pair: Pair): Promise<IscsiInitiatorConnection> {
  const c = new IscsiInitiatorConnection({ host: pair.service.host, port: pair.service.port, initiatorName: HOST, targetName: pair.iqn })
  await c.connect()
  await c.login()
  await command(c, cdbTestUnitReady(), {}, [])
  return c
}

async function capacity(c: IscsiInitiatorConnection): Promise<number> {
  const r = await command(c, cdbReadCapacity16(32), { readLength: 32 }, [])
  expect(r.status).toBe(SCSI_GOOD)
  const cap = parseReadCapacity16(r.data!)
  return Number(cap.blocks) * cap.blockSize
}

describe('node reload on an HA pair', () => {
  let pair: Pair
  let conn: IscsiInitiatorConnection

  beforeAll(async () => {
    pair = await startPair({ serviceHost: '127.0.0.71', sizeMiB: 64, nodeConfig: adminsOnOwnLoopback })
    conn = await connect(pair)
    await growInFile(pair)
  }, 60_000)
  afterAll(async () => {
    conn?.destroy()
    await pair?.cleanup()
  })

  it('the primary refuses while its partner serves the old size, and nothing changes', async () => {
    const r = await reload(pair.nodes.a.admin)
    expect(r.exitCode, r.stderr).toBe(1)
    expect(r.report.applied).toEqual([])
    expect(r.report.refused).toEqual([expect.objectContaining({ field: 'targets[0].luns[0].size', outcome: 'refused' })])
    expect(r.report.refused[0]!.detail).toBe(
      `64MiB → 128MiB: not grown: a is the serving primary and b holds copies of its writes, so b must serve the new size first (128MiB for ${pair.iqn} LUN 0); ` +
        'it serves 64MiB: run iscsi-ha node reload on b, then here again',
    )
    expect((await conn.scsi(cdbTestUnitReady())).status).toBe(SCSI_GOOD)
    expect(await capacity(conn)).toBe(64 * MiB)
  })

  it('the secondary grows first, with a note to reload the primary next', async () => {
    const r = await reload(pair.nodes.b.admin)
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.report.applied).toHaveLength(1)
    expect(r.report.applied[0]!.detail).toMatch(/b is not serving; reload a next/)
    expect((await conn.scsi(cdbTestUnitReady())).status).toBe(SCSI_GOOD) // the host is on a: nothing yet
    // b told a over the peer link; a shows it in peer status.
    await pair.waitFor((a) => a?.peer.luns?.[0]?.sizeBytes === 128 * MiB, 5000)
    expect((await pair.nodes.a.status()).peer.luns).toEqual([{ target: pair.iqn, lun: 0, sizeBytes: 128 * MiB }])
  })

  it('then the primary grows with writes in flight; every write lands and the host sees 2Ah/09h', async () => {
    const seen: number[] = []
    const written = new Map<number, Buffer>()
    let stop = false
    let n = 0
    const writer = async (): Promise<void> => {
      while (!stop) {
        const lba = ((n * 7919) % 4096) * 8
        const data = Buffer.alloc(4096, n++ & 0xff)
        const r = await command(conn, cdbWrite16(lba, 8), { dataOut: data }, seen)
        expect(r.status).toBe(SCSI_GOOD)
        written.set(lba, data)
      }
    }
    const writers = Promise.all([writer(), writer(), writer(), writer()])
    await new Promise((r) => setTimeout(r, 300))
    const r = await reload(pair.nodes.a.admin)
    await new Promise((r) => setTimeout(r, 300))
    stop = true
    await writers
    expect(r.exitCode, JSON.stringify(r.report)).toBe(0)
    expect(r.report.applied).toEqual([expect.objectContaining({ field: 'targets[0].luns[0].size', from: 64 * MiB, to: 128 * MiB, outcome: 'applied' })])
    expect(seen).toContain(0x2a09)
    expect(n).toBeGreaterThan(100)
    expect(await capacity(conn)).toBe(128 * MiB)
    for (const [lba, data] of written) {
      const back = await command(conn, cdbRead16(lba, 8), { readLength: 4096 }, seen)
      expect(back.data?.equals(data), `LBA ${lba}`).toBe(true)
    }
    // The new end is writable through the new mirrored device.
    const end = 128 * MiB / 512 - 8
    expect((await command(conn, cdbWrite16(end, 8), { dataOut: Buffer.alloc(4096, 0xee) }, seen)).status).toBe(SCSI_GOOD)
  }, 60_000)
})

describe('a write past the old end after a live grow of the pair', () => {
  let pair: Pair
  let conn: IscsiInitiatorConnection | undefined
  afterAll(async () => {
    conn?.destroy()
    await pair?.cleanup()
  })

  it('acknowledged just before kill -9 of the primary, is replayed and served by the partner', async () => {
    // Slow storage: an acknowledged write sits in the two memories for a while, so the kill -9
    // leaves it to the secondary's journal, which must take an offset past the old end.
    pair = await startPair({ serviceHost: '127.0.0.72', sizeMiB: 64, env: { ISCSI_HA_FAULT_STORAGE_DELAY_MS: '300' } })
    conn = await connect(pair)
    await growInFile(pair)
    expect((await reload(pair.nodes.b.admin)).exitCode).toBe(0)
    expect((await reload(pair.nodes.a.admin)).exitCode).toBe(0)
    expect(await capacity(conn)).toBe(128 * MiB)

    const lba = 128 * MiB / 512 - 8
    const data = Buffer.alloc(4096, 0xc3)
    expect((await command(conn, cdbWrite16(lba, 8), { dataOut: data }, [])).status).toBe(SCSI_GOOD)
    await pair.nodes.a.kill('SIGKILL')
    await pair.waitFor((_a, b) => b?.role === 'primary' && b.serving === true, 10_000)
    const st = await pair.nodes.b.status()
    // Seen once in a loaded run: b serving with no takeover record. Say what b saw if it recurs.
    expect(st.lastTakeover, `b: ${JSON.stringify(st)}\nb's log:\n${pair.nodes.b.logs.slice(-30).join('\n')}`).toBeDefined()
    expect(st.lastTakeover!.replayed).toBeGreaterThan(0)
    conn.destroy()
    conn = await connect(pair)
    expect(await capacity(conn)).toBe(128 * MiB)
    const back = await command(conn, cdbRead16(lba, 8), { readLength: 4096 }, [])
    expect(back.data?.equals(data)).toBe(true)
  }, 60_000)
})

describe('a live grow of the pair when storage is far behind', () => {
  let pair: Pair
  let conn: IscsiInitiatorConnection | undefined
  afterAll(async () => {
    conn?.destroy()
    await pair?.cleanup()
  })

  it('is refused without holding the host writes, which go on', async () => {
    // Every write to the same blocks waits for the one before to reach storage (300 ms each):
    // a backlog of minutes, acknowledged long ago through the partner's memory.
    pair = await startPair({ serviceHost: '127.0.0.73', sizeMiB: 64, env: { ISCSI_HA_FAULT_STORAGE_DELAY_MS: '300' } })
    conn = await connect(pair)
    await growInFile(pair)
    expect((await reload(pair.nodes.b.admin)).exitCode).toBe(0)
    let stop = false
    let slowest = 0
    let writes = 0
    const writer = async (): Promise<void> => {
      while (!stop) {
        const t = Date.now()
        const r = await command(conn!, cdbWrite16(0, 8), { dataOut: Buffer.alloc(4096, writes & 0xff) }, [])
        expect(r.status).toBe(SCSI_GOOD)
        slowest = Math.max(slowest, Date.now() - t)
        writes++
        await new Promise((r) => setTimeout(r, 10))
      }
    }
    const writing = writer()
    await new Promise((r) => setTimeout(r, 1500))
    const r = await reload(pair.nodes.a.admin)
    stop = true
    await writing
    expect(r.exitCode).toBe(1)
    expect(r.report.refused[0]!.detail).toMatch(/storage is more than 10000 ms behind the acknowledged writes: nothing was grown/)
    expect(writes).toBeGreaterThan(200)
    expect(slowest).toBeLessThan(1000)
    expect(await capacity(conn)).toBe(64 * MiB)
  }, 60_000)
})
