// Block commands (SBC-3): READ, WRITE, VERIFY, WRITE AND VERIFY (6/10/12/16 where defined),
// READ CAPACITY (10/16), SYNCHRONIZE CACHE (10/16), PRE-FETCH (10/16), READ DEFECT DATA (10/12).
// Reads wait for an overlapping atomic command (range-lock.ts); writes take the range shared.
//
// Data-Out shorter than the CDB asks for (EDTL < transfer length): only the whole blocks that
// arrived are written or compared and the command completes GOOD; the transport reports the
// overflow residual. This is what libiscsi's iSCSIResiduals suite expects. Extra Data-Out
// (EDTL > transfer length) is ignored.
//
// Order of checks: CDB fields (INVALID FIELD IN CDB), then LBA range (LBA OUT OF RANGE), then
// write protection (DATA PROTECT / WRITE PROTECTED).
//
// The write path issues device.write synchronously from execute(): no await comes before it, so
// device writes are issued in the order execute() is called.

import {
  RW10,
  RW12,
  RW16,
  RW6,
  checkNoProtect,
  checkRange,
  checkTransferLength,
  checkWritable,
  clip,
  readBlocks,
  readLba,
  readLba64,
  type RwLayout,
} from '../cdb.js'
import type { LuContext } from '../context.js'
import { invalidFieldInCdb, lbaOutOfRange, miscompare } from '../sense.js'
import { ScsiStatus, type ScsiRequest, type ScsiResult } from '../types.js'
import { GOOD, goodWithData } from './results.js'

const FUA = 0x08
const toGood = (): ScsiResult => GOOD

/** Whole blocks of Data-Out available for a transfer of `blocks` blocks. */
function usableBlocks(lu: LuContext, dataOut: Buffer, blocks: number): number {
  const have = Math.floor(dataOut.length / lu.blockSize)
  return have < blocks ? have : blocks
}

function prefix(data: Buffer, bytes: number): Buffer {
  return data.length === bytes ? data : data.subarray(0, bytes)
}

/** Offset of the first byte where a and b differ within [0, len), or -1. */
export function firstDifference(a: Buffer, b: Buffer, len: number): number {
  const CHUNK = 4096
  for (let off = 0; off < len; off += CHUNK) {
    const end = off + CHUNK < len ? off + CHUNK : len
    if (a.compare(b, off, end, off, end) === 0) continue
    for (let i = off; i < end; i++) if (a[i] !== b[i]) return i
  }
  return -1
}

// ---- READ ---------------------------------------------------------------------------------

async function readData(lu: LuContext, lba: number, blocks: number): Promise<ScsiResult> {
  const gate = lu.locks.readGate(lba, blocks)
  if (gate) await gate
  const dataIn = await lu.device.read(lba * lu.blockSize, blocks * lu.blockSize)
  return { status: ScsiStatus.Good, dataIn }
}

function read(lu: LuContext, cdb: Buffer, l: RwLayout, hasFlags: boolean): ScsiResult | Promise<ScsiResult> {
  if (hasFlags) checkNoProtect(cdb) // RDPROTECT; DPO and FUA are accepted (nothing to bypass)
  const lba = readLba(cdb, l)
  const blocks = readBlocks(cdb, l)
  checkTransferLength(lu, blocks, l)
  checkRange(lu, lba, blocks)
  if (blocks === 0) return GOOD
  return readData(lu, lba, blocks)
}

export const read6 = (lu: LuContext, req: ScsiRequest) => read(lu, req.cdb, RW6, false)
export const read10 = (lu: LuContext, req: ScsiRequest) => read(lu, req.cdb, RW10, true)
export const read12 = (lu: LuContext, req: ScsiRequest) => read(lu, req.cdb, RW12, true)
export const read16 = (lu: LuContext, req: ScsiRequest) => read(lu, req.cdb, RW16, true)

// ---- WRITE --------------------------------------------------------------------------------

