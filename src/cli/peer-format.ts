// Peer status as text lines: the plain output and the live view print the same words.
import { healthOf, type PeerStatusReport } from '../ha/status.js'
import { formatBytes } from './table.js'

function ms(n: number | undefined): string {
  if (n === undefined) return '-'
  return n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n * 10) / 10} ms`
}

export function peerStatusLines(r: PeerStatusReport): string[] {
  const { health, reasons } = healthOf(r)
  const lines = [
    `health   ${health}${reasons.length ? ` (${reasons.join('; ')})` : ''}`,
    `node     ${r.node}  role ${r.role}  epoch ${r.epoch}  ${r.serving ? 'serving' : 'not serving'}${r.role === 'primary' ? (r.mirrored ? ', mirrored' : ', write-through') : ''}`,
    `peer     ${r.peer.name} at ${r.peer.address}  link ${r.peer.link}  rtt ${ms(r.peer.rttMs)}  last heard ${ms(r.peer.lastHeardMsAgo)} ago  role ${r.peer.role ?? '-'}  epoch ${r.peer.epoch ?? '-'}`,
    `lease    ${r.lease.error ? `error: ${r.lease.error}` : `holder ${r.lease.holder || '(none)'}  epoch ${r.lease.epoch}  changed ${ms(r.lease.ageMs)} ago  duration ${ms(r.lease.durationMs)}`}`,
    `address  ${r.serviceAddress.address}${r.serviceAddress.interface ? ` on ${r.serviceAddress.interface}` : ''}  ${r.serviceAddress.heldHere ? 'held here' : 'not held here'}`,
    `journal  ${r.journal.entries} entries, ${formatBytes(r.journal.bytes)}${r.journal.oldestSeq !== undefined ? `, oldest #${r.journal.oldestSeq} ${ms(r.journal.oldestAgeMs)} old` : ''}`,
  ]
  const refusals = Object.entries(r.peer.refusals)
  if (refusals.length) lines.push(`refused  ${refusals.map(([k, v]) => `${k} ${v}`).join(', ')}`)
  const t = r.lastTakeover
  lines.push(t ? `takeover ${t.kind} at ${t.at}: replayed ${t.replayed} copies (${formatBytes(t.replayedBytes)}), pause ${ms(t.pauseMs)}, epoch ${t.epoch}` : 'takeover none yet')
  return lines
}
