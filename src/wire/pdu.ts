// iSCSI PDU shapes (RFC 7143 §11). The codec (parser.ts, serializer.ts) turns bytes into these
// objects and back; nothing in this folder touches a socket.

export const BHS_LENGTH = 48

export const enum Opcode {
  // initiator → target
  NopOut = 0x00,
  ScsiCommand = 0x01,
  TaskMgmtRequest = 0x02,
  LoginRequest = 0x03,
  TextRequest = 0x04,
  DataOut = 0x05,
  LogoutRequest = 0x06,
  Snack = 0x10,
  // target → initiator
  NopIn = 0x20,
  ScsiResponse = 0x21,
  TaskMgmtResponse = 0x22,
  LoginResponse = 0x23,
  TextResponse = 0x24,
  DataIn = 0x25,
  LogoutResponse = 0x26,
  R2T = 0x31,
  AsyncMessage = 0x32,
  Reject = 0x3f,
}

/** The reserved "no tag" value for ITT and TTT (RFC 7143 §11.18, §11.19). */
export const RESERVED_TAG = 0xffffffff

/** RFC 7143 §11.17.1 Reject reasons. */
export const enum RejectReason {
  DataDigestError = 0x02,
  SnackReject = 0x03,
  ProtocolError = 0x04,
  CommandNotSupported = 0x05,
  ImmediateCommandRejected = 0x06,
  TaskInProgress = 0x07,
  InvalidDataAck = 0x08,
  InvalidPduField = 0x09,
  OutOfResources = 0x0a,
  NegotiationReset = 0x0b,
  WaitingForLogout = 0x0c,
}

/** RFC 7143 §11.5.1 Task management functions. */
export const enum TmfFunction {
  AbortTask = 1,
  AbortTaskSet = 2,
  ClearAca = 3,
  ClearTaskSet = 4,
  LogicalUnitReset = 5,
  TargetWarmReset = 6,
  TargetColdReset = 7,
  TaskReassign = 8,
}

/** RFC 7143 §11.6.1 Task management responses. */
export const enum TmfResponse {
  Complete = 0,
  TaskDoesNotExist = 1,
  LunDoesNotExist = 2,
  TaskStillAllegiant = 3,
  ReassignmentNotSupported = 4,
  NotSupported = 5,
  AuthorizationFailed = 6,
  Rejected = 255,
}

/** SAM task attributes carried in the SCSI Command ATTR field. */
export const enum TaskAttribute {
  Untagged = 0,
  Simple = 1,
  Ordered = 2,
  HeadOfQueue = 3,
  Aca = 4,
}

/** Login stages (CSG/NSG). */
export const enum LoginStage {
  Security = 0,
  Operational = 1,
  FullFeature = 3,
}

/** Fields every PDU carries. `data` is a view into the receive buffer: copy it to keep it. */
interface PduBase {
  /** I bit (byte 0, 0x40). */
  immediate: boolean
  /** Additional header segments, raw (RFC 7143 §11.2.2), each {type, bytes} without padding. */
  ahs: AdditionalHeader[]
  data: Buffer
}

export interface AdditionalHeader {
  type: number // 1 = extended CDB, 2 = bidirectional read expected data transfer length
  specific: number
  bytes: Buffer
}

export interface NopOut extends PduBase {
  opcode: Opcode.NopOut
  lun: bigint
  itt: number
  ttt: number
  cmdSN: number
  expStatSN: number
}

export interface ScsiCommand extends PduBase {
  opcode: Opcode.ScsiCommand
  final: boolean
  read: boolean
  write: boolean
  attribute: TaskAttribute
  lun: bigint
  itt: number
  expectedDataTransferLength: number
  cmdSN: number
  expStatSN: number
  /** Whole CDB: the 16-byte field, extended by an AHS of type 1 when present. */
  cdb: Buffer
  /**
   * Set by a parser with `retainChunks` when `data` is a view into a pushed chunk the parser
   * never overwrites, so it may be kept after onPdu returns (no copy for immediate data).
   */
  dataRetainable?: boolean
}

export interface TaskMgmtRequest extends PduBase {
  opcode: Opcode.TaskMgmtRequest
  function: TmfFunction
  lun: bigint
  itt: number
  referencedTaskTag: number
  cmdSN: number
  expStatSN: number
  refCmdSN: number
  expDataSN: number
}

export interface LoginRequest extends PduBase {
  opcode: Opcode.LoginRequest
  transit: boolean
  continue: boolean
  csg: number
  nsg: number
  versionMax: number
  versionMin: number
  /** 6-byte ISID as a 12-digit lowercase hex string, so it can key a map. */
  isid: string
  tsih: number
  itt: number
  cid: number
  cmdSN: number
  expStatSN: number
}

