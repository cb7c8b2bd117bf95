// The reservation state machine as a table: action × current state × issuing nexus →
// result, new state, unit attentions owed. Then the same machine through the logical unit:
// conflicts per command class, unit attentions delivered, APTPL persistence, snapshot/restore,
// and RESERVE/RELEASE (6/10) against persistent reservations.
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  portMatches,
  ProutAction,
  ReservationState,
  parseTransportId,
  transportId,
  type ProutRequest,
  type ReservationSnapshot,
} from '../../../src/scsi/reservations.js'
import type { ReservationStore } from '../../../src/scsi/reservation-store.js'
import { ReservationConflictError, ScsiError } from '../../../src/scsi/sense.js'
import { ScsiStatus, type Nexus } from '../../../src/scsi/types.js'
import { FileReservationStore } from '../../../src/storage/reservation-file.js'
import { N1, N2, cdb, clearUa, expectGood, expectSense, makeLu, nexus, rw10, run } from './util.js'

const A = N1
const B = N2
const C = nexus('iqn.2024-01.test:init3', '400001370002')
const WHO: Record<string, Nexus> = { A, B, C }
const KA = 0xaan
const KB = 0xbbn

const REG = ProutAction.Register
const RES = ProutAction.Reserve
const REL = ProutAction.Release
const CLR = ProutAction.Clear
const PRE = ProutAction.Preempt
const PAA = ProutAction.PreemptAndAbort
const RIG = ProutAction.RegisterAndIgnoreExistingKey
const MOVE = ProutAction.RegisterAndMove
const ACTION_NAMES = ['REGISTER', 'RESERVE', 'RELEASE', 'CLEAR', 'PREEMPT', 'PREEMPT AND ABORT', 'REGISTER AND IGNORE', 'REGISTER AND MOVE']
const WE = 1
const EA = 3
const WERO = 5
const EARO = 6
const WEAR = 7
const EAAR = 8

function req(action: ProutAction, key: bigint, sark: bigint, type = 0, extra: Partial<ProutRequest> = {}): ProutRequest {
  return { action, scope: 0, type, key, sark, aptpl: false, ...extra }
}

/** Named starting states, built through the machine itself. */
const STATES: Record<string, (pr: ReservationState) => void> = {
  empty: () => undefined,
  'A reg': (pr) => void pr.prout(A, req(REG, 0n, KA)),
  'A,B reg': (pr) => {
    pr.prout(A, req(REG, 0n, KA))
    pr.prout(B, req(REG, 0n, KB))
  },
  ...Object.fromEntries(
    ([['WE', WE], ['EA', EA], ['WERO', WERO], ['EARO', EARO], ['WEAR', WEAR], ['EAAR', EAAR]] as const).map(([name, type]) => [
      `A,B reg; A holds ${name}`,
      (pr: ReservationState) => {
        pr.prout(A, req(REG, 0n, KA))
        pr.prout(B, req(REG, 0n, KB))
        pr.prout(A, req(RES, KA, 0n, type))
      },
    ]),
  ),
}

function nameOf(p: { initiatorName: string; isid: string | null }): string {
  const n = Object.entries(WHO).find(([, x]) => portMatches({ ...p, targetName: x.targetName, tpgt: x.tpgt }, x))
  return n ? n[0] : '?'
}

/** Compact state: registrations "A:aa", reservation "A/1" ("all/7"), generation. */
function summary(pr: ReservationState): { regs: string[]; res: string | null } {
  const s = pr.snapshot()
  const regs = s.registrations.map((r) => `${nameOf(r)}:${BigInt(`0x${r.key}`).toString(16)}`).sort()
  const res = s.reservation === null
    ? null
    : `${s.reservation.holder === 'all' ? 'all' : nameOf(s.registrations[s.reservation.holder])}/${s.reservation.type}`
  return { regs, res }
}

type Result = 'GOOD' | 'CONFLICT' | `SENSE ${string}`

interface Row {
  state: string
  by: keyof typeof WHO
  action: ProutRequest
  result: Result
  regs?: string[]
  res?: string | null
  uas?: string[]
  gen?: 0 | 1
}

