import { beforeEach, describe, expect, it } from 'vitest'
import { COMMANDS, lookupCommand } from '../../../src/scsi/opcodes.js'
import { LuConfigError } from '../../../src/scsi/disk-lu.js'
import { deriveIdentity } from '../../../src/scsi/identity.js'
import { ScsiError } from '../../../src/scsi/sense.js'
import { N1, TARGET, cdb, clearUa, expectGood, expectSense, makeLu, run, type Fixture } from './util.js'

let f: Fixture
beforeEach(async () => {
  f = makeLu()
  await clearUa(f.lu)
})

const reportLuns = (alloc: number, select = 0) =>
  cdb(12, 0xa0, (b) => {
    b[2] = select
    b.writeUInt32BE(alloc, 6)
  })

function lunsIn(d: Buffer): number[] {
  const out: number[] = []
  for (let off = 8; off < 8 + d.readUInt32BE(0) && off + 8 <= d.length; off += 8) {
    const am = d[off] >> 6
    out.push(am === 1 ? ((d[off] & 0x3f) << 8) | d[off + 1] : d[off + 1])
  }
  return out
}

describe('TEST UNIT READY', () => {
  it('is GOOD', async () => {
    expectGood(await run(f.lu, cdb(6, 0x00)))
  })
})

describe('REPORT LUNS', () => {
  it('lists this LUN by default', async () => {
    const r = await run(f.lu, reportLuns(64))
    expectGood(r)
    expect(r.dataIn!.readUInt32BE(0)).toBe(8)
    expect(r.dataIn!.length).toBe(16)
    expect(lunsIn(r.dataIn!)).toEqual([0])
  })

  it('lists the target LUNs sorted, flat space addressing above 255', async () => {
    const g = makeLu({ lun: 3, lunsOfTarget: () => [300, 3, 0, 3] })
    const r = await run(g.lu, reportLuns(1024))
    expectGood(r)
    const d = r.dataIn!
    expect(d.readUInt32BE(0)).toBe(24)
    expect(lunsIn(d)).toEqual([0, 3, 300])
    expect(d[8 + 16]).toBe(0x41) // flat space, 300 = 0x012C
    expect(d[8 + 17]).toBe(0x2c)
    // select report 2 = all; 1 = well known only: none
    expect(lunsIn((await run(g.lu, reportLuns(1024, 2))).dataIn!)).toEqual([0, 3, 300])
    expect((await run(g.lu, reportLuns(1024, 1))).dataIn!.readUInt32BE(0)).toBe(0)
  })

  it('truncates to the allocation length, keeping the full LUN LIST LENGTH', async () => {
    const g = makeLu({ lunsOfTarget: () => [0, 1, 2, 3] })
    const d = (await run(g.lu, reportLuns(16))).dataIn!
    expect(d.length).toBe(16)
    expect(d.readUInt32BE(0)).toBe(32)
  })

  it('allocation length < 16 and unknown SELECT REPORT are INVALID FIELD IN CDB', async () => {
    expectSense(await run(f.lu, reportLuns(15)), 5, 0x24, 0, { fieldPointer: 6 })
    expectSense(await run(f.lu, reportLuns(64, 0x03)), 5, 0x24, 0, { fieldPointer: 2 })
  })

  it('is answered while a unit attention is pending', async () => {
    const g = makeLu()
    expectGood(await run(g.lu, reportLuns(64)))
  })
})

describe('REQUEST SENSE', () => {
  it('DESC=1 is INVALID FIELD IN CDB (fixed format only)', async () => {
    expectSense(await run(f.lu, cdb(6, 0x03, (b) => ((b[1] = 1), (b[4] = 252)))), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 0 })
  })

  it('honours the allocation length', async () => {
    const r = await run(f.lu, cdb(6, 0x03, (b) => (b[4] = 8)))
    expectGood(r)
    expect(r.dataIn!.length).toBe(8)
  })
})

describe('START STOP UNIT', () => {
  const ssu = (byte4: number, immed = 0) => cdb(6, 0x1b, (b) => ((b[1] = immed), (b[4] = byte4)))

  it('start and stop are accepted; stop flushes unless NO_FLUSH', async () => {
    expectGood(await run(f.lu, ssu(0x01)))
    expect(f.dev.flushes).toBe(0)
    expectGood(await run(f.lu, ssu(0x00, 1)))
    expect(f.dev.flushes).toBe(1)
    expectGood(await run(f.lu, ssu(0x04)))
    expect(f.dev.flushes).toBe(1)
    expectGood(await run(f.lu, cdb(6, 0x00))) // still ready
  })

  it('eject (LOEJ=1 START=0) of the fixed medium is INVALID FIELD IN CDB; load is a no-op', async () => {
    expectSense(await run(f.lu, ssu(0x02, 1)), 5, 0x24, 0, { fieldPointer: 4, bitPointer: 1 })
    expectGood(await run(f.lu, ssu(0x03)))
  })

  it('power conditions are accepted and ignore START/LOEJ', async () => {
    for (let pc = 1; pc < 16; pc++) expectGood(await run(f.lu, ssu((pc << 4) | 0x02)))
  })
})

