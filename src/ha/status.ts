// What `iscsi-ha peer status` reports, and the health verdict a cron check exits with.
import type { LunSize, Role } from './types.js'

export interface TakeoverRecord {
  kind: 'failover' | 'planned' | 'forced'
  at: string
  /** Copies completed to storage from the journal before serving. */
  replayed: number
  replayedBytes: number
  /** From losing the primary (last heartbeat) to serving on the service address. */
  pauseMs: number
  epoch: number
}

export interface PeerStatusReport {
  node: string
  role: Role
  epoch: number
  /**
   * Answering hosts on the service address: the journal replayed and the portal listening. A
   * node that has just won the lease is primary but not serving until then.
   */
  serving: boolean
  /** Primary with an in-sync secondary: writes are committed to two memories. */
  mirrored: boolean
  peer: {
    name: string
    address: string
    link: 'up' | 'down'
    rttMs?: number
    lastHeardMsAgo?: number
    role?: Role
    epoch?: number
    /** The LUN sizes the peer last reported over the link, and how long ago. */
    luns?: LunSize[]
    lunsReportedMsAgo?: number
    /** Refused peer-link connections by reason (strangers, wrong secret, stale epoch …). */
    refusals: Record<string, number>
  }
  lease: {
    holder: string
    epoch: number
    /** Milliseconds since the record last changed, as this node saw it. */
    ageMs: number
    durationMs: number
    error?: string
  }
  serviceAddress: {
    address: string
    interface?: string
    heldHere: boolean
  }
  journal: {
    entries: number
    bytes: number
    oldestSeq?: number
    oldestAgeMs?: number
  }
  lastTakeover?: TakeoverRecord
}

export type Health = 'healthy' | 'degraded' | 'critical'

/** Exit codes for cron: 0 healthy, 1 degraded, 2 critical, 3 unknown (node unreachable). */
export const HEALTH_EXIT: Record<Health | 'unknown', number> = { healthy: 0, degraded: 1, critical: 2, unknown: 3 }

/**
 * healthy: both controllers up, one primary, writes mirrored.
 * degraded: service runs but something is missing (no partner, not mirrored, journal backlog).
 * critical: nobody serves, or this node is fenced and cannot serve.
 */
export function healthOf(r: PeerStatusReport): { health: Health; reasons: string[] } {
  const reasons: string[] = []
  const peerUp = r.peer.link === 'up'
  const somebodyServes = (r.role === 'primary' && r.serving) || (peerUp && r.peer.role === 'primary')
  if (!somebodyServes) reasons.push('no controller is serving')
  if (r.role === 'fenced' || r.role === 'stopped') reasons.push(`this node is ${r.role}`)
  if (reasons.length > 0) return { health: 'critical', reasons }
  if (!peerUp) reasons.push(`peer ${r.peer.name} is unreachable`)
  const primaryMirrored = r.role === 'primary' ? r.mirrored : peerUp && r.peer.role === 'primary' && r.role === 'secondary'
  if (peerUp && !primaryMirrored) reasons.push('writes are not mirrored')
  if (r.lease.error) reasons.push(`lease: ${r.lease.error}`)
  return { health: reasons.length ? 'degraded' : 'healthy', reasons }
}
