// SANITIZE OVERWRITE (SBC-3 §5.30): offered only when the unit is given sanitizeOverwrite (off by
// default: it allocates a whole thin LUN); the parameter list and its field pointers, the pattern
// on every block, INVERT between passes, the background operation (progress, what is refused and
// what still answers, resets and aborts do not stop it), failure mode with AUSE, write
// protection and reservations.
import { describe, expect, it } from 'vitest'
import {
  overwriteParameters,
  passInverted,
  patternBlock,
} from '../../../src/scsi/commands/sanitize.js'
import { decodeSense } from '../../../src/scsi/sense.js'
import { ScsiStatus } from '../../../src/scsi/types.js'
import { MemoryDevice } from '../../helpers/memory-device.js'
import { N1, N2, cdb, clearUa, expectGood, expectSense, makeLu as makeAnyLu, run, rw10 } from './util.js'

/** A unit that offers OVERWRITE, as every test here but the first group needs. */
const makeLu = (opts: Parameters<typeof makeAnyLu>[0] = {}) => makeAnyLu({ sanitizeOverwrite: true, ...opts })

const BS = 512
const OVERWRITE = 0x01
const BLOCK_ERASE = 0x02
const EXIT_FAILURE_MODE = 0x1f
const IMMED = 0x80
const AUSE = 0x20

function sanitize(sa: number, byte1 = 0, len = 0): Buffer {
  return cdb(10, 0x48, (b) => {
    b[1] = byte1 | sa
    b.writeUInt16BE(len, 7)
  })
}

/** An OVERWRITE parameter list: header and pattern. */
function params(pattern: Buffer, opts: { count?: number; invert?: boolean; test?: number; reserved?: number; ipl?: number } = {}): Buffer {
  const b = Buffer.alloc(4 + pattern.length)
  b[0] = (opts.invert ? 0x80 : 0) | ((opts.test ?? 0) << 5) | (opts.count ?? 1)
  b[1] = opts.reserved ?? 0
  b.writeUInt16BE(opts.ipl ?? pattern.length, 2)
  pattern.copy(b, 4)
  return b
}

function overwriteCmd(list: Buffer, byte1 = 0, len = list.length): [Buffer, { dataOut: Buffer }] {
  return [sanitize(OVERWRITE, byte1, len), { dataOut: list }]
}

const inquiry = cdb(6, 0x12, (b) => (b[4] = 36))
const reportLuns = cdb(12, 0xa0, (b) => b.writeUInt32BE(256, 6))
const requestSense = cdb(6, 0x03, (b) => (b[4] = 18))
const tur = cdb(6, 0x00)

/** Device writes wait for credits (allow) or for open(): a sanitize that stays in progress. */
function meterWrites(dev: MemoryDevice): { allow: (n: number) => void; open: () => void } {
  const write = dev.write.bind(dev)
  let credits = 0
  let opened = false
  const queue: (() => void)[] = []
  const pump = (): void => {
    while (queue.length > 0 && (opened || credits > 0)) {
      if (!opened) credits--
      queue.shift()!()
    }
  }
  dev.write = (o, d, opts) =>
    new Promise<void>((resolve, reject) => {
      queue.push(() => void write(o, d, opts).then(resolve, reject))
      pump()
    })
  return {
    allow: (n) => {
      credits += n
      pump()
    },
    open: () => {
      opened = true
      pump()
    },
  }
}

async function settle(done: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 1))
  expect(done()).toBe(true)
}

/** REPORT SUPPORTED OPERATION CODES, one command: SANITIZE with service action `sa`. */
const rsoc = (sa: number) =>
  cdb(12, 0xa3, (b) => {
    b[1] = 0x0c
    b[2] = 0x02
    b[3] = 0x48
    b.writeUInt16BE(sa, 4)
    b.writeUInt32BE(255, 6)
  })

/** The SANITIZE service actions the all-commands form of REPORT SUPPORTED OPERATION CODES lists. */
async function listedSanitizeActions(lu: ReturnType<typeof makeAnyLu>['lu']): Promise<number[]> {
  const all = cdb(12, 0xa3, (b) => ((b[1] = 0x0c), b.writeUInt32BE(65535, 6)))
  await clearUa(lu)
  const d = (await run(lu, all)).dataIn!
  const out: number[] = []
  for (let off = 4; off < d.length; off += 8) if (d[off] === 0x48) out.push(d.readUInt16BE(off + 2))
  return out
}

