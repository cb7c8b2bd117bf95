// The on-disk format of a persisted journal (`<dir>/journal.log`), versions 1 and 2.
//
// All integers are little-endian. A file is a header followed by records; records are only ever
// appended, except that compaction writes a fresh file (live entries only) and renames it over
// the old one, and opening a journal for writing truncates a torn tail.
//
// File header, 32 bytes:
//   0  8  magic "ISHAJRNL"
//   8  2  format version: 1, or 2 once the file may hold a DISCARD record (see Versions)
//  10  2  header length (32)
//  12  4  flags (0)
//  16  8  created at, ms since the epoch (float64)
//  24  4  generation: 0 for a new file, +1 at every compaction
//  28  4  CRC32C of bytes 0..27
//
// Record (8-byte header, payload, 4-byte trailer):
//   0  2  record magic 0x524a ("JR" on disk)
//   2  1  type: 1 ENTRY, 2 COMPLETE, 3 CLEAR, 4 DISCARD (version 2)
//   3  1  flags (0)
//   4  4  total record length in bytes, header and trailer included
//   8  .. payload
//  len-4  4  CRC32C of bytes 0..len-5 (header and payload)
//
// ENTRY payload: one committed-not-completed copy (a JournalEntry)
//   0  8  epoch            u64
//   8  8  seq              u64
//  16  8  offset           u64, byte offset on the LUN
//  24  8  receivedAtMs     float64
//  32  4  lun              u32
//  36  4  itt              u32
//  40  4  checksum         u32, the entry's CRC32C of its data (checked again before replay)
//  44  4  data length      u32
//  48  2  target length    u16 (UTF-8 bytes)
//  50  2  initiator length u16
//  52  2  isid length      u16
//  54  2  reserved (0)
//  56  .. target, initiator, isid (UTF-8), then the data
// A later ENTRY (or DISCARD) with the same (epoch, seq) replaces an earlier one.
//
// DISCARD payload: one committed-not-completed deallocation (a DiscardEntry: UNMAP, WRITE SAME
// with UNMAP): the range reads as zeros; replay deallocates it. No data.
//   0  8  epoch            u64
//   8  8  seq              u64
//  16  8  offset           u64, byte offset on the LUN
//  24  8  receivedAtMs     float64
//  32  4  lun              u32
//  36  4  itt              u32
//  40  4  checksum         u32, discardChecksum(offset, length) (entry.ts; checked before replay)
//  44  4  reserved (0)
//  48  2  target length    u16 (UTF-8 bytes)
//  50  2  initiator length u16
//  52  2  isid length      u16
//  54  2  reserved (0)
//  56  8  length           u64, bytes deallocated (at least 1)
//  64  .. target, initiator, isid (UTF-8)
//
// COMPLETE payload: copies that reached storage and are dropped
//   0  8  epoch            u64
//   8  4  count            u32
//  12  4  reserved (0)
//  16  .. count × seq      u64
//
// CLEAR payload: empty. Drops every entry recorded before it.
//
// Versions. Version 2 only adds the DISCARD record. A journal is created as version 1 and its
// header is rewritten to version 2 just before its first DISCARD record is appended, so a file
// that never held a discard stays readable by builds that know version 1 only, and one that did
// is refused by them with a clear "unsupported version" instead of looking corrupt. This build
// reads both, and accepts a DISCARD record under a version 1 header (a crash between the header
// rewrite and the append reaching the disk can leave that).
//
// Reading: records are applied in file order. A record that is cut short by the end of the file,
// or that fails its check (magic, type, length, CRC) with nothing but zero bytes after it, is a
// torn tail from a crash in the middle of an append: it is ignored (the copies in it were never
// confirmed). A record that fails its check with other data after it is corruption, reported as
// JOURNAL_CORRUPT with the record's byte offset.

import { crc32c } from '../wire/digest.js'
import type { DiscardEntry, JournalEntry, WriteEntry } from '../ha/types.js'

