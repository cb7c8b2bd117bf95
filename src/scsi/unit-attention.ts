// Unit attention conditions, kept per I_T nexus for one logical unit (SAM-5 §5.14, SPC-4 §5.12).
//
// Rules implemented here (the engine decides which commands consult them):
// - A nexus seen for the first time gets POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (29h/00h).
//   Dropping a nexus (nexusLost) forgets it, so a later login on the same nexus gets it again.
// - A reset establishes its condition for every known nexus and supersedes what was queued.
// - Other conditions queue behind (deduplicated, bounded); the oldest is reported first.

import { Asc, SenseKey, buildSense } from './sense.js'
import type { Nexus } from './types.js'

/** An additional sense code/qualifier pair, as (ASC << 8) | ASCQ. */
export type UaCode = Asc | number

const MAX_QUEUED = 8

export class UnitAttentions {
  private readonly byNexus = new Map<string, UaCode[]>()
  private readonly nexuses = new Map<string, Nexus>()

  /** Queue for a nexus, creating it (with the power-on condition) on first sight. */
  private queueOf(nexus: Nexus): UaCode[] {
    let q = this.byNexus.get(nexus.key)
    if (q === undefined) {
      q = [Asc.PowerOnResetOrBusDeviceReset]
      this.byNexus.set(nexus.key, q)
      this.nexuses.set(nexus.key, nexus)
    }
    return q
  }

  /** Queue `code` for every known nexus `which` selects, except `except`. */
  establishWhere(code: UaCode, which: (n: Nexus) => boolean, except?: Nexus): void {
    for (const [key, n] of this.nexuses) {
      if (key === except?.key || !which(n)) continue
      const q = this.byNexus.get(key)!
      if (q.includes(code) || q.length >= MAX_QUEUED) continue
      q.push(code)
    }
  }

  /** Queue `code` for every known nexus (e.g. CAPACITY DATA HAS CHANGED). */
  establishForAll(code: UaCode): void {
    this.establishWhere(code, () => true)
  }

  /** Register a nexus without consuming anything (commands that do not report unit attentions). */
  touch(nexus: Nexus): void {
    this.queueOf(nexus)
  }

  /** Remove and return the oldest pending condition for the nexus, if any. */
  take(nexus: Nexus): UaCode | undefined {
    const q = this.queueOf(nexus)
    return q.length === 0 ? undefined : q.shift()
  }

  /** Pending conditions, oldest first (for inspection and tests). */
  pending(nexus: Nexus): readonly UaCode[] {
    return this.byNexus.get(nexus.key) ?? []
  }

  /** Number of nexuses this logical unit knows. */
  get size(): number {
    return this.byNexus.size
  }

  /** A reset: every known nexus gets `code`, replacing whatever was pending. */
  establishReset(code: UaCode): void {
    for (const q of this.byNexus.values()) {
      q.length = 0
      q.push(code)
    }
  }

  /** Queue `code` for every known nexus except `except` (e.g. MODE PARAMETERS CHANGED). */
  establishForOthers(code: UaCode, except: Nexus): void {
    for (const [key, q] of this.byNexus) {
      if (key === except.key) continue
      if (q.includes(code) || q.length >= MAX_QUEUED) continue
      q.push(code)
    }
  }

  /** Forget a nexus (session closed or reinstated). */
  drop(nexus: Nexus): void {
    this.byNexus.delete(nexus.key)
    this.nexuses.delete(nexus.key)
  }
}

/** Fixed-format sense data for a unit attention condition. */
export function unitAttentionSense(code: UaCode): Buffer {
  return buildSense(SenseKey.UnitAttention, code >> 8, code & 0xff)
}
