import { beforeEach, describe, expect, it } from 'vitest'
import { N1, cdb, clearUa, expectGood, expectSense, makeLu, run, type Fixture } from './util.js'

const BLOCKS = 1000

function sense6(page: number, opts: { pc?: number; dbd?: boolean; sub?: number; alloc?: number } = {}): Buffer {
  return cdb(6, 0x1a, (b) => {
    b[1] = opts.dbd ? 0x08 : 0
    b[2] = ((opts.pc ?? 0) << 6) | page
    b[3] = opts.sub ?? 0
    b[4] = opts.alloc ?? 255
  })
}

function sense10(page: number, opts: { pc?: number; dbd?: boolean; llbaa?: boolean; sub?: number; alloc?: number } = {}): Buffer {
  return cdb(10, 0x5a, (b) => {
    b[1] = (opts.dbd ? 0x08 : 0) | (opts.llbaa ? 0x10 : 0)
    b[2] = ((opts.pc ?? 0) << 6) | page
    b[3] = opts.sub ?? 0
    b.writeUInt16BE(opts.alloc ?? 4096, 7)
  })
}

/** Pages in mode sense data after header and block descriptors: code → bytes. */
function pagesOf(d: Buffer, ten: boolean): Map<number, Buffer> {
  const hdr = ten ? 8 : 4
  const bdl = ten ? d.readUInt16BE(6) : d[3]
  const total = ten ? d.readUInt16BE(0) + 2 : d[0] + 1
  const out = new Map<number, Buffer>()
  for (let off = hdr + bdl; off < total; off += 2 + d[off + 1]) out.set(d[off] & 0x3f, d.subarray(off, off + 2 + d[off + 1]))
  return out
}

function select6(params: Buffer, byte1 = 0x10): Buffer {
  return cdb(6, 0x15, (b) => {
    b[1] = byte1
    b[4] = params.length
  })
}

function select10(params: Buffer, byte1 = 0x10): Buffer {
  return cdb(10, 0x55, (b) => {
    b[1] = byte1
    b.writeUInt16BE(params.length, 7)
  })
}

let f: Fixture
beforeEach(async () => {
  f = makeLu({ sizeBytes: BLOCKS * 512 })
  await clearUa(f.lu)
})

async function currentPage(code: number): Promise<Buffer> {
  const r = await run(f.lu, sense6(code, { dbd: true }))
  expectGood(r)
  return Buffer.from(pagesOf(r.dataIn!, false).get(code)!)
}

