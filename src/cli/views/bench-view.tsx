// Live progress of `iscsi-ha bench` in a terminal: renders what the runner's events store; the
// table itself is printed after the view is cleared.
import { Box, Text, render } from 'ink'
import { useEffect, useState } from 'react'
import type { BenchEvent, BenchRow } from '../../bench/run.js'
import { rowLine } from '../../bench/table.js'

export interface BenchProgress {
  done: number
  total: number
  current?: { what: string; since: number }
  rows: BenchRow[]
  failures: string[]
}

/** Folds runner events into the progress state and tells subscribers. */
export class BenchStore {
  private state: BenchProgress = { done: 0, total: 0, rows: [], failures: [] }
  private readonly listeners = new Set<(s: BenchProgress) => void>()

  get current(): BenchProgress {
    return this.state
  }

  apply(e: BenchEvent): void {
    const s = this.state
    switch (e.type) {
      case 'probed':
        return
      case 'running':
        this.set({ ...s, total: e.total, current: { what: `${e.workload.title} on ${e.target}${e.phase === 'calibrate' ? ' (calibrating)' : ''}, round ${e.round}`, since: Date.now() } })
        return
      case 'sample':
        this.set({ ...s, done: e.index, total: e.total })
        return
      case 'failed':
        this.set({ ...s, done: e.index, total: e.total, failures: [...s.failures, `${e.workload.title} on ${e.target}: ${e.error}`] })
        return
      case 'row':
        this.set({ ...s, rows: [...s.rows, e.row] })
    }
  }

  private set(next: BenchProgress): void {
    this.state = next
    for (const l of this.listeners) l(next)
  }

  subscribe(l: (s: BenchProgress) => void): () => void {
    this.listeners.add(l)
    return () => this.listeners.delete(l)
  }
}

function bar(done: number, total: number, width = 24): string {
  const filled = total > 0 ? Math.round((done / total) * width) : 0
  return '█'.repeat(filled) + '░'.repeat(width - filled)
}

export function BenchView({ store }: { store: BenchStore }) {
  const [state, setState] = useState(store.current)
  const [, tick] = useState(0)
  useEffect(() => store.subscribe(setState), [store])
  useEffect(() => {
    const t = setInterval(() => tick((n) => n + 1), 250)
    return () => clearInterval(t)
  }, [])
  const recent = state.rows.slice(-6)
  return (
    <Box flexDirection="column">
      {recent.map((r, i) => <Text key={i} color={r.error ? 'red' : undefined}>{rowLine(r)}</Text>)}
      {state.failures.slice(-3).map((f, i) => <Text key={`f${i}`} color="red">{f}</Text>)}
      <Text>
        <Text color="cyan">{bar(state.done, state.total)}</Text> {state.done}/{state.total || '?'}
        {state.current ? ` · ${state.current.what} · ${((Date.now() - state.current.since) / 1000).toFixed(1)} s` : ''}
      </Text>
    </Box>
  )
}

/** Shows progress until the returned stop() is called; stop() clears the view. */
export function showBenchProgress(store: BenchStore): { stop(): void } {
  const app = render(<BenchView store={store} />)
  return {
    stop() {
      app.clear()
      app.unmount()
    },
  }
}
