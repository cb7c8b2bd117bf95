// The persisted journal: group commit, reopen, crash tails, corruption, compaction, locking.

import { appendFile, mkdir, mkdtemp, readFile, readdir, rm, stat, truncate, writeFile, type FileHandle } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { JournalEntry } from '../../../src/ha/types.js'
import { FORMAT_VERSION, JOURNAL_FILE, Journal, JournalError, entryRecordLength } from '../../../src/journal/index.js'
import { encodeFileHeader } from '../../../src/journal/format.js'
import { openBackend } from '../../../src/storage/index.js'
import { MemoryDevice } from '../../helpers/memory-device.js'
import { codeOf, discard, entry } from './fixtures.js'

const HEADER = 32

let root: string
let opened: Journal[] = []

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'journal-test-'))
  opened = []
})

afterEach(async () => {
  for (const j of opened) await j.close()
  await rm(root, { recursive: true, force: true })
})

async function openJ(dir: string, opts: Parameters<typeof Journal.open>[1] = {}): Promise<Journal> {
  const j = await Journal.open(dir, opts)
  opened.push(j)
  return j
}

function summary(es: JournalEntry[]): string[] {
  return es.map((e) => `${e.epoch}/${e.seq}@${e.offset}:${e.kind === 'discard' ? `discard ${e.length}` : e.data.toString('hex')}`)
}

/** The format version in a journal file's header. */
async function fileVersion(dir: string): Promise<number> {
  return (await readFile(join(dir, JOURNAL_FILE))).readUInt16LE(8)
}

/** A crash: the bytes of `from`'s journal file (as the disk has them) in a fresh directory. */
async function crashCopy(from: string, name: string, mutate?: (b: Buffer) => Buffer): Promise<string> {
  const dir = join(root, name)
  const bytes = await readFile(join(from, JOURNAL_FILE))
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, JOURNAL_FILE), mutate ? mutate(Buffer.from(bytes)) : bytes)
  return dir
}

