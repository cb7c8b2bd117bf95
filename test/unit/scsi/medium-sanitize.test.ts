// Removable medium (START STOP UNIT LOEJ, PREVENT ALLOW MEDIUM REMOVAL), SANITIZE BLOCK ERASE,
// software write protection (control page SWP), and the unit attentions these owe.
import { describe, expect, it } from 'vitest'
import { ScsiStatus } from '../../../src/scsi/types.js'
import { N1, N2, cdb, clearUa, expectGood, expectSense, fill, makeLu, run, rw10 } from './util.js'

const ssu = (byte4: number) => cdb(6, 0x1b, (b) => (b[4] = byte4))
const prevent = (on: boolean) => cdb(6, 0x1e, (b) => (b[4] = on ? 1 : 0))
const EJECT = 0x02
const LOAD = 0x03

describe('removable medium', () => {
  it('a fixed disk reports RMB=0; a removable one RMB=1', async () => {
    const fixed = makeLu().lu
    const rem = makeLu({ removable: true }).lu
    expect((await run(fixed, cdb(6, 0x12, (b) => (b[4] = 36)))).dataIn![1]).toBe(0x00)
    expect((await run(rem, cdb(6, 0x12, (b) => (b[4] = 36)))).dataIn![1]).toBe(0x80)
  })

  it('eject: medium commands get NOT READY / MEDIUM NOT PRESENT; unit commands still work; load brings it back', async () => {
    const { lu, dev } = makeLu({ removable: true })
    await clearUa(lu)
    await clearUa(lu, N2)
    expectGood(await run(lu, ssu(EJECT)))
    expect(dev.flushes).toBe(1)
    for (const c of [cdb(6, 0x00), rw10(0x28, 0, 1), cdb(10, 0x25), cdb(10, 0x35)]) expectSense(await run(lu, c), 2, 0x3a, 0)
    expectGood(await run(lu, cdb(6, 0x12, (b) => (b[4] = 36))))
    expectGood(await run(lu, cdb(6, 0x1a, (b) => (b[2] = 0x3f, b[4] = 255))))
    expectGood(await run(lu, ssu(LOAD)))
    expectGood(await run(lu, cdb(6, 0x00)))
    expectSense(await run(lu, cdb(6, 0x00), { nexus: N2 }), 6, 0x28, 0) // NOT READY TO READY CHANGE
  })

  it('PREVENT from any nexus blocks eject and load; ALLOW, nexus loss and resets end it', async () => {
    const { lu } = makeLu({ removable: true })
    await clearUa(lu)
    await clearUa(lu, N2)
    expectGood(await run(lu, prevent(true), { nexus: N2 }))
    expectSense(await run(lu, ssu(EJECT)), 5, 0x53, 0x02)
    lu.nexusLost(N2)
    expectGood(await run(lu, prevent(true)))
    expectSense(await run(lu, ssu(EJECT)), 5, 0x53, 0x02)
    lu.reset('lun', N1)
    await clearUa(lu)
    expectGood(await run(lu, ssu(EJECT)))
    expectGood(await run(lu, prevent(true)))
    expectSense(await run(lu, ssu(LOAD)), 5, 0x53, 0x02)
    expectGood(await run(lu, prevent(false)))
    expectGood(await run(lu, ssu(LOAD)))
    expectSense(await run(lu, cdb(6, 0x1e, (b) => (b[4] = 2))), 5, 0x24, 0)
  })
})

