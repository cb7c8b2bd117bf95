// THE opcode table: every command the disk logical unit supports, one row each. Anything not
// listed ends with ILLEGAL REQUEST / INVALID COMMAND OPERATION CODE; an unlisted service action
// of a listed opcode with ILLEGAL REQUEST / INVALID FIELD IN CDB.
//
// usage: CDB USAGE DATA for REPORT SUPPORTED OPERATION CODES (SPC-4 §6.35), bytes 1..n-1 (byte 0
// is the opcode): a bit is set when the device server evaluates that CDB bit. Protection fields,
// NACA and LINK are not supported, so their bits are clear.

import * as sbc from './commands/sbc.js'
import * as spc from './commands/spc.js'
import type { LuContext } from './context.js'
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
  /** false for INQUIRY, REPORT LUNS and REQUEST SENSE (SPC-4 §5.12: not failed by unit attentions). */
  readonly reportsUnitAttention: boolean
  /** Present for commands that carry Data-Out. */
  readonly planOut?: DataOutPlanner
  readonly run: CommandHandler
}

type Flags = { sa?: number; noUa?: true; plan?: DataOutPlanner }

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
    planOut: f.plan,
    run,
  }
}

// prettier-ignore
export const COMMANDS: readonly CommandDef[] = Object.freeze([
  //  opcode name                       len handler               usage (bytes 1..len-1)                               flags
  row(0x00, 'TEST UNIT READY',             6, spc.testUnitReady,      '00 00 00 00 00'),
  row(0x03, 'REQUEST SENSE',               6, spc.requestSense,       '00 00 00 ff 00',                                   { noUa: true }),
  row(0x08, 'READ(6)',                     6, sbc.read6,              '1f ff ff ff 00'),
  row(0x0a, 'WRITE(6)',                    6, sbc.write6,             '1f ff ff ff 00',                                   { plan: sbc.planWrite6 }),
  row(0x12, 'INQUIRY',                     6, spc.inquiry,            '01 ff ff ff 00',                                   { noUa: true }),
  row(0x15, 'MODE SELECT(6)',              6, spc.modeSelect6,        '10 00 00 ff 00',                                   { plan: spc.planModeSelect6 }),
  row(0x1a, 'MODE SENSE(6)',               6, spc.modeSense6,         '08 ff ff ff 00'),
  row(0x1b, 'START STOP UNIT',             6, spc.startStopUnit,      '01 00 0f f7 00'),
  row(0x25, 'READ CAPACITY(10)',          10, sbc.readCapacity10,     '00 ff ff ff ff 00 00 01 00'),
  row(0x28, 'READ(10)',                   10, sbc.read10,             '18 ff ff ff ff 1f ff ff 00'),
  row(0x2a, 'WRITE(10)',                  10, sbc.write10,            '18 ff ff ff ff 1f ff ff 00',                       { plan: sbc.planWrite10 }),
  row(0x2e, 'WRITE AND VERIFY(10)',       10, sbc.writeVerify10,      '12 ff ff ff ff 1f ff ff 00',                       { plan: sbc.planWriteVerify10 }),
  row(0x2f, 'VERIFY(10)',                 10, sbc.verify10,           '12 ff ff ff ff 1f ff ff 00',                       { plan: sbc.planVerify10 }),
  row(0x35, 'SYNCHRONIZE CACHE(10)',      10, sbc.synchronizeCache10, '02 ff ff ff ff 1f ff ff 00'),
  row(0x55, 'MODE SELECT(10)',            10, spc.modeSelect10,       '10 00 00 00 00 00 ff ff 00',                       { plan: spc.planModeSelect10 }),
  row(0x5a, 'MODE SENSE(10)',             10, spc.modeSense10,        '18 ff ff 00 00 00 ff ff 00'),
  row(0x88, 'READ(16)',                   16, sbc.read16,             '18 ff ff ff ff ff ff ff ff ff ff ff ff 1f 00'),
  row(0x8a, 'WRITE(16)',                  16, sbc.write16,            '18 ff ff ff ff ff ff ff ff ff ff ff ff 1f 00',    { plan: sbc.planWrite16 }),
  row(0x8e, 'WRITE AND VERIFY(16)',       16, sbc.writeVerify16,      '12 ff ff ff ff ff ff ff ff ff ff ff ff 1f 00',    { plan: sbc.planWriteVerify16 }),
  row(0x8f, 'VERIFY(16)',                 16, sbc.verify16,           '12 ff ff ff ff ff ff ff ff ff ff ff ff 1f 00',    { plan: sbc.planVerify16 }),
  row(0x91, 'SYNCHRONIZE CACHE(16)',      16, sbc.synchronizeCache16, '02 ff ff ff ff ff ff ff ff ff ff ff ff 1f 00'),
  row(0x9e, 'READ CAPACITY(16)',          16, sbc.readCapacity16,     '10 ff ff ff ff ff ff ff ff ff ff ff ff 01 00',    { sa: 0x10 }),
  row(0xa0, 'REPORT LUNS',                12, spc.reportLuns,         '00 ff 00 00 00 ff ff ff ff 00 00',                 { noUa: true }),
  row(0xa8, 'READ(12)',                   12, sbc.read12,             '18 ff ff ff ff ff ff ff ff 1f 00'),
  row(0xaa, 'WRITE(12)',                  12, sbc.write12,            '18 ff ff ff ff ff ff ff ff 1f 00',                 { plan: sbc.planWrite12 }),
  row(0xae, 'WRITE AND VERIFY(12)',       12, sbc.writeVerify12,      '12 ff ff ff ff ff ff ff ff 1f 00',                 { plan: sbc.planWriteVerify12 }),
  row(0xaf, 'VERIFY(12)',                 12, sbc.verify12,           '12 ff ff ff ff ff ff ff ff 1f 00',                 { plan: sbc.planVerify12 }),
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

/** The command a CDB names; throws ScsiError for unsupported opcodes and service actions. */
export function lookupCommand(cdb: Buffer): CommandDef {
  const entry = BY_OPCODE[cdb[0]]
  if (entry === undefined) throw invalidOpcode()
  if (entry instanceof Map) {
    const c = entry.get(cdb[1] & 0x1f)
    if (c === undefined) throw invalidFieldInCdb(1, 4)
    return c
  }
  return entry
}

/** True when the opcode's commands never report unit attentions (INQUIRY, REPORT LUNS, REQUEST SENSE). */
export function exemptFromUnitAttention(opcode: number): boolean {
  const entry = BY_OPCODE[opcode]
  return entry !== undefined && !(entry instanceof Map) && !entry.reportsUnitAttention
}
