// Prometheus metrics for one controller, in a registry of its own (never prom-client's global
// one, so two nodes in one process, as in tests, don't collide). The data path calls the
// observe/count methods on every command: they bump plain numbers (copied into the Prometheus
// counters at scrape time) and make one histogram observation (~250 ns per command in all).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { emptyCounters, type NodeCounters } from './status.js'
import type { InlineIoStats } from '../storage/inline-io.js'

export type CommandOp = 'read' | 'write' | 'other'

/** Latency buckets in seconds, from 20 µs (a cached read on loopback) to 1 s (a stalled disk). */
export const COMMAND_SECONDS_BUCKETS: readonly number[] = [
  0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
]

export interface NodeMetricsOptions {
  /** Adds a `node="<name>"` label to every series. */
  node?: string
  /** Also collect prom-client's process metrics (CPU, memory, event loop lag, GC). Default true. */
  defaultMetrics?: boolean
}

type Observer = { observe(v: number): void }

export class NodeMetrics {
  readonly registry: Registry
  /**
   * Live running totals, readable without parsing the Prometheus text (counters() copies them).
   * They are the source of truth: the Prometheus counters copy them when scraped, so the data
   * path only bumps numbers here (plus one histogram observation per command).
   */
  readonly totals: NodeCounters = emptyCounters()

  private readonly latency: Record<CommandOp, Observer>
  private readonly sessionsG: Gauge
  private sessionCount = 0

  constructor(opts: NodeMetricsOptions = {}) {
    const registry = new Registry()
    this.registry = registry
    if (opts.node !== undefined) registry.setDefaultLabels({ node: opts.node })
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry })

    const c = this.totals
    const registers = [registry]
    new Counter({
      name: 'iscsi_ha_scsi_commands_total',
      help: 'SCSI commands completed, by kind (read, write, other)',
      labelNames: ['op'] as const,
      registers,
      collect() {
        this.reset()
        this.inc({ op: 'read' }, c.readOps)
        this.inc({ op: 'write' }, c.writeOps)
        this.inc({ op: 'other' }, c.otherOps)
      },
    })
    new Counter({
      name: 'iscsi_ha_bytes_total',
      help: 'Data moved by SCSI reads and writes, by direction',
      labelNames: ['dir'] as const,
      registers,
      collect() {
        this.reset()
        this.inc({ dir: 'read' }, c.readBytes)
        this.inc({ dir: 'write' }, c.writeBytes)
      },
    })
    const seconds = new Histogram({
      name: 'iscsi_ha_scsi_command_seconds',
      help: 'Time from a SCSI command arriving to its response being queued, by kind',
      labelNames: ['op'] as const,
      buckets: [...COMMAND_SECONDS_BUCKETS],
      registers,
    })
    const simple = (name: string, help: string, value: () => number): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset()
          this.inc(value())
        },
      })
    }
    simple('iscsi_ha_scsi_errors_total', 'SCSI commands that ended with a status other than GOOD', () => c.scsiErrors)
    new Counter({
      name: 'iscsi_ha_logins_total',
      help: 'iSCSI logins, by result (accepted, rejected)',
      labelNames: ['result'] as const,
      registers,
      collect() {
        this.reset()
        this.inc({ result: 'accepted' }, c.loginsAccepted)
        this.inc({ result: 'rejected' }, c.loginsRejected)
      },
    })
    simple('iscsi_ha_pdus_rejected_total', 'PDUs answered with a Reject', () => c.pdusRejected)
    simple('iscsi_ha_connections_dropped_total', 'Connections closed by the target because of an error or timeout', () => c.connectionsDropped)
    simple('iscsi_ha_connections_refused_total', 'Connections closed on arrival because max_connections were open', () => c.connectionsRefused)
    this.sessionsG = new Gauge({ name: 'iscsi_ha_sessions', help: 'iSCSI sessions currently logged in', registers })
    this.sessionsG.set(0)

    this.latency = { read: seconds.labels('read'), write: seconds.labels('write'), other: seconds.labels('other') }
  }

  /**
   * One completed SCSI command: its kind, the data bytes it moved, how long it took, and whether
   * it failed (ended with a status other than GOOD; counted in scsiErrors too).
   */
  observeCommand(op: CommandOp, bytes: number, seconds: number, failed = false): void {
    const c = this.totals
    if (failed) c.scsiErrors++
    if (op === 'read') {
      c.readOps++
      c.readBytes += bytes
    } else if (op === 'write') {
      c.writeOps++
      c.writeBytes += bytes
    } else c.otherOps++
    this.latency[op].observe(seconds)
  }

  /** A command that ended in CHECK CONDITION or another non-GOOD status. */
  scsiError(): void {
    this.totals.scsiErrors++
  }

  /** A login that completed (accepted) or was refused (rejected). */
  login(accepted: boolean): void {
    if (accepted) this.totals.loginsAccepted++
    else this.totals.loginsRejected++
  }

  loginAccepted(): void {
    this.totals.loginsAccepted++
  }

  loginRejected(): void {
    this.totals.loginsRejected++
  }

  pduRejected(): void {
    this.totals.pdusRejected++
  }

  connectionDropped(): void {
    this.totals.connectionsDropped++
  }

  connectionRefused(): void {
    this.totals.connectionsRefused++
  }

  /** The open-connections gauge, read from `source` at scrape time. */
  openConnections(source: () => number): void {
    new Gauge({
      name: 'iscsi_ha_connections_open',
      help: 'TCP connections open on the iSCSI portal, logged in or not',
      registers: [this.registry],
      collect() {
        this.set(source())
      },
    })
  }

  sessionOpened(): void {
    this.setSessions(this.sessionCount + 1)
  }

  sessionClosed(): void {
    this.setSessions(Math.max(0, this.sessionCount - 1))
  }

  setSessions(n: number): void {
    this.sessionCount = n
    this.sessionsG.set(n)
  }

  get sessions(): number {
    return this.sessionCount
  }

  /**
   * Per-LUN storage request counters, read from `source` at scrape time: where requests ran
   * (inline on the event loop or in the thread pool, see storage/inline-io.ts) and how often
   * slow storage sent them to the thread pool.
   */
  storageIo(source: () => Array<{ target: string; lun: number; io: InlineIoStats }>): void {
    const registers = [this.registry]
    new Counter({
      name: 'iscsi_ha_storage_requests_total',
      help: 'Storage reads and writes of each LUN, by where they ran (inline, threadpool)',
      labelNames: ['target', 'lun', 'where'] as const,
      registers,
      collect() {
        this.reset()
        for (const l of source()) {
          this.inc({ target: l.target, lun: String(l.lun), where: 'inline' }, l.io.inlineOps)
          this.inc({ target: l.target, lun: String(l.lun), where: 'threadpool' }, l.io.threadPoolOps)
        }
      },
    })
    new Counter({
      name: 'iscsi_ha_storage_inline_backoffs_total',
      help: 'Times slow storage moved a LUN\'s requests from inline to the thread pool for a while',
      labelNames: ['target', 'lun'] as const,
      registers,
      collect() {
        this.reset()
        for (const l of source()) this.inc({ target: l.target, lun: String(l.lun) }, l.io.backoffs)
      },
    })
  }

  /** A copy of the totals, for NodeStatus.counters. */
  counters(): NodeCounters {
    return { ...this.totals }
  }

  /** The Prometheus text exposition of this registry. */
  metricsText(): Promise<string> {
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }
}
