// The edge: TCP sockets in, one IscsiConnection per socket. Everything protocol-shaped is in
// src/iscsi and src/wire; this file moves bytes, gathers writes and applies back-pressure.

import { createServer, type Server, type Socket } from 'node:net'
import { PduParser, encodePdu, isWireError } from '../wire/index.js'
import { RejectReason, type TargetPdu } from '../wire/pdu.js'
import { IscsiConnection, type ConnectionDeps } from '../iscsi/connection.js'
import type { Logger } from './log.js'
import { formatHostPort } from '../config/index.js'

/** RFC 7143 §13.12: MaxRecvDataSegmentLength is 8192 until the login negotiates otherwise. */
const LOGIN_MAX_SEGMENT = 8192

export interface PortalOptions {
  log: Logger
  /** Connections beyond this are accepted and closed at once (login flood defence). */
  maxConnections: number
  makeDeps(io: ConnectionDeps['io'], remote: string, local: string): Omit<ConnectionDeps, 'io' | 'remote' | 'local'>
  onDropped?(reason: string): void
  /** A connection closed on arrival because maxConnections were already open. */
  onRefused?(remote: string): void
}

export interface LiveConnection {
  socket: Socket
  connection: IscsiConnection
}

export class Portal {
  /** One listener per address: a controller's own portal, and the service address while it holds it. */
  private readonly servers = new Map<string, Server>()
  readonly live = new Set<LiveConnection>()

  constructor(private readonly opts: PortalOptions) {}

  get listening(): string[] {
    return [...this.servers.keys()]
  }

  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    const key = formatHostPort(host, port)
    if (this.servers.has(key)) return { host, port }
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket))
    server.maxConnections = this.opts.maxConnections
    server.on('drop', (d) => this.opts.onRefused?.(d ? `${d.remoteAddress}:${d.remotePort}` : 'unknown'))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    server.on('error', (err) => this.opts.log.error('portal error', { address: key, error: String(err) }))
    this.servers.set(key, server)
    const addr = server.address()
    return typeof addr === 'object' && addr ? { host: addr.address, port: addr.port } : { host, port }
  }

  /** Stop accepting on one address (existing connections are left to dropAll). */
  async unlisten(host: string, port: number): Promise<void> {
    const key = formatHostPort(host, port)
    const server = this.servers.get(key)
    if (!server) return
    this.servers.delete(key)
    await new Promise<void>((res) => server.close(() => res()))
  }

  /**
   * Fencing: every connection goes now, without waiting for the initiator. Tasks are aborted;
   * resolves when their in-flight storage work is over.
   */
  async dropAll(reason: string): Promise<void> {
    const live = [...this.live]
    for (const c of live) c.socket.destroy()
    await Promise.all(live.map((c) => c.connection.shutdown(reason)))
  }

  /** Clock for every connection: NOP pings, login timeouts. */
  tick(): void {
    for (const c of this.live) c.connection.onTick()
  }

  async close(): Promise<void> {
    const servers = [...this.servers.values()]
    this.servers.clear()
    const closed = Promise.all(servers.map((s) => new Promise<void>((res) => s.close(() => res()))))
    await Promise.all([...this.live].map((c) => c.connection.shutdown('node stopping')))
    for (const c of this.live) c.socket.destroy()
    await closed
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 10_000)
    const remote = `${socket.remoteAddress}:${socket.remotePort}`
    const local = `${socket.localAddress}:${socket.localPort}`
    const log = this.opts.log

    let headerDigest = false
    let dataDigest = false
    let pending: Buffer[] = []
    let flushScheduled = false
    let closing = false

    // Responses produced in one turn of the event loop leave in one gathered write.
    const flush = (): void => {
      flushScheduled = false
      if (socket.destroyed) return
      if (pending.length === 0) {
        if (closing) socket.end()
        return
      }
      const out = pending
      pending = []
      socket.cork()
      for (const b of out) socket.write(b)
      socket.uncork()
      if (closing) socket.end()
    }

    const io: ConnectionDeps['io'] = {
      send(pdu: TargetPdu) {
        // Serialized now: a digest change after the final login response must not touch it.
        for (const seg of encodePdu(pdu, { headerDigest, dataDigest })) pending.push(seg)
        if (!flushScheduled) {
          flushScheduled = true
          setImmediate(flush)
        }
      },
      setDigests(h, d) {
        headerDigest = h
        dataDigest = d
        parser.headerDigest = h
        parser.dataDigest = d
      },
      setMaxRecvDataSegmentLength(bytes) {
        parser.maxDataSegmentLength = bytes
      },
      close() {
        closing = true
        if (!flushScheduled) {
          flushScheduled = true
          setImmediate(flush)
        }
        // A peer that stops reading must not pin the socket open.
        setTimeout(() => socket.destroy(), 2000).unref()
      },
    }

    const connection = new IscsiConnection({ ...this.opts.makeDeps(io, remote, local), io, remote, local })
    const parser = new PduParser({
      direction: 'target',
      maxDataSegmentLength: LOGIN_MAX_SEGMENT,
      retainChunks: true,
      onPdu: (pdu) => connection.onPdu(pdu),
      onError: (err, header) => connection.onRecoverableError(err.rejectReason ?? RejectReason.ProtocolError, header),
    })
    const entry: LiveConnection = { socket, connection }
    this.live.add(entry)

    let unframeable = false
    socket.on('data', (chunk: Buffer) => {
      if (unframeable) return // already answered and closing: the rest is not read
      try {
        parser.push(chunk)
      } catch (err) {
        unframeable = true
        // Framing lost (bad header digest, oversized segment): the stream cannot be
        // resynchronised, so the connection goes, with a Reject first where one is owed
        // (RFC 7143 §7.2). The node serves everyone else.
        log.warn('dropping connection: unframeable input', { remote, error: String(err) })
        this.opts.onDropped?.(String(err))
        if (isWireError(err) && err.rejectReason !== undefined && err.bhs) connection.onFatalFraming(err.rejectReason, err.bhs)
        else socket.destroy()
      }
      // Back-pressure: stop reading while the initiator is not reading our answers.
      if (socket.writableNeedDrain) {
        socket.pause()
        socket.once('drain', () => socket.resume())
      }
    })
    socket.on('error', (err) => log.debug('socket error', { remote, error: String(err) }))
    socket.on('close', () => {
      this.live.delete(entry)
      void connection.onClosed()
    })
  }
}