describe('SANITIZE', () => {
  const sanitize = (sa: number, byte1 = 0, len = 0) => cdb(10, 0x48, (b) => {
    b[1] = byte1 | sa
    b.writeUInt16BE(len, 7)
  })

  it('BLOCK ERASE deallocates every block; IMMED returns at once and medium access waits NOT READY meanwhile', async () => {
    const { lu, dev } = makeLu()
    await clearUa(lu)
    dev.data.fill(0x77)
    expectGood(await run(lu, sanitize(0x02)))
    expect(dev.data.every((x) => x === 0)).toBe(true)
    dev.data.fill(0x77)
    const write = dev.write.bind(dev)
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    dev.write = (o, d, opts) => gate.then(() => write(o, d, opts))
    expectGood(await run(lu, sanitize(0x02, 0x80)))
    expectSense(await run(lu, rw10(0x28, 0, 1)), 2, 0x04, 0x1b)
    expectGood(await run(lu, cdb(6, 0x12, (b) => (b[4] = 36)))) // INQUIRY still answers
    release()
    for (let i = 0; i < 50 && lu.sanitize.running; i++) await new Promise((r) => setTimeout(r, 1))
    expectGood(await run(lu, rw10(0x28, 0, 1)))
    expect(dev.data.every((x) => x === 0)).toBe(true)
  })

  it('refuses CRYPTO ERASE, OVERWRITE unless offered, a parameter list, reserved fields, a write-protected or reserved unit', async () => {
    const { lu } = makeLu()
    await clearUa(lu)
    await clearUa(lu, N2)
    expectSense(await run(lu, sanitize(0x03)), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 4 })
    expectSense(await run(lu, sanitize(0x01, 0, 8), { dataOut: Buffer.alloc(8) }), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 4 })
    expectSense(await run(lu, sanitize(0x02, 0, 8), { dataOut: Buffer.alloc(8) }), 5, 0x24, 0, { fieldPointer: 7 })
    expectSense(await run(lu, sanitize(0x02, 0x40)), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 6 })
    expectSense(await run(lu, cdb(10, 0x48, (b) => ((b[1] = 2), (b[3] = 1)))), 5, 0x24, 0, { fieldPointer: 3 })
    expectGood(await run(lu, cdb(6, 0x16), { nexus: N2 }))
    expect((await run(lu, sanitize(0x02))).status).toBe(ScsiStatus.ReservationConflict)
    const ro = makeLu({ readOnly: true }).lu
    await clearUa(ro)
    expectSense(await run(ro, sanitize(0x02)), 7, 0x27, 0)
    expectGood(await run(lu, sanitize(0x1f), { nexus: N2 })) // EXIT FAILURE MODE: nothing to exit
  })
})

describe('software write protect (control page SWP)', () => {
  it('MODE SELECT sets SWP: writes fail DATA PROTECT / SOFTWARE WRITE PROTECTED, WP shows, others get MODE PARAMETERS CHANGED', async () => {
    const { lu } = makeLu()
    await clearUa(lu)
    await clearUa(lu, N2)
    const control = (await run(lu, cdb(6, 0x1a, (b) => ((b[1] = 0x08), (b[2] = 0x0a), (b[4] = 255))))).dataIn!
    const page = Buffer.from(control.subarray(4))
    page[4] |= 0x08
    const params = Buffer.concat([Buffer.alloc(4), page])
    expectGood(await run(lu, cdb(6, 0x15, (b) => ((b[1] = 0x10), (b[4] = params.length))), { dataOut: params, nexus: N2 }))
    expectSense(await run(lu, cdb(6, 0x00)), 6, 0x2a, 0x01)
    expectSense(await run(lu, rw10(0x2a, 0, 1), { dataOut: fill(512, 1) }), 7, 0x27, 0x02)
    const sense = (await run(lu, cdb(6, 0x1a, (b) => ((b[2] = 0x3f), (b[4] = 255))))).dataIn!
    expect(sense[2] & 0x80).toBe(0x80)
    page[4] &= ~0x08
    expectGood(await run(lu, cdb(6, 0x15, (b) => ((b[1] = 0x10), (b[4] = params.length))), { dataOut: Buffer.concat([Buffer.alloc(4), page]) }))
    expectGood(await run(lu, rw10(0x2a, 0, 1), { dataOut: fill(512, 1) }))
  })
})
