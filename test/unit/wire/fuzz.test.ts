// Robustness: random bytes and random mutations of valid PDU streams, pushed in random splits.
// The parser may only ever throw its own WireError types, must always return, and every PDU it
// delivers must re-encode.

import { describe, expect, it } from 'vitest'
import { PduParser, type ParserDirection } from '../../../src/wire/parser.js'
import { encodePdu, encodeToBuffer } from '../../../src/wire/serializer.js'
import { WireError } from '../../../src/wire/errors.js'
import { Opcode, type Pdu } from '../../../src/wire/pdu.js'
import { DIGEST_MODES, fixtures, withDigests } from './fixtures.js'

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
    bool: (): boolean => (next() & 1) === 1,
    bytes: (n: number): Buffer => {
      const b = Buffer.allocUnsafe(n)
      for (let i = 0; i < n; i++) b[i] = next() & 0xff
      return b
    },
  }
}

type Rng = ReturnType<typeof prng>

const DIRECTIONS: ParserDirection[] = ['any', 'target', 'initiator']

interface Outcome {
  pdus: number
  recoverable: number
  fatal: number
}

function run(rng: Rng, input: Buffer, headerDigest: boolean, dataDigest: boolean, outcome: Outcome): void {
  const parser = new PduParser({
    direction: DIRECTIONS[rng.int(3)],
    headerDigest,
    dataDigest,
    maxDataSegmentLength: [0, 64, 512, 8192, 65536][rng.int(5)],
    initialBufferSize: 48 + rng.int(200),
    onPdu: (pdu) => {
      outcome.pdus++
      // Anything decoded must be encodable again.
      encodePdu(pdu, { headerDigest: rng.bool(), dataDigest: rng.bool() })
    },
    onError: (err, bhs) => {
      outcome.recoverable++
      if (!(err instanceof WireError) || err.fatal || bhs.length !== 48) throw new Error('bad onError call')
    },
  })
  let offset = 0
  while (offset < input.length) {
    const n = 1 + rng.int(Math.min(input.length - offset, 1 + rng.int(200)))
    try {
      parser.push(input.subarray(offset, offset + n))
    } catch (err) {
      if (!(err instanceof WireError) || !err.fatal) throw err
      outcome.fatal++
      expect(parser.failed).toBe(err)
      return
    }
    offset += n
  }
  if (parser.bufferedBytes > input.length) throw new Error('buffered more than was pushed')
}

function mutate(rng: Rng, stream: Buffer): Buffer {
  let out = Buffer.from(stream)
  const edits = 1 + rng.int(4)
  for (let e = 0; e < edits; e++) {
    switch (rng.int(6)) {
      case 0: // flip bits
        if (out.length > 0) out[rng.int(out.length)]! ^= 1 << rng.int(8)
        break
      case 1: // random byte
        if (out.length > 0) out[rng.int(out.length)] = rng.int(256)
        break
      case 2: // truncate
        out = out.subarray(0, rng.int(out.length + 1))
        break
      case 3: // insert garbage
        {
          const at = rng.int(out.length + 1)
          out = Buffer.concat([out.subarray(0, at), rng.bytes(1 + rng.int(16)), out.subarray(at)])
        }
        break
      case 4: // delete a range
        {
          const at = rng.int(out.length + 1)
          out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + rng.int(16))])
        }
        break
      case 5: // hit the length fields of some PDU-ish offset
        if (out.length >= 8) {
          const at = rng.int(out.length - 7)
          out[at + 4] = rng.int(256)
          out[at + 5 + rng.int(3)] = rng.int(256)
        }
        break
    }
  }
  return out
}

describe('fuzz', () => {
  it('random buffers: only typed errors, always returns', () => {
    const rng = prng(0xc0ffee)
    const outcome: Outcome = { pdus: 0, recoverable: 0, fatal: 0 }
    for (let i = 0; i < 50_000; i++) {
      const input = rng.bytes(rng.int(400))
      // Bias some inputs towards plausible headers: small length fields, valid opcodes.
      if (input.length >= 8 && rng.bool()) {
        input[0] = [0x00, 0x01, 0x05, 0x20, 0x21, 0x25, 0x3f, 0x07][rng.int(8)]!
        input[4] = rng.int(3)
        input[5] = 0
        input[6] = 0
      }
      run(rng, input, rng.bool(), rng.bool(), outcome)
    }
    expect(outcome.pdus + outcome.recoverable + outcome.fatal).toBeGreaterThan(0)
  })

  it('mutated valid streams: only typed errors, always returns, decoded PDUs re-encode', () => {
    const rng = prng(0x5eed)
    const outcome: Outcome = { pdus: 0, recoverable: 0, fatal: 0 }
    for (let i = 0; i < 50_000; i++) {
      const mode = DIGEST_MODES[rng.int(4)]!
      const parts: Buffer[] = []
      const count = 1 + rng.int(4)
      for (let k = 0; k < count; k++) {
        parts.push(withDigests(fixtures[rng.int(fixtures.length)]!, mode.headerDigest, mode.dataDigest))
      }
      run(rng, mutate(rng, Buffer.concat(parts)), mode.headerDigest, mode.dataDigest, outcome)
    }
    // The mutations must exercise every outcome.
    expect(outcome.pdus).toBeGreaterThan(1000)
    expect(outcome.recoverable).toBeGreaterThan(100)
    expect(outcome.fatal).toBeGreaterThan(100)
  })

  it('decode(encode(decode(x))) is stable for PDUs decoded from mutated streams', () => {
    const rng = prng(77)
    let checked = 0
    for (let i = 0; i < 5_000; i++) {
      const f = fixtures[rng.int(fixtures.length)]!
      const input = Buffer.from(f.bytes)
      // Mutate only BHS field bytes (not lengths) so the PDU still frames.
      for (let e = 0; e < 3; e++) {
        const at = [1, 2, 3, 8, 9, 10, 14, 15, 16, 20, 23, 24, 31, 36, 37, 38, 40, 42, 44, 47][rng.int(20)]!
        input[at] = rng.int(256)
      }
      const first: Pdu[] = []
      const p = new PduParser({ onPdu: (pdu) => first.push(pdu), onError: () => {} })
      p.push(input)
      for (const pdu of first) {
        const again: Pdu[] = []
        new PduParser({ onPdu: (x) => again.push(x) }).push(encodeToBuffer(pdu))
        expect(again).toHaveLength(1)
        const a: Record<string, unknown> = { ...again[0] }
        const b: Record<string, unknown> = { ...pdu }
        if (pdu.opcode === Opcode.ScsiResponse) {
          // Response data after the sense bytes is not re-sent when `sense` is given.
          delete a.data
          delete b.data
        }
        expect(a).toEqual(b)
        checked++
      }
    }
    expect(checked).toBeGreaterThan(1000)
  })
})
