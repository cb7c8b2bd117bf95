// INQUIRY data (SPC-4 §6.6) and vital product data pages (SPC-4 §7.8, SBC-3 §6.5). The data is
// built once per logical unit: nothing in it changes while the unit exists.

import type { LuContext } from './context.js'
import { putAscii } from './cdb.js'
import { thirdPartyCopyPage } from './commands/xcopy.js'

export const enum VpdPage {
  SupportedPages = 0x00,
  UnitSerialNumber = 0x80,
  DeviceIdentification = 0x83,
  ThirdPartyCopy = 0x8f,
  BlockLimits = 0xb0,
  BlockDeviceCharacteristics = 0xb1,
  LogicalBlockProvisioning = 0xb2,
}

export const SUPPORTED_VPD_PAGES: readonly number[] = [
  VpdPage.SupportedPages,
  VpdPage.UnitSerialNumber,
  VpdPage.DeviceIdentification,
  VpdPage.ThirdPartyCopy,
  VpdPage.BlockLimits,
  VpdPage.BlockDeviceCharacteristics,
  VpdPage.LogicalBlockProvisioning,
]

/** Version descriptors (SPC-4 table 146): SAM-5, iSCSI, SPC-4, SBC-3. */
const VERSION_DESCRIPTORS = [0x00a0, 0x0960, 0x0460, 0x04c0]

const STANDARD_LENGTH = 96

/** Standard INQUIRY data: direct-access block device, SPC-4, HiSup, CmdQue. */
export function standardInquiry(lu: LuContext): Buffer {
  const b = Buffer.alloc(STANDARD_LENGTH)
  b[0] = 0x00 // peripheral qualifier 0 (connected), device type 0 (direct access block)
  b[1] = lu.medium.removable ? 0x80 : 0x00 // RMB
  b[2] = 0x06 // VERSION: SPC-4
  b[3] = 0x12 // HISUP=1, RESPONSE DATA FORMAT=2
  b[4] = STANDARD_LENGTH - 5
  b[5] = 0x08 // SCCS=0 ACC=0 TPGS=0 3PC=1 (EXTENDED COPY) PROTECT=0
  b[6] = 0x00 // ENCSERV=0 MULTIP=0
  b[7] = 0x02 // CMDQUE=1
  putAscii(b, 8, 8, lu.identity.vendor)
  putAscii(b, 16, 16, lu.identity.product)
  putAscii(b, 32, 4, lu.identity.revision)
  for (let i = 0; i < VERSION_DESCRIPTORS.length; i++) b.writeUInt16BE(VERSION_DESCRIPTORS[i], 58 + 2 * i)
  return b
}

function vpd(code: number, body: Buffer): Buffer {
  const b = Buffer.alloc(4 + body.length)
  b[1] = code // byte 0: peripheral qualifier/type 0
  b.writeUInt16BE(body.length, 2)
  body.copy(b, 4)
  return b
}

const PROTOCOL_ISCSI = 0x5
const CODE_SET_BINARY = 0x1
const CODE_SET_ASCII = 0x2
const CODE_SET_UTF8 = 0x3
const ASSOC_LU = 0x0
const ASSOC_TARGET_PORT = 0x1
const ASSOC_TARGET_DEVICE = 0x2
const TYPE_T10_VENDOR = 0x1
const TYPE_NAA = 0x3
const TYPE_RELATIVE_TARGET_PORT = 0x4
const TYPE_SCSI_NAME = 0x8

function designator(opts: { protocol?: number; codeSet: number; assoc: number; type: number; value: Buffer }): Buffer {
  const piv = opts.protocol !== undefined
  const b = Buffer.alloc(4 + opts.value.length)
  b[0] = ((opts.protocol ?? 0) << 4) | opts.codeSet
  b[1] = (piv ? 0x80 : 0) | (opts.assoc << 4) | opts.type
  b[3] = opts.value.length
  opts.value.copy(b, 4)
  return b
}

/** SCSI name string: UTF-8, null terminated, padded with nulls to a multiple of 4 bytes. */
function scsiNameString(s: string): Buffer {
  const raw = Buffer.from(s, 'utf8')
  const len = (raw.length + 1 + 3) & ~3
  const b = Buffer.alloc(len)
  raw.copy(b)
  return b
}

/** The iSCSI name of a target port: `<target name>,t,0x<tpgt as 4 hex digits>` (RFC 7143). */
export function targetPortName(targetName: string, tpgt: number): string {
  return `${targetName},t,0x${tpgt.toString(16).padStart(4, '0')}`
}

