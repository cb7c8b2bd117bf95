// One controller: the config's targets opened on their storage, served on the node's portal,
// reported through the admin API. `iscsi-ha node start` is a thin shell around this class.

import { randomBytes } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { formatHostPort, type ClusterConfig, type NodeConfig } from '../config/index.js'
import type { LoginEnvironment, TargetAccess } from '../iscsi/login.js'
import { SessionRegistry } from '../iscsi/session.js'
import { Target } from '../iscsi/target.js'
import { DiskLogicalUnit, deriveIdentity } from '../scsi/index.js'
import { FileReservationStore, openBackend, reservationFileFor, type FileBackend } from '../storage/index.js'
import type { PortIds } from '../scsi/reservations.js'
import { NodeMetrics } from '../admin/metrics.js'
import { startAdminServer, type AdminRoute } from '../admin/server.js'
import type { BlockDevice } from '../scsi/types.js'
import type { HostConnection, LunKey } from '../ha/types.js'
import type { NodeStatus } from '../admin/status.js'
import type { ReloadReport } from '../admin/reload-report.js'
import { Portal } from './portal.js'
import type { Logger } from './log.js'
import { Reloader } from './reload.js'

export const VERSION = '0.1.0'
const TICK_MS = 1000

export interface ControllerOptions {
  config: ClusterConfig
  nodeName: string
  log: Logger
  /** Put a layer between the SCSI engine and storage (the HA pair's mirrored device). */
  wrapDevice?: (backend: FileBackend, key: LunKey) => BlockDevice
  /** Listen on the node's own portal at start (default true); the HA pair listens only while serving. */
  serveOnStart?: boolean
  /** More admin routes (the HA pair's peer, journal, takeover and replay endpoints). */
  routes?: AdminRoute[]
  /**
   * A reload grows a LUN: `grow` grows its backend; the HA pair runs it between draining and
   * re-creating its mirrored device (or refuses, by throwing), and may return a note for the
   * report. Default: `grow()` alone.
   */
  growDevice?: (key: LunKey, sizeBytes: number, grow: () => Promise<void>) => Promise<string | undefined>
}

interface OpenLun {
  targetIqn: string
  lun: number
  backend: FileBackend
  device: BlockDevice
  unit: DiskLogicalUnit
  serial: string
  naa: Buffer
  blockSize: number
  readOnly: boolean
}

export class Controller {
  readonly metrics = new NodeMetrics()
  readonly sessions: SessionRegistry
  private readonly targets = new Map<string, Target>()
  private readonly luns: OpenLun[] = []
  private portal: Portal | undefined
  private admin: { close(): Promise<void> } | undefined
  private ticker: NodeJS.Timeout | undefined
  private readonly startedAt = new Date()
  private readonly node: NodeConfig
  private stopping: Promise<void> | undefined
  private readonly reloader: Reloader

  private constructor(private readonly opts: ControllerOptions) {
    const node = opts.config.nodes[opts.nodeName]
    if (!node) throw new Error(`node "${opts.nodeName}" is not in the config`)
    this.node = node
    this.sessions = new SessionRegistry(opts.config.iscsi.maxSessions)
    this.reloader = new Reloader({
      nodeName: opts.nodeName,
      running: opts.config,
      luns: () => this.luns.map((l) => ({ target: l.targetIqn, lun: l.lun, sizeBytes: l.backend.sizeBytes })),
      grow: (target, lun, sizeBytes) => this.growLun(target, lun, sizeBytes),
    })
    this.metrics.storageIo(() => this.luns.map((l) => ({ target: l.targetIqn, lun: l.lun, io: l.backend.ioStats() })))
    this.metrics.openConnections(() => this.portal?.live.size ?? 0)
  }

  static async start(opts: ControllerOptions): Promise<Controller> {
    const c = new Controller(opts)
    try {
      await c.open()
    } catch (err) {
      await c.stop()
      throw err
    }
    return c
  }

