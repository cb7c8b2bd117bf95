import { describe, expect, it } from 'vitest'
import {
  BIG_FRAME_THRESHOLD,
  DEFAULT_MAX_FRAME_LENGTH,
  FRAME_HEADER_LENGTH,
  FrameDecoder,
  FrameFlag,
  FrameType,
  MAX_REPORTED_LUNS,
  PEER_PROTOCOL_VERSION,
  encodeFrame,
  encodeFrameToBuffer,
  isControlFrame,
  isPeerMessage,
  messageEpoch,
  type Frame,
} from '../../../src/peer/codec.js'
import { PeerProtocolError, type PeerErrorCode } from '../../../src/peer/errors.js'
import { discard, entry, fixCrc, fixtures, pattern } from './fixtures.js'
import { discardChecksum } from '../../../src/journal/entry.js'

function decodeAll(chunks: Buffer[], opts: { ownData?: boolean; maxFrameLength?: number } = {}): Frame[] {
  const out: Frame[] = []
  const d = new FrameDecoder({
    onFrame: (f) => {
      // Views are only valid during the callback: keep a copy for the comparison.
      if (f.type === 'copy' && f.entry.kind !== 'discard' && !opts.ownData) out.push({ type: 'copy', entry: { ...f.entry, data: Buffer.from(f.entry.data) } })
      else out.push(f)
    },
    ...opts,
  })
  for (const c of chunks) d.push(c)
  expect(d.bufferedBytes).toBe(0)
  return out
}

/** Buffers as hex, so deep comparisons of large data stay fast. */
function plain(frames: Frame[]): unknown {
  return JSON.parse(
    JSON.stringify(frames, (_k, v: unknown) =>
      v !== null && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)
        ? Buffer.from((v as { data: number[] }).data).toString('hex')
        : v,
    ),
  )
}

function expectCode(fn: () => void, code: PeerErrorCode): PeerProtocolError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(PeerProtocolError)
    expect((err as PeerProtocolError).code).toBe(code)
    return err as PeerProtocolError
  }
  throw new Error(`expected ${code}`)
}

describe('peer frame codec: round trips', () => {
  for (const { name, frame } of fixtures) {
    it(`${name}: encode → decode`, () => {
      const bytes = encodeFrameToBuffer(frame)
      expect(bytes.subarray(0, 4)).toEqual(Buffer.from([0x89, 0x49, 0x48, 0x50]))
      expect(decodeAll([bytes])).toEqual([frame])
    })

    it(`${name}: every split offset`, () => {
      const bytes = encodeFrameToBuffer(frame)
      const want = plain([frame])
      for (let i = 0; i <= bytes.length; i++) {
        expect(plain(decodeAll([bytes.subarray(0, i), bytes.subarray(i)]))).toEqual(want)
      }
    })
  }

  it('two frames in one chunk, and all fixtures back to back in byte-sized pieces', () => {
    const a = fixtures[6]!.frame
    const b = fixtures[8]!.frame
    expect(decodeAll([Buffer.concat([encodeFrameToBuffer(a), encodeFrameToBuffer(b)])])).toEqual([a, b])
    const all = Buffer.concat(fixtures.map((f) => encodeFrameToBuffer(f.frame)))
    const pieces: Buffer[] = []
    for (let i = 0; i < all.length; i += 7) pieces.push(all.subarray(i, i + 7))
    expect(plain(decodeAll(pieces))).toEqual(plain(fixtures.map((f) => f.frame)))
  })

  it('classifies frames and reads message epochs', () => {
    for (const { frame } of fixtures) expect(isControlFrame(frame)).toBe(!isPeerMessage(frame))
    expect(messageEpoch({ type: 'copy', entry: entry(Buffer.alloc(1), { epoch: 9 }) })).toBe(9)
    expect(messageEpoch({ type: 'copy-ack', epoch: 4, seq: 1, count: 1 })).toBe(4)
  })
})

