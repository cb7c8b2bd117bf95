// Journal entries for tests.

import type { DiscardEntry, WriteEntry } from '../../../src/ha/types.js'
import { JournalError, discardChecksum } from '../../../src/journal/index.js'
import { crc32c } from '../../../src/wire/digest.js'

export function entry(seq: number, offset: number, data: Buffer | string, over: Partial<WriteEntry> = {}): WriteEntry {
  const buf = typeof data === 'string' ? Buffer.from(data) : data
  return {
    seq,
    epoch: 1,
    key: { target: 'iqn.2024-01.test:disk', lun: 0 },
    offset,
    data: buf,
    checksum: crc32c(buf),
    initiator: 'iqn.1994-05.com.redhat:host',
    isid: '400001370000',
    itt: seq,
    receivedAtMs: 1000 + seq,
    ...over,
  }
}

/** A discard (UNMAP) of `length` bytes at `offset`: no data, checksummed over its range. */
export function discard(seq: number, offset: number, length: number, over: Partial<DiscardEntry> = {}): DiscardEntry {
  return {
    kind: 'discard',
    seq,
    epoch: 1,
    key: { target: 'iqn.2024-01.test:disk', lun: 0 },
    offset,
    length,
    checksum: discardChecksum(offset, length),
    initiator: 'iqn.1994-05.com.redhat:host',
    isid: '400001370000',
    itt: seq,
    receivedAtMs: 1000 + seq,
    ...over,
  }
}

/** The JournalError code a promise rejects with (undefined when it resolves). */
export async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
    return undefined
  } catch (e) {
    return e instanceof JournalError ? e.code : `not a JournalError: ${String(e)}`
  }
}
