// Peer-link handshake: a pure state machine (frames in, frames out; no sockets, no timers) that
// proves to each side that the other knows the shared peer_secret, without sending it.
//
// Flow (D = dialer, A = acceptor):
//
//   D -> A  HELLO {version, clusterId, nodeName, nonce_D}
//   A       checks the HELLO; refuses, or:
//   A -> D  HELLO {version, clusterId, nodeName, nonce_A}, PROOF_A
//   D       checks the HELLO and verifies PROOF_A; refuses, or:
//   D -> A  PROOF_D
//   A       verifies PROOF_D; refuses, or:
//   A -> D  ACCEPT                                  (A is done)
//   D       receives ACCEPT                         (D is done)
//
// The acceptor speaks only after a well-formed HELLO from our cluster, so a stranger learns
// nothing but a refusal. The dialer sends its proof only after verifying the acceptor's.
//
//   PROOF_X = HMAC-SHA256(secret, "iscsi-ha peer-link proof\0" ‖ sideLabel(X) ‖ u16 version ‖
//                                 lp(nonce_X) ‖ lp(nonce_Y) ‖ lp(name_X) ‖ lp(name_Y) ‖ lp(clusterId))
//
// where X is the sender, Y the receiver, sideLabel is "dialer\0" or "acceptor\0" and lp(v) is v
// behind its u16 byte length. Because the label, the order of the nonces and the order of the
// names all depend on who sends, a proof received from one side can never be passed off as the
// other side's (reflection), and both fresh nonces make every proof single-use (replay).
// Proofs are compared with crypto.timingSafeEqual.
//
// Refusals (REFUSE frame with a reason code, then the link closes the connection):
//   unsupported-version  HELLO.version differs from ours
//   cluster-mismatch     HELLO.clusterId differs (the peer runs another cluster's config)
//   own-name             the peer claims our own node name
//   unknown-node         the peer's name is not the configured peer
//   reflected-nonce      the peer's nonce is one of ours (this or another live handshake)
//   bad-secret           the proof does not verify (wrong peer_secret, or an impostor)
//   protocol             a frame out of order
//
// The handshake authenticates the peer when the connection opens; it does not encrypt or MAC
// the frames that follow. Run the peer link on a private network, as one would DRBD's.

import { createHmac, randomBytes as cryptoRandomBytes, timingSafeEqual } from 'node:crypto'
import {
  NONCE_LENGTH,
  PEER_PROTOCOL_VERSION,
  type Frame,
  type HandshakeFrame,
  type HelloFrame,
} from './codec.js'
import type { RefuseReason } from './errors.js'

export type HandshakeSide = 'dialer' | 'acceptor'

/** Nonces of the live handshakes of one node, as hex (a Set<string> fits). */
export interface NonceRegistry {
  has(hex: string): boolean
  add(hex: string): unknown
  delete(hex: string): unknown
}

export interface HandshakeOptions {
  /** Our node name. */
  self: string
  /** The configured peer's node name. */
  peer: string
  /** peer_secret (a string is used as UTF-8). */
  secret: string | Buffer
  /** A hash of the config's cluster identity; both nodes must have the same. */
  clusterId: string
  /** Which end of the TCP connection we are. */
  side: HandshakeSide
  /** Protocol version announced in HELLO (default PEER_PROTOCOL_VERSION; tests only). */
  version?: number
  /** Source of the nonce (default crypto.randomBytes; inject for deterministic tests). */
  randomBytes?: (n: number) => Buffer
  /** Nonces of this node's other live handshakes, to catch cross-connection reflection. */
  nonces?: NonceRegistry
}

export interface Refusal {
  reason: RefuseReason | string
  /** For our log: may name what we expected. */
  detail: string
  /** Who refused: we did (a REFUSE frame is in `send`), or the peer did (it sent REFUSE). */
  by: 'us' | 'peer'
}

export type HandshakeStatus = 'pending' | 'done' | 'refused'

export interface HandshakeStep {
  /** Frames to write, in order. */
  send: HandshakeFrame[]
  status: HandshakeStatus
  /** Set when this step refused the connection (status 'refused'). */
  refusal?: Refusal
}

type State = 'new' | 'await-hello' | 'await-proof' | 'await-accept' | 'done' | 'refused'

const PROOF_LABEL = Buffer.from('iscsi-ha peer-link proof\0', 'latin1')
const SIDE_LABEL: Record<HandshakeSide, Buffer> = {
  dialer: Buffer.from('dialer\0', 'latin1'),
  acceptor: Buffer.from('acceptor\0', 'latin1'),
}