describe('SANITIZE OVERWRITE is offered only when the unit is told so (it allocates a whole thin LUN)', () => {
  it('by default: not in REPORT SUPPORTED OPERATION CODES, either form; BLOCK ERASE and EXIT FAILURE MODE are', async () => {
    const { lu } = makeAnyLu()
    expect(lu.sanitizeOverwrite).toBe(false)
    await clearUa(lu)
    expect((await run(lu, rsoc(OVERWRITE))).dataIn![1] & 0x07).toBe(1) // SUPPORT 001b: not supported
    expect((await run(lu, rsoc(BLOCK_ERASE))).dataIn![1] & 0x07).toBe(3)
    expect(await listedSanitizeActions(lu)).toEqual([BLOCK_ERASE, EXIT_FAILURE_MODE])
    expect(await listedSanitizeActions(makeLu().lu)).toEqual([OVERWRITE, BLOCK_ERASE, EXIT_FAILURE_MODE])
  })

  it('by default: OVERWRITE is an unsupported service action, ILLEGAL REQUEST / INVALID FIELD IN CDB at byte 1 bit 4, before any data moves', async () => {
    const { lu, dev } = makeAnyLu()
    await clearUa(lu)
    dev.data.fill(0x61)
    const list = params(Buffer.alloc(BS, 0xaa))
    const refused = lu.planDataOut(sanitize(OVERWRITE, 0, list.length), N1)
    expect(refused.kind).toBe('fail') // the Data-Out is not even asked for
    if (refused.kind === 'fail') expectSense(refused.result, 5, 0x24, 0, { fieldPointer: 1, bitPointer: 4, cd: true })
    for (const byte1 of [0, IMMED, AUSE]) {
      expectSense(await run(lu, ...overwriteCmd(list, byte1)), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 4, cd: true })
    }
    expect(dev.writes).toEqual([])
    expect(dev.data.every((x) => x === 0x61)).toBe(true)
    expect(lu.sanitize.running || lu.sanitize.failed).toBe(false)
    // BLOCK ERASE is always there.
    expectGood(await run(lu, sanitize(BLOCK_ERASE)))
    expect(dev.data.every((x) => x === 0)).toBe(true)
  })

  it('the refusal is the one of any unsupported service action: a pending unit attention is reported first', async () => {
    const { lu } = makeAnyLu()
    const list = params(Buffer.alloc(BS, 0xaa))
    expectSense(await run(lu, ...overwriteCmd(list)), 6, 0x29, 0) // POWER ON first
    expectSense(await run(lu, ...overwriteCmd(list)), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 4 })
    expectSense(await run(lu, sanitize(0x03)), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 4 }) // CRYPTO ERASE alike
  })
})

