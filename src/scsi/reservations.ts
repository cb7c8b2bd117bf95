// The reservation state of one logical unit, all of it in one place: SCSI-3 persistent
// reservations (SPC-4 §5.14: registrations, the persistent reservation, PRgeneration, APTPL) and
// the SPC-2 reservation of RESERVE/RELEASE (6/10), kept together because each conflicts with the
// other (SPC-4 §5.14.3, "compatible reservation handling").
//
// This module is a pure state machine: no I/O, no clock. The logical unit feeds it commands,
// delivers the unit attentions it names and persists (or replicates) its snapshot.
//
// snapshot()/restore() carry the whole state as plain JSON data: the APTPL file beside the LUN
// is a snapshot, and the HA pair copies snapshots to the partner controller so that
// reservations survive a failover.
//
// Identity: a registration belongs to an I_T nexus, i.e. an initiator port (iSCSI name + ISID)
// and a target port (target name + TPGT). A registration made with ALL_TG_PT=1 matches the
// initiator port through every target port (tpgt null); one made by REGISTER AND MOVE with a
// name-only TransportID matches every ISID of that initiator (isid null). Names are compared
// case-insensitively (iSCSI names are case-folded by the stringprep profile).

import {
  Asc,
  ScsiError,
  SenseKey,
  invalidFieldInCdb,
  invalidFieldInParameterList,
  reservationConflict,
} from './sense.js'
import type { Nexus } from './types.js'

/** PERSISTENT RESERVE OUT / IN reservation types (SPC-4 table 169). */
export const enum PrType {
  WriteExclusive = 1,
  ExclusiveAccess = 3,
  WriteExclusiveRegistrantsOnly = 5,
  ExclusiveAccessRegistrantsOnly = 6,
  WriteExclusiveAllRegistrants = 7,
  ExclusiveAccessAllRegistrants = 8,
}

/** PERSISTENT RESERVE OUT service actions (SPC-4 table 172). */
export const enum ProutAction {
  Register = 0,
  Reserve = 1,
  Release = 2,
  Clear = 3,
  Preempt = 4,
  PreemptAndAbort = 5,
  RegisterAndIgnoreExistingKey = 6,
  RegisterAndMove = 7,
}

/**
 * How a command meets reservations (SPC-4 table 66, SBC-3 table 13):
 * - info: INQUIRY, REPORT LUNS, REQUEST SENSE, REPORT SUPPORTED ... : never conflicts.
 * - status: TEST UNIT READY, READ CAPACITY: allowed under persistent reservations, conflicts
 *   with another initiator's SPC-2 reservation.
 * - pr: PERSISTENT RESERVE IN/OUT: the service action decides; conflicts with another
 *   initiator's SPC-2 reservation.
 * - legacy: RESERVE/RELEASE: the handler decides.
 * - read: reads the medium: allowed for everyone under Write Exclusive types.
 * - write: changes the medium or the unit: allowed only to nexuses with access.
 */
export type Access = 'info' | 'status' | 'pr' | 'legacy' | 'read' | 'write'

export const VALID_TYPES: readonly number[] = [1, 3, 5, 6, 7, 8]
export const MAX_REGISTRATIONS = 1024

/** The initiator port and target port a registration or a unit attention is for. */
export interface PortIds {
  initiatorName: string
  /** 12 lowercase hex digits, or null: every ISID of the initiator. */
  isid: string | null
  targetName: string
  /** null: every target port (ALL_TG_PT). */
  tpgt: number | null
}

export interface Registration extends PortIds {
  key: bigint
}

interface Reservation {
  type: PrType
  /** The holder; for the All Registrants types every registration holds it (holder unused). */
  holder: Registration | undefined
}