// prettier-ignore
const TABLE: Row[] = [
  // REGISTER
  { state: 'empty', by: 'A', action: req(REG, 0n, KA), result: 'GOOD', regs: ['A:aa'], res: null, gen: 1 },
  { state: 'empty', by: 'A', action: req(REG, 5n, KA), result: 'CONFLICT', regs: [] },
  { state: 'empty', by: 'A', action: req(REG, 0n, 0n), result: 'GOOD', regs: [], gen: 0 },
  { state: 'A reg', by: 'A', action: req(REG, KA, 0x11n), result: 'GOOD', regs: ['A:11'], gen: 1 },
  { state: 'A reg', by: 'A', action: req(REG, 0x99n, 0x11n), result: 'CONFLICT', regs: ['A:aa'] },
  { state: 'A reg', by: 'A', action: req(REG, KA, 0n), result: 'GOOD', regs: [], gen: 1 },
  { state: 'A reg', by: 'A', action: req(REG, KA, KA, 0, { specIPt: true }), result: 'SENSE 5/2600' },
  // REGISTER AND IGNORE EXISTING KEY
  { state: 'A reg', by: 'A', action: req(RIG, 0x99n, 0x22n), result: 'GOOD', regs: ['A:22'], gen: 1 },
  { state: 'empty', by: 'B', action: req(RIG, 0x99n, KB), result: 'GOOD', regs: ['B:bb'], gen: 1 },
  // unregistering the holder releases a WE reservation silently, a Registrants Only one with RESERVATIONS RELEASED
  { state: 'A,B reg; A holds WE', by: 'A', action: req(REG, KA, 0n), result: 'GOOD', regs: ['B:bb'], res: null, uas: [] },
  { state: 'A,B reg; A holds WERO', by: 'A', action: req(REG, KA, 0n), result: 'GOOD', regs: ['B:bb'], res: null, uas: ['B 2a04'] },
  // an All Registrants reservation lives while anyone is registered
  { state: 'A,B reg; A holds WEAR', by: 'A', action: req(REG, KA, 0n), result: 'GOOD', regs: ['B:bb'], res: 'all/7' },
  // RESERVE
  { state: 'A reg', by: 'A', action: req(RES, KA, 0n, WE), result: 'GOOD', res: 'A/1', gen: 0 },
  { state: 'A reg', by: 'A', action: req(RES, KA, 0n, 2), result: 'SENSE 5/2400' },
  { state: 'A reg', by: 'A', action: req(RES, KA, 0n, WE, { scope: 1 }), result: 'SENSE 5/2400' },
  { state: 'A reg', by: 'A', action: req(RES, 0x99n, 0n, WE), result: 'CONFLICT', res: null },
  { state: 'A reg', by: 'C', action: req(RES, 0n, 0n, WE), result: 'CONFLICT', res: null },
  { state: 'A,B reg; A holds WE', by: 'A', action: req(RES, KA, 0n, WE), result: 'GOOD', res: 'A/1' },
  { state: 'A,B reg; A holds WE', by: 'A', action: req(RES, KA, 0n, EA), result: 'CONFLICT', res: 'A/1' },
  { state: 'A,B reg; A holds WE', by: 'B', action: req(RES, KB, 0n, WE), result: 'CONFLICT', res: 'A/1' },
  { state: 'A,B reg; A holds WEAR', by: 'B', action: req(RES, KB, 0n, WEAR), result: 'GOOD', res: 'all/7' },
  { state: 'A,B reg', by: 'B', action: req(RES, KB, 0n, EAAR), result: 'GOOD', res: 'all/8' },
  // RELEASE
  { state: 'A,B reg; A holds WE', by: 'A', action: req(REL, KA, 0n, WE), result: 'GOOD', res: null, uas: [], gen: 0 },
  { state: 'A,B reg; A holds WE', by: 'A', action: req(REL, KA, 0n, EA), result: 'SENSE 5/2604', res: 'A/1' },
  { state: 'A,B reg; A holds WE', by: 'B', action: req(REL, KB, 0n, WE), result: 'GOOD', res: 'A/1' },
  { state: 'A,B reg; A holds WE', by: 'C', action: req(REL, 0n, 0n, WE), result: 'CONFLICT', res: 'A/1' },
  { state: 'A,B reg; A holds EARO', by: 'A', action: req(REL, KA, 0n, EARO), result: 'GOOD', res: null, uas: ['B 2a04'] },
  { state: 'A,B reg; A holds EAAR', by: 'B', action: req(REL, KB, 0n, EAAR), result: 'GOOD', res: null, uas: ['A 2a04'] },
  { state: 'A reg', by: 'A', action: req(REL, KA, 0n, WE), result: 'GOOD', res: null },
  // CLEAR
  { state: 'A,B reg; A holds EA', by: 'B', action: req(CLR, KB, 0n), result: 'GOOD', regs: [], res: null, uas: ['A 2a03'], gen: 1 },
  { state: 'A,B reg; A holds EA', by: 'B', action: req(CLR, KA, 0n), result: 'CONFLICT', regs: ['A:aa', 'B:bb'] },
  { state: 'A,B reg; A holds EA', by: 'C', action: req(CLR, 0n, 0n), result: 'CONFLICT', res: 'A/3' },
  // PREEMPT: registrations only (no reservation, or the key is not the holder's)
  { state: 'A,B reg', by: 'B', action: req(PRE, KB, KA, EA), result: 'GOOD', regs: ['B:bb'], res: null, uas: ['A 2a05'], gen: 1 },
  { state: 'A,B reg', by: 'B', action: req(PRE, KB, 0x77n, EA), result: 'CONFLICT', regs: ['A:aa', 'B:bb'] },
  { state: 'A,B reg', by: 'B', action: req(PRE, KB, 0n, EA), result: 'SENSE 5/2600' },
  // PREEMPT the holder: the issuer holds a reservation of the new type
  { state: 'A,B reg; A holds WE', by: 'B', action: req(PRE, KB, KA, WE), result: 'GOOD', regs: ['B:bb'], res: 'B/1', uas: ['A 2a05'], gen: 1 },
  { state: 'A,B reg; A holds WERO', by: 'B', action: req(PAA, KB, KA, EARO), result: 'GOOD', regs: ['B:bb'], res: 'B/6', uas: ['A 2a05'] },
  { state: 'A,B reg; A holds WE', by: 'B', action: req(PRE, KB, KA, 2), result: 'SENSE 5/2400', res: 'A/1' },
  { state: 'A,B reg; A holds WE', by: 'B', action: req(PRE, KB, 0n, WE), result: 'SENSE 5/2600', res: 'A/1' },
  // PREEMPT an All Registrants reservation with key 0: everyone else goes
  { state: 'A,B reg; A holds WEAR', by: 'B', action: req(PRE, KB, 0n, WE), result: 'GOOD', regs: ['B:bb'], res: 'B/1', uas: ['A 2a05'] },
  { state: 'A,B reg; A holds EAAR', by: 'B', action: req(PRE, KB, KA, EAAR), result: 'GOOD', regs: ['B:bb'], res: 'all/8', uas: ['A 2a05'] },
  { state: 'A,B reg; A holds WE', by: 'C', action: req(PRE, 0n, KA, WE), result: 'CONFLICT', res: 'A/1' },
  // REGISTER AND MOVE: the holder hands the reservation to another initiator port
  { state: 'A,B reg; A holds WE', by: 'A', action: req(MOVE, KA, 0x33n, WE, { transportId: { initiatorName: C.initiatorName, isid: C.isid } }), result: 'GOOD', regs: ['A:aa', 'B:bb', 'C:33'], res: 'C/1', gen: 1 },
  { state: 'A,B reg; A holds WE', by: 'A', action: req(MOVE, KA, 0x33n, WE, { unreg: true, transportId: { initiatorName: C.initiatorName, isid: C.isid } }), result: 'GOOD', regs: ['B:bb', 'C:33'], res: 'C/1' },
  { state: 'A,B reg; A holds WE', by: 'B', action: req(MOVE, KB, 0x33n, WE, { transportId: { initiatorName: C.initiatorName, isid: C.isid } }), result: 'CONFLICT', res: 'A/1' },
  { state: 'A,B reg; A holds WEAR', by: 'A', action: req(MOVE, KA, 0x33n, WEAR, { transportId: { initiatorName: C.initiatorName, isid: C.isid } }), result: 'CONFLICT', res: 'all/7' },
  { state: 'A,B reg; A holds WE', by: 'A', action: req(MOVE, KA, 0x33n, WE, { transportId: { initiatorName: A.initiatorName, isid: A.isid } }), result: 'SENSE 5/2600', res: 'A/1' },
  { state: 'A,B reg; A holds WE', by: 'A', action: req(MOVE, KA, 0n, WE, { transportId: { initiatorName: C.initiatorName, isid: C.isid } }), result: 'SENSE 5/2600', res: 'A/1' },
]

