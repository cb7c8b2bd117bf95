// The primary's block device for one LUN (METHOD.md, "The write path"): a write is copied to
// the secondary and acknowledged once the copy is confirmed (committed); it is written to the
// real backend behind (completed), and the secondary is told to drop its copy only after the
// backend write has been flushed. Until its data is on the backend it sits in an in-memory
// overlay that reads see, so an acknowledged write is visible at once.
//
// Without a healthy mirror, or when the copy fails, the write goes through to the backend and
// is acknowledged only once it is there (fdatasync'd when FUA): one controller never
// acknowledges data that exists in one memory only.
//
// Discards (UNMAP, WRITE SAME with UNMAP: discard()) take the same path as writes, one entry per
// range: the copy says "these bytes read as zeros" and carries no data, the overlay answers reads
// of the range with zeros, and completing it deallocates the range on the backend (holes punched
// in a sparse file; zeros written on a backend without discard()). An entry costs
// DISCARD_ENTRY_BYTES of maxPendingBytes, so a huge UNMAP holds a bounded number of entries.
//
// Ordering. Writes and discards are ordered by the call to write() or discard() (the order
// copies are handed to the Mirror, so the order of their seqs); below, "write" means either. A
// write waits for every earlier overlapping write to reach the backend before it is written
// itself; non-overlapping writes proceed concurrently. A write leaves the read overlay once its
// data is on the backend (the backend then answers reads of it). Flushes are batched: one
// backend flush covers every write that reached the backend before it, and Mirror.completed is
// then called for them in seq order. A written-through write is acknowledged only once the
// earlier overlapping mirrored writes are completed, so the secondary never holds an older copy
// of blocks that a later acknowledged write has replaced on storage (as far as `completed`
// reaches it).

import type { BlockDevice } from '../scsi/types.js'
import { canDiscard, type ByteRange, type DiscardCapable } from '../scsi/provisioning.js'
import { StorageError, outOfRange } from '../storage/errors.js'
import { DISCARD_ENTRY_BYTES } from '../journal/entry.js'
import type { CopyRequest, LunKey, Mirror } from './types.js'

const EMPTY = Buffer.alloc(0)
/** See MirroredDeviceOptions.flushDelayMs: at 100 MB/s of writes, 5 MB held by the secondary. */
export const DEFAULT_FLUSH_DELAY_MS = 50
/** Zeros for deallocating on a backend without discard(); never written to. */
const ZEROS = Buffer.alloc(1024 * 1024)

/** The SCSI command a write belongs to, for the secondary's copy (claim 20). */
export interface CommandContext {
  initiator: string
  isid: string
  itt: number
}

export interface MirroredDeviceOptions {
  backend: BlockDevice
  key: LunKey
  /** The current mirror (none while there is no partner). Read at every write. */
  mirror: () => Mirror | undefined
  /**
   * Bound on committed-not-completed bytes (overlay memory); beyond it write() and discard()
   * wait. A discard counts DISCARD_ENTRY_BYTES, as in the secondary's journal.
   */
  maxPendingBytes: number
  /** The running command (the HA controller sets it through AsyncLocalStorage). */
  context?: () => CommandContext | undefined
  /**
   * Longest wait, after a write reached the backend, before the flush that completes it.
   * Default DEFAULT_FLUSH_DELAY_MS. Longer means fewer fdatasyncs (each one makes the storage
   * write back what the page cache gathered, and stalls writes to pages being written back) but
   * more copies held by the secondary and replayed at a takeover.
   */
  flushDelayMs?: number
  /** Flush at once when this many written writes wait for a flush. Default 4096. */
  flushBatch?: number
  /**
   * Flush at once when the writes waiting for a flush hold this many bytes (charges, as for
   * maxPendingBytes). Default a quarter of maxPendingBytes, at most 64 MiB, so that writes do
   * not wait for room under maxPendingBytes while a flush is only waiting for its timer.
   */
  flushBytes?: number
  /**
   * Make every written-through write durable before acknowledging it, not only FUA ones
   * (degraded mode then never acknowledges data that is only in this machine's page cache).
   * Default false: a written-through write without FUA is acknowledged once the backend
   * accepted it, like a disk with a write-back cache; hosts flush with SYNCHRONIZE CACHE.
   */
  syncWriteThrough?: boolean
  /** A backend write or flush of a committed write failed; it is retried with backoff. */
  onBackendError?: (e: unknown) => void
  /** Clock for receivedAtMs. Default Date.now. */
  now?: () => number
}

