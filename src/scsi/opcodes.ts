// THE opcode table: every command the disk logical unit supports, one row each. Anything not
// listed ends with ILLEGAL REQUEST / INVALID COMMAND OPERATION CODE; an unlisted service action
// of a listed opcode with ILLEGAL REQUEST / INVALID FIELD IN CDB. A row with `offered` is a
// command only some units support (SANITIZE OVERWRITE, an option of the unit): a unit without it
// treats the row as unlisted, both when executing and in REPORT SUPPORTED OPERATION CODES.
//
// usage: CDB USAGE DATA for REPORT SUPPORTED OPERATION CODES (SPC-4 §6.35), bytes 1..n-1 (byte 0
// is the opcode): a bit is set when the device server evaluates that CDB bit. Protection fields,
// NACA and LINK are not supported, so their bits are clear.

import * as atomic from './commands/atomic.js'
import * as medium from './commands/medium.js'
import * as pr from './commands/pr.js'
import * as sanitize from './commands/sanitize.js'
import * as sbc from './commands/sbc.js'
import * as spc from './commands/spc.js'
import * as thin from './commands/thin.js'
import * as xcopy from './commands/xcopy.js'
import type { LuContext } from './context.js'
import type { Access } from './reservations.js'
import { clip } from './cdb.js'
import { GOOD, goodWithData } from './commands/results.js'
import { invalidFieldInCdb, invalidOpcode } from './sense.js'
import type { ScsiRequest, ScsiResult } from './types.js'

export type CommandHandler = (lu: LuContext, req: ScsiRequest) => ScsiResult | Promise<ScsiResult>
/** Validates a write-direction CDB and returns the Data-Out bytes it asks for; throws ScsiError. */
export type DataOutPlanner = (lu: LuContext, cdb: Buffer) => number

export interface CommandDef {
  readonly opcode: number
  readonly serviceAction?: number
  readonly name: string
  readonly cdbLength: number
  /** CDB USAGE DATA, all cdbLength bytes (byte 0 = opcode). */
  readonly usage: readonly number[]
  /**
   * false for INQUIRY, REPORT LUNS and REQUEST SENSE (SPC-4 §5.12: not failed by unit
   * attentions), and for PERSISTENT RESERVE IN: it only reads reservation state, and cluster
   * software (and libiscsi's clean-up between suites) reads keys right after resets; the unit
   * attention stays pending for the nexus's next command.
   */
  readonly reportsUnitAttention: boolean
  /** The command needs the medium (NOT READY / MEDIUM NOT PRESENT while it is ejected). */
  readonly needsMedium: boolean
  /** How the command meets reservations (reservations.ts). */
  readonly access: Access
  /** Present for commands that carry Data-Out. */
  readonly planOut?: DataOutPlanner
  /** Present when only some units support the command: whether `lu` does. */
  readonly offered?: (lu: LuContext) => boolean
  readonly run: CommandHandler
}

type Flags = { sa?: number; noUa?: true; plan?: DataOutPlanner; acc?: Access; medium?: false; when?: (lu: LuContext) => boolean }

function row(opcode: number, name: string, len: number, run: CommandHandler, usage: string, f: Flags = {}): CommandDef {
  const bytes = [opcode, ...usage.split(' ').map((h) => parseInt(h, 16))]
  if (bytes.length !== len) throw new Error(`usage data of ${name} has ${bytes.length} bytes, CDB has ${len}`)
  return {
    opcode,
    serviceAction: f.sa,
    name,
    cdbLength: len,
    usage: Object.freeze(bytes),
    reportsUnitAttention: f.noUa !== true,
    access: f.acc ?? 'write',
    // Commands about the unit rather than its medium run without one.
    needsMedium: f.medium ?? !(f.acc === 'info' || f.acc === 'pr' || f.acc === 'legacy'),
    planOut: f.plan,
    offered: f.when,
    run,
  }
}

/** Whether `lu` supports the command of a table row. */
export function offers(lu: LuContext, c: CommandDef): boolean {
  return c.offered === undefined || c.offered(lu)
}

