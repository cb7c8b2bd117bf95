// CDB field helpers shared by the handlers and the data-out planners.

import type { LuContext } from './context.js'
import { invalidFieldInCdb, lbaOutOfRange, softwareWriteProtected, writeProtected } from './sense.js'

/** Largest LBA high word for which hi * 2^32 + lo stays an exact double (2^53). */
const MAX_SAFE_HI = 0x1fffff

/**
 * The 8-byte LBA at `off` as a number, or -1 when it is beyond 2^53 (certainly out of range
 * for any device we can address).
 */
export function readLba64(cdb: Buffer, off: number): number {
  const hi = cdb.readUInt32BE(off)
  if (hi > MAX_SAFE_HI) return -1
  return hi * 0x1_0000_0000 + cdb.readUInt32BE(off + 4)
}

/** Where a read/write-family CDB keeps its fields. */
export interface RwLayout {
  /** Byte offset of the LBA; for 6-byte CDBs the 21-bit LBA is in bytes 1..3. */
  lbaOff: number
  /** Bytes of LBA: 4 or 8; 3 for 6-byte CDBs (21 bits: byte 1 bits 4..0, bytes 2..3). */
  lbaLen: 3 | 4 | 8
  lenOff: number
  lenLen: 1 | 2 | 4
}

export const RW6: RwLayout = { lbaOff: 1, lbaLen: 3, lenOff: 4, lenLen: 1 }
export const RW10: RwLayout = { lbaOff: 2, lbaLen: 4, lenOff: 7, lenLen: 2 }
export const RW12: RwLayout = { lbaOff: 2, lbaLen: 4, lenOff: 6, lenLen: 4 }
export const RW16: RwLayout = { lbaOff: 2, lbaLen: 8, lenOff: 10, lenLen: 4 }

export function readLba(cdb: Buffer, l: RwLayout): number {
  switch (l.lbaLen) {
    case 3:
      return ((cdb[1] & 0x1f) << 16) | cdb.readUInt16BE(2)
    case 4:
      return cdb.readUInt32BE(l.lbaOff)
    case 8:
      return readLba64(cdb, l.lbaOff)
  }
}

/** The TRANSFER LENGTH (blocks); for 6-byte CDBs 0 means 256. */
export function readBlocks(cdb: Buffer, l: RwLayout): number {
  switch (l.lenLen) {
    case 1:
      return cdb[l.lenOff] === 0 ? 256 : cdb[l.lenOff]
    case 2:
      return cdb.readUInt16BE(l.lenOff)
    case 4:
      return cdb.readUInt32BE(l.lenOff)
  }
}

/** LOGICAL BLOCK ADDRESS OUT OF RANGE unless [lba, lba+blocks) lies within the medium. */
export function checkRange(lu: LuContext, lba: number, blocks: number): void {
  if (lba < 0 || lba + blocks > lu.capacityBlocks) throw lbaOutOfRange()
}

/** INVALID FIELD IN CDB (pointing at the transfer length) when above the Block Limits maximum. */
export function checkTransferLength(lu: LuContext, blocks: number, l: RwLayout): void {
  if (blocks > lu.maxTransferBlocks) throw invalidFieldInCdb(l.lenOff)
}

/** *PROTECT fields (byte 1 bits 7..5) must be zero: no protection information. */
export function checkNoProtect(cdb: Buffer): void {
  if (cdb[1] & 0xe0) throw invalidFieldInCdb(1, 7)
}

export function checkWritable(lu: LuContext): void {
  if (lu.readOnly) throw writeProtected()
  if (lu.modes.softwareWriteProtect) throw softwareWriteProtected()
}

/** NACA and LINK in the CONTROL byte (last CDB byte) are not supported. */
export function checkControlByte(cdb: Buffer, cdbLength: number): void {
  const control = cdb[cdbLength - 1]
  if (control & 0x04) throw invalidFieldInCdb(cdbLength - 1, 2)
  if (control & 0x01) throw invalidFieldInCdb(cdbLength - 1, 0)
}

/** Truncate `data` to the allocation length without copying. */
export function clip(data: Buffer, allocationLength: number): Buffer {
  return data.length > allocationLength ? data.subarray(0, allocationLength) : data
}

/** Write `s` left-aligned and space-padded into `buf[off, off+width)`. */
export function putAscii(buf: Buffer, off: number, width: number, s: string): void {
  buf.fill(0x20, off, off + width)
  buf.write(s.slice(0, width), off, width, 'latin1')
}
