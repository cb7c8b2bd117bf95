// Robustness: 100k random and mutated inputs each for the frame decoder and the handshake, pushed
// in random splits. The decoder may only throw PeerProtocolError; the handshake never throws and
// never completes on anything but the genuine transcript.

import { describe, expect, it } from 'vitest'
import {
  DEFAULT_MAX_FRAME_LENGTH,
  FRAME_HEADER_LENGTH,
  FRAME_MAGIC,
  FrameDecoder,
  FrameType,
  PEER_PROTOCOL_VERSION,
  encodeFrame,
  encodeFrameToBuffer,
  type Frame,
  type HandshakeFrame,
} from '../../../src/peer/codec.js'
import { PeerProtocolError } from '../../../src/peer/errors.js'
import { Handshake, type HandshakeSide } from '../../../src/peer/handshake.js'
import { fixCrc, fixtures } from './fixtures.js'

const ITERATIONS = 100_000

/** Deterministic xorshift32 PRNG. */
function prng(seed: number) {
  let s = seed >>> 0 || 1
  const next = (): number => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s
  }
  return {
    int: (n: number): number => next() % n,
    bytes: (n: number): Buffer => {
      const b = Buffer.allocUnsafe(n)
      for (let i = 0; i < n; i++) b[i] = next() & 0xff
      return b
    },
  }
}
type Rng = ReturnType<typeof prng>

const CODES = new Set(['PEER_BAD_MAGIC', 'PEER_BAD_VERSION', 'PEER_BAD_CRC', 'PEER_FRAME_TOO_LONG', 'PEER_MALFORMED', 'PEER_BAD_CHECKSUM'])

/** Small frames only (the 4 KiB copy would dominate the run time). */
const corpus = fixtures.filter((f) => encodeFrameToBuffer(f.frame).length < 1024).map((f) => encodeFrameToBuffer(f.frame))

/** Flip, set, insert, delete or truncate a few bytes. */
function mutate(rng: Rng, input: Buffer): Buffer {
  let b = Buffer.from(input)
  const n = 1 + rng.int(4)
  for (let k = 0; k < n && b.length > 0; k++) {
    const at = rng.int(b.length)
    switch (rng.int(6)) {
      case 0:
        b[at]! ^= 1 << rng.int(8)
        break
      case 1:
        b[at] = rng.int(256)
        break
      case 2:
        b = Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(8)), b.subarray(at)])
        break
      case 3:
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rng.int(8))])
        break
      case 4:
        b = b.subarray(0, at)
        break
      default:
        b[at] = [0, 0xff, 0x7f, 0x80][rng.int(4)]!
    }
  }
  return b
}

/** Mutate inside one frame (not its length fields) and fix its CRC, so the payload decoder runs. */
function mutateDeep(rng: Rng, frame: Buffer): Buffer {
  const b = Buffer.from(frame)
  const n = 1 + rng.int(3)
  for (let k = 0; k < n; k++) {
    // Type, flags, reserved or any payload byte (not the lengths, not the CRC).
    const r = rng.int(3 + b.length - FRAME_HEADER_LENGTH)
    const at = r < 3 ? 5 + r : FRAME_HEADER_LENGTH + r - 3
    b[at] = rng.int(3) === 0 ? rng.int(256) : b[at]! ^ (1 << rng.int(8))
  }
  return fixCrc(b)
}

function splits(rng: Rng, input: Buffer): Buffer[] {
  const parts: Buffer[] = []
  let at = 0
  const pieces = 1 + rng.int(5)
  for (let i = 0; i < pieces - 1 && at < input.length; i++) {
    const len = rng.int(input.length - at + 1)
    parts.push(input.subarray(at, at + len))
    at += len
  }
  parts.push(input.subarray(at))
  return parts
}

