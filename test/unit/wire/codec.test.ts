import { describe, expect, expectTypeOf, it } from 'vitest'
import { PduParser, type ParserDirection } from '../../../src/wire/parser.js'
import { encodePdu, encodeToBuffer, segmentsLength } from '../../../src/wire/serializer.js'
import { WireError } from '../../../src/wire/errors.js'
import { Opcode, type InitiatorPdu, type Pdu, type TargetPdu } from '../../../src/wire/pdu.js'
import { DIGEST_MODES, fixtures, snapshot, withDigests, type Fixture } from './fixtures.js'

interface Collected {
  pdus: Pdu[]
  errors: WireError[]
  parser: PduParser
}

function collector(
  opts: { headerDigest?: boolean; dataDigest?: boolean; direction?: ParserDirection; max?: number } = {},
): Collected {
  const pdus: Pdu[] = []
  const errors: WireError[] = []
  const parser = new PduParser({
    direction: opts.direction ?? 'any',
    headerDigest: opts.headerDigest ?? false,
    dataDigest: opts.dataDigest ?? false,
    maxDataSegmentLength: opts.max ?? 65536,
    // Copy views out so assertions made after push() see stable bytes.
    onPdu: (pdu) => pdus.push(snapshot(pdu)),
    onError: (err) => errors.push(err),
  })
  return { pdus, errors, parser }
}

function parseAll(bytes: Buffer, opts: Parameters<typeof collector>[0] = {}): Collected {
  const c = collector(opts)
  c.parser.push(bytes)
  return c
}

describe('fixtures: parse', () => {
  it.each(fixtures.map((f) => [f.name, f] as const))('%s', (_name, f: Fixture) => {
    const { pdus, errors, parser } = parseAll(f.bytes)
    expect(errors).toEqual([])
    expect(pdus).toHaveLength(1)
    expect(pdus[0]).toEqual(f.pdu)
    expect(parser.bufferedBytes).toBe(0)
  })
})

describe('fixtures: serialize', () => {
  it.each(fixtures.map((f) => [f.name, f] as const))('%s', (_name, f: Fixture) => {
    expect(encodeToBuffer(f.pdu).toString('hex')).toBe(f.bytes.toString('hex'))
  })

  it.each(fixtures.map((f) => [f.name, f] as const))('%s with digests', (_name, f: Fixture) => {
    for (const mode of DIGEST_MODES) {
      const out = encodeToBuffer(f.pdu, mode)
      expect(out.toString('hex'), mode.name).toBe(withDigests(f, mode.headerDigest, mode.dataDigest).toString('hex'))
    }
  })

  it('never copies the data segment into the header', () => {
    for (const f of fixtures) {
      const segs = encodePdu(f.pdu)
      const data = f.pdu.opcode === Opcode.ScsiResponse && f.pdu.sense !== undefined ? undefined : f.pdu.data
      if (data !== undefined && data.length > 0) expect(segs[1]).toBe(data)
      expect(segs[0].length).toBe(48 + f.ahsLength)
      expect(segmentsLength(segs)).toBe(f.bytes.length)
    }
  })
})

describe('fixtures: round trip', () => {
  it.each(fixtures.map((f) => [f.name, f] as const))('%s', (_name, f: Fixture) => {
    for (const mode of DIGEST_MODES) {
      const encoded = encodeToBuffer(f.pdu, mode)
      const { pdus, errors } = parseAll(encoded, mode)
      expect(errors).toEqual([])
      expect(pdus, mode.name).toEqual([f.pdu])
      expect(encodeToBuffer(pdus[0]!, mode).equals(encoded)).toBe(true)
    }
  })
})

describe('split delivery', () => {
  for (const mode of DIGEST_MODES) {
    it(`every fixture split at every offset (${mode.name})`, () => {
      for (const f of fixtures) {
        const bytes = withDigests(f, mode.headerDigest, mode.dataDigest)
        for (let cut = 0; cut <= bytes.length; cut++) {
          const c = collector(mode)
          c.parser.push(bytes.subarray(0, cut))
          if (cut < bytes.length) expect(c.pdus).toHaveLength(0)
          c.parser.push(bytes.subarray(cut))
          expect(c.errors).toEqual([])
          expect(c.pdus, `${f.name} cut ${cut}`).toEqual([f.pdu])
          expect(c.parser.bufferedBytes).toBe(0)
        }
      }
    })

    it(`two consecutive PDUs split at every offset (${mode.name})`, () => {
      for (let i = 0; i < fixtures.length; i++) {
        const a = fixtures[i]!
        const b = fixtures[(i + 1) % fixtures.length]!
        const bytes = Buffer.concat([
          withDigests(a, mode.headerDigest, mode.dataDigest),
          withDigests(b, mode.headerDigest, mode.dataDigest),
        ])
        for (let cut = 0; cut <= bytes.length; cut++) {
          const c = collector(mode)
          c.parser.push(bytes.subarray(0, cut))
          c.parser.push(bytes.subarray(cut))
          expect(c.errors).toEqual([])
          expect(c.pdus, `${a.name} + ${b.name} cut ${cut}`).toEqual([a.pdu, b.pdu])
        }
      }
    })
  }

  it('byte-at-a-time delivery of the whole fixture stream', () => {
    const stream = Buffer.concat(fixtures.map((f) => f.bytes))
    const c = collector()
    for (let i = 0; i < stream.length; i++) c.parser.push(stream.subarray(i, i + 1))
    expect(c.errors).toEqual([])
    expect(c.pdus).toEqual(fixtures.map((f) => f.pdu))
  })

  it('the whole fixture stream in one chunk, all digest modes', () => {
    for (const mode of DIGEST_MODES) {
      const stream = Buffer.concat(fixtures.map((f) => withDigests(f, mode.headerDigest, mode.dataDigest)))
      const c = parseAll(stream, mode)
      expect(c.errors).toEqual([])
      expect(c.pdus).toEqual(fixtures.map((f) => f.pdu))
    }
  })
})

