// Thin provisioning: UNMAP, WRITE SAME (10/16) with and without UNMAP/ANCHOR/NDOB, GET LBA STATUS.
import { describe, expect, it } from 'vitest'
import type { ByteRange } from '../../../src/scsi/provisioning.js'
import { MemoryDevice } from '../../helpers/memory-device.js'
import { cdb, clearUa, expectGood, expectSense, fill, makeLu, pattern, rw10, run } from './util.js'

/** A MemoryDevice that can discard (as FileBackend does), recording the ranges. */
class DiscardingDevice extends MemoryDevice {
  readonly discards: ByteRange[][] = []
  discard(ranges: readonly ByteRange[]): Promise<void> {
    this.discards.push([...ranges])
    for (const r of ranges) this.data.fill(0, r.offset, r.offset + r.length)
    return Promise.resolve()
  }
}

function unmapCdb(len: number, anchor = false): Buffer {
  return cdb(10, 0x42, (b) => {
    b[1] = anchor ? 1 : 0
    b.writeUInt16BE(len, 7)
  })
}

function unmapList(extents: [number, number][]): Buffer {
  const b = Buffer.alloc(8 + 16 * extents.length)
  b.writeUInt16BE(6 + 16 * extents.length, 0)
  b.writeUInt16BE(16 * extents.length, 2)
  extents.forEach(([lba, n], i) => {
    b.writeBigUInt64BE(BigInt(lba), 8 + 16 * i)
    b.writeUInt32BE(n, 16 + 16 * i)
  })
  return b
}

function ws10(lba: number, blocks: number, byte1 = 0): Buffer {
  return cdb(10, 0x41, (b) => {
    b[1] = byte1
    b.writeUInt32BE(lba, 2)
    b.writeUInt16BE(blocks, 7)
  })
}

function ws16(lba: number, blocks: number, byte1 = 0): Buffer {
  return cdb(16, 0x93, (b) => {
    b[1] = byte1
    b.writeBigUInt64BE(BigInt(lba), 2)
    b.writeUInt32BE(blocks, 10)
  })
}

function getLbaStatus(lba: number, alloc: number): Buffer {
  return cdb(16, 0x9e, (b) => {
    b[1] = 0x12
    b.writeBigUInt64BE(BigInt(lba), 2)
    b.writeUInt32BE(alloc, 10)
  })
}

function descriptors(d: Buffer): [number, number, number][] {
  const out: [number, number, number][] = []
  for (let off = 8; off + 16 <= d.length; off += 16) out.push([Number(d.readBigUInt64BE(off)), d.readUInt32BE(off + 8), d[off + 12]])
  return out
}

describe('UNMAP', () => {
  it('deallocates through discard(); the blocks read as zeros', async () => {
    const dev = new DiscardingDevice(1024 * 512)
    const { lu } = makeLu({ device: dev })
    await clearUa(lu)
    dev.data.fill(0xee)
    const list = unmapList([[8, 8], [100, 1]])
    expectGood(await run(lu, unmapCdb(list.length), { dataOut: list }))
    expect(dev.discards).toEqual([[{ offset: 8 * 512, length: 8 * 512 }, { offset: 100 * 512, length: 512 }]])
    const r = await run(lu, rw10(0x28, 8, 8))
    expect(r.dataIn!.equals(Buffer.alloc(8 * 512))).toBe(true)
    expect(dev.data[7 * 512]).toBe(0xee)
  })

  it('without discard() zeros are written (any BlockDevice keeps LBPRZ)', async () => {
    const { lu, dev } = makeLu()
    await clearUa(lu)
    dev.data.fill(0x11)
    const list = unmapList([[0, 4]])
    expectGood(await run(lu, unmapCdb(list.length), { dataOut: list }))
    expect(dev.data.subarray(0, 4 * 512).every((x) => x === 0)).toBe(true)
    expect(dev.data[4 * 512]).toBe(0x11)
  })

  it('checks: empty list GOOD, short list, out of range, ANCHOR, too many descriptors, write protection', async () => {
    const { lu } = makeLu()
    await clearUa(lu)
    expectGood(await run(lu, unmapCdb(0)))
    expectSense(await run(lu, unmapCdb(4), { dataOut: Buffer.alloc(4) }), 5, 0x1a, 0)
    const oob = unmapList([[1020, 8]])
    expectSense(await run(lu, unmapCdb(oob.length), { dataOut: oob }), 5, 0x21, 0)
    expectSense(await run(lu, unmapCdb(24, true), { dataOut: unmapList([[0, 1]]) }), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 0 })
    const many = unmapList(Array.from({ length: 257 }, (_, i) => [i, 1] as [number, number]))
    expectSense(await run(lu, unmapCdb(many.length), { dataOut: many }), 5, 0x26, 0)
    const ro = makeLu({ readOnly: true }).lu
    await clearUa(ro)
    const one = unmapList([[0, 1]])
    expectSense(await run(ro, unmapCdb(one.length), { dataOut: one }), 7, 0x27, 0)
  })
})

