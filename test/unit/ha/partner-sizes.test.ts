// The primary's check before a live grow: the partner's lun-sizes report over the peer link.
import { describe, expect, it } from 'vitest'
import { growRefusal, type GrowCheck, type PartnerSizes } from '../../../src/ha/partner-sizes.js'

const MiB = 1024 * 1024
const key = { target: 'iqn.2026-11.io.iscsi-ha:pair', lun: 0 }
const report = (sizeBytes: number, at = 20, over: Partial<PartnerSizes> = {}): PartnerSizes => ({
  epoch: 3, luns: [{ ...key, sizeBytes }, { target: key.target, lun: 1, sizeBytes: 8 * MiB }], at, receivedAtMs: 0, ...over,
})
const check = (over: Partial<GrowCheck>): string | undefined =>
  growRefusal({ self: 'a', partner: 'b', key, sizeBytes: 128 * MiB, linkUp: true, linkUpAt: 10, report: report(128 * MiB), ...over })

describe('growRefusal', () => {
  it('lets the grow go on once the partner reported the new size or more since the link came up', () => {
    expect(check({})).toBeUndefined()
    expect(check({ report: report(256 * MiB) })).toBeUndefined()
    expect(check({ report: report(128 * MiB, 10) })).toBeUndefined()
  })

  it('refuses while the partner reports a smaller size, naming both sizes and what to do', () => {
    expect(check({ report: report(64 * MiB) })).toBe(
      'a is the serving primary and b holds copies of its writes, so b must serve the new size first (128MiB for iqn.2026-11.io.iscsi-ha:pair LUN 0); ' +
        'it serves 64MiB: run iscsi-ha node reload on b, then here again',
    )
    expect(check({ report: { ...report(128 * MiB), luns: [] } })).toMatch(/; it serves no such LUN: run iscsi-ha node reload on b/)
    expect(check({ key: { ...key, lun: 1 }, sizeBytes: 16 * MiB })).toMatch(/\(16MiB for .* LUN 1\); it serves 8MiB/)
  })

  it('refuses when the link is down, even with a report that says enough', () => {
    expect(check({ linkUp: false })).toMatch(/must serve the new size first \(128MiB .*\); the peer link to b is down, so it cannot report the size it serves/)
  })

  it('refuses without a report received since the link came up (an older one may be outdated)', () => {
    const none = /; b has not reported its LUN sizes since the peer link came up: try again in a moment$/
    expect(check({ report: undefined })).toMatch(none)
    expect(check({ report: report(128 * MiB, 9) })).toMatch(none)
    expect(check({ linkUpAt: undefined })).toMatch(none)
  })
})
