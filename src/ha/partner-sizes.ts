// What the primary knows of the sizes its partner serves: the partner's latest lun-sizes report
// over the peer link, and the check a live grow makes against it (src/ha/node.ts, growDevice).
// Pure: the caller passes the link state and the clock readings.

import { formatSize } from '../config/index.js'
import type { LunKey, LunSize } from './types.js'

/** The partner's latest lun-sizes report. */
export interface PartnerSizes {
  epoch: number
  luns: LunSize[]
  /** Monotonic ms (performance.now()) at receipt, compared with when the link came up. */
  at: number
  /** Wall-clock ms at receipt, for status. */
  receivedAtMs: number
}

export interface GrowCheck {
  self: string
  partner: string
  key: LunKey
  sizeBytes: number
  linkUp: boolean
  /** Monotonic ms when the link last came up (undefined: never). */
  linkUpAt: number | undefined
  report: PartnerSizes | undefined
}

/**
 * Why the serving primary may not grow `key` to `sizeBytes` yet, or undefined when its partner
 * reported, since the link came up, serving that size or more. The partner holds copies of the
 * primary's writes and replays them only inside the LUN as it knows it: a write past its end
 * would be lost in a takeover. A report from before the link last came up may be outdated (the
 * partner may have restarted on another file), so it does not count.
 */
export function growRefusal(c: GrowCheck): string | undefined {
  const { self, partner, key } = c
  const lun = `${key.target} LUN ${key.lun}`
  const why = `${self} is the serving primary and ${partner} holds copies of its writes, so ${partner} must serve the new size first (${formatSize(c.sizeBytes)} for ${lun})`
  if (!c.linkUp) {
    return `${why}; the peer link to ${partner} is down, so it cannot report the size it serves: try again once the link is up (iscsi-ha peer status)`
  }
  if (!c.report || c.linkUpAt === undefined || c.report.at < c.linkUpAt) {
    return `${why}; ${partner} has not reported its LUN sizes since the peer link came up: try again in a moment`
  }
  const there = c.report.luns.find((l) => l.target === key.target && l.lun === key.lun)
  if (!there || there.sizeBytes < c.sizeBytes) {
    return `${why}; it serves ${there ? formatSize(there.sizeBytes) : 'no such LUN'}: run iscsi-ha node reload on ${partner}, then here again`
  }
  return undefined
}
