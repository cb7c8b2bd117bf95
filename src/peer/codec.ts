// Peer-link frame codec: bytes <-> PeerMessage (src/ha/types.ts) and the link's control frames
// (handshake, selection, close). Pure: no sockets, no timers.
//
// Frame layout (all integers big-endian):
//
//   offset size field
//   0      4    magic 0x89 'I' 'H' 'P' (0x89 is not ASCII, so no text protocol, TLS record or
//               iSCSI PDU starts with it)
//   4      1    protocol version (PEER_PROTOCOL_VERSION)
//   5      1    frame type (FrameType)
//   6      1    flags: FrameFlag.Discard (0x01) on a copy frame; every other bit, and any flag on
//               another frame type, is refused
//   7      1    reserved: must be zero
//   8      4    payload length P
//   12     4    data length D (copy frames of writes only; zero for every other frame)
//   16     4    CRC32C over bytes 0..15 and the P payload bytes
//   20     P    payload: the frame's fields (see encodePayload below)
//   20+P   D    data segment: a copy's JournalEntry.data
//
// A copy frame carries a JournalEntry. Without flags it is a write: its data is the data
// segment. With FrameFlag.Discard it is a discard (DiscardEntry: the range reads as zeros): the
// payload ends with the range length (u64), there is no data segment, and the entry's checksum is
// discardChecksum(offset, length) (src/journal/entry.ts), which the decoder verifies as it does a
// write's data CRC. Version 2 of the protocol added the flag; version 1 peers are refused at the
// handshake (HELLO version) and by the frame header's version byte, never at their first discard.
//
// The data segment is not covered by the frame CRC: it is covered by the JournalEntry's own
// `checksum` (CRC32C of the data), which sits in the CRC-covered payload. The decoder verifies
// both, so every byte of a frame is checked exactly once and the sender never reads the data.
//
// Field encodings inside the payload:
//   u8 / u16 / u32   unsigned integers
//   u64              a non-negative safe integer (< 2^53) as a 64-bit unsigned integer
//   f64              an IEEE 754 double (timestamps in ms; must be finite)
//   str8 / str16     UTF-8 bytes behind a u8 / u16 byte count
//   role             u8: 1 primary, 2 secondary, 3 candidate, 4 fenced, 5 stopped
//
// A lun-sizes frame (also version 2) carries epoch u64, a u16 count of at most MAX_REPORTED_LUNS,
// then per LUN: target str8, lun u32, sizeBytes u64.
//
// A copy-ack frame carries epoch u64, seq u64, count u32 (version 3; version 2 had no count): it
// confirms the count copies seq … seq+count-1, so a secondary confirms a run of copies that
// arrived together with one frame instead of one frame each.
//
// Decoding (FrameDecoder).
//  - push(chunk) feeds received bytes; onFrame is called once per complete frame, in order.
//  - Buffering follows src/wire/parser.ts: one receive buffer with [start, end) cursors. A chunk
//    with nothing left over before it is parsed in place; otherwise it is appended to an owned
//    store that is compacted or grown by doubling (never Buffer.concat per chunk). A frame larger
//    than BIG_FRAME_THRESHOLD that is not complete in the buffer is assembled in a buffer of
//    exactly its size, so the store stays small and the data needs no further copy.
//  - Errors: every error is a PeerProtocolError (codes PEER_BAD_MAGIC, PEER_BAD_VERSION,
//    PEER_BAD_CRC, PEER_FRAME_TOO_LONG, PEER_MALFORMED, PEER_BAD_CHECKSUM) and fatal: the decoder
//    enters a failed state, push() throws it, and every later push() throws the same object.
//    Frames that preceded it in the same chunk were delivered. The magic is checked byte by byte
//    as it arrives and the version as soon as byte 4 is in, so a stranger is refused at its
//    first bytes; lengths are checked against maxFrameLength as soon as the header is in.
//    push() throws nothing else for any input; an exception thrown by onFrame propagates
//    unchanged (that frame is consumed; the bytes behind it are parsed at the next push()).
//  - Lifetime of decoded buffers. By default a copy's `entry.data` is a view into the receive
//    buffer (or into the pushed chunk), valid only until onFrame returns: copy it
//    (Buffer.from(view)) to keep it. With `ownData: true` the decoder hands out data that it
//    will never touch again (the frame's own buffer when it was assembled in one; with
//    `retainChunks`, the pushed chunk it was parsed from in place; otherwise a copy), so the
//    receiver may keep it. HELLO nonces and PROOF bytes are always owned copies.
//    A chunk passed to push() may be referenced until the next push(): do not modify it.
//  - push() may be called from inside onFrame: the chunk is parsed after the current frame.
//
// Encoding (encodeFrame) returns the frame as segments for cork()/write() or writev:
//   [header+payload]         every frame without data
//   [header+payload, data]   a copy with non-empty data; `data` is the caller's buffer, never
//                            copied: do not modify it until it has been written.
// Encoders throw RangeError/TypeError for values the format cannot carry (a caller bug).

import { ReceiveBuffer } from '../wire/receive-buffer.js'
import { crc32c } from '../wire/digest.js'
import type { HostConnection, JournalEntry, LunSize, PeerMessage, Role } from '../ha/types.js'
import { discardChecksum } from '../journal/entry.js'
import { PeerProtocolError } from './errors.js'
import { BufferSlab } from '../wire/buffer-slab.js'

