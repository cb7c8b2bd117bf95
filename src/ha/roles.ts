// The role state machine of one controller: pure. Events (each stamped with the controller's
// monotonic clock) go in; the next state and a list of actions for the HA controller come out.
// The controller performs the actions in order and feeds their results back as events
// (`claimLease` → `takeoverDone` / `claimFailed`, `renewLease` → `leaseRenewed` / … ).
//
//              start                     leaseLapsed, peer not a live primary
//   stopped ─────────► candidate ───────────────────────────────► (claiming) ──takeoverDone──► primary
//                          │ heartbeat: peer primary                   ▲                          │
//                          ▼                                           │ leaseLapsed,             │ deadline passed,
//                      secondary ──────────────────────────────────────┘ peer down / not primary  │ leaseLost, or
//                          ▲                                                                       │ peer primary at a
//                          │ heartbeat: peer primary at a higher epoch                             ▼ higher epoch
//                          └─────────────────────────────────────────────────────────────────── fenced
//
// Rules:
// - Only the lease makes a primary: a candidate or secondary claims only after the lease watcher
//   reported it lapsed (or free, or released to us) and while the peer is not heard as a primary
//   at our epoch or above. A restarted controller is a candidate, so it never starts as primary
//   while the partner holds a valid lease (the lease's own checks back this up).
// - A primary serves only until `leaseValidUntil` (start of its last counted renewal +
//   fenceAfterMs): `canServe(state, now)` is false from that instant, and the first event at or
//   after it fences the node (stopServing, releaseAddress, fence). The controller also schedules
//   a `tick` at `leaseValidUntil` so a hung renewal cannot keep it serving.
// - A fenced node does not serve again on its old epoch: it becomes a secondary when it hears a
//   primary at a higher epoch, or wins the lease anew (a new, higher epoch) once it has lapsed
//   and nobody else is primary — the same path a restarted controller takes.
// - Planned handover: the secondary asks (`requestHandover`); the primary stops serving, drops
//   the address, and releases the lease to the peer (`releaseLease`), which then claims it at
//   once. A forced operator takeover claims with `force` (the lease waits out the old holder).

import type { Role } from './types.js'

export interface RoleConfig {
  /** The lease's fenceAfterMs: how long after the start of a counted renewal a primary may serve. */
  fenceAfterMs: number
}

export interface PeerView {
  /** The peer link is up (the controller's heartbeat timeout decides). */
  up: boolean
  /** Role and epoch from the latest heartbeat (null before the first). */
  role: Role | null
  epoch: number
  heardAt: number | null
}

export interface RoleState {
  role: Role
  /** Our epoch: the tenure we hold as primary, or the primary's epoch we follow. */
  epoch: number
  /** The controller should be serving (a primary); see canServe() for the instant check. */
  serving: boolean
  /** Primary with an in-sync secondary (copies committed to two memories). */
  mirrored: boolean
  /** Primary: monotonic ms from which it must not serve. −Infinity otherwise. */
  leaseValidUntil: number
  peer: PeerView
  /** The lease watcher's latest verdict: the lease may be taken now. */
  leaseLapsed: boolean
  /** A claimLease is in flight. */
  claiming: boolean
  /** Why the node was last fenced, stopped or handed over ('' if never). */
  reason: string
}

export type RoleEvent =
  | { type: 'start'; at: number }
  | { type: 'shutdown'; at: number }
  | { type: 'peerUp'; at: number }
  | { type: 'peerDown'; at: number }
  | { type: 'peerHeartbeat'; at: number; role: Role; epoch: number }
  /** A renewal counted; `validFrom` is when it began (RenewResult.validFrom). */
  | { type: 'leaseRenewed'; at: number; validFrom: number }
  | { type: 'leaseRenewFailed'; at: number; reason?: string }
  | { type: 'leaseLost'; at: number; reason?: string }
  /** Watcher: the lease may be taken (lapsed, never written, or released to us). */
  | { type: 'leaseLapsed'; at: number }
  /** Watcher: the lease is held and fresh. */
  | { type: 'leaseHeld'; at: number }
  /** A claim succeeded (AcquireResult with ok). */
  | { type: 'takeoverDone'; at: number; epoch: number; validFrom: number }
  | { type: 'claimFailed'; at: number; reason: string }
  | { type: 'operatorTakeover'; at: number; force: boolean }
  /** The peer (secondary) asked us to hand over. */
  | { type: 'handoverRequested'; at: number }
  | { type: 'tick'; at: number }

