// Text for `bench failover`: one progress line per event (stderr) and the per-trial table.
import type { FailoverEvent, TrialResult } from './failover.js'

export const TRIAL_HEADERS = ['trial', 'killed', 'at ms', 'host pause ms', 'takeover ms', 'replayed', 'acked', 'resent', 'reconnects', 'lost', 'torn', 'invented']

export function trialRow(r: TrialResult): Array<string | number> {
  return [
    r.trial, r.killed, r.killAtMs, r.pauseMs, r.takeover?.pauseMs ?? '-', r.takeover?.replayed ?? '-',
    r.writesAcknowledged, r.writesResent, r.reconnects, r.lost, r.torn, r.invented,
  ]
}

export function failoverEventLine(e: FailoverEvent): string | undefined {
  switch (e.type) {
    case 'pair-ready':
      return `pair ready: ${e.url}, node ${e.primary} primary`
    case 'trial-start':
      return `trial ${e.trial}: writing through the service address, node ${e.primary} primary`
    case 'killed':
      return `trial ${e.trial}: kill -9 node ${e.node} (pid ${e.pid}) at ${e.atMs} ms`
    case 'trial': {
      const r = e.result
      return `trial ${r.trial}: host pause ${r.pauseMs} ms, takeover ${r.takeover?.pauseMs ?? '?'} ms, replayed ${r.takeover?.replayed ?? '?'}, ` +
        `${r.writesAcknowledged} acknowledged, lost ${r.lost}, torn ${r.torn}, invented ${r.invented}`
    }
    case 'rejoined':
      return `node ${e.node} restarted: secondary again, writes mirrored`
  }
}
