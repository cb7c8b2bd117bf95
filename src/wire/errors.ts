// Typed errors raised by the PDU codec. Every error the parser produces is a WireError with a
// stable string `code`, a `fatal` flag and, when the receiver should answer with a Reject PDU
// (RFC 7143 §11.17), the Reject reason to use.
//
//   fatal       → the byte stream can no longer be framed: the parser is in a failed state and the
//                 connection must be dropped (RFC 7143 §7.8 digest errors; RFC 3720 §6.7).
//   recoverable → the PDU's length fields were trustworthy, so the parser skipped exactly that PDU
//                 and carries on with the next one; the session decides whether to send a Reject.

import { RejectReason } from './pdu.js'

export type WireErrorCode =
  | 'WIRE_HEADER_DIGEST'
  | 'WIRE_DATA_DIGEST'
  | 'WIRE_SEGMENT_TOO_LONG'
  | 'WIRE_UNKNOWN_OPCODE'
  | 'WIRE_UNEXPECTED_OPCODE'
  | 'WIRE_MALFORMED_PDU'
  | 'WIRE_FATAL_FRAMING'

export abstract class WireError extends Error {
  /** Stable machine-readable identifier. */
  readonly code: WireErrorCode
  /** True when the stream is out of sync: drop the connection. */
  readonly fatal: boolean
  /** Reject reason the receiver should send for the offending PDU, if any. */
  readonly rejectReason: RejectReason | undefined
  /** Copy of the offending PDU's 48-byte BHS when one was read (usable as Reject data). */
  bhs: Buffer | undefined

  protected constructor(
    code: WireErrorCode,
    fatal: boolean,
    message: string,
    rejectReason: RejectReason | undefined,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause })
    this.name = new.target.name
    this.code = code
    this.fatal = fatal
    this.rejectReason = rejectReason
    this.bhs = undefined
  }
}

// ---------------------------------------------------------------------------------------------
// Fatal errors: the parser stops; every later push() throws the same error again.

type FatalCode = 'WIRE_FATAL_FRAMING' | 'WIRE_HEADER_DIGEST' | 'WIRE_SEGMENT_TOO_LONG'

/**
 * Framing is lost (code WIRE_FATAL_FRAMING). Also the base class of every fatal wire error, so
 * `err instanceof FatalFramingError` is the same test as `err.fatal`.
 */
export class FatalFramingError extends WireError {
  constructor(
    message: string,
    options?: { cause?: unknown; rejectReason?: RejectReason },
    code: FatalCode = 'WIRE_FATAL_FRAMING',
  ) {
    super(code, true, message, options?.rejectReason, options?.cause)
  }
}

/**
 * Header digest mismatch (RFC 7143 §7.8): the length fields cannot be trusted, so the stream
 * cannot be resynchronised (no markers); the connection must be dropped.
 */
export class HeaderDigestError extends FatalFramingError {
  readonly expected: number
  readonly received: number
  constructor(expected: number, received: number) {
    super(
      `header digest mismatch: computed 0x${hex32(expected)}, received 0x${hex32(received)}`,
      undefined,
      'WIRE_HEADER_DIGEST',
    )
    this.expected = expected
    this.received = received
  }
}

/**
 * DataSegmentLength above the negotiated MaxRecvDataSegmentLength (RFC 7143 §13.12). A target
 * may answer with a Reject (0x04 Protocol Error) before dropping the connection; the parser does
 * not try to skip a possibly huge segment.
 */
export class SegmentTooLongError extends FatalFramingError {
  readonly length: number
  readonly limit: number
  constructor(length: number, limit: number) {
    super(
      `DataSegmentLength ${length} exceeds MaxRecvDataSegmentLength ${limit}`,
      { rejectReason: RejectReason.ProtocolError },
      'WIRE_SEGMENT_TOO_LONG',
    )
    this.length = length
    this.limit = limit
  }
}

// ---------------------------------------------------------------------------------------------
// Recoverable errors: reported through onError(err, bhs); the parser continues with the next PDU.

/** Data digest mismatch (RFC 7143 §7.8, §11.17.1): discard the PDU, Reject reason 0x02. */
export class DataDigestError extends WireError {
  readonly expected: number
  readonly received: number
  constructor(expected: number, received: number) {
    super(
      'WIRE_DATA_DIGEST',
      false,
      `data digest mismatch: computed 0x${hex32(expected)}, received 0x${hex32(received)}`,
      RejectReason.DataDigestError,
    )
    this.expected = expected
    this.received = received
  }
}

/** Opcode not defined by RFC 7143 §11.2.1.2 (vendor-specific ones included): Reject 0x05. */
export class UnknownOpcodeError extends WireError {
  readonly opcode: number
  constructor(opcode: number) {
    super(
      'WIRE_UNKNOWN_OPCODE',
      false,
      `unknown opcode 0x${hex8(opcode)}`,
      RejectReason.CommandNotSupported,
    )
    this.opcode = opcode
  }
}

/**
 * A defined opcode that the peer may not send in this direction (an initiator opcode arriving
 * at an initiator, or a target opcode at a target): Reject 0x04 Protocol Error.
 */
export class UnexpectedOpcodeError extends WireError {
  readonly opcode: number
  constructor(opcode: number, side: 'initiator' | 'target') {
    super(
      'WIRE_UNEXPECTED_OPCODE',
      false,
      `opcode 0x${hex8(opcode)} is not valid at the ${side} side`,
      RejectReason.ProtocolError,
    )
    this.opcode = opcode
  }
}

/**
 * The PDU framed correctly but its contents are inconsistent (an AHS overrunning
 * TotalAHSLength, a SenseLength longer than the data segment, ...): Reject 0x09.
 */
export class MalformedPduError extends WireError {
  constructor(message: string) {
    super('WIRE_MALFORMED_PDU', false, message, RejectReason.InvalidPduField)
  }
}

export function isWireError(err: unknown): err is WireError {
  return err instanceof WireError
}

function hex32(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0')
}

function hex8(n: number): string {
  return n.toString(16).padStart(2, '0')
}