export interface TextRequest extends PduBase {
  opcode: Opcode.TextRequest
  final: boolean
  continue: boolean
  lun: bigint
  itt: number
  ttt: number
  cmdSN: number
  expStatSN: number
}

export interface DataOut extends PduBase {
  opcode: Opcode.DataOut
  final: boolean
  lun: bigint
  itt: number
  ttt: number
  expStatSN: number
  dataSN: number
  bufferOffset: number
}

export interface LogoutRequest extends PduBase {
  opcode: Opcode.LogoutRequest
  /** 0 close session, 1 close connection, 2 remove connection for recovery. */
  reason: number
  itt: number
  cid: number
  cmdSN: number
  expStatSN: number
}

export interface Snack extends PduBase {
  opcode: Opcode.Snack
  type: number
  lun: bigint
  itt: number
  ttt: number
  expStatSN: number
  begRun: number
  runLength: number
}

export interface NopIn extends PduBase {
  opcode: Opcode.NopIn
  lun: bigint
  itt: number
  ttt: number
  statSN: number
  expCmdSN: number
  maxCmdSN: number
}

export interface ScsiResponse extends PduBase {
  opcode: Opcode.ScsiResponse
  bidiOverflow: boolean
  bidiUnderflow: boolean
  overflow: boolean
  underflow: boolean
  /** 0 = command completed at target, 1 = target failure. */
  response: number
  status: number
  itt: number
  snackTag: number
  statSN: number
  expCmdSN: number
  maxCmdSN: number
  expDataSN: number
  bidiResidualCount: number
  residualCount: number
  /** Sense data without the 2-byte SenseLength prefix; the serializer adds it. */
  sense?: Buffer
}

export interface TaskMgmtResponse extends PduBase {
  opcode: Opcode.TaskMgmtResponse
  response: TmfResponse
  itt: number
  statSN: number
  expCmdSN: number
  maxCmdSN: number
}

export interface LoginResponse extends PduBase {
  opcode: Opcode.LoginResponse
  transit: boolean
  continue: boolean
  csg: number
  nsg: number
  versionMax: number
  versionActive: number
  isid: string
  tsih: number
  itt: number
  statSN: number
  expCmdSN: number
  maxCmdSN: number
  statusClass: number
  statusDetail: number
}

export interface TextResponse extends PduBase {
  opcode: Opcode.TextResponse
  final: boolean
  continue: boolean
  lun: bigint
  itt: number
  ttt: number
  statSN: number
  expCmdSN: number
  maxCmdSN: number
}

export interface DataIn extends PduBase {
  opcode: Opcode.DataIn
  final: boolean
  acknowledge: boolean
  overflow: boolean
  underflow: boolean
  /** S bit: status is carried in this PDU (then `final` must be set too). */
  hasStatus: boolean
  status: number
  lun: bigint
  itt: number
  ttt: number
  statSN: number
  expCmdSN: number
  maxCmdSN: number
  dataSN: number
  bufferOffset: number
  residualCount: number
}

export interface LogoutResponse extends PduBase {
  opcode: Opcode.LogoutResponse
  response: number
  itt: number
  statSN: number
  expCmdSN: number
  maxCmdSN: number
  time2Wait: number
  time2Retain: number
}

export interface R2T extends PduBase {
  opcode: Opcode.R2T
  lun: bigint
  itt: number
  ttt: number
  statSN: number
  expCmdSN: number
  maxCmdSN: number
  r2tSN: number
  bufferOffset: number
  desiredDataTransferLength: number
}

export interface AsyncMessage extends PduBase {
  opcode: Opcode.AsyncMessage
  lun: bigint
  statSN: number
  expCmdSN: number
  maxCmdSN: number
  asyncEvent: number
  asyncVCode: number
  parameter1: number
  parameter2: number
  parameter3: number
}

export interface Reject extends PduBase {
  opcode: Opcode.Reject
  reason: RejectReason
  statSN: number
  expCmdSN: number
  maxCmdSN: number
  dataSN: number
  // data carries the rejected PDU's 48-byte header
}

export type InitiatorPdu =
  | NopOut
  | ScsiCommand
  | TaskMgmtRequest
  | LoginRequest
  | TextRequest
  | DataOut
  | LogoutRequest
  | Snack

export type TargetPdu =
  | NopIn
  | ScsiResponse
  | TaskMgmtResponse
  | LoginResponse
  | TextResponse
  | DataIn
  | LogoutResponse
  | R2T
  | AsyncMessage
  | Reject

export type Pdu = InitiatorPdu | TargetPdu
