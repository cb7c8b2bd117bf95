import { beforeEach, describe, expect, it } from 'vitest'
import { ScsiStatus } from '../../../src/scsi/types.js'
import {
  N1,
  cdb,
  clearUa,
  expectGood,
  expectSense,
  makeLu,
  pattern,
  run,
  rw10,
  rw12,
  rw16,
  rw6,
  type Fixture,
} from './util.js'

const BLOCKS = 1024
const BS = 512

type Builder = (op: number, lba: number, blocks: number, byte1?: number) => Buffer
const FAMILIES: { name: string; read: number; write: number; build: Builder; flags: boolean }[] = [
  { name: '6', read: 0x08, write: 0x0a, build: (op, lba, n) => rw6(op, lba, n), flags: false },
  { name: '10', read: 0x28, write: 0x2a, build: rw10, flags: true },
  { name: '12', read: 0xa8, write: 0xaa, build: rw12, flags: true },
  { name: '16', read: 0x88, write: 0x8a, build: rw16, flags: true },
]

let f: Fixture
beforeEach(async () => {
  f = makeLu({ sizeBytes: BLOCKS * BS })
  await clearUa(f.lu)
})

describe.each(FAMILIES)('READ/WRITE($name)', ({ read, write, build, flags }) => {
  it('writes then reads back', async () => {
    const data = pattern(4 * BS, 7)
    expectGood(await run(f.lu, build(write, 10, 4), { dataOut: data }))
    expect(f.dev.data.subarray(10 * BS, 14 * BS).equals(data)).toBe(true)
    const r = await run(f.lu, build(read, 10, 4))
    expectGood(r)
    expect(r.dataIn!.equals(data)).toBe(true)
  })

  it('the last block is addressable, one past it is LBA OUT OF RANGE', async () => {
    expectGood(await run(f.lu, build(read, BLOCKS - 1, 1)))
    expectSense(await run(f.lu, build(read, BLOCKS - 1, 2)), 5, 0x21, 0x00)
    expectSense(await run(f.lu, build(read, BLOCKS, 1)), 5, 0x21, 0x00)
    expectSense(await run(f.lu, build(write, BLOCKS - 1, 2), { dataOut: Buffer.alloc(2 * BS) }), 5, 0x21, 0x00)
    expect(f.dev.writes).toEqual([])
  })

  if (flags) {
    it('zero blocks: GOOD without I/O, but the LBA is still range checked', async () => {
      expectGood(await run(f.lu, build(read, 0, 0)))
      expectGood(await run(f.lu, build(write, BLOCKS, 0)))
      expectSense(await run(f.lu, build(read, BLOCKS + 1, 0)), 5, 0x21, 0x00)
      expect(f.dev.reads).toEqual([])
      expect(f.dev.writes).toEqual([])
    })

    it('RDPROTECT / WRPROTECT non-zero is INVALID FIELD IN CDB (byte 1)', async () => {
      for (let p = 1; p < 8; p++) {
        expectSense(await run(f.lu, build(read, 0, 1, p << 5)), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 7 })
        expectSense(await run(f.lu, build(write, 0, 1, p << 5), { dataOut: Buffer.alloc(BS) }), 5, 0x24, 0, {
          fieldPointer: 1,
        })
      }
    })

    it('DPO and FUA are accepted; FUA reaches the device', async () => {
      expectGood(await run(f.lu, build(read, 0, 1, 0x18)))
      expectGood(await run(f.lu, build(write, 0, 1, 0x10), { dataOut: Buffer.alloc(BS) }))
      expectGood(await run(f.lu, build(write, 1, 1, 0x08), { dataOut: Buffer.alloc(BS) }))
      expect(f.dev.writes.map((w) => w.fua)).toEqual([false, true])
    })
  } else {
    it('transfer length 0 means 256 blocks', async () => {
      const r = await run(f.lu, rw6(read, 0, 0))
      expectGood(r)
      expect(r.dataIn!.length).toBe(256 * BS)
      const plan = f.lu.planDataOut(rw6(write, 0, 0), N1)
      expect(plan).toEqual({ kind: 'out', bytes: 256 * BS })
    })
  }

  it('planDataOut asks for blocks × block size, or fails a bad CDB before data moves', () => {
    expect(f.lu.planDataOut(build(write, 0, 3), N1)).toEqual({ kind: 'out', bytes: 3 * BS })
    expect(f.lu.planDataOut(build(read, 0, 3), N1)).toEqual({ kind: 'none' })
    const p = f.lu.planDataOut(build(write, BLOCKS, 1), N1)
    expect(p.kind).toBe('fail')
    if (p.kind === 'fail') expectSense(p.result, 5, 0x21, 0)
  })
})

