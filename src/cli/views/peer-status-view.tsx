// Live peer status (`peer status --watch`): renders what a poller stores; no fetching here.
import { Box, Text, render } from 'ink'
import { useEffect, useState } from 'react'
import { healthOf, type PeerStatusReport } from '../../ha/status.js'
import { peerStatusLines } from '../peer-format.js'

export interface WatchState {
  report?: PeerStatusReport
  error?: string
  at: Date
}

/** Holds the latest poll result and tells subscribers; the view only reads it. */
export class WatchStore {
  private state: WatchState = { at: new Date() }
  private readonly listeners = new Set<(s: WatchState) => void>()

  get current(): WatchState {
    return this.state
  }

  set(next: WatchState): void {
    this.state = next
    for (const l of this.listeners) l(next)
  }

  subscribe(l: (s: WatchState) => void): () => void {
    this.listeners.add(l)
    return () => this.listeners.delete(l)
  }
}

const COLOR = { healthy: 'green', degraded: 'yellow', critical: 'red' } as const

export function PeerStatusView({ store }: { store: WatchStore }) {
  const [state, setState] = useState(store.current)
  useEffect(() => store.subscribe(setState), [store])
  if (!state.report) {
    return <Text color={state.error ? 'red' : undefined}>{state.error ? `unreachable: ${state.error}` : 'connecting…'}</Text>
  }
  const [first, ...rest] = peerStatusLines(state.report)
  const health = healthOf(state.report).health
  return (
    <Box flexDirection="column">
      <Text color={COLOR[health]} bold>{first}</Text>
      {rest.map((line, i) => <Text key={i}>{line}</Text>)}
      <Text dimColor>{state.error ? `last poll failed: ${state.error} · ` : ''}updated {state.at.toLocaleTimeString()} · Ctrl-C to quit</Text>
    </Box>
  )
}

/** Poll every interval until Ctrl-C; resolves when the view exits. */
export async function watchPeerStatus(fetch: () => Promise<PeerStatusReport>, intervalMs: number): Promise<void> {
  const store = new WatchStore()
  const app = render(<PeerStatusView store={store} />)
  let stopped = false
  const poll = async (): Promise<void> => {
    while (!stopped) {
      try {
        store.set({ report: await fetch(), at: new Date() })
      } catch (err) {
        store.set({ ...store.current, error: err instanceof Error ? err.message : String(err), at: new Date() })
      }
      await new Promise((r) => setTimeout(r, intervalMs))
    }
  }
  void poll()
  await app.waitUntilExit()
  stopped = true
}