function label(r: Row): string {
  const a = r.action
  return `${ACTION_NAMES[a.action]}(key ${a.key.toString(16)}, sark ${a.sark.toString(16)}, type ${a.type}) by ${r.by} in [${r.state}] → ${r.result}`
}

describe('persistent reservation state machine', () => {
  it.each(TABLE.map((r) => [label(r), r] as const))('%s', (_label, row) => {
    const pr = new ReservationState()
    STATES[row.state](pr)
    const gen0 = pr.prGeneration
    let result: Result
    let uas: string[] = []
    try {
      const out = pr.prout(WHO[row.by], row.action)
      result = 'GOOD'
      uas = out.unitAttentions.map((u) => `${nameOf(u.to)} ${u.code.toString(16).padStart(4, '0')}`).sort()
    } catch (e) {
      if (e instanceof ReservationConflictError) result = 'CONFLICT'
      else if (e instanceof ScsiError) result = `SENSE ${e.senseKey}/${((e.asc << 8) | e.ascq).toString(16).padStart(4, '0')}`
      else throw e
    }
    expect(result).toBe(row.result)
    const s = summary(pr)
    if (row.regs !== undefined) expect(s.regs).toEqual(row.regs.sort())
    if (row.res !== undefined) expect(s.res).toBe(row.res)
    if (row.uas !== undefined) expect(uas).toEqual(row.uas.sort())
    if (row.gen !== undefined) expect(pr.prGeneration - gen0).toBe(row.gen)
    if (result !== 'GOOD') expect(pr.prGeneration).toBe(gen0)
  })

  it('access: who may read and write under each type, and SPC-2 reservations', () => {
    // [type, registered non-holder B may read/write, unregistered C may read/write]
    const rows: [number, boolean, boolean, boolean, boolean][] = [
      [WE, true, false, true, false],
      [EA, false, false, false, false],
      [WERO, true, true, true, false],
      [EARO, true, true, false, false],
      [WEAR, true, true, true, false],
      [EAAR, true, true, false, false],
    ]
    for (const [type, bRead, bWrite, cRead, cWrite] of rows) {
      const pr = new ReservationState()
      STATES['A,B reg'](pr)
      pr.prout(A, req(RES, KA, 0n, type))
      expect([!pr.conflicts(B, 'read'), !pr.conflicts(B, 'write'), !pr.conflicts(C, 'read'), !pr.conflicts(C, 'write')], `type ${type}`).toEqual([bRead, bWrite, cRead, cWrite])
      expect(pr.conflicts(A, 'write')).toBe(false)
      for (const n of [A, B, C]) for (const acc of ['info', 'status', 'pr'] as const) expect(pr.conflicts(n, acc)).toBe(false)
    }
    const pr = new ReservationState()
    expect(pr.reserveLegacy(A)).toBe(true)
    expect(pr.conflicts(B, 'read')).toBe(true)
    expect(pr.conflicts(B, 'status')).toBe(true)
    expect(pr.conflicts(B, 'info')).toBe(false)
    expect(pr.conflicts(A, 'write')).toBe(false)
    expect(() => pr.reserveLegacy(B)).toThrow(ReservationConflictError)
    expect(pr.releaseLegacy(B)).toBe(false) // a non-holder's RELEASE does nothing
    expect(pr.nexusLost(A)).toBe(true)
    expect(pr.conflicts(B, 'write')).toBe(false)
    // While anyone is registered RESERVE and RELEASE conflict.
    pr.prout(A, req(REG, 0n, KA))
    expect(() => pr.reserveLegacy(B)).toThrow(ReservationConflictError)
    expect(() => pr.releaseLegacy(A)).toThrow(ReservationConflictError)
  })

  it('PRIN data: READ KEYS, READ RESERVATION, REPORT CAPABILITIES, READ FULL STATUS', () => {
    const pr = new ReservationState(7)
    STATES['A,B reg; A holds EA'](pr)
    const keys = pr.readKeys()
    expect(keys.readUInt32BE(0)).toBe(2)
    expect(keys.readUInt32BE(4)).toBe(16)
    expect([keys.readBigUInt64BE(8), keys.readBigUInt64BE(16)]).toEqual([KA, KB])
    const rr = pr.readReservation()
    expect(rr.readUInt32BE(4)).toBe(16)
    expect(rr.readBigUInt64BE(8)).toBe(KA)
    expect(rr[21]).toBe(EA)
    const caps = pr.reportCapabilities()
    expect(caps.readUInt16BE(0)).toBe(8)
    expect(caps[2] & 0x01).toBe(1) // PTPL_C
    expect(caps.readUInt16BE(4)).toBe(0xea01)
    const fs = pr.readFullStatus()
    expect(fs.readUInt32BE(4)).toBe(fs.length - 8)
    const d0 = fs.subarray(8)
    expect(d0.readBigUInt64BE(0)).toBe(KA)
    expect(d0[12] & 0x01).toBe(1) // R_HOLDER
    expect(d0[13]).toBe(EA)
    expect(d0.readUInt16BE(18)).toBe(7)
    const tid = d0.subarray(24, 24 + d0.readUInt32BE(20))
    expect(parseTransportId(tid)).toEqual({ initiatorName: A.initiatorName, isid: A.isid })
    // All Registrants: key 0 in READ RESERVATION.
    const ar = new ReservationState()
    STATES['A,B reg; A holds WEAR'](ar)
    expect(ar.readReservation().readBigUInt64BE(8)).toBe(0n)
  })

  it('TransportIDs round-trip in both formats and are padded to multiples of four', () => {
    for (const p of [{ initiatorName: 'iqn.x:a', isid: '400001370000' }, { initiatorName: 'iqn.x:longer-name', isid: null }]) {
      const b = transportId(p)
      expect(b.readUInt16BE(2) % 4).toBe(0)
      expect(b.readUInt16BE(2)).toBeGreaterThanOrEqual(20)
      expect(parseTransportId(b)).toEqual(p)
    }
    expect(parseTransportId(Buffer.from([0x01, 0, 0, 4, 0, 0, 0, 0]))).toBeUndefined() // not iSCSI
  })

  it('snapshot → restore gives the same state, and a bad snapshot changes nothing', () => {
    const pr = new ReservationState()
    STATES['A,B reg; A holds WERO'](pr)
    const snap = JSON.parse(JSON.stringify(pr.snapshot())) as ReservationSnapshot
    const copy = new ReservationState()
    copy.restore(snap)
    expect(copy.snapshot()).toEqual(pr.snapshot())
    expect(copy.isHolder(A)).toBe(true)
    expect(copy.conflicts(C, 'write')).toBe(true)
    const bad = { ...snap, reservation: { type: 5, scope: 0 as const, holder: 9 } }
    expect(() => copy.restore(bad)).toThrow(/holder/)
    expect(copy.snapshot()).toEqual(pr.snapshot())
  })
})

