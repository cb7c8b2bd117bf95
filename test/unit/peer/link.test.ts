// Two PeerLinks on 127.0.0.1 ephemeral ports, plus raw sockets playing strangers.

import { afterEach, describe, expect, it } from 'vitest'
import { connect, type Socket } from 'node:net'
import type { PeerMessage, Role } from '../../../src/ha/types.js'
import { createLogger, type Logger } from '../../../src/node/log.js'
import { FrameDecoder, PEER_PROTOCOL_VERSION, encodeFrameToBuffer, type Frame } from '../../../src/peer/codec.js'
import { Handshake, computeProof } from '../../../src/peer/handshake.js'
import { PeerLink, type PeerAddress, type PeerLinkOptions } from '../../../src/peer/link.js'
import { entry, pattern } from './fixtures.js'

const CLUSTER = 'ab'.repeat(32)
const SECRET = 's3cret-peer-key'

interface Node {
  link: PeerLink
  epoch: number
  role: Role
  messages: PeerMessage[]
  events: string[]
  logs: { level: string; msg: string; fields: Record<string, unknown> }[]
}

const links: PeerLink[] = []

afterEach(async () => {
  await Promise.all(links.splice(0).map((l) => l.stop()))
})

function captureLogger(into: Node['logs']): Logger {
  return createLogger({
    level: 'debug',
    write: (line) => {
      const { level, msg, ts: _ts, ...fields } = JSON.parse(line) as Record<string, unknown>
      into.push({ level: String(level), msg: String(msg), fields })
    },
  })
}

function node(self: string, peer: string, connectTo: () => PeerAddress | undefined, over: Partial<PeerLinkOptions> = {}): Node {
  const n: Node = { link: undefined as unknown as PeerLink, epoch: 1, role: self === 'alpha' ? 'primary' : 'secondary', messages: [], events: [], logs: [] }
  n.link = new PeerLink({
    self,
    peer,
    listen: { host: '127.0.0.1', port: 0 },
    connect: connectTo,
    secret: SECRET,
    clusterId: CLUSTER,
    epoch: () => n.epoch,
    role: () => n.role,
    journalEntries: () => 3,
    log: captureLogger(n.logs),
    ...over,
  })
  n.link.on('message', (m) => n.messages.push(m))
  n.link.on('up', () => n.events.push('up'))
  n.link.on('down', (r) => n.events.push(`down:${r}`))
  n.link.on('refused', (r, info) => n.events.push(`refused:${info.by}:${r}`))
  links.push(n.link)
  return n
}

/** alpha < beta: alpha is the selector. */
async function pair(over: Partial<PeerLinkOptions> = {}): Promise<{ a: Node; b: Node }> {
  const holder: { a?: Node; b?: Node } = {}
  const a = node('alpha', 'beta', () => holder.b?.link.address, over)
  const b = node('beta', 'alpha', () => holder.a?.link.address, over)
  holder.a = a
  holder.b = b
  await a.link.start()
  await b.link.start()
  return { a, b }
}