  private async open(): Promise<void> {
    const { config, log } = this.opts
    for (const [index, t] of config.targets.entries()) {
      const tpgt = 1
      const access: TargetAccess = {
        iqn: t.iqn,
        tpgt,
        portals: [`${formatHostPort(this.node.portal.host, this.node.portal.port)},${tpgt}`],
        ...(t.alias ? { alias: t.alias } : {}),
        ...(t.chap ? { chap: t.chap } : {}),
        ...(t.initiators ? { initiators: t.initiators } : {}),
      }
      const target = new Target(access)
      for (const l of t.luns) {
        // A new sparse file may live in a folder that does not exist yet (the default's data dir).
        if (l.sizeBytes !== undefined) await mkdir(dirname(l.path), { recursive: true })
        const backend = await openBackend({ path: l.path, sizeBytes: l.sizeBytes, readOnly: l.readOnly, io: l.io })
        const id = deriveIdentity(t.iqn, l.lun, l.serial)
        const device = this.opts.wrapDevice ? this.opts.wrapDevice(backend, { target: t.iqn, lun: l.lun }) : backend
        const unit = new DiskLogicalUnit({
          lun: l.lun,
          blockSize: l.blockSize,
          device,
          identity: { ...id, targetName: t.iqn, tpgt, relativeTargetPortId: 1 },
          readOnly: l.readOnly,
          writeCache: l.writeCache,
          removable: l.removable,
          physicalBlockSize: l.physicalBlockSize,
          sanitizeOverwrite: l.sanitizeOverwrite,
          lunsOfTarget: () => target.lunNumbers(),
          // APTPL reservations survive a restart: kept beside the LUN, written atomically.
          reservationStore: new FileReservationStore(reservationFileFor(l.path)),
          // EXTENDED COPY finds its source and destination among this node's LUNs by NAA id.
          copyTargets: (naa) => this.luns.find((x) => x.naa.equals(naa))?.unit,
          onPreempted: (ports) => this.abortPreempted(t.iqn, l.lun, ports),
          log: { error: (msg, meta) => log.error(msg, meta), warn: (msg, meta) => log.warn(msg, meta) },
        })
        await unit.loadReservations()
        target.luns.set(l.lun, unit)
        this.luns.push({
          targetIqn: t.iqn, lun: l.lun, backend, device, unit, serial: id.serial, naa: id.naa, blockSize: l.blockSize,
          readOnly: l.readOnly,
        })
        log.info('lun open', { target: t.iqn, lun: l.lun, path: l.path, kind: backend.kind, bytes: backend.sizeBytes, index })
      }
      this.targets.set(t.iqn, target)
    }

    const env: LoginEnvironment = {
      findTarget: (iqn) => this.targets.get(iqn)?.access,
      listTargets: () => [...this.targets.values()].map((t) => t.access),
      targetLimits: {
        maxRecvDataSegmentLength: config.iscsi.maxRecvDataSegmentLength,
        maxBurstLength: config.iscsi.maxBurstLength,
        firstBurstLength: config.iscsi.firstBurstLength,
        maxOutstandingR2T: config.iscsi.maxOutstandingR2T,
        immediateData: config.iscsi.immediateData,
        initialR2T: config.iscsi.initialR2T,
        defaultTime2Wait: 2,
        defaultTime2Retain: 0,
        headerDigests: config.iscsi.headerDigest,
        dataDigests: config.iscsi.dataDigest,
      },
      randomBytes: (n) => randomBytes(n),
    }
    const metrics = this.metrics
    this.portal = new Portal({
      log,
      maxConnections: config.iscsi.maxConnections,
      onDropped: () => metrics.connectionDropped(),
      onRefused: (remote) => {
        metrics.connectionRefused()
        // One line per refusal would let a flood fill the log; the counter carries the total.
        log.debug('connection refused: max_connections open', { remote, maxConnections: config.iscsi.maxConnections })
      },
      makeDeps: () => ({
        login: env,
        findTarget: (iqn) => this.targets.get(iqn),
        sessions: this.sessions,
        now: () => performance.now(),
        log,
        observer: {
          command: (kind, bytes, seconds, failed) => metrics.observeCommand(kind, bytes, seconds, failed),
          login: (ok) => metrics.login(ok),
          rejected: () => metrics.pduRejected(),
          sessionsChanged: () => metrics.setSessions(this.sessions.size),
        },
        settings: {
          queueDepth: config.iscsi.queueDepth,
          nopIntervalMs: config.iscsi.nopIntervalS * 1000,
          nopTimeoutMs: config.iscsi.nopTimeoutS * 1000,
          loginTimeoutMs: 15_000,
          maxTransferBytes: 16 * 1024 * 1024,
          maxSessions: config.iscsi.maxSessions,
        },
      }),
    })
    if (this.opts.serveOnStart !== false) await this.portal.listen(this.node.portal.host, this.node.portal.port)
    this.ticker = setInterval(() => this.portal?.tick(), TICK_MS)
    this.ticker.unref()
    const admin = await startAdminServer({
      host: this.node.admin.host,
      port: this.node.admin.port,
      status: () => this.status(),
      metrics,
      reload: () => this.reload(),
      ...(this.opts.routes ? { routes: this.opts.routes } : {}),
    })
    this.admin = admin
    log.info('node ready', {
      node: this.opts.nodeName, portal: `${formatHostPort(this.node.portal.host, this.node.portal.port)}`,
      listening: this.portal.listening,
      admin: `${formatHostPort(this.node.admin.host, this.node.admin.port)}`,
      targets: [...this.targets.keys()], urls: this.urls(),
    })
  }