function lp(v: Buffer): Buffer {
  const b = Buffer.allocUnsafe(2 + v.length)
  b.writeUInt16BE(v.length, 0)
  v.copy(b, 2)
  return b
}

/** The proof `sender` sends to `receiver` (see the file header). */
export function computeProof(
  secret: Buffer,
  p: {
    senderSide: HandshakeSide
    version: number
    senderNonce: Buffer
    receiverNonce: Buffer
    senderName: string
    receiverName: string
    clusterId: string
  },
): Buffer {
  const version = Buffer.allocUnsafe(2)
  version.writeUInt16BE(p.version & 0xffff, 0)
  return createHmac('sha256', secret)
    .update(PROOF_LABEL)
    .update(SIDE_LABEL[p.senderSide])
    .update(version)
    .update(lp(p.senderNonce))
    .update(lp(p.receiverNonce))
    .update(lp(Buffer.from(p.senderName, 'utf8')))
    .update(lp(Buffer.from(p.receiverName, 'utf8')))
    .update(lp(Buffer.from(p.clusterId, 'utf8')))
    .digest()
}

function short(v: string): string {
  return v.length > 16 ? `${v.slice(0, 12)}…` : v
}

export class Handshake {
  readonly side: HandshakeSide
  /** Our nonce for this connection. */
  readonly nonce: Buffer
  private readonly self: string
  private readonly peer: string
  private readonly secret: Buffer
  private readonly clusterId: string
  private readonly version: number
  private readonly nonces: NonceRegistry | undefined
  private readonly nonceHex: string
  private state: State = 'new'
  private peerHello: HelloFrame | undefined = undefined
  private outcome: Refusal | undefined = undefined

  constructor(opts: HandshakeOptions) {
    if (typeof opts.self !== 'string' || opts.self.length === 0) throw new TypeError('self must be a non-empty name')
    if (typeof opts.peer !== 'string' || opts.peer.length === 0) throw new TypeError('peer must be a non-empty name')
    if (opts.self === opts.peer) throw new RangeError('self and peer must be different node names')
    const secret = typeof opts.secret === 'string' ? Buffer.from(opts.secret, 'utf8') : opts.secret
    if (!Buffer.isBuffer(secret) || secret.length === 0) throw new TypeError('secret must be non-empty')
    this.side = opts.side
    this.self = opts.self
    this.peer = opts.peer
    this.secret = secret
    this.clusterId = opts.clusterId
    this.version = opts.version ?? PEER_PROTOCOL_VERSION
    const nonce = (opts.randomBytes ?? cryptoRandomBytes)(NONCE_LENGTH)
    if (!Buffer.isBuffer(nonce) || nonce.length !== NONCE_LENGTH) {
      throw new RangeError(`randomBytes must return ${NONCE_LENGTH} bytes`)
    }
    this.nonce = Buffer.from(nonce)
    this.nonceHex = this.nonce.toString('hex')
    this.nonces = opts.nonces
    this.nonces?.add(this.nonceHex)
  }

  get status(): HandshakeStatus {
    return this.state === 'done' ? 'done' : this.state === 'refused' ? 'refused' : 'pending'
  }

  /** The refusal that ended the handshake, if it was refused. */
  get refusal(): Refusal | undefined {
    return this.outcome
  }

  /** The peer's HELLO name (once received and accepted). */
  get peerName(): string | undefined {
    return this.peerHello?.nodeName
  }

  /** The peer's nonce (once its HELLO was accepted). */
  get peerNonce(): Buffer | undefined {
    return this.peerHello?.nonce
  }

  /** Begin: the dialer sends HELLO, the acceptor waits for the dialer's. */
  start(): HandshakeStep {
    if (this.state !== 'new') return this.idle()
    this.state = 'await-hello'
    return { send: this.side === 'dialer' ? [this.hello()] : [], status: 'pending' }
  }

  /** Feed one received frame. Never throws. */
  receive(frame: Frame): HandshakeStep {
    if (this.state === 'done' || this.state === 'refused') return this.idle()
    if (this.state === 'new') this.start()
    if (frame.type === 'refuse') {
      this.state = 'refused'
      this.outcome = {
        reason: frame.reason,
        detail: frame.detail.length > 0 ? frame.detail : `the peer refused the connection (${frame.reason})`,
        by: 'peer',
      }
      this.dispose()
      return { send: [], status: 'refused', refusal: this.outcome }
    }
    switch (this.state) {
      case 'await-hello':
        if (frame.type !== 'hello') return this.unexpected(frame)
        return this.onHello(frame)
      case 'await-proof':
        if (frame.type !== 'proof') return this.unexpected(frame)
        return this.onProof(frame.proof)
      case 'await-accept':
        if (frame.type !== 'accept') return this.unexpected(frame)
        this.state = 'done'
        this.dispose()
        return { send: [], status: 'done' }
      default:
        return this.idle()
    }
  }

