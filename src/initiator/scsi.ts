// The SCSI side of the initiator: the request/result shapes handed to and returned by
// IscsiInitiatorConnection.scsi(), CDB builders for the commands the convenience calls use
// (SBC-3 / SPC-4), and parsers for what those commands return. No I/O here.

import type { TaskAttribute } from '../wire/pdu.js'

export interface ScsiRequest {
  cdb: Buffer
  lun: number
  /** Data-Out (write direction); its length is the ExpectedDataTransferLength. */
  dataOut?: Buffer
  /** Bytes of Data-In the command may return (read direction). */
  readLength?: number
  /** SAM task attribute (default SIMPLE). */
  attribute?: TaskAttribute
}

export interface Residual {
  overflow: boolean
  underflow: boolean
  count: number
}

export interface SenseData {
  /** The sense bytes as received (without the 2-byte SenseLength prefix). */
  raw: Buffer
  /** 0x70/0x71 fixed format, 0x72/0x73 descriptor format. */
  responseCode: number
  key: number
  asc: number
  ascq: number
}

export interface ScsiResult {
  /** SAM status (0 GOOD, 2 CHECK CONDITION, ...). */
  status: number
  /** iSCSI Response field (0 = command completed at target, 1 = target failure). */
  response: number
  sense?: SenseData
  /** Data-In, exactly the bytes the target transferred (trimmed to the residual). */
  data?: Buffer
  residual: Residual
  /** Data-In PDUs that made up `data`. */
  dataInPdus: number
  /** The command's Initiator Task Tag and CmdSN, for logs and ordering checks. */
  itt: number
  cmdSN: number
}

export const SCSI_GOOD = 0x00
export const SCSI_CHECK_CONDITION = 0x02

/** Sense data of either format (SPC-4 §4.5.2, §4.5.3); undefined when too short to read. */
export function parseSense(raw: Buffer): SenseData | undefined {
  if (raw.length < 1) return undefined
  const responseCode = raw[0]! & 0x7f
  if (responseCode === 0x72 || responseCode === 0x73) {
    if (raw.length < 4) return undefined
    return { raw, responseCode, key: raw[1]! & 0x0f, asc: raw[2]!, ascq: raw[3]! }
  }
  if (responseCode === 0x70 || responseCode === 0x71) {
    if (raw.length < 3) return undefined
    return { raw, responseCode, key: raw[2]! & 0x0f, asc: raw[12] ?? 0, ascq: raw[13] ?? 0 }
  }
  return undefined
}

// ------------------------------------------------------------------ CDB builders

function lba64(cdb: Buffer, offset: number, lba: bigint | number): void {
  const v = BigInt(lba)
  if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`LBA ${v} out of range`)
  cdb.writeBigUInt64BE(v, offset)
}

function blocks32(blocks: number): number {
  if (!Number.isInteger(blocks) || blocks < 0 || blocks > 0xffffffff) throw new RangeError(`block count ${blocks} out of range`)
  return blocks
}

/** READ(16) (SBC-3 §5.16). */
export function cdbRead16(lba: bigint | number, blocks: number, opts: { fua?: boolean } = {}): Buffer {
  const cdb = Buffer.alloc(16)
  cdb[0] = 0x88
  if (opts.fua) cdb[1] = 0x08
  lba64(cdb, 2, lba)
  cdb.writeUInt32BE(blocks32(blocks), 10)
  return cdb
}

/** WRITE(16) (SBC-3 §5.40); FUA is byte 1 bit 3. */
export function cdbWrite16(lba: bigint | number, blocks: number, opts: { fua?: boolean } = {}): Buffer {
  const cdb = Buffer.alloc(16)
  cdb[0] = 0x8a
  if (opts.fua) cdb[1] = 0x08
  lba64(cdb, 2, lba)
  cdb.writeUInt32BE(blocks32(blocks), 10)
  return cdb
}