describe('Journal (persisted)', () => {
  it('creates a journal, confirms durable copies and reloads them with every field', async () => {
    const dir = join(root, 'j')
    const j = await openJ(dir)
    const e1 = entry(1, 4096, Buffer.alloc(4096, 1), { key: { target: 'iqn.x:ü', lun: 7 }, itt: 0xfffffffe, receivedAtMs: 1.7e12 + 0.5 })
    const e2 = entry(2 ** 40, 2 ** 45, 'big numbers', { epoch: 2 ** 33, itt: 5 })
    await j.add(e1)
    await j.add(e2)
    await j.add(entry(3, 0, ''))
    await j.close()
    const k = await openJ(dir, { readOnly: true })
    expect(k.pending()).toEqual([e1, entry(3, 0, ''), e2])
    expect(k.loadInfo).toMatchObject({ records: 3, ignoredTailBytes: 0, generation: 0 })
  })

  it('group-commits copies that arrive together into one write and one fdatasync', async () => {
    const j = await openJ(join(root, 'g'))
    const before = j.stats()
    await Promise.all(Array.from({ length: 200 }, (_, i) => j.add(entry(i + 1, i * 512, Buffer.alloc(512, i)))))
    const after = j.stats()
    expect(after.entries).toBe(200)
    expect(after.fileWrites! - before.fileWrites!).toBeLessThanOrEqual(2)
    expect(after.fileSyncs! - before.fileSyncs!).toBeLessThanOrEqual(2)
  })

  it('persists completions and clears', async () => {
    const dir = join(root, 'c')
    const j = await openJ(dir)
    for (let s = 1; s <= 5; s++) await j.add(entry(s, 0, `v${s}`))
    await j.add(entry(1, 0, 'e2', { epoch: 2 }))
    j.complete([2, 4], 1)
    j.complete([1]) // epoch 2
    await j.close()
    const k = await openJ(dir)
    expect(k.pending().map((e) => `${e.epoch}/${e.seq}`)).toEqual(['1/1', '1/3', '1/5'])
    k.clear()
    await k.add(entry(9, 0, 'after-clear'))
    await k.close()
    const m = await openJ(dir, { readOnly: true })
    expect(m.pending().map((e) => e.seq)).toEqual([9])
  })

  it('a later copy with the same (epoch, seq) replaces the earlier one', async () => {
    const dir = join(root, 'r')
    const j = await openJ(dir)
    await j.add(entry(1, 0, 'old'))
    await j.add(entry(1, 0, 'new'))
    await j.close()
    const k = await openJ(dir, { readOnly: true })
    expect(summary(k.pending())).toEqual([`1/1@0:${Buffer.from('new').toString('hex')}`])
    expect(k.stats().bytes).toBe(3)
  })

  it('ignores a record cut short at any offset (crash in the middle of an append) and truncates it', async () => {
    const dir = join(root, 'src')
    const j = await openJ(dir)
    const es = [entry(1, 0, 'alpha'), entry(2, 8, Buffer.alloc(100, 2)), entry(3, 16, 'gamma')]
    const ends: number[] = []
    let end = HEADER
    for (const e of es) {
      await j.add(e)
      end += entryRecordLength(e)
      ends.push(end)
    }
    j.complete([2])
    await j.sync()
    const full = (await stat(join(dir, JOURNAL_FILE))).size
    expect(full).toBe(end + 8 + 16 + 8 + 4)
    for (let cut = HEADER; cut < full; cut++) {
      const d = await crashCopy(dir, 'cut', (b) => b.subarray(0, cut))
      const k = await Journal.open(d, { readOnly: true })
      const complete = ends.filter((x) => x <= cut).length
      const expected = es.slice(0, complete).map((e) => e.seq)
      expect(k.pending().map((e) => e.seq), `cut at ${cut}`).toEqual(expected)
      expect(k.loadInfo!.ignoredTailBytes).toBe(cut - (complete === 0 ? HEADER : ends[complete - 1]!))
      await k.close()
    }
    // Writable open truncates the torn tail, so later appends follow the last good record.
    const d = await crashCopy(dir, 'cut2', (b) => b.subarray(0, ends[2]! - 3))
    const k = await Journal.open(d)
    expect((await stat(join(d, JOURNAL_FILE))).size).toBe(ends[1])
    await k.add(entry(4, 0, 'delta'))
    await k.close()
    const m = await openJ(d, { readOnly: true })
    expect(m.pending().map((e) => e.seq)).toEqual([1, 2, 4])
    expect(m.loadInfo!.ignoredTailBytes).toBe(0)
  })

  it('ignores zero bytes after the last record (blocks allocated but never written)', async () => {
    const dir = join(root, 'z')
    const j = await openJ(dir)
    await j.add(entry(1, 0, 'a'))
    await j.close()
    await appendFile(join(dir, JOURNAL_FILE), Buffer.alloc(4096))
    const k = await openJ(dir, { readOnly: true })
    expect(k.pending().map((e) => e.seq)).toEqual([1])
    expect(k.loadInfo!.ignoredTailBytes).toBe(4096)
  })

  it('ignores a torn last record whose data is zeros but whose length arrived', async () => {
    const dir = join(root, 'tz')
    const j = await openJ(dir)
    await j.add(entry(1, 0, 'a'))
    const e2 = entry(2, 0, Buffer.alloc(64, 9))
    await j.add(e2)
    await j.close()
    const size = (await stat(join(dir, JOURNAL_FILE))).size
    const d = await crashCopy(dir, 'tz2', (b) => {
      b.fill(0, size - 40) // the end of the last record never reached the disk
      return b
    })
    const k = await openJ(d, { readOnly: true })
    expect(k.pending().map((e) => e.seq)).toEqual([1])
  })

  it('reports a corrupt record in the middle with its offset; salvage keeps what precedes it', async () => {
    const dir = join(root, 'm')
    const j = await openJ(dir)
    const e1 = entry(1, 0, 'first')
    await j.add(e1)
    await j.add(entry(2, 0, 'second'))
    await j.add(entry(3, 0, 'third'))
    await j.close()
    const second = HEADER + entryRecordLength(e1)
    const d = await crashCopy(dir, 'm2', (b) => {
      b[second + 70] ^= 0xff // inside record 2
      return b
    })
    const err = await Journal.open(d).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(JournalError)
    expect((err as JournalError).code).toBe('JOURNAL_CORRUPT')
    expect((err as JournalError).offset).toBe(second)
    expect((err as JournalError).message).toContain(`offset ${second}`)
    // The failed open released its lock.
    const s = await openJ(d, { salvage: true })
    expect(s.pending().map((e) => e.seq)).toEqual([1])
    expect(s.loadInfo!.salvagedAtOffset).toBe(second)
    expect((await readdir(d)).some((n) => n.startsWith(`${JOURNAL_FILE}.corrupt-`))).toBe(true)
  })

  it('refuses a damaged header and an unknown format version', async () => {
    const dir = join(root, 'h')
    await (await openJ(dir)).close()
    const bad = await crashCopy(dir, 'h1', (b) => {
      b[20] ^= 1
      return b
    })
    expect(await codeOf(Journal.open(bad, { readOnly: true }))).toBe('JOURNAL_CORRUPT')
    const v3 = await crashCopy(dir, 'h2', (b) => {
      b.writeUInt16LE(FORMAT_VERSION + 1, 8)
      return b
    })
    expect(await codeOf(Journal.open(v3, { readOnly: true }))).toBe('JOURNAL_UNSUPPORTED_VERSION')
    expect((await Journal.open(v3, { readOnly: true }).then(() => new Error('opened'), (e: Error) => e)).message).toMatch(/reads versions 1 to 2/)
    expect(await codeOf(Journal.open(join(root, 'none'), { readOnly: true }))).toBe('JOURNAL_NOT_FOUND')
  })

  it('locks the directory against a second writer; read-only inspection still works', async () => {
    const dir = join(root, 'l')
    const j = await openJ(dir)
    await j.add(entry(1, 0, 'a'))
    expect(await codeOf(Journal.open(dir))).toBe('JOURNAL_LOCKED')
    const ro = await openJ(dir, { readOnly: true })
    expect(ro.pending().map((e) => e.seq)).toEqual([1])
    expect(await codeOf(ro.add(entry(2, 0, 'b')))).toBe('JOURNAL_READ_ONLY')
    await j.close()
    const again = await openJ(dir)
    expect(again.pending().map((e) => e.seq)).toEqual([1])
  })

  it('takes over a stale lock left by a process that is gone', async () => {
    const dir = join(root, 's')
    await (await openJ(dir)).close()
    await writeFile(join(dir, 'journal.lock'), '999999999\n')
    const j = await openJ(dir)
    expect(j.stats().entries).toBe(0)
  })

  it('compacts a mostly dead file into a new one and keeps the live copies', async () => {
    const dir = join(root, 'k')
    const j = await openJ(dir, { compactMinBytes: 64 * 1024, compactDeadRatio: 0.75 })
    let seq = 0
    const live: number[] = []
    for (let round = 0; round < 20; round++) {
      const batch: number[] = []
      for (let i = 0; i < 16; i++) batch.push(++seq)
      await Promise.all(batch.map((s) => j.add(entry(s, s * 1024, Buffer.alloc(1024, s & 0xff)))))
      // Keep one copy of each round, complete the rest.
      live.push(batch[0]!)
      j.complete(batch.slice(1))
    }
    await j.add(entry(++seq, 0, 'last'))
    live.push(seq)
    await j.sync()
    const s = j.stats()
    expect(s.compactions).toBeGreaterThan(0)
    expect(s.fileBytes).toBeLessThan(64 * 1024 * 2)
    expect(s.fileBytes).toBe((await stat(join(dir, JOURNAL_FILE))).size)
    await j.close()
    const k = await openJ(dir, { readOnly: true })
    expect(k.pending().map((e) => e.seq)).toEqual(live)
    expect(k.loadInfo!.generation).toBe(s.compactions)
    for (const e of k.pending().slice(0, -1)) expect(e.data).toEqual(Buffer.alloc(1024, e.seq & 0xff))
  })

  it('replays a persisted journal after both controllers died, then holds nothing', async () => {
    const dir = join(root, 'p')
    const j = await openJ(dir)
    await j.add(entry(2, 0, 'BB'))
    await j.add(entry(1, 0, 'AAAA'))
    // Both controllers die: the journal is never closed. Offline replay opens a copy of the disk.
    const d = await crashCopy(dir, 'p2')
    const k = await openJ(d)
    const dev = new MemoryDevice(8)
    expect(await k.applyToBackends(() => dev)).toEqual({ replayed: 2, bytes: 6, discardedBytes: 0, devices: 1 })
    expect(dev.data.subarray(0, 4).toString()).toBe('BBAA')
    await k.close()
    const m = await openJ(d, { readOnly: true })
    expect(m.pending()).toEqual([])
  })

  it('refuses changes after close', async () => {
    const j = await Journal.open(join(root, 'x'))
    await j.close()
    expect(await codeOf(j.add(entry(1, 0, 'a')))).toBe('JOURNAL_CLOSED')
    expect(() => j.complete([1])).toThrow(JournalError)
  })

  it('a failed append rejects the copies of its batch, drops them, and refuses further copies', async () => {
    const dir = join(root, 'io')
    const j = await openJ(dir)
    await j.add(entry(1, 0, 'kept'))
    // Pull the file out from under the journal: the next append fails with EBADF.
    await (j as unknown as { fh: FileHandle }).fh.close()
    const results = await Promise.all([codeOf(j.add(entry(2, 0, 'a'))), codeOf(j.add(entry(3, 0, 'b')))])
    expect(results).toEqual(['JOURNAL_IO_FAILED', 'JOURNAL_IO_FAILED'])
    expect(j.pending().map((e) => e.seq)).toEqual([1])
    expect(await codeOf(j.add(entry(4, 0, 'c')))).toBe('JOURNAL_IO_FAILED')
    opened = opened.filter((x) => x !== j)
    await j.close().catch(() => undefined)
  })

  it('removes a leftover temporary file of an interrupted compaction', async () => {
    const dir = join(root, 't')
    await (await openJ(dir)).close()
    await writeFile(join(dir, `${JOURNAL_FILE}.tmp`), 'junk')
    await truncate(join(dir, JOURNAL_FILE), HEADER)
    await (await openJ(dir)).close()
    expect(await readdir(dir)).toEqual([JOURNAL_FILE])
  })
})

