// The secondary's journal: the copies of committed-not-completed writes (METHOD.md, "The write
// path", steps 2-5), kept until the primary says they are on storage, and replayed onto storage
// in (epoch, seq) order when the primary is lost.
//
// In memory only (`new Journal()`), add() confirms once the copy is held. With a directory
// (`Journal.open(dir)`), add() confirms once the copy is durably appended to `journal.log` (see
// format.ts): copies that arrive together share one write and one fdatasync (group commit).
// Completions and clears are appended too, but need no fdatasync of their own: losing one in a
// crash only means replaying a copy that is already on storage, in order, which rewrites the
// same bytes. When most of the file is dead, the live copies are rewritten to a new file that
// is renamed over the old one.

import { constants } from 'node:fs'
import { copyFile, mkdir, open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { JournalEntry, LunKey } from '../ha/types.js'
import type { BlockDevice } from '../scsi/types.js'
import { applyToBackends, type ApplyResult } from './apply.js'
import { entryCharge, entryChecksum, entryDataBytes, entryLength } from './entry.js'
import { JournalError } from './errors.js'
import {
  BASE_FORMAT_VERSION,
  DISCARD_FORMAT_VERSION,
  FILE_HEADER_LENGTH,
  FORMAT_VERSION,
  MIN_FORMAT_VERSION,
  RECORD_HEADER_LENGTH,
  RecordType,
  checkRecordHeader,
  decodeFileHeader,
  decodeRecord,
  encodeClear,
  encodeComplete,
  encodeEntry,
  encodeFileHeader,
  type EncodedRecord,
} from './format.js'

export const JOURNAL_FILE = 'journal.log'
export const JOURNAL_LOCK_FILE = 'journal.lock'
const TMP_SUFFIX = '.tmp'

export const DEFAULT_MAX_BYTES = 256 * 1024 * 1024
export const DEFAULT_COMPACT_MIN_BYTES = 16 * 1024 * 1024
export const DEFAULT_COMPACT_DEAD_RATIO = 0.75

export interface JournalOptions {
  /**
   * Bound on the bytes held: data bytes, plus DISCARD_ENTRY_BYTES (entry.ts) for each discard;
   * add() beyond it fails with JOURNAL_FULL. Default 256 MiB.
   */
  maxBytes?: number
  /** Clock for ages (tests). Default Date.now. */
  now?: () => number
}

export interface OpenOptions extends JournalOptions {
  /** Inspect only: no lock, no truncation of a torn tail, every change refused. */
  readOnly?: boolean
  /** Create the directory and an empty journal when there is none. Default true; never when readOnly. */
  create?: boolean
  /**
   * Operator recovery: treat a corrupt record like a torn tail (keep what precedes it). When
   * writable, the damaged file is first copied aside as `journal.log.corrupt-<ms>`.
   */
  salvage?: boolean
  /** Compact only once the file is at least this large. Default 16 MiB. */
  compactMinBytes?: number
  /** Compact when at least this fraction of the file is dead. Default 0.75. */
  compactDeadRatio?: number
}

export interface JournalStats {
  entries: number
  /** Data bytes held (discards hold none; maxBytes bounds these plus DISCARD_ENTRY_BYTES per discard). */
  bytes: number
  /** Seq of the first entry in replay order. */
  oldestSeq?: number
  /** Age of that entry (now − receivedAtMs). */
  oldestAgeMs?: number
  /** Persisted only: size of journal.log, and counts of appends, fdatasyncs and compactions since open. */
  fileBytes?: number
  fileWrites?: number
  fileSyncs?: number
  compactions?: number
}

/** What Journal.open found in the file. */
export interface LoadInfo {
  path: string
  createdAtMs: number
  generation: number
  /** Format version of the file's header (2 once it held a discard; see format.ts). */
  version: number
  records: number
  /** Bytes of a torn tail that were ignored (and, when writable, truncated). */
  ignoredTailBytes: number
  /** Set when salvage skipped a corrupt record: its offset. */
  salvagedAtOffset?: number
}

export interface ReplayOptions {
  /**
   * Called after every entry was applied and before any is removed: make the applied writes
   * durable here (applyToBackends flushes each touched device).
   */
  beforeRemove?: () => Promise<void>
}

interface Held {
  entry: JournalEntry
  /** Size of its ENTRY record. */
  recordBytes: number
  /** Its record is in the file and synced (always true in memory). */
  durable: boolean
}

interface Waiter {
  resolve: () => void
  reject: (e: Error) => void
  key: string
  held: Held
}

interface Queued {
  record: EncodedRecord
  waiter?: Waiter
}

function keyOf(epoch: number, seq: number): string {
  return `${epoch}/${seq}`
}

/** Replay order: epoch, then seq. */
export function compareEntries(a: JournalEntry, b: JournalEntry): number {
  return a.epoch - b.epoch || a.seq - b.seq
}

function isU64(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0
}

function validate(e: JournalEntry): string | undefined {
  if (!isU64(e.epoch)) return `epoch ${String(e.epoch)} is not a non-negative integer`
  if (!isU64(e.seq)) return `seq ${String(e.seq)} is not a non-negative integer`
  if (!isU64(e.offset)) return `offset ${String(e.offset)} is not a non-negative integer`
  if (e.kind === 'discard') {
    if (e.data !== undefined) return 'a discard carries no data'
    if (!isU64(e.length) || e.length === 0) return `discard length ${String(e.length)} is not a positive integer`
    if (!isU64(e.offset + e.length)) return 'discard range ends beyond 2^53'
  } else {
    if (e.kind !== undefined && e.kind !== 'write') return `unknown entry kind ${String(e.kind)}`
    if (!Buffer.isBuffer(e.data)) return 'data is not a Buffer'
    if (e.data.length > 0xffff_ffff) return 'data longer than 4 GiB'
  }
  if (!e.key || typeof e.key.target !== 'string' || !Number.isInteger(e.key.lun) || e.key.lun < 0 || e.key.lun > 0xffff_ffff) {
    return 'key must be {target: string, lun: 0..2^32-1}'
  }
  if (!Number.isInteger(e.itt) || e.itt < 0 || e.itt > 0xffff_ffff) return `itt ${String(e.itt)} is not a u32`
  // A CRC computed with 32-bit signed arithmetic is the same value: compared as `>>> 0`.
  if (!Number.isInteger(e.checksum) || e.checksum < -0x8000_0000 || e.checksum > 0xffff_ffff) return 'checksum is not a 32-bit value'
  if (typeof e.receivedAtMs !== 'number' || !Number.isFinite(e.receivedAtMs)) return 'receivedAtMs is not a number'
  for (const [name, s] of [['target', e.key.target], ['initiator', e.initiator], ['isid', e.isid]] as const) {
    if (typeof s !== 'string' || Buffer.byteLength(s, 'utf8') > 0xffff) return `${name} is not a string of at most 65535 bytes`
  }
  return undefined
}

function errnoOf(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined
}

/** Directories opened for writing by this process (so a stale lock of our own pid is told apart). */
const openHere = new Set<string>()

async function takeLock(dir: string): Promise<string> {
  const path = join(dir, JOURNAL_LOCK_FILE)
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600)
      try {
        await fh.writeFile(`${process.pid}\n`)
      } finally {
        await fh.close()
      }
      return path
    } catch (e) {
      if (errnoOf(e) !== 'EEXIST') throw e
    }
    let pid = NaN
    try {
      pid = Number((await readFile(path, 'utf8')).trim())
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') continue
      throw e
    }
    let alive = false
    if (Number.isSafeInteger(pid) && pid > 0) {
      if (pid === process.pid) alive = openHere.has(dir)
      else {
        try {
          process.kill(pid, 0)
          alive = true
        } catch (e) {
          alive = errnoOf(e) === 'EPERM'
        }
      }
    }
    if (alive) {
      throw new JournalError('JOURNAL_LOCKED', `${dir}: journal is in use by process ${pid}`, { path })
    }
    await rm(path, { force: true }) // stale lock of a process that is gone
  }
  throw new JournalError('JOURNAL_LOCKED', `${dir}: could not take the journal lock`, { path })
}