/** Parameters of one PERSISTENT RESERVE OUT command, decoded from CDB and parameter list. */
export interface ProutRequest {
  action: ProutAction
  scope: number
  type: number
  /** RESERVATION KEY. */
  key: bigint
  /** SERVICE ACTION RESERVATION KEY. */
  sark: bigint
  aptpl: boolean
  allTgPt?: boolean
  specIPt?: boolean
  /** REGISTER AND MOVE: UNREG, RELATIVE TARGET PORT IDENTIFIER and the TransportID. */
  unreg?: boolean
  relativeTargetPortId?: number
  transportId?: { initiatorName: string; isid: string | null }
}

export interface UnitAttentionOrder {
  to: PortIds
  code: Asc
}

export interface ProutOutcome {
  /** Something changed: persist/replicate the snapshot before completing the command. */
  changed: boolean
  /** Unit attentions to establish, never for the issuing nexus. */
  unitAttentions: UnitAttentionOrder[]
  /** PREEMPT AND ABORT: initiator ports whose tasks the transport should abort. */
  preempted: PortIds[]
}

/** Plain-data copy of the whole state (JSON-safe: keys as 16 hex digits). */
export interface ReservationSnapshot {
  version: 1
  generation: number
  aptpl: boolean
  registrations: { key: string; initiatorName: string; isid: string | null; targetName: string; tpgt: number | null }[]
  /** holder: index into registrations, or 'all' for the All Registrants types. */
  reservation: { type: number; scope: 0; holder: number | 'all' } | null
  /** I_T nexus key of the SPC-2 (RESERVE/RELEASE) reservation holder. */
  legacyHolder: string | null
}

export function isAllRegistrants(t: number): boolean {
  return t === PrType.WriteExclusiveAllRegistrants || t === PrType.ExclusiveAccessAllRegistrants
}

function isRegistrantsOnly(t: number): boolean {
  return t === PrType.WriteExclusiveRegistrantsOnly || t === PrType.ExclusiveAccessRegistrantsOnly
}

function isWriteExclusive(t: number): boolean {
  return t === PrType.WriteExclusive || t === PrType.WriteExclusiveRegistrantsOnly || t === PrType.WriteExclusiveAllRegistrants
}

/** Does a registration (or unit attention address) name this I_T nexus? */
export function portMatches(p: PortIds, n: Nexus): boolean {
  return (
    p.initiatorName.toLowerCase() === n.initiatorName.toLowerCase() &&
    (p.isid === null || p.isid === n.isid.toLowerCase()) &&
    p.targetName.toLowerCase() === n.targetName.toLowerCase() &&
    (p.tpgt === null || p.tpgt === n.tpgt)
  )
}

function samePort(a: PortIds, b: PortIds): boolean {
  return (
    a.initiatorName.toLowerCase() === b.initiatorName.toLowerCase() &&
    a.isid === b.isid &&
    a.targetName.toLowerCase() === b.targetName.toLowerCase() &&
    a.tpgt === b.tpgt
  )
}

function portsOf(n: Nexus, allTgPt = false): PortIds {
  return { initiatorName: n.initiatorName, isid: n.isid.toLowerCase(), targetName: n.targetName, tpgt: allTgPt ? null : n.tpgt }
}

function ports(r: Registration): PortIds {
  return { initiatorName: r.initiatorName, isid: r.isid, targetName: r.targetName, tpgt: r.tpgt }
}

const NOTHING: ProutOutcome = Object.freeze({ changed: false, unitAttentions: [], preempted: [] }) as ProutOutcome

export class ReservationState {
  private registrations: Registration[] = []
  private reservation: Reservation | undefined
  private generation = 0
  private aptpl = false
  private legacyHolder: string | undefined

  constructor(
    /** RELATIVE TARGET PORT IDENTIFIER reported in READ FULL STATUS. */
    readonly relativeTargetPortId = 1,
  ) {}

  // ---- queries ---------------------------------------------------------------------------

  registrationOf(n: Nexus): Registration | undefined {
    return this.registrations.find((r) => portMatches(r, n))
  }

