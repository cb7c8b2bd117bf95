// EXTENDED COPY (LID1) and RECEIVE COPY RESULTS.
import { describe, expect, it } from 'vitest'
import type { DiskLogicalUnit } from '../../../src/scsi/disk-lu.js'
import { deriveIdentity } from '../../../src/scsi/identity.js'
import { XCOPY_LIMITS } from '../../../src/scsi/commands/xcopy.js'
import { N1, TARGET, cdb, clearUa, expectGood, expectSense, makeLu, pattern, run } from './util.js'

/** Identification CSCD descriptor (E4h) naming a unit by its NAA designator. */
function target(lu: DiskLogicalUnit, nul = false): Buffer {
  const d = Buffer.alloc(32)
  d[0] = 0xe4
  d[1] = nul ? 0x20 : 0
  d[4] = 0x01 // binary
  d[5] = 0x03 // LU, NAA
  d[7] = lu.identity.naa.length
  lu.identity.naa.copy(d, 8)
  d.writeUIntBE(lu.blockSize, 29, 3)
  return d
}

function segment(src: number, dst: number, blocks: number, srcLba: number, dstLba: number, type = 0x02): Buffer {
  const s = Buffer.alloc(28)
  s[0] = type
  s.writeUInt16BE(0x18, 2)
  s.writeUInt16BE(src, 4)
  s.writeUInt16BE(dst, 6)
  s.writeUInt16BE(blocks, 10)
  s.writeBigUInt64BE(BigInt(srcLba), 12)
  s.writeBigUInt64BE(BigInt(dstLba), 20)
  return s
}

function list(listId: number, targets: Buffer[], segments: Buffer[]): Buffer {
  const h = Buffer.alloc(16)
  h[0] = listId
  const t = Buffer.concat(targets)
  const s = Buffer.concat(segments)
  h.writeUInt16BE(t.length, 2)
  h.writeUInt32BE(s.length, 8)
  return Buffer.concat([h, t, s])
}

function xcopy(data: Buffer, len = data.length): { c: Buffer; dataOut: Buffer } {
  return { c: cdb(16, 0x83, (b) => b.writeUInt32BE(len, 10)), dataOut: data }
}

function rcr(sa: number, listId = 0): Buffer {
  return cdb(16, 0x84, (b) => {
    b[1] = sa
    b[2] = listId
    b.writeUInt32BE(1024, 10)
  })
}

describe('EXTENDED COPY', () => {
  it('copies blocks within the unit; COPY STATUS reports it completed', async () => {
    const { lu, dev } = makeLu()
    await clearUa(lu)
    pattern(8 * 512, 3).copy(dev.data, 0)
    const x = xcopy(list(5, [target(lu)], [segment(0, 0, 8, 0, 100)]))
    expectGood(await run(lu, x.c, { dataOut: x.dataOut }))
    expect(dev.data.subarray(100 * 512, 108 * 512).equals(pattern(8 * 512, 3))).toBe(true)
    const st = (await run(lu, rcr(0x00, 5))).dataIn!
    expect(st[4]).toBe(0x01) // completed, good
    expect(st.readUInt16BE(5)).toBe(1)
    expect(st.readUInt32BE(8)).toBe(8 * 512)
  })

  it('copies between units of the node through copyTargets', async () => {
    const dst = makeLu({ lun: 1, identity: { ...deriveIdentity(TARGET, 1), targetName: TARGET, tpgt: 1, relativeTargetPortId: 1 } })
    const src = makeLu({ copyTargets: (naa) => (naa.equals(dst.lu.identity.naa) ? dst.lu : undefined) })
    await clearUa(src.lu)
    pattern(512, 9).copy(src.dev.data, 512)
    const x = xcopy(list(1, [target(src.lu), target(dst.lu)], [segment(0, 1, 1, 1, 7)]))
    expectGood(await run(src.lu, x.c, { dataOut: x.dataOut }))
    expect(dst.dev.data.subarray(7 * 512, 8 * 512).equals(pattern(512, 9))).toBe(true)
  })

  it('refuses bad lists with the senses VMware and libiscsi expect', async () => {
    const { lu } = makeLu()
    const other = makeLu({ lun: 2, identity: { ...deriveIdentity(TARGET, 2), targetName: TARGET, tpgt: 1, relativeTargetPortId: 1 } }).lu
    await clearUa(lu)
    const send = (data: Buffer, len = data.length) => {
      const x = xcopy(data, len)
      return run(lu, x.c, { dataOut: x.dataOut })
    }
    expectGood(await send(Buffer.alloc(0)))
    const good = list(1, [target(lu)], [segment(0, 0, 1, 0, 1)])
    expectSense(await send(good.subarray(0, 40), 40), 5, 0x1a, 0) // truncated
    const tooManyTargets = list(1, Array.from({ length: XCOPY_LIMITS.maxTargetDescriptors + 1 }, () => target(lu)), [segment(0, 0, 1, 0, 1)])
    expectSense(await send(tooManyTargets), 5, 0x26, 0x06)
    const tooManySegments = list(1, [target(lu)], Array.from({ length: XCOPY_LIMITS.maxSegmentDescriptors + 1 }, () => segment(0, 0, 1, 0, 1)))
    expectSense(await send(tooManySegments), 5, 0x26, 0x08)
    const badTargetType = list(1, [Buffer.alloc(32, 0xe0)], [segment(0, 0, 1, 0, 1)])
    badTargetType.fill(0, 17, 48)
    expectSense(await send(badTargetType), 5, 0x26, 0x07)
    expectSense(await send(list(1, [target(lu)], [segment(0, 0, 1, 0, 1, 0x0a)])), 5, 0x26, 0x09)
    expectSense(await send(list(1, [target(other)], [segment(0, 0, 1, 0, 1)])), 0x0a, 0x0d, 0x02) // unknown unit
    expectSense(await send(list(1, [target(lu, true)], [segment(0, 0, 1, 0, 1)])), 0x0a, 0x0d, 0x02) // NUL
    expectSense(await send(list(1, [target(lu)], [segment(0, 1, 1, 0, 1)])), 0x0a, 0x08, 0x04) // no CSCD 1
    expectSense(await send(list(1, [target(lu)], [segment(0, 0, 2, 0, 1023)])), 0x0a, 0x00, 0x00) // beyond the end
    expect((await run(lu, rcr(0x00, 1))).dataIn![4]).toBe(0x02) // completed with an error
  })
})

describe('RECEIVE COPY RESULTS', () => {
  it('OPERATING PARAMETERS gives the limits and the descriptor types; unknown lists and service actions are refused', async () => {
    const { lu } = makeLu()
    await clearUa(lu)
    const op = (await run(lu, rcr(0x03))).dataIn!
    expect(op.readUInt32BE(0)).toBe(op.length - 4)
    expect(op.readUInt16BE(8)).toBe(XCOPY_LIMITS.maxTargetDescriptors)
    expect(op.readUInt16BE(10)).toBe(XCOPY_LIMITS.maxSegmentDescriptors)
    expect(op.readUInt32BE(12)).toBe(XCOPY_LIMITS.maxDescriptorListLength)
    expect([...op.subarray(44, 44 + op[43])]).toEqual([0x02, 0xe4])
    expectSense(await run(lu, rcr(0x00, 77)), 5, 0x24, 0)
    expectSense(await run(lu, rcr(0x02)), 5, 0x24, 0)
    lu.nexusLost(N1)
  })
})
