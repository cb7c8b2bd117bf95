import { describe, expect, it } from 'vitest'
import {
  canServe,
  initialRoleState,
  peerIsLivePrimary,
  step,
  type PeerView,
  type RoleAction,
  type RoleConfig,
  type RoleEvent,
  type RoleState,
} from '../../../src/ha/roles.js'
import type { Role } from '../../../src/ha/types.js'

const cfg: RoleConfig = { fenceAfterMs: 360 }
const T = 1000

type Over = Partial<Omit<RoleState, 'peer'>> & { peer?: Partial<PeerView> }

function st(over: Over = {}): RoleState {
  const base = initialRoleState()
  return { ...base, ...over, peer: { ...base.peer, ...over.peer } }
}

const candidate = (over: Over = {}): RoleState => st({ role: 'candidate', ...over })
const secondary = (over: Over = {}): RoleState =>
  st({ role: 'secondary', epoch: 3, peer: { up: true, role: 'primary', epoch: 3, heardAt: T - 50 }, ...over })
const primary = (over: Over = {}): RoleState =>
  st({ role: 'primary', epoch: 3, serving: true, leaseValidUntil: T + 300, peer: { up: true, role: 'secondary', epoch: 3, heardAt: T - 50 }, ...over })
const fenced = (over: Over = {}): RoleState => st({ role: 'fenced', epoch: 3, peer: { up: false, role: null, epoch: 0, heardAt: null }, ...over })

const types = (a: RoleAction[]): string[] => a.map((x) => x.type)
const FENCE = ['stopServing', 'releaseAddress', 'fence', 'watchLease', 'announce']
const BECOME_PRIMARY = ['renewLease', 'replayJournal', 'assumeAddress', 'enterDegraded', 'announce', 'startServing']

interface Row {
  name: string
  from: RoleState
  event: RoleEvent
  role: Role
  actions: string[]
  check?: (s: RoleState, a: RoleAction[]) => void
}

