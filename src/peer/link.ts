// PeerLink: the socket edge of the peer link. One authenticated TCP connection between the two
// controllers carrying PeerMessages (src/ha/types.ts), with heartbeats, RTT measurement, dead-peer
// detection and epoch fencing.
//
// Connections. Both nodes listen on `listen` and, while the link is down, dial `connect` with a
// back-off (reconnectMinMs doubling to reconnectMaxMs; reset when the link comes up). Every
// connection, dialled or accepted, runs the handshake (handshake.ts). Before it completes, frames
// are limited to PREAUTH_MAX_FRAME bytes and the handshake must finish within handshakeTimeoutMs;
// at most maxPendingConnections unauthenticated connections are open at once.
//
// Tie-break: exactly one authenticated connection survives. The node whose name is lexically
// smaller (JavaScript string order) is the selector. When a connection authenticates:
//   - the selector sends SELECT on it if it has no link, and the connection becomes the link;
//   - if it already has a link that was heard from within max(2 × heartbeat, deadAfter / 2), the
//     new connection is a duplicate (a simultaneous dial) and is closed with CLOSE "duplicate";
//   - otherwise the old link is presumed half-open (the peer restarted, or lost it and redialled):
//     it is closed ('down' "replaced"), and the new one is selected ('up').
// The other node never chooses: it waits for SELECT (or CLOSE) on each authenticated connection,
// and a SELECT on a new connection replaces its current link. Neither node reports 'up' before
// the selection, so no message is ever sent on a connection that is about to be dropped.
//
// Liveness. While up, a heartbeat {epoch(), role(), sentAtMs: now(), journalEntries()} goes out
// every heartbeatIntervalMs (plus one at once on 'up'); each heartbeat is answered with a
// heartbeat-ack echoing sentAtMs, and the echo gives the RTT (smoothed, 1/8 weight like TCP's
// SRTT). Any received byte counts as "heard", so a large copy in flight keeps the link alive.
// Nothing heard for deadAfterMs: the link is declared down ('down' "timeout ...") and closed.
//
// Epoch fencing. A received message whose epoch (a copy's entry.epoch) is below epoch() is
// refused: logged, counted in staleRefused, not delivered. A stale copy is answered with a
// copy-nak {epoch: ours, reason "stale-epoch"} so the old primary learns at once that it is
// fenced. A higher epoch is delivered; the HA layer decides. Heartbeats still update
// peerRole / peerEpoch (status), even when stale.
//
// Sending. send() encodes and writes at once; writes of one event-loop turn are gathered with
// cork() and uncorked in setImmediate, so the copies (or acks) answering every chunk that
// arrived in that turn go out in one writev rather than one per chunk. Nagle is off (setNoDelay). Back-pressure: when the socket's unsent bytes plus the new
// frame would exceed maxBufferedBytes, send() returns false and queues nothing (a frame always
// goes when nothing is buffered, so a single large copy is never refused on an idle link); a
// 'drain' event follows when the socket's buffer empties. Nothing is queued while the link is
// down either: send() returns false.
//
// Received copies are delivered with data the listener may keep (the decoder runs with
// ownData: true). Listener exceptions are caught and logged; they never break the link.
//
// Strangers. Garbage, another protocol (an HTTP request, TLS, an iSCSI login), a wrong secret,
// another cluster's config, a wrong node name: the connection gets a REFUSE frame with a reason
// code and is closed, a warning is logged (the same reason from the same address at most every
// 10 s, then at debug), the refusal is counted in `refusals` and a 'refused' event fires. The
// link itself is unaffected.

import { EventEmitter } from 'node:events'
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net'
import type { PeerMessage, Role } from '../ha/types.js'
import type { Logger } from '../node/log.js'
import {
  DEFAULT_MAX_FRAME_LENGTH,
  FrameDecoder,
  encodeFrame,
  messageEpoch,
  segmentsLength,
  type Frame,
} from './codec.js'
import { PeerProtocolError, REFUSE_REASONS, type RefuseReason } from './errors.js'
import { Handshake, type HandshakeSide, type HandshakeStep } from './handshake.js'

/** Where to listen or dial (config's HostPort fits: it has these two fields and more). */
export interface PeerAddress {
  host: string
  port: number
}

