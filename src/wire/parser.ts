// Incremental iSCSI PDU parser (RFC 7143 §11). Feed it TCP chunks with push(); it calls onPdu
// once per complete PDU, in stream order.
//
// Buffering. The parser keeps ONE receive buffer with [start, end) cursors. When nothing is left
// over from earlier pushes, the pushed chunk itself is parsed in place (no copy). Otherwise the
// chunk is appended to an owned store, which is compacted (unconsumed bytes moved to the front)
// or grown by doubling. Compaction only happens at the start of a push that is not nested in a
// callback, so the bytes of a PDU are never overwritten before its callback has returned.
//
// Lifetime of decoded buffers. `pdu.data` and every `ahs[i].bytes` (and `ScsiResponse.sense`)
// are views into the receive buffer: they are valid only until onPdu returns. Copy them
// (Buffer.from(view)) to keep them. `ScsiCommand.cdb` is always an owned copy. A chunk passed to
// push() may be referenced until the next push(), so do not modify it afterwards.
//
// Errors.
//  - Fatal (FatalFramingError and subclasses: header digest mismatch, segment too long): the
//    parser records the error, enters a failed state and push() throws it; every later push()
//    throws the same error object again. PDUs that preceded it in the same chunk were delivered.
//  - Recoverable (data digest, unknown or wrong-direction opcode, malformed contents): the PDU is
//    skipped, onError(err, bhsCopy) is called and parsing continues with the next PDU. Without an
//    onError handler a recoverable error is escalated to a FatalFramingError (cause = the error).
//  push() throws nothing but WireError instances for any input bytes. An exception thrown by
//  onPdu/onError propagates unchanged; the parser has already consumed that PDU, and the bytes
//  behind it stay buffered until the next push() (push(Buffer.alloc(0)) resumes parsing).
//
// Settings (headerDigest, dataDigest, maxDataSegmentLength) are read afresh for every PDU, so a
// change made inside onPdu applies to the very next PDU, even one already sitting in the buffer.
// push() may be called from inside onPdu: the chunk is appended and parsed after the current PDU.

import { ReceiveBuffer } from './receive-buffer.js'
import {
  BHS_LENGTH,
  Opcode,
  type AdditionalHeader,
  type AsyncMessage,
  type DataIn,
  type DataOut,
  type InitiatorPdu,
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
  type TargetPdu,
  type TaskMgmtRequest,
  type TaskMgmtResponse,
  type TextRequest,
  type TextResponse,
} from './pdu.js'
import { crc32c, readDigest, DIGEST_LENGTH } from './digest.js'
import {
  DataDigestError,
  FatalFramingError,
  HeaderDigestError,
  MalformedPduError,
  SegmentTooLongError,
  UnexpectedOpcodeError,
  UnknownOpcodeError,
  WireError,
} from './errors.js'

/**
 * The side of the connection the parser runs on. 'target' accepts only initiator→target opcodes,
 * 'initiator' only target→initiator opcodes, 'any' both.
 */
export type ParserDirection = 'initiator' | 'target' | 'any'

/** PDU type a parser running on side D can deliver. */
export type ReceivedPdu<D extends ParserDirection> = D extends 'target'
  ? InitiatorPdu
  : D extends 'initiator'
    ? TargetPdu
    : Pdu

export interface PduParserOptions<D extends ParserDirection = 'any'> {
  /** Side this parser runs on (default 'any'). */
  direction?: D
  /** HeaderDigest=CRC32C in effect (default false; RFC 7143 §13.1). */
  headerDigest?: boolean
  /** DataDigest=CRC32C in effect (default false). */
  dataDigest?: boolean
  /**
   * Largest DataSegmentLength accepted (our MaxRecvDataSegmentLength, RFC 7143 §13.12).
   * Default 8192, the limit that applies during the Login Phase.
   */
  maxDataSegmentLength?: number
  /** Called once per complete, valid PDU. Views in the PDU are valid only during the call. */
  onPdu: (pdu: ReceivedPdu<D>) => void
  /** Called for recoverable errors with a copy of the skipped PDU's BHS. */
  onError?: (err: WireError, bhs: Buffer) => void
  /** Initial size of the owned receive store when one is first needed (default 64 KiB). */
  initialBufferSize?: number
  /**
   * The pusher never modifies a chunk after push() (true of socket reads: Node allocates each
   * one anew). A SCSI Command's immediate data parsed in place is then marked
   * `dataRetainable`: the chunk outlives the callback untouched. Default false.
   */
  retainChunks?: boolean
}