  /** PREEMPT AND ABORT: the preempted initiators' tasks on that LUN end now (SPC-4 5.14.8.4). */
  private abortPreempted(targetIqn: string, lun: number, ports: PortIds[]): void {
    for (const s of this.sessions.all()) {
      if (s.target?.iqn !== targetIqn || !s.nexus) continue
      const hit = ports.some((p) =>
        p.initiatorName.toLowerCase() === s.nexus!.initiatorName.toLowerCase() &&
        (p.isid === null || p.isid === s.nexus!.isid) && (p.tpgt === null || p.tpgt === s.nexus!.tpgt))
      if (hit) void s.owner?.abortLun(lun)
    }
  }

  /** Accept iSCSI logins on an address (the node's own portal, or the service address). */
  async listen(host: string, port: number): Promise<void> {
    await this.portal!.listen(host, port)
  }

  async unlisten(host: string, port: number): Promise<void> {
    await this.portal?.unlisten(host, port)
  }

  /** Stop every session now (fencing, handover); resolves when in-flight storage work is over. */
  async dropSessions(reason: string): Promise<void> {
    await this.portal?.dropAll(reason)
  }

  get listening(): string[] {
    return this.portal?.listening ?? []
  }

  /** Host connections arriving on `local` addresses (the service address), for the takeover nudge. */
  hostConnections(localAddresses?: string[]): HostConnection[] {
    const out: HostConnection[] = []
    for (const c of this.portal?.live ?? []) {
      const local = formatHostPort(c.socket.localAddress ?? '', c.socket.localPort ?? 0)
      if (localAddresses && !localAddresses.includes(local)) continue
      out.push({ local, remote: formatHostPort(c.socket.remoteAddress ?? '', c.socket.remotePort ?? 0) })
    }
    return out
  }

  /** Each LUN's storage backend (replay writes here directly) and the device the engine uses. */
  lunDevices(): Array<{ key: LunKey; backend: FileBackend; device: BlockDevice }> {
    return this.luns.map((l) => ({ key: { target: l.targetIqn, lun: l.lun }, backend: l.backend, device: l.device }))
  }

  /** iscsi:// URLs for each LUN, as libiscsi and QEMU take them. */
  urls(): string[] {
    const portal = formatHostPort(this.node.portal.host, this.node.portal.port)
    return this.luns.map((l) => `iscsi://${portal}/${l.targetIqn}/${l.lun}`)
  }