async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined
  try {
    fh = await open(dir, constants.O_RDONLY)
    await fh.sync()
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is then as durable as it gets.
  } finally {
    await fh?.close()
  }
}

/** Write a complete journal file (header + records) to `path` and sync it. */
async function writeFreshFile(path: string, header: Buffer, records: EncodedRecord[]): Promise<number> {
  const fh = await open(path, 'w', 0o600)
  let pos = 0
  try {
    const parts: Buffer[] = [header]
    for (const r of records) parts.push(...r.parts)
    pos = await writeAllAt(fh, parts, 0)
    await fh.datasync()
  } finally {
    await fh.close()
  }
  return pos
}

/** writev the buffers at `position`, finishing short writes; returns the position after. */
async function writeAllAt(fh: FileHandle, parts: Buffer[], position: number): Promise<number> {
  let total = 0
  for (const p of parts) total += p.length
  // writev takes at most IOV_MAX buffers per call on some platforms: go in slices of 512.
  let pos = position
  for (let i = 0; i < parts.length; i += 512) {
    const slice = parts.slice(i, i + 512)
    let want = 0
    for (const p of slice) want += p.length
    const { bytesWritten } = await fh.writev(slice, pos)
    if (bytesWritten < want) {
      const rest = Buffer.concat(slice).subarray(bytesWritten)
      let done = 0
      while (done < rest.length) {
        const r = await fh.write(rest, done, rest.length - done, pos + bytesWritten + done)
        done += r.bytesWritten
      }
    }
    pos += want
  }
  if (pos - position !== total) throw new Error('journal write accounting mismatch')
  return pos
}

