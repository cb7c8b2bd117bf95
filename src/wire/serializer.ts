// PDU encoders (RFC 7143 §11). Each encoder returns the PDU as segments ready for
// socket.cork()/write() or writev:
//
//   [header]                         no data segment
//   [header, data]                   data needs no padding and no data digest
//   [header, data, padAndDigest]     padding (RFC 7143 §11.2.4) and/or data digest (§11.2.3)
//
// `header` is a fresh buffer holding BHS + AHS + header digest; `data` is the caller's buffer,
// never copied (do not modify it until it has been written). encodeToBuffer() concatenates the
// segments for tests and cold paths.
//
// Numeric fields are written modulo 2^32 (or 2^16 / 2^8 for narrower fields); the caller is
// responsible for their ranges. Every reserved byte is written as zero; the bits RFC 7143 fixes
// to 1 (byte 1 bit 0x80 of most target PDUs, NOP-Out, TMF, Logout and SNACK) are set.

import {
  BHS_LENGTH,
  Opcode,
  RESERVED_TAG,
  type AdditionalHeader,
  type AsyncMessage,
  type DataIn,
  type DataOut,
  type LoginRequest,
  type LoginResponse,
  type LogoutRequest,
  type LogoutResponse,
  type NopIn,
  type NopOut,
  type Pdu,
  type R2T,
  type Reject,
  type ScsiCommand,
  type ScsiResponse,
  type Snack,
  type TaskMgmtRequest,
  type TaskMgmtResponse,
  type TextRequest,
  type TextResponse,
} from './pdu.js'
import { crc32c, writeDigest, DIGEST_LENGTH } from './digest.js'
import { AHS_TYPE_EXTENDED_CDB } from './parser.js'

export interface EncodeOptions {
  /** HeaderDigest=CRC32C in effect on the connection. */
  headerDigest: boolean
  /** DataDigest=CRC32C in effect on the connection. */
  dataDigest: boolean
}

export const NO_DIGESTS: EncodeOptions = Object.freeze({ headerDigest: false, dataDigest: false })

const MAX_DATA_SEGMENT = 0xffffff
const MAX_TOTAL_AHS = 255 * 4

/** Zero padding for the no-data-digest case; never written to. */
const PADS: readonly Buffer[] = [Buffer.alloc(0), Buffer.alloc(1), Buffer.alloc(2), Buffer.alloc(3)]

// ---------------------------------------------------------------------------------------------
// Low-level writers.

function w32(h: Buffer, o: number, v: number): void {
  h[o] = v >>> 24
  h[o + 1] = v >>> 16
  h[o + 2] = v >>> 8
  h[o + 3] = v
}

function w16(h: Buffer, o: number, v: number): void {
  h[o] = v >>> 8
  h[o + 1] = v
}

function zero(h: Buffer, from: number, to: number): void {
  for (let i = from; i < to; i++) h[i] = 0
}

/** Bytes 0-3: opcode byte (I bit 0x40), flags byte, two opcode-specific bytes. */
function w0(h: Buffer, opcode: number, immediate: boolean, flags: number, b2: number, b3: number): void {
  h[0] = immediate ? opcode | 0x40 : opcode
  h[1] = flags
  h[2] = b2
  h[3] = b3
}

/** Bytes 8-15: the LUN as a big-endian u64 (RFC 7143 §11.2.1). */
function wLun(h: Buffer, o: number, lun: bigint): void {
  if (lun === 0n) {
    zero(h, o, o + 8)
    return
  }
  const v = BigInt.asUintN(64, lun)
  w32(h, o, Number(v >> 32n))
  w32(h, o + 4, Number(v & 0xffffffffn))
}

function wIsid(h: Buffer, isid: string): void {
  if (isid.length !== 12 || !/^[0-9a-fA-F]{12}$/.test(isid)) {
    throw new RangeError(`ISID must be 12 hex digits, got ${JSON.stringify(isid)}`)
  }
  h.write(isid, 8, 6, 'hex')
}

