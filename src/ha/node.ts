// One controller of the HA pair (METHOD.md). The pure role machine (roles.ts) decides; this
// class performs its actions against the real parts: the lease on shared storage, the peer
// link, the journal, the mirrored devices, the service address and the iSCSI portal.

import { mkdir, readFile, writeFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import type { ClusterConfig, NodeConfig } from '../config/index.js'
import { Controller } from '../node/controller.js'
import type { Logger } from '../node/log.js'
import type { FileBackend } from '../storage/index.js'
import type { BlockDevice } from '../scsi/types.js'
import type { ByteRange } from '../scsi/provisioning.js'
import { entryLength } from '../journal/entry.js'
import { PeerLink } from '../peer/link.js'
import { Journal } from '../journal/index.js'
import { ServiceAddress, gratuitousArp, nudgeHostConnections } from '../takeover/index.js'
import { currentCommand } from '../iscsi/command-context.js'
import { Lease } from './lease.js'
import { FileLeaseStore, leasePathFor } from './lease-store.js'
import { MirroredDevice } from './mirrored-device.js'
import { AckRuns } from './ack-runs.js'
import { PeerMirror } from './peer-mirror.js'
import { DrainMarker } from './drain-marker.js'
import { SlowStorage, storageDelayMs } from './fault.js'
import { canServe, initialRoleState, step, type RoleAction, type RoleEvent, type RoleState } from './roles.js'
import type { HostConnection, LunKey, PeerMessage } from './types.js'
import type { PeerStatusReport, TakeoverRecord } from './status.js'
import { createHash } from 'node:crypto'
import { AdminHttpError, type AdminRoute } from '../admin/server.js'
import type { ReloadReport } from '../admin/reload-report.js'
import { MAX_REPORTED_LUNS } from '../peer/codec.js'
import { growRefusal, type PartnerSizes } from './partner-sizes.js'

export interface HaNodeOptions {
  config: ClusterConfig
  nodeName: string
  log: Logger
}

/** The device the SCSI engine sees: a mirrored device while this node serves, nothing otherwise. */
class GatedDevice implements BlockDevice {
  inner: MirroredDevice | undefined
  /** Set while a grow replaces the mirrored device: writes and flushes wait for it. */
  private held: Promise<void> | undefined

  /** `mayServe` is checked on every write: a primary past its lease deadline writes nothing. */
  constructor(readonly backend: FileBackend, readonly key: LunKey, private readonly mayServe: () => boolean) {}

  get sizeBytes(): number {
    return this.backend.sizeBytes
  }

  private live(): MirroredDevice {
    if (!this.inner) throw new Error(`${this.key.target}/${this.key.lun}: this controller is not serving`)
    return this.inner
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.live().read(offset, length)
  }

  write(offset: number, data: Buffer, opts: { fua: boolean }): Promise<void> {
    if (this.held) return this.held.then(() => this.write(offset, data, opts))
    if (!this.mayServe()) return Promise.reject(new Error(`${this.key.target}/${this.key.lun}: lease deadline passed`))
    return this.live().write(offset, data, opts)
  }

  /** UNMAP and WRITE SAME with UNMAP reach the mirrored device's discard (gated as writes are). */
  discard(ranges: readonly ByteRange[]): Promise<void> {
    if (this.held) return this.held.then(() => this.discard(ranges))
    if (!this.mayServe()) return Promise.reject(new Error(`${this.key.target}/${this.key.lun}: lease deadline passed`))
    return this.live().discard(ranges)
  }

  flush(): Promise<void> {
    if (this.held) return this.held.then(() => this.flush())
    return this.live().flush()
  }

  /** Run `fn` with writes and flushes held back (they continue on whatever `inner` is then). */
  async holdWrites(fn: () => Promise<void>): Promise<void> {
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    this.held = held
    try {
      await fn()
    } finally {
      this.held = undefined
      release()
    }
  }

  /** Stop touching storage now (fencing). */
  fence(reason: string): void {
    this.inner?.abort(new Error(reason))
    this.inner = undefined
  }

  async drain(): Promise<void> {
    await this.inner?.drain()
  }

  /** The controller closes the backend itself after this. */
  async close(): Promise<void> {
    const inner = this.inner
    this.inner = undefined
    await inner?.drain().catch(() => undefined)
  }
}

type MirrorMode = 'off' | 'syncing' | 'on' | 'degrading'

/** Seconds the kernel keeps the service address without a refresh from the live primary. */
const ADDRESS_LIFETIME_S = 2

/** Longest a live grow holds the primary's writes (well under a host's command timeout). */
const GROW_HOLD_MS = 5000
/** Longest a live grow waits, writes flowing, for storage to complete what was acknowledged. */
const GROW_CATCH_UP_MS = 10_000

export class HaNode {
  private state: RoleState = initialRoleState()
  private readonly self: NodeConfig
  private readonly peer: NodeConfig
  private readonly service: { host: string; port: number; text: string }
  private controller!: Controller
  private link!: PeerLink
  private lease!: Lease
  private marker!: DrainMarker
  private journal!: Journal
  private mirror!: PeerMirror
  /** Secondary: confirmations of copies, one copy-ack per run of them. */
  private readonly acks = new AckRuns((run) => this.link.send({ type: 'copy-ack', ...run }))
  private readonly devices: GatedDevice[] = []
  private readonly address: ServiceAddress
  private mirrorMode: MirrorMode = 'off'
  private degrading: Promise<void> | undefined
  /** Primary: generation of the current mirroring round (each sync starts a new one). */
  private generation = 0
  /** Secondary: generation its journal belongs to. */
  private journalGeneration = 0
  private learned: { serviceAddress: string; hostConnections: HostConnection[] } = { serviceAddress: '', hostConnections: [] }
  private lastTakeover: TakeoverRecord | undefined
  /** The partner's latest lun-sizes report, and when (monotonic ms) the link last came up. */
  private partnerSizes: PartnerSizes | undefined
  private linkUpAt: number | undefined
  /** The epoch we reported our LUN sizes at on the current link (undefined: not yet). */
  private sizesSentEpoch: number | undefined
  private takeoverStartedAt: number | undefined
  private takeoverKind: TakeoverRecord['kind'] | undefined
  /** startServing() finished (replayed, listening) and no stopServing since: what status reports as serving. */
  private listening = false
  /** We asked the primary to hand over: the claim that follows is a planned switchover. */
  private handoverExpected = false
  private actions: Promise<void> = Promise.resolve()
  private renewing = false
  private watching = false
  private timers: NodeJS.Timeout[] = []
  private stopped = false

  private constructor(private readonly opts: HaNodeOptions) {
    const { config, nodeName } = opts
    const names = Object.keys(config.nodes)
    const self = config.nodes[nodeName]
    const peerName = names.find((n) => n !== nodeName)
    if (!self || !peerName) throw new Error('an HA pair needs two nodes in the config')
    const peer = config.nodes[peerName]!
    if (!self.peer || !peer.peer) throw new Error('both nodes need a peer: address')
    if (!config.service) throw new Error('an HA pair needs a service: address')
    if (!config.peerSecret) throw new Error('an HA pair needs a peer_secret')
    this.self = self
    this.peer = peer
    this.service = { host: config.service.address.host, port: config.service.address.port, text: config.service.address.text }
    this.address = new ServiceAddress({
      ip: config.service.address.host,
      ...(config.service.interface ? { interface: config.service.interface } : {}),
      prefix: config.service.prefix,
      lifetimeS: ADDRESS_LIFETIME_S,
    })
  }

  static async start(opts: HaNodeOptions): Promise<HaNode> {
    const node = new HaNode(opts)
    try {
      await node.open()
    } catch (err) {
      await node.stop()
      throw err
    }
    return node
  }

  /** iscsi:// URLs on the service address, for each LUN. */
  serviceUrls(): string[] {
    return this.opts.config.targets.flatMap((t) => t.luns.map((l) => `iscsi://${this.service.text}/${t.iqn}/${l.lun}`))
  }

  get nodeName(): string {
    return this.opts.nodeName
  }

  private get log(): Logger {
    return this.opts.log
  }

  private now(): number {
    return performance.now()
  }

  private async open(): Promise<void> {
    const { config, nodeName, log } = this.opts
    const ha = config.ha
    // A restarted controller may still carry the address from before (e.g. the process died
    // while its machine lived): drop it before anything else (issue: rejoin as secondary).
    await this.address.release().catch((err) => log.warn('could not drop a stale service address', { error: String(err) }))

    this.controller = await Controller.start({
      config, nodeName, log, serveOnStart: false,
      wrapDevice: (backend, key) => {
        const d = new GatedDevice(backend, key, () => canServe(this.state, this.now()) && !this.lease.mustFence(this.now()))
        this.devices.push(d)
        return d
      },
      routes: this.routes(),
      growDevice: (key, sizeBytes, grow) => this.growDevice(key, sizeBytes, grow),
    })

    if (config.journal.dir) {
      const dir = join(config.journal.dir, nodeName)
      await mkdir(dir, { recursive: true })
      this.journal = await Journal.open(dir, { maxBytes: config.journal.maxBytes })
      this.journalGeneration = await readGeneration(dir)
    } else {
      this.journal = new Journal({ maxBytes: config.journal.maxBytes })
    }

    const leasePath = ha.leasePath ?? leasePathFor(config.targets[0]!.luns[0]!.path)
    this.lease = new Lease({
      store: await FileLeaseStore.open(leasePath),
      node: nodeName,
      timings: {
        durationMs: ha.leaseDurationMs, renewIntervalMs: ha.leaseRenewMs, fenceAfterMs: ha.fenceAfterMs,
        pollIntervalMs: Math.max(10, Math.min(50, Math.floor(ha.leaseRenewMs / 2))),
      },
    })
    this.marker = new DrainMarker(await FileLeaseStore.open(`${leasePath}.drained`))

    this.mirror = new PeerMirror({
      send: (m) => this.link.send(m),
      epoch: () => this.state.epoch,
      isHealthy: () => this.mirrorMode === 'on' && this.link.up,
      ackTimeoutMs: ha.ackTimeoutMs,
      completeBatchMs: 2,
      maxBatch: 512,
      holdFailures: () => this.degrading,
    })

    this.link = new PeerLink({
      self: nodeName,
      peer: this.peer.name,
      listen: { host: this.self.peer!.host, port: this.self.peer!.port },
      connect: { host: this.peer.peer!.host, port: this.peer.peer!.port },
      secret: config.peerSecret!,
      clusterId: clusterIdOf(config),
      heartbeatIntervalMs: ha.heartbeatIntervalMs,
      deadAfterMs: ha.deadAfterMs,
      epoch: () => this.state.epoch,
      role: () => this.state.role,
      journalEntries: () => this.journal.stats().entries,
      log,
    })
    this.link.on('up', () => {
      this.linkUpAt = this.now()
      this.sizesSentEpoch = undefined
      this.dispatch({ type: 'peerUp', at: this.now() })
    })
    this.link.on('down', (reason) => {
      log.warn('peer link down', { reason })
      if (this.state.role === 'primary' && this.mirrorMode !== 'off') void this.degrade('peer link down')
      this.dispatch({ type: 'peerDown', at: this.now() })
    })
    this.link.on('message', (m) => this.onPeerMessage(m))
    await this.link.start()

    this.every(25, () => this.dispatch({ type: 'tick', at: this.now() }))
    this.every(250, () => this.shareState())
    // The live primary keeps its address alive; a dead process lets the kernel drop it.
    this.every((ADDRESS_LIFETIME_S * 1000) / 4, () => {
      if (this.state.role === 'primary' && this.state.serving) {
        this.address.refresh().catch((err) => this.log.warn('could not refresh the service address', { error: String(err) }))
      }
    })
    this.dispatch({ type: 'start', at: this.now() })
    log.info('ha node started', { node: nodeName, peer: this.peer.name, service: this.service.text, lease: leasePath })
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms)
    t.unref()
    this.timers.push(t)
  }

  // ------------------------------------------------------------------ role machine

  private dispatch(event: RoleEvent): void {
    if (this.stopped && event.type !== 'shutdown') return
    const before = this.state
    const { state, actions } = step(this.state, event, { fenceAfterMs: this.opts.config.ha.fenceAfterMs })
    this.state = state
    if (before.role !== state.role || before.epoch !== state.epoch) {
      this.log.info('role', { from: before.role, to: state.role, epoch: state.epoch, event: event.type, reason: state.reason || undefined })
    }
    for (const action of actions) {
      // Fencing cannot wait behind a slow action: stop touching storage now, then tidy up in order.
      if (action.type === 'stopServing' || action.type === 'fence') this.stopIoNow(action.reason)
      this.actions = this.actions.then(() => this.perform(action)).catch((err) => {
        this.log.error('ha action failed', { action: action.type, error: String(err) })
      })
    }
  }

  private stopIoNow(reason: string): void {
    this.listening = false
    for (const d of this.devices) d.fence(reason)
    this.mirror.failAll(reason)
    this.mirrorMode = 'off'
  }

  private async perform(a: RoleAction): Promise<void> {
    switch (a.type) {
      case 'claimLease': {
        const rounds = await this.marker.readState()
        const missing = rounds.active > rounds.drained && this.journalGeneration < rounds.active
        if (missing && a.force) {
          this.log.error('forced claim without the journal of an undrained round: writes committed in it may be lost', {
            active: rounds.active, drained: rounds.drained,
          })
        } else if (missing) {
          // Our partner may hold committed writes of that round that only its journal has.
          this.log.error('not claiming the lease: the partner holds the journal of an undrained round', {
            active: rounds.active, drained: rounds.drained, ours: this.journalGeneration,
            hint: 'start the partner, or run iscsi-ha replay on its journal directory',
          })
          await sleep(500)
          this.dispatch({ type: 'claimFailed', at: this.now(), reason: `round ${rounds.active} not drained` })
          return
        }
        if (a.mode === 'takeover') {
          // The host's pause began when the old primary was last heard from.
          this.takeoverStartedAt = Date.now() - (this.link.status().sinceHeardMs ?? 0)
          this.takeoverKind = a.force ? 'forced' : this.handoverExpected ? 'planned' : 'failover'
          this.handoverExpected = false
        }
        const r = a.mode === 'initial' ? await this.lease.acquireInitial() : await this.lease.takeOver({ force: a.force, epochFloor: a.epochFloor })
        if (r.ok) this.dispatch({ type: 'takeoverDone', at: this.now(), epoch: r.epoch, validFrom: r.validFrom })
        else this.dispatch({ type: 'claimFailed', at: this.now(), reason: `${r.reason}: ${r.detail}` })
        return
      }
      case 'renewLease':
        this.watching = false
        if (!this.renewing) void this.renewLoop()
        return
      case 'watchLease':
        this.renewing = false
        if (!this.watching) void this.watchLoop()
        return
      case 'releaseLease':
        this.renewing = false
        await this.lease.release(a.toPeer ? this.peer.name : '')
        return
      case 'requestHandover':
        this.handoverExpected = true
        this.link.send({ type: 'handover-request', epoch: this.state.epoch, to: this.opts.nodeName })
        return
      case 'replayJournal':
        await this.replayJournal(a.epoch)
        return
      case 'assumeAddress':
        await this.address.assume()
        return
      case 'releaseAddress':
        await this.controller.unlisten(this.service.host, this.service.port)
        await this.address.release()
        return
      case 'announce':
        return // heartbeats carry role and epoch from now on
      case 'enterMirrored':
        await this.sync()
        return
      case 'enterDegraded':
        await this.degrade('partner not in sync')
        return
      case 'startServing':
        await this.startServing()
        return
      case 'stopServing':
        this.listening = false
        await this.controller.unlisten(this.service.host, this.service.port)
        await this.controller.unlisten(this.self.portal.host, this.self.portal.port)
        await this.controller.dropSessions(a.reason)
        this.log.warn('stopped serving', { reason: a.reason })
        return
      case 'fence':
        this.lease.abandon()
        return
    }
  }

  private async renewLoop(): Promise<void> {
    this.renewing = true
    while (this.renewing && !this.stopped) {
      const r = await this.lease.renew()
      if (!this.renewing) break
      if (r.outcome === 'renewed') this.dispatch({ type: 'leaseRenewed', at: this.now(), validFrom: r.validFrom })
      else if (r.outcome === 'failed') this.dispatch({ type: 'leaseRenewFailed', at: this.now(), reason: r.detail })
      else {
        this.dispatch({ type: 'leaseLost', at: this.now(), reason: r.detail })
        break
      }
      await sleep(this.lease.timings.renewIntervalMs)
    }
  }

  private async watchLoop(): Promise<void> {
    this.watching = true
    while (this.watching && !this.stopped) {
      const s = await this.lease.read().catch(() => undefined)
      if (!this.watching) break
      if (s) {
        const lapsed = s.lapsed || (s.kind === 'released' && (s.successor === '' || s.successor === this.opts.nodeName))
        this.dispatch({ type: lapsed ? 'leaseLapsed' : 'leaseHeld', at: this.now() })
      }
      await sleep(this.lease.timings.pollIntervalMs)
    }
  }

  // ------------------------------------------------------------------ the write path

  /** Primary: a new mirroring round with an in-sync secondary (its old copies are on storage). */
  private async sync(): Promise<void> {
    if (this.mirrorMode === 'degrading') await this.degrading
    if (this.state.role !== 'primary' || this.mirrorMode !== 'off') return
    this.mirrorMode = 'syncing'
    const rounds = await this.marker.readState()
    this.generation = Math.max(this.generation, rounds.active, rounds.drained) + 1
    this.link.send({ type: 'sync', epoch: this.state.epoch, generation: this.generation })
  }

  /**
   * Primary loses its secondary: before any write is acknowledged through storage alone, every
   * write the secondary holds a copy of must be on storage, and that must be recorded.
   */
  private degrade(reason: string): Promise<void> {
    if (this.mirrorMode === 'off') return Promise.resolve()
    if (this.degrading) return this.degrading
    this.mirrorMode = 'degrading'
    this.log.warn('leaving mirrored mode', { reason, generation: this.generation })
    this.degrading = (async () => {
      try {
        await this.mirror.whenAllCompleted()
        await this.marker.write(this.generation)
      } catch (err) {
        this.log.error('could not record the drain; fencing', { error: String(err) })
        this.stopIoNow('drain marker failed')
      } finally {
        this.mirrorMode = 'off'
        this.degrading = undefined
      }
    })()
    return this.degrading
  }

  /** Complete every committed-not-completed copy to storage before anything can read it. */
  private async replayJournal(epoch: number): Promise<void> {
    const drained = await this.marker.read()
    const stats = this.journal.stats()
    let replayed = 0
    let bytes = 0
    if (this.journalGeneration > drained) {
      const backends = new Map(this.devices.map((d) => [`${d.key.target}/${d.key.lun}`, d.backend]))
      const r = await this.journal.applyToBackends((key) => backends.get(`${key.target}/${key.lun}`))
      replayed = r.replayed
      bytes = r.bytes
    } else if (stats.entries > 0) {
      // The old primary drained this generation before writing through: all on storage already.
      this.journal.clear()
    }
    // Every copy of our round is on storage now (replayed and flushed, or drained before).
    if (this.journalGeneration > 0) await this.marker.write(this.journalGeneration)
    this.log.info('journal replayed', { epoch, replayed, bytes, journalGeneration: this.journalGeneration, drained })
    // A cluster's first primary took nothing over; everything after that is a takeover.
    if (this.takeoverKind) {
      this.lastTakeover = {
        kind: this.takeoverKind, at: new Date().toISOString(), replayed, replayedBytes: bytes, pauseMs: 0, epoch,
      }
    }
    this.takeoverKind = undefined
  }

  private async startServing(): Promise<void> {
    if (this.state.role !== 'primary') return
    const delay = storageDelayMs()
    if (delay > 0) this.log.warn('fault injection: storage writes delayed', { ms: delay })
    for (const d of this.devices) d.inner = this.mirroredDevice(d)
    const conns = this.learned.hostConnections
    if (conns.length > 0) {
      // Before listening: the nudge needs the service port free on this node.
      const results = await nudgeHostConnections(conns)
      this.log.info('nudged host connections', { count: results.length, outcomes: results.map((r) => r.outcome) })
    }
    await this.controller.listen(this.service.host, this.service.port)
    await this.controller.listen(this.self.portal.host, this.self.portal.port)
    const iface = this.opts.config.service?.interface
    // Announce until the old owner's address has surely expired (a dead process stops renewing it).
    if (iface) void gratuitousArp({ ip: this.service.host, interface: iface, count: ADDRESS_LIFETIME_S * 5 + 1, intervalS: 0.2 })
    if (this.lastTakeover && this.takeoverStartedAt !== undefined && this.lastTakeover.pauseMs === 0) {
      this.lastTakeover.pauseMs = Math.max(0, Math.round(Date.now() - this.takeoverStartedAt))
    }
    this.listening = this.state.serving
    this.log.info('serving', { epoch: this.state.epoch, service: this.service.text, takeover: this.lastTakeover })
  }

  /** The primary's device for one LUN, sized as its backend is now. */
  private mirroredDevice(d: GatedDevice): MirroredDevice {
    const delay = storageDelayMs()
    return new MirroredDevice({
      backend: delay > 0 ? new SlowStorage(d.backend, delay) : d.backend, key: d.key, mirror: () => this.mirror, maxPendingBytes: this.opts.config.journal.maxBytes,
      context: () => currentCommand(), syncWriteThrough: true,
      onBackendError: (err) => this.log.error('storage write failed; retrying', { lun: `${d.key.target}/${d.key.lun}`, error: String(err) }),
    })
  }

  // ------------------------------------------------------------------ growing a LUN (reload)

  /**
   * A reload grows a LUN; `grow` grows the backend (storage is shared: the first node to grow
   * extends the file, the other finds it that size). The grow itself is serialised with the
   * role actions, so serving cannot start or stop halfway through.
   *
   * Not serving (the secondary): nothing of this node is in flight, the backend grows, and so
   * does what a takeover would serve and the range its journal replays into.
   *
   * Serving (the primary): each write is also a copy in the partner's journal, and the partner
   * replays only inside the LUN as it knows it: a write past its end would be lost in a
   * takeover. So the partner must serve the new size first, as its lun-sizes report over the
   * peer link says (partner-sizes.ts, growRefusal); then writes are held, the mirrored device
   * drained (every copy completed), the backend grown and a mirrored device of the new size put
   * in place. Without the report the grow is refused. The writes in flight are completed
   * before the hold (within GROW_CATCH_UP_MS), so that hosts wait only for those that came
   * meanwhile, and at most GROW_HOLD_MS: a drain that takes longer gives up (nothing grown,
   * writes go on) rather than let host commands time out.
   */
  private async growDevice(key: LunKey, sizeBytes: number, grow: () => Promise<void>): Promise<string | undefined> {
    const d = this.devices.find((x) => x.key.target === key.target && x.key.lun === key.lun)
    if (!d) throw new Error(`${key.target} LUN ${key.lun} is not a LUN of this node`)
    const serving = d.inner
    if (serving) {
      const refusal = growRefusal({
        self: this.opts.nodeName, partner: this.peer.name, key, sizeBytes,
        linkUp: this.link.up, linkUpAt: this.linkUpAt, report: this.partnerSizes,
      })
      if (refusal) throw new Error(refusal)
      // The slow part waits outside the role actions: a takeover never queues behind it.
      await within(serving.flush(), GROW_CATCH_UP_MS, `storage is more than ${GROW_CATCH_UP_MS} ms behind the acknowledged writes: nothing was grown; try again once it caught up`)
    }
    const run = async (): Promise<string | undefined> => {
      if (d.inner !== serving) throw new Error(`${this.opts.nodeName} ${serving ? 'stopped' : 'started'} serving meanwhile: nothing was grown; try again`)
      if (!serving) {
        await grow()
        this.reportSizes()
        return `${this.opts.nodeName} is not serving; reload ${this.peer.name} next, and do not switch over before it served the new size`
      }
      await d.holdWrites(async () => {
        await within(d.drain(), GROW_HOLD_MS, `the writes in flight did not complete within ${GROW_HOLD_MS} ms (slow or busy storage): nothing was grown; try again`)
        await grow()
        this.reportSizes()
        if (d.inner !== serving) throw new Error('this node stopped serving during the grow: storage was grown, the served size stays until it serves again')
        d.inner = this.mirroredDevice(d)
      })
      return undefined
    }
    const p = this.actions.then(run)
    this.actions = p.then(() => undefined, () => undefined)
    return p
  }

  /** Tell the partner the sizes this node serves (see PeerMessage 'lun-sizes'). */
  private reportSizes(): void {
    if (!this.link.up) return
    const epoch = this.state.epoch
    // More LUNs than a frame carries: those left out read as absent, so the partner refuses to grow them.
    const luns = this.devices.slice(0, MAX_REPORTED_LUNS).map((d) => ({ target: d.key.target, lun: d.key.lun, sizeBytes: d.sizeBytes }))
    // Not sent (back-pressure): the next heartbeat from the partner tries again.
    this.sizesSentEpoch = this.link.send({ type: 'lun-sizes', epoch, luns }) ? epoch : undefined
  }

  // ------------------------------------------------------------------ the peer link

  private onPeerMessage(m: PeerMessage): void {
    switch (m.type) {
      case 'heartbeat':
        this.dispatch({ type: 'peerHeartbeat', at: this.now(), role: m.role, epoch: m.epoch })
        // Once per link and epoch: the partner's heartbeat at our epoch or above got through, so
        // after the dispatch (which may adopt its epoch) our report is not refused as stale.
        if (this.sizesSentEpoch !== this.state.epoch) this.reportSizes()
        return
      case 'heartbeat-ack':
        return
      case 'copy':
        // Secondary: hold the copy, then confirm (the primary answers GOOD on the confirmation).
        // The peer codec compared the data with the entry's checksum when it decoded the copy.
        this.journal.add(m.entry, { checksumVerified: true }).then(
          () => this.acks.add(m.entry.epoch, m.entry.seq),
          (err: unknown) => this.link.send({ type: 'copy-nak', epoch: m.entry.epoch, seq: m.entry.seq, reason: String(err) }),
        )
        return
      case 'copy-ack':
      case 'copy-nak':
        this.mirror.onMessage(m)
        return
      case 'complete':
        this.journal.complete(m.seqs, m.epoch)
        return
      case 'sync':
        void this.acceptSync(m.epoch, m.generation)
        return
      case 'sync-ack':
        if (this.mirrorMode === 'syncing' && m.generation === this.generation && this.state.role === 'primary') {
          // The round is recorded as active on storage before any of its copies is committed.
          void this.marker.writeActive(this.generation).then(
            () => {
              if (this.mirrorMode !== 'syncing' || m.generation !== this.generation) return
              this.mirrorMode = 'on'
              this.log.info('mirrored', { generation: this.generation, epoch: this.state.epoch })
            },
            (err: unknown) => this.log.error('could not record the mirroring round; staying write-through', { error: String(err) }),
          )
        }
        return
      case 'state':
        this.learned = { serviceAddress: m.serviceAddress, hostConnections: m.hostConnections }
        return
      case 'handover-request':
        if (this.state.role === 'primary') void this.handOver()
        return
      case 'handover-ready':
        return
      case 'lun-sizes':
        this.partnerSizes = { epoch: m.epoch, luns: m.luns, at: this.now(), receivedAtMs: Date.now() }
        return
    }
  }

  /** Secondary: the primary starts a new round; every older copy is on storage. */
  private async acceptSync(epoch: number, generation: number): Promise<void> {
    this.journal.clear()
    this.journalGeneration = generation
    if (this.opts.config.journal.dir) await writeGeneration(join(this.opts.config.journal.dir, this.opts.nodeName), generation)
    this.link.send({ type: 'sync-ack', epoch, generation })
  }

  /** Primary: tell the secondary where hosts connect, so it can nudge them after a takeover. */
  private shareState(): void {
    if (this.state.role !== 'primary' || !this.link.up) return
    this.link.send({
      type: 'state', epoch: this.state.epoch, serviceAddress: this.service.text,
      hostConnections: this.controller.hostConnections([this.service.text]),
    })
  }

  // ------------------------------------------------------------------ operator actions

  /** Planned switchover, asked of the node that should become primary (or forced). */
  async takeover(force: boolean): Promise<{ accepted: boolean; detail: string }> {
    if (this.state.role === 'primary') return { accepted: false, detail: `${this.opts.nodeName} is already primary` }
    this.dispatch({ type: 'operatorTakeover', at: this.now(), force })
    return { accepted: true, detail: force ? 'forced takeover started' : 'handover requested from the primary' }
  }

  /** Primary: drain, complete, then let the partner in without waiting out the lease. */
  private async handOver(): Promise<void> {
    this.log.info('handing over', { to: this.peer.name })
    await Promise.all(this.devices.map((d) => d.drain()))
    this.mirror.flushCompletions()
    this.dispatch({ type: 'handoverRequested', at: this.now() })
  }

  /** Re-read the config file (`node reload`, SIGHUP); see Controller.reload and growDevice. */
  reload(): Promise<ReloadReport> {
    return this.controller.reload()
  }

  /** `iscsi-ha replay` on a running secondary: complete the journal's copies now. */
  async replayNow(): Promise<{ replayed: number; bytes: number; discardedBytes: number }> {
    if (this.state.role === 'primary') throw new Error('the primary completes its own writes; replay runs on the secondary')
    // While the partner serves, it is completing these same writes and may write newer data
    // over the same blocks: replaying an older copy now could bring stale data back.
    if (this.link.up && this.link.peerRole === 'primary') throw new Error(`the partner ${this.peer.name} is serving and completes these copies itself`)
    const backends = new Map(this.devices.map((d) => [`${d.key.target}/${d.key.lun}`, d.backend]))
    const r = await this.journal.applyToBackends((key) => backends.get(`${key.target}/${key.lun}`))
    return { replayed: r.replayed, bytes: r.bytes, discardedBytes: r.discardedBytes }
  }

  peerStatus(): PeerStatusReport {
    const link = this.link.status()
    const lease = this.lease.snapshot()
    const j = this.journal.stats()
    return {
      node: this.opts.nodeName,
      role: this.state.role,
      epoch: this.state.epoch,
      serving: this.state.serving && this.listening,
      mirrored: this.state.role === 'primary' && this.mirrorMode === 'on',
      peer: {
        name: this.peer.name, address: this.peer.peer!.text, link: link.up ? 'up' : 'down',
        ...(link.rttMs !== undefined ? { rttMs: Math.round(link.rttMs * 100) / 100 } : {}),
        ...(link.sinceHeardMs !== undefined ? { lastHeardMsAgo: Math.round(link.sinceHeardMs) } : {}),
        ...(link.peerRole ? { role: link.peerRole } : {}),
        ...(link.peerEpoch !== undefined ? { epoch: link.peerEpoch } : {}),
        ...(this.partnerSizes ? { luns: this.partnerSizes.luns, lunsReportedMsAgo: Math.max(0, Date.now() - this.partnerSizes.receivedAtMs) } : {}),
        refusals: { ...link.refusals, ...(link.staleRefused ? { 'stale-epoch': link.staleRefused } : {}) },
      },
      lease: {
        holder: lease.holder, epoch: lease.epoch, ageMs: Math.round(lease.ageMs), durationMs: lease.durationMs,
        ...(lease.error ? { error: lease.error } : {}),
      },
      serviceAddress: {
        address: this.service.text,
        ...(this.opts.config.service?.interface ? { interface: this.opts.config.service.interface } : {}),
        heldHere: this.controller.listening.includes(this.service.text),
      },
      journal: {
        entries: j.entries, bytes: j.bytes,
        ...(j.oldestSeq !== undefined ? { oldestSeq: j.oldestSeq } : {}),
        ...(j.oldestAgeMs !== undefined ? { oldestAgeMs: Math.round(j.oldestAgeMs) } : {}),
      },
      ...(this.lastTakeover ? { lastTakeover: this.lastTakeover } : {}),
    }
  }

  journalEntries(limit: number): Array<{ seq: number; epoch: number; kind: 'write' | 'discard'; target: string; lun: number; offset: number; bytes: number; ageMs: number; initiator: string; itt: number }> {
    const now = Date.now()
    return this.journal.pending().slice(0, limit).map((e) => ({
      seq: e.seq, epoch: e.epoch, kind: e.kind ?? 'write', target: e.key.target, lun: e.key.lun, offset: e.offset, bytes: entryLength(e),
      ageMs: Math.max(0, now - e.receivedAtMs), initiator: e.initiator, itt: e.itt,
    }))
  }

  private routes(): AdminRoute[] {
    return [
      { method: 'GET' as const, path: '/v1/peer', handler: () => ({ status: 200, body: this.peerStatus() }) },
      {
        method: 'GET' as const, path: '/v1/journal',
        handler: () => ({ status: 200, body: { node: this.opts.nodeName, role: this.state.role, stats: this.journal.stats(), entries: this.journalEntries(1000) } }),
      },
      {
        method: 'POST' as const, path: '/v1/takeover',
        handler: async (req) => {
          const body = (req.json() ?? {}) as { force?: boolean }
          return { status: 200, body: await this.takeover(body.force === true) }
        },
      },
      {
        method: 'POST' as const, path: '/v1/replay',
        handler: async () => {
          try {
            return { status: 200, body: await this.replayNow() }
          } catch (err) {
            throw new AdminHttpError(409, 'REPLAY_REFUSED', err instanceof Error ? err.message : String(err))
          }
        },
      },
    ]
  }

  // ------------------------------------------------------------------ shutdown

  async stop(): Promise<void> {
    if (this.stopped) return
    for (const t of this.timers) clearInterval(t)
    if (this.state.role === 'primary') {
      this.dispatch({ type: 'shutdown', at: this.now() })
      await this.actions
    }
    this.stopped = true
    this.renewing = false
    this.watching = false
    this.mirror?.close()
    await this.link?.stop()
    await this.controller?.stop()
    await this.journal?.close()
  }
}

/** A config that describes an HA pair: two nodes with peer addresses and a service address. */
export function isPair(config: ClusterConfig): boolean {
  return Object.keys(config.nodes).length === 2 && config.service !== undefined
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** `p`, or a rejection with `message` after `ms` (p itself goes on). */
function within<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms)
  })
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

/** Both controllers of one cluster run the same file: its targets and nodes name the cluster. */
function clusterIdOf(config: ClusterConfig): string {
  const identity = JSON.stringify({ targets: config.targets.map((t) => t.iqn).sort(), nodes: Object.keys(config.nodes).sort(), service: config.service?.address.text })
  return createHash('sha256').update(identity).digest('hex').slice(0, 32)
}

async function readGeneration(dir: string): Promise<number> {
  try {
    return Number((await readFile(join(dir, 'generation'), 'utf8')).trim()) || 0
  } catch {
    return 0
  }
}

async function writeGeneration(dir: string, generation: number): Promise<void> {
  const tmp = join(dir, 'generation.tmp')
  await writeFile(tmp, `${generation}\n`)
  await rename(tmp, join(dir, 'generation'))
}