/**
 * The protocol version this code speaks (frame header and HELLO). 2: copy frames may carry
 * discards (FrameFlag.Discard), and lun-sizes frames exist. 3: a copy-ack confirms a run of
 * copies (count). Both ends must speak the same version.
 */
export const PEER_PROTOCOL_VERSION = 3
export const FRAME_MAGIC: Readonly<Buffer> = Buffer.from([0x89, 0x49, 0x48, 0x50])
export const FRAME_HEADER_LENGTH = 20
/** Largest copy data the default frame limit admits. */
export const DEFAULT_MAX_DATA_LENGTH = 16 * 1024 * 1024
/** Room for a copy's metadata (or a large `state` message) on top of the data. */
export const METADATA_ALLOWANCE = 64 * 1024
/** Default bound on a whole frame: header + 16 MiB of data + metadata allowance. */
export const DEFAULT_MAX_FRAME_LENGTH = FRAME_HEADER_LENGTH + DEFAULT_MAX_DATA_LENGTH + METADATA_ALLOWANCE
/** Incomplete frames above this size are assembled in a buffer of their own. */
export const BIG_FRAME_THRESHOLD = 128 * 1024
/** Size of HELLO nonces and PROOF MACs. */
export const NONCE_LENGTH = 32
export const PROOF_LENGTH = 32

export const FrameType = {
  Hello: 0x01,
  Proof: 0x02,
  Accept: 0x03,
  Refuse: 0x04,
  Select: 0x05,
  Close: 0x06,
  Heartbeat: 0x10,
  HeartbeatAck: 0x11,
  Copy: 0x12,
  CopyAck: 0x13,
  CopyNak: 0x14,
  Complete: 0x15,
  State: 0x16,
  HandoverRequest: 0x17,
  HandoverReady: 0x18,
  Sync: 0x19,
  SyncAck: 0x1a,
  LunSizes: 0x1b,
} as const

/** Most LUNs one lun-sizes frame may carry (a pair serves far fewer). */
export const MAX_REPORTED_LUNS = 1024

/** Bits of the frame header's flags byte. */
export const FrameFlag = {
  /** Copy frames only: the entry is a discard (payload ends with its length; no data segment). */
  Discard: 0x01,
} as const

// ---------------------------------------------------------------------------------------------
// Control frames (not part of the HA contract: they belong to the link itself).

/** First frame of a handshake: who we are and a fresh nonce. */
export interface HelloFrame {
  type: 'hello'
  version: number
  clusterId: string
  nodeName: string
  /** NONCE_LENGTH random bytes. */
  nonce: Buffer
}
/** HMAC proving knowledge of the shared secret (see handshake.ts). */
export interface ProofFrame {
  type: 'proof'
  proof: Buffer
}
/** The acceptor verified the dialer's proof: the handshake is complete. */
export interface AcceptFrame {
  type: 'accept'
}
/** The sender refuses the connection and closes it. */
export interface RefuseFrame {
  type: 'refuse'
  reason: string
  detail: string
}
/** Sent by the node with the lexically smaller name: this connection is the link. */
export interface SelectFrame {
  type: 'select'
}
/** An orderly close of an authenticated connection (duplicate, replaced, shutdown...). */
export interface CloseFrame {
  type: 'close'
  reason: string
}

export type HandshakeFrame = HelloFrame | ProofFrame | AcceptFrame | RefuseFrame
export type ControlFrame = HandshakeFrame | SelectFrame | CloseFrame
export type Frame = PeerMessage | ControlFrame
export type FrameTypeName = Frame['type']

const CONTROL_TYPES: ReadonlySet<string> = new Set(['hello', 'proof', 'accept', 'refuse', 'select', 'close'])

export function isControlFrame(frame: Frame): frame is ControlFrame {
  return CONTROL_TYPES.has(frame.type)
}

export function isPeerMessage(frame: Frame): frame is PeerMessage {
  return !CONTROL_TYPES.has(frame.type)
}

/** The epoch a peer message carries (a copy carries it in its entry). */
export function messageEpoch(msg: PeerMessage): number {
  return msg.type === 'copy' ? msg.entry.epoch : msg.epoch
}

const ROLE_CODES: Record<Role, number> = { primary: 1, secondary: 2, candidate: 3, fenced: 4, stopped: 5 }
const ROLES: readonly (Role | undefined)[] = [undefined, 'primary', 'secondary', 'candidate', 'fenced', 'stopped']

// ---------------------------------------------------------------------------------------------
// Encoding.

const TWO_32 = 0x1_0000_0000
const EMPTY = Buffer.alloc(0)
/** Copies of received data (a journal holds them until the primary reports them on storage). */
const receivedCopies = new BufferSlab()

function copyOf(view: Buffer): Buffer {
  const b = receivedCopies.take(view.length)
  view.copy(b)
  return b
}

class Writer {
  o = FRAME_HEADER_LENGTH
  constructor(readonly buf: Buffer) {}
  u8(v: number): void {
    this.buf[this.o++] = v
  }
  u16(v: number): void {
    this.buf.writeUInt16BE(v, this.o)
    this.o += 2
  }
  u32(v: number): void {
    this.buf.writeUInt32BE(v, this.o)
    this.o += 4
  }
  u64(v: number): void {
    this.buf.writeUInt32BE(Math.floor(v / TWO_32), this.o)
    this.buf.writeUInt32BE(v >>> 0, this.o + 4)
    this.o += 8
  }
  f64(v: number): void {
    this.buf.writeDoubleBE(v, this.o)
    this.o += 8
  }
  str8(v: string, bytes: number): void {
    this.buf[this.o++] = bytes
    this.o += this.buf.write(v, this.o, bytes, 'utf8')
  }
  str16(v: string, bytes: number): void {
    this.buf.writeUInt16BE(bytes, this.o)
    this.o += 2
    this.o += this.buf.write(v, this.o, bytes, 'utf8')
  }
  raw(v: Buffer): void {
    v.copy(this.buf, this.o)
    this.o += v.length
  }
}