/** Buffered positional reader for loading. */
class FileReader {
  private buf = Buffer.alloc(0)
  private start = 0

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
  ) {}

  /** Bytes [pos, pos+n) of the file (n must not run past the end). The view is valid until the next call. */
  async at(pos: number, n: number): Promise<Buffer> {
    if (pos >= this.start && pos + n <= this.start + this.buf.length) {
      return this.buf.subarray(pos - this.start, pos - this.start + n)
    }
    const want = Math.min(Math.max(n, 1 << 20), this.size - pos)
    const b = Buffer.allocUnsafe(want)
    let done = 0
    while (done < want) {
      const { bytesRead } = await this.fh.read(b, done, want - done, pos + done)
      if (bytesRead === 0) break
      done += bytesRead
    }
    if (done < n) throw new Error(`journal file shrank while reading (${pos}+${n})`)
    this.buf = b.subarray(0, done)
    this.start = pos
    return this.buf.subarray(0, n)
  }

  /** Are bytes [pos, size) all zero? */
  async zeroFrom(pos: number): Promise<boolean> {
    for (let p = pos; p < this.size; ) {
      const n = Math.min(1 << 20, this.size - p)
      const b = await this.at(p, n)
      for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false
      p += n
    }
    return true
  }
}

export class Journal {
  readonly maxBytes: number
  readonly dir: string | undefined
  readonly readOnly: boolean
  /** Present on a journal from Journal.open. */
  loadInfo: LoadInfo | undefined

  private readonly now: () => number
  private readonly held = new Map<string, Held>()
  /** Data bytes of the entries held (stats). */
  private dataBytes = 0
  /** What maxBytes bounds: dataBytes plus DISCARD_ENTRY_BYTES per discard. */
  private chargedBytes = 0
  /** Highest epoch seen: the epoch complete() uses when none is given. */
  private epoch = 0
  private closed = false

