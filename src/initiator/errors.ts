// Typed failures of the initiator. Every error has a stable string `code`, so callers (bench,
// failover tests) branch on it rather than on messages.
//
//   INITIATOR_CONNECT_FAILED  the TCP connection could not be opened
//   INITIATOR_LOGIN_FAILED    the login ended without reaching Full Feature Phase: the target
//                             answered a non-zero status (statusClass/statusDetail), or we
//                             refused the target (mutual CHAP, unusable negotiation answers)
//   INITIATOR_CLOSED          the connection is gone; the request may or may not have reached
//                             the target (`sent` says whether it left this process)
//   INITIATOR_TIMEOUT         no answer in time (login, or one command)
//   INITIATOR_REJECTED        the target answered a request of ours with a Reject PDU
//   INITIATOR_PROTOCOL        the target broke the protocol (bad Data-In, a PDU we cannot frame)
//   INITIATOR_SCSI_STATUS     a convenience call (read, write, ...) ended with a non-GOOD status

import type { ScsiRequest, ScsiResult } from './scsi.js'

export type InitiatorErrorCode =
  | 'INITIATOR_CONNECT_FAILED'
  | 'INITIATOR_LOGIN_FAILED'
  | 'INITIATOR_CLOSED'
  | 'INITIATOR_TIMEOUT'
  | 'INITIATOR_REJECTED'
  | 'INITIATOR_PROTOCOL'
  | 'INITIATOR_SCSI_STATUS'

export abstract class InitiatorError extends Error {
  abstract readonly code: InitiatorErrorCode

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
  }
}

export class InitiatorConnectError extends InitiatorError {
  readonly code = 'INITIATOR_CONNECT_FAILED' as const
  constructor(
    readonly address: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot connect to ${address}${causeText(options?.cause)}`, options)
  }
}

export class InitiatorLoginError extends InitiatorError {
  readonly code = 'INITIATOR_LOGIN_FAILED' as const
  /**
   * @param statusClass  RFC 7143 §11.13.5 Status-Class from the target (1 redirect, 2 initiator
   *                     error, 3 target error), or 0 when we ended the login ourselves.
   * @param refusedBy    'target': the target sent a non-zero status; 'initiator': we refused.
   */
  constructor(
    message: string,
    readonly statusClass: number,
    readonly statusDetail: number,
    readonly refusedBy: 'target' | 'initiator',
    /** Keys of the refusing response (e.g. TargetAddress on a redirect). */
    readonly keys: Array<[string, string]> = [],
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }

  /** Status-Class and Status-Detail as one number, e.g. 0x0201. */
  get status(): number {
    return (this.statusClass << 8) | this.statusDetail
  }
}

export class InitiatorClosedError extends InitiatorError {
  readonly code = 'INITIATOR_CLOSED' as const
  constructor(
    message: string,
    /** The SCSI request that was pending, for a caller that reconnects and resends. */
    readonly request?: ScsiRequest,
    /** Whether the request's command PDU had been handed to the socket. */
    readonly sent = false,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

export class InitiatorTimeoutError extends InitiatorError {
  readonly code = 'INITIATOR_TIMEOUT' as const
  constructor(
    message: string,
    readonly timeoutMs: number,
    readonly request?: ScsiRequest,
  ) {
    super(message)
  }
}

export class InitiatorRejectedError extends InitiatorError {
  readonly code = 'INITIATOR_REJECTED' as const
  constructor(
    /** RFC 7143 §11.17.1 reason code. */
    readonly reason: number,
    /** The rejected PDU's 48-byte header, as the target echoed it. */
    readonly header: Buffer,
    readonly request?: ScsiRequest,
  ) {
    super(`target rejected the PDU (reason 0x${reason.toString(16).padStart(2, '0')} ${rejectReasonName(reason)})`)
  }
}

export class InitiatorProtocolError extends InitiatorError {
  readonly code = 'INITIATOR_PROTOCOL' as const
}

export class ScsiStatusError extends InitiatorError {
  readonly code = 'INITIATOR_SCSI_STATUS' as const
  constructor(
    readonly operation: string,
    readonly result: ScsiResult,
  ) {
    const s = result.sense
    const sense = s ? ` sense ${hex2(s.key)}/${hex2(s.asc)}/${hex2(s.ascq)}` : ''
    super(`${operation} ended with SCSI status 0x${hex2(result.status)}${sense}`)
  }
}

export function isInitiatorError(err: unknown): err is InitiatorError {
  return err instanceof InitiatorError
}

/** RFC 7143 §11.17.1 names, for messages. */
export function rejectReasonName(reason: number): string {
  switch (reason) {
    case 0x02: return 'data digest error'
    case 0x03: return 'SNACK reject'
    case 0x04: return 'protocol error'
    case 0x05: return 'command not supported'
    case 0x06: return 'immediate command rejected'
    case 0x07: return 'task in progress'
    case 0x08: return 'invalid data ack'
    case 0x09: return 'invalid PDU field'
    case 0x0a: return 'long operation reject'
    case 0x0c: return 'waiting for logout'
    default: return 'unknown reason'
  }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0')
}

function causeText(cause: unknown): string {
  return cause instanceof Error ? `: ${cause.message}` : ''
}
