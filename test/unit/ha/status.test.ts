import { describe, expect, it } from 'vitest'
import { HEALTH_EXIT, healthOf, type PeerStatusReport } from '../../../src/ha/status.js'

function report(over: Partial<PeerStatusReport> = {}, peer: Partial<PeerStatusReport['peer']> = {}): PeerStatusReport {
  return {
    node: 'a', role: 'primary', epoch: 3, serving: true, mirrored: true,
    peer: { name: 'b', address: '127.0.0.1:7401', link: 'up', role: 'secondary', epoch: 3, refusals: {}, ...peer },
    lease: { holder: 'a', epoch: 3, ageMs: 40, durationMs: 600 },
    serviceAddress: { address: '127.0.0.10:3260', heldHere: true },
    journal: { entries: 0, bytes: 0 },
    ...over,
  }
}

describe('peer status health', () => {
  it.each<[string, PeerStatusReport, string]>([
    ['mirrored primary with its partner', report(), 'healthy'],
    ['secondary behind a mirrored primary', report({ role: 'secondary', serving: false, mirrored: false }, { role: 'primary' }), 'healthy'],
    ['primary alone', report({ mirrored: false }, { link: 'down', role: undefined }), 'degraded'],
    ['partner up but not yet in sync', report({ mirrored: false }), 'degraded'],
    ['secondary whose primary vanished', report({ role: 'secondary', serving: false, mirrored: false }, { link: 'down' }), 'critical'],
    ['fenced node', report({ role: 'fenced', serving: false, mirrored: false }, { role: 'primary' }), 'critical'],
    ['primary that stopped serving', report({ serving: false }), 'critical'],
  ])('%s → %s', (_name, r, health) => {
    expect(healthOf(r).health).toBe(health)
  })

  it('maps health to the cron exit codes', () => {
    expect(HEALTH_EXIT).toEqual({ healthy: 0, degraded: 1, critical: 2, unknown: 3 })
  })
})
