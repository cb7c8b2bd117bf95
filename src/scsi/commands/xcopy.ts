// EXTENDED COPY (LID1) and RECEIVE COPY RESULTS (SPC-4 §6.4, §6.18): block-to-block copies
// inside the target, as VMware's XCOPY (full copy) uses them. Copy targets (CSCDs) are named by
// identification descriptors (type E4h) carrying an NAA designator of a logical unit; the unit
// itself is always reachable, other units of the node when the unit was given a lookup
// (DiskLogicalUnitOptions.copyTargets). Segments are block → block (type 02h).
//
// The copy runs while the command is outstanding: COPY STATUS afterwards reports it completed.

import { checkRange, checkWritable, clip, readLba64 } from '../cdb.js'
import type { LuContext } from '../context.js'
import {
  Asc,
  ScsiError,
  SenseKey,
  invalidFieldInCdb,
  invalidFieldInParameterList,
  parameterListLengthError,
} from '../sense.js'
import type { Nexus, ScsiRequest, ScsiResult } from '../types.js'
import { GOOD, goodWithData } from './results.js'

export const XCOPY_LIMITS = Object.freeze({
  maxTargetDescriptors: 8,
  maxSegmentDescriptors: 64,
  /** Target and segment descriptors together. */
  maxDescriptorListLength: 8 * 32 + 64 * 28,
  maxInlineData: 0,
  totalConcurrentCopies: 16,
})

const TARGET_DESC_LEN = 32
const IDENTIFICATION_DESCRIPTOR = 0xe4
const BLOCK_TO_BLOCK = 0x02
const CHUNK_BYTES = 1024 * 1024

/** What RECEIVE COPY RESULTS reports about one copy operation. */
interface CopyRecord {
  done: boolean
  failed: boolean
  segmentsProcessed: number
  bytes: number
}

/** Copy operations of one logical unit, by I_T nexus and LIST IDENTIFIER (kept for a while). */
export class CopyRegistry {
  private readonly records = new Map<string, CopyRecord>()

  private key(n: Nexus, listId: number): string {
    return `${n.key}#${listId}`
  }

  get(n: Nexus, listId: number): CopyRecord | undefined {
    return this.records.get(this.key(n, listId))
  }

  start(n: Nexus, listId: number): CopyRecord {
    const k = this.key(n, listId)
    const prev = this.records.get(k)
    if (prev !== undefined && !prev.done) throw ScsiError.of(SenseKey.IllegalRequest, Asc.OperationInProgress)
    const r: CopyRecord = { done: false, failed: false, segmentsProcessed: 0, bytes: 0 }
    this.records.delete(k)
    this.records.set(k, r)
    // Keep the most recent results only.
    while (this.records.size > 256) {
      const oldest = this.records.keys().next().value as string
      this.records.delete(oldest)
    }
    return r
  }

  forget(n: Nexus): void {
    for (const k of [...this.records.keys()]) if (k.startsWith(`${n.key}#`)) this.records.delete(k)
  }
}

function copyAborted(pair: Asc, details: { fieldPointer?: number; cd?: boolean } = {}): ScsiError {
  return ScsiError.of(SenseKey.CopyAborted, pair, details)
}

// ---- EXTENDED COPY ------------------------------------------------------------------------

export function planExtendedCopy(_lu: LuContext, cdb: Buffer): number {
  return cdb.readUInt32BE(10)
}

interface Segment {
  src: LuContext
  dst: LuContext
  blocks: number
  srcLba: number
  dstLba: number
}