function checkU64(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative safe integer, got ${v}`)
}
function checkU32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name} must be a u32, got ${v}`)
}
function checkU16(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`${name} must be a u16, got ${v}`)
}
function checkF64(name: string, v: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new RangeError(`${name} must be a finite number, got ${v}`)
}
function strBytes(name: string, v: string, max: number): number {
  if (typeof v !== 'string') throw new TypeError(`${name} must be a string`)
  const n = Buffer.byteLength(v, 'utf8')
  if (n > max) throw new RangeError(`${name} is ${n} bytes of UTF-8; the limit is ${max}`)
  return n
}
function roleCode(v: Role): number {
  const code = ROLE_CODES[v]
  if (code === undefined) throw new RangeError(`unknown role ${String(v)}`)
  return code
}
function fixedBytes(name: string, v: Buffer, n: number): void {
  if (!Buffer.isBuffer(v) || v.length !== n) throw new RangeError(`${name} must be ${n} bytes`)
}

/** Allocate header+payload and return a writer positioned at the payload. */
function start(payloadLength: number): Writer {
  return new Writer(Buffer.allocUnsafe(FRAME_HEADER_LENGTH + payloadLength))
}

/** Fill in the header (and CRC) of a frame whose payload the writer has written. */
function finish(w: Writer, type: number, dataLength: number, flags = 0): Buffer {
  const b = w.buf
  const payloadLength = b.length - FRAME_HEADER_LENGTH
  if (w.o !== b.length) throw new Error(`internal: payload size mismatch for frame type ${type}`)
  FRAME_MAGIC.copy(b, 0)
  b[4] = PEER_PROTOCOL_VERSION
  b[5] = type
  b[6] = flags
  b[7] = 0
  b.writeUInt32BE(payloadLength, 8)
  b.writeUInt32BE(dataLength, 12)
  b.writeUInt32BE(crc32c(b.subarray(FRAME_HEADER_LENGTH), crc32c(b.subarray(0, 16))), 16)
  return b
}