  get registrationCount(): number {
    return this.registrations.length
  }

  get prGeneration(): number {
    return this.generation
  }

  get aptplActive(): boolean {
    return this.aptpl
  }

  /** Current persistent reservation type, if any. */
  get reservationType(): PrType | undefined {
    return this.reservation?.type
  }

  get legacyReservationHolder(): string | undefined {
    return this.legacyHolder
  }

  private holds(r: Registration): boolean {
    const res = this.reservation
    if (res === undefined) return false
    return isAllRegistrants(res.type) || res.holder === r
  }

  /** Does the nexus hold (or, for All Registrants types, share) the persistent reservation? */
  isHolder(n: Nexus): boolean {
    const r = this.registrationOf(n)
    return r !== undefined && this.holds(r)
  }

  /** True when a command of class `access` from `n` must end with RESERVATION CONFLICT. */
  conflicts(n: Nexus, access: Access): boolean {
    if (access === 'info' || access === 'legacy') return false
    if (this.legacyHolder !== undefined && this.legacyHolder !== n.key) return true
    const res = this.reservation
    if (res === undefined || access === 'pr' || access === 'status') return false
    const r = this.registrationOf(n)
    if (r !== undefined) {
      if (isAllRegistrants(res.type) || isRegistrantsOnly(res.type) || res.holder === r) return false
    }
    return !(access === 'read' && isWriteExclusive(res.type))
  }

  // ---- SPC-2 RESERVE / RELEASE -------------------------------------------------------------

  /** RESERVE (6/10). Throws RESERVATION CONFLICT; returns true when the state changed. */
  reserveLegacy(n: Nexus): boolean {
    // SPC-4 §5.14.3: while any registration exists, RESERVE and RELEASE conflict.
    if (this.registrations.length > 0) throw reservationConflict()
    if (this.legacyHolder !== undefined && this.legacyHolder !== n.key) throw reservationConflict()
    if (this.legacyHolder === n.key) return false
    this.legacyHolder = n.key
    return true
  }

  /** RELEASE (6/10): a release by a non-holder does nothing and succeeds. */
  releaseLegacy(n: Nexus): boolean {
    if (this.registrations.length > 0) throw reservationConflict()
    if (this.legacyHolder !== n.key) return false
    this.legacyHolder = undefined
    return true
  }

  /** An I_T nexus went away: its SPC-2 reservation ends; registrations stay. */
  nexusLost(n: Nexus): boolean {
    if (this.legacyHolder !== n.key) return false
    this.legacyHolder = undefined
    return true
  }

  /** LOGICAL UNIT RESET or a target reset: the SPC-2 reservation ends; registrations stay. */
  reset(): boolean {
    if (this.legacyHolder === undefined) return false
    this.legacyHolder = undefined
    return true
  }

  // ---- PERSISTENT RESERVE OUT --------------------------------------------------------------

  /**
   * Apply one PERSISTENT RESERVE OUT. Throws ReservationConflictError or ScsiError; on success
   * returns what changed and the unit attentions owed to other nexuses.
   */
  prout(n: Nexus, req: ProutRequest): ProutOutcome {
    const reg = this.registrationOf(n)
    switch (req.action) {
      case ProutAction.Register:
      case ProutAction.RegisterAndIgnoreExistingKey:
        return this.register(n, reg, req)
      case ProutAction.Reserve:
        return this.reserve(this.checkKey(reg, req), req)
      case ProutAction.Release:
        return this.release(this.checkKey(reg, req), req)
      case ProutAction.Clear:
        return this.clear(this.checkKey(reg, req))
      case ProutAction.Preempt:
      case ProutAction.PreemptAndAbort:
        return this.preempt(this.checkKey(reg, req), req)
      case ProutAction.RegisterAndMove:
        return this.registerAndMove(n, this.checkKey(reg, req), req)
      default:
        throw invalidFieldInCdb(1, 4)
    }
  }

