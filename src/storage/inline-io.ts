// Where a backend's positioned I/O runs: inline on the event-loop thread, or in libuv's thread
// pool. A read or write that the page cache serves costs a few microseconds inline; sent to the
// thread pool it costs a mutex, a futex wake-up and two context switches, which on a 2-core
// machine under 4K QD32 load was over half of the node's CPU time. Inline I/O is only a win
// while storage answers from memory, though: a request that waits for a disk blocks every
// session, the peer link and the admin API. So this policy watches each inline request and
// sends work to the thread pool for a while when storage stops looking like memory:
//
// - one request slower than `stallMs` (a stuck device, a long dirty-page throttle);
// - or many slow ones: an exponentially weighted share of "slow" requests (slower than a
//   memory copy of their size could explain) above `maxSlowShare`, i.e. a cold cache on a
//   fast SSD, where inline I/O would serialize requests the device could run in parallel, or
//   a disk that seeks for each one.
// The clock is the wall clock, so a request during which the scheduler ran something else also
// looks slow. That is why one slow request is not enough (only a stall is): on a busy 2-core
// machine a few preempted requests must not send I/O to the pool for seconds.
//
// The pool period starts at `backoffMs` and doubles, up to `maxBackoffMs`, each time inline I/O
// is tried again and storage still looks slow; a clean inline period resets it.
//
// Mode 'threadpool' never goes inline (network and cluster file systems, where one request can
// hang for as long as the server is away); 'inline' never backs off (benchmarks, tmpfs).

export type IoMode = 'auto' | 'inline' | 'threadpool'

export interface InlineIoOptions {
  /** Requests larger than this always go to the thread pool. Default 256 KiB. */
  maxInlineBytes?: number
  /** One inline request slower than this (ms) moves I/O to the thread pool. Default 20. */
  stallMs?: number
  /** Share of slow requests (0..1) above which I/O moves to the thread pool. Default 0.25. */
  maxSlowShare?: number
  /** First thread-pool period (ms). Default 1000. */
  backoffMs?: number
  /** Longest thread-pool period (ms). Default 30000. */
  maxBackoffMs?: number
  /** Clock in ms (for tests). Default performance.now. */
  now?: () => number
}

export interface InlineIoStats {
  mode: IoMode
  /** Whether the next small request would run inline. */
  inlineNow: boolean
  inlineOps: number
  threadPoolOps: number
  /** Times I/O was moved to the thread pool because storage was slow. */
  backoffs: number
}

/** Fixed cost (ms) a page-cache hit may take, beyond its copy. */
const HIT_BASE_MS = 0.05
/** Copy rate (bytes per ms) below which a request counts as slow: 1 GB/s. */
const HIT_BYTES_PER_MS = 1_000_000
/** Weight of one request in the slow share (about the last 32 requests count). */
const SLOW_WEIGHT = 1 / 32

export class InlineIoPolicy {
  private readonly maxInlineBytes: number
  private readonly stallMs: number
  private readonly maxSlowShare: number
  private readonly backoffMs: number
  private readonly maxBackoffMs: number
  private readonly now: () => number
  private slowShare = 0
  private poolUntil = 0
  private nextBackoffMs: number
  /** When inline I/O was last resumed after a thread-pool period (0: never backed off). */
  private probeStartedAt = 0
  private readonly counts = { inlineOps: 0, threadPoolOps: 0, backoffs: 0 }

  constructor(
    readonly mode: IoMode,
    opts: InlineIoOptions = {},
  ) {
    this.maxInlineBytes = opts.maxInlineBytes ?? 256 * 1024
    this.stallMs = opts.stallMs ?? 20
    this.maxSlowShare = opts.maxSlowShare ?? 0.25
    this.backoffMs = opts.backoffMs ?? 1000
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000
    this.now = opts.now ?? (() => performance.now())
    this.nextBackoffMs = this.backoffMs
  }

  /** Whether a request of `length` bytes should run inline now. Counts the decision. */
  inline(length: number): boolean {
    const yes =
      this.mode === 'inline' ||
      (this.mode === 'auto' && length <= this.maxInlineBytes && (this.poolUntil === 0 || this.poolExpired()))
    if (yes) this.counts.inlineOps++
    else this.counts.threadPoolOps++
    return yes
  }

  /** An inline request of `length` bytes took `elapsedMs`. */
  record(length: number, elapsedMs: number): void {
    if (this.mode !== 'auto') return
    const slow = elapsedMs > HIT_BASE_MS + length / HIT_BYTES_PER_MS
    this.slowShare += ((slow ? 1 : 0) - this.slowShare) * SLOW_WEIGHT
    if (elapsedMs > this.stallMs || this.slowShare > this.maxSlowShare) this.backOff()
  }

  /** A clock for timing inline requests (the policy's own, so tests control both). */
  clock(): number {
    return this.now()
  }

  stats(): InlineIoStats {
    const inlineNow = this.mode === 'inline' || (this.mode === 'auto' && (this.poolUntil === 0 || this.now() >= this.poolUntil))
    return { mode: this.mode, inlineNow, ...this.counts }
  }

  private poolExpired(): boolean {
    if (this.now() < this.poolUntil) return false
    // Trying inline again: a fresh start for the slow share, the longer period kept in case
    // storage is still slow (reset once an inline period passes cleanly, see backOff).
    this.poolUntil = 0
    this.slowShare = 0
    this.probeStartedAt = this.now()
    return true
  }

  private backOff(): void {
    const now = this.now()
    // A whole backoff period of clean inline I/O since the last probe: storage recovered.
    if (this.probeStartedAt !== 0 && now - this.probeStartedAt > this.nextBackoffMs) this.nextBackoffMs = this.backoffMs
    this.poolUntil = now + this.nextBackoffMs
    this.nextBackoffMs = Math.min(this.nextBackoffMs * 2, this.maxBackoffMs)
    this.slowShare = 0
    this.counts.backoffs++
  }
}

/**
 * statfs(2) magic numbers of file systems where one request can block for as long as a server,
 * a cluster lock or a user-space daemon takes: 'auto' keeps their I/O in the thread pool.
 */
export const REMOTE_FS_MAGIC: ReadonlyMap<number, string> = new Map([
  [0x6969, 'nfs'],
  [0x517b, 'smb'],
  [0xff534d42, 'cifs'],
  [0xfe534d42, 'smb2'],
  [0x65735546, 'fuse'],
  [0x00c36400, 'ceph'],
  [0x01161970, 'gfs2'],
  [0x7461636f, 'ocfs2'],
  [0x5346414f, 'afs'],
  [0x01021997, 'v9fs'],
  [0x47504653, 'gpfs'],
  [0x0bd00bd0, 'lustre'],
])