const rows: Row[] = [
  // stopped
  { name: 'stopped + start → candidate, watch the lease', from: initialRoleState(), event: { type: 'start', at: T }, role: 'candidate', actions: ['watchLease', 'announce'] },
  { name: 'stopped ignores lease lapses', from: initialRoleState(), event: { type: 'leaseLapsed', at: T }, role: 'stopped', actions: [] },
  { name: 'stopped ignores a late takeoverDone', from: initialRoleState(), event: { type: 'takeoverDone', at: T, epoch: 2, validFrom: T }, role: 'stopped', actions: [] },

  // candidate
  {
    name: 'candidate + heartbeat from a primary → secondary at its epoch',
    from: candidate(),
    event: { type: 'peerHeartbeat', at: T, role: 'primary', epoch: 3 },
    role: 'secondary',
    actions: ['announce'],
    check: (s) => expect(s).toMatchObject({ epoch: 3, serving: false }),
  },
  {
    name: 'candidate + lease lapsed, peer silent → claim (initial)',
    from: candidate(),
    event: { type: 'leaseLapsed', at: T },
    role: 'candidate',
    actions: ['claimLease'],
    check: (s, a) => {
      expect(s.claiming).toBe(true)
      expect(a[0]).toEqual({ type: 'claimLease', mode: 'initial', force: false, epochFloor: 0 })
    },
  },
  {
    name: 'candidate + lease lapsed while the peer is a live primary → no claim',
    from: candidate({ peer: { up: true, role: 'primary', epoch: 2, heardAt: T } }),
    event: { type: 'leaseLapsed', at: T },
    role: 'candidate',
    actions: [],
  },
  { name: 'candidate + leaseHeld → keeps waiting', from: candidate({ leaseLapsed: true, claiming: true }), event: { type: 'leaseHeld', at: T }, role: 'candidate', actions: [], check: (s) => expect(s.leaseLapsed).toBe(false) },
  {
    name: 'candidate claiming + takeoverDone → primary: renew, replay, address, announce, serve',
    from: candidate({ claiming: true, leaseLapsed: true }),
    event: { type: 'takeoverDone', at: T + 120, epoch: 1, validFrom: T },
    role: 'primary',
    actions: BECOME_PRIMARY,
    check: (s, a) => {
      expect(s).toMatchObject({ epoch: 1, serving: true, mirrored: false, claiming: false, leaseValidUntil: T + 360 })
      expect(a).toContainEqual({ type: 'replayJournal', epoch: 1 })
      expect(a).toContainEqual({ type: 'announce', role: 'primary', epoch: 1 })
    },
  },
  { name: 'candidate claiming + claimFailed → candidate, watch again', from: candidate({ claiming: true, leaseLapsed: true }), event: { type: 'claimFailed', at: T, reason: 'held' }, role: 'candidate', actions: ['watchLease'], check: (s) => expect(s).toMatchObject({ claiming: false, leaseLapsed: false }) },
  { name: 'candidate ignores handoverRequested', from: candidate(), event: { type: 'handoverRequested', at: T }, role: 'candidate', actions: [] },

  // secondary
  { name: 'secondary + peerDown, lease still fresh → wait', from: secondary(), event: { type: 'peerDown', at: T }, role: 'secondary', actions: [] },
  { name: 'secondary + lease lapsed, primary still heard → wait', from: secondary(), event: { type: 'leaseLapsed', at: T }, role: 'secondary', actions: [] },
  {
    name: 'secondary + peerDown after the lease lapsed → claim (takeover, epoch floor)',
    from: secondary({ leaseLapsed: true }),
    event: { type: 'peerDown', at: T },
    role: 'secondary',
    actions: ['claimLease'],
    check: (_s, a) => expect(a[0]).toEqual({ type: 'claimLease', mode: 'takeover', force: false, epochFloor: 3 }),
  },
  {
    name: 'secondary + lease lapsed, peer heard but fenced → claim',
    from: secondary({ peer: { up: true, role: 'fenced', epoch: 3, heardAt: T } }),
    event: { type: 'leaseLapsed', at: T },
    role: 'secondary',
    actions: ['claimLease'],
  },
  {
    name: 'secondary claiming ignores a second lapse',
    from: secondary({ claiming: true, leaseLapsed: true, peer: { up: false } }),
    event: { type: 'leaseLapsed', at: T },
    role: 'secondary',
    actions: [],
  },
  {
    name: 'secondary + takeoverDone → primary at the new epoch',
    from: secondary({ claiming: true, leaseLapsed: true, peer: { up: false } }),
    event: { type: 'takeoverDone', at: T + 110, epoch: 4, validFrom: T },
    role: 'primary',
    actions: BECOME_PRIMARY,
    check: (s) => expect(s).toMatchObject({ epoch: 4, serving: true, leaseValidUntil: T + 360 }),
  },
  {
    name: 'secondary + takeoverDone reported after its own lease ran out → stays secondary',
    from: secondary({ claiming: true, peer: { up: false } }),
    event: { type: 'takeoverDone', at: T + 360, epoch: 4, validFrom: T },
    role: 'secondary',
    actions: ['watchLease'],
    check: (s) => expect(s.serving).toBe(false),
  },
  { name: 'secondary ignores a primary heartbeat from an older epoch', from: secondary(), event: { type: 'peerHeartbeat', at: T, role: 'primary', epoch: 2 }, role: 'secondary', actions: [], check: (s) => expect(s.epoch).toBe(3) },
  { name: 'secondary follows a primary at a newer epoch', from: secondary(), event: { type: 'peerHeartbeat', at: T, role: 'primary', epoch: 5 }, role: 'secondary', actions: ['announce'], check: (s) => expect(s.epoch).toBe(5) },
  {
    name: 'secondary + operator takeover with a live primary → ask for a handover',
    from: secondary(),
    event: { type: 'operatorTakeover', at: T, force: false },
    role: 'secondary',
    actions: ['requestHandover'],
  },
  {
    name: 'secondary + operator takeover, primary gone, lease not lapsed → wait for the lease',
    from: secondary({ peer: { up: false } }),
    event: { type: 'operatorTakeover', at: T, force: false },
    role: 'secondary',
    actions: [],
  },
  {
    name: 'secondary + forced operator takeover → claim with force above every epoch heard',
    from: secondary({ peer: { up: true, role: 'primary', epoch: 7, heardAt: T } }),
    event: { type: 'operatorTakeover', at: T, force: true },
    role: 'secondary',
    actions: ['claimLease'],
    check: (s, a) => {
      expect(s.claiming).toBe(true)
      expect(a[0]).toEqual({ type: 'claimLease', mode: 'takeover', force: true, epochFloor: 7 })
    },
  },
  { name: 'secondary claiming ignores an operator takeover', from: secondary({ claiming: true }), event: { type: 'operatorTakeover', at: T, force: true }, role: 'secondary', actions: [] },
  { name: 'secondary + shutdown → stopped', from: secondary(), event: { type: 'shutdown', at: T }, role: 'stopped', actions: ['announce'] },
  { name: 'secondary ignores lease renewal results', from: secondary(), event: { type: 'leaseLost', at: T }, role: 'secondary', actions: [] },

  // primary
  {
    name: 'primary + leaseRenewed → deadline moves to validFrom + fenceAfter',
    from: primary(),
    event: { type: 'leaseRenewed', at: T + 10, validFrom: T + 5 },
    role: 'primary',
    actions: [],
    check: (s) => expect(s.leaseValidUntil).toBe(T + 365),
  },
  { name: 'primary + renew failed before the deadline → keeps serving', from: primary(), event: { type: 'leaseRenewFailed', at: T + 299 }, role: 'primary', actions: [], check: (s) => expect(s.serving).toBe(true) },
  {
    name: 'primary + renew failed at the deadline → fenced',
    from: primary(),
    event: { type: 'leaseRenewFailed', at: T + 300 },
    role: 'fenced',
    actions: FENCE,
    check: (s) => expect(s).toMatchObject({ serving: false, mirrored: false, epoch: 3 }),
  },
  { name: 'primary + tick at the deadline → fenced', from: primary(), event: { type: 'tick', at: T + 300 }, role: 'fenced', actions: FENCE },
  { name: 'primary + tick before the deadline → nothing', from: primary(), event: { type: 'tick', at: T + 100 }, role: 'primary', actions: [] },
  {
    name: 'primary + a renewal reported after the deadline does not revive it',
    from: primary(),
    event: { type: 'leaseRenewed', at: T + 301, validFrom: T + 250 },
    role: 'fenced',
    actions: FENCE,
  },
  { name: 'primary + leaseLost → fenced at once', from: primary(), event: { type: 'leaseLost', at: T + 1, reason: 'b took it' }, role: 'fenced', actions: FENCE, check: (s) => expect(s.reason).toMatch(/b took it/) },
  { name: 'primary + heartbeat from a primary at a higher epoch → fenced', from: primary(), event: { type: 'peerHeartbeat', at: T, role: 'primary', epoch: 4 }, role: 'fenced', actions: FENCE },
  { name: 'primary + heartbeat from a primary at its own epoch → the lease decides', from: primary(), event: { type: 'peerHeartbeat', at: T, role: 'primary', epoch: 3 }, role: 'primary', actions: [] },
  { name: 'primary + in-sync secondary at our epoch → mirrored', from: primary(), event: { type: 'peerHeartbeat', at: T, role: 'secondary', epoch: 3 }, role: 'primary', actions: ['enterMirrored'], check: (s) => expect(s.mirrored).toBe(true) },
  { name: 'primary mirrored + more heartbeats → no repeat', from: primary({ mirrored: true }), event: { type: 'peerHeartbeat', at: T, role: 'secondary', epoch: 3 }, role: 'primary', actions: [] },
  { name: 'primary mirrored + peerDown → degraded', from: primary({ mirrored: true }), event: { type: 'peerDown', at: T }, role: 'primary', actions: ['enterDegraded'], check: (s) => expect(s.mirrored).toBe(false) },
  { name: 'primary mirrored + peer restarted (candidate) → degraded', from: primary({ mirrored: true }), event: { type: 'peerHeartbeat', at: T, role: 'candidate', epoch: 0 }, role: 'primary', actions: ['enterDegraded'] },
  { name: 'primary mirrored + secondary at an older epoch → degraded', from: primary({ mirrored: true }), event: { type: 'peerHeartbeat', at: T, role: 'secondary', epoch: 2 }, role: 'primary', actions: ['enterDegraded'] },
  {
    name: 'primary + handoverRequested → stop, drop address, release the lease to the peer, secondary',
    from: primary({ mirrored: true }),
    event: { type: 'handoverRequested', at: T },
    role: 'secondary',
    actions: ['stopServing', 'releaseAddress', 'releaseLease', 'watchLease', 'announce'],
    check: (s, a) => {
      expect(s).toMatchObject({ serving: false, mirrored: false, epoch: 3 })
      expect(a).toContainEqual({ type: 'releaseLease', toPeer: true })
    },
  },
  { name: 'primary + shutdown → stopped, lease released', from: primary(), event: { type: 'shutdown', at: T }, role: 'stopped', actions: ['stopServing', 'releaseAddress', 'releaseLease', 'announce'] },
  { name: 'primary + operator takeover → already primary', from: primary(), event: { type: 'operatorTakeover', at: T, force: true }, role: 'primary', actions: [] },
  { name: 'primary ignores a stray takeoverDone', from: primary(), event: { type: 'takeoverDone', at: T, epoch: 9, validFrom: T }, role: 'primary', actions: [], check: (s) => expect(s.epoch).toBe(3) },
  { name: 'primary ignores lease lapse reports', from: primary(), event: { type: 'leaseLapsed', at: T }, role: 'primary', actions: [] },

  // fenced
  { name: 'fenced + a primary heartbeat at its old epoch → stays fenced', from: fenced(), event: { type: 'peerHeartbeat', at: T, role: 'primary', epoch: 3 }, role: 'fenced', actions: [] },
  { name: 'fenced + a primary at a higher epoch → secondary (rejoins)', from: fenced(), event: { type: 'peerHeartbeat', at: T, role: 'primary', epoch: 4 }, role: 'secondary', actions: ['announce'], check: (s) => expect(s.epoch).toBe(4) },
  {
    name: 'fenced + lease lapsed, nobody primary → claims a new epoch',
    from: fenced(),
    event: { type: 'leaseLapsed', at: T },
    role: 'fenced',
    actions: ['claimLease'],
    check: (_s, a) => expect(a[0]).toMatchObject({ mode: 'takeover', force: false, epochFloor: 3 }),
  },
  { name: 'fenced ignores tick and renewal results', from: fenced(), event: { type: 'leaseRenewed', at: T, validFrom: T }, role: 'fenced', actions: [], check: (s) => expect(s.serving).toBe(false) },
]

