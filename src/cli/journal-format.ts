// `journal inspect` rows: the committed-not-completed copies in blocks (LBA, count), and their
// table. Pure: the same words whether the copies came from a running node or a directory.
import type { ClusterConfig } from '../config/index.js'
import type { JournalEntry } from '../ha/types.js'
import { entryLength } from '../journal/entry.js'
import { formatBytes, renderTable } from './table.js'

/** One copy as GET /v1/journal lists it. */
export interface JournalApiEntry {
  seq: number
  epoch: number
  /**
   * 'write' (data to write), or 'discard' (UNMAP: the range reads as zeros; no data). Absent in
   * answers of nodes from before discards were journaled: a write.
   */
  kind?: 'write' | 'discard'
  target: string
  lun: number
  offset: number
  /** Bytes of the LUN the copy covers: a write's data, a discard's range. */
  bytes: number
  ageMs: number
  initiator: string
  itt: number
}

export interface JournalRow extends JournalApiEntry {
  /** offset / blockSize (a copy always starts on a block boundary; a remainder is rounded down). */
  lba: number
  blocks: number
  blockSize: number
}

export interface JournalSummary {
  entries: number
  bytes: number
  oldestSeq?: number
  oldestAgeMs?: number
}

export type JournalSource =
  | { kind: 'node'; admin: string; node: string; role: string }
  | { kind: 'dir'; dir: string }

export interface JournalReport {
  source: JournalSource
  stats: JournalSummary
  /** Where block sizes came from: the config's LUNs, or 512 for all. */
  blockSizes: 'config' | 'default-512'
  entries: JournalRow[]
}

export type BlockSizeOf = (target: string, lun: number) => number

/** Block size per LUN from the config; 512 for a LUN it does not list (or without a config). */
export function blockSizeLookup(config: ClusterConfig | undefined): BlockSizeOf {
  return (target, lun) => config?.targets.find((t) => t.iqn === target.toLowerCase())?.luns.find((l) => l.lun === lun)?.blockSize ?? 512
}

export function toRow(e: JournalApiEntry, blockSizeOf: BlockSizeOf): JournalRow {
  const blockSize = blockSizeOf(e.target, e.lun)
  return { ...e, blockSize, lba: Math.floor(e.offset / blockSize), blocks: Math.ceil(e.bytes / blockSize) }
}

/** A persisted copy as the API would list it (ages against `now`). */
export function apiEntryOf(e: JournalEntry, now: number): JournalApiEntry {
  return {
    seq: e.seq, epoch: e.epoch, kind: e.kind ?? 'write', target: e.key.target, lun: e.key.lun, offset: e.offset, bytes: entryLength(e),
    ageMs: Math.max(0, Math.round(now - e.receivedAtMs)), initiator: e.initiator, itt: e.itt,
  }
}

/** Checks the shape of a GET /v1/journal body; returns what is wrong, or undefined. */
export function journalBodyProblem(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return 'not an object'
  const b = body as Record<string, unknown>
  if (typeof b.node !== 'string' || typeof b.role !== 'string') return 'no node or role'
  if (typeof b.stats !== 'object' || b.stats === null) return 'no stats'
  if (!Array.isArray(b.entries)) return 'no entries list'
  for (const e of b.entries as unknown[]) {
    const x = e as Record<string, unknown>
    for (const k of ['seq', 'epoch', 'lun', 'offset', 'bytes', 'ageMs', 'itt']) if (typeof x?.[k] !== 'number') return `an entry without a numeric ${k}`
    if (typeof x.target !== 'string' || typeof x.initiator !== 'string') return 'an entry without target or initiator'
    if (x.kind !== undefined && x.kind !== 'write' && x.kind !== 'discard') return 'an entry of an unknown kind'
  }
  return undefined
}

export function formatAge(ms: number | undefined): string {
  if (ms === undefined) return '-'
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`
  if (ms < 172_800_000) return `${(ms / 3_600_000).toFixed(1)} h`
  return `${Math.round(ms / 86_400_000)} d`
}

export function hexItt(itt: number): string {
  return `0x${(itt >>> 0).toString(16).padStart(8, '0')}`
}

/** Heading, then the table (or a line saying there is nothing). */
export function journalLines(r: JournalReport): string[] {
  const where = r.source.kind === 'node' ? `node ${r.source.node} (${r.source.role}) at ${r.source.admin}` : `journal ${r.source.dir}`
  const s = r.stats
  const oldest = s.oldestSeq !== undefined ? `, oldest #${s.oldestSeq} ${formatAge(s.oldestAgeMs)} old` : ''
  const lines = [`${where}: ${s.entries} committed-not-completed ${s.entries === 1 ? 'copy' : 'copies'}, ${formatBytes(s.bytes)}${oldest}`]
  if (r.entries.length === 0) return lines
  const targets = new Set(r.entries.map((e) => e.target))
  const lun = (e: JournalRow): string => (targets.size > 1 ? `${e.target}/${e.lun}` : String(e.lun))
  if (targets.size === 1) lines.push(`target ${[...targets][0]}`)
  // The KIND column appears only when there is a discard to tell apart from the writes.
  const kinds = r.entries.some((e) => e.kind === 'discard')
  const rows = r.entries.map((e) => [
    e.seq, e.epoch, ...(kinds ? [e.kind ?? 'write'] : []), lun(e), e.lba, e.blocks, formatAge(e.ageMs), e.initiator || '-', hexItt(e.itt),
  ])
  lines.push('', renderTable(['SEQ', 'EPOCH', ...(kinds ? ['KIND'] : []), 'LUN', 'LBA', 'BLOCKS', 'AGE', 'INITIATOR', 'ITT'], rows))
  if (r.entries.length < s.entries) lines.push(`(${r.entries.length} of ${s.entries} shown; --limit to see more)`)
  if (r.blockSizes === 'default-512') lines.push('(LBA and BLOCKS in 512-byte blocks: give --config for the LUNs\' block sizes)')
  return lines
}