/** Encode a frame as write segments (see the file header). */
export function encodeFrame(frame: Frame): Buffer[] {
  switch (frame.type) {
    case 'hello': {
      checkU16('version', frame.version)
      const c = strBytes('clusterId', frame.clusterId, 255)
      const n = strBytes('nodeName', frame.nodeName, 255)
      fixedBytes('nonce', frame.nonce, NONCE_LENGTH)
      const w = start(2 + 1 + c + 1 + n + NONCE_LENGTH)
      w.u16(frame.version)
      w.str8(frame.clusterId, c)
      w.str8(frame.nodeName, n)
      w.raw(frame.nonce)
      return [finish(w, FrameType.Hello, 0)]
    }
    case 'proof': {
      fixedBytes('proof', frame.proof, PROOF_LENGTH)
      const w = start(PROOF_LENGTH)
      w.raw(frame.proof)
      return [finish(w, FrameType.Proof, 0)]
    }
    case 'accept':
      return [finish(start(0), FrameType.Accept, 0)]
    case 'select':
      return [finish(start(0), FrameType.Select, 0)]
    case 'refuse': {
      const r = strBytes('reason', frame.reason, 255)
      const d = strBytes('detail', frame.detail, 0xffff)
      const w = start(1 + r + 2 + d)
      w.str8(frame.reason, r)
      w.str16(frame.detail, d)
      return [finish(w, FrameType.Refuse, 0)]
    }
    case 'close': {
      const r = strBytes('reason', frame.reason, 255)
      const w = start(1 + r)
      w.str8(frame.reason, r)
      return [finish(w, FrameType.Close, 0)]
    }
    case 'heartbeat': {
      checkU64('epoch', frame.epoch)
      const role = roleCode(frame.role)
      checkF64('sentAtMs', frame.sentAtMs)
      checkU64('journalEntries', frame.journalEntries)
      const w = start(8 + 1 + 8 + 8)
      w.u64(frame.epoch)
      w.u8(role)
      w.f64(frame.sentAtMs)
      w.u64(frame.journalEntries)
      return [finish(w, FrameType.Heartbeat, 0)]
    }
    case 'heartbeat-ack': {
      checkU64('epoch', frame.epoch)
      checkF64('echoSentAtMs', frame.echoSentAtMs)
      const role = roleCode(frame.role)
      const w = start(8 + 8 + 1)
      w.u64(frame.epoch)
      w.f64(frame.echoSentAtMs)
      w.u8(role)
      return [finish(w, FrameType.HeartbeatAck, 0)]
    }
    case 'copy':
      return encodeCopy(frame.entry)
    case 'copy-ack': {
      checkU64('epoch', frame.epoch)
      checkU64('seq', frame.seq)
      checkU32('count', frame.count)
      if (frame.count < 1) throw new RangeError('count must be at least 1')
      if (frame.seq > Number.MAX_SAFE_INTEGER - (frame.count - 1)) throw new RangeError(`seq ${frame.seq} + count ${frame.count} passes 2^53`)
      const w = start(20)
      w.u64(frame.epoch)
      w.u64(frame.seq)
      w.u32(frame.count)
      return [finish(w, FrameType.CopyAck, 0)]
    }
    case 'copy-nak': {
      checkU64('epoch', frame.epoch)
      checkU64('seq', frame.seq)
      const r = strBytes('reason', frame.reason, 0xffff)
      const w = start(16 + 2 + r)
      w.u64(frame.epoch)
      w.u64(frame.seq)
      w.str16(frame.reason, r)
      return [finish(w, FrameType.CopyNak, 0)]
    }
    case 'complete': {
      checkU64('epoch', frame.epoch)
      const seqs = frame.seqs
      if (!Array.isArray(seqs)) throw new TypeError('seqs must be an array')
      for (let i = 0; i < seqs.length; i++) checkU64('seqs[i]', seqs[i]!)
      const w = start(8 + 4 + 8 * seqs.length)
      w.u64(frame.epoch)
      w.u32(seqs.length)
      for (let i = 0; i < seqs.length; i++) w.u64(seqs[i]!)
      return [finish(w, FrameType.Complete, 0)]
    }
    case 'state': {
      checkU64('epoch', frame.epoch)
      const a = strBytes('serviceAddress', frame.serviceAddress, 255)
      const conns = frame.hostConnections
      if (!Array.isArray(conns)) throw new TypeError('hostConnections must be an array')
      checkU32('hostConnections.length', conns.length)
      const sizes: number[] = new Array<number>(conns.length * 2)
      let size = 8 + 1 + a + 4
      for (let i = 0; i < conns.length; i++) {
        const hc = conns[i]!
        sizes[2 * i] = strBytes('hostConnections[i].local', hc.local, 255)
        sizes[2 * i + 1] = strBytes('hostConnections[i].remote', hc.remote, 255)
        size += 2 + sizes[2 * i]! + sizes[2 * i + 1]!
      }
      const w = start(size)
      w.u64(frame.epoch)
      w.str8(frame.serviceAddress, a)
      w.u32(conns.length)
      for (let i = 0; i < conns.length; i++) {
        w.str8(conns[i]!.local, sizes[2 * i]!)
        w.str8(conns[i]!.remote, sizes[2 * i + 1]!)
      }
      return [finish(w, FrameType.State, 0)]
    }
    case 'handover-request': {
      checkU64('epoch', frame.epoch)
      const t = strBytes('to', frame.to, 255)
      const w = start(8 + 1 + t)
      w.u64(frame.epoch)
      w.str8(frame.to, t)
      return [finish(w, FrameType.HandoverRequest, 0)]
    }
    case 'handover-ready': {
      checkU64('epoch', frame.epoch)
      checkU64('lastSeq', frame.lastSeq)
      const w = start(16)
      w.u64(frame.epoch)
      w.u64(frame.lastSeq)
      return [finish(w, FrameType.HandoverReady, 0)]
    }
    case 'sync':
    case 'sync-ack': {
      checkU64('epoch', frame.epoch)
      checkU64('generation', frame.generation)
      const w = start(16)
      w.u64(frame.epoch)
      w.u64(frame.generation)
      return [finish(w, frame.type === 'sync' ? FrameType.Sync : FrameType.SyncAck, 0)]
    }
    case 'lun-sizes': {
      checkU64('epoch', frame.epoch)
      const luns = frame.luns
      if (!Array.isArray(luns)) throw new TypeError('luns must be an array')
      if (luns.length > MAX_REPORTED_LUNS) throw new RangeError(`luns: ${luns.length} LUNs; the limit is ${MAX_REPORTED_LUNS}`)
      const targets = new Array<number>(luns.length)
      let size = 8 + 2
      for (let i = 0; i < luns.length; i++) {
        const l = luns[i]!
        targets[i] = strBytes('luns[i].target', l.target, 255)
        checkU32('luns[i].lun', l.lun)
        checkU64('luns[i].sizeBytes', l.sizeBytes)
        size += 1 + targets[i]! + 4 + 8
      }
      const w = start(size)
      w.u64(frame.epoch)
      w.u16(luns.length)
      for (let i = 0; i < luns.length; i++) {
        w.str8(luns[i]!.target, targets[i]!)
        w.u32(luns[i]!.lun)
        w.u64(luns[i]!.sizeBytes)
      }
      return [finish(w, FrameType.LunSizes, 0)]
    }
    default: {
      const never: never = frame
      throw new TypeError(`unknown frame type ${String((never as { type: unknown }).type)}`)
    }
  }
}

/**
 * A copy: payload = epoch u64, seq u64, offset u64, lun u32, itt u32, checksum u32,
 * receivedAtMs f64, target str8, initiator str8, isid str8; a write's data follows as its own
 * segment; a discard (FrameFlag.Discard) ends the payload with its length u64 instead.
 */