describe('peer frame codec: copy data segment', () => {
  it('sends the data as its own segment, never copied', () => {
    const data = pattern(65536, 5)
    const segments = encodeFrame({ type: 'copy', entry: entry(data) })
    expect(segments).toHaveLength(2)
    expect(segments[1]).toBe(data)
    expect(segments[0]!.length).toBeLessThan(200)
    expect(segments[0]!.readUInt32BE(12)).toBe(65536)
  })

  it('yields the data as a view into the pushed chunk by default', () => {
    const bytes = encodeFrameToBuffer({ type: 'copy', entry: entry(pattern(1000, 6)) })
    let view: Buffer | undefined
    new FrameDecoder({ onFrame: (f) => f.type === 'copy' && (view = f.entry.data) }).push(bytes)
    expect(view!.buffer).toBe(bytes.buffer)
    expect(view!.byteOffset).toBe(bytes.byteOffset + bytes.length - 1000)
  })

  it('with ownData, the data survives later pushes (small frames copied, big frames assembled in place)', () => {
    for (const size of [1000, BIG_FRAME_THRESHOLD * 8]) {
      const data = pattern(size, 7)
      const bytes = Buffer.concat([
        encodeFrameToBuffer({ type: 'copy', entry: entry(data, { seq: 1 }) }),
        encodeFrameToBuffer({ type: 'copy', entry: entry(Buffer.alloc(size, 0xee), { seq: 2 }) }),
      ])
      const kept: Buffer[] = []
      const d = new FrameDecoder({ ownData: true, onFrame: (f) => f.type === 'copy' && kept.push(f.entry.data!) })
      for (let i = 0; i < bytes.length; i += 65536) d.push(Buffer.from(bytes.subarray(i, i + 65536)))
      expect(kept).toHaveLength(2)
      expect(kept[0]!.equals(data)).toBe(true)
      expect(kept[1]!.equals(Buffer.alloc(size, 0xee))).toBe(true)
      expect(d.bufferedBytes).toBe(0)
    }
  })

  it('with ownData and retainChunks, data parsed in place stays a view of its chunk; split data is copied', () => {
    const frame = (seq: number, fill: number): Buffer => encodeFrameToBuffer({ type: 'copy', entry: entry(Buffer.alloc(4096, fill), { seq }) })
    const kept: Buffer[] = []
    const d = new FrameDecoder({ ownData: true, retainChunks: true, onFrame: (f) => f.type === 'copy' && kept.push(f.entry.data!) })
    const first = Buffer.concat([frame(1, 1), frame(2, 2)])
    const third = frame(3, 3)
    const chunkA = Buffer.concat([first, third.subarray(0, 100)])
    d.push(chunkA)
    d.push(Buffer.from(third.subarray(100))) // completes frame 3 in the owned store
    d.push(frame(4, 4)) // nothing left over: in place again
    expect(kept).toHaveLength(4)
    expect(kept[0]!.buffer).toBe(chunkA.buffer)
    expect(kept[1]!.buffer).toBe(chunkA.buffer)
    expect(kept[2]!.buffer).not.toBe(chunkA.buffer)
    d.push(Buffer.concat([frame(5, 5), frame(6, 6).subarray(0, 50)])) // reuses the store
    d.push(frame(6, 6).subarray(50))
    kept.slice(0, 4).forEach((k, i) => expect(k.every((x) => x === i + 1)).toBe(true))
  })

  it('decodes a 1 MiB copy fed in 64 KiB chunks with a heartbeat behind it in the last chunk', () => {
    const data = pattern(1 << 20, 8)
    const hb: Frame = { type: 'heartbeat', epoch: 7, role: 'primary', sentAtMs: 1, journalEntries: 0 }
    const bytes = Buffer.concat([encodeFrameToBuffer({ type: 'copy', entry: entry(data) }), encodeFrameToBuffer(hb)])
    const chunks: Buffer[] = []
    for (let i = 0; i < bytes.length; i += 65536) chunks.push(bytes.subarray(i, i + 65536))
    const frames = decodeAll(chunks, { ownData: true })
    expect(frames).toHaveLength(2)
    expect(frames[0]!.type === 'copy' && frames[0]!.entry.data!.equals(data)).toBe(true)
    expect(frames[1]).toEqual(hb)
  })
})