describe('MODE SENSE', () => {
  it('(6) all pages: header, short block descriptor, pages 01 08 0A 1C in order', async () => {
    const r = await run(f.lu, sense6(0x3f))
    expectGood(r)
    const d = r.dataIn!
    expect(d[0]).toBe(d.length - 1) // mode data length
    expect(d[1]).toBe(0) // medium type
    expect(d[2]).toBe(0x10) // DPOFUA, not WP
    expect(d[3]).toBe(8)
    expect(d.readUInt32BE(4)).toBe(BLOCKS)
    expect(d.readUIntBE(9, 3)).toBe(512)
    expect([...pagesOf(d, false).keys()]).toEqual([0x01, 0x08, 0x0a, 0x1c])
    expect(pagesOf(d, false).get(0x08)!.length).toBe(20)
    expect(pagesOf(d, false).get(0x08)![2] & 0x04).toBe(0x04) // WCE
    expect(pagesOf(d, false).get(0x0a)![2] & 0x04).toBe(0) // D_SENSE=0: fixed format sense
  })

  it('(6) subpage 0xFF of all pages is the same data; other subpages are INVALID FIELD IN CDB', async () => {
    const a = (await run(f.lu, sense6(0x3f))).dataIn!
    const b = (await run(f.lu, sense6(0x3f, { sub: 0xff }))).dataIn!
    expect(a.equals(b)).toBe(true)
    expectSense(await run(f.lu, sense6(0x08, { sub: 1 })), 5, 0x24, 0, { fieldPointer: 3 })
    expectSense(await run(f.lu, sense6(0x3f, { sub: 1 })), 5, 0x24, 0, { fieldPointer: 3 })
  })

  it('(6) DBD drops the block descriptor; a single page', async () => {
    const d = (await run(f.lu, sense6(0x0a, { dbd: true }))).dataIn!
    expect(d[3]).toBe(0)
    expect(d.length).toBe(4 + 12)
    expect(d[4]).toBe(0x0a)
    expect(d[5]).toBe(0x0a)
  })

  it('(6) an allocation length shorter than the data truncates it; the length field keeps the full size', async () => {
    const full = (await run(f.lu, sense6(0x3f))).dataIn!
    const r = await run(f.lu, sense6(0x3f, { alloc: 4 }))
    expectGood(r)
    expect(r.dataIn!.length).toBe(4)
    expect(r.dataIn!.equals(full.subarray(0, 4))).toBe(true)
    expectGood(await run(f.lu, sense6(0x3f, { alloc: 0 })))
  })

  it('changeable values: only WCE and SWP', async () => {
    const d = (await run(f.lu, sense6(0x3f, { pc: 1 }))).dataIn!
    expect(d.readUInt32BE(4)).toBe(0) // block descriptor not changeable
    const pages = pagesOf(d, false)
    for (const [code, p] of pages) {
      const masks = [...p.subarray(2)]
      if (code === 0x08) expect(masks).toEqual([0x04, ...new Array(17).fill(0)])
      else if (code === 0x0a) expect(masks).toEqual([0, 0, 0x08, ...new Array(7).fill(0)])
      else expect(masks.every((m) => m === 0)).toBe(true)
    }
  })

  it('default values equal the initial current values', async () => {
    const cur = (await run(f.lu, sense6(0x3f))).dataIn!
    const def = (await run(f.lu, sense6(0x3f, { pc: 2 }))).dataIn!
    expect(def.equals(cur)).toBe(true)
  })

  it('saved values: SAVING PARAMETERS NOT SUPPORTED', async () => {
    expectSense(await run(f.lu, sense6(0x08, { pc: 3 })), 5, 0x39, 0x00, { fieldPointer: 2, bitPointer: 7 })
  })

  it('unknown page: INVALID FIELD IN CDB pointing at the page code', async () => {
    expectSense(await run(f.lu, sense6(0x19)), 5, 0x24, 0, { fieldPointer: 2, bitPointer: 5 })
    expectSense(await run(f.lu, sense10(0x00)), 5, 0x24, 0, { fieldPointer: 2, bitPointer: 5 })
  })

  it('(10) short and long (LLBAA) block descriptors', async () => {
    const s = (await run(f.lu, sense10(0x08))).dataIn!
    expect(s.readUInt16BE(0)).toBe(s.length - 2)
    expect(s[3]).toBe(0x10)
    expect(s[4] & 1).toBe(0)
    expect(s.readUInt16BE(6)).toBe(8)
    expect(s.readUInt32BE(8)).toBe(BLOCKS)
    expect(s.readUIntBE(13, 3)).toBe(512)
    expect(s.length).toBe(8 + 8 + 20)
    const l = (await run(f.lu, sense10(0x08, { llbaa: true }))).dataIn!
    expect(l[4] & 1).toBe(1) // LONGLBA
    expect(l.readUInt16BE(6)).toBe(16)
    expect(l.readBigUInt64BE(8)).toBe(BigInt(BLOCKS))
    expect(l.readUInt32BE(20)).toBe(512)
    expect(l.length).toBe(8 + 16 + 20)
    const n = (await run(f.lu, sense10(0x08, { llbaa: true, dbd: true }))).dataIn!
    expect(n.readUInt16BE(6)).toBe(0)
    expect(n[4] & 1).toBe(0)
  })

  it('read-only LU reports WP', async () => {
    const g = makeLu({ readOnly: true })
    await clearUa(g.lu)
    expect((await run(g.lu, sense6(0x3f))).dataIn![2]).toBe(0x90)
    expect((await run(g.lu, sense10(0x3f))).dataIn![3]).toBe(0x90)
  })
})