function randomInput(rng: Rng): { bytes: Buffer; canonical: boolean } {
  switch (rng.int(6)) {
    case 0:
      return { bytes: rng.bytes(rng.int(200)), canonical: false }
    case 1: {
      const header = Buffer.concat([FRAME_MAGIC, Buffer.from([PEER_PROTOCOL_VERSION]), rng.bytes(15 + rng.int(100))])
      return { bytes: rng.int(2) === 0 ? fixCrc(header) : header, canonical: false }
    }
    case 2: {
      const frames: Buffer[] = []
      for (let i = 1 + rng.int(3); i > 0; i--) frames.push(corpus[rng.int(corpus.length)]!)
      return { bytes: mutate(rng, Buffer.concat(frames)), canonical: false }
    }
    case 3:
    case 4:
      return { bytes: mutateDeep(rng, corpus[rng.int(corpus.length)]!), canonical: true }
    default:
      return { bytes: corpus[rng.int(corpus.length)]!, canonical: true }
  }
}

describe('peer codec fuzz', () => {
  it(`decoder: ${ITERATIONS} random and mutated inputs only ever raise PeerProtocolError`, () => {
    const rng = prng(0x5eed)
    const tally = { frames: 0, errors: 0, partial: 0, canonical: 0, discards: 0, lunSizes: 0 }
    const byCode = new Map<string, number>()
    for (let iter = 0; iter < ITERATIONS; iter++) {
      const { bytes, canonical } = randomInput(rng)
      const frames: Frame[] = []
      const d = new FrameDecoder({
        maxFrameLength: [64, 4096, DEFAULT_MAX_FRAME_LENGTH][rng.int(3)]!,
        ownData: rng.int(2) === 0,
        initialBufferSize: 16 + rng.int(64),
        onFrame: (f) => {
          frames.push(f)
          if (f.type === 'copy' && f.entry.kind === 'discard') tally.discards++
          if (f.type === 'lun-sizes') tally.lunSizes++
          // Anything decoded must encode again.
          encodeFrame(f)
        },
      })
      let failed: unknown
      for (const part of splits(rng, bytes)) {
        try {
          d.push(part)
        } catch (err) {
          if (!(err instanceof PeerProtocolError) || !CODES.has(err.code)) throw err
          failed = err
          break
        }
      }
      tally.frames += frames.length
      if (failed !== undefined) {
        tally.errors++
        const code = (failed as PeerProtocolError).code
        byCode.set(code, (byCode.get(code) ?? 0) + 1)
        // The failed state sticks.
        let again: unknown
        try {
          d.push(Buffer.alloc(1))
        } catch (err) {
          again = err
        }
        if (again !== failed) throw new Error('a failed decoder must throw the same error again')
      } else if (d.bufferedBytes > 0) {
        tally.partial++
      } else if (canonical && frames.length === 1) {
        // The encoding is canonical: a frame that decodes re-encodes to the same bytes.
        tally.canonical++
        if (!encodeFrameToBuffer(frames[0]!).equals(bytes)) throw new Error(`not canonical: ${bytes.toString('hex')}`)
      }
    }
    // Every path was exercised.
    for (const code of CODES) expect(byCode.get(code) ?? 0, code).toBeGreaterThan(0)
    expect(tally.frames).toBeGreaterThan(ITERATIONS / 10)
    expect(tally.partial).toBeGreaterThan(100)
    expect(tally.canonical).toBeGreaterThan(1000)
    // Discard copies (FrameFlag.Discard) are in the corpus and decode, mutated ones included.
    expect(tally.discards).toBeGreaterThan(100)
    // So are lun-sizes reports.
    expect(corpus.filter((b) => b[5] === FrameType.LunSizes)).toHaveLength(2)
    expect(tally.lunSizes).toBeGreaterThan(100)
  })
})

// ---------------------------------------------------------------------------------------------

const CLUSTER = 'c1'.repeat(32)

function hs(side: HandshakeSide, seed: number): Handshake {
  return new Handshake({
    self: side === 'dialer' ? 'node-a' : 'node-b',
    peer: side === 'dialer' ? 'node-b' : 'node-a',
    secret: 'fuzz-secret',
    clusterId: CLUSTER,
    side,
    randomBytes: (n) => Buffer.alloc(n, seed),
  })
}