// ---- through the logical unit ------------------------------------------------------------

function prout(action: number, key: bigint, sark: bigint, type = 0, flags = 0): { c: Buffer; data: Buffer } {
  const data = Buffer.alloc(24)
  data.writeBigUInt64BE(key, 0)
  data.writeBigUInt64BE(sark, 8)
  data[20] = flags
  const c = cdb(10, 0x5f, (b) => {
    b[1] = action
    b[2] = type
    b.writeUInt32BE(24, 5)
  })
  return { c, data }
}

const prin = (sa: number, alloc = 255) => cdb(10, 0x5e, (b) => {
  b[1] = sa
  b.writeUInt16BE(alloc, 7)
})

async function out(lu: ReturnType<typeof makeLu>['lu'], n: Nexus, action: number, key: bigint, sark: bigint, type = 0, flags = 0) {
  const p = prout(action, key, sark, type, flags)
  return run(lu, p.c, { nexus: n, dataOut: p.data })
}

class MemoryStore implements ReservationStore {
  saved: ReservationSnapshot[] = []
  fail = false
  load(): Promise<ReservationSnapshot | undefined> {
    return Promise.resolve(this.saved[this.saved.length - 1])
  }
  save(s: ReservationSnapshot): Promise<void> {
    if (this.fail) return Promise.reject(new Error('disk full'))
    this.saved.push(s)
    return Promise.resolve()
  }
}