export type RoleEventType = RoleEvent['type']

export type RoleAction =
  | { type: 'startServing' }
  | { type: 'stopServing'; reason: string }
  /** initial: Lease.acquireInitial(); takeover: Lease.takeOver({ force, epochFloor }). */
  | { type: 'claimLease'; mode: 'initial' | 'takeover'; force: boolean; epochFloor: number }
  /** Renew every renewIntervalMs and schedule a tick at leaseValidUntil. */
  | { type: 'renewLease' }
  /** Stop renewing (if we were) and poll the lease every pollIntervalMs. */
  | { type: 'watchLease' }
  /** Lease.release(peer name) — planned handover or shutdown of the primary. */
  | { type: 'releaseLease'; toPeer: boolean }
  /** Ask the primary over the peer link to hand over (handover-request). */
  | { type: 'requestHandover' }
  /** Complete every journaled copy to storage, in seq order, before serving. */
  | { type: 'replayJournal'; epoch: number }
  | { type: 'assumeAddress' }
  | { type: 'releaseAddress' }
  /** Tell the peer (heartbeats carry role and epoch from now on). */
  | { type: 'announce'; role: Role; epoch: number }
  | { type: 'enterMirrored' }
  | { type: 'enterDegraded' }
  /** Make sure nothing is in flight: abort I/O, drop host connections, abandon the lease tenure. */
  | { type: 'fence'; reason: string }

export type RoleActionType = RoleAction['type']

export interface Transition {
  state: RoleState
  actions: RoleAction[]
}

export function initialRoleState(): RoleState {
  return {
    role: 'stopped',
    epoch: 0,
    serving: false,
    mirrored: false,
    leaseValidUntil: Number.NEGATIVE_INFINITY,
    peer: { up: false, role: null, epoch: 0, heardAt: null },
    leaseLapsed: false,
    claiming: false,
    reason: '',
  }
}

/** May this controller execute I/O at `now`? (A primary inside its lease.) */
export function canServe(state: RoleState, now: number): boolean {
  return state.role === 'primary' && state.serving && now < state.leaseValidUntil
}

/** The peer is heard as a primary at our epoch or a later one. */
export function peerIsLivePrimary(state: RoleState): boolean {
  return state.peer.up && state.peer.role === 'primary' && state.peer.epoch >= state.epoch
}

/** Apply one event. Pure: `state` is not modified. */
export function step(state: RoleState, event: RoleEvent, config: RoleConfig): Transition {
  const d: RoleState = { ...state, peer: { ...state.peer } }
  const actions: RoleAction[] = []
  const announce = (): void => {
    actions.push({ type: 'announce', role: d.role, epoch: d.epoch })
  }

  if (d.role === 'stopped') {
    if (event.type === 'start') {
      d.role = 'candidate'
      d.serving = false
      d.mirrored = false
      d.claiming = false
      d.leaseLapsed = false
      d.leaseValidUntil = Number.NEGATIVE_INFINITY
      actions.push({ type: 'watchLease' })
      announce()
    }
    return { state: d, actions }
  }

  // What the peer link tells us, whatever our role.
  if (event.type === 'peerUp') d.peer.up = true
  if (event.type === 'peerDown') d.peer.up = false
  if (event.type === 'peerHeartbeat') {
    d.peer.up = true
    d.peer.role = event.role
    d.peer.epoch = event.epoch
    d.peer.heardAt = event.at
  }

  const fence = (reason: string): void => {
    actions.push({ type: 'stopServing', reason }, { type: 'releaseAddress' }, { type: 'fence', reason }, { type: 'watchLease' })
    d.role = 'fenced'
    d.serving = false
    d.mirrored = false
    d.leaseValidUntil = Number.NEGATIVE_INFINITY
    d.leaseLapsed = false
    d.claiming = false
    d.reason = reason
    announce()
  }

  if (d.role === 'primary') {
    // The deadline first: whatever the event, a primary past it stops now.
    if (event.at >= d.leaseValidUntil) {
      fence(`lease not renewed within ${config.fenceAfterMs} ms`)
      return standby(d, event, actions, announce, config)
    }
    switch (event.type) {
      case 'leaseRenewed':
        d.leaseValidUntil = Math.max(d.leaseValidUntil, event.validFrom + config.fenceAfterMs)
        break
      case 'leaseLost':
        fence(`lease lost${event.reason ? `: ${event.reason}` : ''}`)
        break
      case 'peerHeartbeat':
        if (event.epoch > d.epoch) {
          fence(`peer serves at epoch ${event.epoch} > ${d.epoch}`)
        } else if (event.role === 'secondary' && event.epoch === d.epoch) {
          if (!d.mirrored) {
            d.mirrored = true
            actions.push({ type: 'enterMirrored' })
          }
        } else if (d.mirrored) {
          d.mirrored = false
          actions.push({ type: 'enterDegraded' })
        }
        break
      case 'peerDown':
        if (d.mirrored) {
          d.mirrored = false
          actions.push({ type: 'enterDegraded' })
        }
        break
      case 'handoverRequested':
        actions.push({ type: 'stopServing', reason: 'planned handover' }, { type: 'releaseAddress' }, { type: 'releaseLease', toPeer: true }, { type: 'watchLease' })
        d.role = 'secondary'
        d.serving = false
        d.mirrored = false
        d.leaseValidUntil = Number.NEGATIVE_INFINITY
        d.leaseLapsed = false
        d.reason = 'handed over'
        announce()
        break
      case 'shutdown':
        actions.push({ type: 'stopServing', reason: 'shutdown' }, { type: 'releaseAddress' }, { type: 'releaseLease', toPeer: true })
        d.role = 'stopped'
        d.serving = false
        d.mirrored = false
        d.leaseValidUntil = Number.NEGATIVE_INFINITY
        d.reason = 'shutdown'
        announce()
        break
      default:
        // start, peerUp, leaseRenewFailed (deadline not reached yet), tick, leaseLapsed,
        // leaseHeld, takeoverDone, claimFailed, operatorTakeover: nothing to do as primary.
        break
    }
    return { state: d, actions }
  }

  return standby(d, event, actions, announce, config)
}