describe('role transitions', () => {
  it.each(rows.map((r) => [r.name, r] as const))('%s', (_name, r: Row) => {
    const frozen = structuredClone(r.from)
    const { state, actions } = step(r.from, r.event, cfg)
    expect(r.from).toEqual(frozen) // pure: the input is untouched
    expect(state.role).toBe(r.role)
    expect(types(actions)).toEqual(r.actions)
    r.check?.(state, actions)
  })
})

describe('canServe', () => {
  it('is true only for a serving primary strictly before its deadline', () => {
    const p = primary()
    expect(canServe(p, T)).toBe(true)
    expect(canServe(p, T + 299)).toBe(true)
    expect(canServe(p, T + 300)).toBe(false)
    expect(canServe(secondary(), T)).toBe(false)
    expect(canServe(fenced(), T)).toBe(false)
    expect(canServe(candidate(), T)).toBe(false)
  })

  it('peerIsLivePrimary needs the link up, role primary, and an epoch not older than ours', () => {
    expect(peerIsLivePrimary(secondary())).toBe(true)
    expect(peerIsLivePrimary(secondary({ peer: { up: false, role: 'primary', epoch: 3, heardAt: T } }))).toBe(false)
    expect(peerIsLivePrimary(secondary({ peer: { up: true, role: 'primary', epoch: 2, heardAt: T } }))).toBe(false)
  })
})

