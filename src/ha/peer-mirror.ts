// The primary's side of the commit protocol (METHOD.md, write path steps 2, 3 and 5): number
// each write (or discard), send its copy to the secondary, resolve when the secondary confirms it, and tell
// the secondary in batches which copies are on storage so it can drop them (claim 26).

import { entryChecksum } from '../journal/entry.js'
import type { CopyRequest, JournalEntry, Mirror, PeerMessage } from './types.js'

export class MirrorUnavailableError extends Error {
  readonly code = 'MIRROR_UNAVAILABLE'
}

export interface PeerMirrorOptions {
  /** Queue a message on the peer link; false when the link is down or full. */
  send(msg: PeerMessage): boolean
  epoch(): number
  /** Link up, peer authenticated at our epoch, in the secondary role and in sync. */
  isHealthy(): boolean
  /** A copy not confirmed within this is given up: the write goes through to storage instead. */
  ackTimeoutMs: number
  /** Completion notices are gathered this long (or up to maxBatch) before they are sent. */
  completeBatchMs: number
  maxBatch: number
  /**
   * While the primary moves from mirrored to write-through, a failed copy must not fall back
   * before the drain is recorded on storage: return that wait here (undefined when none).
   */
  holdFailures?: () => Promise<void> | undefined
}

interface Waiting {
  resolve(seq: number): void
  reject(err: Error): void
  /** When the copy is given up unless confirmed (the ack timeout from when it was sent). */
  deadline: number
}

export class PeerMirror implements Mirror {
  private nextSeq = 1
  /** In seq order, which is deadline order: one timer, armed for the oldest, serves them all. */
  private readonly waiting = new Map<number, Waiting>()
  private ackTimer: NodeJS.Timeout | undefined
  private completedSeqs: number[] = []
  private batchTimer: NodeJS.Timeout | undefined
  /** Confirmed by the secondary, not yet on storage: the secondary's copy is the second memory. */
  private readonly committedNotCompleted = new Set<number>()
  private allCompletedWaiters: Array<() => void> = []
  /** Copies confirmed so far (for status and tests). */
  confirmed = 0

  constructor(private readonly opts: PeerMirrorOptions) {}

  get healthy(): boolean {
    return this.opts.isHealthy()
  }

  /** Copies sent and not yet confirmed. */
  get inFlight(): number {
    return this.waiting.size
  }

  /** The last seq handed out: a planned handover waits until everything up to it completed. */
  get lastSeq(): number {
    return this.nextSeq - 1
  }

  /** Resolves once every confirmed copy has been reported completed. */
  whenAllCompleted(): Promise<void> {
    if (this.committedNotCompleted.size === 0) return Promise.resolve()
    return new Promise((res) => this.allCompletedWaiters.push(res))
  }

  /** A write's copy carries its data; a discard's only its range (nothing to send but metadata). */
  copy(e: CopyRequest): Promise<number> {
    if (!this.opts.isHealthy()) return this.failLater(new MirrorUnavailableError('no healthy secondary'))
    const seq = this.nextSeq++
    const epoch = this.opts.epoch()
    const checksum = entryChecksum(e)
    // Built field by field, not spread: one object shape per kind keeps this path monomorphic.
    const entry: JournalEntry =
      e.kind === 'discard'
        ? { kind: 'discard', seq, epoch, key: e.key, offset: e.offset, length: e.length, checksum, initiator: e.initiator, isid: e.isid, itt: e.itt, receivedAtMs: e.receivedAtMs }
        : { seq, epoch, key: e.key, offset: e.offset, data: e.data, checksum, initiator: e.initiator, isid: e.isid, itt: e.itt, receivedAtMs: e.receivedAtMs }
    return new Promise<number>((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject, deadline: performance.now() + this.opts.ackTimeoutMs })
      this.ackTimer ??= setTimeout(() => this.expire(), this.opts.ackTimeoutMs)
      if (!this.opts.send({ type: 'copy', entry })) this.settle(seq, new MirrorUnavailableError('peer link down'))
    })
  }

  /** Give up the copies past their deadline; re-arm for the oldest one left. */
  private expire(): void {
    this.ackTimer = undefined
    const now = performance.now()
    for (const [seq, w] of this.waiting) {
      if (w.deadline > now) {
        this.ackTimer = setTimeout(() => this.expire(), Math.max(1, w.deadline - now))
        return
      }
      this.settle(seq, new MirrorUnavailableError(`copy #${seq} not confirmed in ${this.opts.ackTimeoutMs} ms`))
    }
  }

  completed(seq: number): void {
    if (this.committedNotCompleted.delete(seq) && this.committedNotCompleted.size === 0) {
      for (const w of this.allCompletedWaiters.splice(0)) w()
    }
    this.completedSeqs.push(seq)
    if (this.completedSeqs.length >= this.opts.maxBatch) this.flushCompletions()
    else this.batchTimer ??= setTimeout(() => this.flushCompletions(), this.opts.completeBatchMs)
  }

  /** Feed the secondary's answers here. */
  onMessage(msg: PeerMessage): void {
    if (msg.type === 'copy-ack') {
      const end = msg.seq + msg.count
      // A run longer than what is in flight (a count up to 2^32 - 1 is valid on the wire) walks
      // the copies waiting, not the range: a confirmation never costs more than they do.
      if (msg.count <= this.waiting.size) for (let seq = msg.seq; seq < end; seq++) this.settle(seq)
      else for (const seq of [...this.waiting.keys()]) if (seq >= msg.seq && seq < end) this.settle(seq)
    }
    else if (msg.type === 'copy-nak') this.settle(msg.seq, new MirrorUnavailableError(`secondary refused copy #${msg.seq}: ${msg.reason}`))
  }

  /** The link went down or the epoch moved: every unconfirmed copy falls back to write-through. */
  failAll(reason: string): void {
    for (const seq of [...this.waiting.keys()]) this.settle(seq, new MirrorUnavailableError(reason))
  }

  flushCompletions(): void {
    if (this.batchTimer) clearTimeout(this.batchTimer)
    this.batchTimer = undefined
    if (this.completedSeqs.length === 0) return
    const seqs = this.completedSeqs
    this.completedSeqs = []
    // A lost notice only leaves a copy the secondary replays harmlessly (the data is on storage).
    this.opts.send({ type: 'complete', epoch: this.opts.epoch(), seqs })
  }

  close(): void {
    this.flushCompletions()
    this.failAll('mirror closed')
  }

  private settle(seq: number, err?: Error): void {
    const w = this.waiting.get(seq)
    if (!w) return
    this.waiting.delete(seq)
    if (this.waiting.size === 0 && this.ackTimer) {
      clearTimeout(this.ackTimer)
      this.ackTimer = undefined
    }
    if (err) void this.failLater(err).catch(w.reject)
    else {
      this.confirmed++
      this.committedNotCompleted.add(seq)
      w.resolve(seq)
    }
  }

  private async failLater(err: Error): Promise<never> {
    const hold = this.opts.holdFailures?.()
    if (hold) await hold
    throw err
  }
}