/** INQUIRY (SPC-4 §6.6); `page` selects a VPD page. */
export function cdbInquiry(allocationLength = 96, page?: number): Buffer {
  const cdb = Buffer.alloc(6)
  cdb[0] = 0x12
  if (page !== undefined) {
    cdb[1] = 0x01
    cdb[2] = page & 0xff
  }
  cdb.writeUInt16BE(allocationLength & 0xffff, 3)
  return cdb
}

/** READ CAPACITY(16): SERVICE ACTION IN(16) with service action 0x10 (SBC-3 §5.24). */
export function cdbReadCapacity16(allocationLength = 32): Buffer {
  const cdb = Buffer.alloc(16)
  cdb[0] = 0x9e
  cdb[1] = 0x10
  cdb.writeUInt32BE(allocationLength, 10)
  return cdb
}

export function cdbTestUnitReady(): Buffer {
  return Buffer.alloc(6)
}

/** SYNCHRONIZE CACHE(10) of the whole medium (SBC-3 §5.26). */
export function cdbSynchronizeCache10(): Buffer {
  const cdb = Buffer.alloc(10)
  cdb[0] = 0x35
  return cdb
}

/** REPORT LUNS (SPC-4 §6.33). */
export function cdbReportLuns(allocationLength = 4096): Buffer {
  const cdb = Buffer.alloc(12)
  cdb[0] = 0xa0
  cdb.writeUInt32BE(allocationLength, 6)
  return cdb
}

// ------------------------------------------------------------------ persistent reservations

export const SCSI_RESERVATION_CONFLICT = 0x18

/** PERSISTENT RESERVE IN service actions (SPC-4 §6.15.1). */
export const PrInServiceAction = { ReadKeys: 0x00, ReadReservation: 0x01, ReportCapabilities: 0x02, ReadFullStatus: 0x03 } as const

/** PERSISTENT RESERVE OUT service actions (SPC-4 §6.16.2). */
export const PrOutServiceAction = {
  Register: 0x00, Reserve: 0x01, Release: 0x02, Clear: 0x03, Preempt: 0x04, PreemptAndAbort: 0x05,
  RegisterAndIgnoreExistingKey: 0x06, RegisterAndMove: 0x07,
} as const

/** Persistent reservation TYPE values (SPC-4 §6.15.3.3). */
export const PrReservationType = {
  WriteExclusive: 0x1, ExclusiveAccess: 0x3, WriteExclusiveRegistrantsOnly: 0x5, ExclusiveAccessRegistrantsOnly: 0x6,
  WriteExclusiveAllRegistrants: 0x7, ExclusiveAccessAllRegistrants: 0x8,
} as const

/** PERSISTENT RESERVE IN (SPC-4 §6.15). */
export function cdbPersistentReserveIn(serviceAction: number, allocationLength = 1024): Buffer {
  const cdb = Buffer.alloc(10)
  cdb[0] = 0x5e
  cdb[1] = serviceAction & 0x1f
  cdb.writeUInt16BE(allocationLength & 0xffff, 7)
  return cdb
}

/** PERSISTENT RESERVE OUT (SPC-4 §6.16); scope 0 (LU_SCOPE), the parameter list follows as Data-Out. */
export function cdbPersistentReserveOut(serviceAction: number, type = 0, parameterListLength = 24): Buffer {
  const cdb = Buffer.alloc(10)
  cdb[0] = 0x5f
  cdb[1] = serviceAction & 0x1f
  cdb[2] = type & 0x0f
  cdb.writeUInt32BE(parameterListLength, 5)
  return cdb
}

/** The basic 24-byte PERSISTENT RESERVE OUT parameter list (SPC-4 §6.16.3). */
export function prOutParameters(p: { key?: bigint; serviceActionKey?: bigint; aptpl?: boolean; allTargetPorts?: boolean }): Buffer {
  const b = Buffer.alloc(24)
  b.writeBigUInt64BE(p.key ?? 0n, 0)
  b.writeBigUInt64BE(p.serviceActionKey ?? 0n, 8)
  b[20] = (p.allTargetPorts ? 0x04 : 0) | (p.aptpl ? 0x01 : 0)
  return b
}