describe('SANITIZE OVERWRITE: the pattern', () => {
  it('writes the pattern, repeated from the first byte of every block, over the whole medium', async () => {
    for (const pattern of [Buffer.alloc(BS, 0xaa), Buffer.alloc(BS / 2, 0x5c), Buffer.from([1, 2, 3, 4]), Buffer.from([7, 8, 9])]) {
      const { lu, dev } = makeLu()
      await clearUa(lu)
      dev.data.fill(0x61)
      expectGood(await run(lu, ...overwriteCmd(params(pattern))))
      const block = patternBlock(pattern, BS, false)
      for (let off = 0; off < dev.sizeBytes; off += BS) {
        if (!dev.data.subarray(off, off + BS).equals(block)) throw new Error(`block at ${off} does not hold the pattern ${pattern.toString('hex')}`)
      }
      expect(block[3]).toBe(pattern[3 % pattern.length])
    }
  })

  it('a pattern that does not divide the block is cut at its end and starts again with the next block', () => {
    const b = patternBlock(Buffer.from([7, 8, 9]), 8, false)
    expect([...b]).toEqual([7, 8, 9, 7, 8, 9, 7, 8])
    expect(patternBlock(Buffer.from([0x0f, 0x01]), 4, true)).toEqual(Buffer.from([0xf0, 0xfe, 0xf0, 0xfe]))
  })

  it('INVERT: the passes alternate and the last one writes the pattern itself; each pass is flushed', async () => {
    expect([0, 1].map((p) => passInverted(true, p, 2))).toEqual([true, false])
    expect([0, 1, 2].map((p) => passInverted(true, p, 3))).toEqual([false, true, false])
    expect([0, 1, 2].map((p) => passInverted(false, p, 3))).toEqual([false, false, false])

    const { lu, dev } = makeLu({ sizeBytes: 64 * BS })
    await clearUa(lu)
    const seen: number[] = [] // first byte of each pass, sampled at LBA 0
    const write = dev.write.bind(dev)
    dev.write = (o, d, opts) => {
      if (o === 0) seen.push(d[0])
      return write(o, d, opts)
    }
    const flushesBefore = dev.flushes
    expectGood(await run(lu, ...overwriteCmd(params(Buffer.from([0x3c]), { count: 4, invert: true }))))
    expect(seen).toEqual([0xc3, 0x3c, 0xc3, 0x3c])
    expect(dev.flushes - flushesBefore).toBe(4)
    expect(dev.data.every((x) => x === 0x3c)).toBe(true)
  })

  it('blocks deallocated before read the pattern afterwards and are mapped again (GET LBA STATUS)', async () => {
    const { lu, dev } = makeLu({ sizeBytes: 64 * BS })
    await clearUa(lu)
    const unmap = Buffer.alloc(24)
    unmap.writeUInt16BE(22, 0)
    unmap.writeUInt16BE(16, 2)
    unmap.writeUInt32BE(8, 16) // LBA 0, 8 blocks
    expectGood(await run(lu, cdb(10, 0x42, (b) => b.writeUInt16BE(24, 7)), { dataOut: unmap }))
    expectGood(await run(lu, ...overwriteCmd(params(Buffer.from([0x11])))))
    expect(dev.data.every((x) => x === 0x11)).toBe(true)
    const st = (await run(lu, cdb(16, 0x9e, (b) => ((b[1] = 0x12), b.writeUInt32BE(64, 10))))).dataIn!
    expect(st.readUInt32BE(16)).toBe(64) // one descriptor: all 64 blocks …
    expect(st[20] & 0x0f).toBe(0) // … mapped
  })
})