export interface PeerLinkOptions {
  /** Our node name. */
  self: string
  /** The partner's node name (the only name the handshake accepts). */
  peer: string
  /** Where we accept the partner's connections (port 0: an ephemeral port, see `address`). */
  listen: PeerAddress
  /**
   * Where we dial the partner. A function is called at every dial; returning undefined (or
   * throwing) means "not known yet": the dial is retried after the back-off.
   */
  connect: PeerAddress | (() => PeerAddress | undefined)
  /** peer_secret (a string is used as UTF-8). */
  secret: string | Buffer
  /** A hash of the config's cluster identity. */
  clusterId: string
  /** Heartbeat period (default 100 ms). */
  heartbeatIntervalMs?: number
  /** Declare the link down after this long with nothing heard (default 400 ms). */
  deadAfterMs?: number
  /** Our current epoch (read for every heartbeat and every received message). */
  epoch(): number
  /** Our current role (heartbeats, acks). */
  role(): Role
  /** Our journal depth (heartbeats). */
  journalEntries(): number
  log: Logger
  /** Clock in ms for heartbeats, RTT and liveness (default performance.timeOrigin + performance.now()). */
  now?(): number
  /** Time allowed for a connection's handshake and selection (default 2000 ms). */
  handshakeTimeoutMs?: number
  /** Largest frame accepted after authentication (default DEFAULT_MAX_FRAME_LENGTH). */
  maxFrameLength?: number
  /** Bound on unsent bytes in the socket before send() refuses (default 32 MiB). */
  maxBufferedBytes?: number
  /** Unauthenticated connections allowed at once (default 8). */
  maxPendingConnections?: number
  /** Reconnect back-off (default 100 ms doubling to 1000 ms). */
  reconnectMinMs?: number
  reconnectMaxMs?: number
  /** Nonce source for handshakes (tests). */
  randomBytes?: (n: number) => Buffer
}

export interface LinkUpInfo {
  /** The partner's address on this connection. */
  remote: string
  /** Whether we dialled this connection or accepted it. */
  side: HandshakeSide
}

export interface RefusalInfo {
  /** 'us': we refused a connection; 'peer': the partner refused ours. */
  by: 'us' | 'peer'
  remote: string
  detail: string
}

export interface PeerLinkEvents {
  up: [info: LinkUpInfo]
  down: [reason: string]
  message: [msg: PeerMessage]
  refused: [reason: string, info: RefusalInfo]
  /** The socket buffer emptied after send() returned false for back-pressure. */
  drain: []
}

/** A snapshot for `peer status`. */
export interface PeerLinkStatus {
  self: string
  peer: string
  up: boolean
  remote: string | undefined
  side: HandshakeSide | undefined
  rttMs: number | undefined
  lastHeardMs: number | undefined
  sinceHeardMs: number | undefined
  peerRole: Role | undefined
  peerEpoch: number | undefined
  peerJournalEntries: number | undefined
  staleRefused: number
  refusals: Record<string, number>
  peerRefusals: Record<string, number>
  ups: number
  downs: number
}

/** Frame limit before authentication: HELLO, PROOF and REFUSE are far smaller. */
export const PREAUTH_MAX_FRAME = 4096

const DEFAULT_MAX_BUFFERED = 32 * 1024 * 1024
const LOG_REPEAT_MS = 10_000

type Phase = 'handshake' | 'authenticated' | 'active' | 'closed'

let nextConnectionId = 1

class Connection {
  readonly id = nextConnectionId++
  phase: Phase = 'handshake'
  timer: NodeJS.Timeout | undefined = undefined
  lastHeard: number
  corked = false
  wantDrain = false
  error: Error | undefined = undefined
  decoder!: FrameDecoder
  constructor(
    readonly socket: Socket,
    readonly side: HandshakeSide,
    readonly remote: string,
    readonly handshake: Handshake,
    now: number,
  ) {
    this.lastHeard = now
  }
}

function defaultNow(): number {
  return performance.timeOrigin + performance.now()
}

function remoteOf(socket: Socket): string {
  const a = socket.remoteAddress ?? '?'
  return `${a.includes(':') ? `[${a}]` : a}:${socket.remotePort ?? '?'}`
}

