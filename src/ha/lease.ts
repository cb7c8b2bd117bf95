// The arbiter (METHOD.md "The arbiter"): a delta lease on the shared storage, with an epoch.
//
// Neither controller trusts the other's clock. Time is only ever measured on one's own monotonic
// clock, and only as "how long since I saw X": the holder measures how long since its last
// renewal began; a watcher measures how long the record has stayed byte-for-byte the same.
//
// Roles of one `Lease` object (one per controller process):
//   holder   `renew()` every renewIntervalMs: read, check the record is still ours (holder, epoch,
//            incarnation), write it back with counter+1, fdatasync. `mustFence(now)` is true once
//            fenceAfterMs have passed since the start of the last renewal that counted; the
//            controller checks it before every I/O and stops serving when it turns true.
//   watcher  `read()` every pollIntervalMs; `lapsed()` is true once the record stayed unchanged
//            for at least durationMs (the longer of ours and the holder's, plus a clock-rate
//            margin) between the end of the read that first saw it and the start of a later read
//            that saw it again. `takeOver()` then claims it with epoch+1.
//
// Rules that make it safe (D = duration, F = fenceAfter < D, S = settle, 2S < F):
//   R1  A renewal counts only if it began and finished before the current deadline (lastOk + F);
//       it then moves lastOk to the time it began. Expiry is sticky: once the deadline passed,
//       this process never renews, writes or serves on this tenure again (it must win a new
//       epoch). A renewal that finds the deadline passed by the time its read returns does not
//       write at all.
//   R2  A watcher may take over only after seeing the same record for D (see above).
//   R3  A takeover counts only if its read→write→fdatasync took at most S; it then waits S and
//       rereads, and must find exactly the record it wrote (compare-after-write). The claim is
//       its first renewal (lastOk = the start of its read), the confirming reread its second
//       (it writes counter+1 under R1).
//
// Why the old holder H has stopped before the watcher W writes: let W first see record R at b0
// (the end of that read) and see it again in a read starting at r ≥ b0 + D; then W writes.
// Suppose H may still serve at some t ≥ r. Then some renewal of H counted with start s > r − F;
// take the earliest, and let s' ≤ r − F be the start of H's counted renewal (or claim) before
// it. That one finished before its own predecessor's deadline, which is < s' + F ≤ r, so its
// write landed before W's read at r; W saw no change, so it landed before b0, and s' < b0. By
// R1 renewal s finished (so its write landed) before s' + F < b0 + F < b0 + D ≤ r, and it
// began at s > r − F ≥ b0 + D − F > b0: it landed strictly inside the window in which W saw R
// unchanged. Contradiction — so H's lease ran out by r, before W even writes. A write of H that
// lands after r belongs to a renewal that did not count, so H never serves on it; it may
// overwrite W's record, which W's compare-after-write or its next renewal then sees (a lower
// epoch is a stale write and is written over; anything else is `lost`).
//
// Two watchers racing (R3): both read the record before either claim landed (whoever reads a
// claim sees a change and backs off), so each claim landed within S of a read made before the
// first claim landed, i.e. before the first claimer rereads (S after its own claim landed). The
// claims carry generation read+1: the later one either replaces the earlier in its slot or
// outranks it, so the first claimer rereads someone else's record and fails. At most one wins.
//
// A primary that was paused (SIGSTOP, a long GC) wakes with mustFence() already true: it checks
// before any I/O and never renews an expired tenure. A renewal in flight across the pause
// finishes after the deadline, so it does not count (R1), and writes nothing if it had not yet.
//
// Torn writes: see lease-record.ts (two slots, alternating by generation; garbage is never free;
// a never-written area is formatted with BLANK_RECORD before the first claim).
// A planned handover (`release`) writes a RELEASED record naming the successor, after this
// process stopped serving, so the successor takes over without waiting out D.
// A forced takeover (operator) does not wait for the lapse: it claims epoch+1 at once and keeps
// renewing without serving for D, during which a live old holder either sees the higher epoch on
// its next renewal or runs out its own F; only then does it confirm and serve.
//
// Assumption: a write submitted by a process lands within the time that process itself measures
// for it. A write stuck in a storage queue that lands long after its writer died (or gave up) can
// at worst overwrite a record with an older one; that reads as "changed" to watchers (safe) and is
// repaired or reported as `lost` by the holder (safe, costs a failover).