// prettier-ignore
export const COMMANDS: readonly CommandDef[] = Object.freeze([
  //  opcode name                       len handler               usage (bytes 1..len-1)                               flags
  row(0x00, 'TEST UNIT READY',             6, spc.testUnitReady,      '00 00 00 00 00',                                   { acc: 'status' }),
  row(0x03, 'REQUEST SENSE',               6, spc.requestSense,       '00 00 00 ff 00',                                   { noUa: true, acc: 'info' }),
  row(0x08, 'READ(6)',                     6, sbc.read6,              '1f ff ff ff 00',                                   { acc: 'read' }),
  row(0x0a, 'WRITE(6)',                    6, sbc.write6,             '1f ff ff ff 00',                                   { plan: sbc.planWrite6 }),
  row(0x12, 'INQUIRY',                     6, spc.inquiry,            '01 ff ff ff 00',                                   { noUa: true, acc: 'info' }),
  row(0x15, 'MODE SELECT(6)',              6, spc.modeSelect6,        '10 00 00 ff 00',                                   { plan: spc.planModeSelect6, medium: false }),
  row(0x1a, 'MODE SENSE(6)',               6, spc.modeSense6,         '08 ff ff ff 00',                                   { acc: 'read', medium: false }),
  row(0x1b, 'START STOP UNIT',             6, medium.startStopUnit,   '01 00 0f f7 00',                                   { medium: false }),
  row(0x1e, 'PREVENT ALLOW MEDIUM REMOVAL', 6, medium.preventAllowMediumRemoval, '00 00 00 03 00',                          { medium: false, acc: 'status' }),
  row(0x25, 'READ CAPACITY(10)',          10, sbc.readCapacity10,     '00 ff ff ff ff 00 00 01 00',                       { acc: 'status' }),
  row(0x28, 'READ(10)',                   10, sbc.read10,             '18 ff ff ff ff 1f ff ff 00',                       { acc: 'read' }),
  row(0x2a, 'WRITE(10)',                  10, sbc.write10,            '18 ff ff ff ff 1f ff ff 00',                       { plan: sbc.planWrite10 }),
  row(0x2e, 'WRITE AND VERIFY(10)',       10, sbc.writeVerify10,      '12 ff ff ff ff 1f ff ff 00',                       { plan: sbc.planWriteVerify10 }),
  row(0x2f, 'VERIFY(10)',                 10, sbc.verify10,           '12 ff ff ff ff 1f ff ff 00',                       { plan: sbc.planVerify10, acc: 'read' }),
  row(0x34, 'PRE-FETCH(10)',              10, sbc.prefetch10,         '02 ff ff ff ff 1f ff ff 00',                       { acc: 'read' }),
  row(0x35, 'SYNCHRONIZE CACHE(10)',      10, sbc.synchronizeCache10, '02 ff ff ff ff 1f ff ff 00'),
  row(0x16, 'RESERVE(6)',                  6, pr.reserve6,            '01 00 00 00 00',                                   { acc: 'legacy' }),
  row(0x17, 'RELEASE(6)',                  6, pr.release6,            '01 00 00 00 00',                                   { acc: 'legacy' }),
  row(0x56, 'RESERVE(10)',                10, pr.reserve10,           '00 00 00 00 00 00 00 00 00',                       { acc: 'legacy' }),
  row(0x57, 'RELEASE(10)',                10, pr.release10,           '00 00 00 00 00 00 00 00 00',                       { acc: 'legacy' }),
  row(0x5e, 'PERSISTENT RESERVE IN',      10, pr.persistentReserveIn,  '00 00 00 00 00 00 ff ff 00',                      { sa: 0x00, acc: 'info', noUa: true }),
  row(0x5e, 'PERSISTENT RESERVE IN',      10, pr.persistentReserveIn,  '01 00 00 00 00 00 ff ff 00',                      { sa: 0x01, acc: 'info', noUa: true }),
  row(0x5e, 'PERSISTENT RESERVE IN',      10, pr.persistentReserveIn,  '02 00 00 00 00 00 ff ff 00',                      { sa: 0x02, acc: 'info', noUa: true }),
  row(0x5e, 'PERSISTENT RESERVE IN',      10, pr.persistentReserveIn,  '03 00 00 00 00 00 ff ff 00',                      { sa: 0x03, acc: 'info', noUa: true }),
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((sa) =>
    row(0x5f, 'PERSISTENT RESERVE OUT',   10, pr.persistentReserveOut, `${sa.toString(16).padStart(2, '0')} ff 00 00 ff ff ff ff 00`, { sa, acc: 'pr', plan: pr.planPersistentReserveOut })),
  row(0x37, 'READ DEFECT DATA(10)',       10, sbc.readDefectData10,   '00 1f 00 00 00 00 ff ff 00',                       { acc: 'read' }),
  row(0x41, 'WRITE SAME(10)',             10, thin.writeSame10,       '18 ff ff ff ff 1f ff ff 00',                       { plan: thin.planWriteSame10 }),
  row(0x42, 'UNMAP',                      10, thin.unmap,             '01 00 00 00 00 1f ff ff 00',                       { plan: thin.planUnmap }),
  row(0x48, 'SANITIZE',                   10, sanitize.sanitize,      'a1 00 00 00 00 00 ff ff 00',                       { sa: 0x01, plan: sanitize.planSanitize, when: sanitize.overwriteOffered }),
  row(0x48, 'SANITIZE',                   10, sanitize.sanitize,      'a2 00 00 00 00 00 ff ff 00',                       { sa: 0x02, plan: sanitize.planSanitize }),
  row(0x48, 'SANITIZE',                   10, sanitize.sanitize,      '1f 00 00 00 00 00 ff ff 00',                       { sa: 0x1f, plan: sanitize.planSanitize }),
  row(0x55, 'MODE SELECT(10)',            10, spc.modeSelect10,       '10 00 00 00 00 00 ff ff 00',                       { plan: spc.planModeSelect10, medium: false }),
  row(0x5a, 'MODE SENSE(10)',             10, spc.modeSense10,        '18 ff ff 00 00 00 ff ff 00',                       { acc: 'read', medium: false }),
  row(0x83, 'EXTENDED COPY(LID1)',        16, xcopy.extendedCopy,     '00 00 00 00 00 00 00 00 00 ff ff ff ff 00 00',    { sa: 0x00, plan: xcopy.planExtendedCopy }),
  ...[0x00, 0x01, 0x03, 0x04].map((sa) =>
    row(0x84, 'RECEIVE COPY RESULTS',     16, xcopy.receiveCopyResults, `${sa.toString(16).padStart(2, '0')} ${sa === 0x03 ? '00' : 'ff'} 00 00 00 00 00 00 00 ff ff ff ff 00 00`, { sa, acc: 'read' })),
  row(0x88, 'READ(16)',                   16, sbc.read16,             '18 ff ff ff ff ff ff ff ff ff ff ff ff 1f 00',    { acc: 'read' }),
  row(0x89, 'COMPARE AND WRITE',          16, atomic.compareAndWrite, '18 ff ff ff ff ff ff ff ff 00 00 00 ff 1f 00',    { plan: atomic.planCompareAndWrite }),
  row(0x8a, 'WRITE(16)',                  16, sbc.write16,            '18 ff ff ff ff ff ff ff ff ff ff ff ff 1f 00',    { plan: sbc.planWrite16 }),
  row(0x8b, 'ORWRITE(16)',                16, atomic.orWrite,         '18 ff ff ff ff ff ff ff ff ff ff ff ff 1f 00',    { plan: atomic.planOrWrite }),
  row(0x8e, 'WRITE AND VERIFY(16)',       16, sbc.writeVerify16,      '12 ff ff ff ff ff ff ff ff ff ff ff ff 1f 00',    { plan: sbc.planWriteVerify16 }),
  row(0x8f, 'VERIFY(16)',                 16, sbc.verify16,           '12 ff ff ff ff ff ff ff ff ff ff ff ff 1f 00',    { plan: sbc.planVerify16, acc: 'read' }),
  row(0x90, 'PRE-FETCH(16)',              16, sbc.prefetch16,         '02 ff ff ff ff ff ff ff ff ff ff ff ff 1f 00',    { acc: 'read' }),
  row(0x91, 'SYNCHRONIZE CACHE(16)',      16, sbc.synchronizeCache16, '02 ff ff ff ff ff ff ff ff ff ff ff ff 1f 00'),
  row(0x93, 'WRITE SAME(16)',             16, thin.writeSame16,       '19 ff ff ff ff ff ff ff ff ff ff ff ff 1f 00',    { plan: thin.planWriteSame16 }),
  row(0x9c, 'WRITE ATOMIC(16)',           16, atomic.writeAtomic16,   '18 ff ff ff ff ff ff ff ff 00 00 ff ff 1f 00',    { plan: atomic.planWriteAtomic16 }),
  row(0x9e, 'GET LBA STATUS',             16, thin.getLbaStatus,      '12 ff ff ff ff ff ff ff ff ff ff ff ff 00 00',    { sa: 0x12, acc: 'read' }),
  row(0x9e, 'READ CAPACITY(16)',          16, sbc.readCapacity16,     '10 ff ff ff ff ff ff ff ff ff ff ff ff 01 00',    { sa: 0x10, acc: 'status' }),
  row(0xa0, 'REPORT LUNS',                12, spc.reportLuns,         '00 ff 00 00 00 ff ff ff ff 00 00',                 { noUa: true, acc: 'info' }),
  row(0xa3, 'REPORT SUPPORTED OPERATION CODES', 12, reportSupportedOpcodes, '0c 87 ff ff ff ff ff ff ff 00 00',    { sa: 0x0c, acc: 'info' }),
  row(0xa3, 'REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS', 12, reportSupportedTmfs, '0d 80 00 00 00 ff ff ff ff 00 00', { sa: 0x0d, acc: 'info' }),
  row(0xa8, 'READ(12)',                   12, sbc.read12,             '18 ff ff ff ff ff ff ff ff 1f 00',                 { acc: 'read' }),
  row(0xaa, 'WRITE(12)',                  12, sbc.write12,            '18 ff ff ff ff ff ff ff ff 1f 00',                 { plan: sbc.planWrite12 }),
  row(0xae, 'WRITE AND VERIFY(12)',       12, sbc.writeVerify12,      '12 ff ff ff ff ff ff ff ff 1f 00',                 { plan: sbc.planWriteVerify12 }),
  row(0xb7, 'READ DEFECT DATA(12)',       12, sbc.readDefectData12,   '1f 00 00 00 00 ff ff ff ff 00 00',                 { acc: 'read' }),
  row(0xaf, 'VERIFY(12)',                 12, sbc.verify12,           '12 ff ff ff ff ff ff ff ff 1f 00',                 { plan: sbc.planVerify12, acc: 'read' }),
])