  /** The issuer must be registered with the RESERVATION KEY it sent. */
  private checkKey(reg: Registration | undefined, req: ProutRequest): Registration {
    if (reg === undefined || reg.key !== req.key) throw reservationConflict()
    return reg
  }

  private register(n: Nexus, reg: Registration | undefined, req: ProutRequest): ProutOutcome {
    if (req.specIPt) throw invalidFieldInParameterList(20, 3) // SIP_C=0
    if (req.action === ProutAction.Register) {
      const expected = reg === undefined ? 0n : reg.key
      if (req.key !== expected) throw reservationConflict()
    }
    if (reg === undefined) {
      if (req.sark === 0n) return NOTHING
      if (this.registrations.length >= MAX_REGISTRATIONS) {
        throw ScsiError.of(SenseKey.IllegalRequest, Asc.InsufficientRegistrationResources)
      }
      this.registrations.push({ ...portsOf(n, req.allTgPt === true), key: req.sark })
      return this.bump(req.aptpl, [])
    }
    if (req.sark === 0n) return this.bump(req.aptpl, this.unregister(reg))
    reg.key = req.sark
    return this.bump(req.aptpl, [])
  }

  private bump(aptpl: boolean, unitAttentions: UnitAttentionOrder[], preempted: PortIds[] = []): ProutOutcome {
    this.generation = (this.generation + 1) >>> 0
    this.aptpl = aptpl
    return { changed: true, unitAttentions, preempted }
  }

  /** Remove a registration and what hangs on it; returns the unit attentions owed. */
  private unregister(reg: Registration): UnitAttentionOrder[] {
    this.registrations = this.registrations.filter((r) => r !== reg)
    const res = this.reservation
    if (res === undefined) return []
    if (isAllRegistrants(res.type)) {
      if (this.registrations.length === 0) this.reservation = undefined
      return []
    }
    if (res.holder !== reg) return []
    this.reservation = undefined
    // SPC-4 §5.14.11.2.3: the holder of a Registrants Only reservation unregistering releases
    // it; the other registrants learn it through RESERVATIONS RELEASED.
    if (!isRegistrantsOnly(res.type)) return []
    return this.registrations.map((r) => ({ to: ports(r), code: Asc.ReservationsReleased }))
  }

  private checkScopeAndType(req: ProutRequest): PrType {
    if (req.scope !== 0) throw invalidFieldInCdb(2, 7)
    if (!VALID_TYPES.includes(req.type)) throw invalidFieldInCdb(2, 3)
    return req.type as PrType
  }

  private reserve(reg: Registration, req: ProutRequest): ProutOutcome {
    const type = this.checkScopeAndType(req)
    const res = this.reservation
    if (res === undefined) {
      this.reservation = { type, holder: isAllRegistrants(type) ? undefined : reg }
      return { changed: true, unitAttentions: [], preempted: [] }
    }
    if (this.holds(reg) && res.type === type) return NOTHING
    throw reservationConflict()
  }

  private release(reg: Registration, req: ProutRequest): ProutOutcome {
    const res = this.reservation
    if (res === undefined || !this.holds(reg)) return NOTHING
    if (req.scope !== 0 || req.type !== res.type) {
      throw ScsiError.of(SenseKey.IllegalRequest, Asc.InvalidReleaseOfPersistentReservation)
    }
    this.reservation = undefined
    const unitAttentions =
      isRegistrantsOnly(res.type) || isAllRegistrants(res.type)
        ? this.registrations.filter((r) => r !== reg).map((r) => ({ to: ports(r), code: Asc.ReservationsReleased }))
        : []
    return { changed: true, unitAttentions, preempted: [] }
  }

  private clear(reg: Registration): ProutOutcome {
    const others = this.registrations.filter((r) => r !== reg)
    this.registrations = []
    this.reservation = undefined
    return this.bump(
      this.aptpl,
      others.map((r) => ({ to: ports(r), code: Asc.ReservationsPreempted })),
    )
  }

