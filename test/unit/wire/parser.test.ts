import { describe, expect, it } from 'vitest'
import { PduParser } from '../../../src/wire/parser.js'
import { encodeToBuffer } from '../../../src/wire/serializer.js'
import {
  DataDigestError,
  FatalFramingError,
  HeaderDigestError,
  MalformedPduError,
  SegmentTooLongError,
  UnexpectedOpcodeError,
  UnknownOpcodeError,
  WireError,
} from '../../../src/wire/errors.js'
import { Opcode, RESERVED_TAG, RejectReason, TaskAttribute, type NopIn, type NopOut, type Pdu } from '../../../src/wire/pdu.js'
import { fixtures, snapshot, withDigests } from './fixtures.js'

const byName = (name: string) => {
  const f = fixtures.find((x) => x.name === name)
  if (f === undefined) throw new Error(`no fixture ${name}`)
  return f
}

function nopIn(statSN: number, data: Buffer = Buffer.alloc(0)): NopIn {
  return {
    opcode: Opcode.NopIn,
    immediate: false,
    ahs: [],
    data,
    lun: 0n,
    itt: RESERVED_TAG,
    ttt: 0x10,
    statSN,
    expCmdSN: 1,
    maxCmdSN: 2,
  }
}

function nopOut(cmdSN: number, data: Buffer = Buffer.alloc(0)): NopOut {
  return {
    opcode: Opcode.NopOut,
    immediate: true,
    ahs: [],
    data,
    lun: 0n,
    itt: cmdSN,
    ttt: RESERVED_TAG,
    cmdSN,
    expStatSN: 0,
  }
}

describe('settings', () => {
  it('defaults: no digests, 8192-byte segment limit, direction any', () => {
    const p = new PduParser({ onPdu: () => {} })
    expect(p.headerDigest).toBe(false)
    expect(p.dataDigest).toBe(false)
    expect(p.maxDataSegmentLength).toBe(8192)
    expect(p.direction).toBe('any')
  })

  it('rejects invalid maxDataSegmentLength values', () => {
    const p = new PduParser({ onPdu: () => {} })
    expect(() => (p.maxDataSegmentLength = -1)).toThrow(RangeError)
    expect(() => (p.maxDataSegmentLength = 0x1000000)).toThrow(RangeError)
    expect(() => (p.maxDataSegmentLength = 1.5)).toThrow(RangeError)
    expect(() => new PduParser({ onPdu: () => {}, maxDataSegmentLength: -5 })).toThrow(RangeError)
    p.maxDataSegmentLength = 262144
    expect(p.maxDataSegmentLength).toBe(262144)
  })

  it('digest settings changed inside the callback apply to the next PDU of the same chunk', () => {
    const login = byName('Login Response with padding')
    const next = nopIn(9, Buffer.from('abcde'))
    const chunk = Buffer.concat([login.bytes, encodeToBuffer(next, { headerDigest: true, dataDigest: true })])
    const seen: Pdu[] = []
    const parser = new PduParser({
      direction: 'initiator',
      onPdu: (pdu) => {
        seen.push(snapshot(pdu))
        if (pdu.opcode === Opcode.LoginResponse) {
          parser.headerDigest = true
          parser.dataDigest = true
        }
      },
      onError: (err) => {
        throw err
      },
    })
    parser.push(chunk)
    expect(seen).toEqual([login.pdu, next])
  })

  it('maxDataSegmentLength changed inside the callback applies to the next PDU', () => {
    const big = nopOut(2, Buffer.alloc(10000, 1))
    const chunk = Buffer.concat([encodeToBuffer(nopOut(1)), encodeToBuffer(big)])
    let count = 0
    const parser = new PduParser({
      direction: 'target',
      onPdu: () => {
        count++
        parser.maxDataSegmentLength = 65536
      },
    })
    parser.push(chunk)
    expect(count).toBe(2)

    let count2 = 0
    const strict = new PduParser({ direction: 'target', onPdu: () => void count2++ })
    expect(() => strict.push(chunk)).toThrow(SegmentTooLongError)
    expect(count2).toBe(1)
  })
})