/** Default MaxRecvDataSegmentLength (RFC 7143 §13.12) and the Login Phase limit. */
export const DEFAULT_MAX_DATA_SEGMENT_LENGTH = 8192
/** Largest value the 24-bit DataSegmentLength field can hold. */
export const MAX_DATA_SEGMENT_LENGTH = 0xffffff

/** AHSType values (RFC 7143 §11.2.2.1). */
export const AHS_TYPE_EXTENDED_CDB = 1
export const AHS_TYPE_BIDI_READ_LENGTH = 2

const DEFAULT_INITIAL_BUFFER = 64 * 1024
/** An idle owned store larger than this is released rather than kept for reuse. */
const RETAIN_LIMIT = 1024 * 1024

const EMPTY = Buffer.alloc(0)

export class PduParser<D extends ParserDirection = 'any'> {
  onPdu: (pdu: ReceivedPdu<D>) => void
  onError: ((err: WireError, bhs: Buffer) => void) | undefined
  readonly direction: ParserDirection
  headerDigest: boolean
  dataDigest: boolean

  private maxSegment: number
  private readonly rx: ReceiveBuffer
  /** Bytes needed to complete the PDU at `start` (a sizing hint for the store). */
  private need = 0
  private parsing = false
  private failure: FatalFramingError | undefined = undefined
  private readonly retainChunks: boolean

  constructor(options: PduParserOptions<D>) {
    this.retainChunks = options.retainChunks ?? false
    this.onPdu = options.onPdu
    this.onError = options.onError
    this.direction = options.direction ?? 'any'
    this.headerDigest = options.headerDigest ?? false
    this.dataDigest = options.dataDigest ?? false
    this.maxSegment = checkSegmentLimit(options.maxDataSegmentLength ?? DEFAULT_MAX_DATA_SEGMENT_LENGTH)
    this.rx = new ReceiveBuffer(Math.max(BHS_LENGTH, options.initialBufferSize ?? DEFAULT_INITIAL_BUFFER), RETAIN_LIMIT)
  }

  /** Largest DataSegmentLength accepted; larger segments raise SegmentTooLongError (fatal). */
  get maxDataSegmentLength(): number {
    return this.maxSegment
  }
  set maxDataSegmentLength(value: number) {
    this.maxSegment = checkSegmentLimit(value)
  }

  /** The fatal error that stopped the parser, if any. */
  get failed(): FatalFramingError | undefined {
    return this.failure
  }

  /** Bytes received but not yet consumed (a partial PDU). */
  get bufferedBytes(): number {
    return this.rx.end - this.rx.start
  }

  /**
   * Feed received bytes. Calls onPdu for each PDU completed by them. Throws only WireError
   * (fatal ones; see the file header), or whatever a callback throws.
   */
  push(chunk: Uint8Array): void {
    if (this.failure !== undefined) throw this.failure
    if (!(chunk instanceof Uint8Array)) {
      throw this.fail(new FatalFramingError('push() expects a Buffer or Uint8Array'), EMPTY, 0)
    }
    const input = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    if (this.parsing) {
      // Nested in a callback: only append; the running loop picks the bytes up.
      if (input.length > 0) this.rx.append(input, false, this.need)
      return
    }
    this.rx.take(input, this.need)
    this.parsing = true
    try {
      this.drain()
    } finally {
      this.parsing = false
    }
  }