/** Opcode → command, or → (service action → command) for service-action opcodes. */
const BY_OPCODE: (CommandDef | Map<number, CommandDef> | undefined)[] = new Array(256)
for (const c of COMMANDS) {
  if (c.serviceAction === undefined) {
    BY_OPCODE[c.opcode] = c
  } else {
    const group = BY_OPCODE[c.opcode]
    const map = group instanceof Map ? group : new Map<number, CommandDef>()
    map.set(c.serviceAction, c)
    BY_OPCODE[c.opcode] = map
  }
}

/**
 * The command a CDB names on `lu`; throws ScsiError for unsupported opcodes and service actions.
 * Every service-action opcode of the table has its SERVICE ACTION in byte 1, bits 4..0; one this
 * unit does not support, listed or not, is INVALID FIELD IN CDB with the field pointer on it (the
 * bit pointer names the field's most significant bit, SPC-4 sense-key specific data), as SBC-3
 * §5.30 asks of SANITIZE and SPC-4 of the service actions of its commands.
 */
export function lookupCommand(cdb: Buffer, lu: LuContext): CommandDef {
  const entry = BY_OPCODE[cdb[0]]
  if (entry === undefined) throw invalidOpcode()
  if (entry instanceof Map) {
    const c = entry.get(cdb[1] & 0x1f)
    if (c === undefined || !offers(lu, c)) throw invalidFieldInCdb(1, 4)
    return c
  }
  return entry
}

