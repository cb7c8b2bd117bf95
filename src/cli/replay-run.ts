// `iscsi-ha replay`: complete committed-not-completed copies now — on a running secondary
// (POST /v1/replay), or offline from a persisted journal directory onto the config's LUN paths.
import { existsSync } from 'node:fs'
import { open, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { adminRequest, AdminProtocolError } from '../admin/client.js'
import type { ClusterConfig } from '../config/index.js'
import { DrainMarker } from '../ha/drain-marker.js'
import { FileLeaseStore, leasePathFor, type LeaseStore } from '../ha/lease-store.js'
import type { LunKey } from '../ha/types.js'
import { Journal } from '../journal/index.js'
import { openBackend, type FileBackend } from '../storage/index.js'
import { refused } from './failure.js'
import { journalOpenFailure } from './journal-source.js'
import { formatBytes } from './table.js'
import { readPeer } from './takeover-run.js'

export interface ReplayResult {
  mode: 'node' | 'offline'
  /** node: the admin address; offline: the journal directory. */
  from: string
  replayed: number
  /** Data written by the replayed writes. */
  bytes: number
  /** Ranges deallocated by the replayed discards (UNMAP): holes punched, not data written. */
  discardedBytes: number
  /** Offline: copies dropped unwritten because the primary had drained their generation. */
  dropped?: number
  /** Offline: the LUN files written. */
  paths?: string[]
}

/** On a running secondary. Refused while its partner serves as primary (see below). */
export async function replayOnNode(admin: string, timeoutMs: number): Promise<ReplayResult> {
  const s = await readPeer(admin, timeoutMs)
  if (s.role === 'primary') throw refused(`${s.node} is the primary: it completes its own writes; replay runs on a secondary`, 'REPLAY_REFUSED')
  // A live primary completes these copies itself, and may write newer data over the same blocks
  // meanwhile: replaying an older copy after that would bring back stale data.
  if (s.peer.link === 'up' && s.peer.role === 'primary') {
    throw refused(`${s.peer.name} is serving as primary and completes these copies itself: replaying them now could overwrite newer writes. Replay is for a secondary whose primary is gone.`, 'REPLAY_REFUSED')
  }
  try {
    const reply = await adminRequest(admin, '/v1/replay', { method: 'POST', timeoutMs: Math.max(timeoutMs, 60_000) })
    const r = JSON.parse(reply.text) as { replayed: number; bytes: number; discardedBytes?: number }
    return { mode: 'node', from: admin, replayed: r.replayed, bytes: r.bytes, discardedBytes: r.discardedBytes ?? 0 }
  } catch (err) {
    if (err instanceof AdminProtocolError && err.status === 409) throw refused(err.message, err.serverCode ?? 'REPLAY_REFUSED')
    throw err
  }
}

async function markDrained(config: ClusterConfig, generation: number): Promise<void> {
  const store = await FileLeaseStore.open(`${config.ha.leasePath ?? leasePathFor(config.targets[0]!.luns[0]!.path)}.drained`)
  try {
    await new DrainMarker(store).write(generation)
  } finally {
    await store.close()
  }
}

/** The last drained generation from the drain marker beside the lease (read-only); 0: never drained. */
async function drainedGeneration(config: ClusterConfig): Promise<number> {
  const path = `${config.ha.leasePath ?? leasePathFor(config.targets[0]!.luns[0]!.path)}.drained`
  if (!existsSync(path)) return 0
  const fh = await open(path, 'r')
  const store: LeaseStore = {
    read: async (offset, length) => {
      const b = Buffer.alloc(length)
      await fh.read(b, 0, length, offset)
      return b
    },
    write: () => Promise.reject(new Error('read-only')),
    sync: async () => undefined,
    close: () => fh.close(),
  }
  try {
    return await new DrainMarker(store).read()
  } finally {
    await store.close()
  }
}

async function journalGeneration(dir: string): Promise<number> {
  try {
    return Number((await readFile(join(dir, 'generation'), 'utf8')).trim()) || 0
  } catch {
    return 0
  }
}

export interface OfflinePlan {
  dir: string
  copies: number
  bytes: number
  /** The primary drained this journal's generation: its copies are on storage already. */
  drained: boolean
  paths: string[]
  /** Ask before calling run(); close() when not running it. */
  risk: string
  run(): Promise<ReplayResult>
  close(): Promise<void>
}

/** Opens the journal for writing (refused while a controller holds it) and its LUNs. */
export async function planOfflineReplay(config: ClusterConfig, dir: string): Promise<OfflinePlan> {
  let journal: Journal
  try {
    journal = await Journal.open(dir, { create: false, maxBytes: Number.MAX_SAFE_INTEGER })
  } catch (err) {
    throw journalOpenFailure(err, dir)
  }
  const backends = new Map<string, FileBackend>()
  const close = async (): Promise<void> => {
    for (const b of backends.values()) await b.close().catch(() => undefined)
    await journal.close()
  }
  try {
    const pending = journal.pending()
    const stats = journal.stats()
    const marker = await drainedGeneration(config)
    const generation = await journalGeneration(dir)
    const drained = pending.length > 0 && marker > 0 && generation <= marker
    const name = (k: LunKey): string => `${k.target}/${k.lun}`
    if (!drained) {
      for (const e of pending) {
        if (backends.has(name(e.key))) continue
        const lun = config.targets.find((t) => t.iqn === e.key.target.toLowerCase())?.luns.find((l) => l.lun === e.key.lun)
        if (!lun) throw refused(`the journal holds copies for ${e.key.target} LUN ${e.key.lun}, which ${config.source ?? 'the config'} does not have: nothing replayed`, 'JOURNAL_NO_BACKEND')
        if (!existsSync(lun.path)) throw refused(`${lun.path} (${e.key.target} LUN ${e.key.lun}) does not exist: nothing replayed`, 'LUN_MISSING')
        backends.set(name(e.key), await openBackend({ path: lun.path, ...(lun.sizeBytes ? { sizeBytes: lun.sizeBytes } : {}) }))
      }
    }
    const paths = [...backends.values()].map((b) => b.path)
    const what = `${stats.entries} committed-not-completed ${stats.entries === 1 ? 'copy' : 'copies'} (${formatBytes(stats.bytes)}) in ${dir}`
    const risk = drained
      ? `${what} belong to generation ${generation}, which the primary drained (marker ${marker}): they are on storage already and newer writes may have replaced them. They will be dropped from the journal, not written.`
      : `${what} will be written onto ${paths.join(', ')} in sequence order, overwriting those blocks. Do this only when no controller serves this storage: a running primary may have written newer data there.`
    return {
      dir, copies: stats.entries, bytes: stats.bytes, drained, paths, risk, close,
      run: async () => {
        try {
          if (drained) {
            journal.clear()
            return { mode: 'offline', from: dir, replayed: 0, bytes: 0, discardedBytes: 0, dropped: stats.entries, paths: [] }
          }
          const r = await journal.applyToBackends((k) => backends.get(name(k)))
          // The round is complete on storage: a controller may now claim the lease without it.
          if (generation > 0) await markDrained(config, generation)
          return { mode: 'offline', from: dir, replayed: r.replayed, bytes: r.bytes, discardedBytes: r.discardedBytes, paths }
        } finally {
          await close()
        }
      },
    }
  } catch (err) {
    await close()
    throw err
  }
}

export function replayLines(r: ReplayResult): string[] {
  const where = r.mode === 'node' ? `on the node at ${r.from}` : `from ${r.from}`
  if (r.dropped) return [`dropped ${r.dropped} copies ${where}: their generation was drained, so they were on storage already`]
  const onto = r.paths && r.paths.length ? ` onto ${r.paths.join(', ')}` : ''
  const discarded = r.discardedBytes > 0 ? `, ${formatBytes(r.discardedBytes)} deallocated` : ''
  return [`replayed ${r.replayed} ${r.replayed === 1 ? 'copy' : 'copies'} (${formatBytes(r.bytes)}${discarded}) ${where}${onto}`]
}