export interface MirroredDeviceStats {
  /** Writes and discards in the overlay: not yet completed (mirrored) or not yet on the backend (write-through). */
  pendingWrites: number
  /** What maxPendingBytes bounds: data bytes, plus DISCARD_ENTRY_BYTES per discard. */
  pendingBytes: number
  mode: 'mirrored' | 'degraded'
  /** Writes and discards waiting for room under maxPendingBytes. */
  waitingForRoom: number
  /** The last backend error of a committed write, while it is being retried. */
  lastError?: string
}

interface Deferred {
  promise: Promise<void>
  resolve: () => void
}

function deferred(): Deferred {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

interface Pending {
  /** Call order of write() and discard(). */
  id: number
  offset: number
  end: number
  /** The data of a write (a copy); empty for a discard. */
  data: Buffer
  /** A discard: [offset, end) reads as zeros. */
  discard: boolean
  /** What it counts against maxPendingBytes. */
  charge: number
  fua: boolean
  /** Earlier overlapping writes whose data was not on the backend yet when this one began. */
  deps: Pending[]
  mirror: Mirror | undefined
  seq: number | undefined
  /**
   * Resolved once this write no longer touches the backend (written, or given up). Created
   * only when a later overlapping write has to wait for it: most writes overlap nothing.
   */
  atBackendWait: Deferred | undefined
  backendDone: boolean
  /** Resolved once this write left the overlay; created only when someone waits for that. */
  leftWait: Deferred | undefined
  hasLeft: boolean
  /** Set while the backend write or flush of this (committed) write is failing. */
  error: unknown
  failListeners: Set<(e: unknown) => void> | undefined
}

const RESOLVED: Promise<void> = Promise.resolve()

function whenAtBackend(p: Pending): Promise<void> {
  return p.backendDone ? RESOLVED : (p.atBackendWait ??= deferred()).promise
}

function markAtBackend(p: Pending): void {
  p.backendDone = true
  p.atBackendWait?.resolve()
}

function whenLeft(p: Pending): Promise<void> {
  return p.hasLeft ? RESOLVED : (p.leftWait ??= deferred()).promise
}

function notifyFailure(p: Pending, e: unknown): void {
  if (p.failListeners) for (const l of [...p.failListeners]) l(e)
}

interface DiscardWaiter {
  range: ByteRange
  resolve: () => void
  reject: (e: unknown) => void
}

interface RoomWaiter {
  bytes: number
  go: () => void
  reject: (e: unknown) => void
}

const NO_CONTEXT: CommandContext = { initiator: '', isid: '', itt: 0 }
const RETRY_FIRST_MS = 5
const RETRY_MAX_MS = 1000

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

function pending(offset: number, end: number, data: Buffer, discard: boolean, charge: number, fua: boolean): Pending {
  return {
    id: 0,
    offset,
    end,
    data,
    discard,
    charge,
    fua,
    deps: [],
    mirror: undefined,
    seq: undefined,
    atBackendWait: undefined,
    backendDone: false,
    leftWait: undefined,
    hasLeft: false,
    error: undefined,
    failListeners: undefined,
  }
}

export class MirroredDevice implements BlockDevice {
  readonly sizeBytes: number
  readonly key: LunKey

  private readonly backend: BlockDevice
  private readonly getMirror: () => Mirror | undefined
  private readonly getContext: (() => CommandContext | undefined) | undefined
  private readonly maxPendingBytes: number
  private readonly flushDelayMs: number
  private readonly flushBatch: number
  private readonly flushBytes: number
  private readonly onBackendError: ((e: unknown) => void) | undefined
  private readonly syncWriteThrough: boolean
  private readonly now: () => number
  private readonly name: string

  /**
   * Every write not yet completed (mirrored: flushed and reported; written through: on the
   * backend and acknowledged), in call order (Map keeps insertion order; ids only grow). What
   * maxPendingBytes bounds and what flush() and drain() wait for.
   */
  private readonly uncompleted = new Map<number, Pending>()
  /**
   * The read overlay: writes whose data is not on the backend yet, in call order. A write leaves
   * it as soon as the backend has its data (a read of the backend then sees it), so it holds
   * about the queue depth, not everything waiting for the batched flush: the scans over it per
   * read and write stay short however long flushes are gathered.
   */
  private readonly notOnBackend = new Map<number, Pending>()
  private nextId = 1
  private pendingBytes = 0
  private readonly roomWaiters: RoomWaiter[] = []

  /** Committed writes on the backend, waiting for the flush that completes them. */
  private unflushed: Pending[] = []
  /** Sum of the charges of `unflushed`. */
  private unflushedBytes = 0
  private flushing = false
  private urgentFlush = false
  private hurry = 0
  private flushTimer: NodeJS.Timeout | undefined

  /** Discards ready for the backend in this turn of the event loop: one backend discard() for all. */
  private discardBatch: DiscardWaiter[] | undefined

  private closing = false
  private aborted: Error | undefined
  private lastError: unknown

  constructor(opts: MirroredDeviceOptions) {
    if (!Number.isSafeInteger(opts.maxPendingBytes) || opts.maxPendingBytes <= 0) {
      throw new RangeError(`maxPendingBytes ${opts.maxPendingBytes} is not a positive integer`)
    }
    this.backend = opts.backend
    this.sizeBytes = opts.backend.sizeBytes
    this.key = opts.key
    this.getMirror = opts.mirror
    this.getContext = opts.context
    this.maxPendingBytes = opts.maxPendingBytes
    this.flushDelayMs = opts.flushDelayMs ?? DEFAULT_FLUSH_DELAY_MS
    this.flushBatch = Math.max(1, opts.flushBatch ?? 4096)
    this.flushBytes = Math.max(1, opts.flushBytes ?? Math.min(Math.floor(opts.maxPendingBytes / 4), 64 * 1024 * 1024))
    this.onBackendError = opts.onBackendError
    this.syncWriteThrough = opts.syncWriteThrough ?? false
    this.now = opts.now ?? Date.now
    this.name = `${opts.key.target} LUN ${opts.key.lun}`
  }

  // --- BlockDevice ----------------------------------------------------------------------------

  read(offset: number, length: number): Promise<Buffer> {
    const bad = this.refuse(offset, length, false)
    if (bad) return Promise.reject(bad)
    // Take the overlay as it is now, before the backend read starts: anything that leaves it
    // meanwhile is already on the backend, so overlaying it again is harmless.
    const end = offset + length
    let over: Pending[] | undefined
    for (const p of this.notOnBackend.values()) if (p.offset < end && p.end > offset) (over ??= []).push(p)
    // Most reads overlap nothing in flight: then no array, second promise or closure per read.
    if (over === undefined) return this.backend.read(offset, length)
    const overlapping = over
    return this.backend.read(offset, length).then((buf) => {
      for (const p of overlapping) {
        const from = Math.max(p.offset, offset)
        const to = Math.min(p.end, end)
        if (p.discard) buf.fill(0, from - offset, to - offset)
        else p.data.copy(buf, from - offset, from - p.offset, to - p.offset)
      }
      return buf
    })
  }

  /**
   * Committed (mirrored): resolves once the secondary confirmed its copy; with fua, once the
   * write is also on storage. Degraded: resolves once the write is on the backend (fdatasync'd
   * with fua). Waits first while maxPendingBytes are pending. `data` is kept, not copied, until
   * the write is completed.
   */
  write(offset: number, data: Buffer, opts: { fua: boolean }): Promise<void> {
    const bad = this.refuse(offset, data.length, true)
    if (bad) return Promise.reject(bad)
    if (data.length === 0) return opts.fua ? this.flush() : Promise.resolve()
    // Kept as given, not copied (BlockDevice.write: a written buffer is never changed): on a
    // machine where a 4 KiB memcpy costs a microsecond, and every copy is another ArrayBuffer
    // the GC must account for, the mirror's path already copies enough (socket, page cache).
    const p = pending(offset, offset + data.length, data, false, data.length, opts.fua)
    return this.submit(p, this.getContext?.() ?? NO_CONTEXT, this.now())
  }

  /**
   * Deallocate byte ranges: afterwards they read as zeros (LBPRZ). Each non-empty range is one
   * entry with the guarantees and ordering of a write: committed (mirrored) once the secondary
   * confirmed a copy of the range, which carries no data, then deallocated on the backend behind
   * (holes punched where it can) and completed after the batched flush; degraded, deallocated
   * on the backend before resolving (and flushed with syncWriteThrough). A later write over the
   * range wins; an earlier one never shows through again.
   */
  discard(ranges: readonly ByteRange[]): Promise<void> {
    for (const r of ranges) {
      const bad = this.refuse(r.offset, r.length, true)
      if (bad) return Promise.reject(bad)
    }
    const ctx = this.getContext?.() ?? NO_CONTEXT
    const receivedAtMs = this.now()
    const done: Promise<void>[] = []
    for (const r of ranges) {
      if (r.length > 0) done.push(this.submit(pending(r.offset, r.offset + r.length, EMPTY, true, DISCARD_ENTRY_BYTES, false), ctx, receivedAtMs))
    }
    if (done.length === 1) return done[0]!
    return Promise.all(done).then(() => undefined)
  }

  /** Wait for every write in the overlay to complete, then flush the backend. */
  async flush(): Promise<void> {
    if (this.aborted) throw this.aborted
    await this.hurried(() => this.waitLeft([...this.uncompleted.values()]))
    await this.backend.flush()
  }

  /** Refuse new writes, drain, flush and close the backend. */
  async close(): Promise<void> {
    this.closing = true
    if (this.aborted) return this.backend.close()
    await this.drain()
    await this.backend.flush()
    await this.backend.close()
  }

  // --- HA controls ----------------------------------------------------------------------------

  /** Resolve once every write (those waiting for room included) is completed (planned handover). */
  async drain(): Promise<void> {
    for (;;) {
      if (this.aborted) throw this.aborted
      if (this.uncompleted.size === 0) return
      await this.hurried(() => this.waitLeft([...this.uncompleted.values()]))
    }
  }

  /**
   * Stop touching the backend at once (this controller lost the lease: the partner completes
   * the journal). Writes not yet on the backend are abandoned, waiters reject with `reason`,
   * and every later call fails. The backend is not closed.
   */
  abort(reason?: Error): void {
    if (this.aborted) return
    const err = reason ?? new StorageError('CLOSED', this.name, 'mirrored device aborted')
    this.aborted = err
    this.closing = true
    if (this.flushTimer) clearTimeout(this.flushTimer)
    this.flushTimer = undefined
    for (const w of this.roomWaiters.splice(0)) w.reject(err)
    for (const p of [...this.uncompleted.values()]) {
      p.error = err
      notifyFailure(p, err)
      this.leave(p)
      if (!p.backendDone) this.atBackend(p)
    }
    this.unflushed = []
    this.unflushedBytes = 0
  }

  stats(): MirroredDeviceStats {
    let healthy = false
    try {
      healthy = this.getMirror()?.healthy === true
    } catch {
      healthy = false
    }
    const s: MirroredDeviceStats = {
      pendingWrites: this.uncompleted.size,
      pendingBytes: this.pendingBytes,
      mode: healthy ? 'mirrored' : 'degraded',
      waitingForRoom: this.roomWaiters.length,
    }
    if (this.lastError !== undefined) s.lastError = message(this.lastError)
    return s
  }

  // --- the write path -------------------------------------------------------------------------

  private refuse(offset: number, length: number, writing: boolean): Error | undefined {
    if (this.aborted) return this.aborted
    if (writing && this.closing) return new StorageError('CLOSED', this.name, 'mirrored device is closed')
    return outOfRange(this.name, offset, length, this.sizeBytes)
  }

  private fits(bytes: number): boolean {
    return this.pendingBytes === 0 || this.pendingBytes + bytes <= this.maxPendingBytes
  }

  /** Begin at once when there is room under maxPendingBytes, else wait for it in turn (FIFO). */
  private submit(p: Pending, ctx: CommandContext, receivedAtMs: number): Promise<void> {
    if (this.roomWaiters.length === 0 && this.fits(p.charge)) {
      this.pendingBytes += p.charge
      return this.begin(p, ctx, receivedAtMs)
    }
    return new Promise<void>((resolve, reject) => {
      this.roomWaiters.push({ bytes: p.charge, go: () => this.begin(p, ctx, receivedAtMs).then(resolve, reject), reject })
    })
  }

  /** Enter the overlay and hand the copy to the mirror, synchronously (keeps call order = seq order). */
  private async begin(p: Pending, ctx: CommandContext, receivedAtMs: number): Promise<void> {
    p.id = this.nextId++
    for (const q of this.notOnBackend.values()) if (q.offset < p.end && q.end > p.offset) p.deps.push(q)
    this.uncompleted.set(p.id, p)
    this.notOnBackend.set(p.id, p)

    let mirror: Mirror | undefined
    try {
      const m = this.getMirror()
      if (m?.healthy) mirror = m
    } catch {
      mirror = undefined
    }
    if (mirror) {
      let seq: number | undefined
      const req: CopyRequest = p.discard
        ? { kind: 'discard', key: this.key, offset: p.offset, length: p.end - p.offset, initiator: ctx.initiator, isid: ctx.isid, itt: ctx.itt, receivedAtMs }
        : { key: this.key, offset: p.offset, data: p.data, initiator: ctx.initiator, isid: ctx.isid, itt: ctx.itt, receivedAtMs }
      try {
        seq = await mirror.copy(req)
      } catch {
        seq = undefined // not confirmed: write through
      }
      if (this.aborted) throw this.aborted
      if (seq !== undefined) {
        p.mirror = mirror
        p.seq = seq
        void this.completeBehind(p)
        if (p.fua) await this.waitLeft([p])
        return
      }
    }
    await this.writeThrough(p)
  }

  /** Committed: write (or deallocate) on the backend in order, then join the next flush batch. */
  private async completeBehind(p: Pending): Promise<void> {
    await this.afterBackend(p.deps)
    let delay = RETRY_FIRST_MS
    for (;;) {
      if (this.aborted) return
      try {
        await this.toBackend(p, false)
        break
      } catch (e) {
        this.failed(p, e)
        await sleep(delay)
        delay = Math.min(delay * 2, RETRY_MAX_MS)
      }
    }
    if (this.aborted) return
    p.error = undefined
    this.atBackend(p)
    this.unflushed.push(p)
    this.unflushedBytes += p.charge
    this.scheduleFlush(p.fua)
  }

  /** Degraded: on the backend (in order) before resolving. */
  private async writeThrough(p: Pending): Promise<void> {
    try {
      await this.afterBackend(p.deps)
      if (this.aborted) throw this.aborted
      await this.toBackend(p, p.fua || this.syncWriteThrough)
      if (this.aborted) throw this.aborted
    } catch (e) {
      // Its data did not land: the earlier writes it hid are what reads must see.
      if (!p.backendDone) this.atBackend(p)
      this.leave(p)
      throw e
    }
    this.atBackend(p)
    // The secondary must never hold an older copy of these blocks than storage does once this
    // write is acknowledged: a takeover would replay it over this write.
    const earlier = this.earlierOverlappingCompleted(p)
    if (earlier) await this.hurried(() => earlier)
    this.leave(p)
    if (this.aborted) throw this.aborted
  }

  /** This write's data is on the backend (or given up): reads and later writes stop waiting for it. */
  private atBackend(p: Pending): void {
    this.notOnBackend.delete(p.id)
    p.deps = []
    markAtBackend(p)
  }

  /** Put `p` on the backend: its data, or its range deallocated; `sync`: durable too. */
  private async toBackend(p: Pending, sync: boolean): Promise<void> {
    if (!p.discard) return this.backend.write(p.offset, p.data, { fua: sync })
    const backend = this.backend
    if (canDiscard(backend)) {
      await this.backendDiscard(backend, { offset: p.offset, length: p.end - p.offset })
    } else {
      for (let at = p.offset; at < p.end; at += ZEROS.length) {
        await backend.write(at, ZEROS.subarray(0, Math.min(ZEROS.length, p.end - at)), { fua: false })
      }
    }
    if (sync) await backend.flush()
  }

  /**
   * The ranges of an UNMAP reach the backend together, as they would without the pair (one
   * hole-punching run for all of them): ranges that are ready in the same turn share one call.
   * They never overlap: a discard waits for every earlier overlapping entry to be on the backend.
   */
  private backendDiscard(backend: DiscardCapable, range: ByteRange): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (!this.discardBatch) {
        const batch: DiscardWaiter[] = (this.discardBatch = [])
        setImmediate(() => {
          this.discardBatch = undefined
          const aborted = this.aborted
          if (aborted) {
            for (const w of batch) w.reject(aborted) // abort(): the backend is not touched any more
            return
          }
          let done: Promise<void>
          try {
            done = backend.discard(batch.map((w) => w.range))
          } catch (e) {
            done = Promise.reject(e)
          }
          done.then(
            () => {
              for (const w of batch) w.resolve()
            },
            (e: unknown) => {
              for (const w of batch) w.reject(e)
            },
          )
        })
      }
      this.discardBatch.push({ range, resolve, reject })
    })
  }

  private afterBackend(deps: Pending[]): Promise<unknown> | undefined {
    let waits: Promise<void>[] | undefined
    for (const d of deps) if (!d.backendDone) (waits ??= []).push(whenAtBackend(d))
    return waits ? Promise.all(waits) : undefined
  }

  private failed(p: Pending, e: unknown): void {
    p.error = e
    this.lastError = e
    notifyFailure(p, e)
    try {
      this.onBackendError?.(e)
    } catch {
      // a reporting hook must not break the write path
    }
  }

  // --- batched flush and completion -----------------------------------------------------------

  /** While someone waits for completion (flush, drain), completions do not wait for a batch. */
  private async hurried(wait: () => Promise<unknown>): Promise<void> {
    this.hurry++
    try {
      if (this.unflushed.length > 0) this.scheduleFlush(true)
      await wait()
    } finally {
      this.hurry--
    }
  }

  private scheduleFlush(urgent: boolean): void {
    if (urgent || this.hurry > 0) this.urgentFlush = true
    if (this.flushing) return // the running loop takes them next
    if (this.flushDue()) {
      if (this.flushTimer) clearTimeout(this.flushTimer)
      this.flushTimer = undefined
      void this.flushLoop()
    } else if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined
        void this.flushLoop()
      }, this.flushDelayMs)
    }
  }

  private async flushLoop(): Promise<void> {
    if (this.flushing) return
    this.flushing = true
    let delay = RETRY_FIRST_MS
    try {
      while (this.unflushed.length > 0 && !this.aborted) {
        const batch = this.unflushed
        const batchBytes = this.unflushedBytes
        this.unflushed = []
        this.unflushedBytes = 0
        this.urgentFlush = false
        try {
          await this.backend.flush()
        } catch (e) {
          for (const p of batch) this.failed(p, e)
          this.unflushed = batch.concat(this.unflushed)
          this.unflushedBytes += batchBytes
          await sleep(delay)
          delay = Math.min(delay * 2, RETRY_MAX_MS)
          continue
        }
        delay = RETRY_FIRST_MS
        if (this.aborted) return
        batch.sort((a, b) => a.id - b.id)
        for (const p of batch) {
          p.error = undefined
          try {
            p.mirror?.completed(p.seq!)
          } catch {
            // the mirror reports its own trouble; the data is on storage either way
          }
          // In id order, and a write reaches the backend only after the earlier writes it
          // overlaps: so they complete (leave) before it.
          this.leave(p)
        }
        // What arrived during this flush waits for its own timer unless someone is in a hurry
        // or it is already a full batch: back-to-back flushes would make the delay moot.
        if (!this.flushDue()) break
      }
    } finally {
      this.flushing = false
      if (this.unflushed.length > 0 && !this.aborted) this.scheduleFlush(false)
    }
  }

  private flushDue(): boolean {
    return this.urgentFlush || this.hurry > 0 || this.unflushed.length >= this.flushBatch || this.unflushedBytes >= this.flushBytes || this.flushDelayMs <= 0
  }

  // --- leaving the overlay --------------------------------------------------------------------

  /**
   * Resolves once every earlier write overlapping `p` is completed (or given up). Only a
   * written-through write asks, so the scan over everything uncompleted stays off the mirrored path.
   */
  private earlierOverlappingCompleted(p: Pending): Promise<unknown> | undefined {
    let waits: Promise<void>[] | undefined
    for (const q of this.uncompleted.values()) {
      if (q.id >= p.id) break
      if (q.offset < p.end && q.end > p.offset && !q.hasLeft) (waits ??= []).push(whenLeft(q))
    }
    return waits ? Promise.all(waits) : undefined
  }

  /** Completed: release its room under maxPendingBytes and wake who waits for it. */
  private leave(p: Pending): void {
    if (p.hasLeft) return
    p.hasLeft = true
    this.uncompleted.delete(p.id)
    this.notOnBackend.delete(p.id)
    p.deps = []
    p.failListeners = undefined
    this.pendingBytes -= p.charge
    p.leftWait?.resolve()
    this.admit()
  }

  /** Let waiting writes in, in order, while they fit. */
  private admit(): void {
    while (this.roomWaiters.length > 0 && !this.aborted) {
      const w = this.roomWaiters[0]!
      if (!this.fits(w.bytes)) return
      this.roomWaiters.shift()
      this.pendingBytes += w.bytes
      w.go()
    }
  }

  /** Resolve when all of `ps` left the overlay; reject on the first backend failure among them. */
  private waitLeft(ps: Pending[]): Promise<void> {
    const open = ps.filter((p) => !p.hasLeft)
    if (open.length === 0) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      let left = open.length
      let settled = false
      const onFail = (e: unknown): void => {
        if (settled) return
        settled = true
        for (const p of open) p.failListeners?.delete(onFail)
        reject(e)
      }
      for (const p of open) {
        if (p.error !== undefined) {
          onFail(p.error)
          return
        }
        ;(p.failListeners ??= new Set()).add(onFail)
        void whenLeft(p).then(() => {
          if (--left === 0 && !settled) {
            settled = true
            for (const q of open) q.failListeners?.delete(onFail)
            resolve()
          }
        })
      }
    })
  }
}
