import { describe, expect, it } from 'vitest'
import { crc32c, digestOf, readDigest, writeDigest } from '../../../src/wire/digest.js'
import { PduParser } from '../../../src/wire/parser.js'
import { Opcode, type ScsiCommand } from '../../../src/wire/pdu.js'
import { referenceCrc32c } from './fixtures.js'

// RFC 3720 Appendix B.4 CRC examples. The RFC lists the CRC as the bytes on the wire; read as a
// little-endian u32 they are the CRC-32C values below (e.g. 32 zero bytes → aa 36 91 8a).
const zeros = Buffer.alloc(32, 0x00)
const ones = Buffer.alloc(32, 0xff)
const incrementing = Buffer.from(Array.from({ length: 32 }, (_, i) => i))
const decrementing = Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i))
// "An iSCSI - SCSI Read (10) Command PDU" from the same appendix.
const read10Pdu = Buffer.from(
  '01c00000000000000000000000000000' + '14000000000004000000001400000018' + '28000000000000000200000000000000',
  'hex',
)

describe('crc32c', () => {
  it.each([
    ['32 bytes of zeroes', zeros, 'aa36918a'],
    ['32 bytes of ones', ones, '43aba862'],
    ['32 bytes incrementing', incrementing, '4e79dd46'],
    ['32 bytes decrementing', decrementing, '5cdb3f11'],
    ['SCSI Read (10) Command PDU', read10Pdu, '563a96d9'],
  ])('RFC 3720 B.4: %s', (_name, input, wireHex) => {
    const wire = Buffer.alloc(4)
    writeDigest(wire, 0, crc32c(input))
    expect(wire.toString('hex')).toBe(wireHex)
    expect(readDigest(wire, 0)).toBe(crc32c(input))
    expect(referenceCrc32c(input)).toBe(crc32c(input))
  })

  it('the RFC 3720 B.4 Read (10) PDU parses with its header digest in wire order', () => {
    const got: ScsiCommand[] = []
    const p = new PduParser({ headerDigest: true, onPdu: (pdu) => got.push(pdu as ScsiCommand) })
    p.push(Buffer.concat([read10Pdu, Buffer.from('563a96d9', 'hex')]))
    expect(got).toHaveLength(1)
    expect(got[0]!.opcode).toBe(Opcode.ScsiCommand)
    expect(got[0]!.itt).toBe(0x14000000)
    expect(got[0]!.cdb.subarray(0, 10).toString('hex')).toBe('28000000000000000200')
  })

  it('check value of "123456789" is 0xe3069283', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283)
  })

  it('returns an unsigned 32-bit value', () => {
    for (const b of [zeros, ones, incrementing]) {
      const v = crc32c(b)
      expect(v).toBeGreaterThanOrEqual(0)
      expect(v).toBeLessThanOrEqual(0xffffffff)
      expect(Number.isInteger(v)).toBe(true)
    }
  })

  it('chains across segments: crc(a ++ b) === crc(b, crc(a))', () => {
    let seed = 12345
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff
    for (let n = 0; n < 200; n++) {
      const all = Buffer.from(Array.from({ length: n * 3 + 1 }, rnd))
      const cut = Math.floor(all.length / 3)
      const a = all.subarray(0, cut)
      const b = all.subarray(cut)
      expect(crc32c(b, crc32c(a))).toBe(crc32c(all))
      expect(digestOf(a, b)).toBe(crc32c(all))
      expect(digestOf(a, Buffer.alloc(0), b)).toBe(crc32c(all))
      expect(referenceCrc32c(all)).toBe(crc32c(all))
    }
  })

  it('empty input continues the running value unchanged', () => {
    expect(crc32c(Buffer.alloc(0))).toBe(0)
    expect(crc32c(Buffer.alloc(0), 0x1234)).toBe(0x1234)
    expect(digestOf()).toBe(0)
  })

  it('writes little-endian and reads back', () => {
    const b = Buffer.alloc(8)
    writeDigest(b, 2, 0x8a9136aa)
    expect(b.toString('hex')).toBe('0000aa36918a0000')
    expect(readDigest(b, 2)).toBe(0x8a9136aa)
  })
})