import { performance } from 'node:perf_hooks'
import {
  LEASE_AREA_SIZE,
  LEASE_NAME_MAX,
  LEASE_SLOT_SIZE,
  decodeLeaseArea,
  encodeLeaseRecord,
  sameRecord,
  slotOf,
  type LeaseRecord,
  type LeaseView,
} from './lease-record.js'
import type { LeaseStore } from './lease-store.js'

export { FileLeaseStore, LeaseStoreError, MemoryLeaseStore, leasePathFor, type LeaseStore } from './lease-store.js'
export { LEASE_AREA_SIZE, decodeLeaseArea, type LeaseRecord, type LeaseView } from './lease-record.js'

export interface LeaseTimings {
  /** A record unchanged for this long (watcher's own clock) has lapsed. Default 600. */
  durationMs: number
  /** The holder renews this often. Default 100. */
  renewIntervalMs: number
  /** A watcher reads the record this often. Default 50. */
  pollIntervalMs: number
  /** The holder stops serving this long after the start of its last counted renewal. Default 0.6 × duration. */
  fenceAfterMs: number
  /**
   * A takeover's read→write→fdatasync must finish within this, and it waits this long before
   * rereading to confirm; 2 × settleMs < fenceAfterMs. Default min(100, fenceAfterMs / 3).
   */
  settleMs: number
}

export interface ResolvedLeaseTimings extends LeaseTimings {
  /** Margin a watcher adds to the duration for clock-rate differences (0.2 %, at least 1 ms). */
  driftMarginMs: number
}

export const DEFAULT_LEASE_TIMINGS: Readonly<LeaseTimings> = Object.freeze({
  durationMs: 600,
  renewIntervalMs: 100,
  pollIntervalMs: 50,
  fenceAfterMs: 360,
  settleMs: 100,
})

/** The record a never-written lease area is formatted with: free (released to anyone), epoch 0. */
export const BLANK_RECORD: Readonly<LeaseRecord> = Object.freeze({
  epoch: 0,
  holder: '',
  incarnation: 0,
  generation: 0,
  counter: 0,
  durationMs: 0,
  released: true,
  successor: '',
})

export class LeaseConfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'LeaseConfigError'
  }
}

/** Fill in defaults and check the relations the safety argument needs. */
export function resolveLeaseTimings(t: Partial<LeaseTimings> = {}): ResolvedLeaseTimings {
  const durationMs = t.durationMs ?? DEFAULT_LEASE_TIMINGS.durationMs
  const fenceAfterMs = t.fenceAfterMs ?? Math.round(durationMs * 0.6)
  const renewIntervalMs = t.renewIntervalMs ?? Math.min(DEFAULT_LEASE_TIMINGS.renewIntervalMs, Math.max(1, Math.floor(fenceAfterMs / 3)))
  const pollIntervalMs = t.pollIntervalMs ?? Math.min(DEFAULT_LEASE_TIMINGS.pollIntervalMs, Math.max(1, Math.floor(durationMs / 6)))
  const pos = (name: string, v: number): void => {
    if (!Number.isFinite(v) || v <= 0) throw new LeaseConfigError(`${name} must be a positive number of ms, not ${v}`)
  }
  pos('durationMs', durationMs)
  pos('fenceAfterMs', fenceAfterMs)
  pos('renewIntervalMs', renewIntervalMs)
  pos('pollIntervalMs', pollIntervalMs)
  if (durationMs > 0xffffffff) throw new LeaseConfigError(`durationMs ${durationMs} does not fit the record`)
  if (fenceAfterMs >= durationMs) {
    throw new LeaseConfigError(`fenceAfterMs ${fenceAfterMs} must be less than durationMs ${durationMs}, or both controllers could serve at once`)
  }
  const settleMs = t.settleMs ?? Math.min(DEFAULT_LEASE_TIMINGS.settleMs, Math.floor(fenceAfterMs / 3))
  const driftMarginMs = Math.max(1, Math.ceil(durationMs * 0.002))
  if (!Number.isFinite(settleMs) || settleMs < 0) throw new LeaseConfigError(`settleMs must be >= 0, not ${settleMs}`)
  if (2 * settleMs >= fenceAfterMs) {
    throw new LeaseConfigError(`settleMs ${settleMs} leaves a takeover no time to confirm: 2 × settleMs must be less than fenceAfterMs ${fenceAfterMs}`)
  }
  if (renewIntervalMs >= fenceAfterMs) throw new LeaseConfigError(`renewIntervalMs ${renewIntervalMs} must be less than fenceAfterMs ${fenceAfterMs}`)
  if (pollIntervalMs >= durationMs) throw new LeaseConfigError(`pollIntervalMs ${pollIntervalMs} must be less than durationMs ${durationMs}`)
  return { durationMs, renewIntervalMs, pollIntervalMs, fenceAfterMs, settleMs, driftMarginMs }
}

