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
 * The physical block size a unit reports unless told otherwise: 4096 for 512-byte blocks (a
 * 512e disk, LBPPB exponent 3), the block size itself for 4096-byte blocks. It is the truth for
 * the storage under a unit: the file backend goes through the page cache, which reads and
 * writes whole 4 KiB pages (a 512-byte write into a page not in memory reads the page first),
 * and punches holes in 4 KiB units (PUNCH_ALIGN); hosts told so align partitions and I/O to
 * 4 KiB. The config default is the same (src/config/defaults.ts).
 */
export function defaultPhysicalBlockSize(blockSize: number): number {
  return Math.max(blockSize, 4096)
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
