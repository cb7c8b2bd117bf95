// Limits a disk logical unit reports in the Block Limits VPD page (SBC-3 §6.5.3) and enforces.

export interface BlockLimits {
  /** MAXIMUM COMPARE AND WRITE LENGTH (blocks, ≤ 255). */
  maxCompareAndWriteBlocks: number
  /** MAXIMUM PREFETCH LENGTH (blocks). */
  maxPrefetchBlocks: number
  /** MAXIMUM UNMAP LBA COUNT. */
  maxUnmapBlocks: number
  /** MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT. */
  maxUnmapDescriptors: number
  /**
   * OPTIMAL UNMAP GRANULARITY (blocks): a whole physical block, and at least the 4 KiB a hole
   * can be punched in. UNMAP GRANULARITY ALIGNMENT is the LOWEST ALIGNED LBA, 0 (UGAVALID=1).
   */
  unmapGranularity: number
  /** MAXIMUM WRITE SAME LENGTH (blocks). */
  maxWriteSameBlocks: number
  /** MAXIMUM ATOMIC TRANSFER LENGTH (blocks). */
  maxAtomicBlocks: number
  /** ATOMIC ALIGNMENT (blocks). */
  atomicAlignment: number
  /** ATOMIC TRANSFER LENGTH GRANULARITY (blocks). */
  atomicGranularity: number
}

const GIB = 1024 * 1024 * 1024

/**
 * Largest physical block size a unit reports. The LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT
 * field could say more (2^15), but nothing under a unit works in larger units than 64 KiB (the
 * file backend punches holes from 64 KiB up, PUNCH_MIN_BYTES), and hosts align and size their
 * I/O by the physical block (Linux: minimum_io_size, mkfs hints) for no gain beyond it.
 * The config checks the same bound (src/config, physical_block_size).
 */
export const MAX_PHYSICAL_BLOCK_SIZE = 64 * 1024

/**
 * The physical block size a unit reports unless told otherwise: the logical block size (LOGICAL
 * BLOCKS PER PHYSICAL BLOCK EXPONENT 0). A unit with 512-byte blocks then looks like a 512n disk
 * and one with 4096-byte blocks like a 4Kn disk, which is what hosts expect of those formats, and
 * what libiscsi's GetLBAStatus.UnmapSingle assumes: it asks GET LBA STATUS for LBA i+1 and wants
 * the first descriptor at i+LBPPB, which a correct target (first descriptor at the requested LBA,
 * SBC-4) gives only when LBPPB is 1. The storage's 4 KiB page and hole size is still told to hosts
 * that unmap: OPTIMAL UNMAP GRANULARITY stays at least 4 KiB (defaultLimits). A unit that should
 * report 512e (4096-byte physical blocks under 512-byte logical ones, so hosts align their I/O to
 * 4 KiB) is given physicalBlockSize 4096 (config `physical_block_size`). The config default is
 * the same (src/config/defaults.ts).
 */
export function defaultPhysicalBlockSize(blockSize: number): number {
  return blockSize
}

/** Why `physical` cannot be the physical block size of `blockSize`-byte blocks, or undefined. */
export function physicalBlockSizeProblem(blockSize: number, physical: number): string | undefined {
  const ok =
    Number.isInteger(physical) &&
    physical >= blockSize &&
    physical <= MAX_PHYSICAL_BLOCK_SIZE &&
    physical % blockSize === 0 &&
    ((physical / blockSize) & (physical / blockSize - 1)) === 0
  return ok ? undefined : `physical block size ${physical} must be ${blockSize} × a power of two, at most ${MAX_PHYSICAL_BLOCK_SIZE}`
}

export function defaultLimits(blockSize: number, maxTransferBlocks: number, physicalBlocks: number): BlockLimits {
  return {
    maxCompareAndWriteBlocks: 255,
    maxPrefetchBlocks: maxTransferBlocks,
    maxUnmapBlocks: GIB / 4 / blockSize,
    maxUnmapDescriptors: 256,
    unmapGranularity: Math.max(physicalBlocks, 4096 / blockSize, 1),
    // Below 65536: libiscsi checks 4-byte lengths with one WRITE of 65536 blocks when allowed.
    maxWriteSameBlocks: 0xffff,
    // Written with one pwrite under an exclusive range lock (atomic against other commands).
    maxAtomicBlocks: Math.max(physicalBlocks, maxTransferBlocks),
    atomicAlignment: 1,
    atomicGranularity: 1,
  }
}