  // Persistence (undefined in memory).
  private fh: FileHandle | undefined
  private path: string | undefined
  private lockPath: string | undefined
  private fileBytes = 0
  private generation = 0
  private createdAtMs = 0
  /** Format version in the file's header: raised to DISCARD_FORMAT_VERSION before the first DISCARD record. */
  private fileVersion = BASE_FORMAT_VERSION
  /** Sum of recordBytes of durable held entries. */
  private liveFileBytes = 0
  private compactMinBytes = DEFAULT_COMPACT_MIN_BYTES
  private compactDeadRatio = DEFAULT_COMPACT_DEAD_RATIO
  private queue: Queued[] = []
  private writing: Promise<void> | undefined
  private needSync = false
  private syncWaiters: (() => void)[] = []
  private failed: JournalError | undefined
  private inFlight: Queued[] = []
  private compactRetryAt = 0
  private readonly counters = { writes: 0, syncs: 0, compactions: 0 }

  constructor(opts: JournalOptions & { dir?: string; readOnly?: boolean } = {}) {
    const max = opts.maxBytes ?? DEFAULT_MAX_BYTES
    if (!Number.isSafeInteger(max) || max <= 0) throw new RangeError(`maxBytes ${max} is not a positive integer`)
    this.maxBytes = max
    this.now = opts.now ?? Date.now
    this.dir = opts.dir
    this.readOnly = opts.readOnly ?? false
  }

  get persisted(): boolean {
    return this.dir !== undefined
  }

  /**
   * Load (or create) the journal persisted in `dir`. A torn tail is ignored (and truncated when
   * writable); a corrupt record followed by data is JOURNAL_CORRUPT naming its offset.
   */
  static async open(dir: string, opts: OpenOptions = {}): Promise<Journal> {
    const readOnly = opts.readOnly ?? false
    const create = !readOnly && (opts.create ?? true)
    const j = new Journal({ ...opts, dir, readOnly })
    if (opts.compactMinBytes !== undefined) j.compactMinBytes = opts.compactMinBytes
    if (opts.compactDeadRatio !== undefined) j.compactDeadRatio = opts.compactDeadRatio
    const path = join(dir, JOURNAL_FILE)
    j.path = path

    let exists = true
    try {
      await stat(path)
    } catch (e) {
      if (errnoOf(e) !== 'ENOENT') throw e
      exists = false
    }
    if (!exists && !create) {
      throw new JournalError('JOURNAL_NOT_FOUND', `${dir}: no journal (${JOURNAL_FILE}) here`, { path })
    }
    if (!readOnly) {
      await mkdir(dir, { recursive: true })
      j.lockPath = await takeLock(dir)
      openHere.add(dir)
    }
    try {
      if (!readOnly) await rm(path + TMP_SUFFIX, { force: true }) // an interrupted compaction
      if (!exists) {
        j.createdAtMs = j.now()
        const header = encodeFileHeader({ createdAtMs: j.createdAtMs, generation: 0 })
        await writeFreshFile(path + TMP_SUFFIX, header, [])
        await rename(path + TMP_SUFFIX, path)
        await fsyncDir(dir)
      }
      await j.load(path, opts.salvage ?? false)
    } catch (e) {
      await j.releaseFile()
      throw e
    }
    return j
  }

