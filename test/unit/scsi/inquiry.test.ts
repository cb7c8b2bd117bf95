import { describe, expect, it } from 'vitest'
import { deriveIdentity } from '../../../src/scsi/identity.js'
import { TARGET, cdb, expectGood, expectSense, makeLu, run } from './util.js'

function inquiry(evpd: number, page: number, alloc: number, byte1Extra = 0): Buffer {
  return cdb(6, 0x12, (b) => {
    b[1] = evpd | byte1Extra
    b[2] = page
    b.writeUInt16BE(alloc, 3)
  })
}

interface Designator {
  protocol: number
  codeSet: number
  piv: boolean
  assoc: number
  type: number
  value: Buffer
}

function parseDesignators(page: Buffer): Designator[] {
  const out: Designator[] = []
  const end = 4 + page.readUInt16BE(2)
  for (let off = 4; off < end; ) {
    const len = page[off + 3]
    out.push({
      protocol: page[off] >> 4,
      codeSet: page[off] & 0x0f,
      piv: (page[off + 1] & 0x80) !== 0,
      assoc: (page[off + 1] >> 4) & 0x3,
      type: page[off + 1] & 0x0f,
      value: page.subarray(off + 4, off + 4 + len),
    })
    off += 4 + len
  }
  return out
}

describe('INQUIRY standard data', () => {
  it('describes an SPC-4 direct-access device', async () => {
    const { lu } = makeLu()
    const r = await run(lu, inquiry(0, 0, 260))
    expectGood(r)
    const d = r.dataIn!
    expect(d.length).toBe(96)
    expect(d[0]).toBe(0x00) // qualifier 0, type 0
    expect(d[1]).toBe(0x00) // not removable
    expect(d[2]).toBe(0x06) // SPC-4
    expect(d[3] & 0x0f).toBe(2) // response data format
    expect(d[3] & 0x10).toBe(0x10) // HiSup
    expect(d[4]).toBe(d.length - 5) // additional length
    expect(d[7] & 0x02).toBe(0x02) // CmdQue
    expect(d.toString('latin1', 8, 16)).toBe('ISCSI-HA')
    expect(d.toString('latin1', 16, 32)).toBe('VIRTUAL-DISK    ')
    expect(d.toString('latin1', 32, 36)).toBe('0001')
    const versions = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => d.readUInt16BE(58 + 2 * i))
    expect(versions).toEqual(expect.arrayContaining([0x0460, 0x04c0, 0x0960, 0x00a0]))
  })

  it('honours every allocation length 0..300 (same bytes truncated)', async () => {
    const { lu } = makeLu()
    const full = (await run(lu, inquiry(0, 0, 300))).dataIn!
    for (let alloc = 0; alloc <= 300; alloc++) {
      const r = await run(lu, inquiry(0, 0, alloc))
      expectGood(r)
      const got = r.dataIn ?? Buffer.alloc(0)
      expect(got.length).toBe(Math.min(alloc, 96))
      expect(got.equals(full.subarray(0, got.length))).toBe(true)
    }
  })

  it('returned data is a private copy', async () => {
    const { lu } = makeLu()
    const a = (await run(lu, inquiry(0, 0, 96))).dataIn!
    a.fill(0xee)
    const b = (await run(lu, inquiry(0, 0, 96))).dataIn!
    expect(b[2]).toBe(0x06)
  })

  it('EVPD=0 with a page code is INVALID FIELD IN CDB pointing at byte 2', async () => {
    const { lu } = makeLu()
    expectSense(await run(lu, inquiry(0, 0x80, 255)), 5, 0x24, 0, { fieldPointer: 2, cd: true })
  })

  it('CMDDT=1 is INVALID FIELD IN CDB pointing at byte 1 bit 1', async () => {
    const { lu } = makeLu()
    expectSense(await run(lu, inquiry(0, 0, 255, 0x02)), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 1 })
  })

  it('an unsupported VPD page is INVALID FIELD IN CDB pointing at byte 2', async () => {
    const { lu } = makeLu()
    expectSense(await run(lu, inquiry(1, 0x87, 255)), 5, 0x24, 0, { fieldPointer: 2 })
  })

  it('NACA in the control byte is INVALID FIELD IN CDB', async () => {
    const { lu } = makeLu()
    const c = inquiry(0, 0, 96)
    c[5] = 0x04
    expectSense(await run(lu, c), 5, 0x24, 0, { fieldPointer: 5, bitPointer: 2 })
  })
})