describe('SANITIZE OVERWRITE: the CDB and the parameter list', () => {
  it('PARAMETER LIST LENGTH must be more than 4 and at most 4 + block size: INVALID FIELD IN CDB at byte 7, refused before data moves', async () => {
    const { lu } = makeLu()
    await clearUa(lu)
    for (const len of [0, 1, 4, BS + 5, 0xffff]) {
      expectSense(await run(lu, sanitize(OVERWRITE, 0, len), { dataOut: Buffer.alloc(len) }), 5, 0x24, 0, { fieldPointer: 7, cd: true })
      const plan = lu.planDataOut(sanitize(OVERWRITE, 0, len), N1)
      expect(plan.kind).toBe('fail')
    }
    expect(lu.planDataOut(sanitize(OVERWRITE, 0, BS + 4), N1)).toEqual({ kind: 'out', bytes: BS + 4 })
    expect(lu.planDataOut(sanitize(OVERWRITE, 0, 5), N1)).toEqual({ kind: 'out', bytes: 5 })
    expectGood(await run(lu, sanitize(OVERWRITE, 0, 5), { dataOut: params(Buffer.from([1])) }))
  })

  it('reserved CDB bit and bytes: INVALID FIELD IN CDB pointing at them', async () => {
    const { lu } = makeLu()
    await clearUa(lu)
    const list = params(Buffer.alloc(BS, 1))
    expectSense(await run(lu, sanitize(OVERWRITE, 0x40, list.length), { dataOut: list }), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 6 })
    for (let i = 2; i <= 6; i++) {
      const c = sanitize(OVERWRITE, 0, list.length)
      c[i] = i
      expectSense(await run(lu, c, { dataOut: list }), 5, 0x24, 0, { fieldPointer: i, cd: true })
    }
  })

  it.each([
    ['OVERWRITE COUNT 0 (reserved)', params(Buffer.alloc(BS, 1), { count: 0 }), 0, 4],
    ['TEST 01b (vendor-specific test mode)', params(Buffer.alloc(BS, 1), { test: 1 }), 0, 6],
    ['TEST 10b', params(Buffer.alloc(BS, 1), { test: 2 }), 0, 6],
    ['reserved byte 1', params(Buffer.alloc(BS, 1), { reserved: 0x04 }), 1, 2],
    ['INITIALIZATION PATTERN LENGTH 0', params(Buffer.alloc(BS, 1), { ipl: 0 }), 2, undefined],
    ['INITIALIZATION PATTERN LENGTH above the block size', params(Buffer.alloc(BS, 1), { ipl: BS + 4 }), 2, undefined],
    ['a pattern length that leaves bytes of the list unaccounted for', params(Buffer.alloc(8, 1), { ipl: 4 }), 2, undefined],
  ])('%s: INVALID FIELD IN PARAMETER LIST, pointer into the list', async (_name, list, byte, bit) => {
    const { lu, dev } = makeLu()
    await clearUa(lu)
    dev.data.fill(0x61)
    const s = expectSense(await run(lu, ...overwriteCmd(list)), 5, 0x26, 0, { fieldPointer: byte, cd: false })
    expect(s.bitPointer).toBe(bit)
    expect(dev.writes).toEqual([]) // nothing was touched
    expect(lu.sanitize.running || lu.sanitize.failed).toBe(false)
  })

  it('a pattern longer than the list, or a list shorter than the CDB says: PARAMETER LIST LENGTH ERROR', async () => {
    const { lu } = makeLu()
    await clearUa(lu)
    expectSense(await run(lu, ...overwriteCmd(params(Buffer.alloc(8, 1), { ipl: 16 }))), 5, 0x1a, 0)
    expectSense(await run(lu, sanitize(OVERWRITE, 0, 12), { dataOut: params(Buffer.alloc(4, 1)) }), 5, 0x1a, 0)
  })

  it('the parser keeps INVERT, the count and a copy of the pattern', () => {
    const { lu } = makeLu()
    const list = params(Buffer.from([1, 2, 3]), { count: 31, invert: true })
    const p = overwriteParameters(lu, list.length, list)
    expect(p).toEqual({ invert: true, passes: 31, pattern: Buffer.from([1, 2, 3]) })
    list[4] = 9
    expect(p.pattern[0]).toBe(1)
  })

  it('REPORT SUPPORTED OPERATION CODES: OVERWRITE and BLOCK ERASE supported (IMMED and AUSE evaluated), CRYPTO ERASE not', async () => {
    const { lu } = makeLu()
    await clearUa(lu)
    const ow = (await run(lu, rsoc(OVERWRITE))).dataIn!
    expect(ow[1] & 0x07).toBe(3)
    expect([...ow.subarray(4, 14)]).toEqual([0x48, 0xa1, 0, 0, 0, 0, 0, 0xff, 0xff, 0])
    expect((await run(lu, rsoc(BLOCK_ERASE))).dataIn![5]).toBe(0xa2)
    expect((await run(lu, rsoc(0x03))).dataIn![1] & 0x07).toBe(1)
  })
})

