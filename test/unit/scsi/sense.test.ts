import { describe, expect, it } from 'vitest'
import {
  Asc,
  FIXED_SENSE_LENGTH,
  ScsiError,
  SenseKey,
  buildSense,
  decodeSense,
  invalidFieldInCdb,
  invalidFieldInParameterList,
  miscompare,
  sanitizeFailed,
  sanitizeInProgress,
} from '../../../src/scsi/sense.js'
import { ScsiStatus } from '../../../src/scsi/types.js'

describe('sense data', () => {
  it('builds 18-byte fixed format, current error', () => {
    const s = buildSense(SenseKey.IllegalRequest, 0x24, 0x00)
    expect(s.length).toBe(FIXED_SENSE_LENGTH)
    expect(s[0]).toBe(0x70)
    expect(s[2]).toBe(0x05)
    expect(s[7]).toBe(10)
    expect(s[12]).toBe(0x24)
    expect(s[13]).toBe(0x00)
    expect(s[15]).toBe(0) // no SKSV
  })

  it('encodes the sense-key specific field pointer (C/D, BPV, bit pointer)', () => {
    const s = invalidFieldInCdb(4, 1).sense()
    expect(s[15]).toBe(0x80 | 0x40 | 0x08 | 0x01)
    expect(s.readUInt16BE(16)).toBe(4)
    const d = decodeSense(s)
    expect(d).toMatchObject({ senseKey: 5, asc: 0x24, ascq: 0, cd: true, fieldPointer: 4, bitPointer: 1 })
  })

  it('progress indication: SKSV and the fraction done in 65536ths, no C/D or bit pointer; clamped to 16 bits', () => {
    const s = sanitizeInProgress(0x4000).sense()
    expect([s[2], s[12], s[13], s[15], s.readUInt16BE(16)]).toEqual([0x02, 0x04, 0x1b, 0x80, 0x4000])
    expect(decodeSense(s)).toMatchObject({ senseKey: 2, progress: 0x4000 })
    expect(buildSense(SenseKey.NotReady, 0x04, 0x1b, { progress: 70000 }).readUInt16BE(16)).toBe(0xffff)
    expect(decodeSense(invalidFieldInCdb(7).sense()).progress).toBeUndefined()
    expect(decodeSense(sanitizeFailed().sense())).toMatchObject({ senseKey: 3, asc: 0x31, ascq: 0x03 })
  })

  it('field pointer without bit pointer; parameter list pointer has C/D=0', () => {
    const d1 = decodeSense(invalidFieldInCdb(2).sense())
    expect(d1.bitPointer).toBeUndefined()
    expect(d1.fieldPointer).toBe(2)
    const d2 = decodeSense(invalidFieldInParameterList(13, 2).sense())
    expect(d2).toMatchObject({ asc: 0x26, cd: false, fieldPointer: 13, bitPointer: 2 })
  })

  it('information field sets VALID', () => {
    const s = miscompare(1234).sense()
    expect(s[0]).toBe(0xf0)
    const d = decodeSense(s)
    expect(d).toMatchObject({ valid: true, information: 1234, senseKey: SenseKey.Miscompare, asc: 0x1d, ascq: 0 })
  })

  it('ScsiError.of splits an Asc pair and converts to CHECK CONDITION', () => {
    const e = ScsiError.of(SenseKey.UnitAttention, Asc.ModeParametersChanged)
    expect([e.asc, e.ascq]).toEqual([0x2a, 0x01])
    const r = e.toResult()
    expect(r.status).toBe(ScsiStatus.CheckCondition)
    expect(decodeSense(r.sense!)).toMatchObject({ senseKey: 6, asc: 0x2a, ascq: 1 })
  })

  it('decodeSense rejects descriptor format', () => {
    const b = Buffer.alloc(8)
    b[0] = 0x72
    expect(() => decodeSense(b)).toThrow(/fixed-format/)
  })
})
