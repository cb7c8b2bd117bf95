// The targets issue 5 sets for the tgt comparison (scripts/bench-tgt.sh), checked against a
// bench report: ratios of the standalone node and the pair to tgt, and resident memory.
import type { BenchReport } from './run.js'

export interface Goal {
  goal: string
  /** The measured value, as shown. */
  measured: string
  met: boolean | undefined
}

export interface GoalLabels {
  node: string
  pair: string
  tgt: string
}

const MIB = 1024

export function checkGoals(report: BenchReport, labels: GoalLabels, rss: Array<{ label: string; peakKiB: number; samples: number }> = []): Goal[] {
  const ratio = (workload: string, target: string): number | undefined =>
    report.rows.find((r) => r.workload === workload && r.target === target && !r.error)?.ratio
  const goals: Goal[] = []
  const ratioGoal = (text: string, workload: string, target: string, min: number): void => {
    const r = ratio(workload, target)
    if (r === undefined && !report.rows.some((x) => x.workload === workload)) return
    goals.push({ goal: text, measured: r === undefined ? 'not measured' : `${r.toFixed(2)}x`, met: r === undefined ? undefined : r >= min })
  }
  ratioGoal(`${labels.node}: 4K QD32 reads >= 1.5x ${labels.tgt} IOPS`, '4k-qd32-read', labels.node, 1.5)
  ratioGoal(`${labels.node}: 4K QD32 writes >= 1.5x ${labels.tgt} IOPS`, '4k-qd32-write', labels.node, 1.5)
  ratioGoal(`${labels.pair} (mirrored): 4K QD32 writes >= 1.0x ${labels.tgt} IOPS`, '4k-qd32-write', labels.pair, 1.0)
  ratioGoal(`${labels.node}: 128K QD16 seq reads (qemu-img) >= 1.2x ${labels.tgt} MB/s`, '128k-qd16-read', labels.node, 1.2)
  ratioGoal(`${labels.node}: 128K QD16 seq reads (iscsi-perf) >= 1.2x ${labels.tgt} MB/s`, 'perf-128k-qd16-read', labels.node, 1.2)
  ratioGoal(`${labels.node}: 4K QD1 read latency <= ${labels.tgt}'s (ratio >= 1)`, '4k-qd1-read', labels.node, 1.0)
  ratioGoal(`${labels.node}: 4K QD1 write latency <= ${labels.tgt}'s (ratio >= 1)`, '4k-qd1-write', labels.node, 1.0)
  for (const r of rss.filter((x) => x.label !== labels.tgt && x.samples > 0)) {
    goals.push({ goal: `${r.label}: resident memory under load <= 200 MiB`, measured: `${(r.peakKiB / MIB).toFixed(0)} MiB peak`, met: r.peakKiB <= 200 * MIB })
  }
  return goals
}

export function goalLines(goals: Goal[]): string[] {
  return goals.map((g) => `${g.met === undefined ? ' ?  ' : g.met ? 'met ' : 'MISS'}  ${g.goal}: ${g.measured}`)
}
