// `iscsi-ha bench`: run the workloads against every target with the same clients, interleaved
// (for each workload and round: target A, then B, …), so drift on the machine (page cache,
// CPU frequency, another process) touches every target alike.
//
// Each qemu-img run is sized to last about `seconds`: a short calibration run per target
// (which also warms the target up) gives its rate, unless `count` fixes the requests.
// iscsi-perf runs for whole seconds by itself.
import { ClientMissingError, runBounded, type BoundedResult } from './bounded.js'
import { ClientError } from './errors.js'
import { iscsiPerfArgs, parseIscsiPerf } from './iscsi-perf.js'
import { parseQemuImgBench, qemuImgArgs } from './qemu-img.js'
import type { RssSampler } from './rss.js'
import type { Workload } from './workloads.js'

export interface BenchTarget {
  label: string
  url: string
  /** The target the others are compared with (--vs). */
  baseline: boolean
}

export interface TargetInfo extends BenchTarget {
  /** From READ CAPACITY(16) (iscsi-readcapacity16), when the tool is there. */
  blockSize?: number
  bytes?: number
  /** LBPME=1: the target reports thin provisioning (QEMU then asks GET LBA STATUS before large reads). */
  thin?: boolean
}

export interface Sample {
  round: number
  requests: number
  seconds: number
  iops: number
  /** Peak VmRSS (KiB) of each process watched (--pid) during this run. */
  rssPeakKiB?: Record<string, number>
}

export interface BenchRow {
  workload: string
  title: string
  client: Workload['client']
  op: Workload['op']
  pattern: Workload['pattern']
  blockSize: number
  queueDepth: number
  target: string
  url: string
  baseline: boolean
  /** Median over the rounds; 0 when every run failed. */
  iops: number
  /** 10^6 bytes per second. */
  mbps: number
  /** QD / IOPS (Little's law): neither client reports per-request latency. */
  meanLatencyUs: number
  latency: 'derived'
  /** IOPS over the baseline's IOPS for the same workload (> 1: faster, lower latency). */
  ratio?: number
  /** Peak VmRSS (KiB) of each watched process over this row's runs. */
  rssPeakKiB?: Record<string, number>
  samples: Sample[]
  error?: string
}

export interface BenchReport {
  startedAt: string
  durationMs: number
  settings: { seconds: number; count?: number; rounds: number }
  baseline?: string
  targets: TargetInfo[]
  rows: BenchRow[]
}

export type BenchEvent =
  | { type: 'probed'; target: TargetInfo }
  | { type: 'running'; workload: Workload; target: string; round: number; phase: 'calibrate' | 'measure'; index: number; total: number }
  | { type: 'sample'; workload: Workload; target: string; round: number; sample: Sample; index: number; total: number }
  | { type: 'failed'; workload: Workload; target: string; round: number; error: string; index: number; total: number }
  | { type: 'row'; row: BenchRow }

export interface BenchOptions {
  targets: BenchTarget[]
  workloads: Workload[]
  /** Length of each measured run, seconds. */
  seconds: number
  /** Fixed qemu-img request count (no calibration). */
  count?: number
  rounds: number
  /** Hard limit for one client run, ms; past it the client is stopped by pid. */
  timeoutMs: number
  signal?: AbortSignal
  onEvent?: (e: BenchEvent) => void
  /** Watches processes' resident memory: each measured run is a window. */
  rss?: RssSampler
}

