// PERSISTENT RESERVE IN / OUT (SPC-4 §6.15, §6.16) and RESERVE / RELEASE (6 and 10, SPC-2).
// The state machine is reservations.ts; these handlers decode CDBs and parameter lists, and
// hand every change to the logical unit, which persists it (APTPL) and delivers the unit
// attentions before the command completes.

import { clip } from '../cdb.js'
import type { LuContext } from '../context.js'
import { parseTransportId, ProutAction, type ProutRequest } from '../reservations.js'
import { invalidFieldInCdb, invalidFieldInParameterList, parameterListLengthError } from '../sense.js'
import type { ScsiRequest, ScsiResult } from '../types.js'
import { GOOD, goodWithData } from './results.js'

// ---- PERSISTENT RESERVE IN ----------------------------------------------------------------

export function persistentReserveIn(lu: LuContext, req: ScsiRequest): ScsiResult {
  const cdb = req.cdb
  const alloc = cdb.readUInt16BE(7)
  const pr = lu.reservations
  let data: Buffer
  switch (cdb[1] & 0x1f) {
    case 0x00:
      data = pr.readKeys()
      break
    case 0x01:
      data = pr.readReservation()
      break
    case 0x02:
      data = pr.reportCapabilities()
      break
    case 0x03:
      data = pr.readFullStatus()
      break
    default:
      throw invalidFieldInCdb(1, 4)
  }
  return alloc === 0 ? GOOD : goodWithData(clip(data, alloc))
}

// ---- PERSISTENT RESERVE OUT ---------------------------------------------------------------

export function planPersistentReserveOut(_lu: LuContext, cdb: Buffer): number {
  const sa = cdb[1] & 0x1f
  if (sa > ProutAction.RegisterAndMove) throw invalidFieldInCdb(1, 4)
  return cdb.readUInt32BE(5)
}

/** Decode CDB and parameter list into a request (SPC-4 §6.16.3, §6.16.4). */
export function decodeProut(cdb: Buffer, dataOut: Buffer): ProutRequest {
  const action = (cdb[1] & 0x1f) as ProutAction
  if (action > ProutAction.RegisterAndMove) throw invalidFieldInCdb(1, 4)
  const scope = cdb[2] >> 4
  const type = cdb[2] & 0x0f
  const len = cdb.readUInt32BE(5)
  const data = dataOut.length > len ? dataOut.subarray(0, len) : dataOut
  if (action === ProutAction.RegisterAndMove) {
    if (len < 24 || data.length < len) throw parameterListLengthError()
    const tidLen = data.readUInt32BE(20)
    if (24 + tidLen > len) throw parameterListLengthError()
    if (tidLen < 24) throw invalidFieldInParameterList(20)
    const tid = parseTransportId(data.subarray(24, 24 + tidLen))
    if (tid === undefined) throw invalidFieldInParameterList(24)
    return {
      action,
      scope,
      type,
      key: data.readBigUInt64BE(0),
      sark: data.readBigUInt64BE(8),
      unreg: (data[17] & 0x02) !== 0,
      aptpl: (data[17] & 0x01) !== 0,
      relativeTargetPortId: data.readUInt16BE(18),
      transportId: tid,
    }
  }
  const specIPt = data.length > 20 && (data[20] & 0x08) !== 0
  // Without SPEC_I_PT the parameter list is exactly 24 bytes (SPC-4 §6.16.3).
  if (!specIPt && len !== 24) throw parameterListLengthError()
  if (data.length < 24) throw parameterListLengthError()
  return {
    action,
    scope,
    type,
    key: data.readBigUInt64BE(0),
    sark: data.readBigUInt64BE(8),
    specIPt,
    allTgPt: (data[20] & 0x04) !== 0,
    aptpl: (data[20] & 0x01) !== 0,
  }
}

export async function persistentReserveOut(lu: LuContext, req: ScsiRequest): Promise<ScsiResult> {
  const request = decodeProut(req.cdb, req.dataOut)
  await lu.changeReservations(req.nexus, (pr) => pr.prout(req.nexus, request))
  return GOOD
}

// ---- RESERVE / RELEASE (SPC-2) ------------------------------------------------------------

/** RESERVE(6)/(10): third-party and extent reservations are not supported. */
export async function reserve6(lu: LuContext, req: ScsiRequest): Promise<ScsiResult> {
  if (req.cdb[1] & 0x01) throw invalidFieldInCdb(1, 0) // extent reservation (obsolete)
  await lu.changeReservations(req.nexus, (pr) => pr.reserveLegacy(req.nexus))
  return GOOD
}

export async function reserve10(lu: LuContext, req: ScsiRequest): Promise<ScsiResult> {
  if (req.cdb[1] & 0x10) throw invalidFieldInCdb(1, 4) // 3RDPTY
  if (req.cdb[1] & 0x02) throw invalidFieldInCdb(1, 1) // LONGID
  if (req.cdb[1] & 0x01) throw invalidFieldInCdb(1, 0) // extent (obsolete)
  await lu.changeReservations(req.nexus, (pr) => pr.reserveLegacy(req.nexus))
  return GOOD
}

export async function release6(lu: LuContext, req: ScsiRequest): Promise<ScsiResult> {
  if (req.cdb[1] & 0x01) throw invalidFieldInCdb(1, 0)
  await lu.changeReservations(req.nexus, (pr) => pr.releaseLegacy(req.nexus))
  return GOOD
}

export async function release10(lu: LuContext, req: ScsiRequest): Promise<ScsiResult> {
  if (req.cdb[1] & 0x10) throw invalidFieldInCdb(1, 4)
  if (req.cdb[1] & 0x02) throw invalidFieldInCdb(1, 1)
  if (req.cdb[1] & 0x01) throw invalidFieldInCdb(1, 0)
  await lu.changeReservations(req.nexus, (pr) => pr.releaseLegacy(req.nexus))
  return GOOD
}
