import { describe, expect, it } from 'vitest'
import { render } from 'ink-testing-library'
import { PeerStatusView, WatchStore } from '../../../src/cli/views/peer-status-view.js'
import type { PeerStatusReport } from '../../../src/ha/status.js'

const report: PeerStatusReport = {
  node: 'a', role: 'primary', epoch: 7, serving: true, mirrored: true,
  peer: { name: 'b', address: '127.0.0.1:7401', link: 'up', rttMs: 0.4, lastHeardMsAgo: 30, role: 'secondary', epoch: 7, refusals: {} },
  lease: { holder: 'a', epoch: 7, ageMs: 50, durationMs: 600 },
  serviceAddress: { address: '127.0.0.10:3260', heldHere: true },
  journal: { entries: 2, bytes: 8192, oldestSeq: 41, oldestAgeMs: 3 },
  lastTakeover: { kind: 'failover', at: '2026-11-24T05:00:00.000Z', replayed: 12, replayedBytes: 49152, pauseMs: 640, epoch: 7 },
}

const tick = () => new Promise((r) => setTimeout(r, 20))

describe('peer status live view', () => {
  it('shows connecting, then the report the store receives, then a failed poll', async () => {
    const store = new WatchStore()
    const view = render(<PeerStatusView store={store} />)
    expect(view.lastFrame()).toContain('connecting')
    store.set({ report, at: new Date() })
    await tick()
    const frame = view.lastFrame()!
    expect(frame).toContain('health   healthy')
    expect(frame).toContain('role primary  epoch 7  serving, mirrored')
    expect(frame).toContain('journal  2 entries, 8 KiB, oldest #41')
    expect(frame).toContain('replayed 12 copies')
    store.set({ report: { ...report, peer: { ...report.peer, link: 'down' } }, error: 'timeout', at: new Date() })
    await tick()
    expect(view.lastFrame()).toContain('health   degraded')
    expect(view.lastFrame()).toContain('last poll failed: timeout')
    view.unmount()
  })
})
