import { describe, expect, it } from 'vitest'
import { ScsiStatus } from '../../../src/scsi/types.js'
import { decodeSense } from '../../../src/scsi/sense.js'
import { N1, N2, cdb, clearUa, expectGood, expectSense, makeLu, nexus, run } from './util.js'

const TUR = cdb(6, 0x00)
const INQUIRY = cdb(6, 0x12, (b) => b.writeUInt16BE(96, 3))
const REPORT_LUNS = cdb(12, 0xa0, (b) => b.writeUInt32BE(64, 6))
const REQUEST_SENSE = cdb(6, 0x03, (b) => (b[4] = 18))
const READ10 = cdb(10, 0x28, (b) => b.writeUInt16BE(1, 7))

/** MODE SELECT(6) of the caching page with WCE set to `wce`. */
function modeSelectCaching(wce: boolean): { c: Buffer; data: Buffer } {
  const data = Buffer.alloc(4 + 20)
  data[4] = 0x08
  data[5] = 0x12
  data[6] = wce ? 0x04 : 0
  return { c: cdb(6, 0x15, (b) => ((b[1] = 0x10), (b[4] = data.length))), data }
}

describe('unit attentions', () => {
  it('a new nexus gets POWER ON, RESET OR BUS DEVICE RESET once, on its first reporting command', async () => {
    const { lu } = makeLu()
    expectSense(await run(lu, TUR), 6, 0x29, 0x00)
    expectGood(await run(lu, TUR))
    // other nexus: its own condition
    expectSense(await run(lu, READ10, { nexus: N2 }), 6, 0x29, 0x00)
    expectGood(await run(lu, READ10, { nexus: N2 }))
  })

  it('INQUIRY and REPORT LUNS neither report nor clear it', async () => {
    const { lu } = makeLu()
    expectGood(await run(lu, INQUIRY))
    expectGood(await run(lu, REPORT_LUNS))
    expect(lu.unitAttentions.pending(N1)).toEqual([0x2900])
    expectSense(await run(lu, TUR), 6, 0x29, 0x00)
    expectGood(await run(lu, TUR))
  })

  it('an unsupported opcode reports the unit attention first', async () => {
    const { lu } = makeLu()
    expectSense(await run(lu, cdb(6, 0xff)), 6, 0x29, 0x00)
    expectSense(await run(lu, cdb(6, 0xff)), 5, 0x20, 0x00)
  })

  it('REQUEST SENSE returns the pending unit attention as data and clears it, then NO SENSE', async () => {
    const { lu } = makeLu()
    const r1 = await run(lu, REQUEST_SENSE)
    expectGood(r1)
    expect(decodeSense(r1.dataIn!)).toMatchObject({ senseKey: 6, asc: 0x29, ascq: 0 })
    const r2 = await run(lu, REQUEST_SENSE)
    expectGood(r2)
    expect(r2.dataIn!.length).toBe(18)
    expect(decodeSense(r2.dataIn!)).toMatchObject({ senseKey: 0, asc: 0, ascq: 0 })
    expectGood(await run(lu, TUR))
  })

  it('LUN reset establishes BUS DEVICE RESET FUNCTION OCCURRED for every nexus, issuer included', async () => {
    const { lu } = makeLu()
    await clearUa(lu, N1)
    await clearUa(lu, N2)
    lu.reset('lun', N1)
    expectSense(await run(lu, TUR, { nexus: N1 }), 6, 0x29, 0x03)
    expectGood(await run(lu, TUR, { nexus: N1 }))
    expectSense(await run(lu, TUR, { nexus: N2 }), 6, 0x29, 0x03)
    expectGood(await run(lu, TUR, { nexus: N2 }))
  })

  it('target resets use 29h/00h (warm) and 29h/01h (cold) and supersede queued conditions', async () => {
    const { lu } = makeLu()
    await clearUa(lu, N1)
    await clearUa(lu, N2)
    const { c, data } = modeSelectCaching(false)
    expectGood(await run(lu, c, { dataOut: data, nexus: N2 }))
    expect(lu.unitAttentions.pending(N1)).toEqual([0x2a01])
    lu.reset('warm')
    expect(lu.unitAttentions.pending(N1)).toEqual([0x2900])
    lu.reset('cold')
    expectSense(await run(lu, TUR), 6, 0x29, 0x01)
    expectGood(await run(lu, TUR))
  })

  it('MODE SELECT that changes a parameter establishes MODE PARAMETERS CHANGED for the other nexuses only', async () => {
    const { lu } = makeLu()
    const n3 = nexus('iqn.2024-01.test:init3', '400001370003')
    await clearUa(lu, N1)
    await clearUa(lu, N2)
    await clearUa(lu, n3)
    const { c, data } = modeSelectCaching(false)
    expectGood(await run(lu, c, { dataOut: data, nexus: N1 }))
    expectGood(await run(lu, TUR, { nexus: N1 }))
    expectSense(await run(lu, TUR, { nexus: N2 }), 6, 0x2a, 0x01)
    expectGood(await run(lu, TUR, { nexus: N2 }))
    expectSense(await run(lu, TUR, { nexus: n3 }), 6, 0x2a, 0x01)
    // the same values again change nothing: no new condition
    expectGood(await run(lu, c, { dataOut: data, nexus: N1 }))
    expectGood(await run(lu, TUR, { nexus: N2 }))
  })

  it('mode parameter changes do not pile up', async () => {
    const { lu } = makeLu()
    await clearUa(lu, N1)
    await clearUa(lu, N2)
    for (let i = 0; i < 5; i++) {
      const { c, data } = modeSelectCaching(i % 2 === 1)
      expectGood(await run(lu, c, { dataOut: data, nexus: N1 }))
    }
    expect(lu.unitAttentions.pending(N2)).toEqual([0x2a01])
  })

  it('nexusLost forgets the nexus: a new login gets the power-on condition again', async () => {
    const { lu } = makeLu()
    await clearUa(lu, N1)
    lu.nexusLost(N1)
    expect(lu.unitAttentions.size).toBe(0)
    expectSense(await run(lu, TUR), 6, 0x29, 0x00)
  })

  it('a unit attention is reported without touching Data-Out', async () => {
    const { lu, dev } = makeLu()
    const w = cdb(10, 0x2a, (b) => b.writeUInt16BE(1, 7))
    const r = await run(lu, w, { dataOut: Buffer.alloc(512, 7) })
    expect(r.status).toBe(ScsiStatus.CheckCondition)
    expect(dev.writes).toEqual([])
  })
})
