// Thin provisioning commands (SBC-3 §4.7): UNMAP, WRITE SAME (10/16) with and without UNMAP,
// GET LBA STATUS. ANC_SUP=0: the anchored state is not offered, so ANCHOR=1 is refused.

import { checkNoProtect, checkRange, checkWritable, clip, readLba64 } from '../cdb.js'
import type { LuContext } from '../context.js'
import { deallocate, type Extent } from '../provisioning.js'
import {
  invalidFieldInCdb,
  invalidFieldInParameterList,
  lbaOutOfRange,
  parameterListLengthError,
} from '../sense.js'
import type { ScsiRequest, ScsiResult } from '../types.js'
import { GOOD, goodWithData } from './results.js'

const ANCHOR = 0x10
const UNMAP = 0x08

// ---- UNMAP --------------------------------------------------------------------------------

export function planUnmap(_lu: LuContext, cdb: Buffer): number {
  if (cdb[1] & 0x01) throw invalidFieldInCdb(1, 0) // ANCHOR: ANC_SUP=0
  return cdb.readUInt16BE(7)
}

/** Parse and validate the UNMAP parameter list (SBC-3 §5.28.2). */
export function unmapExtents(lu: LuContext, cdb: Buffer, dataOut: Buffer): Extent[] {
  const len = cdb.readUInt16BE(7)
  if (len === 0) return []
  if (len < 8 || dataOut.length < 8) throw parameterListLengthError()
  const data = dataOut.subarray(0, Math.min(len, dataOut.length))
  const descLen = data.readUInt16BE(2)
  if (descLen % 16 !== 0 || 8 + descLen > data.length) throw parameterListLengthError()
  const count = descLen / 16
  if (count > lu.limits.maxUnmapDescriptors) throw invalidFieldInParameterList(2)
  const extents: Extent[] = []
  for (let i = 0; i < count; i++) {
    const off = 8 + 16 * i
    const lba = readLba64(data, off)
    const blocks = data.readUInt32BE(off + 8)
    if (blocks > lu.limits.maxUnmapBlocks) throw invalidFieldInParameterList(off + 8)
    if (lba < 0 || lba + blocks > lu.capacityBlocks) throw lbaOutOfRange()
    if (blocks > 0) extents.push({ lba, blocks })
  }
  return extents
}

export async function unmap(lu: LuContext, req: ScsiRequest): Promise<ScsiResult> {
  planUnmap(lu, req.cdb)
  const extents = unmapExtents(lu, req.cdb, req.dataOut)
  if (extents.length === 0) return GOOD
  checkWritable(lu)
  const lo = Math.min(...extents.map((e) => e.lba))
  const hi = Math.max(...extents.map((e) => e.lba + e.blocks))
  await lu.locks.shared(lo, hi - lo, () => deallocate(lu, extents))
  return GOOD
}

// ---- WRITE SAME ---------------------------------------------------------------------------

interface WriteSameFields {
  lba: number
  blocks: number
  unmap: boolean
  ndob: boolean
}

function writeSameFields(lu: LuContext, cdb: Buffer, sixteen: boolean): WriteSameFields {
  checkNoProtect(cdb) // WRPROTECT
  const b1 = cdb[1]
  if (!sixteen && b1 & 0x06) throw invalidFieldInCdb(1, b1 & 0x04 ? 2 : 1) // PBDATA / LBDATA (obsolete)
  if (b1 & ANCHOR) throw invalidFieldInCdb(1, 4) // ANC_SUP=0 (and ANCHOR without UNMAP is invalid anyway)
  const ndob = sixteen && (b1 & 0x01) !== 0
  const lba = sixteen ? readLba64(cdb, 2) : cdb.readUInt32BE(2)
  let blocks = sixteen ? cdb.readUInt32BE(10) : cdb.readUInt16BE(7)
  if (blocks === 0) {
    // WSNZ=0: zero blocks means "to the end of the medium".
    if (lba < 0 || lba >= lu.capacityBlocks) throw lbaOutOfRange()
    blocks = lu.capacityBlocks - lba
  }
  if (blocks > lu.limits.maxWriteSameBlocks) throw invalidFieldInCdb(sixteen ? 10 : 7)
  checkRange(lu, lba, blocks)
  checkWritable(lu)
  return { lba, blocks, unmap: (b1 & UNMAP) !== 0, ndob }
}