/** Resolve an identification (E4h) target descriptor to a logical unit. */
function resolveTarget(lu: LuContext, d: Buffer, off: number): LuContext {
  const type = d[0]
  if (type !== IDENTIFICATION_DESCRIPTOR) {
    throw ScsiError.of(SenseKey.IllegalRequest, Asc.UnsupportedTargetDescriptorTypeCode, { fieldPointer: off, cd: false })
  }
  // LU ID TYPE (byte 1 bits 7..6) is not used here: the designator names the unit.
  if (d[1] & 0x20) throw copyAborted(Asc.CopyTargetDeviceNotReachable) // NUL: no null devices
  if ((d[1] & 0x1f) !== 0) throw invalidFieldInParameterList(off + 1, 4) // peripheral type: block device
  const codeSet = d[4] & 0x0f
  const assoc = (d[5] >> 4) & 0x03
  const desigType = d[5] & 0x0f
  const len = d[7]
  if (assoc !== 0 || desigType !== 0x3 || codeSet !== 0x1 || len > 20) throw copyAborted(Asc.CopyTargetDeviceNotReachable)
  const designator = d.subarray(8, 8 + len)
  const found = designator.equals(lu.identity.naa) ? lu : lu.findCopyTarget(designator)
  if (found === undefined) throw copyAborted(Asc.CopyTargetDeviceNotReachable)
  const diskBlockLength = d.readUIntBE(29, 3)
  if (diskBlockLength !== 0 && diskBlockLength !== found.blockSize) throw invalidFieldInParameterList(off + 29)
  return found
}

/** Decode and validate the whole parameter list before copying anything. */
export function decodeExtendedCopy(lu: LuContext, data: Buffer, len: number): { listId: number; usage: number; segments: Segment[] } {
  if (len < 16 || data.length < len) throw parameterListLengthError()
  const listId = data[0]
  const usage = (data[1] >> 3) & 0x03
  if (data[1] & 0x20) throw invalidFieldInParameterList(1, 5) // STR: no stream devices
  const tdLen = data.readUInt16BE(2)
  const sdLen = data.readUInt32BE(8)
  const inline = data.readUInt32BE(12)
  if (tdLen + sdLen > XCOPY_LIMITS.maxDescriptorListLength) throw parameterListLengthError()
  if (16 + tdLen + sdLen + inline !== len) throw parameterListLengthError()
  if (inline > XCOPY_LIMITS.maxInlineData) throw ScsiError.of(SenseKey.IllegalRequest, Asc.InlineDataLengthExceeded)
  if (tdLen % TARGET_DESC_LEN !== 0) throw parameterListLengthError()
  if (tdLen / TARGET_DESC_LEN > XCOPY_LIMITS.maxTargetDescriptors) {
    throw ScsiError.of(SenseKey.IllegalRequest, Asc.TooManyTargetDescriptors)
  }
  // Segment descriptors are counted first (a list with too many of them is refused as such).
  let count = 0
  for (let off = 16 + tdLen; off < 16 + tdLen + sdLen; count++) {
    if (off + 4 > 16 + tdLen + sdLen) throw parameterListLengthError()
    off += 4 + data.readUInt16BE(off + 2)
  }
  if (count > XCOPY_LIMITS.maxSegmentDescriptors) throw ScsiError.of(SenseKey.IllegalRequest, Asc.TooManySegmentDescriptors)

  const targets: LuContext[] = []
  for (let off = 16; off < 16 + tdLen; off += TARGET_DESC_LEN) {
    targets.push(resolveTarget(lu, data.subarray(off, off + TARGET_DESC_LEN), off))
  }
  const segments: Segment[] = []
  for (let off = 16 + tdLen; off < 16 + tdLen + sdLen; ) {
    const type = data[off]
    const dlen = data.readUInt16BE(off + 2)
    if (off + 4 + dlen > 16 + tdLen + sdLen) throw parameterListLengthError()
    if (type !== BLOCK_TO_BLOCK) {
      throw ScsiError.of(SenseKey.IllegalRequest, Asc.UnsupportedSegmentDescriptorTypeCode, { fieldPointer: off, cd: false })
    }
    if (dlen !== 0x18) throw invalidFieldInParameterList(off + 2)
    const s = data.readUInt16BE(off + 4)
    const d = data.readUInt16BE(off + 6)
    if (s >= targets.length || d >= targets.length) throw copyAborted(Asc.UnreachableCopyTarget)
    segments.push({
      src: targets[s],
      dst: targets[d],
      blocks: data.readUInt16BE(off + 10),
      srcLba: readLba64(data, off + 12),
      dstLba: readLba64(data, off + 20),
    })
    off += 4 + dlen
  }
  return { listId, usage, segments }
}