  /** Remove every registration with `key` but the issuer's; returns the removed ones. */
  private removeKey(key: bigint, issuer: Registration): Registration[] {
    const removed = this.registrations.filter((r) => r.key === key && r !== issuer)
    this.registrations = this.registrations.filter((r) => !removed.includes(r))
    return removed
  }

  private preempt(reg: Registration, req: ProutRequest): ProutOutcome {
    const res = this.reservation
    const preemptedUa = (rs: Registration[]): UnitAttentionOrder[] =>
      rs.map((r) => ({ to: ports(r), code: Asc.RegistrationsPreempted }))
    const done = (removed: Registration[], extra: UnitAttentionOrder[] = []): ProutOutcome =>
      this.bump(this.aptpl, [...preemptedUa(removed), ...extra], removed.map(ports))

    if (res !== undefined && isAllRegistrants(res.type) && req.sark === 0n) {
      // SPC-4 §5.14.11.4.4: preempting an All Registrants reservation with key 0 removes every
      // other registration and makes the issuer the holder of a new reservation.
      const type = this.checkScopeAndType(req)
      const removed = this.registrations.filter((r) => r !== reg)
      this.registrations = [reg]
      this.reservation = { type, holder: isAllRegistrants(type) ? undefined : reg }
      return done(removed)
    }
    if (res !== undefined && !isAllRegistrants(res.type) && res.holder !== undefined && req.sark === res.holder.key) {
      // §5.14.11.4.3: preempting the holder moves the reservation to the issuer.
      const type = this.checkScopeAndType(req)
      const removed = this.removeKey(req.sark, reg)
      this.reservation = { type, holder: isAllRegistrants(type) ? undefined : reg }
      const released =
        type !== res.type
          ? this.registrations.filter((r) => r !== reg).map((r) => ({ to: ports(r), code: Asc.ReservationsReleased }))
          : []
      return done(removed, released)
    }
    // §5.14.11.4.2: no reservation, or the key names registrants that do not hold it: only
    // registrations are removed.
    if (req.sark === 0n) throw invalidFieldInParameterList(8)
    const removed = this.removeKey(req.sark, reg)
    if (removed.length === 0) throw reservationConflict()
    if (res !== undefined && isAllRegistrants(res.type) && this.registrations.length === 0) this.reservation = undefined
    return done(removed)
  }

  private registerAndMove(n: Nexus, reg: Registration, req: ProutRequest): ProutOutcome {
    const res = this.reservation
    if (res === undefined || !this.holds(reg) || isAllRegistrants(res.type)) throw reservationConflict()
    if (req.scope !== 0) throw invalidFieldInCdb(2, 7)
    if (req.sark === 0n) throw invalidFieldInParameterList(8)
    const tid = req.transportId
    if (tid === undefined) throw invalidFieldInParameterList(24)
    if (req.relativeTargetPortId !== undefined && req.relativeTargetPortId !== this.relativeTargetPortId) {
      throw invalidFieldInParameterList(18)
    }
    const dest: PortIds = { initiatorName: tid.initiatorName, isid: tid.isid, targetName: n.targetName, tpgt: n.tpgt }
    if (samePort(dest, ports(reg)) || (dest.isid === null && dest.initiatorName.toLowerCase() === n.initiatorName.toLowerCase())) {
      throw invalidFieldInParameterList(24)
    }
    let destReg = this.registrations.find((r) => samePort(r, dest))
    if (destReg === undefined) {
      if (this.registrations.length >= MAX_REGISTRATIONS) {
        throw ScsiError.of(SenseKey.IllegalRequest, Asc.InsufficientRegistrationResources)
      }
      destReg = { ...dest, key: req.sark }
      this.registrations.push(destReg)
    } else {
      destReg.key = req.sark
    }
    this.reservation = { type: res.type, holder: destReg }
    if (req.unreg) this.registrations = this.registrations.filter((r) => r !== reg)
    return this.bump(req.aptpl, [])
  }