/** Lease timings from the config's `ha` section (HaTuning); poll and settle take their defaults. */
export function leaseTimingsFromHa(ha: { leaseDurationMs: number; leaseRenewMs: number; fenceAfterMs: number }): ResolvedLeaseTimings {
  return resolveLeaseTimings({ durationMs: ha.leaseDurationMs, renewIntervalMs: ha.leaseRenewMs, fenceAfterMs: ha.fenceAfterMs })
}

/** This process's standing as a holder. */
export type HolderState =
  /** Never held (or gave it up before holding). */
  | 'none'
  /** Holds the lease; serve while mustFence() is false. */
  | 'held'
  /** Could not renew in time (or abandoned): stop serving; only a new takeover (new epoch) helps. */
  | 'expired'
  /** The record names someone else or a higher epoch: stop serving at once. */
  | 'lost'
  /** Gave the lease up in a planned handover. */
  | 'released'

export type RenewResult =
  | { outcome: 'renewed'; epoch: number; counter: number; validFrom: number; validUntil: number; repaired: boolean }
  /** Not renewed this time; still holder until the deadline (validUntil unchanged). */
  | { outcome: 'failed'; reason: 'io' | 'unknown'; detail: string; validUntil: number }
  | { outcome: 'lost'; detail: string; holder?: string; epoch?: number }
  | { outcome: 'expired'; detail: string }

export type AcquireFailure = 'not-lapsed' | 'held' | 'raced' | 'slow' | 'unknown' | 'io'

export type AcquireResult =
  | { ok: true; epoch: number; validFrom: number; validUntil: number }
  | { ok: false; reason: AcquireFailure; detail: string; holder?: string; epoch?: number }

export type ReleaseResult = { ok: true; epoch: number } | { ok: false; detail: string }

/** What `read()` reports (for `peer status` and the watcher). */
export interface LeaseStatus {
  kind: 'empty' | 'unknown' | 'held' | 'released'
  holder: string
  epoch: number
  counter: number
  generation: number
  durationMs: number
  /** With kind 'released': who may take over at once ('' = anyone). */
  successor: string
  /** Ms since this process last saw the record change (0 if never read). */
  ageMs: number
  lapsed: boolean
  /** Why the record is unknown. */
  error?: string
  /** This read failed (I/O error); the other fields are from the last successful read. */
  readError?: string
  self: {
    node: string
    incarnation: number
    state: HolderState
    /** Epoch of this process's tenure (0 if it never held). */
    epoch: number
    /** Ms left before mustFence() turns true (0 when not holding). */
    validForMs: number
  }
}