async function copySegment(seg: Segment, record: CopyRecord): Promise<void> {
  const { src, dst, blocks } = seg
  if (blocks === 0) return
  try {
    checkRange(src, seg.srcLba, blocks)
    checkRange(dst, seg.dstLba, blocks)
  } catch {
    // The segment does not fit a copy target: the copy ends (libiscsi accepts no more precise
    // additional sense code than none here).
    throw copyAborted(Asc.NoAdditionalSense)
  }
  checkWritable(dst)
  const per = Math.max(1, Math.floor(CHUNK_BYTES / src.blockSize))
  const fua = !dst.modes.writeCacheEnabled
  for (let done = 0; done < blocks; ) {
    const n = Math.min(per, blocks - done)
    const s = seg.srcLba + done
    const d = seg.dstLba + done
    const gate = src.locks.readGate(s, n)
    if (gate) await gate
    const chunk = await src.device.read(s * src.blockSize, n * src.blockSize)
    await dst.locks.shared(d, n, () => dst.device.write(d * dst.blockSize, chunk, { fua }))
    done += n
    record.bytes += chunk.length
  }
}

export async function extendedCopy(lu: LuContext, req: ScsiRequest): Promise<ScsiResult> {
  const len = planExtendedCopy(lu, req.cdb)
  if (len === 0) return GOOD
  const { listId, usage, segments } = decodeExtendedCopy(lu, req.dataOut, len)
  // LIST ID USAGE 11b: the list identifier means nothing and must be zero.
  if (usage === 0x3 && listId !== 0) throw invalidFieldInParameterList(0)
  const record = usage === 0x3 ? { done: false, failed: false, segmentsProcessed: 0, bytes: 0 } : lu.copies.start(req.nexus, listId)
  try {
    for (const seg of segments) {
      await copySegment(seg, record)
      record.segmentsProcessed++
    }
  } catch (e) {
    record.failed = true
    throw e
  } finally {
    record.done = true
  }
  return GOOD
}

// ---- RECEIVE COPY RESULTS -----------------------------------------------------------------

function operatingParameters(lu: LuContext): Buffer {
  const types = [BLOCK_TO_BLOCK, IDENTIFICATION_DESCRIPTOR]
  const b = Buffer.alloc(44 + types.length)
  b.writeUInt32BE(b.length - 4, 0) // AVAILABLE DATA
  b[4] = 0x01 // SNLID: supports the list identifier not being used
  b.writeUInt16BE(XCOPY_LIMITS.maxTargetDescriptors, 8)
  b.writeUInt16BE(XCOPY_LIMITS.maxSegmentDescriptors, 10)
  b.writeUInt32BE(XCOPY_LIMITS.maxDescriptorListLength, 12)
  b.writeUInt32BE(0xffff * lu.blockSize, 16) // MAXIMUM SEGMENT LENGTH (bytes)
  b.writeUInt32BE(XCOPY_LIMITS.maxInlineData, 20)
  b.writeUInt32BE(0, 24) // HELD DATA LIMIT: no held data
  b.writeUInt16BE(XCOPY_LIMITS.totalConcurrentCopies, 34)
  b[36] = XCOPY_LIMITS.totalConcurrentCopies // MAXIMUM CONCURRENT COPIES
  b[37] = lu.blockShift // DATA SEGMENT GRANULARITY (log2 bytes)
  b[38] = 0
  b[39] = 0
  b[43] = types.length
  types.forEach((t, i) => (b[44 + i] = t))
  return b
}