describe('SANITIZE OVERWRITE in progress', () => {
  it('IMMED answers at once; medium access gets NOT READY / SANITIZE IN PROGRESS with the progress; INQUIRY, REPORT LUNS, REQUEST SENSE answer', async () => {
    const { lu, dev } = makeLu({ sizeBytes: 4 * 1024 * 1024 }) // 8192 blocks: 4 chunks of 1 MiB a pass
    await clearUa(lu)
    await clearUa(lu, N2)
    const meter = meterWrites(dev)
    expectGood(await run(lu, ...overwriteCmd(params(Buffer.from([0xee]), { count: 2 }), IMMED)))
    expect(lu.sanitize.running).toBe(true)
    for (const c of [tur, rw10(0x28, 0, 1), rw10(0x2a, 0, 1), cdb(10, 0x25), sanitize(BLOCK_ERASE), sanitize(EXIT_FAILURE_MODE)]) {
      const s = expectSense(await run(lu, c, { nexus: N2, dataOut: Buffer.alloc(BS) }), 2, 0x04, 0x1b)
      expect(s.progress).toBe(0)
    }
    expectGood(await run(lu, inquiry, { nexus: N2 }))
    expectGood(await run(lu, reportLuns, { nexus: N2 }))
    const progress = async (): Promise<number | undefined> => {
      const r = await run(lu, requestSense, { nexus: N2 })
      expectGood(r)
      const s = decodeSense(r.dataIn!)
      expect([s.senseKey, s.asc, s.ascq]).toEqual([2, 0x04, 0x1b])
      return s.progress
    }
    expect(await progress()).toBe(0)
    meter.allow(1) // one chunk of 2048 blocks out of 2 × 8192: 1/8 done
    await settle(() => lu.sanitize.progress > 0)
    expect(await progress()).toBe(0x10000 / 8)
    expect(expectSense(await run(lu, tur, { nexus: N2 }), 2, 0x04, 0x1b).progress).toBe(0x10000 / 8)
    meter.open()
    await settle(() => !lu.sanitize.running)
    expect(lu.sanitize.failed).toBe(false)
    expect(dev.data.every((x) => x === 0xee)).toBe(true)
    expect(Math.max(...dev.writes.map((w) => w.length))).toBe(1024 * 1024)
    expectGood(await run(lu, rw10(0x28, 0, 1), { nexus: N2 }))
    const idle = decodeSense((await run(lu, requestSense, { nexus: N2 })).dataIn!)
    expect([idle.senseKey, idle.asc, idle.progress]).toEqual([0, 0, undefined])
  })

  it('resets and the loss of the nexus do not stop it; a second SANITIZE is refused; IMMED=0 answers when it is over', async () => {
    const { lu, dev } = makeLu({ sizeBytes: 64 * BS })
    await clearUa(lu)
    await clearUa(lu, N2)
    const meter = meterWrites(dev)
    let answered = false
    const first = run(lu, ...overwriteCmd(params(Buffer.from([0x42])))).then((r) => ((answered = true), r))
    expectSense(await run(lu, sanitize(BLOCK_ERASE), { nexus: N2 }), 2, 0x04, 0x1b)
    lu.reset('lun', N1)
    lu.reset('warm', N1)
    lu.reset('cold', N1)
    lu.nexusLost(N1)
    expect(lu.sanitize.running).toBe(true)
    // Unit attentions first (REQUEST SENSE clears them one by one), then the sanitize.
    let s = decodeSense((await run(lu, requestSense, { nexus: N2 })).dataIn!)
    for (let i = 0; i < 5 && s.senseKey === 6; i++) s = decodeSense((await run(lu, requestSense, { nexus: N2 })).dataIn!)
    expect([s.senseKey, s.asc, s.ascq]).toEqual([2, 0x04, 0x1b])
    expect(answered).toBe(false)
    meter.open()
    expectGood(await first)
    expect(dev.data.every((x) => x === 0x42)).toBe(true)
    expect(lu.sanitize.running).toBe(false)
  })

  it('IMMED=0 whose task is aborted ends with TASK ABORTED at once; the overwrite goes on to the end', async () => {
    const { lu, dev } = makeLu({ sizeBytes: 64 * BS })
    await clearUa(lu)
    const meter = meterWrites(dev)
    const aborter = new AbortController()
    const list = params(Buffer.from([0x24]))
    const r = lu.execute({ cdb: sanitize(OVERWRITE, 0, list.length), nexus: N1, expectedLength: list.length, dataOut: list, signal: aborter.signal })
    let answered = false
    void r.then(() => (answered = true))
    await new Promise((res) => setTimeout(res, 5))
    expect(answered).toBe(false) // IMMED=0: no status while it runs
    aborter.abort()
    expect((await r).status).toBe(ScsiStatus.TaskAborted)
    expect(lu.sanitize.running).toBe(true)
    meter.open()
    await settle(() => !lu.sanitize.running)
    expect(lu.sanitize.failed).toBe(false)
    expect(dev.data.every((x) => x === 0x24)).toBe(true)
  })
})

