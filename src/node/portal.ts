// The edge: TCP sockets in, one IscsiConnection per socket. Everything protocol-shaped is in
// src/iscsi and src/wire; this file moves bytes, gathers writes and applies back-pressure.

import { createServer, type Server, type Socket } from 'node:net'
import { PduParser, encodePdu, isWireError } from '../wire/index.js'
import { RejectReason, type TargetPdu } from '../wire/pdu.js'
import { IscsiConnection, type ConnectionDeps } from '../iscsi/connection.js'
import type { Logger } from './log.js'

/** RFC 7143 §13.12: MaxRecvDataSegmentLength is 8192 until the login negotiates otherwise. */
const LOGIN_MAX_SEGMENT = 8192

export interface PortalOptions {
  host: string
  port: number
  log: Logger
  /** Connections beyond this are accepted and closed at once (login flood defence). */
  maxConnections: number
  makeDeps(io: ConnectionDeps['io'], remote: string, local: string): Omit<ConnectionDeps, 'io' | 'remote' | 'local'>
  onDropped?(reason: string): void
}

export interface LiveConnection {
  socket: Socket
  connection: IscsiConnection
}

export class Portal {
  private server: Server | undefined
  readonly live = new Set<LiveConnection>()

  constructor(private readonly opts: PortalOptions) {}

  async listen(): Promise<{ host: string; port: number }> {
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket))
    this.server = server
    server.maxConnections = this.opts.maxConnections
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    server.on('error', (err) => this.opts.log.error('portal error', { error: String(err) }))
    const addr = server.address()
    return typeof addr === 'object' && addr ? { host: addr.address, port: addr.port } : { host: this.opts.host, port: this.opts.port }
  }

  /** Clock for every connection: NOP pings, login timeouts. */
  tick(): void {
    for (const c of this.live) c.connection.onTick()
  }

  async close(): Promise<void> {
    const server = this.server
    this.server = undefined
    const closed = server ? new Promise<void>((res) => server.close(() => res())) : Promise.resolve()
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
      if (pending.length === 0 || socket.destroyed) return
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
      onPdu: (pdu) => connection.onPdu(pdu),
      onError: (err, header) => connection.onRecoverableError(err.rejectReason ?? RejectReason.ProtocolError, header),
    })
    const entry: LiveConnection = { socket, connection }
    this.live.add(entry)

    socket.on('data', (chunk: Buffer) => {
      try {
        parser.push(chunk)
      } catch (err) {
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
