// COMPARE AND WRITE, ORWRITE(16), WRITE ATOMIC(16) and the range lock that makes them atomic.
import { describe, expect, it } from 'vitest'
import { RangeLock } from '../../../src/scsi/range-lock.js'
import { cdb, clearUa, expectGood, expectSense, fill, makeLu, pattern, run, rw10, rw16 } from './util.js'

function caw(lba: number, blocks: number, byte1 = 0): Buffer {
  return cdb(16, 0x89, (b) => {
    b[1] = byte1
    b.writeBigUInt64BE(BigInt(lba), 2)
    b[13] = blocks
  })
}

function writeAtomic(lba: number, blocks: number, boundary = 0): Buffer {
  return cdb(16, 0x9c, (b) => {
    b.writeBigUInt64BE(BigInt(lba), 2)
    b.writeUInt16BE(boundary, 10)
    b.writeUInt16BE(blocks, 12)
  })
}

describe('COMPARE AND WRITE', () => {
  it('writes when the blocks match', async () => {
    const { lu, dev } = makeLu()
    await clearUa(lu)
    const old = pattern(1024, 1)
    old.copy(dev.data, 10 * 512)
    const data = Buffer.concat([old, pattern(1024, 2)])
    expectGood(await run(lu, caw(10, 2), { dataOut: data }))
    expect(dev.data.subarray(10 * 512, 12 * 512).equals(pattern(1024, 2))).toBe(true)
  })

  it('MISCOMPARE with the offset of the first differing byte; nothing written', async () => {
    const { lu, dev } = makeLu()
    await clearUa(lu)
    const verify = Buffer.alloc(1024)
    dev.data[5 * 512 + 700] = 1
    const r = await run(lu, caw(5, 2), { dataOut: Buffer.concat([verify, fill(1024, 9)]) })
    expectSense(r, 0xe, 0x1d, 0, { valid: true, information: 700 })
    expect(dev.data[5 * 512]).toBe(0)
  })

  it('NUMBER OF LOGICAL BLOCKS must match the Data-Out; zero blocks with no data is a no-op', async () => {
    const { lu, dev } = makeLu()
    await clearUa(lu)
    expectGood(await run(lu, caw(0, 0)))
    expectSense(await run(lu, caw(0, 1), { dataOut: Buffer.alloc(2048) }), 5, 0x24, 0, { fieldPointer: 13 })
    expectSense(await run(lu, caw(0, 0), { dataOut: Buffer.alloc(1024) }), 5, 0x24, 0, { fieldPointer: 13 })
    expectSense(await run(lu, caw(1023, 2), { dataOut: Buffer.alloc(2048) }), 5, 0x21, 0)
    expect(dev.writes.length).toBe(0)
  })

  it('is atomic against a concurrent write to the same blocks: the write waits for it', async () => {
    const { lu, dev } = makeLu()
    await clearUa(lu)
    let reads = 0
    const read = dev.read.bind(dev)
    dev.read = (o, l) => {
      reads++
      return new Promise((res) => setTimeout(() => res(read(o, l)), 20))
    }
    // CAW 0→A while a WRITE of B arrives during its read: final content must be B (write after
    // CAW), never a CAW that compared against B.
    const p1 = run(lu, caw(0, 1), { dataOut: Buffer.concat([Buffer.alloc(512), fill(512, 0xaa)]) })
    const p2 = run(lu, rw10(0x2a, 0, 1), { dataOut: fill(512, 0xbb) })
    expectGood(await p1)
    expectGood(await p2)
    expect(reads).toBe(1)
    expect(dev.data[0]).toBe(0xbb)
    expect(dev.writes.map((w) => w.offset)).toEqual([0, 0])
  })
})

describe('ORWRITE(16)', () => {
  it('ORs the Data-Out into the blocks', async () => {
    const { lu, dev } = makeLu()
    await clearUa(lu)
    dev.data.fill(0x0f, 0, 512)
    expectGood(await run(lu, rw16(0x8b, 0, 1), { dataOut: fill(512, 0xf0) }))
    expect(dev.data.subarray(0, 512).every((x) => x === 0xff)).toBe(true)
    expectSense(await run(lu, rw16(0x8b, 1024, 1), { dataOut: fill(512, 1) }), 5, 0x21, 0)
    expectSense(await run(lu, rw16(0x8b, 0, 1, 0x20), { dataOut: fill(512, 1) }), 5, 0x24, 0)
  })
})

describe('WRITE ATOMIC(16)', () => {
  it('writes all the blocks; refuses atomic boundaries, short Data-Out, oversize and out-of-range', async () => {
    const { lu, dev } = makeLu()
    await clearUa(lu)
    expectGood(await run(lu, writeAtomic(4, 2), { dataOut: fill(1024, 7) }))
    expect(dev.data.subarray(4 * 512, 6 * 512).every((x) => x === 7)).toBe(true)
    expectSense(await run(lu, writeAtomic(4, 2, 1), { dataOut: fill(1024, 7) }), 5, 0x24, 0, { fieldPointer: 10 })
    expectSense(await run(lu, writeAtomic(4, 2), { dataOut: fill(512, 7), expectedLength: 512 }), 5, 0x1a, 0)
    expectSense(await run(lu, writeAtomic(1023, 2), { dataOut: fill(1024, 7) }), 5, 0x21, 0)
    expectSense(await run(lu, writeAtomic(0, 20000), { dataOut: fill(512, 7) }), 5, 0x24, 0, { fieldPointer: 12 })
  })
})

describe('RangeLock', () => {
  it('shared operations start at once and in call order; an exclusive one waits for earlier overlapping ones', async () => {
    const lock = new RangeLock()
    const order: string[] = []
    let releaseA!: () => void
    const a = lock.shared(0, 10, () => new Promise<void>((r) => (releaseA = () => (order.push('a'), r()))))
    const b = lock.shared(20, 10, () => (order.push('b'), Promise.resolve()))
    expect(order).toEqual(['b']) // started synchronously, not blocked by a
    const x = lock.exclusive(5, 10, () => (order.push('x'), Promise.resolve()))
    const c = lock.shared(12, 1, () => (order.push('c'), Promise.resolve()))
    expect(lock.readGate(6, 1)).toBeDefined()
    expect(lock.readGate(50, 1)).toBeUndefined()
    await Promise.resolve()
    expect(order).toEqual(['b'])
    releaseA()
    await Promise.all([a, b, x, c])
    expect(order).toEqual(['b', 'a', 'x', 'c'])
    expect(lock.size).toBe(0)
  })

  it('a failing operation releases its range', async () => {
    const lock = new RangeLock()
    await expect(lock.exclusive(0, 1, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom')
    await expect(lock.exclusive(0, 1, () => { throw new Error('sync') })).rejects.toThrow('sync')
    expect(lock.size).toBe(0)
    expect(lock.readGate(0, 1)).toBeUndefined()
  })
})
