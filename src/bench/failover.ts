// `iscsi-ha bench failover`: a loopback pair, a host writing through the service address with
// the project's verifying initiator, and kill -9 of the primary at a random instant. Each trial
// reports the pause the host saw and the writes it lost (acknowledged, then not read back:
// must be none). Between trials the killed node is started again and rejoins as secondary, so
// the next trial kills the other one.
import { VerifyingHost, type VerifyReport } from '../initiator/index.js'
import type { TakeoverRecord } from '../ha/status.js'
import { median } from './run.js'
import { startPair, type BenchPair, type PairNodeName } from './pair.js'

export interface FailoverOptions {
  trials: number
  /** How long the host issues writes in each trial, ms (in-flight writes then finish). */
  durationMs: number
  queueDepth: number
  /** Units (one write each, unitBlocks × 512 bytes) the host keeps versions of. */
  units: number
  unitBlocks: number
  /** ISCSI_HA_FAULT_STORAGE_DELAY_MS for both nodes: slow storage, so the journal replay is exercised. */
  storageDelayMs: number
  serviceHost: string
  signal?: AbortSignal
  onEvent?: (e: FailoverEvent) => void
  /** Random source in [0, 1) for the kill instant (tests pass a fixed one). */
  random?: () => number
}

export interface TrialResult {
  trial: number
  killed: PairNodeName
  survivor: PairNodeName
  /** When the primary was killed, ms after the host started writing. */
  killAtMs: number
  /** Longest time the host saw no write complete while writes were outstanding. */
  pauseMs: number
  /** What the survivor recorded: from losing the primary to serving (and copies replayed). */
  takeover?: Pick<TakeoverRecord, 'kind' | 'pauseMs' | 'replayed' | 'replayedBytes' | 'epoch'>
  writesAcknowledged: number
  writesResent: number
  reconnects: number
  lost: number
  torn: number
  invented: number
  /** A few of the lost units, for the report. */
  lostUnits: VerifyReport['lost']
}

export interface FailoverReport {
  settings: Omit<FailoverOptions, 'signal' | 'onEvent' | 'random'>
  trials: TrialResult[]
  summary: { medianPauseMs: number; maxPauseMs: number; lost: number; torn: number; invented: number; ok: boolean }
}

export type FailoverEvent =
  | { type: 'pair-ready'; url: string; primary: PairNodeName }
  | { type: 'trial-start'; trial: number; primary: PairNodeName }
  | { type: 'killed'; trial: number; node: PairNodeName; atMs: number; pid: number }
  | { type: 'trial'; result: TrialResult }
  | { type: 'rejoined'; node: PairNodeName }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Blocks of LUN the trials use: each trial writes its own region, so versions never mix. */
export function lunMiBFor(o: Pick<FailoverOptions, 'trials' | 'units' | 'unitBlocks'>): number {
  const perTrial = o.units * o.unitBlocks * 512
  return Math.max(64, Math.ceil((perTrial * o.trials) / (1024 * 1024)) + 1)
}

async function trial(pair: BenchPair, n: number, primary: PairNodeName, o: FailoverOptions): Promise<TrialResult> {
  const survivor: PairNodeName = primary === 'a' ? 'b' : 'a'
  const host = new VerifyingHost({
    connect: {
      host: pair.service.host, port: pair.service.port, targetName: pair.iqn,
      initiatorName: 'iqn.2026-11.io.iscsi-ha:bench-failover',
    },
    units: o.units, unitBlocks: o.unitBlocks, firstLba: (n - 1) * o.units * o.unitBlocks,
    queueDepth: o.queueDepth, durationMs: o.durationMs, commandTimeoutMs: 3000, reconnectTimeoutMs: 30_000,
    verifyOnReconnect: true,
  })
  const started = Date.now()
  const running = host.run()
  // A random instant in the middle of the writes: after they are flowing, early enough that
  // writes are still being issued when the survivor serves.
  const killAtMs = Math.round(o.durationMs * (0.25 + 0.35 * (o.random ?? Math.random)()))
  await Promise.race([sleep(killAtMs - (Date.now() - started)), running.then(() => undefined)])
  const victim = pair.nodes[primary]
  const pid = victim.process!.pid
  const at = Date.now() - started
  await victim.kill('SIGKILL')
  o.onEvent?.({ type: 'killed', trial: n, node: primary, atMs: at, pid })
  await pair.waitFor((a, b) => {
    const s = survivor === 'a' ? a : b
    return s?.role === 'primary' && s.serving
  }, 15_000, `node ${survivor} serving`)
  const report = await running
  const takeover = (await pair.nodes[survivor].status()).lastTakeover
  return {
    trial: n, killed: primary, survivor, killAtMs: at, pauseMs: report.longestPauseMs,
    ...(takeover ? { takeover: { kind: takeover.kind, pauseMs: takeover.pauseMs, replayed: takeover.replayed, replayedBytes: takeover.replayedBytes, epoch: takeover.epoch } } : {}),
    writesAcknowledged: report.writesAcknowledged, writesResent: report.writesResent, reconnects: report.reconnects,
    lost: report.lost.length, torn: report.torn.length, invented: report.invented.length, lostUnits: report.lost.slice(0, 5),
  }
}

export async function runFailover(o: FailoverOptions): Promise<FailoverReport> {
  const env: Record<string, string> = o.storageDelayMs > 0 ? { ISCSI_HA_FAULT_STORAGE_DELAY_MS: String(o.storageDelayMs) } : {}
  const pair = await startPair({ serviceHost: o.serviceHost, sizeMiB: lunMiBFor(o), env })
  const results: TrialResult[] = []
  try {
    let roles = await pair.waitMirrored()
    o.onEvent?.({ type: 'pair-ready', url: pair.url, primary: roles.primary })
    for (let n = 1; n <= o.trials; n++) {
      if (o.signal?.aborted) throw new Error('interrupted')
      o.onEvent?.({ type: 'trial-start', trial: n, primary: roles.primary })
      const r = await trial(pair, n, roles.primary, o)
      results.push(r)
      o.onEvent?.({ type: 'trial', result: r })
      if (n < o.trials) {
        await pair.nodes[r.killed].start()
        roles = await pair.waitMirrored(20_000)
        o.onEvent?.({ type: 'rejoined', node: r.killed })
      }
    }
  } finally {
    await pair.cleanup()
  }
  const pauses = results.map((r) => r.pauseMs)
  const lost = results.reduce((s, r) => s + r.lost, 0)
  const torn = results.reduce((s, r) => s + r.torn, 0)
  const invented = results.reduce((s, r) => s + r.invented, 0)
  const { signal: _s, onEvent: _e, random: _r, ...settings } = o
  return {
    settings, trials: results,
    summary: { medianPauseMs: median(pauses), maxPauseMs: Math.max(0, ...pauses), lost, torn, invented, ok: lost + torn + invented === 0 },
  }
}