export function median(values: number[]): number {
  if (values.length === 0) return 0
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** READ CAPACITY(16) through libiscsi: block size, size, thin provisioning. Throws when unreachable. */
export async function probeTarget(t: BenchTarget, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<TargetInfo> {
  let r: BoundedResult
  try {
    r = await runBounded('iscsi-readcapacity16', [t.url], opts)
  } catch (err) {
    if (err instanceof ClientMissingError) return { ...t }
    throw err
  }
  const out = r.stdout + r.stderr
  const block = /LOGICAL BLOCK LENGTH IN BYTES:\s*([0-9]+)/.exec(out)
  const total = /Total size:\s*([0-9]+)/.exec(out)
  if (r.exitCode !== 0 || !block) throw new ClientError('iscsi-readcapacity16', `cannot read the capacity of ${t.label} (${t.url})`, out)
  const lbpme = /LBPME:\s*([01])/.exec(out)
  return { ...t, blockSize: Number(block[1]), ...(total ? { bytes: Number(total[1]) } : {}), ...(lbpme ? { thin: lbpme[1] === '1' } : {}) }
}

async function qemuImgRun(url: string, w: Workload, count: number, o: BenchOptions): Promise<{ requests: number; seconds: number }> {
  const r = await runBounded('qemu-img', qemuImgArgs(url, w, count), { timeoutMs: o.timeoutMs, ...(o.signal ? { signal: o.signal } : {}) })
  const out = r.stdout + r.stderr
  if (r.stopped) throw new ClientError('qemu-img', r.stopped === 'timeout' ? `stopped after ${o.timeoutMs} ms (--timeout)` : 'interrupted', out)
  if (r.exitCode !== 0) throw new ClientError('qemu-img', `exited with ${r.exitCode ?? r.signal}`, out)
  const parsed = parseQemuImgBench(out)
  return { requests: parsed.requests ?? count, seconds: parsed.seconds }
}

/** Requests for a run of about `seconds` on this target: short runs, scaled up until measurable. */
async function calibrate(url: string, w: Workload, o: BenchOptions): Promise<number> {
  // Start small: a slow target (or a slow path, e.g. a lookup before each large read) must not
  // turn the calibration itself into a long run.
  let count = Math.max(16, w.queueDepth * 4)
  for (;;) {
    const r = await qemuImgRun(url, w, count, o)
    if (r.seconds >= 0.2 || count >= 1_000_000) {
      const rate = r.requests / Math.max(r.seconds, 0.001)
      return Math.max(w.queueDepth * 8, Math.min(50_000_000, Math.round(rate * o.seconds)))
    }
    count = Math.min(1_000_000, Math.ceil(count * Math.min(64, 0.3 / Math.max(r.seconds, 0.002))))
  }
}

async function measure(t: TargetInfo, w: Workload, count: number, o: BenchOptions): Promise<{ requests: number; seconds: number; iops: number }> {
  if (w.client === 'qemu-img') {
    const r = await qemuImgRun(t.url, w, count, o)
    return { ...r, iops: r.requests / Math.max(r.seconds, 1e-6) }
  }
  const seconds = Math.max(1, Math.ceil(o.seconds))
  const r = await runBounded('iscsi-perf', iscsiPerfArgs(t.url, w, t.blockSize ?? 512, seconds), {
    timeoutMs: Math.max(o.timeoutMs, seconds * 1000 + 10_000), ...(o.signal ? { signal: o.signal } : {}),
  })
  const out = r.stdout + r.stderr
  if (r.stopped) throw new ClientError('iscsi-perf', r.stopped === 'timeout' ? 'did not stop by itself; stopped by pid' : 'interrupted', out)
  const p = parseIscsiPerf(out)
  if (p.transferBytes !== undefined && p.transferBytes !== w.blockSize) {
    throw new ClientError('iscsi-perf', `sent ${p.transferBytes}-byte requests instead of ${w.blockSize}`, out)
  }
  return { requests: Math.round(p.iops * seconds), seconds, iops: p.iops }
}

function rowOf(w: Workload, t: TargetInfo, samples: Sample[], error?: string): BenchRow {
  const iops = median(samples.map((s) => s.iops))
  const rss: Record<string, number> = {}
  for (const s of samples) for (const [label, kib] of Object.entries(s.rssPeakKiB ?? {})) rss[label] = Math.max(rss[label] ?? 0, kib)
  return {
    workload: w.id, title: w.title, client: w.client, op: w.op, pattern: w.pattern, blockSize: w.blockSize, queueDepth: w.queueDepth,
    target: t.label, url: t.url, baseline: t.baseline,
    iops, mbps: (iops * w.blockSize) / 1e6, meanLatencyUs: iops > 0 ? (w.queueDepth / iops) * 1e6 : 0, latency: 'derived',
    ...(Object.keys(rss).length ? { rssPeakKiB: rss } : {}), samples, ...(error ? { error } : {}),
  }
}

export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const started = Date.now()
  const emit = (e: BenchEvent): void => o.onEvent?.(e)
  const targets: TargetInfo[] = []
  for (const t of o.targets) {
    const info = await probeTarget(t, { timeoutMs: 15_000, ...(o.signal ? { signal: o.signal } : {}) })
    targets.push(info)
    emit({ type: 'probed', target: info })
  }
  const rows: BenchRow[] = []
  const total = o.workloads.length * targets.length * o.rounds
  let index = 0
  for (const w of o.workloads) {
    const counts = new Map<string, number>()
    const samples = new Map<string, Sample[]>(targets.map((t) => [t.label, []]))
    const errors = new Map<string, string>()
    for (let round = 1; round <= o.rounds; round++) {
      for (const t of targets) {
        if (o.signal?.aborted) throw new Error('interrupted')
        index++
        if (errors.has(t.label)) continue
        try {
          let count = o.count ?? counts.get(t.label)
          if (w.client === 'qemu-img' && count === undefined) {
            emit({ type: 'running', workload: w, target: t.label, round, phase: 'calibrate', index, total })
            count = await calibrate(t.url, w, o)
            counts.set(t.label, count)
          }
          emit({ type: 'running', workload: w, target: t.label, round, phase: 'measure', index, total })
          o.rss?.beginWindow()
          const m = await measure(t, w, count ?? 0, o)
          const rss = o.rss?.endWindow()
          const sample: Sample = { round, requests: m.requests, seconds: m.seconds, iops: m.iops, ...(rss ? { rssPeakKiB: rss } : {}) }
          samples.get(t.label)!.push(sample)
          emit({ type: 'sample', workload: w, target: t.label, round, sample, index, total })
        } catch (err) {
          if (o.signal?.aborted || !(err instanceof ClientError)) throw err
          errors.set(t.label, err.message)
          emit({ type: 'failed', workload: w, target: t.label, round, error: err.message, index, total })
        }
      }
    }
    const wRows = targets.map((t) => rowOf(w, t, samples.get(t.label)!, errors.get(t.label)))
    const base = wRows.find((r) => r.baseline)
    for (const r of wRows) {
      if (base && !r.baseline && base.iops > 0 && r.iops > 0) r.ratio = r.iops / base.iops
      rows.push(r)
      emit({ type: 'row', row: r })
    }
  }
  const baseline = targets.find((t) => t.baseline)?.label
  return {
    startedAt: new Date(started).toISOString(), durationMs: Date.now() - started,
    settings: { seconds: o.seconds, rounds: o.rounds, ...(o.count !== undefined ? { count: o.count } : {}) },
    ...(baseline ? { baseline } : {}), targets, rows,
  }
}