describe('peer frame codec: discard copies', () => {
  it('carry the range in the payload, the Discard flag, and no data segment', () => {
    const e = discard(1 << 20, 64 << 20)
    const segments = encodeFrame({ type: 'copy', entry: e })
    expect(segments).toHaveLength(1)
    const b = segments[0]!
    expect(b[4]).toBe(PEER_PROTOCOL_VERSION)
    expect(b[6]).toBe(FrameFlag.Discard)
    expect(b.readUInt32BE(12)).toBe(0) // no data: 64 MiB of UNMAP is a frame of about 150 bytes
    expect(b.length).toBeLessThan(200)
    expect(b.readUInt32BE(b.length - 4)).toBe(64 << 20) // the length, last in the payload
    expect(decodeAll([b])).toEqual([{ type: 'copy', entry: e }])
  })

  it('a write decodes without a kind, a discard with kind "discard" (never with data)', () => {
    const frames = decodeAll([encodeFrameToBuffer({ type: 'copy', entry: entry(pattern(8, 1)) }), encodeFrameToBuffer({ type: 'copy', entry: discard(0, 512) })])
    expect(frames.map((f) => f.type === 'copy' && [f.entry.kind, f.entry.data?.length])).toEqual([
      [undefined, 8],
      ['discard', undefined],
    ])
  })

  it("PEER_BAD_CHECKSUM when the range does not match the entry's checksum", () => {
    const wrong = encodeFrameToBuffer({ type: 'copy', entry: discard(4096, 8192, { checksum: discardChecksum(4096, 8193) }) })
    const err = expectCode(() => new FrameDecoder({ onFrame: () => {} }).push(wrong), 'PEER_BAD_CHECKSUM')
    expect(err.message).toMatch(/discard seq 43/)
    // A length changed on the way (CRC fixed up, as a buggy sender would produce) is caught too.
    const b = encodeFrameToBuffer({ type: 'copy', entry: discard(4096, 8192) })
    b.writeUInt32BE(8193, b.length - 4)
    expectCode(() => new FrameDecoder({ onFrame: () => {} }).push(fixCrc(b)), 'PEER_BAD_CHECKSUM')
  })

  it('PEER_MALFORMED: the flag on another frame type, unknown flag bits, a discard with data or without its length', () => {
    const hb = encodeFrameToBuffer(fixtures[6]!.frame)
    const d = encodeFrameToBuffer({ type: 'copy', entry: discard(0, 4096) })
    const w = encodeFrameToBuffer({ type: 'copy', entry: entry(Buffer.alloc(0)) })
    const cases: Buffer[] = []
    const flagged = Buffer.from(hb)
    flagged[6] = FrameFlag.Discard
    cases.push(flagged)
    for (const bits of [0x02, 0x03, 0x80]) {
      const x = Buffer.from(d)
      x[6] = bits
      cases.push(x)
    }
    // The flag on a write's copy: its payload has no length behind the isid.
    const asDiscard = Buffer.from(w)
    asDiscard[6] = FrameFlag.Discard
    cases.push(asDiscard)
    // A discard without its flag: 8 trailing bytes in a write's copy.
    const unflagged = Buffer.from(d)
    unflagged[6] = 0
    cases.push(unflagged)
    // A discard with a data segment.
    const withData = Buffer.concat([d, Buffer.alloc(4)])
    withData.writeUInt32BE(4, 12)
    cases.push(withData)
    // A length above 2^53.
    const huge = Buffer.from(d)
    huge.writeUInt32BE(0x00400000, huge.length - 8)
    cases.push(huge)
    for (const b of cases) expectCode(() => new FrameDecoder({ onFrame: () => {} }).push(fixCrc(b)), 'PEER_MALFORMED')
  })

  it('refuses to encode a discard the format cannot carry', () => {
    expect(() => encodeFrame({ type: 'copy', entry: discard(0, -1) })).toThrow(RangeError)
    expect(() => encodeFrame({ type: 'copy', entry: discard(0, 2 ** 53) })).toThrow(RangeError)
    expect(() => encodeFrame({ type: 'copy', entry: { ...discard(0, 1), data: Buffer.alloc(1) } as never })).toThrow(TypeError)
  })
})

