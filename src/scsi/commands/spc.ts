// Primary commands (SPC-4): TEST UNIT READY, INQUIRY, REQUEST SENSE, REPORT LUNS, MODE SENSE and
// MODE SELECT. START STOP UNIT and PREVENT ALLOW MEDIUM REMOVAL are in medium.ts.

import { clip, readLba64 } from '../cdb.js'
import type { LuContext } from '../context.js'
import { ModePageCode, PageControl } from '../mode-pages.js'
import {
  SenseKey,
  buildSense,
  invalidFieldInCdb,
  invalidFieldInParameterList,
  parameterListLengthError,
  sanitizeInProgress,
  savingParametersNotSupported,
} from '../sense.js'
import type { ScsiRequest, ScsiResult } from '../types.js'
import { unitAttentionSense } from '../unit-attention.js'
import { GOOD, goodWithData } from './results.js'

/** Copy of (a prefix of) shared data, so no caller can alter the unit's cached copy. */
function reply(data: Buffer, allocationLength: number): ScsiResult {
  if (allocationLength === 0) return GOOD
  return goodWithData(Buffer.from(clip(data, allocationLength)))
}

export function testUnitReady(): ScsiResult {
  return GOOD
}

export function inquiry(lu: LuContext, req: ScsiRequest): ScsiResult {
  const cdb = req.cdb
  if (cdb[1] & 0x02) throw invalidFieldInCdb(1, 1) // CMDDT (obsolete)
  const page = cdb[2]
  const alloc = cdb.readUInt16BE(3)
  if ((cdb[1] & 0x01) === 0) {
    if (page !== 0) throw invalidFieldInCdb(2)
    return reply(lu.standardInquiry, alloc)
  }
  const data = lu.vpdPages.get(page)
  if (data === undefined) throw invalidFieldInCdb(2)
  return reply(data, alloc)
}

/**
 * Reports (and clears) the oldest pending unit attention; else, while a sanitize runs, NOT READY
 * / SANITIZE IN PROGRESS with its progress (SBC-3 §4.11: how a host polls an IMMED sanitize);
 * else NO SENSE.
 */
export function requestSense(lu: LuContext, req: ScsiRequest): ScsiResult {
  const cdb = req.cdb
  if (cdb[1] & 0x01) throw invalidFieldInCdb(1, 0) // DESC: descriptor format not supported
  const ua = lu.unitAttentions.take(req.nexus)
  let data: Buffer
  if (ua !== undefined) data = unitAttentionSense(ua)
  else if (lu.sanitize.running) data = sanitizeInProgress(lu.sanitize.progress).sense()
  else data = buildSense(SenseKey.NoSense, 0, 0)
  return reply(data, cdb[4])
}

/** Single level LUN structure: peripheral device addressing below 256, flat space above. */
export function encodeLun(lun: number, into: Buffer, off: number): void {
  if (lun < 256) {
    into[off] = 0
    into[off + 1] = lun
  } else {
    into[off] = 0x40 | ((lun >> 8) & 0x3f)
    into[off + 1] = lun & 0xff
  }
}

export function reportLuns(lu: LuContext, req: ScsiRequest): ScsiResult {
  const cdb = req.cdb
  const alloc = cdb.readUInt32BE(6)
  if (alloc < 16) throw invalidFieldInCdb(6)
  let luns: number[]
  switch (cdb[2]) {
    case 0x00: // all logical units but well known ones
    case 0x02: // all logical units
      luns = [...new Set(lu.lunsOfTarget())].filter((l) => Number.isInteger(l) && l >= 0 && l <= 0x3fff)
      luns.sort((a, b) => a - b)
      break
    case 0x01: // well known logical units only: there are none
      luns = []
      break
    default:
      throw invalidFieldInCdb(2)
  }
  const b = Buffer.alloc(8 + 8 * luns.length)
  b.writeUInt32BE(8 * luns.length, 0)
  for (let i = 0; i < luns.length; i++) encodeLun(luns[i], b, 8 + 8 * i)
  return reply(b, alloc)
}