/** The genuine frames each side sends in a handshake between hs('dialer', 1) and hs('acceptor', 2). */
function transcripts(): { fromDialer: HandshakeFrame[]; fromAcceptor: HandshakeFrame[] } {
  const d = hs('dialer', 1)
  const a = hs('acceptor', 2)
  const fromDialer: HandshakeFrame[] = [...d.start().send]
  const fromAcceptor: HandshakeFrame[] = [...a.start().send]
  const r1 = a.receive(fromDialer[0]!)
  fromAcceptor.push(...r1.send)
  for (const f of r1.send) fromDialer.push(...d.receive(f).send)
  fromAcceptor.push(...a.receive(fromDialer[1]!).send)
  d.receive(fromAcceptor.at(-1)!)
  expect([d.status, a.status]).toEqual(['done', 'done'])
  return { fromDialer, fromAcceptor }
}

function randomFrame(rng: Rng, genuine: HandshakeFrame[]): Frame {
  switch (rng.int(8)) {
    case 0:
      return { type: 'hello', version: rng.int(3), clusterId: rng.int(2) ? CLUSTER : 'x', nodeName: ['node-a', 'node-b', 'z', ''][rng.int(4)]!, nonce: rng.bytes(32) }
    case 1:
      return { type: 'proof', proof: rng.bytes(32) }
    case 2:
      return { type: 'accept' }
    case 3:
      return { type: 'refuse', reason: 'x', detail: '' }
    case 4:
      return { type: 'select' }
    case 5:
      return { type: 'heartbeat', epoch: rng.int(9), role: 'primary', sentAtMs: 0, journalEntries: 0 }
    default:
      return genuine[rng.int(genuine.length)]!
  }
}

describe('peer handshake fuzz', () => {
  it(`${ITERATIONS} mutated transcripts and random frames: never throws, never authenticates a forgery`, () => {
    const { fromDialer, fromAcceptor } = transcripts()
    const streams = {
      acceptor: Buffer.concat(fromDialer.map(encodeFrameToBuffer)),
      dialer: Buffer.concat(fromAcceptor.map(encodeFrameToBuffer)),
    }
    const genuine = { acceptor: fromDialer, dialer: fromAcceptor }
    const rng = prng(0xfade)
    const outcome = { done: 0, refused: 0, pending: 0 }
    for (let iter = 0; iter < ITERATIONS; iter++) {
      const side: HandshakeSide = rng.int(2) === 0 ? 'acceptor' : 'dialer'
      const h = hs(side, side === 'dialer' ? 1 : 2)
      h.start()
      const received: Frame[] = []
      const mode = rng.int(4)
      if (mode === 3) {
        // Structured: a random sequence of frames.
        for (let i = 1 + rng.int(4); i > 0 && h.status === 'pending'; i--) {
          const f = randomFrame(rng, genuine[side])
          received.push(f)
          h.receive(f)
        }
      } else {
        const stream = streams[side]
        let bytes: Buffer
        if (mode === 0) bytes = mutate(rng, stream)
        else if (mode === 1) {
          // Mutate one frame of the transcript deeply (fixed CRC), keep the others.
          const frames = genuine[side].map(encodeFrameToBuffer)
          const k = rng.int(frames.length)
          frames[k] = mutateDeep(rng, frames[k]!)
          bytes = Buffer.concat(frames)
        } else bytes = rng.int(10) === 0 ? stream : rng.bytes(rng.int(120))
        const d = new FrameDecoder({
          maxFrameLength: 4096,
          onFrame: (f) => {
            received.push(f)
            h.receive(f)
          },
        })
        for (const part of splits(rng, bytes)) {
          try {
            d.push(part)
          } catch (err) {
            if (!(err instanceof PeerProtocolError)) throw err
            const step = h.refuse(err.refuseReason, err.message)
            if (step.send.length > 1) throw new Error('refuse() sends at most one frame')
            break
          }
        }
      }
      outcome[h.status]++
      if (h.status === 'done') {
        // Only the genuine frames, in order, authenticate.
        expect(received.slice(0, genuine[side].length)).toEqual(genuine[side])
      }
    }
    expect(outcome.done).toBeGreaterThan(0)
    expect(outcome.refused).toBeGreaterThan(ITERATIONS / 2)
  })
})