function encodeCopy(e: JournalEntry): Buffer[] {
  const discard = e.kind === 'discard'
  checkU64('entry.epoch', e.epoch)
  checkU64('entry.seq', e.seq)
  checkU64('entry.offset', e.offset)
  if (e.key === null || typeof e.key !== 'object') throw new TypeError('entry.key must be a LunKey')
  checkU32('entry.key.lun', e.key.lun)
  checkU32('entry.itt', e.itt)
  checkU32('entry.checksum', e.checksum)
  checkF64('entry.receivedAtMs', e.receivedAtMs)
  if (discard) {
    checkU64('entry.length', e.length)
    if (e.data !== undefined) throw new TypeError('a discard entry carries no data')
  } else {
    if (e.kind !== undefined && e.kind !== 'write') throw new TypeError(`unknown entry kind ${String((e as { kind: unknown }).kind)}`)
    if (!Buffer.isBuffer(e.data)) throw new TypeError('entry.data must be a Buffer')
  }
  const t = strBytes('entry.key.target', e.key.target, 255)
  const i = strBytes('entry.initiator', e.initiator, 255)
  const s = strBytes('entry.isid', e.isid, 255)
  const w = start(COPY_FIXED + t + i + s + (discard ? 8 : 0))
  w.u64(e.epoch)
  w.u64(e.seq)
  w.u64(e.offset)
  w.u32(e.key.lun)
  w.u32(e.itt)
  w.u32(e.checksum)
  w.f64(e.receivedAtMs)
  w.str8(e.key.target, t)
  w.str8(e.initiator, i)
  w.str8(e.isid, s)
  if (discard) {
    w.u64(e.length)
    return [finish(w, FrameType.Copy, 0, FrameFlag.Discard)]
  }
  const head = finish(w, FrameType.Copy, e.data.length)
  return e.data.length === 0 ? [head] : [head, e.data]
}

const COPY_FIXED = 8 + 8 + 8 + 4 + 4 + 4 + 8 + 3

/** The encoded frame as one buffer (tests, cold paths). */
export function encodeFrameToBuffer(frame: Frame): Buffer {
  const parts = encodeFrame(frame)
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts)
}

/** Total bytes of a frame's segments. */
export function segmentsLength(segments: readonly Buffer[]): number {
  let n = 0
  for (let i = 0; i < segments.length; i++) n += segments[i]!.length
  return n
}

// ---------------------------------------------------------------------------------------------
// Decoding.