/** The newest format version this build writes and reads. */
export const FORMAT_VERSION = 2
/** The oldest format version this build reads. */
export const MIN_FORMAT_VERSION = 1
/** The version a journal is created with (it becomes 2 at its first DISCARD record). */
export const BASE_FORMAT_VERSION = 1
/** The version a file must carry once it holds a DISCARD record. */
export const DISCARD_FORMAT_VERSION = 2
export const FILE_MAGIC = Buffer.from('ISHAJRNL', 'latin1')
export const FILE_HEADER_LENGTH = 32
export const RECORD_MAGIC = 0x524a
export const RECORD_HEADER_LENGTH = 8
export const RECORD_TRAILER_LENGTH = 4
export const ENTRY_FIXED_LENGTH = 56
export const DISCARD_FIXED_LENGTH = 64
/** Largest record the reader accepts: a bound on what a damaged length field can make us read. */
export const MAX_RECORD_LENGTH = 0x7fff_ffff

export const enum RecordType {
  Entry = 1,
  Complete = 2,
  Clear = 3,
  Discard = 4,
}

const TWO_32 = 0x1_0000_0000

function writeU64(buf: Buffer, value: number, at: number): void {
  buf.writeUInt32LE(value % TWO_32, at)
  buf.writeUInt32LE(Math.floor(value / TWO_32), at + 4)
}

function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * TWO_32
}

export interface FileHeader {
  version: number
  createdAtMs: number
  generation: number
}

export function encodeFileHeader(h: { createdAtMs: number; generation: number; version?: number }): Buffer {
  const b = Buffer.alloc(FILE_HEADER_LENGTH)
  FILE_MAGIC.copy(b, 0)
  b.writeUInt16LE(h.version ?? BASE_FORMAT_VERSION, 8)
  b.writeUInt16LE(FILE_HEADER_LENGTH, 10)
  b.writeUInt32LE(0, 12)
  b.writeDoubleLE(h.createdAtMs, 16)
  b.writeUInt32LE(h.generation >>> 0, 24)
  b.writeUInt32LE(crc32c(b.subarray(0, 28)), 28)
  return b
}

export type HeaderProblem = 'short' | 'magic' | 'version' | 'crc'

/** Parse a file header; returns the problem instead of throwing so callers can word the error. */
export function decodeFileHeader(b: Buffer): FileHeader | { problem: HeaderProblem; version?: number } {
  if (b.length < FILE_HEADER_LENGTH) return { problem: 'short' }
  if (!b.subarray(0, 8).equals(FILE_MAGIC)) return { problem: 'magic' }
  const version = b.readUInt16LE(8)
  if (version < MIN_FORMAT_VERSION || version > FORMAT_VERSION) return { problem: 'version', version }
  if (b.readUInt32LE(28) !== crc32c(b.subarray(0, 28))) return { problem: 'crc' }
  return { version, createdAtMs: b.readDoubleLE(16), generation: b.readUInt32LE(24) }
}

/** The encoded record as buffers to write in order (the data is not copied), and its length. */
export interface EncodedRecord {
  parts: Buffer[]
  length: number
}

function finish(head: Buffer, body: Buffer | undefined, type: RecordType, length: number): EncodedRecord {
  head.writeUInt16LE(RECORD_MAGIC, 0)
  head.writeUInt8(type, 2)
  head.writeUInt8(0, 3)
  head.writeUInt32LE(length, 4)
  const trailer = Buffer.allocUnsafe(RECORD_TRAILER_LENGTH)
  let crc = crc32c(head)
  if (body && body.length > 0) crc = crc32c(body, crc)
  trailer.writeUInt32LE(crc, 0)
  return { parts: body && body.length > 0 ? [head, body, trailer] : [head, trailer], length }
}

export function entryRecordLength(e: JournalEntry): number {
  return (
    RECORD_HEADER_LENGTH +
    (e.kind === 'discard' ? DISCARD_FIXED_LENGTH : ENTRY_FIXED_LENGTH + e.data.length) +
    Buffer.byteLength(e.key.target, 'utf8') +
    Buffer.byteLength(e.initiator, 'utf8') +
    Buffer.byteLength(e.isid, 'utf8') +
    RECORD_TRAILER_LENGTH
  )
}