  private drain(): void {
    for (;;) {
      const b = this.rx.buf
      const s = this.rx.start
      const avail = this.rx.end - s
      if (avail < BHS_LENGTH) {
        this.need = BHS_LENGTH
        return
      }
      // RFC 7143 §11.2.1: TotalAHSLength counts 4-byte words; DataSegmentLength is 24 bits.
      const ahsLength = b[s + 4] << 2
      const dataLength = (b[s + 5] << 16) | (b[s + 6] << 8) | b[s + 7]
      const headerEnd = BHS_LENGTH + ahsLength
      const headerDigest = this.headerDigest
      const headerLength = headerDigest ? headerEnd + DIGEST_LENGTH : headerEnd
      if (headerDigest) {
        if (avail < headerLength) {
          this.need = headerLength
          return
        }
        // RFC 7143 §7.8: a header digest error leaves the stream unframed.
        const computed = crc32c(b.subarray(s, s + headerEnd))
        const received = readDigest(b, s + headerEnd)
        if (computed !== received) throw this.fail(new HeaderDigestError(computed, received), b, s)
      }
      // RFC 7143 §13.12: DataSegmentLength must not exceed our MaxRecvDataSegmentLength.
      if (dataLength > this.maxSegment) {
        throw this.fail(new SegmentTooLongError(dataLength, this.maxSegment), b, s)
      }
      const dataDigest = this.dataDigest && dataLength > 0
      const paddedLength = (dataLength + 3) & ~3 // RFC 7143 §11.2.4: pad to 4 bytes
      const total = headerLength + paddedLength + (dataDigest ? DIGEST_LENGTH : 0)
      if (avail < total) {
        this.need = total
        return
      }

      // The whole PDU is here. Consume it before any callback runs.
      this.rx.start = s + total
      this.need = 0
      const dataStart = s + headerLength

      if (dataDigest) {
        // RFC 7143 §11.2.3, §13.1: the data digest covers the data segment and its padding.
        const computed = crc32c(b.subarray(dataStart, dataStart + paddedLength))
        const received = readDigest(b, dataStart + paddedLength)
        if (computed !== received) {
          this.report(new DataDigestError(computed, received), b, s)
          continue
        }
      }

      const opcode = b[s] & 0x3f
      const kind = OPCODE_SIDE[opcode]
      if (kind === UNKNOWN) {
        this.report(new UnknownOpcodeError(opcode), b, s)
        continue
      }
      if (
        (kind === FROM_INITIATOR && this.direction === 'initiator') ||
        (kind === FROM_TARGET && this.direction === 'target')
      ) {
        this.report(new UnexpectedOpcodeError(opcode, this.direction === 'target' ? 'target' : 'initiator'), b, s)
        continue
      }

      let ahs: AdditionalHeader[]
      if (ahsLength === 0) {
        ahs = []
      } else {
        const parsed = parseAhs(b, s + BHS_LENGTH, s + headerEnd)
        if (parsed instanceof MalformedPduError) {
          this.report(parsed, b, s)
          continue
        }
        ahs = parsed
      }
      const data = dataLength === 0 ? EMPTY : b.subarray(dataStart, dataStart + dataLength)
      const pdu = decodeBhs(b, s, opcode, ahs, data)
      if (pdu instanceof MalformedPduError) {
        this.report(pdu, b, s)
        continue
      }
      if (this.retainChunks && dataLength > 0 && pdu.opcode === Opcode.ScsiCommand && !this.rx.owns(b)) {
        pdu.dataRetainable = true
      }
      this.onPdu(pdu as ReceivedPdu<D>)
    }
  }

  private report(err: WireError, b: Buffer, s: number): void {
    const bhs = Buffer.from(b.subarray(s, s + BHS_LENGTH))
    err.bhs = bhs
    const handler = this.onError
    if (handler === undefined) {
      throw this.fail(
        new FatalFramingError(`unhandled recoverable wire error: ${err.message}`, {
          cause: err,
          rejectReason: err.rejectReason,
        }),
        b,
        s,
      )
    }
    handler(err, bhs)
  }