/** Validates a WRITE CDB; returns the Data-Out length it asks for. */
function planWrite(lu: LuContext, cdb: Buffer, l: RwLayout, hasFlags: boolean): number {
  if (hasFlags) checkNoProtect(cdb) // WRPROTECT
  const lba = readLba(cdb, l)
  const blocks = readBlocks(cdb, l)
  checkTransferLength(lu, blocks, l)
  checkRange(lu, lba, blocks)
  checkWritable(lu)
  return blocks * lu.blockSize
}

function write(lu: LuContext, req: ScsiRequest, l: RwLayout, hasFlags: boolean): ScsiResult | Promise<ScsiResult> {
  const cdb = req.cdb
  if (planWrite(lu, cdb, l, hasFlags) === 0) return GOOD
  const n = usableBlocks(lu, req.dataOut, readBlocks(cdb, l))
  if (n === 0) return GOOD
  const fua = (hasFlags && (cdb[1] & FUA) !== 0) || !lu.modes.writeCacheEnabled
  const lba = readLba(cdb, l)
  const data = prefix(req.dataOut, n * lu.blockSize)
  return lu.locks.shared(lba, n, () => lu.device.write(lba * lu.blockSize, data, { fua })).then(toGood)
}

export const planWrite6 = (lu: LuContext, cdb: Buffer) => planWrite(lu, cdb, RW6, false)
export const planWrite10 = (lu: LuContext, cdb: Buffer) => planWrite(lu, cdb, RW10, true)
export const planWrite12 = (lu: LuContext, cdb: Buffer) => planWrite(lu, cdb, RW12, true)
export const planWrite16 = (lu: LuContext, cdb: Buffer) => planWrite(lu, cdb, RW16, true)
export const write6 = (lu: LuContext, req: ScsiRequest) => write(lu, req, RW6, false)
export const write10 = (lu: LuContext, req: ScsiRequest) => write(lu, req, RW10, true)
export const write12 = (lu: LuContext, req: ScsiRequest) => write(lu, req, RW12, true)
export const write16 = (lu: LuContext, req: ScsiRequest) => write(lu, req, RW16, true)

// ---- VERIFY -------------------------------------------------------------------------------

/** BYTCHK (byte 1 bits 2..1): 0 = medium check only, 1 = compare with Data-Out; 2, 3 unsupported. */
function byteCheck(cdb: Buffer): number {
  const bytchk = (cdb[1] >> 1) & 0x03
  if (bytchk > 1) throw invalidFieldInCdb(1, 2)
  return bytchk
}

function planVerify(lu: LuContext, cdb: Buffer, l: RwLayout): number {
  checkNoProtect(cdb) // VRPROTECT
  const bytchk = byteCheck(cdb)
  const lba = readLba(cdb, l)
  const blocks = readBlocks(cdb, l)
  if (bytchk !== 0) checkTransferLength(lu, blocks, l)
  checkRange(lu, lba, blocks)
  return bytchk === 0 ? 0 : blocks * lu.blockSize
}

/** Read and compare; the caller orders it against atomic commands (readGate or a range lock). */
async function compareWithMedium(lu: LuContext, lba: number, expected: Buffer): Promise<ScsiResult> {
  const medium = await lu.device.read(lba * lu.blockSize, expected.length)
  const off = firstDifference(medium, expected, expected.length)
  if (off >= 0) throw miscompare(off)
  return GOOD
}

/**
 * BYTCHK=0: the range is checked and nothing is read (the backend has no medium errors to find
 * that a later READ would not report). BYTCHK=1: the blocks are read and compared with Data-Out;
 * a difference ends the command with MISCOMPARE, INFORMATION = offset into the Data-Out buffer.
 */
function verify(lu: LuContext, req: ScsiRequest, l: RwLayout): ScsiResult | Promise<ScsiResult> {
  const cdb = req.cdb
  if (planVerify(lu, cdb, l) === 0) return GOOD
  const n = usableBlocks(lu, req.dataOut, readBlocks(cdb, l))
  if (n === 0) return GOOD
  const lba = readLba(cdb, l)
  const expected = prefix(req.dataOut, n * lu.blockSize)
  const gate = lu.locks.readGate(lba, n)
  if (gate) return gate.then(() => compareWithMedium(lu, lba, expected))
  return compareWithMedium(lu, lba, expected)
}