/** The record of an entry: ENTRY for a write, DISCARD for a discard. */
export function encodeEntry(e: JournalEntry): EncodedRecord {
  const discard = e.kind === 'discard'
  const fixed = discard ? DISCARD_FIXED_LENGTH : ENTRY_FIXED_LENGTH
  const target = Buffer.from(e.key.target, 'utf8')
  const initiator = Buffer.from(e.initiator, 'utf8')
  const isid = Buffer.from(e.isid, 'utf8')
  const headLength = RECORD_HEADER_LENGTH + fixed + target.length + initiator.length + isid.length
  const length = headLength + (discard ? 0 : e.data.length) + RECORD_TRAILER_LENGTH
  const head = Buffer.allocUnsafe(headLength)
  const p = RECORD_HEADER_LENGTH
  writeU64(head, e.epoch, p)
  writeU64(head, e.seq, p + 8)
  writeU64(head, e.offset, p + 16)
  head.writeDoubleLE(e.receivedAtMs, p + 24)
  head.writeUInt32LE(e.key.lun >>> 0, p + 32)
  head.writeUInt32LE(e.itt >>> 0, p + 36)
  head.writeUInt32LE(e.checksum >>> 0, p + 40)
  head.writeUInt32LE(discard ? 0 : e.data.length, p + 44)
  head.writeUInt16LE(target.length, p + 48)
  head.writeUInt16LE(initiator.length, p + 50)
  head.writeUInt16LE(isid.length, p + 52)
  head.writeUInt16LE(0, p + 54)
  if (discard) writeU64(head, e.length, p + 56)
  let at = p + fixed
  at += target.copy(head, at)
  at += initiator.copy(head, at)
  isid.copy(head, at)
  if (discard) return finish(head, undefined, RecordType.Discard, length)
  return finish(head, e.data, RecordType.Entry, length)
}

export function encodeComplete(epoch: number, seqs: readonly number[]): EncodedRecord {
  const length = RECORD_HEADER_LENGTH + 16 + seqs.length * 8 + RECORD_TRAILER_LENGTH
  const head = Buffer.allocUnsafe(length - RECORD_TRAILER_LENGTH)
  const p = RECORD_HEADER_LENGTH
  writeU64(head, epoch, p)
  head.writeUInt32LE(seqs.length, p + 8)
  head.writeUInt32LE(0, p + 12)
  for (let i = 0; i < seqs.length; i++) writeU64(head, seqs[i]!, p + 16 + i * 8)
  return finish(head, undefined, RecordType.Complete, length)
}

export function encodeClear(): EncodedRecord {
  return finish(Buffer.allocUnsafe(RECORD_HEADER_LENGTH), undefined, RecordType.Clear, RECORD_HEADER_LENGTH + RECORD_TRAILER_LENGTH)
}

export type DecodedRecord =
  | { type: RecordType.Entry; entry: WriteEntry }
  | { type: RecordType.Discard; entry: DiscardEntry }
  | { type: RecordType.Complete; epoch: number; seqs: number[] }
  | { type: RecordType.Clear }

/**
 * Check the 8-byte record header at `b[0..8)`: returns the record length, or a reason it is
 * not a record.
 */
export function checkRecordHeader(b: Buffer): number | string {
  if (b.readUInt16LE(0) !== RECORD_MAGIC) return 'bad record magic'
  const type = b.readUInt8(2)
  if (type !== RecordType.Entry && type !== RecordType.Complete && type !== RecordType.Clear && type !== RecordType.Discard) {
    return `unknown record type ${type}`
  }
  const length = b.readUInt32LE(4)
  if (length < RECORD_HEADER_LENGTH + RECORD_TRAILER_LENGTH || length > MAX_RECORD_LENGTH) {
    return `impossible record length ${length}`
  }
  return length
}

/**
 * Decode one whole record (`b` is exactly the record). Returns a reason string when the record
 * fails its check. The entry's data is copied out of `b` so `b` may be reused.
 */