  /**
   * Refuse the connection for a reason found outside the handshake (a framing error, a
   * timeout, a frame that breaks the protocol after the handshake). Returns the REFUSE frame
   * to send; a no-op once refused.
   */
  refuse(reason: RefuseReason, detail: string, wireDetail: string = detail): HandshakeStep {
    if (this.state === 'refused') return this.idle()
    return this.refuseStep(reason, detail, wireDetail)
  }

  /** Forget our nonce in the shared registry (done automatically when the handshake ends). */
  dispose(): void {
    this.nonces?.delete(this.nonceHex)
  }

  private idle(): HandshakeStep {
    const step: HandshakeStep = { send: [], status: this.status }
    if (this.outcome !== undefined) step.refusal = this.outcome
    return step
  }

  private hello(): HelloFrame {
    return { type: 'hello', version: this.version, clusterId: this.clusterId, nodeName: this.self, nonce: this.nonce }
  }

  private onHello(h: HelloFrame): HandshakeStep {
    if (h.version !== this.version) {
      const d = `peer speaks peer-link protocol version ${h.version}, this node speaks ${this.version}`
      return this.refuseStep('unsupported-version', d)
    }
    if (h.clusterId !== this.clusterId) {
      return this.refuseStep(
        'cluster-mismatch',
        `node '${h.nodeName}' belongs to another cluster (cluster id ${short(h.clusterId)}, ` +
          `ours ${short(this.clusterId)}): is it running another cluster's config?`,
        'cluster id differs: the two nodes run different clusters\' configs',
      )
    }
    if (h.nodeName === this.self) {
      return this.refuseStep(
        'own-name',
        `the peer claims our own node name '${this.self}' (both configs name the same node, or a reflection)`,
        'the peer claims the node name of the node it is talking to',
      )
    }
    if (h.nodeName !== this.peer) {
      return this.refuseStep(
        'unknown-node',
        `node '${h.nodeName}' is not the configured peer '${this.peer}'`,
        `node name '${h.nodeName}' is not this node's configured peer`,
      )
    }
    if (h.nonce.equals(this.nonce) || (this.nonces !== undefined && this.nonces.has(h.nonce.toString('hex')))) {
      return this.refuseStep('reflected-nonce', 'the peer sent back one of our own nonces (reflection attempt)')
    }
    this.peerHello = h
    this.state = 'await-proof'
    if (this.side === 'acceptor') {
      return { send: [this.hello(), { type: 'proof', proof: this.ourProof(h) }], status: 'pending' }
    }
    return { send: [], status: 'pending' }
  }

  private onProof(proof: Buffer): HandshakeStep {
    const h = this.peerHello!
    const expected = computeProof(this.secret, {
      senderSide: this.side === 'dialer' ? 'acceptor' : 'dialer',
      version: this.version,
      senderNonce: h.nonce,
      receiverNonce: this.nonce,
      senderName: h.nodeName,
      receiverName: this.self,
      clusterId: this.clusterId,
    })
    if (proof.length !== expected.length || !timingSafeEqual(proof, expected)) {
      return this.refuseStep(
        'bad-secret',
        `node '${h.nodeName}' failed authentication: its peer_secret differs from ours (or it is an impostor)`,
        'authentication failed: peer_secret differs',
      )
    }
    if (this.side === 'dialer') {
      this.state = 'await-accept'
      return { send: [{ type: 'proof', proof: this.ourProof(h) }], status: 'pending' }
    }
    this.state = 'done'
    this.dispose()
    return { send: [{ type: 'accept' }], status: 'done' }
  }

  private ourProof(h: HelloFrame): Buffer {
    return computeProof(this.secret, {
      senderSide: this.side,
      version: this.version,
      senderNonce: this.nonce,
      receiverNonce: h.nonce,
      senderName: this.self,
      receiverName: h.nodeName,
      clusterId: this.clusterId,
    })
  }

  private unexpected(frame: Frame): HandshakeStep {
    const d = `unexpected ${frame.type} frame during the handshake (waiting for ${this.state.slice(6)})`
    return this.refuseStep('protocol', d)
  }

  private refuseStep(reason: RefuseReason, detail: string, wireDetail: string = detail): HandshakeStep {
    this.state = 'refused'
    this.outcome = { reason, detail, by: 'us' }
    this.dispose()
    return { send: [{ type: 'refuse', reason, detail: wireDetail }], status: 'refused', refusal: this.outcome }
  }
}