describe('direction', () => {
  const initiatorPdu = encodeToBuffer(nopOut(1))
  const targetPdu = encodeToBuffer(nopIn(1))

  it('a target-side parser refuses target opcodes and stays in sync', () => {
    const got: number[] = []
    const errors: WireError[] = []
    let bhs: Buffer | undefined
    const p = new PduParser({
      direction: 'target',
      onPdu: (pdu) => got.push(pdu.opcode),
      onError: (err, b) => {
        errors.push(err)
        bhs = b
      },
    })
    p.push(Buffer.concat([targetPdu, initiatorPdu]))
    expect(got).toEqual([Opcode.NopOut])
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(UnexpectedOpcodeError)
    expect(errors[0]!.code).toBe('WIRE_UNEXPECTED_OPCODE')
    expect(errors[0]!.fatal).toBe(false)
    expect(errors[0]!.rejectReason).toBe(RejectReason.ProtocolError)
    expect(bhs).toEqual(targetPdu.subarray(0, 48))
  })

  it('an initiator-side parser refuses initiator opcodes', () => {
    const got: number[] = []
    const errors: WireError[] = []
    const p = new PduParser({
      direction: 'initiator',
      onPdu: (pdu) => got.push(pdu.opcode),
      onError: (err) => errors.push(err),
    })
    p.push(Buffer.concat([initiatorPdu, targetPdu]))
    expect(got).toEqual([Opcode.NopIn])
    expect(errors.map((e) => e.code)).toEqual(['WIRE_UNEXPECTED_OPCODE'])
  })

  it('any accepts both', () => {
    const got: number[] = []
    const p = new PduParser({ onPdu: (pdu) => got.push(pdu.opcode) })
    p.push(Buffer.concat([initiatorPdu, targetPdu]))
    expect(got).toEqual([Opcode.NopOut, Opcode.NopIn])
  })
})