/** Thrown inside payload decoding only; turned into PEER_MALFORMED. Never escapes this module. */
class Malformed {
  constructor(readonly message: string) {}
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

class Reader {
  constructor(
    readonly b: Buffer,
    public o: number,
    readonly end: number,
  ) {}
  need(n: number, what: string): void {
    if (this.end - this.o < n) throw new Malformed(`truncated payload reading ${what}`)
  }
  u8(what: string): number {
    this.need(1, what)
    return this.b[this.o++]!
  }
  u16(what: string): number {
    this.need(2, what)
    const v = (this.b[this.o]! << 8) | this.b[this.o + 1]!
    this.o += 2
    return v
  }
  u32(what: string): number {
    this.need(4, what)
    const v = this.b.readUInt32BE(this.o)
    this.o += 4
    return v
  }
  u64(what: string): number {
    this.need(8, what)
    const hi = this.b.readUInt32BE(this.o)
    const lo = this.b.readUInt32BE(this.o + 4)
    this.o += 8
    if (hi > 0x1fffff) throw new Malformed(`${what} exceeds 2^53`)
    return hi * TWO_32 + lo
  }
  f64(what: string): number {
    this.need(8, what)
    const v = this.b.readDoubleBE(this.o)
    this.o += 8
    if (!Number.isFinite(v)) throw new Malformed(`${what} is not a finite number`)
    return v
  }
  role(what: string): Role {
    const code = this.u8(what)
    const r = ROLES[code]
    if (r === undefined) throw new Malformed(`${what}: unknown role code ${code}`)
    return r
  }
  str(n: number, what: string): string {
    this.need(n, what)
    const from = this.o
    const to = from + n
    this.o = to
    const b = this.b
    let ascii = true
    for (let i = from; i < to; i++) {
      if (b[i]! >= 0x80) {
        ascii = false
        break
      }
    }
    if (ascii) return b.toString('latin1', from, to)
    try {
      return utf8.decode(b.subarray(from, to))
    } catch {
      throw new Malformed(`${what} is not valid UTF-8`)
    }
  }
  str8(what: string): string {
    return this.str(this.u8(what), what)
  }
  str16(what: string): string {
    return this.str(this.u16(what), what)
  }
  bytes(n: number, what: string): Buffer {
    this.need(n, what)
    const v = Buffer.from(this.b.subarray(this.o, this.o + n))
    this.o += n
    return v
  }
  done(type: string): void {
    if (this.o !== this.end) throw new Malformed(`${this.end - this.o} unexpected trailing bytes in ${type} frame`)
  }
}

/** Decode one CRC-verified frame body. */
function decodeBody(
  b: Buffer,
  s: number,
  payloadLength: number,
  dataLength: number,
  ownData: boolean,
  dataIsStable: boolean,
): Frame | PeerProtocolError {
  const type = b[s + 5]!
  const flags = b[s + 6]!
  const discard = type === FrameType.Copy && flags === FrameFlag.Discard
  if (flags !== 0 && !discard) return new PeerProtocolError('PEER_MALFORMED', `unknown frame flags 0x${flags.toString(16)} on frame type 0x${type.toString(16)}`)
  if (b[s + 7] !== 0) return new PeerProtocolError('PEER_MALFORMED', 'reserved header byte is not zero')
  if (dataLength !== 0 && (type !== FrameType.Copy || discard)) {
    return new PeerProtocolError('PEER_MALFORMED', `${discard ? 'a discard copy' : `frame type 0x${type.toString(16)}`} cannot carry a data segment`)
  }
  const payloadStart = s + FRAME_HEADER_LENGTH
  const r = new Reader(b, payloadStart, payloadStart + payloadLength)
  try {
    switch (type) {
      case FrameType.Hello: {
        const version = r.u16('version')
        const clusterId = r.str8('clusterId')
        const nodeName = r.str8('nodeName')
        const nonce = r.bytes(NONCE_LENGTH, 'nonce')
        r.done('hello')
        return { type: 'hello', version, clusterId, nodeName, nonce }
      }
      case FrameType.Proof: {
        const proof = r.bytes(PROOF_LENGTH, 'proof')
        r.done('proof')
        return { type: 'proof', proof }
      }
      case FrameType.Accept:
        r.done('accept')
        return { type: 'accept' }
      case FrameType.Select:
        r.done('select')
        return { type: 'select' }
      case FrameType.Refuse: {
        const reason = r.str8('reason')
        const detail = r.str16('detail')
        r.done('refuse')
        return { type: 'refuse', reason, detail }
      }
      case FrameType.Close: {
        const reason = r.str8('reason')
        r.done('close')
        return { type: 'close', reason }
      }
      case FrameType.Heartbeat: {
        const epoch = r.u64('epoch')
        const role = r.role('role')
        const sentAtMs = r.f64('sentAtMs')
        const journalEntries = r.u64('journalEntries')
        r.done('heartbeat')
        return { type: 'heartbeat', epoch, role, sentAtMs, journalEntries }
      }
      case FrameType.HeartbeatAck: {
        const epoch = r.u64('epoch')
        const echoSentAtMs = r.f64('echoSentAtMs')
        const role = r.role('role')
        r.done('heartbeat-ack')
        return { type: 'heartbeat-ack', epoch, echoSentAtMs, role }
      }
      case FrameType.Copy: {
        const epoch = r.u64('epoch')
        const seq = r.u64('seq')
        const offset = r.u64('offset')
        const lun = r.u32('lun')
        const itt = r.u32('itt')
        const checksum = r.u32('checksum')
        const receivedAtMs = r.f64('receivedAtMs')
        const target = r.str8('target')
        const initiator = r.str8('initiator')
        const isid = r.str8('isid')
        if (discard) {
          const length = r.u64('length')
          r.done('copy')
          const expected = discardChecksum(offset, length)
          if (expected !== checksum) {
            return new PeerProtocolError(
              'PEER_BAD_CHECKSUM',
              `discard seq ${seq}: range checksum 0x${hex32(expected)} does not match the entry's 0x${hex32(checksum)}`,
            )
          }
          const entry: JournalEntry = { kind: 'discard', seq, epoch, key: { target, lun }, offset, length, checksum, initiator, isid, itt, receivedAtMs }
          return { type: 'copy', entry }
        }
        r.done('copy')
        const dataStart = payloadStart + payloadLength
        let data: Buffer
        if (dataLength === 0) {
          data = EMPTY
        } else {
          const view = b.subarray(dataStart, dataStart + dataLength)
          data = ownData && !dataIsStable ? copyOf(view) : view
        }
        const actual = crc32c(data)
        if (actual !== checksum) {
          return new PeerProtocolError(
            'PEER_BAD_CHECKSUM',
            `copy seq ${seq}: data checksum 0x${hex32(actual)} does not match the entry's 0x${hex32(checksum)}`,
          )
        }
        const entry: JournalEntry = {
          seq,
          epoch,
          key: { target, lun },
          offset,
          data,
          checksum,
          initiator,
          isid,
          itt,
          receivedAtMs,
        }
        return { type: 'copy', entry }
      }
      case FrameType.CopyAck: {
        const epoch = r.u64('epoch')
        const seq = r.u64('seq')
        const count = r.u32('count')
        r.done('copy-ack')
        if (count < 1) throw new Malformed('copy-ack: count 0 confirms nothing')
        if (seq > Number.MAX_SAFE_INTEGER - (count - 1)) throw new Malformed(`copy-ack: seq ${seq} + count ${count} passes 2^53`)
        return { type: 'copy-ack', epoch, seq, count }
      }
      case FrameType.CopyNak: {
        const epoch = r.u64('epoch')
        const seq = r.u64('seq')
        const reason = r.str16('reason')
        r.done('copy-nak')
        return { type: 'copy-nak', epoch, seq, reason }
      }
      case FrameType.Complete: {
        const epoch = r.u64('epoch')
        const count = r.u32('count')
        if (count * 8 !== r.end - r.o) throw new Malformed(`complete: ${count} seqs do not fill the payload`)
        const seqs = new Array<number>(count)
        for (let i = 0; i < count; i++) seqs[i] = r.u64('seq')
        r.done('complete')
        return { type: 'complete', epoch, seqs }
      }
      case FrameType.State: {
        const epoch = r.u64('epoch')
        const serviceAddress = r.str8('serviceAddress')
        const count = r.u32('count')
        // Each entry takes at least two bytes: refuse counts the payload cannot hold.
        if (count * 2 > r.end - r.o) throw new Malformed(`state: ${count} host connections overrun the payload`)
        const hostConnections: HostConnection[] = []
        for (let i = 0; i < count; i++) {
          const local = r.str8('local')
          const remote = r.str8('remote')
          hostConnections.push({ local, remote })
        }
        r.done('state')
        return { type: 'state', epoch, serviceAddress, hostConnections }
      }
      case FrameType.HandoverRequest: {
        const epoch = r.u64('epoch')
        const to = r.str8('to')
        r.done('handover-request')
        return { type: 'handover-request', epoch, to }
      }
      case FrameType.HandoverReady: {
        const epoch = r.u64('epoch')
        const lastSeq = r.u64('lastSeq')
        r.done('handover-ready')
        return { type: 'handover-ready', epoch, lastSeq }
      }
      case FrameType.Sync:
      case FrameType.SyncAck: {
        const epoch = r.u64('epoch')
        const generation = r.u64('generation')
        const kind = type === FrameType.Sync ? 'sync' : 'sync-ack'
        r.done(kind)
        return { type: kind, epoch, generation }
      }
      case FrameType.LunSizes: {
        const epoch = r.u64('epoch')
        const count = r.u16('count')
        if (count > MAX_REPORTED_LUNS) throw new Malformed(`lun-sizes: ${count} LUNs; the limit is ${MAX_REPORTED_LUNS}`)
        // Each LUN takes at least 13 bytes: refuse counts the payload cannot hold.
        if (count * 13 > r.end - r.o) throw new Malformed(`lun-sizes: ${count} LUNs overrun the payload`)
        const luns: LunSize[] = []
        for (let i = 0; i < count; i++) {
          const target = r.str8('target')
          const lun = r.u32('lun')
          const sizeBytes = r.u64('sizeBytes')
          luns.push({ target, lun, sizeBytes })
        }
        r.done('lun-sizes')
        return { type: 'lun-sizes', epoch, luns }
      }
      default:
        return new PeerProtocolError('PEER_MALFORMED', `unknown frame type 0x${type.toString(16)}`)
    }
  } catch (err) {
    if (err instanceof Malformed) return new PeerProtocolError('PEER_MALFORMED', err.message)
    // Defensive: nothing above should throw anything else for any bytes.
    return new PeerProtocolError('PEER_MALFORMED', `undecodable frame: ${String(err)}`)
  }
}

function hex32(v: number): string {
  return (v >>> 0).toString(16).padStart(8, '0')
}

/** A human hint for bytes that are not our magic (used in refusal log lines). */
export function describeForeignBytes(sample: Buffer): string {
  if (sample.length === 0) return 'no bytes'
  const text = sample.toString('latin1')
  if (/^(GET|POST|HEAD|PUT|DELETE|OPTIONS|PATCH|CONNECT|TRACE) /.test(text)) return 'an HTTP request'
  if (text.startsWith('SSH-')) return 'an SSH client'
  if (sample[0] === 0x16 && sample[1] === 0x03) return 'a TLS handshake'
  // An iSCSI Login Request: opcode 0x03 (with the immediate bit), VersionMax = VersionMin = 0.
  if (sample.length >= 4 && (sample[0]! & 0x3f) === 0x03 && sample[2] === 0 && sample[3] === 0) {
    return 'an iSCSI login (an initiator pointed at the peer-link port?)'
  }
  return 'unknown bytes'
}

function printable(sample: Buffer): string {
  let s = ''
  for (let i = 0; i < sample.length; i++) {
    const c = sample[i]!
    s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`
  }
  return s
}

export interface FrameDecoderOptions {
  /** Called once per complete, valid frame. See the file header for buffer lifetimes. */
  onFrame: (frame: Frame) => void
  /** Largest whole frame accepted (header + payload + data). Default DEFAULT_MAX_FRAME_LENGTH. */
  maxFrameLength?: number
  /** Hand out copy data the receiver may keep (see the file header). Default false. */
  ownData?: boolean
  /**
   * The pusher never modifies a chunk after push() (true of socket reads: Node allocates each
   * one anew), so with ownData a copy parsed in place keeps a view of its chunk instead of a
   * copy of its data. Default false.
   */
  retainChunks?: boolean
  /** Initial size of the owned receive store when one is first needed (default 64 KiB). */
  initialBufferSize?: number
}

const DEFAULT_INITIAL_BUFFER = 64 * 1024
/** An idle owned store larger than this is released rather than kept for reuse. */
const RETAIN_LIMIT = 1024 * 1024

export class FrameDecoder {
  onFrame: (frame: Frame) => void
  ownData: boolean
  private readonly retainChunks: boolean

  private maxFrame: number
  /** Bytes being parsed: a borrowed pushed chunk, the owned store, or `big`. */
  private readonly rx: ReceiveBuffer
  /** A buffer of exactly one large frame's size, being filled. */
  private big: Buffer | undefined = undefined
  /** Chunks pushed from inside onFrame, or left behind by an exception in onFrame. */
  private readonly queue: Buffer[] = []
  private parsing = false
  private failure: PeerProtocolError | undefined = undefined

  constructor(options: FrameDecoderOptions) {
    this.onFrame = options.onFrame
    this.ownData = options.ownData ?? false
    this.retainChunks = options.retainChunks ?? false
    this.maxFrame = checkFrameLimit(options.maxFrameLength ?? DEFAULT_MAX_FRAME_LENGTH)
    this.rx = new ReceiveBuffer(Math.max(FRAME_HEADER_LENGTH, options.initialBufferSize ?? DEFAULT_INITIAL_BUFFER), RETAIN_LIMIT)
  }

  /** Largest whole frame accepted; a longer declared length raises PEER_FRAME_TOO_LONG. */
  get maxFrameLength(): number {
    return this.maxFrame
  }
  set maxFrameLength(value: number) {
    this.maxFrame = checkFrameLimit(value)
  }

  /** The fatal error that stopped the decoder, if any. */
  get failed(): PeerProtocolError | undefined {
    return this.failure
  }

  /** Bytes received but not yet consumed (a partial frame). */
  get bufferedBytes(): number {
    let n = this.rx.end - this.rx.start
    for (let i = 0; i < this.queue.length; i++) n += this.queue[i]!.length
    return n
  }

  /**
   * Feed received bytes. Calls onFrame for each frame they complete. Throws only
   * PeerProtocolError (always fatal), or whatever onFrame throws.
   */
  push(chunk: Uint8Array): void {
    if (this.failure !== undefined) throw this.failure
    if (!(chunk instanceof Uint8Array)) {
      throw this.fail(new PeerProtocolError('PEER_MALFORMED', 'push() expects a Buffer or Uint8Array'))
    }
    const input = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    if (input.length > 0) this.queue.push(input)
    if (this.parsing) return // nested in onFrame: the running loop picks it up
    this.parsing = true
    try {
      // An exception from onFrame leaves the rest of the queue for the next push().
      while (this.queue.length > 0) this.feed(this.queue.shift()!)
      // Resume bytes left behind by an exception in onFrame (e.g. after push(empty)).
      const big = this.big
      if (big === undefined || this.rx.end === big.length) this.drain()
    } finally {
      this.parsing = false
    }
  }

  private feed(input: Buffer): void {
    const big = this.big
    if (big !== undefined) {
      if (this.rx.end < big.length) {
        const n = Math.min(big.length - this.rx.end, input.length)
        input.copy(big, this.rx.end, 0, n)
        this.rx.end += n
        if (this.rx.end < big.length) return
        // The frame is complete; anything behind it is parsed after it.
        if (n < input.length) this.queue.unshift(input.subarray(n))
      } else {
        // The big frame was delivered but onFrame threw: release it, then parse `input`.
        this.queue.unshift(input)
      }
      this.drain()
      return
    }
    this.rx.take(input)
    this.drain()
  }

  private drain(): void {
    for (;;) {
      const b = this.rx.buf
      const s = this.rx.start
      const avail = this.rx.end - s
      if (avail === 0) {
        if (b === this.big) this.big = undefined
        if (!this.rx.owns(b)) this.rx.buf = EMPTY // drop a consumed chunk or big frame buffer
        this.rx.start = 0
        this.rx.end = 0
        return
      }
      const m = avail < 4 ? avail : 4
      for (let i = 0; i < m; i++) {
        if (b[s + i] !== FRAME_MAGIC[i]) {
          const sample = Buffer.from(b.subarray(s, Math.min(this.rx.end, s + 16)))
          const err = new PeerProtocolError(
            'PEER_BAD_MAGIC',
            `not an iscsi-ha peer-link frame: bad magic, received "${printable(sample)}" ` +
              `(${describeForeignBytes(sample)})`,
          )
          throw this.fail(err)
        }
      }
      if (avail < 5) return
      const version = b[s + 4]!
      if (version !== PEER_PROTOCOL_VERSION) {
        throw this.fail(
          new PeerProtocolError(
            'PEER_BAD_VERSION',
            `peer-link protocol version ${version} is not supported (this node speaks ${PEER_PROTOCOL_VERSION})`,
          ),
        )
      }
      if (avail < FRAME_HEADER_LENGTH) return
      const payloadLength = b.readUInt32BE(s + 8)
      const dataLength = b.readUInt32BE(s + 12)
      const total = FRAME_HEADER_LENGTH + payloadLength + dataLength
      if (total > this.maxFrame) {
        throw this.fail(
          new PeerProtocolError(
            'PEER_FRAME_TOO_LONG',
            `frame of ${total} bytes (payload ${payloadLength}, data ${dataLength}) ` +
              `exceeds the limit of ${this.maxFrame}`,
          ),
        )
      }
      if (avail < total) {
        if (total > BIG_FRAME_THRESHOLD) {
          // Assemble this frame in a buffer of its own size.
          const big = Buffer.allocUnsafeSlow(total)
          b.copy(big, 0, s, this.rx.end)
          this.big = big
          this.rx.buf = big
          this.rx.start = 0
          this.rx.end = avail
        }
        return
      }
      const payloadStart = s + FRAME_HEADER_LENGTH
      const computed = crc32c(b.subarray(payloadStart, payloadStart + payloadLength), crc32c(b.subarray(s, s + 16)))
      const received = b.readUInt32BE(s + 16)
      if (computed !== received) {
        throw this.fail(
          new PeerProtocolError(
            'PEER_BAD_CRC',
            `frame CRC32C mismatch: computed 0x${hex32(computed)}, received 0x${hex32(received)}`,
          ),
        )
      }
      // The whole frame is here. Consume it before the callback runs.
      this.rx.start = s + total
      // A big-frame buffer holds exactly this frame and is never reused, and a pushed chunk is
      // never modified (retainChunks): their data can be handed out as it is.
      const stable = b === this.big || (this.retainChunks && !this.rx.owns(b))
      const frame = decodeBody(b, s, payloadLength, dataLength, this.ownData, stable)
      if (frame instanceof PeerProtocolError) throw this.fail(frame)
      this.onFrame(frame)
    }
  }

  private fail(err: PeerProtocolError): PeerProtocolError {
    this.failure = err
    this.rx.reset()
    this.big = undefined
    this.queue.length = 0
    return err
  }
}

function checkFrameLimit(value: number): number {
  if (!Number.isInteger(value) || value < FRAME_HEADER_LENGTH || value > 0xffffffff) {
    throw new RangeError(`maxFrameLength must be an integer in ${FRAME_HEADER_LENGTH}..${0xffffffff}`)
  }
  return value
}
