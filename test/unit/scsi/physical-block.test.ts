// Logical blocks per physical block: the default (physical = logical, like a 512n or 4Kn disk),
// what READ CAPACITY (16) and the Block Limits page say about it, the allowed sizes (4096 under
// 512-byte blocks reports 512e), and the commands the conformance suite checks only when
// LBPPB > 1, on a unit configured so.
import { describe, expect, it } from 'vitest'
import { LuConfigError } from '../../../src/scsi/disk-lu.js'
import { MAX_PHYSICAL_BLOCK_SIZE, defaultPhysicalBlockSize, physicalBlockSizeProblem } from '../../../src/scsi/limits.js'
import { cdb, clearUa, expectGood, expectSense, fill, makeLu, makeLu as makeAnyLu, run } from './util.js'

const readCapacity16 = cdb(16, 0x9e, (b) => ((b[1] = 0x10), b.writeUInt32BE(32, 10)))
const blockLimits = cdb(6, 0x12, (b) => ((b[1] = 1), (b[2] = 0xb0), b.writeUInt16BE(255, 3)))

async function reported(opts: Parameters<typeof makeLu>[0]) {
  const { lu } = makeLu(opts)
  await clearUa(lu)
  const rc = (await run(lu, readCapacity16)).dataIn!
  const bl = (await run(lu, blockLimits)).dataIn!
  return {
    exponent: rc[13] & 0x0f,
    lowestAligned: rc.readUInt16BE(14) & 0x3fff,
    transferGranularity: bl.readUInt16BE(6),
    unmapGranularity: bl.readUInt32BE(28),
    unmapAlignment: bl.readUInt32BE(32),
    maxAtomic: bl.readUInt32BE(44),
  }
}

describe('physical block size', () => {
  it('default: the logical block size (LBPPB exponent 0) for either block size; unmapping still in 4 KiB', async () => {
    expect(defaultPhysicalBlockSize(512)).toBe(512)
    expect(defaultPhysicalBlockSize(4096)).toBe(4096)
    expect(await reported({})).toEqual({
      exponent: 0,
      lowestAligned: 0,
      transferGranularity: 1,
      unmapGranularity: 8, // a hole is punched in 4 KiB units whatever the physical block
      unmapAlignment: 0x8000_0000, // UGAVALID, alignment 0 = the lowest aligned LBA
      maxAtomic: (8 * 1024 * 1024) / 512,
    })
    expect(await reported({ blockSize: 4096, sizeBytes: 256 * 4096 })).toMatchObject({
      exponent: 0,
      lowestAligned: 0,
      transferGranularity: 1,
      unmapGranularity: 1,
    })
  })

  it('512e on request: 4096-byte physical blocks under 512-byte logical blocks report exponent 3', async () => {
    expect(await reported({ physicalBlockSize: 4096 })).toEqual({
      exponent: 3,
      lowestAligned: 0,
      transferGranularity: 8,
      unmapGranularity: 8,
      unmapAlignment: 0x8000_0000,
      maxAtomic: (8 * 1024 * 1024) / 512,
    })
  })

  it('configured: the exponent, the transfer and unmap granularities follow; unmapping never goes below 4 KiB', async () => {
    expect(await reported({ physicalBlockSize: 65536 })).toMatchObject({ exponent: 7, transferGranularity: 128, unmapGranularity: 128 })
    expect(await reported({ blockSize: 4096, sizeBytes: 256 * 4096, physicalBlockSize: 16384 })).toMatchObject({
      exponent: 2,
      transferGranularity: 4,
      unmapGranularity: 4,
    })
    // Physical = logical: no alignment to ask for, but a hole is still punched in 4 KiB units.
    expect(await reported({ physicalBlockSize: 512 })).toMatchObject({ exponent: 0, transferGranularity: 1, unmapGranularity: 8 })
  })

  it('allowed: the block size × a power of two, at most 64 KiB', () => {
    expect(MAX_PHYSICAL_BLOCK_SIZE).toBe(65536)
    for (const p of [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536]) expect(physicalBlockSizeProblem(512, p)).toBeUndefined()
    for (const p of [256, 1000, 1536, 3072, 131072, 0, -4096, 4096.5]) expect(physicalBlockSizeProblem(512, p)).toBeDefined()
    expect(physicalBlockSizeProblem(4096, 512)).toMatch(/4096 × a power of two, at most 65536/)
    for (const p of [1000, 131072, 256]) expect(() => makeLu({ physicalBlockSize: p })).toThrow(LuConfigError)
    expect(() => makeLu({ blockSize: 4096, sizeBytes: 64 * 4096, physicalBlockSize: 2048 })).toThrow(LuConfigError)
  })
})

