// An `iscsi-ha node start` child process for the benchmarks: its stderr log lines are kept (the
// last few hundred, for error messages), and it is stopped by its pid, never by name. Children
// still running when this process exits are killed.
import { execa, type ResultPromise } from 'execa'
import { fileURLToPath } from 'node:url'

export const RUN_JS = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

const live = new Set<number>()
let exitHookInstalled = false
/** SIGKILL every controller this process started that still runs (by pid). */
export function killLeftoverControllers(): void {
  for (const pid of live) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
}

export interface SpawnOptions {
  configPath: string
  node: string
  cwd: string
  env?: Record<string, string>
  /** Options for node itself, e.g. --cpu-prof. */
  nodeArgs?: string[]
}

export class ControllerProcess {
  readonly logs: string[] = []
  running = true
  exitCode: number | undefined
  exitSignal: string | undefined
  private readonly child: ResultPromise
  private readonly exited: Promise<void>
  private readonly lineListeners = new Set<(line: string) => void>()

  constructor(readonly name: string, readonly opts: SpawnOptions) {
    if (!exitHookInstalled) {
      process.once('exit', killLeftoverControllers)
      exitHookInstalled = true
    }
    this.child = execa(process.execPath, [...(opts.nodeArgs ?? []), RUN_JS, 'node', 'start', '--config', opts.configPath, '--node', opts.node], {
      cwd: opts.cwd, reject: false, stdin: 'ignore', buffer: false, env: { ...process.env, ...opts.env }, cleanup: true,
    })
    const pid = this.child.pid
    if (pid === undefined) throw new Error(`cannot start node ${name}`)
    live.add(pid)
    let buf = ''
    this.child.stderr!.on('data', (d: Buffer) => {
      buf += d.toString()
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        this.logs.push(line)
        if (this.logs.length > 300) this.logs.splice(0, this.logs.length - 300)
        for (const l of this.lineListeners) l(line)
      }
    })
    this.child.stdout!.resume()
    this.exited = this.child.then((r) => {
      this.running = false
      this.exitCode = r.exitCode
      this.exitSignal = r.signal
      live.delete(pid)
    })
  }

  get pid(): number {
    return this.child.pid!
  }

  /** Resolves at the first log line containing `text`; rejects if the process exits first. */
  waitForLog(text: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer)
        this.lineListeners.delete(onLine)
        if (err) reject(err)
        else resolve()
      }
      const onLine = (line: string): void => {
        if (line.includes(text)) done()
      }
      const timer = setTimeout(() => done(new Error(`node ${this.name} did not log ${text} within ${timeoutMs} ms${this.logTail()}`)), timeoutMs)
      if (this.logs.some((l) => l.includes(text))) return done()
      this.lineListeners.add(onLine)
      void this.exited.then(() => done(new Error(`node ${this.name} exited (${this.exitSignal ?? this.exitCode}) while starting${this.logTail()}`)))
    })
  }

  logTail(lines = 5): string {
    const t = this.logs.slice(-lines)
    return t.length ? `; last log lines:\n  ${t.join('\n  ')}` : ''
  }

  /** Send a signal by pid and wait for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.running) {
      try {
        process.kill(this.pid, signal)
      } catch {
        // exited meanwhile
      }
    }
    await this.exited
  }

  /** SIGTERM (a clean stop: data flushed, a --cpu-prof profile written), SIGKILL after graceMs. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return
    const timer = setTimeout(() => {
      if (this.running) {
        try {
          process.kill(this.pid, 'SIGKILL')
        } catch {
          // gone
        }
      }
    }, graceMs)
    await this.kill('SIGTERM')
    clearTimeout(timer)
  }
}