describe('SANITIZE failure mode', () => {
  it('AUSE=0 (restricted): MEDIUM ERROR / SANITIZE COMMAND FAILED; EXIT FAILURE MODE and AUSE=1 refused; another sanitize that completes ends it', async () => {
    const { lu, dev, errors } = makeLu({ sizeBytes: 64 * BS })
    await clearUa(lu)
    dev.failNext = new Error('EIO')
    expectSense(await run(lu, ...overwriteCmd(params(Buffer.from([1])))), 3, 0x31, 0x03)
    expect(lu.sanitize).toMatchObject({ running: false, failed: true, unrestricted: false })
    expect(errors.some((e) => /OVERWRITE failed/.test(e))).toBe(true)
    expectSense(await run(lu, rw10(0x28, 0, 1)), 3, 0x31, 0x03)
    expectSense(await run(lu, rw10(0x2a, 0, 1), { dataOut: Buffer.alloc(BS) }), 3, 0x31, 0x03)
    expectGood(await run(lu, inquiry))
    expectGood(await run(lu, tur))
    expectSense(await run(lu, sanitize(EXIT_FAILURE_MODE)), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 4 })
    expectSense(await run(lu, ...overwriteCmd(params(Buffer.from([2])), AUSE)), 5, 0x24, 0, { fieldPointer: 1, bitPointer: 5 })
    expect(lu.sanitize.failed).toBe(true)
    expectGood(await run(lu, ...overwriteCmd(params(Buffer.from([3])))))
    expect(lu.sanitize.failed).toBe(false)
    expect(dev.data.every((x) => x === 3)).toBe(true)
    expectGood(await run(lu, rw10(0x28, 0, 1)))
  })

  it('AUSE=1 (unrestricted), IMMED: the failure shows on the next commands; EXIT FAILURE MODE ends it', async () => {
    const { lu, dev } = makeLu({ sizeBytes: 64 * BS })
    await clearUa(lu)
    dev.failNext = new Error('ENOSPC')
    expectGood(await run(lu, ...overwriteCmd(params(Buffer.from([1])), IMMED | AUSE)))
    await settle(() => !lu.sanitize.running)
    expect(lu.sanitize).toMatchObject({ failed: true, unrestricted: true })
    expectSense(await run(lu, rw10(0x28, 0, 1)), 3, 0x31, 0x03)
    expectGood(await run(lu, sanitize(EXIT_FAILURE_MODE)))
    expectGood(await run(lu, rw10(0x28, 0, 1)))
    expectGood(await run(lu, sanitize(EXIT_FAILURE_MODE))) // nothing left to exit
  })

  it('a failed BLOCK ERASE puts the unit in failure mode too', async () => {
    const { lu, dev } = makeLu({ sizeBytes: 64 * BS })
    await clearUa(lu)
    dev.failNext = new Error('EIO')
    expectSense(await run(lu, sanitize(BLOCK_ERASE, AUSE)), 3, 0x31, 0x03)
    expect(lu.sanitize).toMatchObject({ failed: true, unrestricted: true })
    expectGood(await run(lu, sanitize(EXIT_FAILURE_MODE)))
  })
})

describe('SANITIZE OVERWRITE: protection and reservations', () => {
  it('a read-only unit: DATA PROTECT / WRITE PROTECTED, checked after the parameter list', async () => {
    const { lu, dev } = makeLu({ readOnly: true })
    await clearUa(lu)
    expectSense(await run(lu, ...overwriteCmd(params(Buffer.from([1])))), 7, 0x27, 0)
    expectSense(await run(lu, ...overwriteCmd(params(Buffer.from([1]), { count: 0 }))), 5, 0x26, 0, { fieldPointer: 0 })
    expect(dev.writes).toEqual([])
  })

  it('software write protect (control page SWP): DATA PROTECT / SOFTWARE WRITE PROTECTED', async () => {
    const { lu, dev } = makeLu()
    await clearUa(lu)
    const control = (await run(lu, cdb(6, 0x1a, (b) => ((b[1] = 0x08), (b[2] = 0x0a), (b[4] = 255))))).dataIn!
    const page = Buffer.from(control.subarray(4))
    page[4] |= 0x08
    const list = Buffer.concat([Buffer.alloc(4), page])
    expectGood(await run(lu, cdb(6, 0x15, (b) => ((b[1] = 0x10), (b[4] = list.length))), { dataOut: list }))
    expectSense(await run(lu, ...overwriteCmd(params(Buffer.from([1])))), 7, 0x27, 0x02)
    expect(dev.writes).toEqual([])
  })

  it('a reservation held by another nexus: RESERVATION CONFLICT, nothing written', async () => {
    const { lu, dev } = makeLu()
    await clearUa(lu)
    await clearUa(lu, N2)
    expectGood(await run(lu, cdb(6, 0x16), { nexus: N2 })) // RESERVE(6)
    expect((await run(lu, ...overwriteCmd(params(Buffer.from([1]))))).status).toBe(ScsiStatus.ReservationConflict)
    expect(dev.writes).toEqual([])
    const list = params(Buffer.from([5]))
    expectGood(await run(lu, sanitize(OVERWRITE, 0, list.length), { dataOut: list, nexus: N2 }))
    expect(dev.data.every((x) => x === 5)).toBe(true)
  })
})
