// Resident memory of processes while a benchmark runs: VmRSS from /proc/<pid>/status (Linux).
import { readFileSync } from 'node:fs'

/** VmRSS in KiB, or undefined when the process is gone (or this is not Linux). */
export function vmRssKiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+([0-9]+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : undefined
  } catch {
    return undefined
  }
}

export interface RssSummary {
  label: string
  pid: number
  samples: number
  /** KiB. */
  peakKiB: number
  lastKiB: number
  meanKiB: number
}

/** Samples every `intervalMs` until stop(). */
export class RssSampler {
  private readonly stats = new Map<number, { label: string; n: number; peak: number; last: number; sum: number; windowPeak: number }>()
  private timer: NodeJS.Timeout | undefined

  constructor(processes: Array<{ label: string; pid: number }>, private readonly intervalMs = 250) {
    for (const p of processes) this.stats.set(p.pid, { label: p.label, n: 0, peak: 0, last: 0, sum: 0, windowPeak: 0 })
  }

  start(): this {
    this.sample()
    this.timer = setInterval(() => this.sample(), this.intervalMs)
    this.timer.unref()
    return this
  }

  sample(): void {
    for (const [pid, s] of this.stats) {
      const kib = vmRssKiB(pid)
      if (kib === undefined) continue
      s.n++
      s.sum += kib
      s.last = kib
      if (kib > s.peak) s.peak = kib
      if (kib > s.windowPeak) s.windowPeak = kib
    }
  }

  /** Start a window (one measured run): its peaks are what endWindow() returns. */
  beginWindow(): void {
    this.sample()
    for (const s of this.stats.values()) s.windowPeak = s.last
  }

  /** Peak VmRSS per label (KiB) since beginWindow(). */
  endWindow(): Record<string, number> {
    this.sample()
    return Object.fromEntries([...this.stats.values()].filter((s) => s.n > 0).map((s) => [s.label, s.windowPeak]))
  }

  stop(): RssSummary[] {
    if (this.timer) clearInterval(this.timer)
    this.sample()
    return [...this.stats].map(([pid, s]) => ({
      label: s.label, pid, samples: s.n, peakKiB: s.peak, lastKiB: s.last, meanKiB: s.n ? Math.round(s.sum / s.n) : 0,
    }))
  }
}

export function formatMiB(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`
}