export const planWriteSame10 = (lu: LuContext, cdb: Buffer): number => (writeSameFields(lu, cdb, false), lu.blockSize)
export const planWriteSame16 = (lu: LuContext, cdb: Buffer): number =>
  writeSameFields(lu, cdb, true).ndob ? 0 : lu.blockSize

const CHUNK_BYTES = 1024 * 1024

async function writeRepeated(lu: LuContext, lba: number, blocks: number, block: Buffer): Promise<void> {
  const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / lu.blockSize))
  const chunk = Buffer.alloc(Math.min(blocks, perChunk) * lu.blockSize)
  for (let off = 0; off < chunk.length; off += lu.blockSize) block.copy(chunk, off, 0, lu.blockSize)
  const fua = !lu.modes.writeCacheEnabled
  for (let done = 0; done < blocks; ) {
    const n = Math.min(blocks - done, perChunk)
    await lu.device.write((lba + done) * lu.blockSize, chunk.subarray(0, n * lu.blockSize), { fua })
    done += n
  }
}

async function writeSame(lu: LuContext, req: ScsiRequest, sixteen: boolean): Promise<ScsiResult> {
  const f = writeSameFields(lu, req.cdb, sixteen)
  // The Data-Out buffer is exactly one block (none with NDOB); libiscsi checks that a larger or
  // smaller one is refused rather than truncated.
  if (req.expectedLength !== (f.ndob ? 0 : lu.blockSize) || req.dataOut.length < (f.ndob ? 0 : lu.blockSize)) {
    throw parameterListLengthError()
  }
  const block = f.ndob ? Buffer.alloc(lu.blockSize) : req.dataOut.subarray(0, lu.blockSize)
  // UNMAP=1: deallocate (SBC-3 §5.45: the device server deallocates rather than write; with
  // LBPRZ=1 the blocks then read as zeros, whatever the Data-Out held). UNMAP=0 with zeros
  // could deallocate too; the blocks are written instead, so that they stay mapped.
  const dealloc = f.unmap
  await lu.locks.shared(f.lba, f.blocks, () =>
    dealloc ? deallocate(lu, [{ lba: f.lba, blocks: f.blocks }]) : writeRepeated(lu, f.lba, f.blocks, block),
  )
  return GOOD
}

export const writeSame10 = (lu: LuContext, req: ScsiRequest) => writeSame(lu, req, false)
export const writeSame16 = (lu: LuContext, req: ScsiRequest) => writeSame(lu, req, true)

// ---- GET LBA STATUS -----------------------------------------------------------------------

/** A descriptor's NUMBER OF LOGICAL BLOCKS is 32 bits. */
const MAX_RUN = 0xffffffff

export async function getLbaStatus(lu: LuContext, req: ScsiRequest): Promise<ScsiResult> {
  const cdb = req.cdb
  const lba = readLba64(cdb, 2)
  const alloc = cdb.readUInt32BE(10)
  if (lba < 0 || lba >= lu.capacityBlocks) throw lbaOutOfRange()
  if (alloc === 0) return GOOD
  const maxDescriptors = Math.max(1, Math.floor((Math.min(alloc, 0xffff) - 8) / 16))
  // Answered from memory, without touching storage (see DeallocatedMap).
  const runs = lu.deallocated.runs(lba, lu.capacityBlocks, maxDescriptors).map((r) => ({ ...r, blocks: Math.min(r.blocks, MAX_RUN) }))
  const out = runs.slice(0, maxDescriptors)
  const b = Buffer.alloc(8 + 16 * out.length)
  b.writeUInt32BE(4 + 16 * out.length, 0) // PARAMETER DATA LENGTH: bytes that follow
  out.forEach((r, i) => {
    const off = 8 + 16 * i
    b.writeUInt32BE(Math.floor(r.lba / 0x1_0000_0000), off)
    b.writeUInt32BE(r.lba >>> 0, off + 4)
    b.writeUInt32BE(r.blocks, off + 8)
    b[off + 12] = r.deallocated ? 0x01 : 0x00 // PROVISIONING STATUS: mapped / deallocated
  })
  return goodWithData(clip(b, alloc))
}