  private fail(err: FatalFramingError, b: Buffer, s: number): FatalFramingError {
    if (err.bhs === undefined && b.length - s >= BHS_LENGTH) {
      err.bhs = Buffer.from(b.subarray(s, s + BHS_LENGTH))
    }
    this.failure = err
    this.rx.reset()
    return err
  }
}

function checkSegmentLimit(value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > MAX_DATA_SEGMENT_LENGTH) {
    throw new RangeError(`maxDataSegmentLength must be an integer in 0..${MAX_DATA_SEGMENT_LENGTH}`)
  }
  return value
}

// ---------------------------------------------------------------------------------------------
// Opcode table (RFC 7143 §11.2.1.2).

const UNKNOWN = 0
const FROM_INITIATOR = 1
const FROM_TARGET = 2

const OPCODE_SIDE: Uint8Array = (() => {
  const t = new Uint8Array(64)
  for (const op of [
    Opcode.NopOut,
    Opcode.ScsiCommand,
    Opcode.TaskMgmtRequest,
    Opcode.LoginRequest,
    Opcode.TextRequest,
    Opcode.DataOut,
    Opcode.LogoutRequest,
    Opcode.Snack,
  ]) {
    t[op] = FROM_INITIATOR
  }
  for (const op of [
    Opcode.NopIn,
    Opcode.ScsiResponse,
    Opcode.TaskMgmtResponse,
    Opcode.LoginResponse,
    Opcode.TextResponse,
    Opcode.DataIn,
    Opcode.LogoutResponse,
    Opcode.R2T,
    Opcode.AsyncMessage,
    Opcode.Reject,
  ]) {
    t[op] = FROM_TARGET
  }
  return t
})()

// ---------------------------------------------------------------------------------------------
// Field readers.

function u32(b: Buffer, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0
}

function u16(b: Buffer, o: number): number {
  return (b[o] << 8) | b[o + 1]
}

/** Raw LUN values whose low 48 bits are zero (every single-level LUN), by their top 16 bits. */
const LUN_CACHE: (bigint | undefined)[] = []

/** The 8-byte LUN field as a big-endian u64 (RFC 7143 §11.2.1 / SAM-5). */
function readLun(b: Buffer, o: number): bigint {
  const hi = u32(b, o)
  const lo = u32(b, o + 4)
  if (lo === 0 && (hi & 0xffff) === 0) {
    const key = hi >>> 16
    let v = LUN_CACHE[key]
    if (v === undefined) {
      v = BigInt(hi) << 32n
      LUN_CACHE[key] = v
    }
    return v
  }
  return (BigInt(hi) << 32n) | BigInt(lo)
}

/**
 * RFC 7143 §11.2.2: AHSs follow the BHS back to back, each {AHSLength(2), AHSType(1),
 * AHS-Specific(AHSLength bytes)} padded to 4 bytes. `specific` is the first AHS-Specific byte
 * (reserved in both defined types), `bytes` the rest.
 */
function parseAhs(b: Buffer, from: number, to: number): AdditionalHeader[] | MalformedPduError {
  const list: AdditionalHeader[] = []
  let o = from
  while (o < to) {
    if (to - o < 4) return new MalformedPduError('truncated AHS header')
    const length = u16(b, o)
    const type = b[o + 2]
    const size = (3 + length + 3) & ~3
    if (size > to - o) {
      return new MalformedPduError(`AHS length ${length} overruns TotalAHSLength`)
    }
    if (length === 0) {
      list.push({ type, specific: 0, bytes: EMPTY })
    } else {
      list.push({ type, specific: b[o + 3], bytes: b.subarray(o + 4, o + 3 + length) })
    }
    o += size
  }
  return list
}

// ---------------------------------------------------------------------------------------------
// BHS decoders, one per opcode (RFC 7143 §11.3 - §11.19). `s` is the offset of the BHS.

