// Run a client program with a hard time limit: past it (or on abort) the child is stopped by
// its pid, first politely (SIGINT: iscsi-perf and qemu-img log out on it), then SIGKILL.
import { execa } from 'execa'

export interface BoundedResult {
  stdout: string
  stderr: string
  exitCode: number | undefined
  signal: string | undefined
  /** Stopped by us: the time limit passed or the caller aborted. */
  stopped: 'timeout' | 'aborted' | undefined
  elapsedMs: number
}

export class ClientMissingError extends Error {
  readonly code = 'BENCH_CLIENT_MISSING'
  constructor(readonly program: string) {
    super(`${program} is not installed (Debian/Ubuntu: ${program === 'qemu-img' ? 'qemu-utils and qemu-block-extra' : 'libiscsi-bin'})`)
    this.name = 'ClientMissingError'
  }
}

function signalPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {
    // exited meanwhile
  }
}

export async function runBounded(
  program: string,
  args: string[],
  opts: { timeoutMs: number; signal?: AbortSignal; graceMs?: number },
): Promise<BoundedResult> {
  const started = performance.now()
  const child = execa(program, args, { reject: false, stdin: 'ignore', all: false, stripFinalNewline: false })
  const pid = child.pid
  let stopped: BoundedResult['stopped']
  const stop = (why: 'timeout' | 'aborted'): void => {
    if (pid === undefined || stopped) return
    stopped = why
    signalPid(pid, 'SIGINT')
    setTimeout(() => signalPid(pid, 'SIGKILL'), opts.graceMs ?? 2000).unref()
  }
  const timer = setTimeout(() => stop('timeout'), opts.timeoutMs)
  const onAbort = (): void => stop('aborted')
  opts.signal?.addEventListener('abort', onAbort)
  if (opts.signal?.aborted) onAbort()
  try {
    const r = await child
    if (pid === undefined || (r.failed && r.exitCode === undefined && !r.signal && /ENOENT/.test(String(r.message)))) {
      throw new ClientMissingError(program)
    }
    return {
      stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''),
      exitCode: r.exitCode, signal: r.signal, stopped, elapsedMs: performance.now() - started,
    }
  } finally {
    clearTimeout(timer)
    opts.signal?.removeEventListener('abort', onAbort)
  }
}

/** The last few non-empty lines of a client's output, for an error message. */
export function tail(text: string, lines = 3): string {
  return text.replace(/\r/g, '\n').split('\n').map((l) => l.trim()).filter((l) => l !== '').slice(-lines).join(' | ')
}