describe('WRITE SAME', () => {
  it('(10) repeats the block over the range', async () => {
    const { lu, dev } = makeLu()
    await clearUa(lu)
    const block = pattern(512, 7)
    expectGood(await run(lu, ws10(10, 300), { dataOut: block, expectedLength: 512 }))
    for (let i = 10; i < 310; i++) expect(dev.data.subarray(i * 512, (i + 1) * 512).equals(block)).toBe(true)
    expect(dev.data.subarray(310 * 512, 311 * 512).equals(Buffer.alloc(512))).toBe(true)
  })

  it('UNMAP=1 deallocates whatever the block holds; NDOB (16) needs no Data-Out', async () => {
    const dev = new DiscardingDevice(1024 * 512)
    const { lu } = makeLu({ device: dev })
    await clearUa(lu)
    dev.data.fill(0x22)
    expectGood(await run(lu, ws16(0, 16, 0x08), { dataOut: fill(512, 0xa6), expectedLength: 512 }))
    expectGood(await run(lu, ws16(32, 16, 0x08 | 0x01), { expectedLength: 0 }))
    expect(dev.discards.length).toBe(2)
    expect(dev.data.subarray(0, 48 * 512).every((x, i) => x === (i >= 16 * 512 && i < 32 * 512 ? 0x22 : 0))).toBe(true)
  })

  it('zero blocks means to the end of the medium (WSNZ=0); LBA past the end is out of range', async () => {
    const { lu, dev } = makeLu()
    await clearUa(lu)
    expectGood(await run(lu, ws10(1000, 0), { dataOut: fill(512, 0x33), expectedLength: 512 }))
    expect(dev.data.subarray(1000 * 512).every((x) => x === 0x33)).toBe(true)
    expectSense(await run(lu, ws10(1024, 0), { dataOut: fill(512, 0), expectedLength: 512 }), 5, 0x21, 0)
  })

  it('refuses ANCHOR (ANC_SUP=0), PBDATA/LBDATA, a Data-Out that is not one block, more than the maximum', async () => {
    const { lu } = makeLu({ sizeBytes: 70000 * 512 })
    await clearUa(lu)
    const one = { dataOut: fill(512, 0), expectedLength: 512 }
    expectSense(await run(lu, ws10(0, 1, 0x10 | 0x08), one), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 4 })
    expectSense(await run(lu, ws10(0, 1, 0x10), one), 5, 0x24, 0)
    expectSense(await run(lu, ws10(0, 1, 0x02), one), 5, 0x24, 0)
    expectSense(await run(lu, ws10(0, 1, 0x08), { dataOut: fill(1024, 0), expectedLength: 1024 }), 5, 0x1a, 0)
    expectSense(await run(lu, ws10(0, 1, 0x08), { dataOut: fill(256, 0), expectedLength: 256 }), 5, 0x1a, 0)
    expectSense(await run(lu, ws16(0, 0x10000), one), 5, 0x24, 0, { fieldPointer: 10 })
  })
})

describe('GET LBA STATUS', () => {
  it('reports mapped and deallocated extents from the requested LBA on, as many as fit', async () => {
    const { lu } = makeLu()
    await clearUa(lu)
    // What the unit deallocated and has not written since (never inferred from the data).
    const list = unmapList([[100, 924]])
    expectGood(await run(lu, unmapCdb(list.length), { dataOut: list }))
    const one512 = Buffer.alloc(512, 0x44)
    expectGood(await run(lu, cdb(10, 0x2a, (b) => (b.writeUInt32BE(200, 2), b.writeUInt16BE(1, 7))), { dataOut: one512 }))
    const r = await run(lu, getLbaStatus(50, 1000))
    expectGood(r)
    expect(r.dataIn!.readUInt32BE(0)).toBe(r.dataIn!.length - 4)
    expect(descriptors(r.dataIn!)).toEqual([[50, 50, 0], [100, 100, 1], [200, 1, 0], [201, 823, 1]])
    const one = await run(lu, getLbaStatus(150, 24))
    expect(descriptors(one.dataIn!)).toEqual([[150, 50, 1]])
    expectSense(await run(lu, getLbaStatus(1024, 24)), 5, 0x21, 0)
  })

  it('reports blocks it never deallocated as mapped, whatever they hold', async () => {
    const { lu, dev } = makeLu()
    await clearUa(lu)
    dev.data.fill(0, 0, 1024 * 512)
    expect(descriptors((await run(lu, getLbaStatus(0, 1000))).dataIn!)).toEqual([[0, 1024, 0]])
  })

  it('READ CAPACITY (16) says thin provisioned with zeroed deallocated blocks', async () => {
    const { lu } = makeLu()
    await clearUa(lu)
    const r = await run(lu, cdb(16, 0x9e, (b) => (b[1] = 0x10, b.writeUInt32BE(32, 10))))
    expect(r.dataIn![14] & 0xc0).toBe(0xc0)
  })
})