function decodeBhs(
  b: Buffer,
  s: number,
  opcode: number,
  ahs: AdditionalHeader[],
  data: Buffer,
): Pdu | MalformedPduError {
  const immediate = (b[s] & 0x40) !== 0
  const flags = b[s + 1]
  switch (opcode) {
    case Opcode.NopOut: {
      // §11.18
      const pdu: NopOut = {
        opcode: Opcode.NopOut,
        immediate,
        ahs,
        data,
        lun: readLun(b, s + 8),
        itt: u32(b, s + 16),
        ttt: u32(b, s + 20),
        cmdSN: u32(b, s + 24),
        expStatSN: u32(b, s + 28),
      }
      return pdu
    }
    case Opcode.ScsiCommand: {
      // §11.3; the CDB (§11.3.5) continues in an Extended CDB AHS (§11.2.2.3) if present.
      const cdb = readCdb(b, s, ahs)
      if (cdb instanceof MalformedPduError) return cdb
      const pdu: ScsiCommand = {
        opcode: Opcode.ScsiCommand,
        immediate,
        ahs,
        data,
        final: (flags & 0x80) !== 0,
        read: (flags & 0x40) !== 0,
        write: (flags & 0x20) !== 0,
        attribute: flags & 0x07,
        lun: readLun(b, s + 8),
        itt: u32(b, s + 16),
        expectedDataTransferLength: u32(b, s + 20),
        cmdSN: u32(b, s + 24),
        expStatSN: u32(b, s + 28),
        cdb,
      }
      return pdu
    }
    case Opcode.TaskMgmtRequest: {
      // §11.5
      const pdu: TaskMgmtRequest = {
        opcode: Opcode.TaskMgmtRequest,
        immediate,
        ahs,
        data,
        function: flags & 0x7f,
        lun: readLun(b, s + 8),
        itt: u32(b, s + 16),
        referencedTaskTag: u32(b, s + 20),
        cmdSN: u32(b, s + 24),
        expStatSN: u32(b, s + 28),
        refCmdSN: u32(b, s + 32),
        expDataSN: u32(b, s + 36),
      }
      return pdu
    }
    case Opcode.LoginRequest: {
      // §11.12
      const pdu: LoginRequest = {
        opcode: Opcode.LoginRequest,
        immediate,
        ahs,
        data,
        transit: (flags & 0x80) !== 0,
        continue: (flags & 0x40) !== 0,
        csg: (flags >> 2) & 0x03,
        nsg: flags & 0x03,
        versionMax: b[s + 2],
        versionMin: b[s + 3],
        isid: b.toString('hex', s + 8, s + 14),
        tsih: u16(b, s + 14),
        itt: u32(b, s + 16),
        cid: u16(b, s + 20),
        cmdSN: u32(b, s + 24),
        expStatSN: u32(b, s + 28),
      }
      return pdu
    }
    case Opcode.TextRequest: {
      // §11.10
      const pdu: TextRequest = {
        opcode: Opcode.TextRequest,
        immediate,
        ahs,
        data,
        final: (flags & 0x80) !== 0,
        continue: (flags & 0x40) !== 0,
        lun: readLun(b, s + 8),
        itt: u32(b, s + 16),
        ttt: u32(b, s + 20),
        cmdSN: u32(b, s + 24),
        expStatSN: u32(b, s + 28),
      }
      return pdu
    }
    case Opcode.DataOut: {
      // §11.7.1
      const pdu: DataOut = {
        opcode: Opcode.DataOut,
        immediate,
        ahs,
        data,
        final: (flags & 0x80) !== 0,
        lun: readLun(b, s + 8),
        itt: u32(b, s + 16),
        ttt: u32(b, s + 20),
        expStatSN: u32(b, s + 28),
        dataSN: u32(b, s + 36),
        bufferOffset: u32(b, s + 40),
      }
      return pdu
    }
    case Opcode.LogoutRequest: {
      // §11.14
      const pdu: LogoutRequest = {
        opcode: Opcode.LogoutRequest,
        immediate,
        ahs,
        data,
        reason: flags & 0x7f,
        itt: u32(b, s + 16),
        cid: u16(b, s + 20),
        cmdSN: u32(b, s + 24),
        expStatSN: u32(b, s + 28),
      }
      return pdu
    }
    case Opcode.Snack: {
      // §11.16
      const pdu: Snack = {
        opcode: Opcode.Snack,
        immediate,
        ahs,
        data,
        type: flags & 0x0f,
        lun: readLun(b, s + 8),
        itt: u32(b, s + 16),
        ttt: u32(b, s + 20),
        expStatSN: u32(b, s + 28),
        begRun: u32(b, s + 40),
        runLength: u32(b, s + 44),
      }
      return pdu
    }
    case Opcode.NopIn: {
      // §11.19
      const pdu: NopIn = {
        opcode: Opcode.NopIn,
        immediate,
        ahs,
        data,
        lun: readLun(b, s + 8),
        itt: u32(b, s + 16),
        ttt: u32(b, s + 20),
        statSN: u32(b, s + 24),
        expCmdSN: u32(b, s + 28),
        maxCmdSN: u32(b, s + 32),
      }
      return pdu
    }
    case Opcode.ScsiResponse: {
      // §11.4; §11.4.7: the data segment starts with a 2-byte SenseLength.
      let sense: Buffer | undefined
      if (data.length > 0) {
        if (data.length < 2) return new MalformedPduError('SCSI Response data segment shorter than SenseLength')
        const senseLength = u16(data, 0)
        if (2 + senseLength > data.length) {
          return new MalformedPduError(`SenseLength ${senseLength} overruns the data segment`)
        }
        sense = data.subarray(2, 2 + senseLength)
      }
      const pdu: ScsiResponse = {
        opcode: Opcode.ScsiResponse,
        immediate,
        ahs,
        data,
        bidiOverflow: (flags & 0x10) !== 0,
        bidiUnderflow: (flags & 0x08) !== 0,
        overflow: (flags & 0x04) !== 0,
        underflow: (flags & 0x02) !== 0,
        response: b[s + 2],
        status: b[s + 3],
        itt: u32(b, s + 16),
        snackTag: u32(b, s + 20),
        statSN: u32(b, s + 24),
        expCmdSN: u32(b, s + 28),
        maxCmdSN: u32(b, s + 32),
        expDataSN: u32(b, s + 36),
        bidiResidualCount: u32(b, s + 40),
        residualCount: u32(b, s + 44),
        sense,
      }
      return pdu
    }
    case Opcode.TaskMgmtResponse: {
      // §11.6
      const pdu: TaskMgmtResponse = {
        opcode: Opcode.TaskMgmtResponse,
        immediate,
        ahs,
        data,
        response: b[s + 2],
        itt: u32(b, s + 16),
        statSN: u32(b, s + 24),
        expCmdSN: u32(b, s + 28),
        maxCmdSN: u32(b, s + 32),
      }
      return pdu
    }
    case Opcode.LoginResponse: {
      // §11.13
      const pdu: LoginResponse = {
        opcode: Opcode.LoginResponse,
        immediate,
        ahs,
        data,
        transit: (flags & 0x80) !== 0,
        continue: (flags & 0x40) !== 0,
        csg: (flags >> 2) & 0x03,
        nsg: flags & 0x03,
        versionMax: b[s + 2],
        versionActive: b[s + 3],
        isid: b.toString('hex', s + 8, s + 14),
        tsih: u16(b, s + 14),
        itt: u32(b, s + 16),
        statSN: u32(b, s + 24),
        expCmdSN: u32(b, s + 28),
        maxCmdSN: u32(b, s + 32),
        statusClass: b[s + 36],
        statusDetail: b[s + 37],
      }
      return pdu
    }
    case Opcode.TextResponse: {
      // §11.11
      const pdu: TextResponse = {
        opcode: Opcode.TextResponse,
        immediate,
        ahs,
        data,
        final: (flags & 0x80) !== 0,
        continue: (flags & 0x40) !== 0,
        lun: readLun(b, s + 8),
        itt: u32(b, s + 16),
        ttt: u32(b, s + 20),
        statSN: u32(b, s + 24),
        expCmdSN: u32(b, s + 28),
        maxCmdSN: u32(b, s + 32),
      }
      return pdu
    }
    case Opcode.DataIn: {
      // §11.7
      const pdu: DataIn = {
        opcode: Opcode.DataIn,
        immediate,
        ahs,
        data,
        final: (flags & 0x80) !== 0,
        acknowledge: (flags & 0x40) !== 0,
        overflow: (flags & 0x04) !== 0,
        underflow: (flags & 0x02) !== 0,
        hasStatus: (flags & 0x01) !== 0,
        status: b[s + 3],
        lun: readLun(b, s + 8),
        itt: u32(b, s + 16),
        ttt: u32(b, s + 20),
        statSN: u32(b, s + 24),
        expCmdSN: u32(b, s + 28),
        maxCmdSN: u32(b, s + 32),
        dataSN: u32(b, s + 36),
        bufferOffset: u32(b, s + 40),
        residualCount: u32(b, s + 44),
      }
      return pdu
    }
    case Opcode.LogoutResponse: {
      // §11.15
      const pdu: LogoutResponse = {
        opcode: Opcode.LogoutResponse,
        immediate,
        ahs,
        data,
        response: b[s + 2],
        itt: u32(b, s + 16),
        statSN: u32(b, s + 24),
        expCmdSN: u32(b, s + 28),
        maxCmdSN: u32(b, s + 32),
        time2Wait: u16(b, s + 40),
        time2Retain: u16(b, s + 42),
      }
      return pdu
    }
    case Opcode.R2T: {
      // §11.8
      const pdu: R2T = {
        opcode: Opcode.R2T,
        immediate,
        ahs,
        data,
        lun: readLun(b, s + 8),
        itt: u32(b, s + 16),
        ttt: u32(b, s + 20),
        statSN: u32(b, s + 24),
        expCmdSN: u32(b, s + 28),
        maxCmdSN: u32(b, s + 32),
        r2tSN: u32(b, s + 36),
        bufferOffset: u32(b, s + 40),
        desiredDataTransferLength: u32(b, s + 44),
      }
      return pdu
    }
    case Opcode.AsyncMessage: {
      // §11.9
      const pdu: AsyncMessage = {
        opcode: Opcode.AsyncMessage,
        immediate,
        ahs,
        data,
        lun: readLun(b, s + 8),
        statSN: u32(b, s + 24),
        expCmdSN: u32(b, s + 28),
        maxCmdSN: u32(b, s + 32),
        asyncEvent: b[s + 36],
        asyncVCode: b[s + 37],
        parameter1: u16(b, s + 38),
        parameter2: u16(b, s + 40),
        parameter3: u16(b, s + 42),
      }
      return pdu
    }
    case Opcode.Reject: {
      // §11.17
      const pdu: Reject = {
        opcode: Opcode.Reject,
        immediate,
        ahs,
        data,
        reason: b[s + 2],
        statSN: u32(b, s + 24),
        expCmdSN: u32(b, s + 28),
        maxCmdSN: u32(b, s + 32),
        dataSN: u32(b, s + 36),
      }
      return pdu
    }
    default:
      // Unreachable: drain() filters opcodes through OPCODE_SIDE first.
      return new MalformedPduError(`no decoder for opcode 0x${opcode.toString(16)}`)
  }
}

/** RFC 7143 §11.3.5 CDB + §11.2.2.3 Extended CDB AHS: 16 BHS bytes, then the AHS's CDB bytes. */
function readCdb(b: Buffer, s: number, ahs: AdditionalHeader[]): Buffer | MalformedPduError {
  let extended: Buffer | undefined
  for (let i = 0; i < ahs.length; i++) {
    const h = ahs[i]
    if (h.type === AHS_TYPE_EXTENDED_CDB) {
      if (extended !== undefined) return new MalformedPduError('more than one Extended CDB AHS')
      extended = h.bytes
    }
  }
  // An owned copy: the CDB outlives the callback (it is handed to the SCSI layer).
  const cdb = Buffer.alloc(extended === undefined ? 16 : 16 + extended.length)
  cdb.set(b.subarray(s + 32, s + 48), 0)
  if (extended !== undefined) cdb.set(extended, 16)
  return cdb
}