  private async load(path: string, salvage: boolean): Promise<void> {
    const fh = await open(path, this.readOnly ? constants.O_RDONLY : constants.O_RDWR)
    let keep = false
    try {
      const size = (await fh.stat()).size
      const reader = new FileReader(fh, size)
      const h = decodeFileHeader(size >= FILE_HEADER_LENGTH ? await reader.at(0, FILE_HEADER_LENGTH) : Buffer.alloc(0))
      if ('problem' in h) {
        if (h.problem === 'version') {
          throw new JournalError(
            'JOURNAL_UNSUPPORTED_VERSION',
            `${path}: journal format version ${h.version} is not supported (this build reads versions ${MIN_FORMAT_VERSION} to ${FORMAT_VERSION})`,
            { path, offset: 0 },
          )
        }
        const why = h.problem === 'short' ? 'shorter than its header' : h.problem === 'magic' ? 'not a journal file (bad magic)' : 'header CRC mismatch'
        throw new JournalError('JOURNAL_CORRUPT', `${path}: ${why} at offset 0`, { path, offset: 0 })
      }
      this.createdAtMs = h.createdAtMs
      this.generation = h.generation
      this.fileVersion = h.version

      let pos = FILE_HEADER_LENGTH
      let records = 0
      let salvagedAt: number | undefined
      while (pos < size) {
        const remaining = size - pos
        let problem: string | undefined
        let torn = false
        let length = 0
        if (remaining < RECORD_HEADER_LENGTH) {
          torn = true
          problem = 'record header cut short'
        } else {
          const head = checkRecordHeader(await reader.at(pos, RECORD_HEADER_LENGTH))
          if (typeof head === 'string') {
            problem = head
            torn = await reader.zeroFrom(pos)
          } else if (head > remaining) {
            problem = `record of ${head} bytes runs past the end of the file`
            torn = true
          } else {
            length = head
            const rec = decodeRecord(await reader.at(pos, length))
            if (typeof rec === 'string') {
              problem = rec
              torn = await reader.zeroFrom(pos + length)
            } else {
              this.applyRecord(rec, length)
              records++
              pos += length
              continue
            }
          }
        }
        if (!torn) {
          if (!salvage) {
            throw new JournalError('JOURNAL_CORRUPT', `${path}: corrupt record at offset ${pos}: ${problem}`, { path, offset: pos })
          }
          salvagedAt = pos
          if (!this.readOnly) await copyFile(path, `${path}.corrupt-${this.now()}`)
        }
        break
      }
      const ignored = size - pos
      if (ignored > 0 && !this.readOnly) {
        await fh.truncate(pos)
        await fh.datasync()
      }
      this.fileBytes = pos
      this.loadInfo = {
        path,
        createdAtMs: this.createdAtMs,
        generation: this.generation,
        version: this.fileVersion,
        records,
        ignoredTailBytes: ignored,
        ...(salvagedAt !== undefined ? { salvagedAtOffset: salvagedAt } : {}),
      }
      if (!this.readOnly) {
        this.fh = fh
        keep = true
      }
    } finally {
      if (!keep) await fh.close()
    }
  }

  private applyRecord(rec: Exclude<ReturnType<typeof decodeRecord>, string>, length: number): void {
    switch (rec.type) {
      case RecordType.Entry:
      case RecordType.Discard: {
        const e = rec.entry
        const k = keyOf(e.epoch, e.seq)
        this.drop(k)
        this.held.set(k, { entry: e, recordBytes: length, durable: true })
        this.count(e, 1)
        this.liveFileBytes += length
        if (e.epoch > this.epoch) this.epoch = e.epoch
        break
      }
      case RecordType.Complete:
        for (const s of rec.seqs) this.drop(keyOf(rec.epoch, s))
        if (rec.epoch > this.epoch) this.epoch = rec.epoch
        break
      case RecordType.Clear:
        this.dropAll()
        break
    }
  }

  private drop(k: string): Held | undefined {
    const h = this.held.get(k)
    if (!h) return undefined
    this.held.delete(k)
    this.count(h.entry, -1)
    if (h.durable) this.liveFileBytes -= h.recordBytes
    return h
  }

  private count(e: JournalEntry, sign: 1 | -1): void {
    this.dataBytes += sign * entryDataBytes(e)
    this.chargedBytes += sign * entryCharge(e)
  }

  private dropAll(): void {
    this.held.clear()
    this.dataBytes = 0
    this.chargedBytes = 0
    this.liveFileBytes = 0
  }

  private checkWritable(): void {
    if (this.closed) throw new JournalError('JOURNAL_CLOSED', 'journal is closed')
    if (this.readOnly) throw new JournalError('JOURNAL_READ_ONLY', `${this.dir}: journal is open read-only`)
  }