export const planVerify10 = (lu: LuContext, cdb: Buffer) => planVerify(lu, cdb, RW10)
export const planVerify12 = (lu: LuContext, cdb: Buffer) => planVerify(lu, cdb, RW12)
export const planVerify16 = (lu: LuContext, cdb: Buffer) => planVerify(lu, cdb, RW16)
export const verify10 = (lu: LuContext, req: ScsiRequest) => verify(lu, req, RW10)
export const verify12 = (lu: LuContext, req: ScsiRequest) => verify(lu, req, RW12)
export const verify16 = (lu: LuContext, req: ScsiRequest) => verify(lu, req, RW16)

// ---- WRITE AND VERIFY ---------------------------------------------------------------------

function planWriteVerify(lu: LuContext, cdb: Buffer, l: RwLayout): number {
  checkNoProtect(cdb) // WRPROTECT
  byteCheck(cdb)
  const lba = readLba(cdb, l)
  const blocks = readBlocks(cdb, l)
  checkTransferLength(lu, blocks, l)
  checkRange(lu, lba, blocks)
  checkWritable(lu)
  return blocks * lu.blockSize
}

async function writeThenCompare(lu: LuContext, lba: number, data: Buffer): Promise<ScsiResult> {
  await lu.device.write(lba * lu.blockSize, data, { fua: true })
  return compareWithMedium(lu, lba, data)
}

/** The write is always durable (FUA): verification is of the medium, not of a cache. */
function writeVerify(lu: LuContext, req: ScsiRequest, l: RwLayout): ScsiResult | Promise<ScsiResult> {
  const cdb = req.cdb
  if (planWriteVerify(lu, cdb, l) === 0) return GOOD
  const n = usableBlocks(lu, req.dataOut, readBlocks(cdb, l))
  if (n === 0) return GOOD
  const lba = readLba(cdb, l)
  const data = prefix(req.dataOut, n * lu.blockSize)
  if (byteCheck(cdb) === 1) return lu.locks.shared(lba, n, () => writeThenCompare(lu, lba, data))
  return lu.locks.shared(lba, n, () => lu.device.write(lba * lu.blockSize, data, { fua: true })).then(toGood)
}

export const planWriteVerify10 = (lu: LuContext, cdb: Buffer) => planWriteVerify(lu, cdb, RW10)
export const planWriteVerify12 = (lu: LuContext, cdb: Buffer) => planWriteVerify(lu, cdb, RW12)
export const planWriteVerify16 = (lu: LuContext, cdb: Buffer) => planWriteVerify(lu, cdb, RW16)
export const writeVerify10 = (lu: LuContext, req: ScsiRequest) => writeVerify(lu, req, RW10)
export const writeVerify12 = (lu: LuContext, req: ScsiRequest) => writeVerify(lu, req, RW12)
export const writeVerify16 = (lu: LuContext, req: ScsiRequest) => writeVerify(lu, req, RW16)

// ---- READ CAPACITY ------------------------------------------------------------------------

export function readCapacity10(lu: LuContext, req: ScsiRequest): ScsiResult {
  const cdb = req.cdb
  // PMI=0 with a non-zero LBA is invalid (SBC-2; obsolete in SBC-3 but still checked by tests).
  if ((cdb[8] & 0x01) === 0 && cdb.readUInt32BE(2) !== 0) throw invalidFieldInCdb(2)
  const b = Buffer.alloc(8)
  const last = lu.capacityBlocks - 1
  b.writeUInt32BE(last >= 0xffffffff ? 0xffffffff : last, 0)
  b.writeUInt32BE(lu.blockSize, 4)
  return goodWithData(b)
}