export interface LeaseOptions {
  store: LeaseStore
  /** This controller's node name (at most 64 UTF-8 bytes). */
  node: string
  timings?: Partial<LeaseTimings>
  /** Monotonic ms. Default performance.now. */
  clock?: () => number
  /** Wait `ms` on the same clock. Default setTimeout. */
  sleep?: (ms: number) => Promise<void>
  /** Distinguishes this process from earlier runs of the same node. Default random, non-zero. */
  incarnation?: number
}

interface Observation {
  key: string
  view: LeaseView
  /** End of the read that first returned this content. */
  firstSeenAt: number
  /** Start of the latest later read that returned the same content. */
  confirmedAt: number | null
}

function viewKey(v: LeaseView): string {
  if (v.kind !== 'record') return v.kind
  const r = v.record
  return `${r.generation}/${r.epoch}/${r.holder}/${r.incarnation}/${r.counter}/${r.durationMs}/${r.released ? 1 : 0}/${r.successor}`
}

function randomIncarnation(): number {
  const n = (Math.random() * 0xffffffff) >>> 0
  return n === 0 ? 1 : n
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

export class Lease {
  readonly node: string
  readonly incarnation: number
  readonly timings: ResolvedLeaseTimings
  private readonly store: LeaseStore
  private readonly clock: () => number
  private readonly sleep: (ms: number) => Promise<void>
  private tail: Promise<unknown> = Promise.resolve()

  // Holder side.
  private hold: HolderState = 'none'
  /** A forced takeover is waiting out the old holder: held, renewing, but not serving. */
  private embargo = false
  private tenureEpoch = 0
  /** Start of the last counted renewal (or takeover). */
  private lastOk = Number.NEGATIVE_INFINITY
  /** The record this process wrote last in its tenure. */
  private mine: LeaseRecord | null = null
  private lostDetail = ''

  // Watcher side.
  private obs: Observation | null = null
  private maxEpochSeen = 0
  private maxGenerationSeen = 0

  constructor(opts: LeaseOptions) {
    const nameLen = Buffer.byteLength(opts.node, 'utf8')
    if (nameLen === 0 || nameLen > LEASE_NAME_MAX || opts.node.includes('\0')) {
      throw new LeaseConfigError(`node name ${JSON.stringify(opts.node)} must be 1..${LEASE_NAME_MAX} bytes without NUL`)
    }
    const inc = opts.incarnation ?? randomIncarnation()
    if (!Number.isInteger(inc) || inc <= 0 || inc > 0xffffffff) throw new LeaseConfigError(`incarnation ${inc} must be in 1..2^32-1`)
    this.node = opts.node
    this.incarnation = inc
    this.timings = resolveLeaseTimings(opts.timings)
    this.store = opts.store
    this.clock = opts.clock ?? (() => performance.now())
    this.sleep = opts.sleep ?? ((ms) => new Promise<void>((r) => setTimeout(r, ms)))
  }

  /** Holder standing of this process. */
  get state(): HolderState {
    return this.hold
  }

  /** Epoch of this process's current or last tenure (0 if it never held the lease). */
  get epoch(): number {
    return this.tenureEpoch
  }

  /** Highest epoch this process has seen in any valid record. */
  get highestEpochSeen(): number {
    return Math.max(this.maxEpochSeen, this.tenureEpoch)
  }

  /** Monotonic time until which this holder may serve (−Infinity when not holding). */
  validUntil(): number {
    return this.hold === 'held' && !this.embargo ? this.lastOk + this.timings.fenceAfterMs : Number.NEGATIVE_INFINITY
  }

  /**
   * True when this process must not execute I/O: it does not hold the lease, or fenceAfterMs have
   * passed since its last counted renewal began. Sticky: once true for a tenure, stays true.
   */
  mustFence(now: number = this.clock()): boolean {
    if (this.hold !== 'held' || this.embargo) return true
    if (now - this.lastOk >= this.timings.fenceAfterMs) {
      this.hold = 'expired'
      return true
    }
    return false
  }

  /** Stop holding without writing (shutdown, or the HA controller fenced for another reason). */
  abandon(): void {
    if (this.hold === 'held') this.hold = 'expired'
  }

  /** True when the last observation shows a lease that may be taken without waiting further. */
  lapsed(): boolean {
    const o = this.obs
    if (!o) return false
    const v = o.view
    if (v.kind === 'empty') return true
    if (v.kind === 'unknown') return false
    const r = v.record
    if (r.released && (r.successor === '' || r.successor === this.node)) return true
    return o.confirmedAt !== null && o.confirmedAt - o.firstSeenAt >= this.lapseNeededMs(r)
  }

  /**
   * Read the lease area and update the watcher's observation. Never throws: a failed read leaves
   * the observation as it was (it confirms nothing) and is reported in `readError`.
   */
  read(): Promise<LeaseStatus> {
    return this.exclusive(async () => {
      try {
        await this.observe()
      } catch (e) {
        return { ...this.snapshot(), readError: `read failed: ${errText(e)}` }
      }
      return this.snapshot()
    })
  }

  /** Status from the last observation, without I/O. */
  snapshot(now: number = this.clock()): LeaseStatus {
    if (this.hold === 'held') this.mustFence(now) // an expired tenure shows as expired
    const o = this.obs
    const self = {
      node: this.node,
      incarnation: this.incarnation,
      state: this.hold,
      epoch: this.tenureEpoch,
      validForMs: Math.max(0, this.validUntil() - now),
    }
    const ageMs = o ? Math.max(0, now - o.firstSeenAt) : 0
    const base = { holder: '', epoch: 0, counter: 0, generation: 0, durationMs: 0, successor: '', ageMs, lapsed: this.lapsed(), self }
    if (!o || o.view.kind === 'empty') return { kind: 'empty', ...base }
    if (o.view.kind === 'unknown') return { kind: 'unknown', ...base, error: o.view.why }
    const r = o.view.record
    if (r.holder === '' && r.epoch === 0) return { kind: 'empty', ...base, generation: r.generation }
    return {
      ...base,
      kind: r.released ? 'released' : 'held',
      holder: r.holder,
      epoch: r.epoch,
      counter: r.counter,
      generation: r.generation,
      durationMs: r.durationMs,
      successor: r.successor,
    }
  }

  /**
   * Cluster start: take the lease if the area was never written, was released to us (or to
   * anyone), or its record stays unchanged for the lapse time (watching for up to that long);
   * give up with 'held' as soon as the record changes (someone renews it) and with 'unknown' on
   * an unreadable record.
   */
  async acquireInitial(): Promise<AcquireResult> {
    if (this.hold === 'held' && !this.mustFence()) return this.okResult()
    let status = await this.read()
    if (status.readError !== undefined) return { ok: false, reason: 'io', detail: status.readError }
    if (status.kind === 'unknown') return { ok: false, reason: 'unknown', detail: `lease record unreadable: ${status.error ?? ''}` }
    const startKey = this.obs?.key
    const limit = this.clock() + 2 * (this.timings.durationMs + this.timings.driftMarginMs) + 4 * this.timings.pollIntervalMs
    for (;;) {
      if (this.lapsed()) return this.takeOver()
      if (this.obs?.key !== startKey) {
        return { ok: false, reason: 'held', detail: `${status.holder} renews the lease (epoch ${status.epoch})`, holder: status.holder, epoch: status.epoch }
      }
      if (this.clock() > limit) return { ok: false, reason: 'not-lapsed', detail: 'the lease did not lapse in time', holder: status.holder, epoch: status.epoch }
      await this.sleep(this.timings.pollIntervalMs)
      status = await this.read()
      if (status.readError !== undefined) return { ok: false, reason: 'io', detail: status.readError }
      if (status.kind === 'unknown') return { ok: false, reason: 'unknown', detail: `lease record unreadable: ${status.error ?? ''}` }
    }
  }

  /**
   * Take the lease with epoch+1. Without `force` the last observation must show it lapsed (or
   * released to us, or never written) and the takeover's own read must still show the same
   * record. With `force` (operator), claim at once — also over an unreadable record, with an
   * epoch above `epochFloor` — and wait out the old holder before serving.
   */
  takeOver(opts: { force?: boolean; epochFloor?: number } = {}): Promise<AcquireResult> {
    return this.exclusive(() => this.takeOverLocked(opts.force === true, opts.epochFloor ?? 0))
  }

  /** Holder: one renewal (read, check, write counter+1, fdatasync). */
  renew(): Promise<RenewResult> {
    return this.exclusive(async () => {
      if (this.hold === 'lost') return { outcome: 'lost', detail: this.lostDetail }
      if (this.hold !== 'held') return { outcome: 'expired', detail: `lease is ${this.hold}` }
      return this.renewStep(false)
    })
  }

  /**
   * Planned handover: the caller has stopped serving. Marks the lease released (mustFence() is
   * true from now on) and writes a RELEASED record naming `successor` ('' = anyone), who may
   * then take over without waiting out the duration.
   */
  release(successor = ''): Promise<ReleaseResult> {
    return this.exclusive(async () => {
      if (this.hold !== 'held' || this.embargo || this.mustFence()) return { ok: false, detail: `lease is ${this.hold}; nothing to release` }
      const mine = this.mine
      if (!mine) return { ok: false, detail: 'no record of ours' }
      this.hold = 'released'
      let view: LeaseView
      try {
        view = decodeLeaseArea(await this.store.read(0, LEASE_AREA_SIZE))
      } catch (e) {
        return { ok: false, detail: `read failed: ${errText(e)}` }
      }
      if (view.kind !== 'record' || !this.isOurs(view.record)) return { ok: false, detail: 'the record is no longer ours' }
      const rec: LeaseRecord = {
        ...mine,
        generation: Math.max(view.record.generation, mine.generation) + 1,
        counter: Math.max(view.record.counter, mine.counter) + 1,
        released: true,
        successor,
      }
      try {
        await this.writeRecord(rec)
      } catch (e) {
        return { ok: false, detail: `write failed: ${errText(e)}` }
      }
      this.mine = rec
      return { ok: true, epoch: rec.epoch }
    })
  }

  // ---- internals ----

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn)
    this.tail = run.catch(() => undefined)
    return run
  }

  private lapseNeededMs(r: LeaseRecord): number {
    return Math.max(this.timings.durationMs, r.durationMs) + this.timings.driftMarginMs
  }

  private okResult(): AcquireResult {
    return { ok: true, epoch: this.tenureEpoch, validFrom: this.lastOk, validUntil: this.lastOk + this.timings.fenceAfterMs }
  }

  private isOurs(r: LeaseRecord): boolean {
    return r.holder === this.node && r.incarnation === this.incarnation && r.epoch === this.tenureEpoch && !r.released
  }

  private note(v: LeaseView): void {
    if (v.kind !== 'record') return
    if (v.record.epoch > this.maxEpochSeen) this.maxEpochSeen = v.record.epoch
    if (v.record.generation > this.maxGenerationSeen) this.maxGenerationSeen = v.record.generation
  }

  /** One watcher read: returns the view and the time the read started. */
  private async observe(): Promise<{ view: LeaseView; startedAt: number }> {
    const t0 = this.clock()
    const view = decodeLeaseArea(await this.store.read(0, LEASE_AREA_SIZE))
    const t1 = this.clock()
    this.note(view)
    const key = viewKey(view)
    if (!this.obs || this.obs.key !== key) this.obs = { key, view, firstSeenAt: t1, confirmedAt: null }
    else this.obs.confirmedAt = Math.max(this.obs.confirmedAt ?? t0, t0)
    return { view, startedAt: t0 }
  }

  private async writeRecord(rec: LeaseRecord): Promise<void> {
    await this.store.write(slotOf(rec.generation) * LEASE_SLOT_SIZE, encodeLeaseRecord(rec))
    await this.store.sync()
    if (rec.generation > this.maxGenerationSeen) this.maxGenerationSeen = rec.generation
  }

  private async takeOverLocked(force: boolean, epochFloor: number): Promise<AcquireResult> {
    if (this.hold === 'held' && !this.embargo && !this.mustFence()) return this.okResult()
    const { settleMs } = this.timings
    let view: LeaseView
    let t0: number
    try {
      ;({ view, startedAt: t0 } = await this.observe())
    } catch (e) {
      return { ok: false, reason: 'io', detail: `read failed: ${errText(e)}` }
    }
    let prev = view.kind === 'record' ? view.record : null
    if (view.kind === 'empty') {
      // Never written: first put the blank record (generation 0) in slot 0. Every node writes
      // the same bytes, so concurrent formats cannot tear it, and from now on a claim torn by a
      // concurrent claim in slot 1 falls back to it instead of leaving no valid record.
      try {
        await this.writeRecord(BLANK_RECORD)
      } catch (e) {
        return { ok: false, reason: 'io', detail: `formatting the lease area failed: ${errText(e)}` }
      }
      prev = BLANK_RECORD
    }
    if (!force) {
      if (view.kind === 'unknown') return { ok: false, reason: 'unknown', detail: `lease record unreadable: ${view.why}` }
      if (!this.lapsed()) {
        return { ok: false, reason: 'not-lapsed', detail: `${prev?.holder ?? '?'} holds the lease (epoch ${prev?.epoch ?? 0}) and it has not lapsed`, holder: prev?.holder, epoch: prev?.epoch }
      }
    }
    const epoch = Math.max(prev?.epoch ?? 0, epochFloor, this.maxEpochSeen, this.tenureEpoch) + 1
    if (epoch > 0xffffffff) return { ok: false, reason: 'unknown', detail: 'epoch exhausted' }
    const claim: LeaseRecord = {
      epoch,
      holder: this.node,
      incarnation: this.incarnation,
      // Based on what we read, so two claims made from the same read land in the same slot and
      // the later one replaces the earlier (compare-after-write then tells who won).
      generation: (prev?.generation ?? (force ? this.maxGenerationSeen : 0)) + 1,
      counter: 0,
      durationMs: this.timings.durationMs,
      released: false,
      successor: '',
    }
    if (this.clock() - t0 > settleMs) return { ok: false, reason: 'slow', detail: 'reading the lease took longer than settleMs' }
    try {
      await this.writeRecord(claim)
    } catch (e) {
      return { ok: false, reason: 'io', detail: `write failed: ${errText(e)}` }
    }
    if (this.clock() - t0 > settleMs) return { ok: false, reason: 'slow', detail: 'the claim took longer than settleMs to reach storage' }
    // Holding from here (renewals may run), but not serving until confirmed.
    this.hold = 'held'
    this.embargo = true
    this.tenureEpoch = epoch
    this.lastOk = t0
    this.mine = claim
    const fail = (reason: AcquireFailure, detail: string, rec?: { holder: string; epoch: number }): AcquireResult => {
      if (this.hold === 'held') this.hold = 'expired'
      this.embargo = false
      return { ok: false, reason, detail, holder: rec?.holder, epoch: rec?.epoch }
    }
    if (force) {
      // Wait out the old holder while keeping our claim fresh.
      const waitUntil = this.clock() + Math.max(this.timings.durationMs, prev?.durationMs ?? 0) + this.timings.driftMarginMs
      for (;;) {
        const left = waitUntil - this.clock()
        if (left <= 0) break
        await this.sleep(Math.min(left, this.timings.renewIntervalMs))
        const r = await this.renewStep(true)
        if (r.outcome === 'failed') return fail(r.reason, r.detail)
        if (r.outcome === 'expired') return fail('slow', r.detail)
        if (r.outcome === 'lost') return fail('raced', r.detail, r.holder === undefined ? undefined : { holder: r.holder, epoch: r.epoch ?? 0 })
      }
    } else {
      await this.sleep(settleMs)
    }
    // Compare after write, as a renewal: the record must still be exactly what we last wrote;
    // then it is renewed (counter+1), so the tenure starts from this read.
    const r = await this.renewStep(true)
    switch (r.outcome) {
      case 'renewed':
        this.embargo = false
        return this.okResult()
      case 'lost':
        return fail('raced', `another write landed during the takeover: ${r.detail}`, r.holder === undefined ? undefined : { holder: r.holder, epoch: r.epoch ?? 0 })
      case 'expired':
        return fail('slow', `the takeover outlasted fenceAfterMs: ${r.detail}`)
      case 'failed':
        return fail(r.reason, r.detail)
    }
  }

  /**
   * One renewal. `strict` (during a takeover): the record must be exactly what we wrote last.
   * Otherwise: ours (holder, epoch, incarnation) is renewed; a lower epoch is a stale write from a
   * deposed holder and is written over; anything else means the lease is lost.
   */
  private async renewStep(strict: boolean): Promise<RenewResult> {
    const { fenceAfterMs } = this.timings
    const s = this.clock()
    const expired = (detail: string): RenewResult => {
      if (this.hold === 'held') this.hold = 'expired'
      return { outcome: 'expired', detail }
    }
    if (this.hold !== 'held') return expired(`lease is ${this.hold}`)
    if (s - this.lastOk >= fenceAfterMs) return expired('fenceAfterMs passed since the last renewal')
    const failed = (reason: 'io' | 'unknown', detail: string): RenewResult => ({ outcome: 'failed', reason, detail, validUntil: this.validUntil() })
    const lost = (detail: string, rec?: LeaseRecord): RenewResult => {
      this.hold = 'lost'
      this.lostDetail = detail
      return { outcome: 'lost', detail, holder: rec?.holder, epoch: rec?.epoch }
    }
    let view: LeaseView
    try {
      view = decodeLeaseArea(await this.store.read(0, LEASE_AREA_SIZE))
    } catch (e) {
      return failed('io', `read failed: ${errText(e)}`)
    }
    this.note(view)
    if (this.hold !== 'held') return expired(`lease is ${this.hold}`)
    if (this.clock() - this.lastOk >= fenceAfterMs) return expired('the deadline passed while reading; not writing')
    const mine = this.mine
    if (!mine) return lost('no record of ours')
    if (view.kind === 'unknown') return failed('unknown', `lease record unreadable: ${view.why}`)
    if (view.kind === 'empty') return lost('the lease area was wiped')
    const rec = view.record
    let repaired = false
    if (strict) {
      if (!sameRecord(rec, mine)) return lost(`another write landed (${rec.holder}, epoch ${rec.epoch})`, rec)
    } else if (rec.epoch > this.tenureEpoch) {
      return lost(`${rec.holder || 'someone'} took the lease at epoch ${rec.epoch}`, rec)
    } else if (rec.epoch === this.tenureEpoch) {
      if (!this.isOurs(rec)) return lost(`the record at our epoch ${rec.epoch} names ${rec.holder}${rec.released ? ' (released)' : ''}`, rec)
    } else {
      repaired = true // a late write from a deposed holder: ours is newer
    }
    const next: LeaseRecord = {
      ...mine,
      generation: Math.max(rec.generation, mine.generation) + 1,
      counter: Math.max(repaired ? 0 : rec.counter, mine.counter) + 1,
    }
    try {
      await this.writeRecord(next)
    } catch (e) {
      return failed('io', `write failed: ${errText(e)}`)
    }
    this.mine = next
    const f = this.clock()
    if (this.hold !== 'held') return expired(`lease is ${this.hold}`)
    if (f - this.lastOk >= fenceAfterMs) return expired('the renewal finished after the deadline')
    this.lastOk = s
    return { outcome: 'renewed', epoch: this.tenureEpoch, counter: next.counter, validFrom: s, validUntil: s + fenceAfterMs, repaired }
  }
}
