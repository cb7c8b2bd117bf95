// The initiator's pure data-path pieces: Data-In reassembly, the CmdSN window, CDB builders and
// the parsers of what the convenience commands return.

import { describe, expect, it } from 'vitest'
import {
  CommandWindow,
  DataInAssembler,
  InitiatorProtocolError,
  cdbInquiry,
  cdbRead16,
  cdbReadCapacity16,
  cdbWrite16,
  parseInquiry,
  parseReadCapacity16,
  parseReportLuns,
  parseSense,
} from '../../../src/initiator/index.js'

describe('DataInAssembler', () => {
  const bytes = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff))

  it('reassembles consecutive Data-In PDUs', () => {
    const a = new DataInAssembler(10000)
    const whole = bytes(10000, 3)
    for (let off = 0, sn = 0; off < whole.length; off += 4096, sn++) {
      a.add({ dataSN: sn, bufferOffset: off, data: whole.subarray(off, off + 4096) })
    }
    expect(a.pdus).toBe(3)
    expect(a.bytes).toBe(10000)
    expect(a.checkResidual({ overflow: false, underflow: false, count: 0 })).toBeUndefined()
    expect(a.result().equals(whole)).toBe(true)
  })

  it('copies out of the receive buffer (views may be reused after add)', () => {
    const a = new DataInAssembler(8)
    const view = Buffer.from([1, 2, 3, 4])
    a.add({ dataSN: 0, bufferOffset: 0, data: view })
    view.fill(0)
    a.add({ dataSN: 1, bufferOffset: 4, data: Buffer.from([5, 6, 7, 8]) })
    expect([...a.result()]).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
  })

  it('returns a short read trimmed, consistent with an underflow residual', () => {
    const a = new DataInAssembler(4096)
    a.add({ dataSN: 0, bufferOffset: 0, data: bytes(512, 1) })
    expect(a.result().length).toBe(512)
    expect(a.checkResidual({ overflow: false, underflow: true, count: 3584 })).toBeUndefined()
    expect(a.checkResidual({ overflow: false, underflow: false, count: 0 })).toMatch(/received 512 bytes/)
    expect(a.checkResidual({ overflow: false, underflow: true, count: 100 })).toBeDefined()
  })

  it('handles a read that returned nothing', () => {
    const a = new DataInAssembler(512)
    expect(a.result().length).toBe(0)
    expect(a.checkResidual({ overflow: false, underflow: true, count: 512 })).toBeUndefined()
  })

  it('rejects DataSN gaps, offset jumps and data beyond the expected length', () => {
    const gap = new DataInAssembler(8192)
    gap.add({ dataSN: 0, bufferOffset: 0, data: bytes(1024, 0) })
    expect(() => gap.add({ dataSN: 2, bufferOffset: 1024, data: bytes(1024, 0) })).toThrow(InitiatorProtocolError)

    const jump = new DataInAssembler(8192)
    jump.add({ dataSN: 0, bufferOffset: 0, data: bytes(1024, 0) })
    expect(() => jump.add({ dataSN: 1, bufferOffset: 2048, data: bytes(1024, 0) })).toThrow(/BufferOffset 2048, expected 1024/)

    const over = new DataInAssembler(1000)
    expect(() => over.add({ dataSN: 0, bufferOffset: 0, data: bytes(1024, 0) })).toThrow(/beyond the ExpectedDataTransferLength/)
  })
})

