import { Args, Flags } from '@oclif/core'
import { BaseCommand, EXIT } from '../cli/base.js'
import { failWith } from '../cli/failure.js'
import { benchProgress, parseTargets, rssLines } from '../bench/command-support.js'
import { runBench, type BenchReport } from '../bench/run.js'
import { RssSampler, type RssSummary } from '../bench/rss.js'
import { benchNotes, benchTable } from '../bench/table.js'
import { selectWorkloads, WORKLOADS, type Workload } from '../bench/workloads.js'

export default class Bench extends BaseCommand {
  static override summary = 'Measure iSCSI targets with qemu-img bench and iscsi-perf; compare with another (--vs).'
  static override description = `Runs standard workloads against each URL with two independent clients: QEMU's qemu-img bench (-f raw -t none -n; sequential 4K and 128K reads and writes at queue depth 1, 16 and 32) and libiscsi's iscsi-perf (random 4K reads). With --vs the same workloads run against a baseline target in the same run, interleaved (URL 1, URL 2, …, baseline for each workload and round), and each row shows its IOPS over the baseline's.

Each qemu-img run is sized to last about --seconds after a short calibration run (which also warms the target); --count fixes the requests instead. Neither client reports per-request latency: the mean shown is queue depth / IOPS, and there is no p99.

Write workloads overwrite the LUN: never point this at data you need. Workloads: ${WORKLOADS.map((w) => w.id).join(', ')}.`
  static override examples = [
    '<%= config.bin %> bench iscsi://127.0.0.1:3260/iqn.2026-11.io.iscsi-ha:default/0',
    '<%= config.bin %> bench iscsi://127.0.0.1:3260/iqn.2026-11.io.iscsi-ha:default/0 --vs iscsi://127.0.0.1:3261/iqn.2001-04.com.example:tgt/1 --label ours --label tgt',
    '<%= config.bin %> bench iscsi://127.0.0.1:3260/iqn.2026-11.io.iscsi-ha:default/0 --workloads 4k-qd32-read,4k-qd32-write --count 2000 --json',
  ]
  static exitCodes = {
    0: 'every workload was measured on every target',
    2: 'bad flags: a URL that is not iscsi://host[:port]/iqn/lun, an unknown workload',
    3: 'a client is missing, a target is unreachable, or a run failed (the table marks it)',
    130: 'interrupted (Ctrl-C); the clients were stopped',
  }
  static override strict = false
  static override args = {
    url: Args.string({ required: true, description: 'iscsi://host[:port]/iqn/lun of a target to measure; more URLs may follow' }),
  }
  static override flags = {
    vs: Flags.string({ description: 'baseline target URL: every row shows IOPS over its IOPS' }),
    label: Flags.string({ description: 'name of a target in the table, in order: the URLs, then --vs (repeatable)', multiple: true }),
    workloads: Flags.string({ char: 'w', description: 'comma-separated workload ids, or all' }),
    quick: Flags.boolean({ description: 'only the headline rows: 4K QD1 and QD32 reads and writes, 128K QD16 reads, random 4K QD32 reads' }),
    seconds: Flags.integer({ char: 's', description: 'length of each measured run, seconds', default: 3, min: 1 }),
    count: Flags.integer({ char: 'c', description: 'requests per qemu-img run (no calibration)', min: 1 }),
    rounds: Flags.integer({ char: 'r', description: 'runs per workload and target; the median is shown', default: 1, min: 1 }),
    timeout: Flags.integer({ description: 'milliseconds one client run may take before it is stopped', default: 120_000, min: 1000 }),
    pid: Flags.string({ description: 'sample the resident memory (VmRSS) of this process during the run: PID or LABEL=PID (repeatable)', multiple: true }),
  }

  public async run(): Promise<BenchReport & { rss?: RssSummary[] }> {
    const { argv, flags } = await this.parse(Bench)
    let workloads: Workload[]
    let setup: ReturnType<typeof parseTargets>
    try {
      workloads = selectWorkloads(flags.workloads, flags.quick)
      setup = parseTargets(argv.map(String), flags.vs, flags.label ?? [], flags.pid ?? [])
    } catch (err) {
      this.userError(err instanceof Error ? err.message : String(err))
    }
    const abort = new AbortController()
    const onSignal = (): void => abort.abort()
    process.on('SIGINT', onSignal)
    // ink only in a real terminal (a pty without a size would wrap every character).
    const progress = await benchProgress(!this.jsonEnabled() && process.stdout.isTTY === true && (process.stdout.columns ?? 0) >= 40)
    const sampler = setup.pids.length ? new RssSampler(setup.pids).start() : undefined
    let report: BenchReport
    try {
      report = await runBench({
        targets: setup.targets, workloads, seconds: flags.seconds, rounds: flags.rounds, timeoutMs: flags.timeout,
        ...(flags.count !== undefined ? { count: flags.count } : {}), signal: abort.signal, onEvent: progress.onEvent, ...(sampler ? { rss: sampler } : {}),
      })
    } catch (err) {
      progress.stop()
      if (abort.signal.aborted) this.error('interrupted: the clients were stopped', { exit: 130 })
      failWith(this, err)
    } finally {
      process.off('SIGINT', onSignal)
    }
    progress.stop()
    const rss = sampler?.stop()
    if (!this.jsonEnabled()) {
      this.log(benchTable(report))
      this.log('')
      for (const line of [...benchNotes(report), ...rssLines(rss ?? [])]) this.log(line)
    }
    if (report.rows.some((r) => r.error)) process.exitCode = EXIT.environment
    return { ...report, ...(rss ? { rss } : {}) }
  }
}