describe('peer frame codec: copy-ack runs (version 3)', () => {
  it('carries seq and count, and a decoder refuses a run of none or one past 2^53', () => {
    const b = encodeFrameToBuffer({ type: 'copy-ack', epoch: 3, seq: 10, count: 32 })
    expect(b[4]).toBe(3)
    expect(b.length).toBe(20 + 8 + 8 + 4)
    expect(b.readUInt32BE(20 + 16)).toBe(32)
    expect(decodeAll([b])).toEqual([{ type: 'copy-ack', epoch: 3, seq: 10, count: 32 }])
    const none = Buffer.from(b)
    none.writeUInt32BE(0, 20 + 16)
    expectCode(() => new FrameDecoder({ onFrame: () => {} }).push(fixCrc(none)), 'PEER_MALFORMED')
    const past = Buffer.from(b)
    past.writeUInt32BE(0x1f_ffff, 20 + 8)
    past.writeUInt32BE(0xffff_ffff, 20 + 12) // seq 2^53 - 1
    expectCode(() => new FrameDecoder({ onFrame: () => {} }).push(fixCrc(past)), 'PEER_MALFORMED')
    // A version 2 copy-ack (no count) is refused by its header's version byte, never misread.
    const v2 = Buffer.from(b.subarray(0, 36))
    v2[4] = 2
    v2.writeUInt32BE(16, 8)
    expectCode(() => new FrameDecoder({ onFrame: () => {} }).push(fixCrc(v2)), 'PEER_BAD_VERSION')
  })
})

