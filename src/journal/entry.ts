// What a journal entry covers, what it costs, and its checksum. Shared by the primary (which
// checksums its copies), the peer codec (which verifies them on receipt) and the journal (which
// verifies them again before replay), so all three agree.

import type { CopyRequest, JournalEntry } from '../ha/types.js'
import { crc32c } from '../wire/digest.js'

/**
 * What a discard entry counts against the byte bounds (the journal's maxBytes, the primary's
 * maxPendingBytes) although it holds no data: as if it held one 4 KiB page. A discard still
 * takes memory (an object, a map slot, a record on disk), so this bounds how many of them can
 * be held: 65536 in the default 256 MiB, whatever the size of the ranges they deallocate.
 */
export const DISCARD_ENTRY_BYTES = 4096

/** Bytes of the LUN the entry covers: the data of a write, the range of a discard. */
export function entryLength(e: JournalEntry): number {
  return e.kind === 'discard' ? e.length : e.data.length
}

/** Data bytes the entry holds (none for a discard). */
export function entryDataBytes(e: JournalEntry): number {
  return e.kind === 'discard' ? 0 : e.data.length
}

/** What the entry counts against a byte bound (see DISCARD_ENTRY_BYTES). */
export function entryCharge(e: JournalEntry | CopyRequest): number {
  return e.kind === 'discard' ? DISCARD_ENTRY_BYTES : e.data.length
}

const TWO_32 = 0x1_0000_0000
const range = Buffer.alloc(17)

/**
 * The checksum of a discard: CRC32C over the byte 'D' (0x44), then offset and length as
 * little-endian u64. It makes a discard whose range was damaged (in memory, on disk) fail its
 * check before replay, as a write with damaged data does.
 */
export function discardChecksum(offset: number, length: number): number {
  range[0] = 0x44
  range.writeUInt32LE(offset % TWO_32, 1)
  range.writeUInt32LE(Math.floor(offset / TWO_32), 5)
  range.writeUInt32LE(length % TWO_32, 9)
  range.writeUInt32LE(Math.floor(length / TWO_32), 13)
  return crc32c(range)
}

/** The checksum the entry must carry: CRC32C of a write's data, discardChecksum of a discard's range. */
export function entryChecksum(e: JournalEntry | CopyRequest): number {
  return e.kind === 'discard' ? discardChecksum(e.offset, e.length) : crc32c(e.data)
}