  // ---- PERSISTENT RESERVE IN ---------------------------------------------------------------

  readKeys(): Buffer {
    const b = Buffer.alloc(8 + 8 * this.registrations.length)
    b.writeUInt32BE(this.generation, 0)
    b.writeUInt32BE(8 * this.registrations.length, 4)
    this.registrations.forEach((r, i) => b.writeBigUInt64BE(r.key, 8 + 8 * i))
    return b
  }

  readReservation(): Buffer {
    const res = this.reservation
    const b = Buffer.alloc(res === undefined ? 8 : 24)
    b.writeUInt32BE(this.generation, 0)
    if (res === undefined) return b
    b.writeUInt32BE(16, 4)
    // All Registrants types report key zero (SPC-4 §6.15.3.3).
    b.writeBigUInt64BE(isAllRegistrants(res.type) || res.holder === undefined ? 0n : res.holder.key, 8)
    b[21] = res.type & 0x0f // SCOPE 0 (LU) | TYPE
    return b
  }

  /** REPORT CAPABILITIES (SPC-4 §6.15.4). */
  reportCapabilities(): Buffer {
    const b = Buffer.alloc(8)
    b.writeUInt16BE(8, 0)
    // CRH=1 (RESERVE/RELEASE handled per §5.14.3), SIP_C=0, ATP_C=1, PTPL_C=1.
    b[2] = 0x10 | 0x04 | 0x01
    // TMV=1, ALLOW COMMANDS=001b (TEST UNIT READY allowed under WE and EA), PTPL_A.
    b[3] = 0x80 | (0x1 << 4) | (this.aptpl ? 0x01 : 0)
    // PERSISTENT RESERVATION TYPE MASK: WR_EX_AR EX_AC_RO WR_EX_RO EX_AC WR_EX | EX_AC_AR.
    b[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02
    b[5] = 0x01
    return b
  }

  /** READ FULL STATUS (SPC-4 §6.15.5): one descriptor per registration. */
  readFullStatus(): Buffer {
    const descs = this.registrations.map((r) => {
      const tid = transportId(r)
      const d = Buffer.alloc(24 + tid.length)
      d.writeBigUInt64BE(r.key, 0)
      const holder = this.holds(r)
      d[12] = (r.tpgt === null ? 0x02 : 0) | (holder ? 0x01 : 0)
      if (holder) d[13] = this.reservation!.type & 0x0f
      d.writeUInt16BE(this.relativeTargetPortId, 18)
      d.writeUInt32BE(tid.length, 20)
      tid.copy(d, 24)
      return d
    })
    const body = Buffer.concat(descs)
    const b = Buffer.alloc(8 + body.length)
    b.writeUInt32BE(this.generation, 0)
    b.writeUInt32BE(body.length, 4)
    body.copy(b, 8)
    return b
  }

  // ---- snapshot / restore ------------------------------------------------------------------

  snapshot(): ReservationSnapshot {
    const res = this.reservation
    return {
      version: 1,
      generation: this.generation,
      aptpl: this.aptpl,
      registrations: this.registrations.map((r) => ({
        key: r.key.toString(16).padStart(16, '0'),
        initiatorName: r.initiatorName,
        isid: r.isid,
        targetName: r.targetName,
        tpgt: r.tpgt,
      })),
      reservation:
        res === undefined
          ? null
          : {
              type: res.type,
              scope: 0,
              holder: res.holder === undefined ? 'all' : this.registrations.indexOf(res.holder),
            },
      legacyHolder: this.legacyHolder ?? null,
    }
  }

  /** Replace the whole state with a snapshot (validated first: a bad one changes nothing). */
  restore(s: ReservationSnapshot): void {
    const bad = (why: string): never => {
      throw new Error(`invalid reservation snapshot: ${why}`)
    }
    if (s === null || typeof s !== 'object' || s.version !== 1) bad('version')
    if (!Number.isInteger(s.generation) || s.generation < 0 || s.generation > 0xffffffff) bad('generation')
    if (!Array.isArray(s.registrations) || s.registrations.length > MAX_REGISTRATIONS) bad('registrations')
    const regs: Registration[] = s.registrations.map((r, i) => {
      if (typeof r.key !== 'string' || !/^[0-9a-f]{16}$/i.test(r.key)) bad(`registrations[${i}].key`)
      if (typeof r.initiatorName !== 'string' || r.initiatorName.length === 0) bad(`registrations[${i}].initiatorName`)
      if (r.isid !== null && (typeof r.isid !== 'string' || !/^[0-9a-f]{12}$/i.test(r.isid))) bad(`registrations[${i}].isid`)
      if (typeof r.targetName !== 'string' || r.targetName.length === 0) bad(`registrations[${i}].targetName`)
      if (r.tpgt !== null && (!Number.isInteger(r.tpgt) || r.tpgt < 0 || r.tpgt > 0xffff)) bad(`registrations[${i}].tpgt`)
      return {
        key: BigInt(`0x${r.key}`),
        initiatorName: r.initiatorName,
        isid: r.isid === null ? null : r.isid.toLowerCase(),
        targetName: r.targetName,
        tpgt: r.tpgt,
      }
    })
    let reservation: Reservation | undefined
    if (s.reservation !== null && s.reservation !== undefined) {
      const { type, holder } = s.reservation
      if (!VALID_TYPES.includes(type)) bad('reservation.type')
      if (isAllRegistrants(type)) {
        if (holder !== 'all' || regs.length === 0) bad('reservation.holder')
        reservation = { type: type as PrType, holder: undefined }
      } else {
        if (typeof holder !== 'number' || holder < 0 || holder >= regs.length) bad('reservation.holder')
        reservation = { type: type as PrType, holder: regs[holder as number] }
      }
    }
    if (s.legacyHolder !== null && typeof s.legacyHolder !== 'string') bad('legacyHolder')
    this.registrations = regs
    this.reservation = reservation
    this.generation = s.generation
    this.aptpl = s.aptpl === true
    this.legacyHolder = s.legacyHolder ?? undefined
  }
}

/** iSCSI TransportID, format 01b: "<name>,i,0x<isid>" (SPC-4 §7.6.4.6); 00b when isid is null. */
export function transportId(p: { initiatorName: string; isid: string | null }): Buffer {
  const name = p.isid === null ? p.initiatorName : `${p.initiatorName},i,0x${p.isid}`
  const raw = Buffer.from(name, 'utf8')
  const padded = Math.max(20, (raw.length + 1 + 3) & ~3)
  const b = Buffer.alloc(4 + padded)
  b[0] = ((p.isid === null ? 0 : 1) << 6) | 0x05
  b.writeUInt16BE(padded, 2)
  raw.copy(b, 4)
  return b
}

/** Decode an iSCSI TransportID; undefined when it is not one. */
export function parseTransportId(b: Buffer): { initiatorName: string; isid: string | null } | undefined {
  if (b.length < 4 || (b[0] & 0x0f) !== 0x05) return undefined
  const format = b[0] >> 6
  const len = b.readUInt16BE(2)
  if (len < 4 || 4 + len > b.length) return undefined
  const field = b.subarray(4, 4 + len)
  const nul = field.indexOf(0)
  const text = field.subarray(0, nul < 0 ? field.length : nul).toString('utf8')
  if (format === 0) return text.length === 0 || text.includes(',') ? undefined : { initiatorName: text, isid: null }
  if (format !== 1) return undefined
  const m = /^(.+),i,0x([0-9a-fA-F]{12})$/.exec(text)
  if (m === null) return undefined
  return { initiatorName: m[1], isid: m[2].toLowerCase() }
}