describe('peer frame codec: lun-sizes', () => {
  const lun = (i: number): { target: string; lun: number; sizeBytes: number } => ({ target: 'iqn.2024-01.io.example:disk0', lun: i, sizeBytes: 64 << 20 })
  const push = (b: Buffer): void => new FrameDecoder({ onFrame: () => {} }).push(fixCrc(b))

  it('is a version 2 frame of its own type, and a peer message with an epoch', () => {
    const frame: Frame = { type: 'lun-sizes', epoch: 5, luns: [lun(0)] }
    const b = encodeFrameToBuffer(frame)
    expect(b[4]).toBe(PEER_PROTOCOL_VERSION)
    expect(PEER_PROTOCOL_VERSION).toBeGreaterThanOrEqual(2)
    expect(b[5]).toBe(FrameType.LunSizes)
    expect(isPeerMessage(frame)).toBe(true)
    expect(messageEpoch({ type: 'lun-sizes', epoch: 5, luns: [] })).toBe(5)
    expect(decodeAll([b])).toEqual([frame])
  })

  it(`round-trips ${MAX_REPORTED_LUNS} LUNs`, () => {
    const frame: Frame = { type: 'lun-sizes', epoch: 1, luns: Array.from({ length: MAX_REPORTED_LUNS }, (_, i) => lun(i)) }
    expect(decodeAll([encodeFrameToBuffer(frame)])).toEqual([frame])
  })

  it('refuses to encode what the format cannot carry', () => {
    expect(() => encodeFrame({ type: 'lun-sizes', epoch: 1, luns: Array.from({ length: MAX_REPORTED_LUNS + 1 }, (_, i) => lun(i)) })).toThrow(RangeError)
    expect(() => encodeFrame({ type: 'lun-sizes', epoch: 1, luns: [{ ...lun(0), target: 'x'.repeat(256) }] })).toThrow(RangeError)
    expect(() => encodeFrame({ type: 'lun-sizes', epoch: 1, luns: [{ ...lun(0), sizeBytes: -1 }] })).toThrow(RangeError)
    expect(() => encodeFrame({ type: 'lun-sizes', epoch: 1, luns: [{ ...lun(0), sizeBytes: 2 ** 53 }] })).toThrow(RangeError)
    expect(() => encodeFrame({ type: 'lun-sizes', epoch: 1, luns: [{ ...lun(0), lun: 2 ** 32 }] })).toThrow(RangeError)
    expect(() => encodeFrame({ type: 'lun-sizes', epoch: 1, luns: 'x' as never })).toThrow(TypeError)
  })

  it('PEER_MALFORMED: too many LUNs, a count the payload cannot hold, truncation, trailing bytes, bad fields', () => {
    const one = encodeFrameToBuffer({ type: 'lun-sizes', epoch: 1, luns: [lun(7)] })
    const count = FRAME_HEADER_LENGTH + 8
    const cases: Buffer[] = []
    // A count above the limit, with a payload that would hold it.
    const many = encodeFrameToBuffer({ type: 'lun-sizes', epoch: 1, luns: Array.from({ length: MAX_REPORTED_LUNS }, (_, i) => lun(i)) })
    const over = Buffer.concat([many, encodeFrameToBuffer({ type: 'lun-sizes', epoch: 1, luns: [lun(0)] }).subarray(count + 2)])
    over.writeUInt32BE(over.length - FRAME_HEADER_LENGTH, 8)
    over.writeUInt16BE(MAX_REPORTED_LUNS + 1, count)
    cases.push(over)
    const huge = Buffer.from(one)
    huge.writeUInt16BE(0xffff, count)
    cases.push(huge)
    // Two LUNs announced, one present.
    const short = Buffer.from(one)
    short.writeUInt16BE(2, count)
    cases.push(short)
    // None announced, one present: trailing bytes.
    const none = Buffer.from(one)
    none.writeUInt16BE(0, count)
    cases.push(none)
    // Cut inside the last field.
    const cut = Buffer.from(one.subarray(0, one.length - 3))
    cut.writeUInt32BE(cut.length - FRAME_HEADER_LENGTH, 8)
    cases.push(cut)
    // A size above 2^53.
    const big = Buffer.from(one)
    big.writeUInt32BE(0x00400000, big.length - 8)
    cases.push(big)
    // A target length that runs past the payload, and a target that is not UTF-8.
    const long = Buffer.from(one)
    long[count + 2] = 0xff
    cases.push(long)
    const bad = Buffer.from(one)
    bad[count + 3] = 0xff
    cases.push(bad)
    // A flag, or a data segment.
    const flagged = Buffer.from(one)
    flagged[6] = FrameFlag.Discard
    cases.push(flagged)
    const withData = Buffer.concat([one, Buffer.alloc(4)])
    withData.writeUInt32BE(4, 12)
    cases.push(withData)
    for (const b of cases) expectCode(() => push(b), 'PEER_MALFORMED')
  })

  it('PEER_FRAME_TOO_LONG before the link is authenticated', () => {
    const many = encodeFrameToBuffer({ type: 'lun-sizes', epoch: 1, luns: Array.from({ length: 400 }, (_, i) => lun(i)) })
    expectCode(() => new FrameDecoder({ maxFrameLength: 4096, onFrame: () => {} }).push(many), 'PEER_FRAME_TOO_LONG')
  })
})

