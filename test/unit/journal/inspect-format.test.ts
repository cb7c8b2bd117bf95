// `journal inspect` rows for discard entries: kind, range length, a KIND column only when needed.

import { describe, expect, it } from 'vitest'
import { apiEntryOf, blockSizeLookup, journalBodyProblem, journalLines, toRow, type JournalReport } from '../../../src/cli/journal-format.js'
import { discard, entry } from './fixtures.js'

describe('journal inspect: discard entries', () => {
  const now = 5000
  const d = apiEntryOf(discard(2, 8 * 512, 1 << 30, { receivedAtMs: 4000 }), now)
  const w = apiEntryOf(entry(1, 0, Buffer.alloc(4096), { receivedAtMs: 4500 }), now)

  it('lists a discard with kind "discard" and its range as bytes; a write as kind "write"', () => {
    expect(d).toMatchObject({ seq: 2, kind: 'discard', offset: 4096, bytes: 1 << 30, ageMs: 1000 })
    expect(w).toMatchObject({ seq: 1, kind: 'write', bytes: 4096 })
    expect(toRow(d, blockSizeLookup(undefined))).toMatchObject({ lba: 8, blocks: (1 << 30) / 512 })
    expect(journalBodyProblem({ node: 'b', role: 'secondary', stats: {}, entries: [d, w] })).toBeUndefined()
    expect(journalBodyProblem({ node: 'b', role: 'secondary', stats: {}, entries: [{ ...d, kind: 'trim' }] })).toMatch(/kind/)
    // A node from before discards sends no kind: still a valid listing.
    const { kind: _, ...old } = w
    expect(journalBodyProblem({ node: 'b', role: 'secondary', stats: {}, entries: [old] })).toBeUndefined()
  })

  it('shows a KIND column only when a discard is listed', () => {
    const report = (entries: typeof d[]): JournalReport => ({
      source: { kind: 'dir', dir: '/j' },
      stats: { entries: entries.length, bytes: 4096 },
      blockSizes: 'default-512',
      entries: entries.map((e) => toRow(e, blockSizeLookup(undefined))),
    })
    const mixed = journalLines(report([w, d])).join('\n')
    expect(mixed).toMatch(/SEQ\s+EPOCH\s+KIND\s+LUN\s+LBA\s+BLOCKS\s+AGE/)
    expect(mixed).toMatch(/\n1\s+1\s+write\s+0\s+0\s+8\s/)
    expect(mixed).toMatch(/\n2\s+1\s+discard\s+0\s+8\s+2097152\s/)
    const writes = journalLines(report([w])).join('\n')
    expect(writes).toMatch(/SEQ\s+EPOCH\s+LUN\s+LBA/)
    expect(writes).not.toContain('KIND')
  })
})