function ahsBytes(list: readonly AdditionalHeader[], skipType = -1): number {
  let total = 0
  for (let i = 0; i < list.length; i++) {
    const a = list[i]
    if (a.type === skipType) continue
    // AHSLength(2) + AHSType(1) + AHSLength bytes (specific byte + bytes), padded to 4.
    total += (4 + a.bytes.length + 3) & ~3
  }
  return total
}

function writeOneAhs(h: Buffer, o: number, type: number, specific: number, bytes: Uint8Array): number {
  const length = 1 + bytes.length
  if (length > 0xffff) throw new RangeError('AHS too long')
  w16(h, o, length)
  h[o + 2] = type
  h[o + 3] = specific
  h.set(bytes, o + 4)
  const end = o + 4 + bytes.length
  const padded = (end + 3) & ~3
  zero(h, end, padded)
  return padded
}

/**
 * Allocate the header buffer and write bytes 4-7 (TotalAHSLength, DataSegmentLength) and the
 * AHSs. `extra` is an AHS the encoder synthesises first (the Extended CDB AHS).
 */
function allocHeader(
  ahs: readonly AdditionalHeader[],
  dataLength: number,
  opts: EncodeOptions,
  skipType = -1,
  extraAhs?: Uint8Array,
): Buffer {
  if (dataLength > MAX_DATA_SEGMENT) {
    throw new RangeError(`data segment of ${dataLength} bytes exceeds DataSegmentLength (24 bits)`)
  }
  let ahsLength = ahs.length === 0 ? 0 : ahsBytes(ahs, skipType)
  if (extraAhs !== undefined) ahsLength += (4 + extraAhs.length + 3) & ~3
  if (ahsLength > MAX_TOTAL_AHS) throw new RangeError(`AHS total of ${ahsLength} bytes exceeds 1020`)
  const h = Buffer.allocUnsafe(BHS_LENGTH + ahsLength + (opts.headerDigest ? DIGEST_LENGTH : 0))
  w32(h, 4, ((ahsLength >>> 2) << 24) | dataLength)
  let o = BHS_LENGTH
  if (extraAhs !== undefined) o = writeOneAhs(h, o, AHS_TYPE_EXTENDED_CDB, 0, extraAhs)
  for (let i = 0; i < ahs.length; i++) {
    const a = ahs[i]
    if (a.type === skipType) continue
    o = writeOneAhs(h, o, a.type, a.specific, a.bytes)
  }
  return h
}

/** Header digest, then the data segment's padding and digest. */
function finish(h: Buffer, data: Buffer, opts: EncodeOptions): Buffer[] {
  if (opts.headerDigest) {
    const at = h.length - DIGEST_LENGTH
    writeDigest(h, at, crc32c(h.subarray(0, at)))
  }
  const length = data.length
  if (length === 0) return [h]
  const pad = (4 - (length & 3)) & 3
  if (!opts.dataDigest) return pad === 0 ? [h, data] : [h, data, PADS[pad]]
  const tail = Buffer.allocUnsafe(pad + DIGEST_LENGTH)
  let crc = crc32c(data)
  if (pad !== 0) {
    zero(tail, 0, pad)
    crc = crc32c(PADS[pad], crc)
  }
  writeDigest(tail, pad, crc)
  return [h, data, tail]
}

// ---------------------------------------------------------------------------------------------
// Initiator → target PDUs.

/** NOP-Out (RFC 7143 §11.18). */
export function encodeNopOut(p: NopOut, opts: EncodeOptions = NO_DIGESTS): Buffer[] {
  const h = allocHeader(p.ahs, p.data.length, opts)
  w0(h, Opcode.NopOut, p.immediate, 0x80, 0, 0)
  wLun(h, 8, p.lun)
  w32(h, 16, p.itt)
  w32(h, 20, p.ttt)
  w32(h, 24, p.cmdSN)
  w32(h, 28, p.expStatSN)
  zero(h, 32, 48)
  return finish(h, p.data, opts)
}

/**
 * SCSI Command (RFC 7143 §11.3). A CDB longer than 16 bytes is split into the BHS field and an
 * Extended CDB AHS (§11.2.2.3), which is emitted first; type-1 entries in `ahs` are ignored.
 */