describe('peer frame codec: errors', () => {
  const hb = encodeFrameToBuffer(fixtures[6]!.frame)

  it('refuses an HTTP request at its first byte (PEER_BAD_MAGIC)', () => {
    const d = new FrameDecoder({ onFrame: () => {} })
    const err = expectCode(() => d.push(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), 'PEER_BAD_MAGIC')
    expect(err.message).toMatch(/HTTP request/)
    expect(err.refuseReason).toBe('not-peer-protocol')
    // A single wrong byte is enough.
    expectCode(() => new FrameDecoder({ onFrame: () => {} }).push(Buffer.from([0x16])), 'PEER_BAD_MAGIC')
  })

  it('names common foreign protocols in the error', () => {
    const msg = (b: Buffer): string => {
      try {
        new FrameDecoder({ onFrame: () => {} }).push(b)
      } catch (err) {
        return (err as Error).message
      }
      return ''
    }
    expect(msg(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]))).toMatch(/TLS handshake/)
    expect(msg(Buffer.from([0x43, 0x87, 0x00, 0x00, 0x00, 0x00]))).toMatch(/iSCSI login/)
    expect(msg(Buffer.from([0x89, 0x49, 0x48, 0x00]))).toMatch(/unknown bytes/)
  })

  it('stays failed: every later push throws the same error', () => {
    const d = new FrameDecoder({ onFrame: () => {} })
    const err = expectCode(() => d.push(Buffer.from('SSH-2.0-OpenSSH')), 'PEER_BAD_MAGIC')
    expect(err.message).toMatch(/SSH/)
    expect(() => d.push(hb)).toThrow(err)
    expect(d.failed).toBe(err)
  })

  it('delivers the frames before a bad one in the same chunk', () => {
    const got: Frame[] = []
    const d = new FrameDecoder({ onFrame: (f) => got.push(f) })
    expectCode(() => d.push(Buffer.concat([hb, Buffer.from('garbage')])), 'PEER_BAD_MAGIC')
    expect(got).toHaveLength(1)
  })

  it('PEER_BAD_VERSION as soon as byte 4 arrives', () => {
    const b = Buffer.from(hb)
    b[4] = PEER_PROTOCOL_VERSION + 1
    expectCode(() => new FrameDecoder({ onFrame: () => {} }).push(b.subarray(0, 5)), 'PEER_BAD_VERSION')
  })

  it('PEER_BAD_CRC for a flipped header or payload bit', () => {
    for (const at of [5, 6, 7, 16, 19, 25, hb.length - 1]) {
      const b = Buffer.from(hb)
      b[at]! ^= 0x01
      expectCode(() => new FrameDecoder({ onFrame: () => {} }).push(b), 'PEER_BAD_CRC')
    }
  })

  it('PEER_FRAME_TOO_LONG from the header alone, before any payload', () => {
    const b = Buffer.from(hb.subarray(0, FRAME_HEADER_LENGTH))
    b.writeUInt32BE(DEFAULT_MAX_FRAME_LENGTH, 12)
    expectCode(() => new FrameDecoder({ onFrame: () => {} }).push(b), 'PEER_FRAME_TOO_LONG')
    const copy = encodeFrameToBuffer({ type: 'copy', entry: entry(pattern(5000, 1)) })
    expectCode(() => new FrameDecoder({ maxFrameLength: 4096, onFrame: () => {} }).push(copy), 'PEER_FRAME_TOO_LONG')
    expect(() => new FrameDecoder({ maxFrameLength: 3, onFrame: () => {} })).toThrow(RangeError)
  })

  it('PEER_MALFORMED for well-framed nonsense', () => {
    const cases: ((b: Buffer) => void)[] = [
      (b) => (b[5] = 0x7f), // unknown type
      (b) => (b[6] = 1), // flags
      (b) => (b[7] = 1), // reserved
      (b) => (b[FRAME_HEADER_LENGTH + 8] = 9), // heartbeat role code
      (b) => b.writeUInt32BE(0xffffffff, FRAME_HEADER_LENGTH), // epoch above 2^53
      (b) => b.writeDoubleBE(Number.NaN, FRAME_HEADER_LENGTH + 9), // sentAtMs
    ]
    for (const mutate of cases) {
      const b = Buffer.from(hb)
      mutate(b)
      expectCode(() => new FrameDecoder({ onFrame: () => {} }).push(fixCrc(b)), 'PEER_MALFORMED')
    }
    // Trailing payload bytes.
    const longer = Buffer.concat([hb, Buffer.alloc(1)])
    longer.writeUInt32BE(hb.readUInt32BE(8) + 1, 8)
    expectCode(() => new FrameDecoder({ onFrame: () => {} }).push(fixCrc(longer)), 'PEER_MALFORMED')
    // A data segment on a frame type that has none.
    const withData = Buffer.concat([hb, Buffer.alloc(4)])
    withData.writeUInt32BE(4, 12)
    expectCode(() => new FrameDecoder({ onFrame: () => {} }).push(fixCrc(withData)), 'PEER_MALFORMED')
    // Invalid UTF-8 in a string.
    const close = encodeFrameToBuffer({ type: 'close', reason: 'ab' })
    close[FRAME_HEADER_LENGTH + 1] = 0xff
    expectCode(() => new FrameDecoder({ onFrame: () => {} }).push(fixCrc(close)), 'PEER_MALFORMED')
    // A complete frame whose count overruns the payload.
    const complete = encodeFrameToBuffer({ type: 'complete', epoch: 1, seqs: [1] })
    complete.writeUInt32BE(2, FRAME_HEADER_LENGTH + 8)
    expectCode(() => new FrameDecoder({ onFrame: () => {} }).push(fixCrc(complete)), 'PEER_MALFORMED')
  })

  it("PEER_BAD_CHECKSUM when a copy's data does not match its entry checksum", () => {
    const data = pattern(4096, 2)
    const bytes = encodeFrameToBuffer({ type: 'copy', entry: entry(data) })
    // Corrupt one data byte: the frame CRC (header + payload) still holds, the entry checksum not.
    bytes[bytes.length - 100]! ^= 0x40
    const err = expectCode(() => new FrameDecoder({ onFrame: () => {} }).push(bytes), 'PEER_BAD_CHECKSUM')
    expect(err.refuseReason).toBe('bad-checksum')
    // A sender that put a wrong checksum in the entry.
    const wrong = encodeFrameToBuffer({ type: 'copy', entry: entry(data, { checksum: 1234 }) })
    expectCode(() => new FrameDecoder({ ownData: true, onFrame: () => {} }).push(wrong), 'PEER_BAD_CHECKSUM')
  })

  it('a non-bytes push is a typed error too', () => {
    expectCode(() => new FrameDecoder({ onFrame: () => {} }).push('abc' as unknown as Buffer), 'PEER_MALFORMED')
  })
})

