// REPORT SUPPORTED OPERATION CODES (all, one command, with timeouts) and REPORT SUPPORTED TASK
// MANAGEMENT FUNCTIONS, checked against the opcode table.
import { describe, expect, it } from 'vitest'
import { COMMANDS, offers } from '../../../src/scsi/opcodes.js'
import { cdb, clearUa, expectGood, expectSense, makeLu, run } from './util.js'

function rsoc(options: number, opcode = 0, sa = 0, rctd = false, alloc = 65535): Buffer {
  return cdb(12, 0xa3, (b) => {
    b[1] = 0x0c
    b[2] = (rctd ? 0x80 : 0) | options
    b[3] = opcode
    b.writeUInt16BE(sa, 4)
    b.writeUInt32BE(alloc, 6)
  })
}

describe('REPORT SUPPORTED OPERATION CODES', () => {
  it.each([false, true])('all commands: one descriptor per table row the unit offers, SERVACTV for service-action commands (sanitizeOverwrite %s)', async (sanitizeOverwrite) => {
    const { lu } = makeLu({ sanitizeOverwrite })
    await clearUa(lu)
    const r = await run(lu, rsoc(0))
    expectGood(r)
    const d = r.dataIn!
    expect(d.readUInt32BE(0)).toBe(d.length - 4)
    const seen: string[] = []
    for (let off = 4; off < d.length; off += 8) {
      const sa = d[off + 5] & 0x01 ? d.readUInt16BE(off + 2) : undefined
      seen.push(`${d[off].toString(16)}/${sa ?? '-'}/${d.readUInt16BE(off + 6)}`)
      expect(d[off + 5] & 0x02).toBe(0)
    }
    const offered = COMMANDS.filter((c) => offers(lu, c))
    expect(offered.length).toBe(sanitizeOverwrite ? COMMANDS.length : COMMANDS.length - 1)
    expect(seen).toEqual(offered.map((c) => `${c.opcode.toString(16)}/${c.serviceAction ?? '-'}/${c.cdbLength}`))
    expect(seen.includes('48/1/10')).toBe(sanitizeOverwrite)
  })

  it('with RCTD every descriptor carries a command timeouts descriptor', async () => {
    const { lu } = makeLu({ sanitizeOverwrite: true })
    await clearUa(lu)
    const d = (await run(lu, rsoc(0, 0, 0, true))).dataIn!
    expect(d.length).toBe(4 + 20 * COMMANDS.length)
    for (let off = 4; off < d.length; off += 20) {
      expect(d[off + 5] & 0x02).toBe(0x02)
      expect(d.readUInt16BE(off + 8)).toBe(0x0a)
      expect(d.readUInt32BE(off + 16)).toBeGreaterThanOrEqual(d.readUInt32BE(off + 12))
    }
  })

  it('one command: usage data starts with the opcode; options 1/2 match whether it has service actions', async () => {
    const { lu } = makeLu()
    await clearUa(lu)
    const w10 = (await run(lu, rsoc(1, 0x2a))).dataIn!
    expect(w10[1] & 0x07).toBe(3)
    expect(w10.readUInt16BE(2)).toBe(10)
    expect([...w10.subarray(4, 6)]).toEqual([0x2a, 0x18]) // DPO FUA evaluated
    expectSense(await run(lu, rsoc(1, 0x9e)), 5, 0x24, 0)
    expectSense(await run(lu, rsoc(2, 0x2a)), 5, 0x24, 0)
    const gls = (await run(lu, rsoc(2, 0x9e, 0x12, true))).dataIn!
    expect(gls[1]).toBe(0x80 | 3)
    expect(gls[4]).toBe(0x9e)
    expect(gls.length).toBe(4 + 16 + 12)
    const none = (await run(lu, rsoc(1, 0xc5))).dataIn!
    expect(none[1] & 0x07).toBe(1) // not supported
    expectSense(await run(lu, rsoc(5)), 5, 0x24, 0)
  })
})

describe('REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS', () => {
  it('ABORT TASK, ABORT TASK SET, CLEAR TASK SET, LUN RESET, TARGET RESET; REPD adds the extended bytes', async () => {
    const { lu } = makeLu()
    await clearUa(lu)
    const c = (repd: boolean) => cdb(12, 0xa3, (b) => {
      b[1] = 0x0d
      b[2] = repd ? 0x80 : 0
      b.writeUInt32BE(255, 6)
    })
    const short = (await run(lu, c(false))).dataIn!
    expect(short.length).toBe(4)
    expect(short[0]).toBe(0xda)
    const long = (await run(lu, c(true))).dataIn!
    expect(long.length).toBe(16)
    expect(long[3]).toBe(0x0c)
  })
})