export function encodeScsiCommand(p: ScsiCommand, opts: EncodeOptions = NO_DIGESTS): Buffer[] {
  const cdb = p.cdb
  const long = cdb.length > 16
  const h = long
    ? allocHeader(p.ahs, p.data.length, opts, AHS_TYPE_EXTENDED_CDB, cdb.subarray(16))
    : allocHeader(p.ahs, p.data.length, opts, AHS_TYPE_EXTENDED_CDB)
  let flags = p.attribute & 0x07
  if (p.final) flags |= 0x80
  if (p.read) flags |= 0x40
  if (p.write) flags |= 0x20
  w0(h, Opcode.ScsiCommand, p.immediate, flags, 0, 0)
  wLun(h, 8, p.lun)
  w32(h, 16, p.itt)
  w32(h, 20, p.expectedDataTransferLength)
  w32(h, 24, p.cmdSN)
  w32(h, 28, p.expStatSN)
  if (long) {
    h.set(cdb.subarray(0, 16), 32)
  } else {
    h.set(cdb, 32)
    zero(h, 32 + cdb.length, 48)
  }
  return finish(h, p.data, opts)
}

/** SCSI Task Management Function Request (RFC 7143 §11.5). */
export function encodeTaskMgmtRequest(p: TaskMgmtRequest, opts: EncodeOptions = NO_DIGESTS): Buffer[] {
  const h = allocHeader(p.ahs, p.data.length, opts)
  w0(h, Opcode.TaskMgmtRequest, p.immediate, 0x80 | (p.function & 0x7f), 0, 0)
  wLun(h, 8, p.lun)
  w32(h, 16, p.itt)
  w32(h, 20, p.referencedTaskTag)
  w32(h, 24, p.cmdSN)
  w32(h, 28, p.expStatSN)
  w32(h, 32, p.refCmdSN)
  w32(h, 36, p.expDataSN)
  zero(h, 40, 48)
  return finish(h, p.data, opts)
}

/** Login Request (RFC 7143 §11.12). The I bit is written as given (the RFC requires 1). */
export function encodeLoginRequest(p: LoginRequest, opts: EncodeOptions = NO_DIGESTS): Buffer[] {
  const h = allocHeader(p.ahs, p.data.length, opts)
  w0(h, Opcode.LoginRequest, p.immediate, loginFlags(p), p.versionMax, p.versionMin)
  wIsid(h, p.isid)
  w16(h, 14, p.tsih)
  w32(h, 16, p.itt)
  w16(h, 20, p.cid)
  w16(h, 22, 0)
  w32(h, 24, p.cmdSN)
  w32(h, 28, p.expStatSN)
  zero(h, 32, 48)
  return finish(h, p.data, opts)
}

/** Text Request (RFC 7143 §11.10). */
export function encodeTextRequest(p: TextRequest, opts: EncodeOptions = NO_DIGESTS): Buffer[] {
  const h = allocHeader(p.ahs, p.data.length, opts)
  w0(h, Opcode.TextRequest, p.immediate, (p.final ? 0x80 : 0) | (p.continue ? 0x40 : 0), 0, 0)
  wLun(h, 8, p.lun)
  w32(h, 16, p.itt)
  w32(h, 20, p.ttt)
  w32(h, 24, p.cmdSN)
  w32(h, 28, p.expStatSN)
  zero(h, 32, 48)
  return finish(h, p.data, opts)
}

/** SCSI Data-Out (RFC 7143 §11.7). */
export function encodeDataOut(p: DataOut, opts: EncodeOptions = NO_DIGESTS): Buffer[] {
  const h = allocHeader(p.ahs, p.data.length, opts)
  w0(h, Opcode.DataOut, p.immediate, p.final ? 0x80 : 0, 0, 0)
  wLun(h, 8, p.lun)
  w32(h, 16, p.itt)
  w32(h, 20, p.ttt)
  w32(h, 24, 0)
  w32(h, 28, p.expStatSN)
  w32(h, 32, 0)
  w32(h, 36, p.dataSN)
  w32(h, 40, p.bufferOffset)
  w32(h, 44, 0)
  return finish(h, p.data, opts)
}

