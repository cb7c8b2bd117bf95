// Removable medium (SBC-3 §4.17, SPC-4 §6.13): START STOP UNIT with LOEJ loads and ejects,
// PREVENT ALLOW MEDIUM REMOVAL holds the medium in per I_T nexus. A unit is removable only when
// configured so (DiskLogicalUnitOptions.removable): the default disk is fixed, which is what
// cluster software (Windows failover clustering refuses removable disks) and VMware expect.
//
// Prevention ends for a nexus with ALLOW, with the loss of that nexus, and for all with a
// logical unit reset or a target reset.

import type { LuContext } from '../context.js'
import { Asc, ScsiError, SenseKey, invalidFieldInCdb } from '../sense.js'
import type { Nexus, ScsiRequest, ScsiResult } from '../types.js'
import { GOOD } from './results.js'

export class MediumState {
  present = true
  private readonly preventing = new Set<string>()

  constructor(readonly removable: boolean) {}

  get prevented(): boolean {
    return this.preventing.size > 0
  }

  prevent(n: Nexus, on: boolean): void {
    if (on) this.preventing.add(n.key)
    else this.preventing.delete(n.key)
  }

  nexusLost(n: Nexus): void {
    this.preventing.delete(n.key)
  }

  reset(): void {
    this.preventing.clear()
  }
}

export function mediumNotPresent(): ScsiError {
  return ScsiError.of(SenseKey.NotReady, Asc.MediumNotPresent)
}

function removalPrevented(): ScsiError {
  return ScsiError.of(SenseKey.IllegalRequest, Asc.MediumRemovalPrevented)
}

/** PREVENT ALLOW MEDIUM REMOVAL: PREVENT 00b allows, 01b prevents (10b/11b are obsolete). */
export function preventAllowMediumRemoval(lu: LuContext, req: ScsiRequest): ScsiResult {
  const prevent = req.cdb[4] & 0x03
  if (prevent > 1) throw invalidFieldInCdb(4, 1)
  lu.medium.prevent(req.nexus, prevent === 1)
  return GOOD
}

/**
 * START STOP UNIT. With POWER CONDITION 0: LOEJ=1 ejects (START=0) or loads (START=1) a
 * removable medium, refused with MEDIUM REMOVAL PREVENTED while any nexus prevents removal;
 * a fixed unit refuses to eject. A stop without NO_FLUSH flushes. Power conditions are accepted
 * and ignored.
 */
export async function startStopUnit(lu: LuContext, req: ScsiRequest): Promise<ScsiResult> {
  const b4 = req.cdb[4]
  const powerCondition = b4 >> 4
  if (powerCondition !== 0) return GOOD
  const start = (b4 & 0x01) !== 0
  const loej = (b4 & 0x02) !== 0
  const noFlush = (b4 & 0x04) !== 0
  if (loej) {
    const m = lu.medium
    if (!m.removable) {
      if (!start) throw invalidFieldInCdb(4, 1)
    } else {
      if (m.prevented) throw removalPrevented()
      if (!start && m.present) {
        await lu.device.flush()
        m.present = false
      } else if (start && !m.present) {
        m.present = true
        lu.unitAttentions.establishWhere(Asc.NotReadyToReadyChange, () => true, req.nexus)
      }
      return GOOD
    }
  }
  if (!start && !noFlush && lu.medium.present) await lu.device.flush()
  return GOOD
}
