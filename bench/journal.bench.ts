// Journal append micro-benchmarks. Run: npx vitest bench --run bench/journal.bench.ts
//
// Each op adds a batch of copies and then completes them (so the journal stays small and the
// file keeps compacting). Entries per second = ops/sec × the batch size in the bench name;
// MB/s = entries/s × the entry size. Persisted runs go to os.tmpdir(), with fdatasync: the
// figures depend on the disk under it.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, bench, describe } from 'vitest'
import type { JournalEntry } from '../src/ha/types.js'
import { Journal } from '../src/journal/index.js'
import { crc32c } from '../src/wire/digest.js'

function makeEntries(n: number, size: number): JournalEntry[] {
  const out: JournalEntry[] = []
  for (let i = 0; i < n; i++) {
    const data = Buffer.alloc(size, i & 0xff)
    out.push({
      seq: 0,
      epoch: 1,
      key: { target: 'iqn.2024-01.bench:disk', lun: 0 },
      offset: i * size,
      data,
      checksum: crc32c(data),
      initiator: 'iqn.1994-05.com.redhat:bench',
      isid: '400001370000',
      itt: i,
      receivedAtMs: Date.now(),
    })
  }
  return out
}

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

function runner(journal: () => Promise<Journal>, entries: JournalEntry[]): () => Promise<void> {
  let seq = 0
  let j: Journal | undefined
  return async () => {
    j ??= await journal()
    const seqs: number[] = []
    const adds: Promise<void>[] = []
    for (const e of entries) {
      const s = ++seq
      seqs.push(s)
      adds.push(j.add({ ...e, seq: s }))
    }
    await Promise.all(adds)
    j.complete(seqs)
  }
}

function persisted(): Promise<Journal> {
  const dir = mkdtempSync(join(tmpdir(), 'journal-bench-'))
  dirs.push(dir)
  return Journal.open(dir, { maxBytes: 1 << 30 })
}

const memory = (): Promise<Journal> => Promise.resolve(new Journal({ maxBytes: 1 << 30 }))

describe('journal append, in memory', () => {
  bench('4 KiB × 256 per op', runner(memory, makeEntries(256, 4096)))
  bench('64 KiB × 64 per op', runner(memory, makeEntries(64, 65536)))
})

describe('journal append, persisted (group commit + fdatasync)', () => {
  bench('4 KiB × 1 per op (one fdatasync each)', runner(persisted, makeEntries(1, 4096)))
  bench('4 KiB × 64 per op (arriving together)', runner(persisted, makeEntries(64, 4096)))
  bench('64 KiB × 16 per op (arriving together)', runner(persisted, makeEntries(16, 65536)))
  bench('256 KiB × 16 per op (arriving together)', runner(persisted, makeEntries(16, 262144)))
})