describe('commands within a physical block (what libiscsi checks when LBPPB > 1), on a 512e unit', () => {
  const makeLu = (opts: Parameters<typeof makeAnyLu>[0] = {}) => makeAnyLu({ physicalBlockSize: 4096, ...opts })

  const ws10 = (lba: number, blocks: number, byte1 = 0) =>
    cdb(10, 0x41, (b) => ((b[1] = byte1), b.writeUInt32BE(lba, 2), b.writeUInt16BE(blocks, 7)))
  const caw = (lba: number, blocks: number) => cdb(16, 0x89, (b) => (b.writeBigUInt64BE(BigInt(lba), 2), (b[13] = blocks)))

  it('WRITE SAME (10) with UNMAP on part of a physical block succeeds, and the blocks read zeros (LBPRZ=1)', async () => {
    const { lu, dev } = makeLu()
    await clearUa(lu)
    for (let i = 1; i < 8; i++) {
      dev.data.fill(0x61, 0, 8 * 512)
      expectGood(await run(lu, ws10(i, 8 - i, 0x08), { dataOut: fill(512, 0xa6), expectedLength: 512 }))
      expect(dev.data.subarray(0, i * 512).every((x) => x === 0x61)).toBe(true)
      expect(dev.data.subarray(i * 512, 8 * 512).every((x) => x === 0)).toBe(true)
    }
  })

  it('WRITE SAME (10) with a Data-Out of half a block or two blocks is refused, not truncated', async () => {
    const { lu } = makeLu()
    await clearUa(lu)
    expectSense(await run(lu, ws10(0, 1, 0x08), { dataOut: fill(256, 0xa6), expectedLength: 256 }), 5, 0x1a, 0)
    expectSense(await run(lu, ws10(0, 1, 0x08), { dataOut: fill(1024, 0xa6), expectedLength: 1024 }), 5, 0x1a, 0)
  })

  it('GET LBA STATUS starts its first descriptor at the requested LBA, not at a physical block boundary (SBC-4)', async () => {
    // The state libiscsi's GetLBAStatus.UnmapSingle builds for i = 8: blocks 0..263 written,
    // 0..7 (one physical block) unmapped; it then asks for LBA 9 and wants the answer at LBA 16.
    const { lu } = makeLu({ sizeBytes: 1024 * 512 })
    await clearUa(lu)
    expectGood(await run(lu, cdb(16, 0x8a, (b) => b.writeUInt32BE(264, 10)), { dataOut: fill(264 * 512, 0x41) }))
    const unmap = Buffer.alloc(24)
    unmap.writeUInt16BE(22, 0)
    unmap.writeUInt16BE(16, 2)
    unmap.writeUInt32BE(8, 16)
    expectGood(await run(lu, cdb(10, 0x42, (b) => b.writeUInt16BE(24, 7)), { dataOut: unmap }))
    const gls = (lba: number) => cdb(16, 0x9e, (b) => ((b[1] = 0x12), b.writeBigUInt64BE(BigInt(lba), 2), b.writeUInt32BE(24, 10)))
    const first = (await run(lu, gls(0))).dataIn!
    expect([Number(first.readBigUInt64BE(8)), first.readUInt32BE(16), first[20] & 0x0f]).toEqual([0, 8, 1]) // deallocated
    const at9 = (await run(lu, gls(9))).dataIn!
    expect([Number(at9.readBigUInt64BE(8)), at9[20] & 0x0f]).toEqual([9, 0]) // from LBA 9, mapped
  })

  it('COMPARE AND WRITE whose Data-Out is not twice NUMBER OF LOGICAL BLOCKS is refused', async () => {
    const { lu, dev } = makeLu()
    await clearUa(lu)
    for (const blocks of [1, 3]) {
      expectSense(await run(lu, caw(0, blocks), { dataOut: fill(4 * 512, 0xa6), expectedLength: 4 * 512 }), 5, 0x24, 0, { fieldPointer: 13 })
    }
    expect(dev.writes).toEqual([])
  })
})