describe('dispatch', () => {
  it('an unsupported opcode is INVALID COMMAND OPERATION CODE, also from planDataOut', async () => {
    for (const op of [0x04, 0x3b, 0x4d, 0xc0, 0xff]) {
      expectSense(await run(f.lu, cdb(16, op)), 5, 0x20, 0x00)
      expect(f.lu.planDataOut(cdb(16, op), N1).kind).toBe('fail')
    }
  })

  it('a CDB shorter than its command is INVALID FIELD IN CDB', async () => {
    expectSense(await run(f.lu, Buffer.from([0x28, 0, 0, 0, 0, 0])), 5, 0x24, 0, { fieldPointer: 0 })
    expectSense(await run(f.lu, Buffer.alloc(0)), 5, 0x20, 0)
  })

  it('LINK in the control byte is INVALID FIELD IN CDB', async () => {
    const c = cdb(10, 0x28)
    c[9] = 0x01
    expectSense(await run(f.lu, c), 5, 0x24, 0, { fieldPointer: 9, bitPointer: 0 })
  })

  it('non-write commands plan no Data-Out', () => {
    for (const op of [0x00, 0x12, 0x1a, 0x25, 0x28, 0x35, 0xa0]) expect(f.lu.planDataOut(cdb(16, op), N1)).toEqual({ kind: 'none' })
  })

  it('a handler bug becomes HARDWARE ERROR and is logged', async () => {
    const g = makeLu({ lunsOfTarget: () => { throw new Error('boom') } })
    expectSense(await run(g.lu, reportLuns(64)), 4, 0x44, 0)
    expect(g.errors).toHaveLength(1)
  })
})

describe('opcode table', () => {
  it('is consistent: usage data length, opcode byte, one row per opcode/service action', () => {
    const keys = new Set<string>()
    const every = makeLu({ sanitizeOverwrite: true }).lu // a unit that offers every row
    for (const c of COMMANDS) {
      expect(c.usage.length, c.name).toBe(c.cdbLength)
      expect(c.usage[0], c.name).toBe(c.opcode)
      const key = `${c.opcode}/${c.serviceAction ?? '-'}`
      expect(keys.has(key), c.name).toBe(false)
      keys.add(key)
      const probe = Buffer.alloc(16)
      probe[0] = c.opcode
      if (c.serviceAction !== undefined) probe[1] = c.serviceAction
      expect(lookupCommand(probe, every)).toBe(c)
    }
  })

  it('a row only some units offer (SANITIZE OVERWRITE) is an unsupported service action on the others', () => {
    const optional = COMMANDS.filter((c) => c.offered !== undefined)
    expect(optional.map((c) => [c.name, c.serviceAction])).toEqual([['SANITIZE', 0x01]])
    const probe = Buffer.alloc(16)
    probe[0] = 0x48
    probe[1] = 0x01
    expect(lookupCommand(probe, makeLu({ sanitizeOverwrite: true }).lu)).toBe(optional[0])
    let refused: unknown
    try {
      lookupCommand(probe, f.lu)
    } catch (e) {
      refused = e
    }
    expect(refused).toBeInstanceOf(ScsiError)
    expectSense((refused as ScsiError).toResult(), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 4, cd: true })
  })

  it('advertises DPO/FUA for READ/WRITE(10/12/16) and DPO for VERIFY (MODE SENSE DPOFUA=1)', () => {
    const byName = new Map(COMMANDS.map((c) => [c.name, c]))
    for (const n of ['READ(10)', 'READ(12)', 'READ(16)', 'WRITE(10)', 'WRITE(12)', 'WRITE(16)']) {
      expect(byName.get(n)!.usage[1] & 0x18, n).toBe(0x18)
    }
    for (const n of ['VERIFY(10)', 'VERIFY(12)', 'VERIFY(16)']) expect(byName.get(n)!.usage[1] & 0x10, n).toBe(0x10)
  })

  it('only write-direction commands have a Data-Out planner', () => {
    const withPlan = COMMANDS.filter((c) => c.planOut).map((c) => c.name)
    expect(withPlan.sort()).toEqual(
      [
        'WRITE(6)', 'WRITE(10)', 'WRITE(12)', 'WRITE(16)',
        'WRITE AND VERIFY(10)', 'WRITE AND VERIFY(12)', 'WRITE AND VERIFY(16)',
        'VERIFY(10)', 'VERIFY(12)', 'VERIFY(16)',
        'MODE SELECT(6)', 'MODE SELECT(10)',
        'WRITE SAME(10)', 'WRITE SAME(16)', 'UNMAP', 'COMPARE AND WRITE', 'ORWRITE(16)', 'WRITE ATOMIC(16)',
        'EXTENDED COPY(LID1)', 'SANITIZE', 'SANITIZE', 'SANITIZE',
        ...new Array(8).fill('PERSISTENT RESERVE OUT'),
      ].sort(),
    )
  })
})

describe('construction', () => {
  it('rejects bad options', () => {
    expect(() => makeLu({ blockSize: 1024 })).toThrow(LuConfigError)
    const identity = { ...deriveIdentity(TARGET, 0), targetName: TARGET, tpgt: 1, relativeTargetPortId: 1 }
    expect(() => makeLu({ lun: 20000, identity })).toThrow(LuConfigError)
    expect(() => makeLu({ sizeBytes: 100 })).toThrow(LuConfigError)
    expect(() => makeLu({ physicalBlockSize: 1000 })).toThrow(LuConfigError)
    expect(() => makeLu({ maxTransferBytes: 100 })).toThrow(LuConfigError)
  })

  it('warns when the device size is not a multiple of the block size', () => {
    const g = makeLu({ sizeBytes: 512 * 10 + 100 })
    expect(g.warnings).toHaveLength(1)
    expect(g.lu.capacityBlocks).toBe(10)
  })
})
