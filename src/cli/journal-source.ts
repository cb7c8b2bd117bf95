// Where `journal inspect` and `replay` find the copies: a running node's admin API, or a
// persisted journal directory (`<journal.dir>/<node name>/journal.log`).
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { adminGetJson, AdminProtocolError } from '../admin/client.js'
import { Journal, JOURNAL_FILE, isJournalError } from '../journal/index.js'
import { refused, CommandFailure } from './failure.js'
import { EXIT } from './base.js'
import { apiEntryOf, journalBodyProblem, toRow, type BlockSizeOf, type JournalApiEntry, type JournalReport, type JournalSummary } from './journal-format.js'

/**
 * The journal directory: DIR itself when it holds a journal; else DIR/<node> (DIR being the
 * config's journal.dir); else the one node directory under DIR that holds a journal.
 */
export function resolveJournalDir(dir: string, node?: string): string {
  const abs = resolve(dir)
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw refused(`${dir}: no such directory`, 'JOURNAL_NOT_FOUND')
  if (existsSync(join(abs, JOURNAL_FILE))) return abs
  if (node !== undefined) {
    if (existsSync(join(abs, node, JOURNAL_FILE))) return join(abs, node)
    throw refused(`${dir}: no journal here nor in ${join(dir, node)} (no ${JOURNAL_FILE})`, 'JOURNAL_NOT_FOUND')
  }
  const found = readdirSync(abs, { withFileTypes: true }).filter((d) => d.isDirectory() && existsSync(join(abs, d.name, JOURNAL_FILE))).map((d) => d.name)
  if (found.length === 1) return join(abs, found[0]!)
  if (found.length === 0) throw refused(`${dir}: no journal here (no ${JOURNAL_FILE}, nor in a node directory under it)`, 'JOURNAL_NOT_FOUND')
  throw refused(`${dir} holds the journals of ${found.join(', ')}: name one with --node, or give its directory`, 'JOURNAL_AMBIGUOUS')
}

/** A JournalError from opening a directory, as the exit code a command documents. */
export function journalOpenFailure(err: unknown, dir: string): unknown {
  if (isJournalError(err, 'JOURNAL_NOT_FOUND')) return refused(err.message, err.code)
  if (isJournalError(err, 'JOURNAL_LOCKED')) {
    return refused(`${err.message}: a controller (or another replay) is running on this journal. Stop it first, or ask the running node instead (iscsi-ha replay --config F --node N).`, err.code)
  }
  if (isJournalError(err)) return new CommandFailure(EXIT.environment, `${dir}: ${err.message}`, err.code)
  return err
}

export async function journalFromNode(admin: string, opts: { limit: number; timeoutMs: number; blockSizeOf: BlockSizeOf; fromConfig: boolean }): Promise<JournalReport> {
  const body = await adminGetJson(admin, '/v1/journal', { timeoutMs: opts.timeoutMs })
  const problem = journalBodyProblem(body)
  if (problem) throw new AdminProtocolError(admin, `GET /v1/journal returned something that is not a journal listing (${problem})`)
  const b = body as { node: string; role: string; stats: JournalSummary; entries: JournalApiEntry[] }
  return {
    source: { kind: 'node', admin, node: b.node, role: b.role },
    stats: summary(b.stats),
    blockSizes: opts.fromConfig ? 'config' : 'default-512',
    entries: b.entries.slice(0, opts.limit).map((e) => toRow(e, opts.blockSizeOf)),
  }
}

export async function journalFromDir(dir: string, opts: { limit: number; blockSizeOf: BlockSizeOf; fromConfig: boolean }): Promise<JournalReport> {
  let journal: Journal
  try {
    journal = await Journal.open(dir, { readOnly: true })
  } catch (err) {
    throw journalOpenFailure(err, dir)
  }
  try {
    const now = Date.now()
    return {
      source: { kind: 'dir', dir },
      stats: summary(journal.stats()),
      blockSizes: opts.fromConfig ? 'config' : 'default-512',
      entries: journal.pending().slice(0, opts.limit).map((e) => toRow(apiEntryOf(e, now), opts.blockSizeOf)),
    }
  } finally {
    await journal.close()
  }
}

function summary(s: JournalSummary): JournalSummary {
  return {
    entries: s.entries, bytes: s.bytes,
    ...(s.oldestSeq !== undefined ? { oldestSeq: s.oldestSeq } : {}),
    ...(s.oldestAgeMs !== undefined ? { oldestAgeMs: Math.round(s.oldestAgeMs) } : {}),
  }
}
