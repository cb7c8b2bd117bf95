// Commands that read and write the same blocks as one indivisible step, under an exclusive
// range lock (range-lock.ts): COMPARE AND WRITE (SBC-3 §5.2, VMware's ATS), ORWRITE(16)
// (SBC-3 §5.9) and WRITE ATOMIC(16) (SBC-4 §5.48). Overlapping commands that arrived earlier
// finish first; overlapping ones that arrive later wait.

import { checkNoProtect, checkRange, checkWritable, readLba64 } from '../cdb.js'
import type { LuContext } from '../context.js'
import { invalidFieldInCdb, miscompare, parameterListLengthError } from '../sense.js'
import type { ScsiRequest, ScsiResult } from '../types.js'
import { firstDifference } from './sbc.js'
import { GOOD } from './results.js'

const FUA = 0x08

function fuaOf(lu: LuContext, cdb: Buffer): boolean {
  return (cdb[1] & FUA) !== 0 || !lu.modes.writeCacheEnabled
}

// ---- COMPARE AND WRITE --------------------------------------------------------------------

/** Data-Out: the verify blocks then the write blocks (2 × NUMBER OF LOGICAL BLOCKS). */
export function planCompareAndWrite(lu: LuContext, cdb: Buffer): number {
  checkNoProtect(cdb)
  const lba = readLba64(cdb, 2)
  const blocks = cdb[13]
  if (blocks > lu.limits.maxCompareAndWriteBlocks) throw invalidFieldInCdb(13)
  checkRange(lu, lba, blocks)
  checkWritable(lu)
  return 2 * blocks * lu.blockSize
}

export async function compareAndWrite(lu: LuContext, req: ScsiRequest): Promise<ScsiResult> {
  const cdb = req.cdb
  const bytes = planCompareAndWrite(lu, cdb)
  // The Data-Out buffer must be exactly twice the blocks: a buffer of another size means the
  // NUMBER OF LOGICAL BLOCKS is not what the initiator meant (e.g. 256 wrapped to 0).
  if (req.expectedLength !== bytes) throw invalidFieldInCdb(13)
  if (bytes === 0) return GOOD
  if (req.dataOut.length < bytes) throw parameterListLengthError()
  const lba = readLba64(cdb, 2)
  const blocks = cdb[13]
  const half = bytes / 2
  const verify = req.dataOut.subarray(0, half)
  const data = req.dataOut.subarray(half, bytes)
  await lu.locks.exclusive(lba, blocks, async () => {
    const current = await lu.device.read(lba * lu.blockSize, half)
    const off = firstDifference(current, verify, half)
    // INFORMATION: offset of the first differing byte from the start of the Data-Out buffer.
    if (off >= 0) throw miscompare(off)
    await lu.device.write(lba * lu.blockSize, data, { fua: fuaOf(lu, cdb) })
  })
  return GOOD
}

// ---- ORWRITE(16) --------------------------------------------------------------------------

export function planOrWrite(lu: LuContext, cdb: Buffer): number {
  checkNoProtect(cdb) // ORPROTECT
  const lba = readLba64(cdb, 2)
  const blocks = cdb.readUInt32BE(10)
  if (blocks > lu.maxTransferBlocks) throw invalidFieldInCdb(10)
  checkRange(lu, lba, blocks)
  checkWritable(lu)
  return blocks * lu.blockSize
}

/** Each block becomes (medium OR Data-Out). Short Data-Out: only the whole blocks sent. */
export async function orWrite(lu: LuContext, req: ScsiRequest): Promise<ScsiResult> {
  const cdb = req.cdb
  if (planOrWrite(lu, cdb) === 0) return GOOD
  const lba = readLba64(cdb, 2)
  const n = Math.min(cdb.readUInt32BE(10), Math.floor(req.dataOut.length / lu.blockSize))
  if (n === 0) return GOOD
  const len = n * lu.blockSize
  await lu.locks.exclusive(lba, n, async () => {
    const merged = await lu.device.read(lba * lu.blockSize, len)
    const src = req.dataOut
    for (let i = 0; i < len; i++) merged[i] |= src[i]
    await lu.device.write(lba * lu.blockSize, merged, { fua: fuaOf(lu, cdb) })
  })
  return GOOD
}

// ---- WRITE ATOMIC(16) ---------------------------------------------------------------------

export function planWriteAtomic16(lu: LuContext, cdb: Buffer): number {
  checkNoProtect(cdb)
  const lba = readLba64(cdb, 2)
  if (cdb.readUInt16BE(10) !== 0) throw invalidFieldInCdb(10) // ATOMIC BOUNDARY: not supported
  const blocks = cdb.readUInt16BE(12)
  const l = lu.limits
  if (blocks > l.maxAtomicBlocks || blocks % l.atomicGranularity !== 0) throw invalidFieldInCdb(12)
  if (lba >= 0 && lba % l.atomicAlignment !== 0) throw invalidFieldInCdb(2)
  checkRange(lu, lba, blocks)
  checkWritable(lu)
  return blocks * lu.blockSize
}

/**
 * All of the blocks or none: the whole transfer is required (a short Data-Out is refused), and
 * the single write runs under an exclusive range lock so no overlapping command sees or makes
 * a mix.
 */
export async function writeAtomic16(lu: LuContext, req: ScsiRequest): Promise<ScsiResult> {
  const cdb = req.cdb
  const bytes = planWriteAtomic16(lu, cdb)
  if (bytes === 0) return GOOD
  if (req.dataOut.length < bytes || req.expectedLength < bytes) throw parameterListLengthError()
  const lba = readLba64(cdb, 2)
  const data = req.dataOut.subarray(0, bytes)
  await lu.locks.exclusive(lba, bytes / lu.blockSize, () =>
    lu.device.write(lba * lu.blockSize, data, { fua: fuaOf(lu, cdb) }),
  )
  return GOOD
}
