// The result table of `iscsi-ha bench`: one row per workload and target, with the ratio to the
// baseline (--vs) target, and the notes a reader needs to trust the numbers.
import { renderTable } from '../cli/table.js'
import type { BenchReport, BenchRow } from './run.js'

export function formatIops(n: number): string {
  return n > 0 ? String(Math.round(n)) : '-'
}

export function formatMbps(n: number): string {
  return n > 0 ? (n >= 100 ? n.toFixed(0) : n.toFixed(1)) : '-'
}

export function formatLatencyUs(n: number): string {
  return n > 0 ? (n >= 100 ? n.toFixed(0) : n.toFixed(1)) : '-'
}

export function formatRatio(r: number | undefined): string {
  return r === undefined ? '' : `${r.toFixed(2)}x`
}

/** One line per finished run or row, for progress output without a terminal. */
export function rowLine(r: BenchRow): string {
  const ratio = r.ratio !== undefined ? `  ${formatRatio(r.ratio)}` : ''
  if (r.error) return `${r.title.padEnd(22)} ${r.target.padEnd(16)} failed: ${r.error}`
  return `${r.title.padEnd(22)} ${r.target.padEnd(16)} ${formatIops(r.iops).padStart(8)} IOPS ${formatMbps(r.mbps).padStart(7)} MB/s ${formatLatencyUs(r.meanLatencyUs).padStart(7)} us${ratio}`
}

export function benchTable(report: BenchReport): string {
  const vs = report.baseline
  // Memory column when a watched process (--pid LABEL=PID) carries a target's label.
  const rssCol = report.rows.some((r) => r.rssPeakKiB?.[r.target] !== undefined)
  const headers = ['workload', 'client', 'target', 'IOPS', 'MB/s', 'mean lat us*', ...(vs ? [`vs ${vs}`] : []), ...(rssCol ? ['peak RSS MiB'] : [])]
  const rows = report.rows.map((r) => {
    const rss = r.rssPeakKiB?.[r.target]
    return [
      r.title, r.client, r.target,
      formatIops(r.iops), formatMbps(r.mbps), formatLatencyUs(r.meanLatencyUs),
      ...(vs ? [r.error ? 'failed' : formatRatio(r.ratio)] : []),
      ...(rssCol ? [rss === undefined ? '' : (rss / 1024).toFixed(0)] : []),
    ]
  })
  return renderTable(headers, rows)
}

export function benchNotes(report: BenchReport): string[] {
  const rounds = report.settings.rounds
  const notes = [
    `* mean latency = queue depth / IOPS (Little's law): qemu-img and iscsi-perf report no per-request latency, so there is no p99.`,
    `${rounds > 1 ? `median of ${rounds} rounds; ` : ''}MB/s = 10^6 bytes/s; seq = qemu-img bench from offset 0 (wrapping), rand = iscsi-perf -r (perf-… ids: iscsi-perf sequential).`,
  ]
  if (report.baseline) notes.push(`vs ${report.baseline}: IOPS over ${report.baseline}'s for the same workload (> 1: more IOPS, lower latency).`)
  const thin = report.targets.filter((t) => t.thin).map((t) => t.label)
  const large = report.rows.some((r) => r.op === 'read' && r.client === 'qemu-img' && r.blockSize >= 32768)
  if (thin.length > 0 && large) {
    notes.push(`${thin.join(', ')} report${thin.length === 1 ? 's' : ''} thin provisioning (LBPME=1): QEMU (cache=none) asks GET LBA STATUS before reads of 32 KiB or more over blocks it has not seen mapped.`)
  }
  for (const r of report.rows.filter((x) => x.error)) notes.push(`${r.title} on ${r.target} failed: ${r.error}`)
  return notes
}