export function decodeRecord(b: Buffer): DecodedRecord | string {
  const head = checkRecordHeader(b)
  if (typeof head === 'string') return head
  if (head !== b.length) return `record length ${head} does not match ${b.length}`
  const crcAt = b.length - RECORD_TRAILER_LENGTH
  if (crc32c(b.subarray(0, crcAt)) !== b.readUInt32LE(crcAt)) return 'record CRC mismatch'
  const type = b.readUInt8(2) as RecordType
  const p = RECORD_HEADER_LENGTH
  const payload = crcAt - p
  switch (type) {
    case RecordType.Clear:
      return payload === 0 ? { type } : 'CLEAR record with a payload'
    case RecordType.Complete: {
      if (payload < 16) return 'COMPLETE record too short'
      const count = b.readUInt32LE(p + 8)
      if (payload !== 16 + count * 8) return 'COMPLETE record length does not match its count'
      const seqs: number[] = new Array<number>(count)
      for (let i = 0; i < count; i++) seqs[i] = readU64(b, p + 16 + i * 8)
      return { type, epoch: readU64(b, p), seqs }
    }
    case RecordType.Entry: {
      if (payload < ENTRY_FIXED_LENGTH) return 'ENTRY record too short'
      const dataLength = b.readUInt32LE(p + 44)
      const sb = stringBytes(b)
      if (payload !== ENTRY_FIXED_LENGTH + sb + dataLength) return 'ENTRY record length does not match its fields'
      const strings = readStrings(b, p + ENTRY_FIXED_LENGTH)
      const at = p + ENTRY_FIXED_LENGTH + sb
      const entry: WriteEntry = { ...commonFields(b, p, strings), data: Buffer.from(b.subarray(at, at + dataLength)) }
      return { type, entry }
    }
    case RecordType.Discard: {
      if (payload < DISCARD_FIXED_LENGTH) return 'DISCARD record too short'
      if (b.readUInt32LE(p + 44) !== 0 || b.readUInt16LE(p + 54) !== 0) return 'DISCARD record with reserved bytes set'
      if (payload !== DISCARD_FIXED_LENGTH + stringBytes(b)) return 'DISCARD record length does not match its fields'
      const strings = readStrings(b, p + DISCARD_FIXED_LENGTH)
      const entry: DiscardEntry = { kind: 'discard', ...commonFields(b, p, strings), length: readU64(b, p + 56) }
      return { type, entry }
    }
  }
}

/** Bytes of the target, initiator and isid of an ENTRY or DISCARD payload (lengths at 48..53). */
function stringBytes(b: Buffer): number {
  const p = RECORD_HEADER_LENGTH
  return b.readUInt16LE(p + 48) + b.readUInt16LE(p + 50) + b.readUInt16LE(p + 52)
}

/** The target, initiator and isid, whose bytes start at `at` (lengths checked by the caller). */
/** The fields ENTRY and DISCARD records share, at the same offsets of their payload. */
function commonFields(b: Buffer, p: number, strings: { target: string; initiator: string; isid: string }) {
  return {
    epoch: readU64(b, p),
    seq: readU64(b, p + 8),
    key: { target: strings.target, lun: b.readUInt32LE(p + 32) },
    offset: readU64(b, p + 16),
    checksum: b.readUInt32LE(p + 40),
    initiator: strings.initiator,
    isid: strings.isid,
    itt: b.readUInt32LE(p + 36),
    receivedAtMs: b.readDoubleLE(p + 24),
  }
}

function readStrings(b: Buffer, at: number): { target: string; initiator: string; isid: string } {
  const p = RECORD_HEADER_LENGTH
  const tl = b.readUInt16LE(p + 48)
  const il = b.readUInt16LE(p + 50)
  const sl = b.readUInt16LE(p + 52)
  return {
    target: b.toString('utf8', at, at + tl),
    initiator: b.toString('utf8', at + tl, at + tl + il),
    isid: b.toString('utf8', at + tl + il, at + tl + il + sl),
  }
}