export interface PrKeys {
  generation: number
  keys: bigint[]
}

/** READ KEYS parameter data (SPC-4 §6.15.2). */
export function parsePrReadKeys(data: Buffer): PrKeys {
  if (data.length < 8) throw new RangeError(`READ KEYS data of ${data.length} bytes is too short`)
  const length = data.readUInt32BE(4)
  const keys: bigint[] = []
  for (let off = 8; off + 8 <= data.length && off - 8 < length; off += 8) keys.push(data.readBigUInt64BE(off))
  return { generation: data.readUInt32BE(0), keys }
}

export interface PrReservation {
  generation: number
  /** Absent when there is no persistent reservation. */
  reservation?: { key: bigint; scope: number; type: number }
}

/** READ RESERVATION parameter data (SPC-4 §6.15.3). */
export function parsePrReadReservation(data: Buffer): PrReservation {
  if (data.length < 8) throw new RangeError(`READ RESERVATION data of ${data.length} bytes is too short`)
  const generation = data.readUInt32BE(0)
  if (data.readUInt32BE(4) < 16 || data.length < 24) return { generation }
  return { generation, reservation: { key: data.readBigUInt64BE(8), scope: data[21]! >> 4, type: data[21]! & 0x0f } }
}

// ------------------------------------------------------------------ parsers

export interface InquiryData {
  peripheralQualifier: number
  peripheralDeviceType: number
  removable: boolean
  version: number
  vendor: string
  product: string
  revision: string
}

/** Standard INQUIRY data (SPC-4 §6.6.2). */
export function parseInquiry(data: Buffer): InquiryData {
  if (data.length < 5) throw new RangeError(`INQUIRY data of ${data.length} bytes is too short`)
  const text = (from: number, to: number): string => data.toString('latin1', Math.min(from, data.length), Math.min(to, data.length)).trimEnd()
  return {
    peripheralQualifier: data[0]! >> 5,
    peripheralDeviceType: data[0]! & 0x1f,
    removable: (data[1]! & 0x80) !== 0,
    version: data[2]!,
    vendor: text(8, 16),
    product: text(16, 32),
    revision: text(32, 36),
  }
}

export interface Capacity {
  lastLba: bigint
  blockSize: number
  /** lastLba + 1 */
  blocks: bigint
  /** Logical blocks per physical block exponent, and thin provisioning bits (byte 14). */
  logicalPerPhysicalExponent: number
  thinProvisioned: boolean
}

/** READ CAPACITY(16) parameter data (SBC-3 §5.24.2). */
export function parseReadCapacity16(data: Buffer): Capacity {
  if (data.length < 12) throw new RangeError(`READ CAPACITY(16) data of ${data.length} bytes is too short`)
  const lastLba = data.readBigUInt64BE(0)
  return {
    lastLba,
    blockSize: data.readUInt32BE(8),
    blocks: lastLba + 1n,
    logicalPerPhysicalExponent: data.length > 13 ? data[13]! & 0x0f : 0,
    thinProvisioned: data.length > 14 ? (data[14]! & 0x80) !== 0 : false,
  }
}

/** REPORT LUNS parameter data: the LUN numbers of single-level peripheral/flat addresses. */
export function parseReportLuns(data: Buffer): number[] {
  if (data.length < 8) return []
  const listLength = data.readUInt32BE(0)
  const out: number[] = []
  for (let off = 8; off + 8 <= data.length && off - 8 < listLength; off += 8) {
    const method = data[off]! >> 6
    if (method === 0) out.push(data[off + 1]!)
    else if (method === 1) out.push(((data[off]! & 0x3f) << 8) | data[off + 1]!)
  }
  return out
}