describe('Journal (persisted): discard entries', () => {
  it('persists a discard with every field; the file becomes version 2 at its first discard, not before', async () => {
    const dir = join(root, 'd')
    const j = await openJ(dir)
    await j.add(entry(1, 0, 'before'))
    await j.sync()
    expect(await fileVersion(dir)).toBe(1) // no discard yet: still readable by builds that know version 1 only
    const d = discard(2, 2 ** 45, 2 ** 50, { key: { target: 'iqn.x:ü', lun: 9 }, itt: 0xfffffffe, receivedAtMs: 1.7e12 + 0.25 })
    await j.add(d)
    await j.add(entry(3, 4096, Buffer.alloc(4096, 3)))
    expect(await fileVersion(dir)).toBe(2)
    expect(j.stats()).toMatchObject({ entries: 3, bytes: 6 + 4096 })
    await j.close()
    const k = await openJ(dir, { readOnly: true })
    expect(k.pending()).toEqual([entry(1, 0, 'before'), d, entry(3, 4096, Buffer.alloc(4096, 3))])
    expect(k.loadInfo).toMatchObject({ version: 2, records: 3, ignoredTailBytes: 0 })
    expect(entryRecordLength(d)).toBe(8 + 64 + Buffer.byteLength('iqn.x:ü') + d.initiator.length + d.isid.length + 4)
  })

  it('a journal that never held a discard stays version 1', async () => {
    const dir = join(root, 'v1')
    const j = await openJ(dir)
    await j.add(entry(1, 0, 'a'))
    j.complete([1])
    await j.close()
    expect(await fileVersion(dir)).toBe(1)
    expect((await openJ(dir, { readOnly: true })).loadInfo!.version).toBe(1)
  })

  it('reads a discard record under a version 1 header (a crash before the header rewrite reached the disk)', async () => {
    const dir = join(root, 'dv')
    const j = await openJ(dir)
    await j.add(discard(1, 0, 8192))
    await j.close()
    const d = await crashCopy(dir, 'dv1', (b) => {
      const h = encodeFileHeader({ createdAtMs: b.readDoubleLE(16), generation: b.readUInt32LE(24), version: 1 })
      h.copy(b, 0)
      return b
    })
    const k = await openJ(d)
    expect(k.pending()).toEqual([discard(1, 0, 8192)])
    await k.add(discard(2, 0, 512))
    await k.close()
    expect(await fileVersion(d)).toBe(2) // the next discard appended puts the header right
  })

  it('completes, replaces and clears discards like writes; a torn discard record is ignored at any cut', async () => {
    const dir = join(root, 'dt')
    const j = await openJ(dir)
    await j.add(discard(1, 0, 4096))
    await j.add(discard(1, 0, 8192)) // a resend replaces it
    await j.add(entry(2, 0, 'w'))
    const last = discard(3, 512, 1024)
    await j.add(last)
    j.complete([2])
    await j.close()
    const k = await openJ(dir, { readOnly: true })
    expect(summary(k.pending())).toEqual(['1/1@0:discard 8192', '1/3@512:discard 1024'])
    await k.close()
    const full = (await stat(join(dir, JOURNAL_FILE))).size
    const completeRecord = 8 + 16 + 8 + 4
    const lastEnd = full - completeRecord
    for (let cut = lastEnd - entryRecordLength(last); cut < lastEnd; cut++) {
      const d = await crashCopy(dir, 'dtc', (b) => b.subarray(0, cut))
      const m = await Journal.open(d, { readOnly: true })
      expect(m.pending().map((e) => e.seq), `cut at ${cut}`).toEqual([1, 2])
      await m.close()
    }
  })

  it('compaction keeps the live discards and the file version', async () => {
    const dir = join(root, 'dk')
    const j = await openJ(dir, { compactMinBytes: 32 * 1024, compactDeadRatio: 0.75 })
    let seq = 0
    const live: number[] = []
    for (let round = 0; round < 10; round++) {
      const batch: number[] = []
      for (let i = 0; i < 8; i++) batch.push(++seq)
      await Promise.all(batch.map((s) => (s % 2 ? j.add(entry(s, s * 1024, Buffer.alloc(1024, s & 0xff))) : j.add(discard(s, s * 4096, 4096)))))
      live.push(batch[1]!) // a discard
      j.complete(batch.filter((s) => s !== batch[1]))
    }
    await j.add(entry(++seq, 0, 'last'))
    live.push(seq)
    await j.sync()
    expect(j.stats().compactions).toBeGreaterThan(0)
    await j.close()
    const k = await openJ(dir, { readOnly: true })
    expect(k.pending().map((e) => e.seq)).toEqual(live)
    expect(k.pending().slice(0, -1).every((e) => e.kind === 'discard' && e.length === 4096 && e.offset === e.seq * 4096)).toBe(true)
    expect(k.loadInfo!.version).toBe(2)
  })

  it('offline replay of a discard punches a hole in a sparse LUN file: its blocks go back, the range reads zeros', async () => {
    const lun = join(root, 'lun.img')
    const size = 8 << 20
    const backend = await openBackend({ path: lun, sizeBytes: size, io: 'threadpool' })
    await backend.write(0, Buffer.alloc(size, 0x5a), { fua: true })
    const before = (await stat(lun)).blocks * 512
    const dir = join(root, 'dr')
    const j = await openJ(dir)
    await j.add(entry(1, 1 << 20, Buffer.alloc(4096, 1))) // overwritten by the discard
    await j.add(discard(2, 1 << 20, 6 << 20))
    await j.add(entry(3, 4 << 20, Buffer.alloc(4096, 3))) // lands inside the hole afterwards
    // Both controllers die; `iscsi-ha replay` opens the journal and the LUN.
    const d = await crashCopy(dir, 'dr2')
    const k = await openJ(d)
    expect(await k.applyToBackends(() => backend)).toEqual({ replayed: 3, bytes: 8192, discardedBytes: 6 << 20, devices: 1 })
    const after = (await stat(lun)).blocks * 512
    expect(before).toBeGreaterThanOrEqual(size)
    expect(before - after).toBeGreaterThanOrEqual((6 << 20) - 2 * 4096 - 64 * 1024)
    const img = await backend.read(0, size)
    expect(img.subarray(0, 1 << 20).every((b) => b === 0x5a)).toBe(true)
    expect(img.subarray(1 << 20, 4 << 20).every((b) => b === 0)).toBe(true)
    expect(img.subarray(4 << 20, (4 << 20) + 4096).every((b) => b === 3)).toBe(true)
    expect(img.subarray((4 << 20) + 4096, 7 << 20).every((b) => b === 0)).toBe(true)
    expect(img.subarray(7 << 20).every((b) => b === 0x5a)).toBe(true)
    expect(k.pending()).toEqual([])
    await backend.close()
  })
})
