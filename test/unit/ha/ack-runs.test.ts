import { describe, expect, it } from 'vitest'
import { AckRuns, type AckRun } from '../../../src/ha/ack-runs.js'

function setup(): { acks: AckRuns; sent: AckRun[]; run(): void } {
  const sent: AckRun[] = []
  let pending: (() => void) | undefined
  const acks = new AckRuns((r) => sent.push({ ...r }), (flush) => (pending = flush))
  return { acks, sent, run: () => pending?.() }
}

describe('AckRuns', () => {
  it('confirms a burst of consecutive copies with one run, once the burst is in', () => {
    const { acks, sent, run } = setup()
    for (let seq = 5; seq < 37; seq++) acks.add(2, seq)
    expect(sent).toEqual([])
    run()
    expect(sent).toEqual([{ epoch: 2, seq: 5, count: 32 }])
    expect(acks.waiting).toBe(0)
  })

  it('starts a new run at a gap or an epoch change, keeping the order', () => {
    const { acks, sent, run } = setup()
    for (const [epoch, seq] of [[2, 1], [2, 2], [2, 4], [2, 5], [3, 6], [3, 7], [3, 3]] as const) acks.add(epoch, seq)
    run()
    expect(sent).toEqual([
      { epoch: 2, seq: 1, count: 2 },
      { epoch: 2, seq: 4, count: 2 },
      { epoch: 3, seq: 6, count: 2 },
      { epoch: 3, seq: 3, count: 1 },
    ])
  })

  it('by default sends after the microtasks already queued, without a timer', async () => {
    const sent: AckRun[] = []
    const acks = new AckRuns((r) => sent.push({ ...r }))
    // As the secondary does: every copy of a burst resolves its journal add in the same turn.
    const adds = [1, 2, 3].map((seq) => Promise.resolve().then(() => acks.add(1, seq)))
    await Promise.all(adds)
    await Promise.resolve()
    expect(sent).toEqual([{ epoch: 1, seq: 1, count: 3 }])
    acks.add(1, 4)
    await Promise.resolve()
    expect(sent).toEqual([{ epoch: 1, seq: 1, count: 3 }, { epoch: 1, seq: 4, count: 1 }])
  })
})
