// What the bench commands share besides the runners: turning flags into targets, and progress
// output (ink in a terminal, plain lines on stderr otherwise).
import { formatMiB, type RssSummary } from './rss.js'
import type { BenchEvent, BenchTarget } from './run.js'
import { formatIops, formatLatencyUs, formatMbps } from './table.js'
import { labelOf, parseIscsiUrl } from './url.js'

/** Targets in run order (the URLs, then --vs as the baseline) with unique labels; throws RangeError. */
export function parseTargets(urls: string[], vs: string | undefined, labels: string[], pidSpecs: string[]): {
  targets: BenchTarget[]
  pids: Array<{ label: string; pid: number }>
} {
  const all = [...urls.map((u) => ({ url: u, baseline: false })), ...(vs ? [{ url: vs, baseline: true }] : [])]
  if (labels.length > all.length) throw new RangeError(`${labels.length} labels for ${all.length} targets`)
  const seen = new Set<string>()
  const targets = all.map((t, i) => {
    const parsed = parseIscsiUrl(t.url)
    let label = labels[i] ?? labelOf(parsed)
    if (seen.has(label)) label = `${label}#${i + 1}`
    seen.add(label)
    return { label, url: t.url, baseline: t.baseline }
  })
  const pids = pidSpecs.map((spec) => {
    const m = /^(?:([^=]+)=)?([0-9]+)$/.exec(spec)
    if (!m) throw new RangeError(`--pid ${spec}: expected PID or LABEL=PID`)
    return { label: m[1] ?? `pid ${m[2]}`, pid: Number(m[2]) }
  })
  return { targets, pids }
}

export function rssLines(rss: RssSummary[]): string[] {
  return rss.map((r) => r.samples === 0
    ? `memory of ${r.label} (pid ${r.pid}): no samples (not running, or no /proc)`
    : `memory of ${r.label} (pid ${r.pid}): VmRSS peak ${formatMiB(r.peakKiB)}, mean ${formatMiB(r.meanKiB)} over ${r.samples} samples`)
}

/** Plain progress: a line on stderr per measured run (nothing goes to stdout, which --json owns). */
export function plainProgressLine(e: BenchEvent): string | undefined {
  switch (e.type) {
    case 'probed':
      return `${e.target.label}: ${e.target.url}${e.target.blockSize ? ` (${e.target.blockSize}-byte blocks${e.target.bytes ? `, ${Math.round(e.target.bytes / 1048576)} MiB` : ''}${e.target.thin ? ', thin' : ''})` : ''}`
    case 'sample': {
      const w = e.workload
      const iops = e.sample.iops
      return `[${e.index}/${e.total}] ${w.title} ${e.target} round ${e.round}: ${formatIops(iops)} IOPS, ${formatMbps((iops * w.blockSize) / 1e6)} MB/s, ${formatLatencyUs((w.queueDepth / iops) * 1e6)} us`
    }
    case 'failed':
      return `[${e.index}/${e.total}] ${e.workload.title} ${e.target}: failed: ${e.error}`
    default:
      return undefined
  }
}

export async function benchProgress(tty: boolean): Promise<{ onEvent(e: BenchEvent): void; stop(): void }> {
  if (!tty) {
    return {
      onEvent(e) {
        const line = plainProgressLine(e)
        if (line) process.stderr.write(`${line}\n`)
      },
      stop() {},
    }
  }
  const { BenchStore, showBenchProgress } = await import('../cli/views/bench-view.js')
  const store = new BenchStore()
  const view = showBenchProgress(store)
  let stopped = false
  return {
    onEvent: (e) => store.apply(e),
    stop() {
      if (!stopped) view.stop()
      stopped = true
    },
  }
}