describe('CommandWindow', () => {
  it('hands out consecutive CmdSNs while the window is open', () => {
    const w = new CommandWindow(10)
    expect(w.open).toBe(true)
    expect(w.room).toBe(1)
    expect(w.take()).toBe(10)
    expect(w.open).toBe(false)
    expect(() => w.take()).toThrow(/window closed/)
    expect(w.update(11, 14)).toBe(true)
    expect(w.room).toBe(4)
    expect([w.take(), w.take(), w.take(), w.take()]).toEqual([11, 12, 13, 14])
    expect(w.open).toBe(false)
  })

  it('only moves forward and ignores an invalid window', () => {
    const w = new CommandWindow(100)
    w.update(100, 130)
    w.take()
    w.update(100, 120) // MaxCmdSN going back: ignored
    expect(w.maxCmdSN).toBe(130)
    w.update(101, 99) // MaxCmdSN < ExpCmdSN - 1: both ignored (RFC 7143 §4.2.2.1)
    expect(w.expCmdSN).toBe(100)
    expect(w.maxCmdSN).toBe(130)
    w.update(101, 100) // zero window: valid
    expect(w.expCmdSN).toBe(101)
    expect(w.unacknowledged).toBe(0)
  })

  it('works across the 2^32 wrap', () => {
    const w = new CommandWindow(0xfffffffe)
    w.update(0xfffffffe, 2)
    expect(w.room).toBe(5)
    expect([w.take(), w.take(), w.take(), w.take(), w.take()]).toEqual([0xfffffffe, 0xffffffff, 0, 1, 2])
    expect(w.open).toBe(false)
    expect(w.unacknowledged).toBe(5)
    w.update(1, 5)
    expect(w.unacknowledged).toBe(2)
    expect(w.take()).toBe(3)
  })

  it('never lets ExpCmdSN pass commands not sent yet', () => {
    const w = new CommandWindow(5)
    w.update(9, 20)
    expect(w.expCmdSN).toBe(5)
  })
})

describe('CDBs and parsed data', () => {
  it('builds READ(16) / WRITE(16) with 64-bit LBAs and FUA', () => {
    const r = cdbRead16(0x1_0000_0001n, 8)
    expect(r[0]).toBe(0x88)
    expect(r.readBigUInt64BE(2)).toBe(0x1_0000_0001n)
    expect(r.readUInt32BE(10)).toBe(8)
    const w = cdbWrite16(7, 1, { fua: true })
    expect([w[0], w[1]]).toEqual([0x8a, 0x08])
    expect(() => cdbRead16(-1, 1)).toThrow(RangeError)
  })

  it('builds INQUIRY and READ CAPACITY(16)', () => {
    expect([...cdbInquiry(96)]).toEqual([0x12, 0, 0, 0, 96, 0])
    expect([...cdbInquiry(255, 0x83)]).toEqual([0x12, 1, 0x83, 0, 255, 0])
    const rc = cdbReadCapacity16(32)
    expect([rc[0], rc[1], rc.readUInt32BE(10)]).toEqual([0x9e, 0x10, 32])
  })

  it('parses INQUIRY, READ CAPACITY(16) and REPORT LUNS data', () => {
    const inq = Buffer.alloc(36, 0x20)
    inq[0] = 0x00
    inq[1] = 0x00
    inq[2] = 0x06
    inq.write('ISCSI-HA', 8, 'latin1')
    inq.write('DISK', 16, 'latin1')
    inq.write('0.1', 32, 'latin1')
    expect(parseInquiry(inq)).toMatchObject({ peripheralDeviceType: 0, version: 6, vendor: 'ISCSI-HA', product: 'DISK', revision: '0.1' })

    const cap = Buffer.alloc(32)
    cap.writeBigUInt64BE(131071n, 0)
    cap.writeUInt32BE(512, 8)
    cap[14] = 0x80
    expect(parseReadCapacity16(cap)).toMatchObject({ lastLba: 131071n, blocks: 131072n, blockSize: 512, thinProvisioned: true })

    const luns = Buffer.alloc(8 + 16)
    luns.writeUInt32BE(16, 0)
    luns[9] = 3
    luns[16] = 0x41
    luns[17] = 0x02
    expect(parseReportLuns(luns)).toEqual([3, 0x102])
  })

  it('parses fixed and descriptor sense data', () => {
    const fixed = Buffer.alloc(18)
    fixed[0] = 0xf0
    fixed[2] = 0x06
    fixed[12] = 0x29
    fixed[13] = 0x00
    expect(parseSense(fixed)).toMatchObject({ responseCode: 0x70, key: 6, asc: 0x29, ascq: 0 })
    expect(parseSense(Buffer.from([0x72, 0x05, 0x24, 0x00, 0, 0, 0, 0]))).toMatchObject({ responseCode: 0x72, key: 5, asc: 0x24 })
    expect(parseSense(Buffer.from([0x00]))).toBeUndefined()
  })
})