describe('READ/WRITE edge cases', () => {
  it('READ(16) at LBA 2^64-1 is LBA OUT OF RANGE (no precision loss)', async () => {
    expectSense(await run(f.lu, rw16(0x88, 0xffffffffffffffffn, 1)), 5, 0x21, 0)
    expectSense(await run(f.lu, rw16(0x88, 1n << 53n, 1)), 5, 0x21, 0)
    expectSense(await run(f.lu, rw16(0x88, 0xffffffffn, 1)), 5, 0x21, 0)
  })

  it('READ(10) at LBA 2^31 and -1 is LBA OUT OF RANGE', async () => {
    expectSense(await run(f.lu, rw10(0x28, 0x80000000, 1)), 5, 0x21, 0)
    expectSense(await run(f.lu, rw10(0x28, 0xffffffff, 1)), 5, 0x21, 0)
  })

  it('READ(6) uses a 21-bit LBA (top bits of byte 1 ignored)', async () => {
    f.dev.data.fill(9, 5 * BS, 6 * BS)
    const c = rw6(0x08, 5, 1)
    c[1] |= 0xe0
    const r = await run(f.lu, c)
    expectGood(r)
    expect(r.dataIn![0]).toBe(9)
  })

  it('a transfer longer than MAXIMUM TRANSFER LENGTH is INVALID FIELD IN CDB at the length field', async () => {
    const g = makeLu({ sizeBytes: BLOCKS * BS, maxTransferBytes: 16 * BS })
    await clearUa(g.lu)
    expectGood(await run(g.lu, rw10(0x28, 0, 16)))
    expectSense(await run(g.lu, rw10(0x28, 0, 17)), 5, 0x24, 0, { fieldPointer: 7 })
    expectSense(await run(g.lu, rw16(0x8a, 0, 17), { dataOut: Buffer.alloc(17 * BS) }), 5, 0x24, 0, { fieldPointer: 10 })
    const p = g.lu.planDataOut(rw12(0xaa, 0, 17), N1)
    expect(p.kind).toBe('fail')
  })

  it('4096-byte blocks', async () => {
    const g = makeLu({ sizeBytes: 64 * 4096, blockSize: 4096 })
    await clearUa(g.lu)
    const data = pattern(2 * 4096, 3)
    expectGood(await run(g.lu, rw10(0x2a, 62, 2), { dataOut: data }))
    expect(g.dev.writes).toEqual([{ offset: 62 * 4096, length: 8192, fua: false }])
    expectSense(await run(g.lu, rw10(0x28, 63, 2)), 5, 0x21, 0)
    expect(g.lu.planDataOut(rw10(0x2a, 0, 3), N1)).toEqual({ kind: 'out', bytes: 3 * 4096 })
  })

  it('the READ path returns the device buffer itself', async () => {
    const r = await run(f.lu, rw10(0x28, 0, 2))
    expectGood(r)
    expect(r.dataIn!.length).toBe(2 * BS)
    expect(f.dev.reads).toEqual([{ offset: 0, length: 2 * BS }])
  })
})

describe('write cache policy', () => {
  it('with WCE=0 every write is FUA', async () => {
    const g = makeLu({ sizeBytes: BLOCKS * BS, writeCache: false })
    await clearUa(g.lu)
    expect(g.lu.writeCacheEnabled).toBe(false)
    expectGood(await run(g.lu, rw10(0x2a, 0, 1), { dataOut: Buffer.alloc(BS) }))
    expectGood(await run(g.lu, rw6(0x0a, 1, 1), { dataOut: Buffer.alloc(BS) }))
    expect(g.dev.writes.map((w) => w.fua)).toEqual([true, true])
  })

  it('MODE SELECT turning WCE off makes later writes FUA, turning it on again stops that', async () => {
    const caching = (wce: boolean) => {
      const data = Buffer.alloc(4 + 20)
      data[4] = 0x08
      data[5] = 0x12
      data[6] = wce ? 0x04 : 0
      return { c: cdb(6, 0x15, (b) => ((b[1] = 0x10), (b[4] = data.length))), data }
    }
    expectGood(await run(f.lu, rw10(0x2a, 0, 1), { dataOut: Buffer.alloc(BS) }))
    const off = caching(false)
    expectGood(await run(f.lu, off.c, { dataOut: off.data }))
    expect(f.lu.writeCacheEnabled).toBe(false)
    expectGood(await run(f.lu, rw10(0x2a, 0, 1), { dataOut: Buffer.alloc(BS) }))
    const on = caching(true)
    expectGood(await run(f.lu, on.c, { dataOut: on.data }))
    expectGood(await run(f.lu, rw10(0x2a, 0, 1), { dataOut: Buffer.alloc(BS) }))
    expect(f.dev.writes.map((w) => w.fua)).toEqual([false, true, false])
  })
})