export function readCapacity16(lu: LuContext, req: ScsiRequest): ScsiResult {
  const cdb = req.cdb
  const alloc = cdb.readUInt32BE(10)
  if ((cdb[14] & 0x01) === 0 && readLba64(cdb, 2) !== 0) throw invalidFieldInCdb(2)
  if (alloc === 0) return GOOD
  const b = Buffer.alloc(32)
  const last = lu.capacityBlocks - 1
  b.writeUInt32BE(Math.floor(last / 0x1_0000_0000), 0)
  b.writeUInt32BE(last >>> 0, 4)
  b.writeUInt32BE(lu.blockSize, 8)
  // byte 12: P_TYPE=0 PROT_EN=0; byte 13: P_I_EXPONENT=0, LOGICAL BLOCKS PER PHYSICAL BLOCK
  // EXPONENT (SBC-3 §5.16.2)
  b[13] = lu.physicalBlockExponent & 0x0f
  // bytes 14..15: LBPME=1 (thin provisioned), LBPRZ=1 (deallocated blocks read zeros),
  // LOWEST ALIGNED LBA=0: LBA 0 is byte 0 of the storage, the start of a physical block.
  b[14] = 0x80 | 0x40
  return goodWithData(clip(b, alloc))
}

// ---- SYNCHRONIZE CACHE --------------------------------------------------------------------

/** Range checked (NUMBER OF BLOCKS 0 = to the end); the whole device is flushed either way. */
async function synchronizeCache(lu: LuContext, lba: number, blocks: number): Promise<ScsiResult> {
  if (lba >= lu.capacityBlocks) throw lbaOutOfRange()
  checkRange(lu, lba, blocks)
  await lu.device.flush()
  return GOOD
}

export function synchronizeCache10(lu: LuContext, req: ScsiRequest): Promise<ScsiResult> {
  return synchronizeCache(lu, req.cdb.readUInt32BE(2), req.cdb.readUInt16BE(7))
}

export function synchronizeCache16(lu: LuContext, req: ScsiRequest): Promise<ScsiResult> {
  return synchronizeCache(lu, readLba64(req.cdb, 2), req.cdb.readUInt32BE(10))
}

// ---- PRE-FETCH ----------------------------------------------------------------------------

/**
 * PRE-FETCH (10/16): the blocks are read into the host's page cache. CONDITION MET says they
 * all fit (at most MAXIMUM PREFETCH LENGTH); GOOD that they did not. IMMED=1 answers at once and
 * reads behind.
 */
async function prefetch(lu: LuContext, cdb: Buffer, lba: number, blocks: number): Promise<ScsiResult> {
  if (cdb[1] & 0xfd) throw invalidFieldInCdb(1, 31 - Math.clz32(cdb[1] & 0xfd)) // only IMMED
  checkRange(lu, lba, blocks)
  const fits = blocks <= lu.limits.maxPrefetchBlocks
  const n = Math.min(blocks, lu.limits.maxPrefetchBlocks)
  const status = fits ? ScsiStatus.ConditionMet : ScsiStatus.Good
  if (n === 0) return { status }
  const warm = lu.device.read(lba * lu.blockSize, n * lu.blockSize).then(() => undefined)
  if (cdb[1] & 0x02) {
    warm.catch(() => undefined)
    return { status }
  }
  await warm
  return { status }
}

export function prefetch10(lu: LuContext, req: ScsiRequest): Promise<ScsiResult> {
  return prefetch(lu, req.cdb, req.cdb.readUInt32BE(2), req.cdb.readUInt16BE(7))
}

export function prefetch16(lu: LuContext, req: ScsiRequest): Promise<ScsiResult> {
  return prefetch(lu, req.cdb, readLba64(req.cdb, 2), req.cdb.readUInt32BE(10))
}

// ---- READ DEFECT DATA ---------------------------------------------------------------------

/** No defects: empty primary and grown lists, in the format asked for. */
export function readDefectData10(_lu: LuContext, req: ScsiRequest): ScsiResult {
  const cdb = req.cdb
  const alloc = cdb.readUInt16BE(7)
  const b = Buffer.alloc(4)
  b[1] = cdb[2] & 0x1f // PLISTV GLISTV (the lists asked for are valid, and empty), FORMAT
  return alloc === 0 ? GOOD : goodWithData(clip(b, alloc))
}

export function readDefectData12(_lu: LuContext, req: ScsiRequest): ScsiResult {
  const cdb = req.cdb
  const alloc = cdb.readUInt32BE(6)
  const b = Buffer.alloc(8)
  b[1] = cdb[1] & 0x1f
  return alloc === 0 ? GOOD : goodWithData(clip(b, alloc))
}
