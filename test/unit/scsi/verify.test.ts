import { beforeEach, describe, expect, it } from 'vitest'
import { N1, clearUa, expectGood, expectSense, makeLu, pattern, run, rw10, rw12, rw16, type Fixture } from './util.js'

const BS = 512
const BLOCKS = 256

const FAMILIES = [
  { name: '10', verify: 0x2f, writeVerify: 0x2e, build: rw10, lenByte: 7 },
  { name: '12', verify: 0xaf, writeVerify: 0xae, build: rw12, lenByte: 6 },
  { name: '16', verify: 0x8f, writeVerify: 0x8e, build: rw16, lenByte: 10 },
]

const BYTCHK = 0x02
const DPO = 0x10

let f: Fixture
beforeEach(async () => {
  f = makeLu({ sizeBytes: BLOCKS * BS })
  await clearUa(f.lu)
  pattern(BLOCKS * BS, 11).copy(f.dev.data)
})

describe.each(FAMILIES)('VERIFY($name)', ({ verify, build }) => {
  it('BYTCHK=0: range check only, no Data-Out, no read', async () => {
    expect(f.lu.planDataOut(build(verify, 0, 8), N1)).toEqual({ kind: 'none' })
    expectGood(await run(f.lu, build(verify, 0, 8)))
    expectGood(await run(f.lu, build(verify, 0, 8, DPO)))
    expect(f.dev.reads).toEqual([])
    expectSense(await run(f.lu, build(verify, BLOCKS - 1, 2)), 5, 0x21, 0)
  })

  it('BYTCHK=1: matching data is GOOD', async () => {
    const c = build(verify, 3, 4, BYTCHK)
    expect(f.lu.planDataOut(c, N1)).toEqual({ kind: 'out', bytes: 4 * BS })
    expectGood(await run(f.lu, c, { dataOut: Buffer.from(f.dev.data.subarray(3 * BS, 7 * BS)) }))
  })

  it('BYTCHK=1: a difference is MISCOMPARE with INFORMATION = offset in the Data-Out buffer', async () => {
    for (const offset of [0, 1, 511, 512, 4 * BS - 1, 1234]) {
      const data = Buffer.from(f.dev.data.subarray(3 * BS, 7 * BS))
      data[offset] ^= 0x58
      expectSense(await run(f.lu, build(verify, 3, 4, BYTCHK), { dataOut: data }), 0xe, 0x1d, 0x00, {
        valid: true,
        information: offset,
      })
    }
  })

  it('BYTCHK=1 at the end of the LU and beyond it', async () => {
    const tail = Buffer.from(f.dev.data.subarray((BLOCKS - 2) * BS))
    expectGood(await run(f.lu, build(verify, BLOCKS - 2, 2, BYTCHK), { dataOut: tail }))
    expectSense(await run(f.lu, build(verify, BLOCKS - 1, 2, BYTCHK), { dataOut: tail }), 5, 0x21, 0)
  })

  it('zero blocks is GOOD', async () => {
    expectGood(await run(f.lu, build(verify, 0, 0, BYTCHK)))
  })

  it('VRPROTECT non-zero and BYTCHK 10b/11b are INVALID FIELD IN CDB', async () => {
    expectSense(await run(f.lu, build(verify, 0, 1, 0x20)), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 7 })
    expectSense(await run(f.lu, build(verify, 0, 1, 0x04)), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 2 })
    expectSense(await run(f.lu, build(verify, 0, 1, 0x06)), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 2 })
  })
})

describe.each(FAMILIES)('WRITE AND VERIFY($name)', ({ writeVerify, build }) => {
  it('writes durably (FUA) whatever the cache policy', async () => {
    const data = pattern(2 * BS, 99)
    expectGood(await run(f.lu, build(writeVerify, 5, 2), { dataOut: data }))
    expect(f.dev.writes).toEqual([{ offset: 5 * BS, length: 2 * BS, fua: true }])
    expect(f.dev.data.subarray(5 * BS, 7 * BS).equals(data)).toBe(true)
  })

  it('BYTCHK=1 reads back and compares', async () => {
    const data = pattern(BS, 5)
    expectGood(await run(f.lu, build(writeVerify, 0, 1, BYTCHK | DPO), { dataOut: data }))
    expect(f.dev.reads).toEqual([{ offset: 0, length: BS }])
  })

  it('is range checked, write protected and rejects WRPROTECT', async () => {
    expectSense(await run(f.lu, build(writeVerify, BLOCKS, 1), { dataOut: Buffer.alloc(BS) }), 5, 0x21, 0)
    expectSense(await run(f.lu, build(writeVerify, 0, 1, 0x40), { dataOut: Buffer.alloc(BS) }), 5, 0x24, 0)
    const ro = makeLu({ sizeBytes: BLOCKS * BS, readOnly: true })
    await clearUa(ro.lu)
    expectSense(await run(ro.lu, build(writeVerify, 0, 1), { dataOut: Buffer.alloc(BS) }), 7, 0x27, 0)
    expect(f.dev.writes).toEqual([])
  })

  it('plans blocks × block size; zero blocks is GOOD', async () => {
    expect(f.lu.planDataOut(build(writeVerify, 0, 3), N1)).toEqual({ kind: 'out', bytes: 3 * BS })
    expectGood(await run(f.lu, build(writeVerify, 0, 0)))
  })
})
