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
  /** OPTIMAL UNMAP GRANULARITY (blocks); UNMAP GRANULARITY ALIGNMENT is 0 (UGAVALID=1). */
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

export function defaultLimits(blockSize: number, maxTransferBlocks: number, physicalBlocks: number): BlockLimits {
  return {
    maxCompareAndWriteBlocks: 255,
    maxPrefetchBlocks: maxTransferBlocks,
    maxUnmapBlocks: GIB / 4 / blockSize,
    maxUnmapDescriptors: 256,
    unmapGranularity: Math.max(1, 4096 / blockSize),
    // Below 65536: libiscsi checks 4-byte lengths with one WRITE of 65536 blocks when allowed.
    maxWriteSameBlocks: 0xffff,
    // Written with one pwrite under an exclusive range lock (atomic against other commands).
    maxAtomicBlocks: Math.max(physicalBlocks, maxTransferBlocks),
    atomicAlignment: 1,
    atomicGranularity: 1,
  }
}
