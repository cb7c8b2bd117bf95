// The secondary's confirmations, gathered. Copies arrive in bursts (one read of the peer socket
// carries many of them) and the journal takes them in seq order, so instead of one copy-ack
// frame per copy the secondary sends one per run of consecutive seqs, once the burst is in:
// the same confirmations, a fraction of the frames to encode, send, decode and dispatch.

/** Copies seq … seq+count-1 of `epoch`, confirmed. */
export interface AckRun {
  epoch: number
  seq: number
  count: number
}

/** Largest run one copy-ack frame carries (its count is a u32). */
const MAX_RUN = 0xffff_ffff

export class AckRuns {
  private runs: AckRun[] = []
  private scheduled = false

  /**
   * `send` is called once per run when the gathered confirmations go out; `schedule` decides
   * when: by default after the microtasks already queued (the other copies of the same burst,
   * whose journal adds resolved in the same turn), so no confirmation waits for a timer.
   */
  constructor(
    private readonly send: (run: AckRun) => void,
    private readonly schedule: (flush: () => void) => void = queueMicrotask,
  ) {}

  /** Runs not yet sent (for tests and status). */
  get waiting(): number {
    return this.runs.length
  }

  add(epoch: number, seq: number): void {
    const last = this.runs[this.runs.length - 1]
    if (last !== undefined && last.epoch === epoch && last.seq + last.count === seq && last.count < MAX_RUN) last.count++
    else this.runs.push({ epoch, seq, count: 1 })
    if (!this.scheduled) {
      this.scheduled = true
      this.schedule(() => this.flush())
    }
  }

  /** Send every gathered run now, in the order the copies were confirmed. */
  flush(): void {
    this.scheduled = false
    const runs = this.runs
    this.runs = []
    for (const r of runs) this.send(r)
  }
}