describe('reservations through the logical unit', () => {
  it('WRITE EXCLUSIVE: the other initiator reads but its writes get RESERVATION CONFLICT; its unit attention follows a preempt', async () => {
    const { lu } = makeLu()
    await clearUa(lu, A)
    await clearUa(lu, B)
    expectGood(await out(lu, A, 0, 0n, KA))
    expectGood(await out(lu, B, 0, 0n, KB))
    expectGood(await out(lu, A, 1, KA, 0n, WE))
    expectGood(await run(lu, rw10(0x28, 0, 1), { nexus: B }))
    const w = await run(lu, rw10(0x2a, 0, 1), { nexus: B, dataOut: Buffer.alloc(512) })
    expect(w.status).toBe(ScsiStatus.ReservationConflict)
    expect(w.sense).toBeUndefined()
    expectGood(await run(lu, rw10(0x2a, 0, 1), { nexus: A, dataOut: Buffer.alloc(512) }))
    // B preempts A: A learns it through REGISTRATIONS PREEMPTED, B owns the reservation.
    expectGood(await out(lu, B, 4, KB, KA, WE))
    expectSense(await run(lu, cdb(6, 0x00), { nexus: A }), 6, 0x2a, 0x05)
    expect((await run(lu, rw10(0x2a, 0, 1), { nexus: A, dataOut: Buffer.alloc(512) })).status).toBe(ScsiStatus.ReservationConflict)
    // A registers again; B's CLEAR then preempts it. PERSISTENT RESERVE IN never conflicts and
    // leaves the unit attention pending for the next command.
    expectGood(await out(lu, A, 0, 0n, KA))
    expectGood(await out(lu, B, 3, KB, 0n))
    const keys = await run(lu, prin(0), { nexus: A })
    expectGood(keys)
    expect(keys.dataIn!.readUInt32BE(4)).toBe(0)
    expectSense(await run(lu, cdb(6, 0x00), { nexus: A }), 6, 0x2a, 0x03) // RESERVATIONS PREEMPTED
    expectGood(await run(lu, rw10(0x2a, 0, 1), { nexus: A, dataOut: Buffer.alloc(512) }))
  })

  it('PRIN truncates to the allocation length but keeps the ADDITIONAL LENGTH; unknown service actions are refused', async () => {
    const { lu } = makeLu()
    await clearUa(lu, A)
    await clearUa(lu, B)
    expectGood(await out(lu, A, 0, 0n, KA))
    const r = await run(lu, prin(0, 8), { nexus: A })
    expect(r.dataIn!.length).toBe(8)
    expect(r.dataIn!.readUInt32BE(4)).toBe(8)
    expectSense(await run(lu, prin(4), { nexus: A }), 5, 0x24, 0)
    // PROUT parameter list must be 24 bytes.
    const p = prout(0, 0n, KB)
    p.c.writeUInt32BE(20, 5)
    expectSense(await run(lu, p.c, { nexus: B, dataOut: p.data.subarray(0, 20) }), 5, 0x1a, 0)
  })

  it('RESERVE(6)/RELEASE(6): another initiator conflicts, a reset or the nexus loss ends it, registrations make them conflict', async () => {
    const { lu } = makeLu()
    await clearUa(lu, A)
    await clearUa(lu, B)
    expectGood(await run(lu, cdb(6, 0x16), { nexus: A }))
    expectGood(await run(lu, cdb(6, 0x16), { nexus: A }))
    expect((await run(lu, cdb(6, 0x16), { nexus: B })).status).toBe(ScsiStatus.ReservationConflict)
    expect((await run(lu, cdb(6, 0x1a, (b) => (b[2] = 0x3f, b[4] = 255)), { nexus: B })).status).toBe(ScsiStatus.ReservationConflict)
    expectGood(await run(lu, cdb(6, 0x12, (b) => (b[4] = 36)), { nexus: B })) // INQUIRY never conflicts
    expectGood(await run(lu, cdb(6, 0x17), { nexus: B })) // a non-holder's RELEASE is a no-op
    lu.reset('lun', A)
    await clearUa(lu, B)
    expectGood(await run(lu, cdb(10, 0x56), { nexus: B })) // RESERVE(10)
    lu.nexusLost(B)
    await clearUa(lu, A)
    expectGood(await out(lu, A, 0, 0n, KA))
    expect((await run(lu, cdb(6, 0x16), { nexus: A })).status).toBe(ScsiStatus.ReservationConflict)
    expect((await run(lu, cdb(10, 0x57), { nexus: A })).status).toBe(ScsiStatus.ReservationConflict)
  })

  it('every change is saved before the command completes; a failed save undoes the change', async () => {
    const store = new MemoryStore()
    const { lu, errors } = makeLu({ reservationStore: store })
    await clearUa(lu, A)
    expectGood(await out(lu, A, 0, 0n, KA, 0, 0x01)) // APTPL
    expect(store.saved.at(-1)!.aptpl).toBe(true)
    expect(store.saved.at(-1)!.registrations.map((r) => r.key)).toEqual(['00000000000000aa'])
    store.fail = true
    const r = await out(lu, A, 1, KA, 0n, EA)
    expectSense(r, 4, 0x44, 0)
    expect(errors.length).toBe(1)
    expect(lu.reservations.reservationType).toBeUndefined()
    store.fail = false
    // A restarted unit loads the saved state.
    const again = makeLu({ reservationStore: store }).lu
    await again.loadReservations()
    expect(again.reservations.registrationOf(A)?.key).toBe(KA)
  })

  it('the APTPL file is written atomically beside the LUN and removed when APTPL is turned off', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'iscsi-ha-pr-'))
    try {
      const path = join(dir, 'lun0.img.pr.json')
      const store = new FileReservationStore(path)
      expect(await store.load()).toBeUndefined()
      const { lu } = makeLu({ reservationStore: store })
      await clearUa(lu, A)
      expectGood(await out(lu, A, 0, 0n, KA, 0, 0x01))
      expectGood(await out(lu, A, 1, KA, 0n, WERO))
      const saved = JSON.parse(await readFile(path, 'utf8')) as ReservationSnapshot
      expect(saved.reservation).toEqual({ type: WERO, scope: 0, holder: 0 })
      const restarted = makeLu({ reservationStore: new FileReservationStore(path) }).lu
      await restarted.loadReservations()
      expect(restarted.reservations.isHolder(A)).toBe(true)
      expect(restarted.reservations.conflicts(B, 'write')).toBe(true)
      expectGood(await out(lu, A, 0, KA, KA, 0, 0x00)) // re-register without APTPL
      await expect(stat(path)).rejects.toThrow()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
