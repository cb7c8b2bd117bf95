// SANITIZE (SBC-3 §5.30). A thin-provisioned unit offers BLOCK ERASE: every block is
// deallocated (holes punched, or zeros written) and reads as zeros afterwards (WABEREQ=01b).
// OVERWRITE is meant for rotating media and CRYPTO ERASE needs encryption at rest, so both are
// refused as unsupported service actions. While a sanitize runs, medium access fails with NOT
// READY / SANITIZE IN PROGRESS; a sanitize that fails leaves the unit in sanitize failure mode
// (MEDIUM ERROR / SANITIZE COMMAND FAILED) until EXIT FAILURE MODE or a successful sanitize.

import { checkWritable } from '../cdb.js'
import type { LuContext } from '../context.js'
import { deallocate } from '../provisioning.js'
import { invalidFieldInCdb } from '../sense.js'
import type { ScsiRequest, ScsiResult } from '../types.js'
import { GOOD } from './results.js'

export const SANITIZE_BLOCK_ERASE = 0x02
export const SANITIZE_EXIT_FAILURE_MODE = 0x1f

/** Sanitize progress of one logical unit. */
export class SanitizeState {
  running = false
  failed = false
}

export function planSanitize(_lu: LuContext, cdb: Buffer): number {
  return cdb.readUInt16BE(7)
}

async function blockErase(lu: LuContext): Promise<void> {
  lu.sanitize.running = true
  try {
    const CHUNK = Math.max(1, Math.floor((256 * 1024 * 1024) / lu.blockSize))
    for (let lba = 0; lba < lu.capacityBlocks; lba += CHUNK) {
      const blocks = Math.min(CHUNK, lu.capacityBlocks - lba)
      await lu.locks.exclusive(lba, blocks, () => deallocate(lu, [{ lba, blocks }]))
    }
    await lu.device.flush()
    lu.sanitize.failed = false
  } catch (e) {
    lu.sanitize.failed = true
    throw e
  } finally {
    lu.sanitize.running = false
  }
}

export async function sanitize(lu: LuContext, req: ScsiRequest): Promise<ScsiResult> {
  const cdb = req.cdb
  const immed = (cdb[1] & 0x80) !== 0
  const sa = cdb[1] & 0x1f
  const len = cdb.readUInt16BE(7)
  if (cdb[1] & 0x40) throw invalidFieldInCdb(1, 6) // reserved
  for (let i = 2; i <= 6; i++) if (cdb[i] !== 0) throw invalidFieldInCdb(i) // reserved bytes
  if (sa === SANITIZE_EXIT_FAILURE_MODE) {
    if (len !== 0) throw invalidFieldInCdb(7)
    lu.sanitize.failed = false
    return GOOD
  }
  // BLOCK ERASE takes no parameter list.
  if (len !== 0) throw invalidFieldInCdb(7)
  checkWritable(lu)
  const run = blockErase(lu)
  if (immed) {
    run.catch((e: unknown) => lu.log.error('SANITIZE BLOCK ERASE failed', { lun: lu.lun, error: String(e) }))
    return GOOD
  }
  await run
  return GOOD
}