function modeSense(lu: LuContext, req: ScsiRequest, ten: boolean): ScsiResult {
  const cdb = req.cdb
  const dbd = (cdb[1] & 0x08) !== 0
  const llbaa = ten && (cdb[1] & 0x10) !== 0
  const pc = (cdb[2] >> 6) as PageControl
  const code = cdb[2] & 0x3f
  const subpage = cdb[3]
  const alloc = ten ? cdb.readUInt16BE(7) : cdb[4]
  if (pc === PageControl.Saved) throw savingParametersNotSupported(2, 7)
  if (!lu.modes.has(code)) throw invalidFieldInCdb(2, 5)
  if (subpage !== 0 && !(code === ModePageCode.AllPages && subpage === 0xff)) throw invalidFieldInCdb(3)

  const pages = lu.modes.sense(code, pc)
  const bdLen = dbd ? 0 : llbaa ? 16 : 8
  const hdrLen = ten ? 8 : 4
  const total = hdrLen + bdLen + pages.length
  const b = Buffer.alloc(total)
  const dsp = (lu.readOnly || lu.modes.softwareWriteProtect ? 0x80 : 0) | 0x10 // WP, DPOFUA
  if (ten) {
    b.writeUInt16BE(total - 2, 0)
    b[3] = dsp
    if (bdLen === 16) b[4] = 0x01 // LONGLBA
    b.writeUInt16BE(bdLen, 6)
  } else {
    b[0] = total - 1
    b[2] = dsp
    b[3] = bdLen
  }
  if (pc !== PageControl.Changeable) {
    if (bdLen === 8) {
      b.writeUInt32BE(Math.min(lu.capacityBlocks, 0xffffffff), hdrLen)
      b.writeUIntBE(lu.blockSize, hdrLen + 5, 3)
    } else if (bdLen === 16) {
      b.writeUInt32BE(Math.floor(lu.capacityBlocks / 0x1_0000_0000), hdrLen)
      b.writeUInt32BE(lu.capacityBlocks >>> 0, hdrLen + 4)
      b.writeUInt32BE(lu.blockSize, hdrLen + 12)
    }
  }
  pages.copy(b, hdrLen + bdLen)
  return alloc === 0 ? GOOD : goodWithData(clip(b, alloc))
}

export function modeSense6(lu: LuContext, req: ScsiRequest): ScsiResult {
  return modeSense(lu, req, false)
}

export function modeSense10(lu: LuContext, req: ScsiRequest): ScsiResult {
  return modeSense(lu, req, true)
}

export function planModeSelect6(_lu: LuContext, cdb: Buffer): number {
  if (cdb[1] & 0x01) throw invalidFieldInCdb(1, 0)
  return cdb[4]
}

export function planModeSelect10(_lu: LuContext, cdb: Buffer): number {
  if (cdb[1] & 0x01) throw invalidFieldInCdb(1, 0)
  return cdb.readUInt16BE(7)
}

function checkBlockDescriptor(lu: LuContext, data: Buffer, off: number, long: boolean): void {
  if (long) {
    const blocks = readLba64(data, off)
    if (blocks !== 0 && blocks !== lu.capacityBlocks) throw invalidFieldInParameterList(off)
    if (data.readUInt32BE(off + 12) !== lu.blockSize) throw invalidFieldInParameterList(off + 12)
  } else {
    const blocks = data.readUInt32BE(off)
    if (blocks !== 0 && blocks !== Math.min(lu.capacityBlocks, 0xffffffff)) throw invalidFieldInParameterList(off)
    if (data.readUIntBE(off + 5, 3) !== lu.blockSize) throw invalidFieldInParameterList(off + 5)
  }
}

function modeSelect(lu: LuContext, req: ScsiRequest, ten: boolean): ScsiResult {
  const cdb = req.cdb
  const len = ten ? planModeSelect10(lu, cdb) : planModeSelect6(lu, cdb)
  if (len === 0) return GOOD
  const data = req.dataOut.length > len ? req.dataOut.subarray(0, len) : req.dataOut
  const hdrLen = ten ? 8 : 4
  if (data.length < hdrLen) throw parameterListLengthError()
  // MODE DATA LENGTH is reserved in MODE SELECT; the device-specific parameter (WP, DPOFUA) is ignored.
  const mediumOff = ten ? 2 : 1
  if (data[mediumOff] !== 0) throw invalidFieldInParameterList(mediumOff)
  const long = ten && (data[4] & 0x01) !== 0
  const bdLen = ten ? data.readUInt16BE(6) : data[3]
  if (bdLen !== 0 && bdLen !== (long ? 16 : 8)) throw invalidFieldInParameterList(ten ? 6 : 3)
  if (hdrLen + bdLen > data.length) throw parameterListLengthError()
  if (bdLen !== 0) checkBlockDescriptor(lu, data, hdrLen, long)
  const { changed } = lu.modes.select(data.subarray(hdrLen + bdLen), hdrLen + bdLen)
  if (changed) lu.modeParametersChanged(req.nexus)
  return GOOD
}

export function modeSelect6(lu: LuContext, req: ScsiRequest): ScsiResult {
  return modeSelect(lu, req, false)
}

export function modeSelect10(lu: LuContext, req: ScsiRequest): ScsiResult {
  return modeSelect(lu, req, true)
}