describe('Data-Out shorter or longer than the CDB asks (iSCSI residual cases)', () => {
  it('EDTL > transfer length: only the CDB length is written', async () => {
    f.dev.data.fill(0x61, 0, 2 * BS)
    expectGood(await run(f.lu, rw10(0x2a, 0, 1), { dataOut: Buffer.alloc(2 * BS, 0x62) }))
    expect(f.dev.data.subarray(0, BS).every((b) => b === 0x62)).toBe(true)
    expect(f.dev.data.subarray(BS, 2 * BS).every((b) => b === 0x61)).toBe(true)
  })

  it('EDTL < transfer length: only the whole blocks received are written, GOOD', async () => {
    f.dev.data.fill(0x61, 0, 2 * BS)
    expectGood(await run(f.lu, rw10(0x2a, 0, 2), { dataOut: Buffer.alloc(BS, 0x62) }))
    expect(f.dev.data.subarray(0, BS).every((b) => b === 0x62)).toBe(true)
    expect(f.dev.data.subarray(BS, 2 * BS).every((b) => b === 0x61)).toBe(true)
  })

  it('less than one block (EDTL 0 or 200): GOOD, nothing written', async () => {
    expectGood(await run(f.lu, rw10(0x2a, 0, 1), { dataOut: Buffer.alloc(0) }))
    expectGood(await run(f.lu, rw10(0x2a, 0, 1), { dataOut: Buffer.alloc(200) }))
    expectGood(await run(f.lu, rw10(0x2e, 0, 1), { dataOut: Buffer.alloc(200) }))
    expect(f.dev.writes).toEqual([])
  })

  it('Data-Out sent with a READ is ignored', async () => {
    expectGood(await run(f.lu, rw10(0x28, 0, 1), { dataOut: Buffer.alloc(BS, 1) }))
    expect(f.dev.writes).toEqual([])
  })
})

describe('read-only logical unit', () => {
  it('writes fail with DATA PROTECT / WRITE PROTECTED, reads work', async () => {
    const g = makeLu({ sizeBytes: BLOCKS * BS, readOnly: true })
    await clearUa(g.lu)
    expectGood(await run(g.lu, rw10(0x28, 0, 1)))
    for (const c of [rw6(0x0a, 0, 1), rw10(0x2a, 0, 1), rw12(0xaa, 0, 1), rw16(0x8a, 0, 1), rw10(0x2e, 0, 1)]) {
      expectSense(await run(g.lu, c, { dataOut: Buffer.alloc(BS) }), 7, 0x27, 0x00)
      const p = g.lu.planDataOut(c, N1)
      expect(p.kind).toBe('fail')
      if (p.kind === 'fail') expectSense(p.result, 7, 0x27, 0)
    }
    expect(g.dev.writes).toEqual([])
  })
})

describe('ordering and failures', () => {
  it('device writes are issued in execute order even when they complete out of order', async () => {
    f.dev.writeDelayMs = (w) => (w.offset === 0 ? 20 : 0)
    const p1 = run(f.lu, rw10(0x2a, 0, 1), { dataOut: Buffer.alloc(BS, 1) })
    const p2 = run(f.lu, rw10(0x2a, 0, 1), { dataOut: Buffer.alloc(BS, 2) })
    const p3 = run(f.lu, rw10(0x2a, 1, 1), { dataOut: Buffer.alloc(BS, 3) })
    // issued synchronously, before any of them completed
    expect(f.dev.writes.map((w) => w.offset)).toEqual([0, 0, BS])
    await Promise.all([p1, p2, p3])
  })

  it('a device error becomes HARDWARE ERROR / INTERNAL TARGET FAILURE and is logged', async () => {
    f.dev.failNext = new Error('EIO: simulated')
    expectSense(await run(f.lu, rw10(0x28, 0, 1)), 4, 0x44, 0x00)
    expect(f.errors.length).toBe(1)
    f.dev.failNext = new Error('EIO: simulated')
    expectSense(await run(f.lu, rw10(0x2a, 0, 1), { dataOut: Buffer.alloc(BS) }), 4, 0x44, 0x00)
    expect(f.errors.length).toBe(2)
  })

  it('an already aborted task returns TASK ABORTED without I/O', async () => {
    const ac = new AbortController()
    ac.abort()
    const r = await run(f.lu, rw10(0x28, 0, 1), { signal: ac.signal })
    expect(r.status).toBe(ScsiStatus.TaskAborted)
    expect(f.dev.reads).toEqual([])
  })
})
