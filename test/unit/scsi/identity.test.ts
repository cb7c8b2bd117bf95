import { describe, expect, it } from 'vitest'
import {
  DEFAULT_COMPANY_ID,
  IdentityError,
  completeIdentity,
  deriveIdentity,
  validateIdentity,
} from '../../../src/scsi/identity.js'

const IQN = 'iqn.2024-01.com.example:storage.disk1'

describe('deriveIdentity', () => {
  it('is stable: same target and LUN give the same serial and NAA', () => {
    const a = deriveIdentity(IQN, 3)
    const b = deriveIdentity(IQN, 3)
    expect(a.serial).toBe(b.serial)
    expect(a.naa.equals(b.naa)).toBe(true)
    // Pinned: a change here changes what every host sees after an upgrade.
    expect({ serial: a.serial, naa: a.naa.toString('hex') }).toEqual({
      serial: 'C85C1F4F1CB582F1',
      naa: '62a4953b40b186b985e471c59de905db',
    })
  })

  it('ignores the case of the target name', () => {
    expect(deriveIdentity(IQN.toUpperCase(), 0).naa.equals(deriveIdentity(IQN, 0).naa)).toBe(true)
  })

  it('is distinct per LUN and per target', () => {
    const seen = new Set<string>()
    const serials = new Set<string>()
    for (const t of [IQN, `${IQN}x`, 'iqn.2024-01.com.example:other']) {
      for (let lun = 0; lun < 64; lun++) {
        const id = deriveIdentity(t, lun)
        seen.add(id.naa.toString('hex'))
        serials.add(id.serial)
      }
    }
    expect(seen.size).toBe(3 * 64)
    expect(serials.size).toBe(3 * 64)
  })

  it('makes NAA 6 (IEEE Registered Extended, 16 bytes) with the company id', () => {
    const { naa } = deriveIdentity(IQN, 0)
    expect(naa.length).toBe(16)
    expect(naa[0] >> 4).toBe(6)
    const cid = ((naa[0] & 0x0f) << 20) | (naa[1] << 12) | (naa[2] << 4) | (naa[3] >> 4)
    expect(cid).toBe(DEFAULT_COMPANY_ID)
  })

  it('makes NAA 5 (8 bytes) on request, with a custom company id', () => {
    const { naa } = deriveIdentity(IQN, 0, undefined, { naaType: 5, companyId: 0x001122 })
    expect(naa.length).toBe(8)
    expect(naa[0] >> 4).toBe(5)
    const cid = ((naa[0] & 0x0f) << 20) | (naa[1] << 12) | (naa[2] << 4) | (naa[3] >> 4)
    expect(cid).toBe(0x001122)
  })

  it('serial is 16 uppercase hex digits unless overridden', () => {
    expect(deriveIdentity(IQN, 0).serial).toMatch(/^[0-9A-F]{16}$/)
    expect(deriveIdentity(IQN, 0, 'MY-SERIAL-1').serial).toBe('MY-SERIAL-1')
    expect(deriveIdentity(IQN, 0, 'MY-SERIAL-1').naa.equals(deriveIdentity(IQN, 0).naa)).toBe(true)
  })

  it('rejects bad input', () => {
    expect(() => deriveIdentity(IQN, -1)).toThrow(IdentityError)
    expect(() => deriveIdentity(IQN, 16384)).toThrow(IdentityError)
    expect(() => deriveIdentity('', 0)).toThrow(IdentityError)
    expect(() => deriveIdentity(IQN, 0, 'has space')).toThrow(IdentityError)
    expect(() => deriveIdentity(IQN, 0, 'é')).toThrow(IdentityError)
    expect(() => deriveIdentity(IQN, 0, undefined, { companyId: 0x1000000 })).toThrow(IdentityError)
  })
})

describe('validateIdentity', () => {
  const base = completeIdentity({ ...deriveIdentity(IQN, 0), targetName: IQN, tpgt: 1, relativeTargetPortId: 1 })

  it('fills vendor, product and revision defaults', () => {
    expect(base).toMatchObject({ vendor: 'ISCSI-HA', product: 'VIRTUAL-DISK', revision: '0001' })
    expect(() => validateIdentity(base)).not.toThrow()
  })

  it('rejects fields that do not fit INQUIRY', () => {
    expect(() => validateIdentity({ ...base, vendor: 'TOO-LONG-VENDOR' })).toThrow(/vendor/)
    expect(() => validateIdentity({ ...base, product: 'x'.repeat(17) })).toThrow(/product/)
    expect(() => validateIdentity({ ...base, revision: '12345' })).toThrow(/revision/)
    expect(() => validateIdentity({ ...base, naa: Buffer.alloc(12) })).toThrow(/NAA/)
    expect(() => validateIdentity({ ...base, naa: Buffer.from('5000000000000000', 'hex').subarray(0, 8) })).not.toThrow()
    expect(() => validateIdentity({ ...base, relativeTargetPortId: 0 })).toThrow(/relative/)
    expect(() => validateIdentity({ ...base, tpgt: 70000 })).toThrow(/tpgt/)
  })
})
