// Journal entries for tests.

import type { JournalEntry } from '../../../src/ha/types.js'
import { JournalError } from '../../../src/journal/index.js'
import { crc32c } from '../../../src/wire/digest.js'

export function entry(seq: number, offset: number, data: Buffer | string, over: Partial<JournalEntry> = {}): JournalEntry {
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

/** The JournalError code a promise rejects with (undefined when it resolves). */
export async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
    return undefined
  } catch (e) {
    return e instanceof JournalError ? e.code : `not a JournalError: ${String(e)}`
  }
}