/** candidate, secondary, fenced: waiting for the lease. Mutates the draft `d`. */
function standby(d: RoleState, event: RoleEvent, actions: RoleAction[], announce: () => void, config: RoleConfig): Transition {
  const maybeClaim = (): void => {
    if (d.role === 'stopped' || d.role === 'primary') return
    if (d.claiming || !d.leaseLapsed || peerIsLivePrimary(d)) return
    d.claiming = true
    actions.push({ type: 'claimLease', mode: d.role === 'candidate' ? 'initial' : 'takeover', force: false, epochFloor: d.epoch })
  }
  switch (event.type) {
    case 'peerHeartbeat':
      if (event.role === 'primary' && (d.role === 'fenced' ? event.epoch > d.epoch : event.epoch >= d.epoch)) {
        const changed = d.role !== 'secondary' || d.epoch !== event.epoch
        d.role = 'secondary'
        d.epoch = event.epoch
        if (changed) announce()
      }
      maybeClaim()
      break
    case 'peerUp':
    case 'peerDown':
      maybeClaim()
      break
    case 'leaseLapsed':
      d.leaseLapsed = true
      maybeClaim()
      break
    case 'leaseHeld':
      d.leaseLapsed = false
      break
    case 'takeoverDone': {
      d.claiming = false
      d.leaseLapsed = false
      const until = event.validFrom + config.fenceAfterMs
      if (event.at >= until) {
        // The claim finished after its own lease ran out: nothing to serve on; watch again.
        d.reason = 'lease claim completed too late'
        actions.push({ type: 'watchLease' })
        break
      }
      d.role = 'primary'
      d.epoch = event.epoch
      d.serving = true
      d.mirrored = false
      d.reason = ''
      d.leaseValidUntil = until
      actions.push(
        { type: 'renewLease' },
        { type: 'replayJournal', epoch: event.epoch },
        { type: 'assumeAddress' },
        { type: 'enterDegraded' },
      )
      announce()
      actions.push({ type: 'startServing' })
      break
    }
    case 'claimFailed':
      d.claiming = false
      d.leaseLapsed = false
      actions.push({ type: 'watchLease' })
      break
    case 'operatorTakeover':
      if (d.claiming) break
      if (event.force) {
        d.claiming = true
        actions.push({ type: 'claimLease', mode: 'takeover', force: true, epochFloor: Math.max(d.epoch, d.peer.epoch) })
      } else if (peerIsLivePrimary(d)) {
        actions.push({ type: 'requestHandover' })
      } else {
        maybeClaim()
      }
      break
    case 'shutdown':
      d.role = 'stopped'
      d.claiming = false
      d.reason = 'shutdown'
      announce()
      break
    default:
      // start (already running), tick, lease renewal results, handoverRequested: not for a standby.
      break
  }
  return { state: d, actions }
}