/** Logout Request (RFC 7143 §11.14). */
export function encodeLogoutRequest(p: LogoutRequest, opts: EncodeOptions = NO_DIGESTS): Buffer[] {
  const h = allocHeader(p.ahs, p.data.length, opts)
  w0(h, Opcode.LogoutRequest, p.immediate, 0x80 | (p.reason & 0x7f), 0, 0)
  zero(h, 8, 16)
  w32(h, 16, p.itt)
  w16(h, 20, p.cid)
  w16(h, 22, 0)
  w32(h, 24, p.cmdSN)
  w32(h, 28, p.expStatSN)
  zero(h, 32, 48)
  return finish(h, p.data, opts)
}

/** SNACK Request (RFC 7143 §11.16). */
export function encodeSnack(p: Snack, opts: EncodeOptions = NO_DIGESTS): Buffer[] {
  const h = allocHeader(p.ahs, p.data.length, opts)
  w0(h, Opcode.Snack, p.immediate, 0x80 | (p.type & 0x0f), 0, 0)
  wLun(h, 8, p.lun)
  w32(h, 16, p.itt)
  w32(h, 20, p.ttt)
  w32(h, 24, 0)
  w32(h, 28, p.expStatSN)
  zero(h, 32, 40)
  w32(h, 40, p.begRun)
  w32(h, 44, p.runLength)
  return finish(h, p.data, opts)
}

// ---------------------------------------------------------------------------------------------
// Target → initiator PDUs.

/** NOP-In (RFC 7143 §11.19). */
export function encodeNopIn(p: NopIn, opts: EncodeOptions = NO_DIGESTS): Buffer[] {
  const h = allocHeader(p.ahs, p.data.length, opts)
  w0(h, Opcode.NopIn, p.immediate, 0x80, 0, 0)
  wLun(h, 8, p.lun)
  w32(h, 16, p.itt)
  w32(h, 20, p.ttt)
  w32(h, 24, p.statSN)
  w32(h, 28, p.expCmdSN)
  w32(h, 32, p.maxCmdSN)
  zero(h, 36, 48)
  return finish(h, p.data, opts)
}

/**
 * SCSI Response (RFC 7143 §11.4). With `sense`, the data segment is SenseLength(2) + sense
 * (§11.4.7) and `data` is ignored; without it, `data` is sent as is.
 */
export function encodeScsiResponse(p: ScsiResponse, opts: EncodeOptions = NO_DIGESTS): Buffer[] {
  let data = p.data
  const sense = p.sense
  if (sense !== undefined) {
    if (sense.length > 0xffff) throw new RangeError('sense data longer than 65535 bytes')
    data = Buffer.allocUnsafe(2 + sense.length)
    w16(data, 0, sense.length)
    data.set(sense, 2)
  }
  const h = allocHeader(p.ahs, data.length, opts)
  let flags = 0x80
  if (p.bidiOverflow) flags |= 0x10
  if (p.bidiUnderflow) flags |= 0x08
  if (p.overflow) flags |= 0x04
  if (p.underflow) flags |= 0x02
  w0(h, Opcode.ScsiResponse, p.immediate, flags, p.response, p.status)
  zero(h, 8, 16)
  w32(h, 16, p.itt)
  w32(h, 20, p.snackTag)
  w32(h, 24, p.statSN)
  w32(h, 28, p.expCmdSN)
  w32(h, 32, p.maxCmdSN)
  w32(h, 36, p.expDataSN)
  w32(h, 40, p.bidiResidualCount)
  w32(h, 44, p.residualCount)
  return finish(h, data, opts)
}

/** SCSI Task Management Function Response (RFC 7143 §11.6). */
export function encodeTaskMgmtResponse(p: TaskMgmtResponse, opts: EncodeOptions = NO_DIGESTS): Buffer[] {
  const h = allocHeader(p.ahs, p.data.length, opts)
  w0(h, Opcode.TaskMgmtResponse, p.immediate, 0x80, p.response, 0)
  zero(h, 8, 16)
  w32(h, 16, p.itt)
  w32(h, 20, 0)
  w32(h, 24, p.statSN)
  w32(h, 28, p.expCmdSN)
  w32(h, 32, p.maxCmdSN)
  zero(h, 36, 48)
  return finish(h, p.data, opts)
}