function positive(name: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${name} must be a positive number`)
  return v
}

export class PeerLink extends EventEmitter<PeerLinkEvents> {
  readonly self: string
  readonly peer: string
  readonly heartbeatIntervalMs: number
  readonly deadAfterMs: number
  /** Received messages refused for a stale epoch. */
  staleRefused = 0
  /** Connections we refused, by reason. */
  readonly refusals = new Map<string, number>()
  /** Our connections the partner refused, by reason (unknown reasons counted as 'other'). */
  readonly peerRefusals = new Map<string, number>()

  private readonly opts: PeerLinkOptions
  private readonly log: Logger
  private readonly now: () => number
  private readonly handshakeTimeoutMs: number
  private readonly maxFrameLength: number
  private readonly maxBufferedBytes: number
  private readonly maxPending: number
  private readonly reconnectMinMs: number
  private readonly reconnectMaxMs: number
  private readonly selector: boolean
  private readonly suspectAfterMs: number
  private readonly tickMs: number
  private readonly nonces = new Set<string>()
  private readonly conns = new Set<Connection>()
  private readonly logged = new Map<string, number>()

  private server: Server | undefined = undefined
  private started = false
  private active: Connection | undefined = undefined
  private dialSocket: Socket | undefined = undefined
  private dialTimer: NodeJS.Timeout | undefined = undefined
  private tickTimer: NodeJS.Timeout | undefined = undefined
  private backoff: number
  private lastHeartbeatSent = -Infinity
  private heartbeatsPaused = false
  private rtt: number | undefined = undefined
  private heard: number | undefined = undefined
  private role_: Role | undefined = undefined
  private epoch_: number | undefined = undefined
  private journal_: number | undefined = undefined
  private ups = 0
  private downs = 0

  constructor(opts: PeerLinkOptions) {
    super()
    if (opts.self === opts.peer) throw new RangeError('self and peer must be different node names')
    // Validate names and the secret once, here, rather than at the first connection.
    new Handshake({ self: opts.self, peer: opts.peer, secret: opts.secret, clusterId: opts.clusterId, side: 'dialer' })
    if (Buffer.byteLength(opts.clusterId) > 255) throw new RangeError('clusterId must be at most 255 bytes')
    this.opts = opts
    this.self = opts.self
    this.peer = opts.peer
    this.log = opts.log
    this.now = opts.now ?? defaultNow
    this.heartbeatIntervalMs = positive('heartbeatIntervalMs', opts.heartbeatIntervalMs ?? 100)
    this.deadAfterMs = positive('deadAfterMs', opts.deadAfterMs ?? 400)
    this.handshakeTimeoutMs = positive('handshakeTimeoutMs', opts.handshakeTimeoutMs ?? 2000)
    this.maxFrameLength = opts.maxFrameLength ?? DEFAULT_MAX_FRAME_LENGTH
    this.maxBufferedBytes = positive('maxBufferedBytes', opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED)
    this.maxPending = positive('maxPendingConnections', opts.maxPendingConnections ?? 8)
    this.reconnectMinMs = positive('reconnectMinMs', opts.reconnectMinMs ?? 100)
    this.reconnectMaxMs = Math.max(this.reconnectMinMs, opts.reconnectMaxMs ?? 1000)
    this.backoff = this.reconnectMinMs
    this.selector = opts.self < opts.peer
    this.suspectAfterMs = Math.max(2 * this.heartbeatIntervalMs, this.deadAfterMs / 2)
    this.tickMs = Math.max(5, Math.min(this.heartbeatIntervalMs, this.deadAfterMs / 4))
  }

  // -------------------------------------------------------------------------------------------
  // Public surface.

  /** An authenticated, selected connection to the partner exists. */
  get up(): boolean {
    return this.active !== undefined
  }

  /** Smoothed heartbeat round-trip time in ms (last known; undefined before the first ack). */
  get rttMs(): number | undefined {
    return this.rtt
  }

  /** now() when a byte was last received from the partner on the link (undefined: never). */
  get lastHeardMs(): number | undefined {
    return this.heard
  }

  /** The role the partner last announced (kept after the link goes down). */
  get peerRole(): Role | undefined {
    return this.role_
  }

  /** The epoch the partner last announced (kept after the link goes down). */
  get peerEpoch(): number | undefined {
    return this.epoch_
  }

  /** The journal depth the partner last announced. */
  get peerJournalEntries(): number | undefined {
    return this.journal_
  }

  /** Open sockets to or from the partner's port, authenticated or not (tests, status). */
  get connections(): number {
    return this.conns.size
  }

  /** The address we listen on (after start()). */
  get address(): PeerAddress | undefined {
    const a = this.server?.address()
    return a !== null && a !== undefined && typeof a === 'object' ? { host: a.address, port: a.port } : undefined
  }

  status(): PeerLinkStatus {
    const a = this.active
    return {
      self: this.self,
      peer: this.peer,
      up: a !== undefined,
      remote: a?.remote,
      side: a?.side,
      rttMs: this.rtt,
      lastHeardMs: this.heard,
      sinceHeardMs: this.heard === undefined ? undefined : Math.max(0, this.now() - this.heard),
      peerRole: this.role_,
      peerEpoch: this.epoch_,
      peerJournalEntries: this.journal_,
      staleRefused: this.staleRefused,
      refusals: Object.fromEntries(this.refusals),
      peerRefusals: Object.fromEntries(this.peerRefusals),
      ups: this.ups,
      downs: this.downs,
    }
  }

  /** Listen, then dial the partner until the link is up. Resolves once listening. */
  async start(): Promise<void> {
    if (this.started) return
    const server = createServer((socket) => this.onIncoming(socket))
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err)
      server.once('error', onError)
      server.listen(this.opts.listen.port, this.opts.listen.host, () => {
        server.off('error', onError)
        resolve()
      })
    })
    server.on('error', (err) => this.log.error('peer link listener error', { err: err.message }))
    this.server = server
    this.started = true
    this.log.info('peer link listening', { listen: this.address, peer: this.peer, selector: this.selector })
    this.tickTimer = setInterval(() => this.tick(), this.tickMs)
    this.scheduleDial(0)
  }

  /** Close the link (CLOSE "shutdown" to the partner), every connection and the listener. */
  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    if (this.tickTimer !== undefined) clearInterval(this.tickTimer)
    if (this.dialTimer !== undefined) clearTimeout(this.dialTimer)
    this.tickTimer = undefined
    this.dialTimer = undefined
    this.dialSocket?.destroy()
    this.dialSocket = undefined
    const closing: Promise<void>[] = []
    for (const conn of [...this.conns]) {
      if (!conn.socket.closed) closing.push(new Promise<void>((resolve) => conn.socket.once('close', () => resolve())))
      this.closeConn(conn, 'stopped', conn.phase === 'active' ? { type: 'close', reason: 'shutdown' } : undefined)
    }
    const server = this.server
    this.server = undefined
    await Promise.all([
      ...closing,
      new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve()))),
    ])
  }

  /**
   * Send a message to the partner. Returns false (and queues nothing) when the link is down or
   * the socket's buffer is over maxBufferedBytes. Throws RangeError/TypeError for a message the
   * frame format cannot carry. A copy's data is written from the caller's buffer: do not
   * modify it afterwards.
   */
  send(msg: PeerMessage): boolean {
    const conn = this.active
    if (conn === undefined) return false
    return this.write(conn, msg, false)
  }

  /**
   * Test hook: stop (true) or resume (false) sending heartbeats and heartbeat-acks, so the
   * partner sees a live TCP connection that has gone silent.
   */
  pauseHeartbeats(paused = true): void {
    this.heartbeatsPaused = paused
  }

  // -------------------------------------------------------------------------------------------
  // Connections.

  private pendingCount(): number {
    let n = 0
    for (const c of this.conns) if (c.phase === 'handshake' || c.phase === 'authenticated') n++
    return n
  }

  private onIncoming(socket: Socket): void {
    const remote = remoteOf(socket)
    socket.on('error', () => {})
    if (!this.started) {
      socket.destroy()
      return
    }
    if (this.pendingCount() >= this.maxPending) {
      const detail = `more than ${this.maxPending} unauthenticated peer-link connections at once`
      this.noteRefusal('us', 'too-many-connections', remote, detail)
      endWith(socket, encodeFrame({ type: 'refuse', reason: 'too-many-connections', detail: 'too many connections' }))
      return
    }
    this.setup(socket, 'acceptor', remote)
  }

  private scheduleDial(delay: number): void {
    if (!this.started || this.active !== undefined || this.dialTimer !== undefined || this.dialing()) return
    this.dialTimer = setTimeout(() => {
      this.dialTimer = undefined
      this.dial()
    }, delay)
  }

  private dialing(): boolean {
    if (this.dialSocket !== undefined) return true
    for (const c of this.conns) if (c.side === 'dialer') return true
    return false
  }

  private nextBackoff(): number {
    const d = this.backoff
    this.backoff = Math.min(this.reconnectMaxMs, this.backoff * 2)
    return d
  }

  private dial(): void {
    if (!this.started || this.active !== undefined || this.dialing()) return
    let target: PeerAddress | undefined
    try {
      target = typeof this.opts.connect === 'function' ? this.opts.connect() : this.opts.connect
    } catch (err) {
      this.log.debug('peer address not available', { err: err instanceof Error ? err.message : String(err) })
    }
    if (target === undefined || target === null) {
      this.scheduleDial(this.nextBackoff())
      return
    }
    const socket = netConnect({ host: target.host, port: target.port })
    this.dialSocket = socket
    const timer = setTimeout(() => socket.destroy(new Error('connect timed out')), this.handshakeTimeoutMs)
    let failure: Error | undefined
    socket.on('error', (err) => {
      failure = err
    })
    const onClose = (): void => {
      clearTimeout(timer)
      if (this.dialSocket !== socket) return
      this.dialSocket = undefined
      this.log.debug('peer not reachable, will retry', {
        peer: this.peer,
        connect: `${target.host}:${target.port}`,
        err: failure?.message,
      })
      this.scheduleDial(this.nextBackoff())
    }
    socket.once('close', onClose)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.off('close', onClose)
      if (this.dialSocket !== socket) return
      this.dialSocket = undefined
      if (!this.started) {
        socket.destroy()
        return
      }
      this.setup(socket, 'dialer', remoteOf(socket))
    })
  }

  private setup(socket: Socket, side: HandshakeSide, remote: string): void {
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 5000)
    const handshake = new Handshake({
      self: this.self,
      peer: this.peer,
      secret: this.opts.secret,
      clusterId: this.opts.clusterId,
      side,
      randomBytes: this.opts.randomBytes,
      nonces: this.nonces,
    })
    const conn = new Connection(socket, side, remote, handshake, this.now())
    conn.decoder = new FrameDecoder({
      onFrame: (frame) => this.onFrame(conn, frame),
      maxFrameLength: Math.min(PREAUTH_MAX_FRAME, this.maxFrameLength),
      ownData: true,
      retainChunks: true,
      initialBufferSize: 4096,
    })
    this.conns.add(conn)
    socket.on('error', (err) => {
      conn.error = err
    })
    socket.on('close', () => this.onSocketClose(conn))
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk))
    socket.on('drain', () => this.onSocketDrain(conn))
    conn.timer = setTimeout(() => this.onHandshakeTimeout(conn), this.handshakeTimeoutMs)
    this.log.debug('peer-link connection', { remote, side, id: conn.id })
    this.applyStep(conn, handshake.start())
  }

  private onData(conn: Connection, chunk: Buffer): void {
    if (conn.phase === 'closed') return
    const t = this.now()
    conn.lastHeard = t
    if (conn === this.active) this.heard = t
    try {
      conn.decoder.push(chunk)
    } catch (err) {
      if (err instanceof PeerProtocolError) this.onProtocolError(conn, err)
      else {
        // Not reachable by input bytes (the decoder throws only PeerProtocolError and listener
        // exceptions are caught): an internal bug. Drop the connection, keep the node.
        this.log.error('peer link internal error', { err: String(err), remote: conn.remote })
        this.closeConn(conn, `internal error: ${String(err)}`)
      }
    }
  }

  private onFrame(conn: Connection, frame: Frame): void {
    switch (conn.phase) {
      case 'handshake':
        this.applyStep(conn, conn.handshake.receive(frame))
        return
      case 'authenticated':
        if (frame.type === 'select' && !this.selector) {
          this.activate(conn)
          return
        }
        this.onControlOrViolation(conn, frame, 'before selection')
        return
      case 'active':
        switch (frame.type) {
          case 'hello':
          case 'proof':
          case 'accept':
          case 'select':
          case 'refuse':
          case 'close':
            this.onControlOrViolation(conn, frame, 'on an established link')
            return
          default:
            this.onMessage(conn, frame)
        }
        return
      case 'closed':
        return
    }
  }

  /** CLOSE / REFUSE from the partner after authentication, or a frame it may not send. */
  private onControlOrViolation(conn: Connection, frame: Frame, when: string): void {
    if (frame.type === 'close') {
      const quiet = frame.reason === 'duplicate'
      if (quiet) this.log.debug('duplicate peer-link connection closed by the selector', { remote: conn.remote })
      this.closeConn(conn, `closed by the peer (${frame.reason})`)
      return
    }
    if (frame.type === 'refuse') {
      this.noteRefusal('peer', frame.reason, conn.remote, frame.detail)
      this.closeConn(conn, `refused by the peer (${frame.reason}: ${frame.detail})`)
      return
    }
    const detail = `unexpected ${frame.type} frame ${when}`
    this.noteRefusal('us', 'protocol', conn.remote, detail)
    this.closeConn(conn, `protocol error: ${detail}`, { type: 'refuse', reason: 'protocol', detail })
  }

  private applyStep(conn: Connection, step: HandshakeStep): void {
    for (const f of step.send) this.write(conn, f, true)
    if (step.status === 'refused') {
      const r = step.refusal!
      this.noteRefusal(r.by, r.reason, conn.remote, r.detail)
      // Our REFUSE frame is already written; end() flushes it before the FIN.
      this.closeConn(conn, `handshake refused (${r.reason})`, undefined, true)
    } else if (step.status === 'done') {
      this.onAuthenticated(conn)
    }
  }

  private onAuthenticated(conn: Connection): void {
    conn.phase = 'authenticated'
    conn.decoder.maxFrameLength = this.maxFrameLength
    this.log.debug('peer authenticated', { remote: conn.remote, side: conn.side, id: conn.id })
    if (!this.selector) return // wait for SELECT; the handshake timer still runs
    const current = this.active
    if (current !== undefined) {
      const silentFor = this.now() - current.lastHeard
      if (silentFor < this.suspectAfterMs) {
        this.log.debug('closing duplicate peer-link connection', { remote: conn.remote, keep: current.remote })
        this.closeConn(conn, 'duplicate', { type: 'close', reason: 'duplicate' })
        return
      }
    }
    this.write(conn, { type: 'select' }, true)
    this.activate(conn)
  }

  private activate(conn: Connection): void {
    if (conn.timer !== undefined) clearTimeout(conn.timer)
    conn.timer = undefined
    const old = this.active
    if (old !== undefined && old !== conn) {
      this.closeConn(old, 'replaced by a new connection from the peer', { type: 'close', reason: 'replaced' })
    }
    if (!this.started) return
    conn.phase = 'active'
    const t = this.now()
    conn.lastHeard = t
    this.heard = t
    this.active = conn
    this.ups++
    this.backoff = this.reconnectMinMs
    if (this.dialTimer !== undefined) clearTimeout(this.dialTimer)
    this.dialTimer = undefined
    this.log.info('peer link up', { peer: this.peer, remote: conn.remote, side: conn.side })
    this.sendHeartbeat(conn)
    this.emitSafely('up', { remote: conn.remote, side: conn.side })
  }

  private onSocketDrain(conn: Connection): void {
    if (conn.wantDrain && conn === this.active) {
      conn.wantDrain = false
      this.emitSafely('drain')
    }
  }

  private onHandshakeTimeout(conn: Connection): void {
    conn.timer = undefined
    if (conn.phase !== 'handshake' && conn.phase !== 'authenticated') return
    const detail =
      conn.phase === 'handshake'
        ? `no complete handshake within ${this.handshakeTimeoutMs} ms`
        : `authenticated but not selected within ${this.handshakeTimeoutMs} ms`
    const step = conn.handshake.refuse('handshake-timeout', detail)
    this.applyStep(conn, step)
  }

  private onProtocolError(conn: Connection, err: PeerProtocolError): void {
    const reason = err.refuseReason
    const wire =
      reason === 'not-peer-protocol'
        ? 'this port speaks the iscsi-ha peer-link protocol only'
        : err.message
    if (conn.phase === 'handshake' || conn.phase === 'authenticated') {
      this.applyStep(conn, conn.handshake.refuse(reason, err.message, wire))
      return
    }
    this.noteRefusal('us', reason, conn.remote, err.message)
    this.closeConn(conn, `protocol error: ${err.message}`, { type: 'refuse', reason, detail: wire })
  }

  private onSocketClose(conn: Connection): void {
    if (conn.phase === 'closed') return
    const err = conn.error
    const reason = err !== undefined ? `connection error: ${err.message}` : 'connection closed by the peer'
    if (conn.phase === 'handshake' && conn.side === 'acceptor') {
      this.log.debug('peer-link connection closed during the handshake', { remote: conn.remote, reason })
    }
    this.closeConn(conn, reason)
  }

  /**
   * Close a connection (idempotent). With `last`, that frame is written and the socket ended
   * (destroyed after 1 s if the peer does not close); `flush` ends after what is already
   * written; otherwise the socket is destroyed. Closing the link emits 'down'.
   */
  private closeConn(conn: Connection, reason: string, last?: Frame, flush = false): void {
    if (conn.phase === 'closed') return
    const wasActive = conn === this.active
    const wasDialer = conn.side === 'dialer'
    conn.phase = 'closed'
    if (conn.timer !== undefined) clearTimeout(conn.timer)
    conn.timer = undefined
    conn.handshake.dispose()
    this.conns.delete(conn)
    const socket = conn.socket
    if (conn.corked) {
      conn.corked = false
      socket.uncork()
    }
    if (socket.destroyed) {
      // nothing to do
    } else if (last !== undefined) {
      endWith(socket, encodeFrame(last))
    } else if (flush) {
      endWith(socket, [])
    } else {
      socket.destroy()
    }
    if (wasActive) {
      this.active = undefined
      this.downs++
      const level = reason === 'stopped' ? 'info' : 'warn'
      this.log[level]('peer link down', { peer: this.peer, reason, remote: conn.remote })
      this.emitSafely('down', reason)
      this.scheduleDial(this.reconnectMinMs)
    } else if (wasDialer && this.active === undefined) {
      this.scheduleDial(this.nextBackoff())
    }
  }

  // -------------------------------------------------------------------------------------------
  // Messages and heartbeats.

  private onMessage(conn: Connection, msg: PeerMessage): void {
    const t = this.now()
    if (msg.type === 'heartbeat-ack') {
      const sample = t - msg.echoSentAtMs
      if (sample >= 0 && sample < 60_000) {
        this.rtt = this.rtt === undefined ? sample : this.rtt + (sample - this.rtt) / 8
      }
      this.role_ = msg.role
      this.epoch_ = msg.epoch
    } else if (msg.type === 'heartbeat') {
      this.role_ = msg.role
      this.epoch_ = msg.epoch
      this.journal_ = msg.journalEntries
    }
    const ours = this.opts.epoch()
    const theirs = messageEpoch(msg)
    if (theirs < ours) {
      this.staleRefused++
      this.logLimited(`stale:${msg.type}`, 'warn', 'refused a stale-epoch message from the peer', {
        type: msg.type,
        peerEpoch: theirs,
        epoch: ours,
        staleRefused: this.staleRefused,
      })
      if (msg.type === 'copy') {
        const reason = `stale-epoch: ${theirs} < ${ours}`
        this.write(conn, { type: 'copy-nak', epoch: ours, seq: msg.entry.seq, reason }, true)
      }
      return
    }
    if (msg.type === 'heartbeat' && !this.heartbeatsPaused) {
      this.write(conn, { type: 'heartbeat-ack', epoch: ours, echoSentAtMs: msg.sentAtMs, role: this.opts.role() }, true)
    }
    this.emitSafely('message', msg)
  }

  private sendHeartbeat(conn: Connection): void {
    if (this.heartbeatsPaused) return
    const t = this.now()
    this.lastHeartbeatSent = t
    this.write(
      conn,
      {
        type: 'heartbeat',
        epoch: this.opts.epoch(),
        role: this.opts.role(),
        sentAtMs: t,
        journalEntries: this.opts.journalEntries(),
      },
      false,
    )
  }

  private tick(): void {
    const conn = this.active
    if (conn === undefined) return
    const t = this.now()
    const silent = t - conn.lastHeard
    if (silent > this.deadAfterMs) {
      this.closeConn(conn, `timeout: nothing heard from the peer for ${Math.round(silent)} ms`, {
        type: 'close',
        reason: 'timeout',
      })
      return
    }
    if (t - this.lastHeartbeatSent >= this.heartbeatIntervalMs - this.tickMs / 2) this.sendHeartbeat(conn)
  }

  /**
   * Encode and write one frame. Writes of one event-loop turn are corked together. Unless `force`, refuses
   * (false) when the socket already holds unsent bytes and this frame would take it over
   * maxBufferedBytes.
   */
  private write(conn: Connection, frame: Frame, force: boolean): boolean {
    const socket = conn.socket
    if (conn.phase === 'closed' || socket.destroyed || !socket.writable) return false
    const segments = encodeFrame(frame)
    if (!force) {
      const pending = socket.writableLength
      if (pending > 0 && pending + segmentsLength(segments) > this.maxBufferedBytes) {
        if (!conn.wantDrain) {
          conn.wantDrain = true
          // 'drain' comes from the socket only after a write() returned false; when the buffer
          // is below the socket's high-water mark there will be none, so signal on our own.
          if (!socket.writableNeedDrain) setImmediate(() => this.onSocketDrain(conn))
        }
        return false
      }
    }
    if (!conn.corked) {
      conn.corked = true
      socket.cork()
      setImmediate(() => {
        if (conn.corked) {
          conn.corked = false
          socket.uncork()
        }
      })
    }
    for (let i = 0; i < segments.length; i++) socket.write(segments[i]!)
    return true
  }

  // -------------------------------------------------------------------------------------------
  // Bookkeeping.

  private noteRefusal(by: 'us' | 'peer', reason: RefuseReason | string, remote: string, detail: string): void {
    const map = by === 'us' ? this.refusals : this.peerRefusals
    // Reasons from the wire are counted only when known, so a stranger cannot grow the map.
    const key = (REFUSE_REASONS as readonly string[]).includes(reason) ? reason : 'other'
    map.set(key, (map.get(key) ?? 0) + 1)
    const host = remote.replace(/:[^:]*$/, '')
    if (by === 'us') {
      this.logLimited(`us:${reason}:${host}`, 'warn', 'refused a peer-link connection', { remote, reason, detail })
    } else {
      this.logLimited(`peer:${reason}:${host}`, 'error', 'the peer refused our peer-link connection', {
        peer: this.peer,
        remote,
        reason,
        detail,
      })
    }
    this.emitSafely('refused', reason, { by, remote, detail })
  }

  /** Log at `level` the first time and then at most every LOG_REPEAT_MS per key; else at debug. */
  private logLimited(key: string, level: 'warn' | 'error', msg: string, fields: Record<string, unknown>): void {
    const t = Date.now()
    const last = this.logged.get(key)
    if (last !== undefined && t - last < LOG_REPEAT_MS) {
      this.log.debug(msg, fields)
      return
    }
    if (this.logged.size > 1000) this.logged.clear()
    this.logged.set(key, t)
    this.log[level](msg, fields)
  }

  private emitSafely<K extends keyof PeerLinkEvents>(event: K, ...args: PeerLinkEvents[K]): void {
    try {
      ;(this.emit as (e: K, ...a: PeerLinkEvents[K]) => boolean)(event, ...args)
    } catch (err) {
      this.log.error('peer link event listener threw', { event, err: err instanceof Error ? err.message : String(err) })
    }
  }
}

/** Write the segments, end the socket, and destroy it if the other side has not closed in 1 s. */
function endWith(socket: Socket, segments: Buffer[]): void {
  for (const s of segments) socket.write(s)
  socket.end()
  const timer = setTimeout(() => socket.destroy(), 1000)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
}
