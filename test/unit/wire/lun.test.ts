import { describe, expect, it } from 'vitest'
import { decodeLun, encodeLun, lunToBytes, MAX_LUN } from '../../../src/wire/lun.js'

describe('LUN encoding (SAM-5)', () => {
  it('peripheral device addressing below 256', () => {
    expect(encodeLun(0)).toBe(0n)
    expect(encodeLun(1)).toBe(0x0001000000000000n)
    expect(encodeLun(255)).toBe(0x00ff000000000000n)
    expect(lunToBytes(5).toString('hex')).toBe('0005000000000000')
  })

  it('flat space addressing from 256 to 16383', () => {
    expect(encodeLun(256)).toBe(0x4100000000000000n)
    expect(encodeLun(0x123)).toBe(0x4123000000000000n)
    expect(encodeLun(MAX_LUN)).toBe(0x7fff000000000000n)
    expect(lunToBytes(300).toString('hex')).toBe('412c000000000000')
  })

  it('round-trips every encodable LUN', () => {
    for (let n = 0; n <= MAX_LUN; n++) {
      const raw = encodeLun(n)
      expect(decodeLun(raw)).toBe(n)
      expect(lunToBytes(n).readBigUInt64BE(0)).toBe(raw)
    }
  })

  it('decodes flat addressing of small LUNs too', () => {
    expect(decodeLun(0x4005000000000000n)).toBe(5)
  })

  it('refuses values outside the range', () => {
    expect(() => encodeLun(-1)).toThrow(RangeError)
    expect(() => encodeLun(16384)).toThrow(RangeError)
    expect(() => encodeLun(1.5)).toThrow(RangeError)
    expect(() => lunToBytes(99999)).toThrow(RangeError)
  })

  it('returns undefined for multi-level, non-zero bus, or other addressing methods', () => {
    expect(decodeLun(0x0001000100000000n)).toBeUndefined() // second level present
    expect(decodeLun(0x0101000000000000n)).toBeUndefined() // bus 1
    expect(decodeLun(0x8001000000000000n)).toBeUndefined() // logical unit addressing
    expect(decodeLun(0xc001000000000000n)).toBeUndefined() // extended addressing
    expect(decodeLun(-1n)).toBeUndefined()
    expect(decodeLun(1n << 64n)).toBeUndefined()
  })
})