async function waitFor(cond: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** A raw client socket that collects the frames it receives. */
async function rawClient(to: PeerAddress): Promise<{ socket: Socket; frames: Frame[]; closed: Promise<void>; error: () => unknown }> {
  const socket = connect(to.port, to.host)
  const frames: Frame[] = []
  let err: unknown
  const d = new FrameDecoder({ onFrame: (f) => frames.push(f) })
  socket.on('data', (c) => {
    try {
      d.push(c)
    } catch (e) {
      err = e
    }
  })
  socket.on('error', () => {})
  const closed = new Promise<void>((r) => socket.once('close', () => r()))
  await new Promise<void>((r) => socket.once('connect', () => r()))
  return { socket, frames, closed, error: () => err }
}

describe('PeerLink', () => {
  it('comes up with exactly one connection, exchanges heartbeats and measures RTT', async () => {
    const { a, b } = await pair()
    await waitFor(() => a.link.up && b.link.up, 3000, 'link up')
    await waitFor(() => a.link.rttMs !== undefined && b.link.rttMs !== undefined, 1000, 'rtt')
    await sleep(250)
    expect(a.link.connections).toBe(1)
    expect(b.link.connections).toBe(1)
    expect(a.events).toEqual(['up'])
    expect(b.events).toEqual(['up'])
    expect(a.link.rttMs!).toBeGreaterThanOrEqual(0)
    expect(a.link.rttMs!).toBeLessThan(100)
    expect(a.link.peerRole).toBe('secondary')
    expect(b.link.peerRole).toBe('primary')
    expect(b.link.peerEpoch).toBe(1)
    expect(b.link.peerJournalEntries).toBe(3)
    const beats = b.messages.filter((m) => m.type === 'heartbeat')
    expect(beats.length).toBeGreaterThanOrEqual(2)
    expect(beats[0]).toMatchObject({ epoch: 1, role: 'primary', journalEntries: 3 })
    expect(b.messages.some((m) => m.type === 'heartbeat-ack')).toBe(true)
    expect(a.link.lastHeardMs).toBeDefined()
    const st = a.link.status()
    expect(st).toMatchObject({ up: true, peer: 'beta', peerRole: 'secondary', staleRefused: 0, ups: 1, downs: 0 })
    expect(a.logs.some((l) => l.msg === 'peer link up')).toBe(true)
  })

  it('keeps exactly one connection when both nodes start and dial at the same moment', async () => {
    for (let round = 0; round < 5; round++) {
      const holder: { a?: Node; b?: Node } = {}
      const a = node('alpha', 'beta', () => holder.b?.link.address, { reconnectMinMs: 5 })
      const b = node('beta', 'alpha', () => holder.a?.link.address, { reconnectMinMs: 5 })
      holder.a = a
      holder.b = b
      await Promise.all([a.link.start(), b.link.start()])
      await waitFor(() => a.link.up && b.link.up, 3000, 'up')
      await sleep(60)
      expect([a.link.connections, b.link.connections]).toEqual([1, 1])
      expect([a.events, b.events]).toEqual([['up'], ['up']])
      await Promise.all([a.link.stop(), b.link.stop()])
    }
  })

  it('replaces a half-open link when the peer comes back on a new connection', async () => {
    // Dead after 1 s; a link silent for max(2 × heartbeat, deadAfter / 2) = 500 ms is suspect.
    const { a, b } = await pair({ deadAfterMs: 1000 })
    await waitFor(() => a.link.up && b.link.up)
    // The old beta goes silent without closing its socket (as if its machine froze) ...
    b.link.pauseHeartbeats()
    await sleep(600)
    // ... and a new beta process dials in before alpha's dead timer fires.
    const b2 = node('beta', 'alpha', () => a.link.address)
    await b2.link.start()
    await waitFor(() => b2.link.up, 2000, 'new beta up')
    expect(a.events.slice(0, 3)).toEqual(['up', 'down:replaced by a new connection from the peer', 'up'])
    await waitFor(() => b.events.includes('down:closed by the peer (replaced)'), 1000, 'old beta told')
    await b.link.stop()
    expect(a.link.up).toBe(true)
    expect(a.link.send({ type: 'copy-ack', epoch: 1, seq: 3, count: 1 })).toBe(true)
    await waitFor(() => b2.messages.some((m) => m.type === 'copy-ack'))
  })

  it('delivers 1 MiB copy frames with their data intact, and the acks back', async () => {
    const { a, b } = await pair()
    await waitFor(() => a.link.up && b.link.up)
    b.link.on('message', (m) => {
      if (m.type === 'copy') b.link.send({ type: 'copy-ack', epoch: m.entry.epoch, seq: m.entry.seq, count: 1 })
    })
    const sent = [1, 2, 3].map((seq) => entry(pattern(1 << 20, seq), { seq, epoch: 1 }))
    for (const e of sent) expect(a.link.send({ type: 'copy', entry: e })).toBe(true)
    await waitFor(() => a.messages.filter((m) => m.type === 'copy-ack').length === 3, 5000, 'acks')
    const got = b.messages.filter((m): m is Extract<PeerMessage, { type: 'copy' }> => m.type === 'copy')
    expect(got.map((m) => m.entry.seq)).toEqual([1, 2, 3])
    for (let i = 0; i < 3; i++) {
      // The received data is owned by the listener: it is still intact after later frames.
      expect(got[i]!.entry.data!.equals(sent[i]!.data!)).toBe(true)
      expect(got[i]!.entry).toMatchObject({ key: sent[i]!.key, offset: sent[i]!.offset, checksum: sent[i]!.checksum })
    }
  })

  it('declares down when the other side stops, and reconnects when it comes back', async () => {
    const holder: { b?: Node } = {}
    const a = node('alpha', 'beta', () => holder.b?.link.address)
    holder.b = node('beta', 'alpha', () => a.link.address)
    await a.link.start()
    await holder.b.link.start()
    await waitFor(() => a.link.up)
    await holder.b.link.stop()
    await waitFor(() => !a.link.up, 1000, 'down')
    expect(a.events).toEqual(['up', 'down:closed by the peer (shutdown)'])
    // A new beta process (on a new port) comes back.
    holder.b = node('beta', 'alpha', () => a.link.address)
    await holder.b.link.start()
    await waitFor(() => a.link.up && holder.b!.link.up, 3000, 'reconnect')
    expect(a.events.at(-1)).toBe('up')
    expect(a.link.send({ type: 'copy-ack', epoch: 1, seq: 5, count: 1 })).toBe(true)
    await waitFor(() => holder.b!.messages.some((m) => m.type === 'copy-ack'))
  })

  it('declares down when the peer goes silent, and recovers when it speaks again', async () => {
    const { a, b } = await pair()
    await waitFor(() => a.link.up && b.link.up)
    const t0 = Date.now()
    b.link.pauseHeartbeats()
    await waitFor(() => !a.link.up, 2000, 'silence detected')
    const took = Date.now() - t0
    // Last heard at most one heartbeat interval before the pause; dead after 400 ms.
    expect(took).toBeGreaterThanOrEqual(250)
    expect(took).toBeLessThan(2000)
    expect(a.events[1]).toMatch(/^down:timeout: nothing heard from the peer for \d+ ms$/)
    // The partner sees the orderly close.
    await waitFor(() => b.events.includes('down:closed by the peer (timeout)'), 1000, 'b down')
    b.link.pauseHeartbeats(false)
    await waitFor(() => a.link.up && b.link.up, 3000, 'back up')
    const ups = a.link.status().ups
    await sleep(600)
    expect(a.link.up).toBe(true)
    expect(a.link.status().ups).toBe(ups)
  })

  it('refuses stale-epoch messages, delivers higher epochs, and naks a stale copy', async () => {
    const { a, b } = await pair()
    await waitFor(() => a.link.up && b.link.up && a.link.rttMs !== undefined)
    a.epoch = 5 // alpha took over; beta still believes epoch 1
    const before = a.messages.length
    expect(b.link.send({ type: 'complete', epoch: 1, seqs: [1] })).toBe(true)
    expect(b.link.send({ type: 'copy', entry: entry(pattern(512, 1), { epoch: 1, seq: 77 }) })).toBe(true)
    expect(b.link.send({ type: 'handover-ready', epoch: 6, lastSeq: 9 })).toBe(true)
    await waitFor(() => a.messages.some((m) => m.type === 'handover-ready'))
    const fresh = a.messages.slice(before).filter((m) => m.type !== 'heartbeat' && m.type !== 'heartbeat-ack')
    expect(fresh).toEqual([{ type: 'handover-ready', epoch: 6, lastSeq: 9 }])
    expect(a.link.staleRefused).toBeGreaterThanOrEqual(2)
    await waitFor(() => b.messages.some((m) => m.type === 'copy-nak'))
    expect(b.messages.find((m) => m.type === 'copy-nak')).toMatchObject({ epoch: 5, seq: 77, reason: expect.stringMatching(/^stale-epoch/) })
    // beta's heartbeats (epoch 1) are refused too, but still show beta's epoch in status.
    await sleep(250)
    expect(a.messages.slice(before).some((m) => m.type === 'heartbeat')).toBe(false)
    expect(a.link.peerEpoch).toBe(1)
    expect(a.link.up).toBe(true)
    expect(a.logs.some((l) => l.msg === 'refused a stale-epoch message from the peer')).toBe(true)
  })

  it('refuses garbage, an HTTP request and a wrong secret while staying up for the real peer', async () => {
    const { a, b } = await pair()
    await waitFor(() => a.link.up && b.link.up)
    const addr = a.link.address!

    const garbage = await rawClient(addr)
    garbage.socket.write(Buffer.from([0x00, 0x01, 0x02, 0x03, 0xff]))
    await garbage.closed
    expect(garbage.frames).toEqual([{ type: 'refuse', reason: 'not-peer-protocol', detail: expect.any(String) }])

    const http = await rawClient(addr)
    http.socket.write('GET /metrics HTTP/1.1\r\nHost: alpha\r\n\r\n')
    await http.closed
    expect(http.frames[0]).toMatchObject({ type: 'refuse', reason: 'not-peer-protocol' })
    const refusedLines = a.logs.filter((l) => l.msg === 'refused a peer-link connection')
    expect(refusedLines[0]).toMatchObject({ level: 'warn', fields: { reason: 'not-peer-protocol' } })
    // The same reason from the same address again within 10 s is logged at debug (flood control).
    expect(refusedLines[1]).toMatchObject({ level: 'debug', fields: { detail: expect.stringMatching(/an HTTP request/) } })

    // An impostor that knows the names and the cluster but not the secret.
    const imp = await rawClient(addr)
    const hs = new Handshake({ self: 'beta', peer: 'alpha', secret: 'wrong', clusterId: CLUSTER, side: 'dialer' })
    for (const f of hs.start().send) imp.socket.write(encodeFrameToBuffer(f))
    await waitFor(() => imp.frames.length >= 2, 1000, 'acceptor hello + proof')
    const hello = imp.frames[0]!
    expect(hello.type).toBe('hello')
    const forged = computeProof(Buffer.from('wrong'), {
      senderSide: 'dialer',
      version: PEER_PROTOCOL_VERSION,
      senderNonce: hs.nonce,
      receiverNonce: hello.type === 'hello' ? hello.nonce : Buffer.alloc(32),
      senderName: 'beta',
      receiverName: 'alpha',
      clusterId: CLUSTER,
    })
    imp.socket.write(encodeFrameToBuffer({ type: 'proof', proof: forged }))
    await imp.closed
    expect(imp.frames.at(-1)).toMatchObject({ type: 'refuse', reason: 'bad-secret' })

    // A node from another cluster, and an oversized frame before authentication.
    const big = await rawClient(addr)
    const header = encodeFrameToBuffer({ type: 'select' })
    header.writeUInt32BE(1 << 20, 8)
    big.socket.write(header)
    await big.closed
    expect(big.frames[0]).toMatchObject({ type: 'refuse', reason: 'frame-too-long' })

    const other = node('gamma', 'alpha', () => addr, { clusterId: 'cd'.repeat(32) })
    await other.link.start()
    await waitFor(() => other.events.includes('refused:peer:cluster-mismatch'), 2000, 'cluster refusal')
    await other.link.stop()

    expect(Object.fromEntries(a.link.refusals)).toMatchObject({ 'not-peer-protocol': 2, 'bad-secret': 1, 'frame-too-long': 1 })
    expect(a.link.refusals.get('cluster-mismatch') ?? 0).toBeGreaterThanOrEqual(1)
    expect(a.events.filter((e) => e.startsWith('refused:us:')).length).toBeGreaterThanOrEqual(5)
    // The real link never noticed.
    expect(a.events.filter((e) => !e.startsWith('refused'))).toEqual(['up'])
    expect(a.link.up && b.link.up).toBe(true)
    expect(a.link.send({ type: 'copy-ack', epoch: 1, seq: 1, count: 1 })).toBe(true)
    await waitFor(() => b.messages.some((m) => m.type === 'copy-ack'))
  })

  it('drops a connection that never completes the handshake', async () => {
    const { a } = await pair({ handshakeTimeoutMs: 200 })
    await waitFor(() => a.link.up)
    const idle = await rawClient(a.link.address!)
    await idle.closed
    expect(idle.frames[0]).toMatchObject({ type: 'refuse', reason: 'handshake-timeout' })
    expect(a.link.up).toBe(true)
  })

  it('bounds unauthenticated connections (a connection flood cannot starve the link)', async () => {
    const { a, b } = await pair({ maxPendingConnections: 2 })
    await waitFor(() => a.link.up && b.link.up)
    const idle1 = await rawClient(a.link.address!)
    const idle2 = await rawClient(a.link.address!)
    await waitFor(() => a.link.connections === 3, 1000, 'two pending')
    const third = await rawClient(a.link.address!)
    await third.closed
    expect(third.frames[0]).toMatchObject({ type: 'refuse', reason: 'too-many-connections' })
    expect(a.link.refusals.get('too-many-connections')).toBe(1)
    idle1.socket.destroy()
    idle2.socket.destroy()
    expect(a.link.up).toBe(true)
  })

  it('send() returns false when down, and under back-pressure without queueing', async () => {
    const { a, b } = await pair({ maxBufferedBytes: 64 * 1024 })
    expect(a.link.send({ type: 'copy-ack', epoch: 1, seq: 1, count: 1 })).toBe(false)
    await waitFor(() => a.link.up && b.link.up)
    const data = pattern(256 * 1024, 3)
    let accepted = 0
    let refused = 0
    for (let seq = 1; seq <= 8; seq++) {
      if (a.link.send({ type: 'copy', entry: entry(data, { seq, epoch: 1 }) })) accepted++
      else refused++
    }
    // The first frame always goes; the rest of this tick is over the bound.
    expect(accepted).toBe(1)
    expect(refused).toBe(7)
    await new Promise<void>((r) => a.link.once('drain', () => r()))
    expect(a.link.send({ type: 'copy', entry: entry(data, { seq: 9, epoch: 1 }) })).toBe(true)
    await waitFor(() => b.messages.filter((m) => m.type === 'copy').length === 2, 3000, 'copies')
  })

  it('validates its options', () => {
    const base = {
      self: 'x',
      peer: 'y',
      listen: { host: '127.0.0.1', port: 0 },
      connect: { host: '127.0.0.1', port: 1 },
      secret: 's',
      clusterId: 'c',
      epoch: () => 1,
      role: (): Role => 'primary',
      journalEntries: () => 0,
      log: createLogger({ write: () => {} }),
    }
    expect(() => new PeerLink({ ...base, peer: 'x' })).toThrow(RangeError)
    expect(() => new PeerLink({ ...base, secret: '' })).toThrow(TypeError)
    expect(() => new PeerLink({ ...base, deadAfterMs: 0 })).toThrow(RangeError)
  })
})