describe('peer frame codec: encoder and callback behaviour', () => {
  it('refuses values the format cannot carry', () => {
    expect(() => encodeFrame({ type: 'copy-ack', epoch: -1, seq: 0, count: 1 })).toThrow(RangeError)
    expect(() => encodeFrame({ type: 'copy-ack', epoch: 1.5, seq: 0, count: 1 })).toThrow(RangeError)
    expect(() => encodeFrame({ type: 'copy-ack', epoch: 1, seq: 5, count: 0 })).toThrow(RangeError)
    expect(() => encodeFrame({ type: 'copy-ack', epoch: 1, seq: 2 ** 53 - 1, count: 2 })).toThrow(RangeError)
    expect(() => encodeFrame({ type: 'heartbeat-ack', epoch: 1, echoSentAtMs: Infinity, role: 'primary' })).toThrow(RangeError)
    expect(() => encodeFrame({ type: 'handover-request', epoch: 1, to: 'x'.repeat(256) })).toThrow(RangeError)
    expect(() => encodeFrame({ type: 'hello', version: 1, clusterId: 'c', nodeName: 'n', nonce: Buffer.alloc(31) })).toThrow(RangeError)
    expect(() => encodeFrame({ type: 'heartbeat', epoch: 1, role: 'boss' as 'primary', sentAtMs: 0, journalEntries: 0 })).toThrow(RangeError)
  })

  it('an exception in onFrame propagates; the bytes behind it are parsed at the next push', () => {
    const a = encodeFrameToBuffer(fixtures[6]!.frame)
    const b = encodeFrameToBuffer(fixtures[12]!.frame)
    const got: string[] = []
    let thrown = false
    const d = new FrameDecoder({
      onFrame: (f) => {
        got.push(f.type)
        if (!thrown) {
          thrown = true
          throw new Error('listener bug')
        }
      },
    })
    expect(() => d.push(Buffer.concat([a, b]))).toThrow('listener bug')
    expect(got).toEqual(['heartbeat'])
    d.push(Buffer.alloc(0))
    expect(got).toEqual(['heartbeat', 'copy-nak'])
  })

  it('push from inside onFrame is parsed after the current frame', () => {
    const a = encodeFrameToBuffer(fixtures[2]!.frame)
    const b = encodeFrameToBuffer(fixtures[4]!.frame)
    const got: string[] = []
    const d = new FrameDecoder({
      onFrame: (f) => {
        got.push(f.type)
        if (f.type === 'accept') d.push(b)
      },
    })
    d.push(Buffer.concat([a, a]))
    expect(got).toEqual(['accept', 'accept', 'select', 'select'])
  })
})