describe('VPD pages', () => {
  it('0x00 lists pages that can all be read, ascending', async () => {
    const { lu } = makeLu()
    const r = await run(lu, inquiry(1, 0x00, 255))
    expectGood(r)
    const d = r.dataIn!
    expect(d[1]).toBe(0x00)
    const pages = [...d.subarray(4, 4 + d.readUInt16BE(2))]
    expect(pages).toEqual([0x00, 0x80, 0x83, 0x8f, 0xb0, 0xb1, 0xb2])
    for (const p of pages) {
      const pr = await run(lu, inquiry(1, p, 255))
      expectGood(pr)
      expect(pr.dataIn![1]).toBe(p)
      expect(pr.dataIn!.length).toBe(4 + pr.dataIn!.readUInt16BE(2))
    }
  })

  it('0x80 carries the unit serial number', async () => {
    const { lu } = makeLu()
    const d = (await run(lu, inquiry(1, 0x80, 255))).dataIn!
    expect(d.toString('latin1', 4, 4 + d.readUInt16BE(2))).toBe(deriveIdentity(TARGET, 0).serial)
  })

  it('0x83 carries NAA, T10 vendor id, relative target port and SCSI name strings', async () => {
    const id = deriveIdentity(TARGET, 2)
    const { lu } = makeLu({ lun: 2, identity: { ...id, targetName: TARGET, tpgt: 7, relativeTargetPortId: 2 } })
    const d = (await run(lu, inquiry(1, 0x83, 1024))).dataIn!
    const ds = parseDesignators(d)
    const naa = ds.find((x) => x.type === 3)!
    expect(naa).toMatchObject({ codeSet: 1, assoc: 0, piv: false })
    expect(naa.value.equals(id.naa)).toBe(true)
    const t10 = ds.find((x) => x.type === 1)!
    expect(t10).toMatchObject({ codeSet: 2, assoc: 0 })
    expect(t10.value.toString('latin1')).toBe(`ISCSI-HA${id.serial}`)
    const rtp = ds.find((x) => x.type === 4)!
    expect(rtp).toMatchObject({ protocol: 5, codeSet: 1, piv: true, assoc: 1 })
    expect(rtp.value.readUInt16BE(2)).toBe(2)
    const names = ds.filter((x) => x.type === 8)
    expect(names.map((n) => [n.assoc, n.codeSet, n.protocol, n.piv])).toEqual([
      [1, 3, 5, true],
      [2, 3, 5, true],
    ])
    for (const n of names) expect(n.value.length % 4).toBe(0)
    const str = (b: Buffer) => b.toString('utf8', 0, b.indexOf(0))
    expect(str(names[0].value)).toBe(`${TARGET},t,0x0007`)
    expect(str(names[1].value)).toBe(TARGET)
  })

  it('0xB0 block limits: SBC-3 length, transfer, UNMAP, WRITE SAME, atomic and COMPARE AND WRITE limits', async () => {
    const { lu } = makeLu({ maxTransferBytes: 1024 * 1024, physicalBlockSize: 4096, optimalTransferBytes: 65536 })
    const d = (await run(lu, inquiry(1, 0xb0, 255))).dataIn!
    expect(d.length).toBe(64)
    expect(d[3]).toBe(0x3c)
    expect(d.readUInt16BE(6)).toBe(8) // optimal granularity: one physical block
    expect(d.readUInt32BE(8)).toBe(2048) // max transfer, blocks
    expect(d.readUInt32BE(12)).toBe(128) // optimal transfer, blocks
    expect(d[4] & 0x01).toBe(0) // WSNZ=0
    expect(d[5]).toBe(255) // MAXIMUM COMPARE AND WRITE LENGTH
    expect(d.readUInt32BE(20)).toBe((256 * 1024 * 1024) / 512) // max unmap LBA count
    expect(d.readUInt32BE(24)).toBe(256) // max unmap descriptors
    expect(d.readUInt32BE(28)).toBe(8) // optimal unmap granularity: 4 KiB
    expect(d.readUInt32BE(32)).toBe(0x8000_0000) // UGAVALID, alignment 0
    expect(Number(d.readBigUInt64BE(36))).toBe(0xffff) // max WRITE SAME length
    expect(d.readUInt32BE(44)).toBe(2048) // max atomic transfer length
  })

  it('0xB1: non-rotating medium', async () => {
    const { lu } = makeLu()
    const d = (await run(lu, inquiry(1, 0xb1, 255))).dataIn!
    expect(d.readUInt16BE(4)).toBe(1)
  })

  it('0xB2: thin provisioned, UNMAP and WRITE SAME unmap, deallocated blocks read zeros, no anchors', async () => {
    const { lu } = makeLu()
    const d = (await run(lu, inquiry(1, 0xb2, 255))).dataIn!
    expect(d.readUInt16BE(2)).toBe(4)
    expect(d[5]).toBe(0x80 | 0x40 | 0x20 | 0x04) // LBPU LBPWS LBPWS10 LBPRZ, ANC_SUP=0
    expect(d[6] & 0x07).toBe(0x02) // thin provisioned
  })

  it('0xB1: WABEREQ says reads after SANITIZE BLOCK ERASE succeed', async () => {
    const { lu } = makeLu()
    const d = (await run(lu, inquiry(1, 0xb1, 255))).dataIn!
    expect(d[7] >> 6).toBe(1)
  })

  it('0x8F third-party copy: supported commands, parameter data, descriptors, general copy operations', async () => {
    const { lu } = makeLu()
    const d = (await run(lu, inquiry(1, 0x8f, 255))).dataIn!
    const types: number[] = []
    for (let off = 4; off < 4 + d.readUInt16BE(2); off += 4 + d.readUInt16BE(off + 2)) types.push(d.readUInt16BE(off))
    expect(types).toEqual([0x0001, 0x0008, 0x0004, 0x000c, 0x8001])
  })
})
