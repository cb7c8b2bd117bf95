import { describe, expect, it } from 'vitest'
import type { BlockDevice } from '../../../src/scsi/types.js'
import { N1, N2, cdb, clearUa, expectGood, expectSense, makeLu, run } from './util.js'

const READ_CAPACITY_10 = (lba = 0, pmi = 0) =>
  cdb(10, 0x25, (b) => {
    b.writeUInt32BE(lba, 2)
    b[8] = pmi
  })
const READ_CAPACITY_16 = (alloc: number, lba = 0n, pmi = 0) =>
  cdb(16, 0x9e, (b) => {
    b[1] = 0x10
    b.writeBigUInt64BE(lba, 2)
    b.writeUInt32BE(alloc, 10)
    b[14] = pmi
  })

/** A device that is only as big as it claims (nothing is ever read). */
function hugeDevice(sizeBytes: number): BlockDevice {
  const no = () => Promise.reject(new Error('not in this test'))
  return { sizeBytes, read: no, write: no, flush: () => Promise.resolve(), close: () => Promise.resolve() }
}

describe('READ CAPACITY', () => {
  it('(10) reports the last LBA and block length', async () => {
    const { lu } = makeLu({ sizeBytes: 1000 * 512 })
    await clearUa(lu)
    const r = await run(lu, READ_CAPACITY_10())
    expectGood(r)
    expect(r.dataIn!.length).toBe(8)
    expect(r.dataIn!.readUInt32BE(0)).toBe(999)
    expect(r.dataIn!.readUInt32BE(4)).toBe(512)
  })

  it('(10) reports 0xFFFFFFFF when the last LBA does not fit 32 bits; (16) has it', async () => {
    const blocks = 2 ** 32 + 10
    const { lu } = makeLu({ device: hugeDevice(blocks * 512) })
    await clearUa(lu)
    const r10 = await run(lu, READ_CAPACITY_10())
    expect(r10.dataIn!.readUInt32BE(0)).toBe(0xffffffff)
    const r16 = await run(lu, READ_CAPACITY_16(32))
    expect(r16.dataIn!.readBigUInt64BE(0)).toBe(BigInt(blocks - 1))
    // exactly 2^32 blocks: last LBA 0xFFFFFFFF is also reported as 0xFFFFFFFF
    const g = makeLu({ device: hugeDevice(2 ** 32 * 512) })
    await clearUa(g.lu)
    expect((await run(g.lu, READ_CAPACITY_10())).dataIn!.readUInt32BE(0)).toBe(0xffffffff)
    const h = makeLu({ device: hugeDevice((2 ** 32 - 1) * 512) })
    await clearUa(h.lu)
    expect((await run(h.lu, READ_CAPACITY_10())).dataIn!.readUInt32BE(0)).toBe(0xfffffffe)
  })

  it('(10) PMI=0 with a non-zero LBA is INVALID FIELD IN CDB; PMI=1 is accepted', async () => {
    const { lu } = makeLu()
    await clearUa(lu)
    expectSense(await run(lu, READ_CAPACITY_10(5)), 5, 0x24, 0, { fieldPointer: 2 })
    expectGood(await run(lu, READ_CAPACITY_10(5, 1)))
  })

  it('(16) reports block length, physical block exponent, no protection, thin provisioning', async () => {
    const { lu } = makeLu({ sizeBytes: 2048 * 512, physicalBlockSize: 4096 })
    await clearUa(lu)
    const r = await run(lu, READ_CAPACITY_16(32))
    expectGood(r)
    const d = r.dataIn!
    expect(d.length).toBe(32)
    expect(d.readBigUInt64BE(0)).toBe(2047n)
    expect(d.readUInt32BE(8)).toBe(512)
    expect(d[12]).toBe(0) // PROT_EN=0
    expect(d[13]).toBe(3) // 8 logical per physical
    expect(d.readUInt16BE(14)).toBe(0xc000) // LBPME=1 LBPRZ=1, lowest aligned LBA 0
  })

  it('(16) allocation lengths 0..40 are all GOOD and truncate', async () => {
    const { lu } = makeLu()
    await clearUa(lu)
    for (let alloc = 0; alloc <= 40; alloc++) {
      const r = await run(lu, READ_CAPACITY_16(alloc))
      expectGood(r)
      expect(r.dataIn?.length ?? 0).toBe(Math.min(alloc, 32))
    }
  })

  it('(16) other service actions of 0x9E are INVALID FIELD IN CDB', async () => {
    const { lu } = makeLu()
    await clearUa(lu)
    const c = READ_CAPACITY_16(32)
    c[1] = 0x11
    expectSense(await run(lu, c), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 4 })
  })
})

describe('SYNCHRONIZE CACHE', () => {
  const SYNC10 = (lba: number, blocks: number) =>
    cdb(10, 0x35, (b) => {
      b.writeUInt32BE(lba, 2)
      b.writeUInt16BE(blocks, 7)
    })
  const SYNC16 = (lba: bigint, blocks: number) =>
    cdb(16, 0x91, (b) => {
      b.writeBigUInt64BE(lba, 2)
      b.writeUInt32BE(blocks, 10)
    })

  it('flushes the device', async () => {
    const { lu, dev } = makeLu({ sizeBytes: 100 * 512 })
    await clearUa(lu)
    expectGood(await run(lu, SYNC10(0, 0)))
    expectGood(await run(lu, SYNC10(10, 90)))
    expectGood(await run(lu, SYNC16(99n, 1)))
    expect(dev.flushes).toBe(3)
  })

  it('range checks the LBA', async () => {
    const { lu, dev } = makeLu({ sizeBytes: 100 * 512 })
    await clearUa(lu)
    expectSense(await run(lu, SYNC10(100, 0)), 5, 0x21, 0)
    expectSense(await run(lu, SYNC10(99, 2)), 5, 0x21, 0)
    expectSense(await run(lu, SYNC16(0xffffffffffffffffn, 1)), 5, 0x21, 0)
    expect(dev.flushes).toBe(0)
  })

  it('a flush failure is HARDWARE ERROR', async () => {
    const { lu, dev, errors } = makeLu()
    await clearUa(lu)
    dev.failNext = new Error('EIO')
    expectSense(await run(lu, SYNC10(0, 0)), 4, 0x44, 0)
    expect(errors.length).toBe(1)
  })
})

describe('capacity changes', () => {
  it('a grown device: READ CAPACITY reports it and every nexus gets CAPACITY DATA HAS CHANGED', async () => {
    let size = 1000 * 512
    const dev = { sizeBytes: 0, read: () => Promise.resolve(Buffer.alloc(0)), write: () => Promise.resolve(), flush: () => Promise.resolve(), close: () => Promise.resolve() }
    Object.defineProperty(dev, 'sizeBytes', { get: () => size })
    const { lu } = makeLu({ device: dev })
    await clearUa(lu, N1)
    await clearUa(lu, N2)
    expect(lu.capacityChanged()).toBe(false)
    size = 2000 * 512
    expect(lu.capacityChanged()).toBe(true)
    expectSense(await run(lu, READ_CAPACITY_10(), { nexus: N1 }), 6, 0x2a, 0x09)
    expectSense(await run(lu, READ_CAPACITY_10(), { nexus: N2 }), 6, 0x2a, 0x09)
    expect((await run(lu, READ_CAPACITY_10())).dataIn!.readUInt32BE(0)).toBe(1999)
    size = 100 * 512
    expect(() => lu.capacityChanged()).toThrow(/shrank/)
  })
})