/** Login Response (RFC 7143 §11.13). */
export function encodeLoginResponse(p: LoginResponse, opts: EncodeOptions = NO_DIGESTS): Buffer[] {
  const h = allocHeader(p.ahs, p.data.length, opts)
  w0(h, Opcode.LoginResponse, p.immediate, loginFlags(p), p.versionMax, p.versionActive)
  wIsid(h, p.isid)
  w16(h, 14, p.tsih)
  w32(h, 16, p.itt)
  w32(h, 20, 0)
  w32(h, 24, p.statSN)
  w32(h, 28, p.expCmdSN)
  w32(h, 32, p.maxCmdSN)
  h[36] = p.statusClass
  h[37] = p.statusDetail
  zero(h, 38, 48)
  return finish(h, p.data, opts)
}

/** Text Response (RFC 7143 §11.11). */
export function encodeTextResponse(p: TextResponse, opts: EncodeOptions = NO_DIGESTS): Buffer[] {
  const h = allocHeader(p.ahs, p.data.length, opts)
  w0(h, Opcode.TextResponse, p.immediate, (p.final ? 0x80 : 0) | (p.continue ? 0x40 : 0), 0, 0)
  wLun(h, 8, p.lun)
  w32(h, 16, p.itt)
  w32(h, 20, p.ttt)
  w32(h, 24, p.statSN)
  w32(h, 28, p.expCmdSN)
  w32(h, 32, p.maxCmdSN)
  zero(h, 36, 48)
  return finish(h, p.data, opts)
}

/** SCSI Data-In (RFC 7143 §11.7). */
export function encodeDataIn(p: DataIn, opts: EncodeOptions = NO_DIGESTS): Buffer[] {
  const h = allocHeader(p.ahs, p.data.length, opts)
  let flags = 0
  if (p.final) flags |= 0x80
  if (p.acknowledge) flags |= 0x40
  if (p.overflow) flags |= 0x04
  if (p.underflow) flags |= 0x02
  if (p.hasStatus) flags |= 0x01
  w0(h, Opcode.DataIn, p.immediate, flags, 0, p.status)
  wLun(h, 8, p.lun)
  w32(h, 16, p.itt)
  w32(h, 20, p.ttt)
  w32(h, 24, p.statSN)
  w32(h, 28, p.expCmdSN)
  w32(h, 32, p.maxCmdSN)
  w32(h, 36, p.dataSN)
  w32(h, 40, p.bufferOffset)
  w32(h, 44, p.residualCount)
  return finish(h, p.data, opts)
}

/** Logout Response (RFC 7143 §11.15). */
export function encodeLogoutResponse(p: LogoutResponse, opts: EncodeOptions = NO_DIGESTS): Buffer[] {
  const h = allocHeader(p.ahs, p.data.length, opts)
  w0(h, Opcode.LogoutResponse, p.immediate, 0x80, p.response, 0)
  zero(h, 8, 16)
  w32(h, 16, p.itt)
  w32(h, 20, 0)
  w32(h, 24, p.statSN)
  w32(h, 28, p.expCmdSN)
  w32(h, 32, p.maxCmdSN)
  w32(h, 36, 0)
  w16(h, 40, p.time2Wait)
  w16(h, 42, p.time2Retain)
  w32(h, 44, 0)
  return finish(h, p.data, opts)
}

/** Ready To Transfer (RFC 7143 §11.8). */
export function encodeR2T(p: R2T, opts: EncodeOptions = NO_DIGESTS): Buffer[] {
  const h = allocHeader(p.ahs, p.data.length, opts)
  w0(h, Opcode.R2T, p.immediate, 0x80, 0, 0)
  wLun(h, 8, p.lun)
  w32(h, 16, p.itt)
  w32(h, 20, p.ttt)
  w32(h, 24, p.statSN)
  w32(h, 28, p.expCmdSN)
  w32(h, 32, p.maxCmdSN)
  w32(h, 36, p.r2tSN)
  w32(h, 40, p.bufferOffset)
  w32(h, 44, p.desiredDataTransferLength)
  return finish(h, p.data, opts)
}