  status(): NodeStatus {
    const now = Date.now()
    return {
      node: this.opts.nodeName,
      pid: process.pid,
      version: VERSION,
      startedAt: this.startedAt.toISOString(),
      uptimeS: Math.round((now - this.startedAt.getTime()) / 1000),
      portal: `${formatHostPort(this.node.portal.host, this.node.portal.port)}`,
      admin: `${formatHostPort(this.node.admin.host, this.node.admin.port)}`,
      targets: [...this.targets.values()].map((t) => ({
        iqn: t.iqn,
        ...(t.access.alias ? { alias: t.access.alias } : {}),
        tpgt: t.tpgt,
        luns: this.luns.filter((l) => l.targetIqn === t.iqn).map((l) => ({
          lun: l.lun, path: l.backend.path, kind: l.backend.kind, sizeBytes: l.backend.sizeBytes,
          blockSize: l.blockSize, serial: l.serial, naa: l.naa.toString('hex'), readOnly: l.readOnly,
          writeCache: l.unit.writeCacheEnabled, io: l.backend.ioStats(),
        })),
        sessions: this.sessions.all().filter((s) => s.target === t).map((s) => ({
          tsih: s.tsih, type: s.params.sessionType, initiatorName: s.params.initiatorName, isid: s.isid,
          remote: s.remote, local: s.local, connectedAt: new Date(s.createdAt).toISOString(),
          headerDigest: s.params.headerDigest, dataDigest: s.params.dataDigest,
          maxRecvDataSegmentLength: s.params.maxRecvDataSegmentLength,
          maxXmitDataSegmentLength: s.params.maxXmitDataSegmentLength,
          commands: s.commands, readBytes: s.readBytes, writeBytes: s.writeBytes,
        })),
      })),
      connections: { open: this.portal?.live.size ?? 0, limit: this.opts.config.iscsi.maxConnections },
      counters: this.metrics.counters(),
    }
  }

  /**
   * Read the config file again and apply what can be applied live (a LUN grown); see reload.ts.
   * Throws ConfigError (nothing applied) or ReloadError (started without a file).
   */
  async reload(): Promise<ReloadReport> {
    const report = await this.reloader.reload()
    const line = (c: { field: string; detail: string }): string => `${c.field}: ${c.detail}`
    const fields = {
      config: report.config, applied: report.applied.map(line), needsRestart: report.needsRestart.map(line), refused: report.refused.map(line),
    }
    if (report.complete) this.opts.log.info('config reloaded', fields)
    else this.opts.log.warn('config reloaded; some changes were not applied', fields)
    return report
  }

  /** Grow a LUN's storage to `sizeBytes`, then serve the new capacity (CAPACITY DATA HAS CHANGED). */
  private async growLun(target: string, lun: number, sizeBytes: number): Promise<{ nexuses: number; note?: string }> {
    const l = this.luns.find((x) => x.targetIqn === target && x.lun === lun)
    if (!l) throw new Error(`${target} LUN ${lun} is not served by this node`)
    if (this.stopping) throw new Error('the node is stopping')
    const grow = (): Promise<void> => l.backend.grow(sizeBytes)
    const note = this.opts.growDevice ? await this.opts.growDevice({ target, lun }, sizeBytes, grow) : await grow()
    l.unit.capacityChanged()
    this.opts.log.info('lun grown', { target, lun, bytes: l.backend.sizeBytes, blocks: l.unit.capacityBlocks })
    return { nexuses: l.unit.unitAttentions.size, ...(note ? { note } : {}) }
  }

  /** Stop serving: sessions dropped after their in-flight I/O, data flushed, files closed. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop()
    return this.stopping
  }

  private async doStop(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker)
    await this.portal?.close()
    await this.admin?.close()
    for (const l of this.luns) {
      // Through the wrapping device first: a mirrored device completes what it committed.
      if (l.device !== l.backend) await l.device.close().catch(() => undefined)
      await l.backend.flush().catch(() => undefined)
      await l.backend.close().catch(() => undefined)
    }
    this.opts.log.info('node stopped', { node: this.opts.nodeName })
  }
}