  /**
   * Hold a copy (a write, or a discard: see DiscardEntry). Resolves when it is safe to confirm
   * it to the primary: at once in memory, after the group commit's fdatasync when persisted. Rejects with JOURNAL_BAD_CHECKSUM,
   * JOURNAL_FULL, JOURNAL_INVALID_ENTRY, or JOURNAL_IO_FAILED (the copy is then not held).
   * A copy with the (epoch, seq) of one already held replaces it. The journal keeps `entry`
   * and its data Buffer as given: the caller must not modify them afterwards.
   * `checksumVerified`: the caller has just compared the data (a discard: its range) with
   * `entry.checksum` (the peer codec does for every copy it decodes), so the journal does not
   * compute it a second time.
   */
  add(entry: JournalEntry, opts: { checksumVerified?: boolean } = {}): Promise<void> {
    try {
      this.checkWritable()
      if (this.failed) throw this.failed
      const bad = validate(entry)
      if (bad !== undefined) {
        throw new JournalError('JOURNAL_INVALID_ENTRY', `copy ${entry.epoch}/${entry.seq}: ${bad}`, { epoch: entry.epoch, seq: entry.seq })
      }
      const actual = opts.checksumVerified === true ? entry.checksum >>> 0 : entryChecksum(entry)
      if (actual !== entry.checksum >>> 0) {
        throw new JournalError(
          'JOURNAL_BAD_CHECKSUM',
          `copy ${entry.epoch}/${entry.seq}: ${entry.kind === 'discard' ? 'range' : 'data'} CRC32C 0x${actual.toString(16)} does not match 0x${(entry.checksum >>> 0).toString(16)}`,
          { epoch: entry.epoch, seq: entry.seq },
        )
      }
      const k = keyOf(entry.epoch, entry.seq)
      const prev = this.held.get(k)
      const charge = entryCharge(entry)
      const after = this.chargedBytes - (prev ? entryCharge(prev.entry) : 0) + charge
      if (after > this.maxBytes) {
        throw new JournalError(
          'JOURNAL_FULL',
          `journal full: ${this.chargedBytes} of ${this.maxBytes} bytes held, copy ${entry.epoch}/${entry.seq} needs ${charge}`,
          { epoch: entry.epoch, seq: entry.seq },
        )
      }
      this.drop(k)
      if (entry.epoch > this.epoch) this.epoch = entry.epoch
      if (!this.fh) {
        this.held.set(k, { entry, recordBytes: 0, durable: true })
        this.count(entry, 1)
        return Promise.resolve()
      }
      const record = encodeEntry(entry)
      const held: Held = { entry, recordBytes: record.length, durable: false }
      this.held.set(k, held)
      this.count(entry, 1)
      return new Promise<void>((resolve, reject) => {
        this.enqueue({ record, waiter: { resolve, reject, key: k, held } })
      })
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)))
    }
  }

  /**
   * Drop the copies with these seqs (they are on storage). `epoch` defaults to the highest
   * epoch the journal has seen. Unknown seqs are ignored. Persisted: a completion record is
   * appended with the next group commit (see sync()).
   */
  complete(seqs: readonly number[], epoch: number = this.epoch): void {
    this.checkWritable()
    const dropped: number[] = []
    for (const s of seqs) if (this.drop(keyOf(epoch, s))) dropped.push(s)
    if (this.fh && dropped.length > 0 && !this.failed) this.enqueue({ record: encodeComplete(epoch, dropped) })
  }

  /** Every copy held, in replay order (epoch, then seq). */
  pending(): JournalEntry[] {
    const out: JournalEntry[] = []
    for (const h of this.held.values()) out.push(h.entry)
    return out.sort(compareEntries)
  }

  stats(): JournalStats {
    let oldest: JournalEntry | undefined
    for (const h of this.held.values()) {
      if (!oldest || compareEntries(h.entry, oldest) < 0) oldest = h.entry
    }
    const s: JournalStats = { entries: this.held.size, bytes: this.dataBytes }
    if (oldest) {
      s.oldestSeq = oldest.seq
      s.oldestAgeMs = Math.max(0, this.now() - oldest.receivedAtMs)
    }
    if (this.persisted) {
      s.fileBytes = this.fileBytes
      s.fileWrites = this.counters.writes
      s.fileSyncs = this.counters.syncs
      s.compactions = this.counters.compactions
    }
    return s
  }

  /**
   * Apply every copy held at the call, in (epoch, seq) order, one at a time, then remove them.
   * Every checksum is verified before the first apply: a bad one fails the whole replay with
   * JOURNAL_BAD_CHECKSUM and nothing is applied. If `apply` (or `beforeRemove`) fails, nothing
   * is removed; replaying again applies the same copies in the same order. `bytes` counts the
   * data of the writes replayed, `discardedBytes` the ranges of the discards.
   */
  async replay(
    apply: (e: JournalEntry) => Promise<void>,
    opts: ReplayOptions = {},
  ): Promise<{ replayed: number; bytes: number; discardedBytes: number }> {
    const held = [...this.held.values()].sort((a, b) => compareEntries(a.entry, b.entry))
    for (const h of held) {
      const e = h.entry
      if (entryChecksum(e) !== e.checksum >>> 0) {
        throw new JournalError('JOURNAL_BAD_CHECKSUM', `copy ${e.epoch}/${e.seq} fails its CRC32C: nothing replayed`, {
          epoch: e.epoch,
          seq: e.seq,
          ...(this.path ? { path: this.path } : {}),
        })
      }
    }
    let bytes = 0
    let discardedBytes = 0
    for (const h of held) {
      await apply(h.entry)
      if (h.entry.kind === 'discard') discardedBytes += entryLength(h.entry)
      else bytes += h.entry.data.length
    }
    if (opts.beforeRemove) await opts.beforeRemove()
    if (!this.readOnly && !this.closed) {
      const byEpoch = new Map<number, number[]>()
      for (const h of held) {
        const k = keyOf(h.entry.epoch, h.entry.seq)
        if (this.held.get(k) !== h) continue // replaced meanwhile: keep the newer copy
        let list = byEpoch.get(h.entry.epoch)
        if (!list) byEpoch.set(h.entry.epoch, (list = []))
        list.push(h.entry.seq)
      }
      for (const [epoch, seqs] of byEpoch) this.complete(seqs, epoch)
      await this.sync()
    }
    return { replayed: held.length, bytes, discardedBytes }
  }

  /** Drop every copy (e.g. a new primary epoch resynchronises the secondary). */
  clear(): void {
    this.checkWritable()
    this.dropAll()
    if (this.fh && !this.failed) this.enqueue({ record: encodeClear() })
  }

  /** Resolve when every record queued so far is durably in the file (no-op in memory). */
  async sync(): Promise<void> {
    if (!this.fh) {
      if (this.failed) throw this.failed
      return
    }
    this.needSync = true
    await new Promise<void>((resolve) => {
      this.syncWaiters.push(resolve)
      this.kick()
    })
    if (this.failed) throw this.failed
  }

  /** Finish pending appends, close the file and release the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    if (this.fh && !this.failed) {
      try {
        await this.sync()
      } catch {
        // already reported to the adds that failed
      }
    }
    this.closed = true
    await this.writing
    await this.releaseFile()
  }

  private async releaseFile(): Promise<void> {
    const fh = this.fh
    this.fh = undefined
    if (fh) await fh.close().catch(() => undefined)
    if (this.lockPath && this.dir) {
      await rm(this.lockPath, { force: true })
      openHere.delete(this.dir)
      this.lockPath = undefined
    }
  }

  // --- group commit -------------------------------------------------------------------------

  private enqueue(q: Queued): void {
    this.queue.push(q)
    if (q.waiter) this.needSync = true
    this.kick()
  }

  private kick(): void {
    if (this.writing) return
    this.writing = this.writeLoop().finally(() => {
      this.writing = undefined
      if (this.queue.length > 0 || this.syncWaiters.length > 0) this.kick()
    })
  }

  private async writeLoop(): Promise<void> {
    // Let the adds of this tick (and the next few microtasks) join the batch.
    await new Promise<void>((r) => setImmediate(r))
    while (this.queue.length > 0 || this.syncWaiters.length > 0) {
      const fh = this.fh
      if (!fh || this.failed) {
        this.failAll(this.failed ?? new JournalError('JOURNAL_CLOSED', 'journal is closed'))
        return
      }
      try {
        if (this.shouldCompact()) await this.compact()
        const batch = this.queue
        this.queue = []
        this.inFlight = batch
        const sync = this.needSync
        const waiters = this.syncWaiters
        this.needSync = false
        this.syncWaiters = []
        if (batch.length > 0) {
          if (this.fileVersion < DISCARD_FORMAT_VERSION && batch.some((q) => q.waiter?.held.entry.kind === 'discard')) {
            // Before the first DISCARD record: builds that read version 1 only must refuse the file.
            const header = encodeFileHeader({ createdAtMs: this.createdAtMs, generation: this.generation, version: DISCARD_FORMAT_VERSION })
            await writeAllAt(this.fh!, [header], 0)
            this.fileVersion = DISCARD_FORMAT_VERSION
          }
          const parts: Buffer[] = []
          for (const q of batch) for (const p of q.record.parts) parts.push(p)
          this.fileBytes = await writeAllAt(this.fh!, parts, this.fileBytes)
          this.counters.writes++
        }
        if (sync) {
          await this.fh!.datasync()
          this.counters.syncs++
        }
        this.inFlight = []
        for (const q of batch) {
          const w = q.waiter
          if (!w) continue
          if (this.held.get(w.key) === w.held && !w.held.durable) {
            w.held.durable = true
            this.liveFileBytes += w.held.recordBytes
          }
          w.resolve()
        }
        for (const r of waiters) r()
      } catch (e) {
        this.failed = new JournalError('JOURNAL_IO_FAILED', `${this.path}: append failed: ${(e as Error).message}`, {
          cause: e,
          ...(this.path ? { path: this.path } : {}),
        })
        this.failAll(this.failed)
        return
      }
    }
  }

  private failAll(err: JournalError): void {
    const all = [...this.inFlight, ...this.queue]
    this.queue = []
    this.inFlight = []
    for (const q of all) {
      const w = q.waiter
      if (!w) continue
      // A copy that was never confirmed must not stay: it would be replayed over newer data.
      if (this.held.get(w.key) === w.held) this.drop(w.key)
      w.reject(err)
    }
    const waiters = this.syncWaiters
    this.syncWaiters = []
    for (const r of waiters) r()
  }

  private shouldCompact(): boolean {
    const size = this.fileBytes
    if (size < this.compactMinBytes || size < this.compactRetryAt) return false
    const dead = size - FILE_HEADER_LENGTH - this.liveFileBytes
    return dead >= size * this.compactDeadRatio
  }

  /** Rewrite the durable live copies to a new file and rename it over the old one. */
  private async compact(): Promise<void> {
    const path = this.path!
    const dir = this.dir!
    const live = [...this.held.values()].filter((h) => h.durable).sort((a, b) => compareEntries(a.entry, b.entry))
    const generation = (this.generation + 1) >>> 0
    const header = encodeFileHeader({ createdAtMs: this.createdAtMs, generation, version: this.fileVersion })
    const records = live.map((h) => encodeEntry(h.entry))
    let size: number
    try {
      size = await writeFreshFile(path + TMP_SUFFIX, header, records)
      await rename(path + TMP_SUFFIX, path)
    } catch {
      // The old file is intact: keep appending to it, try again once it grew some more.
      await rm(path + TMP_SUFFIX, { force: true }).catch(() => undefined)
      this.compactRetryAt = this.fileBytes + this.compactMinBytes
      return
    }
    await fsyncDir(dir)
    const old = this.fh!
    this.fh = await open(path, constants.O_RDWR)
    await old.close()
    this.fileBytes = size
    this.generation = generation
    let liveBytes = 0
    for (let i = 0; i < live.length; i++) {
      live[i]!.recordBytes = records[i]!.length
      liveBytes += records[i]!.length
    }
    this.liveFileBytes = liveBytes
    this.counters.compactions++
  }

  /** Replay every copy onto LUN storage, flushing each touched device once; see apply.ts. */
  applyToBackends(resolve: (key: LunKey) => BlockDevice | undefined): Promise<ApplyResult> {
    return applyToBackends(this, resolve)
  }
}
