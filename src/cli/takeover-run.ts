// `iscsi-ha takeover`: ask the named node to take over (POST /v1/takeover), then watch it
// (GET /v1/peer) until it serves as primary with the takeover recorded, or time runs out.
import { adminGetJson, adminRequest, AdminUnreachableError } from '../admin/client.js'
import type { ClusterConfig } from '../config/index.js'
import type { PeerStatusReport, TakeoverRecord } from '../ha/status.js'
import { CommandFailure, refused } from './failure.js'
import { formatBytes } from './table.js'

export interface TakeoverResult {
  node: string
  admin: string
  /** false: it was primary already, nothing was asked. */
  changed: boolean
  role: string
  epoch: number
  kind?: TakeoverRecord['kind']
  /** Host I/O pause as the new primary measured it (last heard of the old primary → serving). */
  pauseMs?: number
  replayed?: number
  replayedBytes?: number
  /** From the request to seeing the node serve. */
  elapsedMs: number
  detail: string
}

export const TAKEOVER_NOT_DONE = 1

/** The admin address of the node named by --to in the config. */
export function adminOfNode(config: ClusterConfig, name: string): string {
  const node = config.nodes[name]
  if (!node) throw refused(`no node "${name}" in ${config.source ?? 'the config'} (nodes: ${Object.keys(config.nodes).join(', ')})`, 'NO_SUCH_NODE')
  return node.admin.text
}

export async function readPeer(admin: string, timeoutMs: number): Promise<PeerStatusReport> {
  return (await adminGetJson(admin, '/v1/peer', { timeoutMs })) as PeerStatusReport
}

/** The node serves as primary and its record of the takeover is complete. */
function finished(r: PeerStatusReport, fromEpoch: number): boolean {
  return r.role === 'primary' && r.serving && r.serviceAddress.heldHere && r.epoch > fromEpoch && r.lastTakeover?.epoch === r.epoch
}

export function forceRisk(before: PeerStatusReport): string {
  const to = before.node
  const partner = before.peer.name
  const state = before.peer.link === 'up'
    ? `${partner} is reachable (role ${before.peer.role ?? 'unknown'}): forcing fences it and aborts its in-flight I/O; a planned takeover (without --force) would hand over cleanly.`
    : `${partner} is unreachable: if it still lives and serves, it stops when it sees the new epoch on the lease (or when its own lease runs out).`
  return `Forced takeover: ${to} claims the lease at once with a higher epoch, without ${partner}'s handover. ${state} Only the shared lease keeps the two from serving at once: if they do not really share that storage, both could write the LUN and corrupt it.`
}

export interface TakeoverOptions {
  admin: string
  before: PeerStatusReport
  force: boolean
  timeoutMs: number
  intervalMs?: number
  requestTimeoutMs?: number
}

export async function runTakeover(o: TakeoverOptions): Promise<TakeoverResult> {
  const started = performance.now()
  const rq = o.requestTimeoutMs ?? 3000
  const base = { node: o.before.node, admin: o.admin }
  const already = (r: PeerStatusReport): TakeoverResult => ({
    ...base, changed: false, role: r.role, epoch: r.epoch, elapsedMs: 0, detail: `${r.node} is already primary (epoch ${r.epoch}): nothing to do`,
  })
  if (o.before.role === 'primary' && o.before.serving) return already(o.before)
  const reply = await adminRequest(o.admin, '/v1/takeover', { method: 'POST', body: { force: o.force }, timeoutMs: rq })
  const answer = JSON.parse(reply.text) as { accepted?: boolean; detail?: string }
  if (answer.accepted !== true) {
    const now = await readPeer(o.admin, rq)
    if (now.role === 'primary' && now.serving) return already(now)
    throw refused(`${o.before.node} refused the takeover: ${answer.detail ?? 'no reason given'}`, 'TAKEOVER_REFUSED')
  }
  const deadline = started + o.timeoutMs
  let last: PeerStatusReport | undefined
  for (;;) {
    try {
      last = await readPeer(o.admin, Math.max(100, Math.min(rq, deadline - performance.now())))
      if (finished(last, o.before.epoch)) break
    } catch (err) {
      if (!(err instanceof AdminUnreachableError)) throw err // a node busy taking over may answer late
    }
    if (performance.now() >= deadline) {
      const where = last ? `it is ${last.role}${last.serving ? ', serving' : ''} at epoch ${last.epoch}` : 'it did not answer'
      throw new CommandFailure(TAKEOVER_NOT_DONE, `${o.before.node} accepted the takeover (${answer.detail ?? ''}) but is not serving as primary after ${o.timeoutMs} ms: ${where}. See iscsi-ha peer status --admin ${o.admin}.`, 'TAKEOVER_TIMEOUT')
    }
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 50))
  }
  const t = last.lastTakeover!
  return {
    ...base, changed: true, role: last.role, epoch: last.epoch, kind: t.kind, pauseMs: t.pauseMs, replayed: t.replayed, replayedBytes: t.replayedBytes,
    elapsedMs: Math.round(performance.now() - started), detail: answer.detail ?? '',
  }
}

export function takeoverLines(r: TakeoverResult): string[] {
  if (!r.changed) return [r.detail]
  return [
    `${r.node} is primary (epoch ${r.epoch}) after a ${r.kind} takeover, in ${(r.elapsedMs / 1000).toFixed(1)} s`,
    `host I/O pause ${r.pauseMs} ms; ${r.replayed} committed-not-completed ${r.replayed === 1 ? 'copy' : 'copies'} replayed (${formatBytes(r.replayedBytes ?? 0)})`,
  ]
}