// ---- REPORT SUPPORTED OPERATION CODES / TASK MANAGEMENT FUNCTIONS (SPC-4 §6.35, §6.36) ----

/** Command timeouts descriptor (SPC-4 §6.35.4), in seconds. */
function timeoutsDescriptor(c: CommandDef): Buffer {
  const b = Buffer.alloc(12)
  b.writeUInt16BE(0x0a, 0)
  const long = c.opcode === 0x48 // SANITIZE erases the whole medium
  b.writeUInt32BE(long ? 600 : 1, 4) // NOMINAL COMMAND PROCESSING TIMEOUT
  b.writeUInt32BE(long ? 3600 : 30, 8) // RECOMMENDED COMMAND TIMEOUT
  return b
}

export function reportSupportedOpcodes(lu: LuContext, req: ScsiRequest): ScsiResult {
  const cdb = req.cdb
  const rctd = (cdb[2] & 0x80) !== 0
  const options = cdb[2] & 0x07
  const opcode = cdb[3]
  const sa = cdb.readUInt16BE(4)
  const alloc = cdb.readUInt32BE(6)
  let data: Buffer
  if (options === 0) {
    const descs = COMMANDS.filter((c) => offers(lu, c)).map((c) => {
      const d = Buffer.alloc(8)
      d[0] = c.opcode
      d.writeUInt16BE(c.serviceAction ?? 0, 2)
      d[5] = (rctd ? 0x02 : 0) | (c.serviceAction !== undefined ? 0x01 : 0) // CTDP, SERVACTV
      d.writeUInt16BE(c.cdbLength, 6)
      return rctd ? Buffer.concat([d, timeoutsDescriptor(c)]) : d
    })
    const body = Buffer.concat(descs)
    data = Buffer.alloc(4 + body.length)
    data.writeUInt32BE(body.length, 0)
    body.copy(data, 4)
  } else if (options <= 3) {
    const entry = BY_OPCODE[opcode]
    let c: CommandDef | undefined
    if (options === 1) {
      if (entry instanceof Map) throw invalidFieldInCdb(2, 2)
      c = entry
    } else if (options === 2) {
      if (entry !== undefined && !(entry instanceof Map)) throw invalidFieldInCdb(2, 2)
      c = entry?.get(sa)
    } else {
      c = entry instanceof Map ? entry.get(sa) : entry
    }
    if (c === undefined || !offers(lu, c)) {
      data = Buffer.alloc(4)
      data[1] = 0x01 // SUPPORT: not supported
    } else {
      const head = Buffer.alloc(4)
      head[1] = (rctd ? 0x80 : 0) | 0x03 // CTDP | SUPPORT: supported as the standard says
      head.writeUInt16BE(c.cdbLength, 2)
      const parts: Buffer[] = [head, Buffer.from(c.usage)]
      if (rctd) parts.push(timeoutsDescriptor(c))
      data = Buffer.concat(parts)
    }
  } else {
    throw invalidFieldInCdb(2, 2)
  }
  return alloc === 0 ? GOOD : goodWithData(clip(data, alloc))
}

/**
 * The task management functions the iSCSI transport implements: ABORT TASK, ABORT TASK SET,
 * CLEAR TASK SET, LOGICAL UNIT RESET and the target resets.
 */
export function reportSupportedTmfs(_lu: LuContext, req: ScsiRequest): ScsiResult {
  const cdb = req.cdb
  const repd = (cdb[2] & 0x80) !== 0
  const alloc = cdb.readUInt32BE(6)
  const data = Buffer.alloc(repd ? 16 : 4)
  data[0] = 0x80 | 0x40 | 0x10 | 0x08 | 0x02 // ATS ATSS CTSS LURS TRS
  if (repd) data[3] = 0x0c // ADDITIONAL DATA LENGTH
  return alloc === 0 ? GOOD : goodWithData(clip(data, alloc))
}

/** True when the opcode's commands never report unit attentions (INQUIRY, REPORT LUNS, REQUEST SENSE). */
export function exemptFromUnitAttention(opcode: number): boolean {
  const entry = BY_OPCODE[opcode]
  return entry !== undefined && !(entry instanceof Map) && !entry.reportsUnitAttention
}