describe('serializer details', () => {
  const base = fixtures.find((f) => f.name === 'SCSI Command READ(10)')!.pdu
  if (base.opcode !== Opcode.ScsiCommand) throw new Error('fixture drift')

  it('pads a short CDB to 16 bytes', () => {
    const pdu = { ...base, cdb: Buffer.from('1200000024 00'.replace(/ /g, ''), 'hex') }
    const bytes = encodeToBuffer(pdu)
    expect(bytes.subarray(32, 48).toString('hex')).toBe('12000000240000000000000000000000')
    const { pdus } = parseAll(bytes)
    expect((pdus[0] as typeof base).cdb.length).toBe(16)
  })

  it('emits the Extended CDB AHS before other AHSs and round-trips both', () => {
    const cdb = Buffer.from(Array.from({ length: 64 }, (_, i) => i + 1))
    const bidi = { type: 2, specific: 0, bytes: Buffer.from('00010000', 'hex') }
    const pdu = { ...base, cdb, ahs: [bidi] }
    const bytes = encodeToBuffer(pdu, { headerDigest: true, dataDigest: false })
    expect(bytes[4]).toBe((4 + 48 + 8) / 4) // ext CDB AHS: 4 + 48 bytes; bidi AHS: 8 bytes
    expect(bytes.readUInt16BE(48)).toBe(64 - 15)
    expect(bytes[50]).toBe(1)
    expect(bytes[48 + 52 + 2]).toBe(2)
    const { pdus, errors } = parseAll(bytes, { headerDigest: true })
    expect(errors).toEqual([])
    expect(pdus[0]).toEqual({ ...pdu, ahs: [{ type: 1, specific: 0, bytes: cdb.subarray(16) }, bidi] })
  })

  it('SCSI Response with sense writes SenseLength + sense and ignores data', () => {
    const f = fixtures.find((x) => x.name === 'SCSI Response CHECK CONDITION with sense')!
    if (f.pdu.opcode !== Opcode.ScsiResponse) throw new Error('fixture drift')
    const pdu = { ...f.pdu, data: Buffer.from('ignored!') }
    expect(encodeToBuffer(pdu).equals(f.bytes)).toBe(true)
    const empty = encodeToBuffer({ ...f.pdu, sense: Buffer.alloc(0) })
    expect(empty.readUIntBE(5, 3)).toBe(2)
    expect(empty.subarray(48).toString('hex')).toBe('00000000') // SenseLength 0 + 2 pad bytes
  })

  it('refuses a malformed ISID and an oversized data segment', () => {
    const login = fixtures.find((x) => x.name === 'Login Request security -> full feature')!.pdu
    if (login.opcode !== Opcode.LoginRequest) throw new Error('fixture drift')
    expect(() => encodeToBuffer({ ...login, isid: 'xyz' })).toThrow(RangeError)
    expect(() => encodeToBuffer({ ...login, isid: '40000137000g' })).toThrow(RangeError)
    expect(() => encodeToBuffer({ ...login, data: Buffer.alloc(0x1000000) })).toThrow(RangeError)
  })

  it('writes the LUN as a big-endian u64 and fills reserved bytes with zeros', () => {
    const pdu = { ...base, lun: 0x0102030405060708n }
    const bytes = encodeToBuffer(pdu)
    expect(bytes.subarray(8, 16).toString('hex')).toBe('0102030405060708')
    // Dirty the allocation pool, then check an encoder that has many reserved bytes.
    Buffer.allocUnsafe(4096).fill(0xee)
    const r = fixtures.find((x) => x.name === 'Reject data digest error')!
    for (let i = 0; i < 50; i++) expect(encodeToBuffer(r.pdu).equals(r.bytes)).toBe(true)
  })
})

describe('types', () => {
  it('narrows onPdu by direction', () => {
    const target = new PduParser({ direction: 'target', onPdu: (pdu) => expectTypeOf(pdu).toEqualTypeOf<InitiatorPdu>() })
    const initiator = new PduParser({ direction: 'initiator', onPdu: (pdu) => expectTypeOf(pdu).toEqualTypeOf<TargetPdu>() })
    const any = new PduParser({ onPdu: (pdu) => expectTypeOf(pdu).toEqualTypeOf<Pdu>() })
    expect([target.direction, initiator.direction, any.direction]).toEqual(['target', 'initiator', 'any'])
  })
})