describe('MODE SELECT', () => {
  async function selectCaching(mutate: (page: Buffer) => void, ten = false): Promise<ReturnType<typeof run>> {
    const page = await currentPage(0x08)
    mutate(page)
    const hdr = Buffer.alloc(ten ? 8 : 4)
    const params = Buffer.concat([hdr, page])
    return run(f.lu, ten ? select10(params) : select6(params), { dataOut: params })
  }

  it('(6) clears and sets WCE; MODE SENSE reflects it', async () => {
    expectGood(await selectCaching((p) => (p[2] &= ~0x04)))
    expect(f.lu.writeCacheEnabled).toBe(false)
    expect((await currentPage(0x08))[2] & 0x04).toBe(0)
    expectGood(await selectCaching((p) => (p[2] |= 0x04)))
    expect(f.lu.writeCacheEnabled).toBe(true)
  })

  it('(10) works the same; PS bit in the page is ignored', async () => {
    expectGood(await selectCaching((p) => ((p[0] |= 0x80), (p[2] &= ~0x04)), true))
    expect(f.lu.writeCacheEnabled).toBe(false)
  })

  it('planDataOut asks for the parameter list length', () => {
    expect(f.lu.planDataOut(select6(Buffer.alloc(24)), N1)).toEqual({ kind: 'out', bytes: 24 })
    expect(f.lu.planDataOut(select10(Buffer.alloc(300)), N1)).toEqual({ kind: 'out', bytes: 300 })
    expect(f.lu.planDataOut(select6(Buffer.alloc(0)), N1)).toEqual({ kind: 'none' })
  })

  it('a non-changeable bit: INVALID FIELD IN PARAMETER LIST pointing at the byte and bit', async () => {
    const r = await selectCaching((p) => (p[2] |= 0x01)) // RCD
    expectSense(r, 5, 0x26, 0, { cd: false, fieldPointer: 4 + 2, bitPointer: 0 })
    expect(f.lu.writeCacheEnabled).toBe(true)
    const page = await currentPage(0x0a)
    page[2] |= 0x04 // D_SENSE
    const params = Buffer.concat([Buffer.alloc(4), page])
    expectSense(await run(f.lu, select6(params), { dataOut: params }), 5, 0x26, 0, { fieldPointer: 6, bitPointer: 2 })
  })

  it('nothing is applied unless every page is valid', async () => {
    const caching = await currentPage(0x08)
    caching[2] &= ~0x04
    const control = await currentPage(0x0a)
    control[3] ^= 0x80
    const params = Buffer.concat([Buffer.alloc(4), caching, control])
    expectSense(await run(f.lu, select6(params), { dataOut: params }), 5, 0x26, 0, { fieldPointer: 4 + 20 + 3 })
    expect(f.lu.writeCacheEnabled).toBe(true)
  })

  it('SP=1: INVALID FIELD IN CDB (saving not supported), also from planDataOut', async () => {
    const params = Buffer.concat([Buffer.alloc(4), await currentPage(0x08)])
    expectSense(await run(f.lu, select6(params, 0x11), { dataOut: params }), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 0 })
    expect(f.lu.planDataOut(select6(params, 0x11), N1).kind).toBe('fail')
  })

  it('unknown page, wrong page length, subpage format: INVALID FIELD IN PARAMETER LIST', async () => {
    const unknown = Buffer.from([0, 0, 0, 0, 0x19, 2, 0, 0])
    expectSense(await run(f.lu, select6(unknown), { dataOut: unknown }), 5, 0x26, 0, { fieldPointer: 4, bitPointer: 5 })
    const badLen = Buffer.concat([Buffer.alloc(4), Buffer.from([0x08, 0x10]), Buffer.alloc(16)])
    expectSense(await run(f.lu, select6(badLen), { dataOut: badLen }), 5, 0x26, 0, { fieldPointer: 5 })
    const spf = Buffer.from([0, 0, 0, 0, 0x48, 1, 0, 0])
    expectSense(await run(f.lu, select6(spf), { dataOut: spf }), 5, 0x26, 0, { fieldPointer: 4, bitPointer: 6 })
  })

  it('truncated parameter data: PARAMETER LIST LENGTH ERROR', async () => {
    const page = await currentPage(0x08)
    const params = Buffer.concat([Buffer.alloc(4), page])
    const short = params.subarray(0, 10)
    expectSense(await run(f.lu, select6(params), { dataOut: short }), 5, 0x1a, 0)
    expectSense(await run(f.lu, select10(Buffer.alloc(8)), { dataOut: Buffer.alloc(5) }), 5, 0x1a, 0)
  })

  it('a block descriptor is accepted when it matches the medium, refused otherwise', async () => {
    const page = await currentPage(0x08)
    page[2] &= ~0x04
    const hdr = Buffer.from([0, 0, 0, 8])
    const bd = Buffer.alloc(8)
    bd.writeUInt32BE(BLOCKS, 0)
    bd.writeUIntBE(512, 5, 3)
    const ok = Buffer.concat([hdr, bd, page])
    expectGood(await run(f.lu, select6(ok), { dataOut: ok }))
    expect(f.lu.writeCacheEnabled).toBe(false)
    const badLen = Buffer.from(ok)
    badLen.writeUIntBE(4096, 4 + 5, 3)
    expectSense(await run(f.lu, select6(badLen), { dataOut: badLen }), 5, 0x26, 0, { fieldPointer: 9 })
    const badCount = Buffer.from(ok)
    badCount.writeUInt32BE(5, 4)
    expectSense(await run(f.lu, select6(badCount), { dataOut: badCount }), 5, 0x26, 0, { fieldPointer: 4 })
    const badBdl = Buffer.from(ok)
    badBdl[3] = 4
    expectSense(await run(f.lu, select6(badBdl), { dataOut: badBdl }), 5, 0x26, 0, { fieldPointer: 3 })
  })

  it('a long block descriptor in MODE SELECT(10)', async () => {
    const page = await currentPage(0x08)
    const hdr = Buffer.alloc(8)
    hdr[4] = 1
    hdr.writeUInt16BE(16, 6)
    const bd = Buffer.alloc(16)
    bd.writeBigUInt64BE(BigInt(BLOCKS), 0)
    bd.writeUInt32BE(512, 12)
    const params = Buffer.concat([hdr, bd, page])
    expectGood(await run(f.lu, select10(params), { dataOut: params }))
  })

  it('medium type other than 0: INVALID FIELD IN PARAMETER LIST', async () => {
    const params = Buffer.concat([Buffer.from([0, 5, 0, 0]), await currentPage(0x08)])
    expectSense(await run(f.lu, select6(params), { dataOut: params }), 5, 0x26, 0, { fieldPointer: 1 })
  })

  it('parameter list length 0 and header-only lists are GOOD no-ops', async () => {
    expectGood(await run(f.lu, select6(Buffer.alloc(0))))
    expectGood(await run(f.lu, select6(Buffer.alloc(4)), { dataOut: Buffer.alloc(4) }))
    expect(f.lu.writeCacheEnabled).toBe(true)
  })
})