/** Asynchronous Message (RFC 7143 §11.9); bytes 16-19 are 0xffffffff. */
export function encodeAsyncMessage(p: AsyncMessage, opts: EncodeOptions = NO_DIGESTS): Buffer[] {
  const h = allocHeader(p.ahs, p.data.length, opts)
  w0(h, Opcode.AsyncMessage, p.immediate, 0x80, 0, 0)
  wLun(h, 8, p.lun)
  w32(h, 16, RESERVED_TAG)
  w32(h, 20, 0)
  w32(h, 24, p.statSN)
  w32(h, 28, p.expCmdSN)
  w32(h, 32, p.maxCmdSN)
  h[36] = p.asyncEvent
  h[37] = p.asyncVCode
  w16(h, 38, p.parameter1)
  w16(h, 40, p.parameter2)
  w16(h, 42, p.parameter3)
  w32(h, 44, 0)
  return finish(h, p.data, opts)
}

/** Reject (RFC 7143 §11.17); bytes 16-19 are 0xffffffff, data is the rejected PDU's header. */
export function encodeReject(p: Reject, opts: EncodeOptions = NO_DIGESTS): Buffer[] {
  const h = allocHeader(p.ahs, p.data.length, opts)
  w0(h, Opcode.Reject, p.immediate, 0x80, p.reason, 0)
  zero(h, 8, 16)
  w32(h, 16, RESERVED_TAG)
  w32(h, 20, 0)
  w32(h, 24, p.statSN)
  w32(h, 28, p.expCmdSN)
  w32(h, 32, p.maxCmdSN)
  w32(h, 36, p.dataSN)
  zero(h, 40, 48)
  return finish(h, p.data, opts)
}

function loginFlags(p: LoginRequest | LoginResponse): number {
  return (p.transit ? 0x80 : 0) | (p.continue ? 0x40 : 0) | ((p.csg & 0x03) << 2) | (p.nsg & 0x03)
}

// ---------------------------------------------------------------------------------------------
// Dispatch.

/** Encode any PDU as segments (see the file header). */
export function encodePdu(p: Pdu, opts: EncodeOptions = NO_DIGESTS): Buffer[] {
  switch (p.opcode) {
    case Opcode.NopOut:
      return encodeNopOut(p, opts)
    case Opcode.ScsiCommand:
      return encodeScsiCommand(p, opts)
    case Opcode.TaskMgmtRequest:
      return encodeTaskMgmtRequest(p, opts)
    case Opcode.LoginRequest:
      return encodeLoginRequest(p, opts)
    case Opcode.TextRequest:
      return encodeTextRequest(p, opts)
    case Opcode.DataOut:
      return encodeDataOut(p, opts)
    case Opcode.LogoutRequest:
      return encodeLogoutRequest(p, opts)
    case Opcode.Snack:
      return encodeSnack(p, opts)
    case Opcode.NopIn:
      return encodeNopIn(p, opts)
    case Opcode.ScsiResponse:
      return encodeScsiResponse(p, opts)
    case Opcode.TaskMgmtResponse:
      return encodeTaskMgmtResponse(p, opts)
    case Opcode.LoginResponse:
      return encodeLoginResponse(p, opts)
    case Opcode.TextResponse:
      return encodeTextResponse(p, opts)
    case Opcode.DataIn:
      return encodeDataIn(p, opts)
    case Opcode.LogoutResponse:
      return encodeLogoutResponse(p, opts)
    case Opcode.R2T:
      return encodeR2T(p, opts)
    case Opcode.AsyncMessage:
      return encodeAsyncMessage(p, opts)
    case Opcode.Reject:
      return encodeReject(p, opts)
    default: {
      const never: never = p
      throw new RangeError(`cannot encode opcode ${(never as { opcode: number }).opcode}`)
    }
  }
}

/** Encode into one contiguous buffer (copies the data segment; for tests and cold paths). */
export function encodeToBuffer(p: Pdu, opts: EncodeOptions = NO_DIGESTS): Buffer {
  const segments = encodePdu(p, opts)
  return segments.length === 1 ? segments[0] : Buffer.concat(segments)
}

/** Total bytes of a segment list. */
export function segmentsLength(segments: readonly Buffer[]): number {
  let n = 0
  for (let i = 0; i < segments.length; i++) n += segments[i].length
  return n
}