describe('role scenarios', () => {
  const run = (s: RoleState, events: RoleEvent[]): { state: RoleState; actions: RoleAction[] } => {
    const all: RoleAction[] = []
    for (const e of events) {
      const t = step(s, e, cfg)
      s = t.state
      all.push(...t.actions)
    }
    return { state: s, actions: all }
  }

  it('a restarted controller never claims while the partner holds a fresh lease', () => {
    const events: RoleEvent[] = [{ type: 'start', at: 0 }]
    for (let t = 50; t < 5000; t += 50) {
      events.push({ type: 'leaseHeld', at: t })
      if (t % 100 === 0) events.push({ type: 'peerHeartbeat', at: t, role: 'primary', epoch: 6 })
      if (t === 2000) events.push({ type: 'peerDown', at: t }) // link cut: the lease still says held
    }
    const { state, actions } = run(initialRoleState(), events)
    expect(types(actions)).not.toContain('claimLease')
    expect(types(actions)).not.toContain('startServing')
    expect(state.role).toBe('secondary')
  })

  it('failover: heartbeats stop, the lease lapses, the secondary claims, replays, takes the address, serves', () => {
    const { state, actions } = run(secondary(), [
      { type: 'peerDown', at: T },
      { type: 'leaseLapsed', at: T + 600 },
      { type: 'takeoverDone', at: T + 720, epoch: 4, validFrom: T + 610 },
    ])
    expect(types(actions)).toEqual(['claimLease', ...BECOME_PRIMARY])
    expect(state).toMatchObject({ role: 'primary', epoch: 4, serving: true })
    // replay strictly before serving, address before serving
    const ts = types(actions)
    expect(ts.indexOf('replayJournal')).toBeLessThan(ts.indexOf('startServing'))
    expect(ts.indexOf('assumeAddress')).toBeLessThan(ts.indexOf('startServing'))
  })

  it('planned handover end to end: both sides, the lease passes without a lapse wait', () => {
    let a = primary({ mirrored: true })
    let b = secondary()
    const tb = step(b, { type: 'operatorTakeover', at: T, force: false }, cfg)
    b = tb.state
    expect(types(tb.actions)).toEqual(['requestHandover'])
    const ta = step(a, { type: 'handoverRequested', at: T + 5 }, cfg)
    a = ta.state
    expect(a.role).toBe('secondary')
    b = step(b, { type: 'peerHeartbeat', at: T + 10, role: 'secondary', epoch: 3 }, cfg).state
    const t2 = step(b, { type: 'leaseLapsed', at: T + 20 }, cfg) // the watcher saw the release to b
    expect(types(t2.actions)).toEqual(['claimLease'])
    const t3 = step(t2.state, { type: 'takeoverDone', at: T + 130, epoch: 4, validFrom: T + 25 }, cfg)
    expect(t3.state).toMatchObject({ role: 'primary', epoch: 4 })
    // a hears b as primary at epoch 4 and follows
    a = step(a, { type: 'peerHeartbeat', at: T + 200, role: 'primary', epoch: 4 }, cfg).state
    expect(a).toMatchObject({ role: 'secondary', epoch: 4 })
  })

  it('random event sequences: serving only inside the lease, never a claim against a live primary', () => {
    let seed = 12345
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed / 0x80000000
    }
    const roles: Role[] = ['primary', 'secondary', 'candidate', 'fenced', 'stopped']
    for (let runNo = 0; runNo < 200; runNo++) {
      let s = initialRoleState()
      let t = 0
      let lastValidFrom = Number.NEGATIVE_INFINITY
      for (let i = 0; i < 300; i++) {
        t += Math.floor(rnd() * 120)
        const k = Math.floor(rnd() * 15)
        const e: RoleEvent =
          k === 0 ? { type: 'start', at: t }
          : k === 1 ? { type: 'peerUp', at: t }
          : k === 2 ? { type: 'peerDown', at: t }
          : k === 3 ? { type: 'peerHeartbeat', at: t, role: roles[Math.floor(rnd() * roles.length)]!, epoch: Math.floor(rnd() * 6) }
          : k === 4 ? { type: 'leaseRenewed', at: t, validFrom: t - Math.floor(rnd() * 50) }
          : k === 5 ? { type: 'leaseRenewFailed', at: t }
          : k === 6 ? { type: 'leaseLost', at: t }
          : k === 7 ? { type: 'leaseLapsed', at: t }
          : k === 8 ? { type: 'leaseHeld', at: t }
          : k === 9 ? { type: 'takeoverDone', at: t, epoch: s.epoch + 1, validFrom: t - Math.floor(rnd() * 100) }
          : k === 10 ? { type: 'claimFailed', at: t, reason: 'x' }
          : k === 11 ? { type: 'operatorTakeover', at: t, force: rnd() < 0.3 }
          : k === 12 ? { type: 'handoverRequested', at: t }
          : k === 13 ? { type: 'shutdown', at: t }
          : { type: 'tick', at: t }
        const prev = s
        const { state, actions } = step(s, e, cfg)
        s = state
        const ts = types(actions)
        if (e.type === 'leaseRenewed' || e.type === 'takeoverDone') lastValidFrom = Math.max(lastValidFrom, e.validFrom)
        // serving only as primary and never past the last validFrom + fenceAfter
        if (canServe(s, t)) {
          expect(s.role).toBe('primary')
          expect(t).toBeLessThan(lastValidFrom + cfg.fenceAfterMs)
        }
        // startServing only when becoming primary through a takeover
        if (ts.includes('startServing')) expect(e.type).toBe('takeoverDone')
        // a non-forced claim never while the peer is heard as a primary at our epoch or later
        const claim = actions.find((a) => a.type === 'claimLease')
        if (claim && claim.type === 'claimLease' && !claim.force) expect(peerIsLivePrimary(s)).toBe(false)
        // leaving primary always stops serving and drops the address
        if (prev.role === 'primary' && s.role !== 'primary') {
          expect(ts).toContain('stopServing')
          expect(ts).toContain('releaseAddress')
        }
        if (s.role !== 'primary') expect(s.serving).toBe(false)
      }
    }
  })
})