function deviceIdentification(lu: LuContext): Buffer {
  const id = lu.identity
  const t10 = Buffer.alloc(8 + id.serial.length)
  putAscii(t10, 0, 8, id.vendor)
  t10.write(id.serial, 8, 'latin1')
  const rtpi = Buffer.alloc(4)
  rtpi.writeUInt16BE(id.relativeTargetPortId, 2)
  return Buffer.concat([
    // The logical unit: NAA (what hosts key multipath and /dev/disk/by-id on) and T10 vendor id.
    designator({ codeSet: CODE_SET_BINARY, assoc: ASSOC_LU, type: TYPE_NAA, value: id.naa }),
    designator({ codeSet: CODE_SET_ASCII, assoc: ASSOC_LU, type: TYPE_T10_VENDOR, value: t10 }),
    // The target port the command came through.
    designator({
      protocol: PROTOCOL_ISCSI,
      codeSet: CODE_SET_BINARY,
      assoc: ASSOC_TARGET_PORT,
      type: TYPE_RELATIVE_TARGET_PORT,
      value: rtpi,
    }),
    designator({
      protocol: PROTOCOL_ISCSI,
      codeSet: CODE_SET_UTF8,
      assoc: ASSOC_TARGET_PORT,
      type: TYPE_SCSI_NAME,
      value: scsiNameString(targetPortName(id.targetName, id.tpgt)),
    }),
    // The SCSI target device (the iSCSI target name).
    designator({
      protocol: PROTOCOL_ISCSI,
      codeSet: CODE_SET_UTF8,
      assoc: ASSOC_TARGET_DEVICE,
      type: TYPE_SCSI_NAME,
      value: scsiNameString(id.targetName),
    }),
  ])
}

function blockLimits(lu: LuContext): Buffer {
  const b = Buffer.alloc(0x3c)
  const l = lu.limits
  // Offsets below are page offsets minus the 4-byte header. Byte 4: WSNZ=0 (WRITE SAME with
  // zero blocks writes to the end of the medium).
  b[5 - 4] = l.maxCompareAndWriteBlocks
  b.writeUInt16BE(1 << lu.physicalBlockExponent, 6 - 4) // OPTIMAL TRANSFER LENGTH GRANULARITY
  b.writeUInt32BE(lu.maxTransferBlocks, 8 - 4) // MAXIMUM TRANSFER LENGTH
  b.writeUInt32BE(lu.optimalTransferBlocks, 12 - 4) // OPTIMAL TRANSFER LENGTH
  b.writeUInt32BE(l.maxPrefetchBlocks, 16 - 4) // MAXIMUM PREFETCH LENGTH
  b.writeUInt32BE(l.maxUnmapBlocks, 20 - 4) // MAXIMUM UNMAP LBA COUNT
  b.writeUInt32BE(l.maxUnmapDescriptors, 24 - 4) // MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT
  b.writeUInt32BE(l.unmapGranularity, 28 - 4) // OPTIMAL UNMAP GRANULARITY
  b.writeUInt32BE(0x8000_0000, 32 - 4) // UGAVALID=1, UNMAP GRANULARITY ALIGNMENT=0
  b.writeUInt32BE(Math.floor(l.maxWriteSameBlocks / 0x1_0000_0000), 36 - 4) // MAXIMUM WRITE SAME LENGTH
  b.writeUInt32BE(l.maxWriteSameBlocks >>> 0, 40 - 4)
  b.writeUInt32BE(l.maxAtomicBlocks, 44 - 4) // MAXIMUM ATOMIC TRANSFER LENGTH
  b.writeUInt32BE(l.atomicAlignment, 48 - 4) // ATOMIC ALIGNMENT
  b.writeUInt32BE(l.atomicGranularity, 52 - 4) // ATOMIC TRANSFER LENGTH GRANULARITY
  // Atomic boundaries are not supported: MAXIMUM ATOMIC TRANSFER LENGTH WITH ATOMIC BOUNDARY
  // and MAXIMUM ATOMIC BOUNDARY SIZE stay 0.
  return b
}

function blockDeviceCharacteristics(): Buffer {
  const b = Buffer.alloc(0x3c)
  b.writeUInt16BE(0x0001, 0) // MEDIUM ROTATION RATE: non-rotating medium
  b[7 - 4] = 0x40 // WABEREQ=01b: reads after SANITIZE BLOCK ERASE succeed (zeros); WACEREQ=0
  return b
}

function logicalBlockProvisioning(): Buffer {
  const b = Buffer.alloc(4)
  // THRESHOLD EXPONENT 0 (no thresholds).
  // LBPU=1 (UNMAP), LBPWS=1 (WRITE SAME(16) UNMAP), LBPWS10=1, LBPRZ=1 (deallocated blocks read
  // zeros), ANC_SUP=0, DP=0 (no provisioning group descriptor).
  b[1] = 0x80 | 0x40 | 0x20 | 0x04
  b[2] = 0x02 // PROVISIONING TYPE: thin provisioned
  return b
}

/** Every VPD page, keyed by page code. */
export function buildVpdPages(lu: LuContext): Map<number, Buffer> {
  const pages = new Map<number, Buffer>()
  pages.set(VpdPage.SupportedPages, vpd(VpdPage.SupportedPages, Buffer.from(SUPPORTED_VPD_PAGES)))
  pages.set(VpdPage.UnitSerialNumber, vpd(VpdPage.UnitSerialNumber, Buffer.from(lu.identity.serial, 'latin1')))
  pages.set(VpdPage.DeviceIdentification, vpd(VpdPage.DeviceIdentification, deviceIdentification(lu)))
  pages.set(VpdPage.ThirdPartyCopy, vpd(VpdPage.ThirdPartyCopy, thirdPartyCopyPage(lu)))
  pages.set(VpdPage.BlockLimits, vpd(VpdPage.BlockLimits, blockLimits(lu)))
  pages.set(VpdPage.BlockDeviceCharacteristics, vpd(VpdPage.BlockDeviceCharacteristics, blockDeviceCharacteristics()))
  pages.set(VpdPage.LogicalBlockProvisioning, vpd(VpdPage.LogicalBlockProvisioning, logicalBlockProvisioning()))
  return pages
}
