// Sense data (SPC-4 §4.5) is built here and nowhere else. Handlers throw ScsiError; the engine
// turns it into CHECK CONDITION with fixed-format sense (response code 0x70, 18 bytes).

import { ScsiStatus, type ScsiResult } from './types.js'

/** SPC-4 table 27: sense keys. */
export const enum SenseKey {
  NoSense = 0x0,
  RecoveredError = 0x1,
  NotReady = 0x2,
  MediumError = 0x3,
  HardwareError = 0x4,
  IllegalRequest = 0x5,
  UnitAttention = 0x6,
  DataProtect = 0x7,
  CopyAborted = 0xa,
  AbortedCommand = 0xb,
  Miscompare = 0xe,
}

/** Additional sense code and qualifier pairs used by the engine, as (ASC << 8) | ASCQ. */
export const enum Asc {
  NoAdditionalSense = 0x0000,
  OperationInProgress = 0x0016,
  NotReadySanitizeInProgress = 0x041b,
  UnreachableCopyTarget = 0x0804,
  CopyTargetDeviceNotReachable = 0x0d02,
  ParameterListLengthError = 0x1a00,
  MiscompareDuringVerify = 0x1d00,
  InvalidCommandOperationCode = 0x2000,
  LbaOutOfRange = 0x2100,
  NotReadyToReadyChange = 0x2800,
  InvalidFieldInCdb = 0x2400,
  InvalidFieldInParameterList = 0x2600,
  InvalidReleaseOfPersistentReservation = 0x2604,
  TooManyTargetDescriptors = 0x2606,
  UnsupportedTargetDescriptorTypeCode = 0x2607,
  TooManySegmentDescriptors = 0x2608,
  UnsupportedSegmentDescriptorTypeCode = 0x2609,
  InlineDataLengthExceeded = 0x260b,
  WriteProtected = 0x2700,
  SoftwareWriteProtected = 0x2702,
  PowerOnResetOrBusDeviceReset = 0x2900,
  PowerOnOccurred = 0x2901,
  BusDeviceResetFunctionOccurred = 0x2903,
  ModeParametersChanged = 0x2a01,
  ReservationsPreempted = 0x2a03,
  ReservationsReleased = 0x2a04,
  RegistrationsPreempted = 0x2a05,
  CapacityDataHasChanged = 0x2a09,
  MediumFormatCorrupted = 0x3100,
  MediumNotPresent = 0x3a00,
  MediumRemovalPrevented = 0x5302,
  SanitizeCommandFailed = 0x3103,
  SavingParametersNotSupported = 0x3900,
  InternalTargetFailure = 0x4400,
  InsufficientRegistrationResources = 0x5504,
}

export interface SenseDetails {
  /** Byte (in the CDB or parameter list) of the offending field: sets SKSV and the FIELD POINTER. */
  fieldPointer?: number
  /** Bit (7..0) within that byte: sets BPV and the BIT POINTER. */
  bitPointer?: number
  /** true (default): the pointer is into the CDB (C/D=1); false: into the parameter list. */
  cd?: boolean
  /** INFORMATION field (sets VALID), e.g. the miscompare offset. Must fit 32 bits. */
  information?: number
  /**
   * PROGRESS INDICATION (SPC-4 §4.5.2.4.4): the fraction done of an operation in progress, in
   * 65536ths; sets SKSV. For NOT READY and NO SENSE, never together with a field pointer.
   */
  progress?: number
}

export const FIXED_SENSE_LENGTH = 18

/** An error a command handler throws to end the command with CHECK CONDITION. */
export class ScsiError extends Error {
  readonly senseKey: SenseKey
  readonly asc: number
  readonly ascq: number
  readonly details: SenseDetails

  constructor(senseKey: SenseKey, asc: number, ascq: number, details: SenseDetails = {}) {
    super(`SCSI error: key 0x${senseKey.toString(16)} asc/ascq 0x${hex2(asc)}/0x${hex2(ascq)}`)
    this.name = 'ScsiError'
    this.senseKey = senseKey
    this.asc = asc
    this.ascq = ascq
    this.details = details
  }

  /** Build from an `Asc` pair. */
  static of(senseKey: SenseKey, pair: Asc, details?: SenseDetails): ScsiError {
    return new ScsiError(senseKey, pair >> 8, pair & 0xff, details)
  }

  sense(): Buffer {
    return buildSense(this.senseKey, this.asc, this.ascq, this.details)
  }

  toResult(): ScsiResult {
    return { status: ScsiStatus.CheckCondition, sense: this.sense() }
  }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0')
}

/** Fixed-format, current-error sense data (SPC-4 §4.5.3). */
export function buildSense(senseKey: SenseKey, asc: number, ascq: number, details: SenseDetails = {}): Buffer {
  const b = Buffer.alloc(FIXED_SENSE_LENGTH)
  b[0] = 0x70
  b[2] = senseKey & 0x0f
  if (details.information !== undefined) {
    b[0] |= 0x80 // VALID
    b.writeUInt32BE(details.information >>> 0, 3)
  }
  b[7] = FIXED_SENSE_LENGTH - 8 // additional sense length
  b[12] = asc
  b[13] = ascq
  if (details.fieldPointer !== undefined) {
    let sks = 0x80 // SKSV
    if (details.cd !== false) sks |= 0x40 // C/D
    if (details.bitPointer !== undefined) sks |= 0x08 | (details.bitPointer & 0x07) // BPV
    b[15] = sks
    b.writeUInt16BE(details.fieldPointer & 0xffff, 16)
  } else if (details.progress !== undefined) {
    b[15] = 0x80 // SKSV
    b.writeUInt16BE(Math.min(0xffff, Math.max(0, Math.floor(details.progress))), 16)
  }
  return b
}