describe('recoverable errors', () => {
  it('unknown opcode with a data segment is skipped and reported; the next PDU parses', () => {
    const bogus = encodeToBuffer(nopOut(1, Buffer.from('xyz')))
    bogus[0] = 0x1c // vendor-specific initiator opcode: not defined here
    const good = encodeToBuffer(nopOut(2))
    const got: Pdu[] = []
    const errors: [WireError, Buffer][] = []
    const p = new PduParser({ onPdu: (pdu) => got.push(pdu), onError: (e, b) => errors.push([e, b]) })
    p.push(Buffer.concat([bogus, good]))
    expect(got.map((x) => x.opcode)).toEqual([Opcode.NopOut])
    expect(errors).toHaveLength(1)
    const [err, bhs] = errors[0]!
    expect(err).toBeInstanceOf(UnknownOpcodeError)
    expect(err.code).toBe('WIRE_UNKNOWN_OPCODE')
    expect(err.rejectReason).toBe(RejectReason.CommandNotSupported)
    expect((err as UnknownOpcodeError).opcode).toBe(0x1c)
    expect(bhs).toEqual(bogus.subarray(0, 48))
    expect(err.bhs).toBe(bhs)
  })

  it('corrupted data digest is reported and the stream stays in sync', () => {
    const opts = { headerDigest: true, dataDigest: true }
    const first = encodeToBuffer(nopOut(1, Buffer.from('hello')), opts)
    first[first.length - 1]! ^= 0xff // last byte of the data digest
    const second = encodeToBuffer(nopOut(2, Buffer.from('world')), opts)
    const got: Pdu[] = []
    const errors: WireError[] = []
    const p = new PduParser({ ...opts, onPdu: (pdu) => got.push(snapshot(pdu)), onError: (e) => errors.push(e) })
    p.push(Buffer.concat([first, second]))
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(DataDigestError)
    expect(errors[0]!.code).toBe('WIRE_DATA_DIGEST')
    expect(errors[0]!.rejectReason).toBe(RejectReason.DataDigestError)
    expect(errors[0]!.fatal).toBe(false)
    expect(got).toEqual([nopOut(2, Buffer.from('world'))])
    expect(p.failed).toBeUndefined()
  })

  it('corrupted data byte (not the digest) is caught by the data digest', () => {
    const opts = { headerDigest: false, dataDigest: true }
    const bytes = encodeToBuffer(nopOut(1, Buffer.from('hello')), opts)
    bytes[48]! ^= 1
    const errors: WireError[] = []
    const p = new PduParser({ ...opts, onPdu: () => {}, onError: (e) => errors.push(e) })
    p.push(bytes)
    expect(errors.map((e) => e.code)).toEqual(['WIRE_DATA_DIGEST'])
  })

  it('AHS overrunning TotalAHSLength is malformed (recoverable)', () => {
    const f = byName('SCSI Command with Extended CDB AHS and immediate data')
    const bytes = Buffer.from(f.bytes)
    bytes.writeUInt16BE(0x40, 48) // AHSLength far beyond 20 bytes
    const errors: WireError[] = []
    const got: Pdu[] = []
    const p = new PduParser({ onPdu: (pdu) => got.push(pdu), onError: (e) => errors.push(e) })
    p.push(Buffer.concat([bytes, encodeToBuffer(nopOut(3))]))
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(MalformedPduError)
    expect(errors[0]!.code).toBe('WIRE_MALFORMED_PDU')
    expect(errors[0]!.rejectReason).toBe(RejectReason.InvalidPduField)
    expect(got.map((x) => x.opcode)).toEqual([Opcode.NopOut])
  })

  it('SenseLength beyond the data segment is malformed', () => {
    const f = byName('SCSI Response CHECK CONDITION with sense')
    const bytes = Buffer.from(f.bytes)
    bytes.writeUInt16BE(0x30, 48)
    const errors: WireError[] = []
    const p = new PduParser({ onPdu: () => {}, onError: (e) => errors.push(e) })
    p.push(bytes)
    expect(errors.map((e) => e.code)).toEqual(['WIRE_MALFORMED_PDU'])
  })

  it('a second Extended CDB AHS is malformed', () => {
    const f = byName('SCSI Command with Extended CDB AHS and immediate data')
    // Rebuild with the AHS area doubled: TotalAHSLength 10 words.
    const ahs = f.bytes.subarray(48, 68)
    const bytes = Buffer.concat([f.bytes.subarray(0, 48), ahs, ahs, f.bytes.subarray(68)])
    bytes[4] = 10
    const errors: WireError[] = []
    const p = new PduParser({ onPdu: () => {}, onError: (e) => errors.push(e) })
    p.push(bytes)
    expect(errors.map((e) => e.code)).toEqual(['WIRE_MALFORMED_PDU'])
  })

  it('without onError a recoverable error becomes fatal', () => {
    const bogus = encodeToBuffer(nopOut(1))
    bogus[0] = 0x07
    const p = new PduParser({ onPdu: () => {} })
    let thrown: unknown
    try {
      p.push(bogus)
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(FatalFramingError)
    expect((thrown as FatalFramingError).code).toBe('WIRE_FATAL_FRAMING')
    expect((thrown as FatalFramingError).cause).toBeInstanceOf(UnknownOpcodeError)
    expect(p.failed).toBe(thrown)
  })
})

describe('fatal errors', () => {
  it('a corrupted header digest is fatal; earlier PDUs were delivered; later pushes throw the same error', () => {
    const opts = { headerDigest: true, dataDigest: false }
    const ok = encodeToBuffer(nopOut(1), opts)
    const bad = encodeToBuffer(nopOut(2), opts)
    bad[20]! ^= 0x01 // a header byte (TTT)
    const got: number[] = []
    const errors: WireError[] = []
    const p = new PduParser({ ...opts, onPdu: (pdu) => got.push((pdu as NopOut).cmdSN), onError: (e) => errors.push(e) })
    let thrown: unknown
    try {
      p.push(Buffer.concat([ok, bad, ok]))
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(HeaderDigestError)
    const err = thrown as HeaderDigestError
    expect(err.code).toBe('WIRE_HEADER_DIGEST')
    expect(err.fatal).toBe(true)
    expect(err).toBeInstanceOf(FatalFramingError)
    expect(err.bhs).toEqual(bad.subarray(0, 48))
    expect(got).toEqual([1])
    expect(errors).toEqual([])
    expect(p.failed).toBe(err)
    expect(() => p.push(ok)).toThrow(err)
    expect(() => p.push(Buffer.alloc(0))).toThrow(err)
    expect(got).toEqual([1])
  })

  it('a corrupted header digest byte itself is fatal', () => {
    const opts = { headerDigest: true, dataDigest: true }
    const bad = encodeToBuffer(nopOut(2, Buffer.from('abc')), opts)
    bad[49]! ^= 0x80
    const p = new PduParser({ ...opts, onPdu: () => {} })
    expect(() => p.push(bad)).toThrow(HeaderDigestError)
  })

  it('the header digest is checked as soon as the header is complete', () => {
    const opts = { headerDigest: true, dataDigest: false }
    const bad = encodeToBuffer(nopOut(2, Buffer.alloc(1000)), opts)
    bad[30]! ^= 0x01
    const p = new PduParser({ ...opts, onPdu: () => {} })
    p.push(bad.subarray(0, 51))
    expect(() => p.push(bad.subarray(51, 52))).toThrow(HeaderDigestError)
  })

  it('DataSegmentLength above the limit is fatal before the data arrives', () => {
    const bytes = encodeToBuffer(nopOut(1, Buffer.alloc(8193)))
    const p = new PduParser({ onPdu: () => {} })
    let thrown: unknown
    try {
      p.push(bytes.subarray(0, 48))
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(SegmentTooLongError)
    const err = thrown as SegmentTooLongError
    expect(err.code).toBe('WIRE_SEGMENT_TOO_LONG')
    expect(err.length).toBe(8193)
    expect(err.limit).toBe(8192)
    expect(err.rejectReason).toBe(RejectReason.ProtocolError)
    expect(err.bhs).toEqual(bytes.subarray(0, 48))
    expect(() => p.push(bytes.subarray(48))).toThrow(err)
  })

  it('exactly maxDataSegmentLength is accepted', () => {
    const bytes = encodeToBuffer(nopOut(1, Buffer.alloc(8192, 7)))
    let n = 0
    const p = new PduParser({ onPdu: (pdu) => (n += pdu.data.length) })
    p.push(bytes)
    expect(n).toBe(8192)
  })
})

describe('buffering', () => {
  it('a chunk holding whole PDUs is parsed in place (data is a view into the chunk)', () => {
    const chunk = encodeToBuffer(nopOut(1, Buffer.from('in place')))
    let same = false
    const p = new PduParser({ onPdu: (pdu) => (same = pdu.data.buffer === chunk.buffer) })
    p.push(chunk)
    expect(same).toBe(true)
  })

  it('never overwrites a PDU before its callback returned, even with nested pushes', () => {
    // A stream of PDUs with distinct payloads, delivered in awkward chunks; inside each callback
    // more bytes are pushed (nested), and the payload view is re-checked after that.
    const payloads = Array.from({ length: 40 }, (_, i) => Buffer.alloc(100 + i * 37, i + 1))
    const stream = Buffer.concat(payloads.map((d, i) => encodeToBuffer(nopOut(i, d))))
    const chunks: Buffer[] = []
    for (let o = 0, k = 0; o < stream.length; k++) {
      const n = [1, 47, 48, 49, 300, 1000, 4096][k % 7]!
      chunks.push(stream.subarray(o, o + n))
      o += n
    }
    let next = 0
    const seen: number[] = []
    const p = new PduParser({
      initialBufferSize: 64, // force growth
      onPdu: (pdu) => {
        const before = Buffer.from(pdu.data)
        if (next < chunks.length) p.push(chunks[next++]!) // nested push
        expect(pdu.data.equals(before)).toBe(true)
        expect(pdu.data.every((b) => b === (pdu as NopOut).cmdSN + 1)).toBe(true)
        seen.push((pdu as NopOut).cmdSN)
      },
    })
    while (next < chunks.length) p.push(chunks[next++]!)
    expect(seen).toEqual(payloads.map((_, i) => i))
    expect(p.bufferedBytes).toBe(0)
  })

  it('an exception from onPdu propagates; push(empty) resumes with the buffered PDUs', () => {
    const stream = Buffer.concat([1, 2, 3].map((i) => encodeToBuffer(nopOut(i))))
    const seen: number[] = []
    const p = new PduParser({
      onPdu: (pdu) => {
        seen.push((pdu as NopOut).cmdSN)
        if ((pdu as NopOut).cmdSN === 1) throw new Error('boom')
      },
    })
    expect(() => p.push(stream)).toThrow('boom')
    expect(seen).toEqual([1])
    expect(p.failed).toBeUndefined()
    p.push(Buffer.alloc(0))
    expect(seen).toEqual([1, 2, 3])
  })

  it('accepts plain Uint8Array chunks', () => {
    const bytes = encodeToBuffer(nopOut(4, Buffer.from('u8')))
    const u8 = new Uint8Array(bytes)
    const got: Pdu[] = []
    const p = new PduParser({ onPdu: (pdu) => got.push(snapshot(pdu)) })
    p.push(u8.subarray(0, 10))
    p.push(u8.subarray(10))
    expect(got).toEqual([nopOut(4, Buffer.from('u8'))])
  })

  it('a large PDU arriving in many small chunks', () => {
    const data = Buffer.alloc(1 << 20)
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff
    const bytes = encodeToBuffer(nopOut(9, data), { headerDigest: true, dataDigest: true })
    let got: Buffer | undefined
    const p = new PduParser({
      headerDigest: true,
      dataDigest: true,
      maxDataSegmentLength: 1 << 20,
      onPdu: (pdu) => (got = Buffer.from(pdu.data)),
    })
    for (let o = 0; o < bytes.length; o += 1460) p.push(bytes.subarray(o, o + 1460))
    expect(got?.equals(data)).toBe(true)
  })

  it('digests with every fixture: header digest placement honours the AHS', () => {
    const f = byName('SCSI Command with Extended CDB AHS and immediate data')
    const bytes = withDigests(f, true, true)
    const got: Pdu[] = []
    const p = new PduParser({ headerDigest: true, dataDigest: true, onPdu: (pdu) => got.push(snapshot(pdu)) })
    p.push(bytes)
    expect(got).toEqual([f.pdu])
  })
})

describe('retainChunks: immediate data kept without a copy', () => {
  const cmd = (itt: number, data: Buffer): Buffer =>
    encodeToBuffer({
      opcode: Opcode.ScsiCommand, immediate: false, ahs: [], data, final: true, read: false, write: true,
      attribute: TaskAttribute.Simple, lun: 0n, itt, expectedDataTransferLength: data.length, cmdSN: itt,
      expStatSN: 0, cdb: Buffer.from([0x2a, 0, 0, 0, 0, itt, 0, 0, data.length / 512, 0, 0, 0, 0, 0, 0, 0]),
    })

  it('marks a SCSI Command parsed in place from a pushed chunk, never one assembled in the owned store', () => {
    const seen: { itt: number; retainable: boolean; data: Buffer }[] = []
    const parser = new PduParser({
      direction: 'target',
      maxDataSegmentLength: 65536,
      retainChunks: true,
      onPdu: (pdu) => {
        if (pdu.opcode === Opcode.ScsiCommand) seen.push({ itt: pdu.itt, retainable: pdu.dataRetainable === true, data: pdu.data })
      },
    })
    const a = cmd(1, Buffer.alloc(4096, 1))
    const b = cmd(2, Buffer.alloc(4096, 2))
    const c = cmd(3, Buffer.alloc(4096, 3))
    parser.push(a) // whole, in place
    parser.push(Buffer.concat([b, c.subarray(0, 100)])) // b in place; c split
    parser.push(c.subarray(100)) // c completed in the owned store
    const d = cmd(4, Buffer.alloc(4096, 4))
    parser.push(d) // nothing left over: in place again
    expect(seen.map((x) => [x.itt, x.retainable])).toEqual([[1, true], [2, true], [3, false], [4, true]])
    // Later pushes did not disturb what was marked retainable.
    for (const x of seen.filter((y) => y.retainable)) expect(x.data.every((v) => v === x.itt)).toBe(true)
  })

  it('never marks data without the option', () => {
    let retainable: boolean | undefined
    const parser = new PduParser({
      direction: 'target',
      maxDataSegmentLength: 65536,
      onPdu: (pdu) => {
        if (pdu.opcode === Opcode.ScsiCommand) retainable = pdu.dataRetainable
      },
    })
    parser.push(cmd(1, Buffer.alloc(512, 1)))
    expect(retainable).toBeUndefined()
  })
})
