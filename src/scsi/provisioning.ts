// Logical block provisioning (SBC-3 §4.7): every disk is thin provisioned with LBPRZ=1, i.e. a
// deallocated block reads as zeros.
//
// Deallocation goes to the device's discard() when it has one (FileBackend punches holes in
// sparse files and zeroes block devices); otherwise zeros are written, which keeps the LBPRZ
// promise on any BlockDevice (the HA mirror included) at the cost of giving no space back.
//
// Provisioning status (GET LBA STATUS) is read from the data: a block that reads as zeros is
// reported deallocated. With LBPRZ=1 such a block is indistinguishable from a deallocated one to
// the host, holes read as zeros, and an allocated run of zeros is exactly what a
// zero-detecting thin array would deallocate; it needs no file system support (SEEK_HOLE is
// not reachable from Node).

import type { LuContext } from './context.js'
import type { BlockDevice } from './types.js'

export interface ByteRange {
  offset: number
  length: number
}

/** A BlockDevice that can deallocate ranges (after which they read as zeros). */
export interface DiscardCapable {
  discard(ranges: readonly ByteRange[]): Promise<void>
}

export function canDiscard(d: BlockDevice): d is BlockDevice & DiscardCapable {
  return typeof (d as Partial<DiscardCapable>).discard === 'function'
}

export interface Extent {
  lba: number
  blocks: number
}

const ZERO_CHUNK = Buffer.alloc(1024 * 1024)

/** Deallocate block extents (already validated); resolves when they read as zeros. */
export async function deallocate(lu: LuContext, extents: readonly Extent[]): Promise<void> {
  const ranges = extents
    .filter((e) => e.blocks > 0)
    .map((e) => ({ offset: e.lba * lu.blockSize, length: e.blocks * lu.blockSize }))
  if (ranges.length === 0) return
  const dev = lu.device
  if (canDiscard(dev)) {
    await dev.discard(ranges)
  } else {
    for (const r of ranges) {
      for (let done = 0; done < r.length; done += ZERO_CHUNK.length) {
        const n = Math.min(ZERO_CHUNK.length, r.length - done)
        await dev.write(r.offset + done, ZERO_CHUNK.subarray(0, n), { fua: false })
      }
    }
  }
  if (!lu.modes.writeCacheEnabled) await dev.flush()
  for (const e of extents) lu.deallocated.add(e.lba, e.blocks)
}

/** True when every byte of `b` is zero. */
export function isZero(b: Buffer): boolean {
  for (let off = 0; off < b.length; off += ZERO_CHUNK.length) {
    const end = Math.min(b.length, off + ZERO_CHUNK.length)
    if (b.compare(ZERO_CHUNK, 0, end - off, off, end) !== 0) return false
  }
  return true
}

/** Provisioning status of consecutive blocks: runs of mapped (false) / deallocated (true). */
export function zeroRuns(data: Buffer, blockSize: number, firstLba: number): { lba: number; blocks: number; deallocated: boolean }[] {
  const runs: { lba: number; blocks: number; deallocated: boolean }[] = []
  const n = Math.floor(data.length / blockSize)
  for (let i = 0; i < n; i++) {
    const z = isZero(data.subarray(i * blockSize, (i + 1) * blockSize))
    const last = runs[runs.length - 1]
    if (last !== undefined && last.deallocated === z) last.blocks++
    else runs.push({ lba: firstLba + i, blocks: 1, deallocated: z })
  }
  return runs
}