export function checkCondition(senseKey: SenseKey, pair: Asc, details?: SenseDetails): ScsiResult {
  return { status: ScsiStatus.CheckCondition, sense: buildSense(senseKey, pair >> 8, pair & 0xff, details) }
}

// ---- the errors handlers throw most ------------------------------------------------------------

export function invalidFieldInCdb(byte: number, bit?: number): ScsiError {
  return ScsiError.of(SenseKey.IllegalRequest, Asc.InvalidFieldInCdb, { fieldPointer: byte, bitPointer: bit, cd: true })
}

export function invalidFieldInParameterList(byte: number, bit?: number): ScsiError {
  return ScsiError.of(SenseKey.IllegalRequest, Asc.InvalidFieldInParameterList, {
    fieldPointer: byte,
    bitPointer: bit,
    cd: false,
  })
}

export function parameterListLengthError(): ScsiError {
  return ScsiError.of(SenseKey.IllegalRequest, Asc.ParameterListLengthError)
}

export function invalidOpcode(): ScsiError {
  return ScsiError.of(SenseKey.IllegalRequest, Asc.InvalidCommandOperationCode, { fieldPointer: 0, bitPointer: 7 })
}

export function lbaOutOfRange(): ScsiError {
  return ScsiError.of(SenseKey.IllegalRequest, Asc.LbaOutOfRange)
}

export function writeProtected(): ScsiError {
  return ScsiError.of(SenseKey.DataProtect, Asc.WriteProtected)
}

export function softwareWriteProtected(): ScsiError {
  return ScsiError.of(SenseKey.DataProtect, Asc.SoftwareWriteProtected)
}

export function savingParametersNotSupported(byte: number, bit: number): ScsiError {
  return ScsiError.of(SenseKey.IllegalRequest, Asc.SavingParametersNotSupported, { fieldPointer: byte, bitPointer: bit })
}

/** MISCOMPARE DURING VERIFY OPERATION; INFORMATION = offset into the Data-Out buffer of the first difference. */
export function miscompare(offset: number): ScsiError {
  return ScsiError.of(SenseKey.Miscompare, Asc.MiscompareDuringVerify, { information: offset })
}

/** NOT READY / SANITIZE IN PROGRESS, with the fraction done (SBC-3 §4.11). */
export function sanitizeInProgress(progress: number): ScsiError {
  return ScsiError.of(SenseKey.NotReady, Asc.NotReadySanitizeInProgress, { progress })
}

/** MEDIUM ERROR / SANITIZE COMMAND FAILED: the unit is in sanitize failure mode. */
export function sanitizeFailed(): ScsiError {
  return ScsiError.of(SenseKey.MediumError, Asc.SanitizeCommandFailed)
}

export function internalTargetFailure(): ScsiResult {
  return checkCondition(SenseKey.HardwareError, Asc.InternalTargetFailure)
}

// ---- decoding (tests, logs) ----------------------------------------------------------------

export interface DecodedSense {
  responseCode: number
  valid: boolean
  senseKey: number
  asc: number
  ascq: number
  information: number
  /** Present when SKSV is set (for NOT READY and NO SENSE the same bytes are the progress). */
  fieldPointer?: number
  /** PROGRESS INDICATION, present when SKSV is set and the sense key is NOT READY or NO SENSE. */
  progress?: number
  bitPointer?: number
  cd?: boolean
}

/** Decode fixed-format sense data (0x70/0x71). Throws on other formats. */
export function decodeSense(b: Buffer): DecodedSense {
  const responseCode = b[0] & 0x7f
  if (responseCode !== 0x70 && responseCode !== 0x71) {
    throw new Error(`not fixed-format sense data (response code 0x${responseCode.toString(16)})`)
  }
  const out: DecodedSense = {
    responseCode,
    valid: (b[0] & 0x80) !== 0,
    senseKey: b[2] & 0x0f,
    asc: b.length > 12 ? b[12] : 0,
    ascq: b.length > 13 ? b[13] : 0,
    information: b.readUInt32BE(3),
  }
  if (b.length >= 18 && (b[15] & 0x80) !== 0) {
    out.cd = (b[15] & 0x40) !== 0
    if (b[15] & 0x08) out.bitPointer = b[15] & 0x07
    out.fieldPointer = b.readUInt16BE(16)
    if (out.senseKey === SenseKey.NotReady || out.senseKey === SenseKey.NoSense) out.progress = out.fieldPointer
  }
  return out
}

/** Thrown by handlers to end a command with RESERVATION CONFLICT status (no sense data). */
export class ReservationConflictError extends Error {
  constructor() {
    super('reservation conflict')
    this.name = 'ReservationConflictError'
  }
}

export function reservationConflict(): ReservationConflictError {
  return new ReservationConflictError()
}