export function receiveCopyResults(lu: LuContext, req: ScsiRequest): ScsiResult {
  const cdb = req.cdb
  const sa = cdb[1] & 0x1f
  const listId = cdb[2]
  const alloc = cdb.readUInt32BE(10)
  let data: Buffer
  switch (sa) {
    case 0x00: {
      // COPY STATUS
      const r = lu.copies.get(req.nexus, listId)
      if (r === undefined) throw invalidFieldInCdb(2)
      data = Buffer.alloc(12)
      data.writeUInt32BE(8, 0)
      data[4] = r.done ? (r.failed ? 0x02 : 0x01) : 0x00
      data.writeUInt16BE(Math.min(r.segmentsProcessed, 0xffff), 5)
      data[7] = 0x00 // TRANSFER COUNT UNITS: bytes
      data.writeUInt32BE(Math.min(r.bytes, 0xffffffff), 8)
      break
    }
    case 0x01: {
      // RECEIVE DATA: no segment type here holds data for the application client.
      if (lu.copies.get(req.nexus, listId) === undefined) throw invalidFieldInCdb(2)
      data = Buffer.alloc(4)
      break
    }
    case 0x03:
      data = operatingParameters(lu)
      break
    case 0x04: {
      // FAILED SEGMENT DETAILS: the sense data of a failed copy is returned with the command.
      const r = lu.copies.get(req.nexus, listId)
      if (r === undefined) throw invalidFieldInCdb(2)
      data = Buffer.alloc(60)
      data.writeUInt32BE(56, 0)
      data[56] = r.done ? (r.failed ? 0x02 : 0x01) : 0x00
      break
    }
    default:
      throw invalidFieldInCdb(1, 4)
  }
  return alloc === 0 ? GOOD : goodWithData(clip(data, alloc))
}

// ---- Third-party copy VPD page (SPC-4 §7.8.17) ----------------------------------------------

function descriptor(type: number, body: Buffer): Buffer {
  const padded = (body.length + 3) & ~3
  const b = Buffer.alloc(4 + padded)
  b.writeUInt16BE(type, 0)
  b.writeUInt16BE(padded, 2)
  body.copy(b, 4)
  return b
}

/** The page body (after the 4-byte VPD header). */
export function thirdPartyCopyPage(lu: LuContext): Buffer {
  // Supported Commands: EXTENDED COPY (LID1) and RECEIVE COPY RESULTS.
  const cmds = Buffer.from([0x83, 1, 0x00, 0x84, 4, 0x00, 0x01, 0x03, 0x04])
  const supportedCommands = descriptor(0x0001, Buffer.concat([Buffer.from([cmds.length]), cmds]))
  const param = Buffer.alloc(0x1c)
  param.writeUInt16BE(XCOPY_LIMITS.maxTargetDescriptors, 6 - 4)
  param.writeUInt16BE(XCOPY_LIMITS.maxSegmentDescriptors, 8 - 4)
  param.writeUInt32BE(XCOPY_LIMITS.maxDescriptorListLength, 10 - 4)
  param.writeUInt32BE(XCOPY_LIMITS.maxInlineData, 14 - 4)
  const parameterData = descriptor(0x0008, param)
  const supportedDescriptors = descriptor(0x0004, Buffer.from([2, BLOCK_TO_BLOCK, IDENTIFICATION_DESCRIPTOR]))
  const supportedCscdIds = descriptor(0x000c, Buffer.alloc(2))
  const general = Buffer.alloc(0x20)
  general.writeUInt32BE(XCOPY_LIMITS.totalConcurrentCopies, 4 - 4)
  general.writeUInt32BE(XCOPY_LIMITS.totalConcurrentCopies, 8 - 4)
  general.writeUInt32BE(0xffff * lu.blockSize, 12 - 4)
  general[16 - 4] = lu.blockShift
  const generalCopy = descriptor(0x8001, general)
  return Buffer.concat([supportedCommands, parameterData, supportedDescriptors, supportedCscdIds, generalCopy])
}
