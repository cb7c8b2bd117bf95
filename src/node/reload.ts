// Reloading a running node's config (`iscsi-ha node reload`, POST /v1/reload, SIGHUP).
//
// The file the node was started with is read again with the same loader as at start, so a
// mistake is reported as file:line: field and nothing at all is applied. The new config is then
// compared with what runs. One kind of difference is applied live: a LUN whose `size:` grew is
// grown on storage and the logical unit serves the new capacity, reporting CAPACITY DATA HAS
// CHANGED (SPC-4 §5.12, SBC-3 §4.9) to every I_T nexus. Every other difference (targets or LUNs
// added or removed, a path, block size, portal, tuning…) is listed per field as needing a
// restart; a shrink is refused, as `node start` refuses it.
//
// planReload() is pure (configs in, a plan out); applyReload() performs the grows through the
// host; Reloader ties both to a file and runs one reload at a time.

import { readFile } from 'node:fs/promises'
import {
  formatSize,
  loadConfig,
  parseConfigDetailed,
  pickNode,
  type ClusterConfig,
  type LunConfig,
  type TargetConfig,
} from '../config/index.js'
import { ReloadError, type ReloadChange, type ReloadReport, type ReloadValue, type UnchangedLun } from '../admin/reload-report.js'

export { ReloadError }

/** A LUN as it runs now. */
export interface LiveLun {
  target: string
  lun: number
  /** Bytes served now (the backend's size, which grows with reloads). */
  sizeBytes: number
}

/** What a reload needs from the node it runs in. */
export interface ReloadHost {
  nodeName: string
  /** The config the node was started with (its `source` is the file reloaded). */
  running: ClusterConfig
  luns(): LiveLun[]
  /**
   * Grow one LUN's storage to `sizeBytes` and serve the new capacity. Resolves with the number
   * of I_T nexuses the unit attention was queued for (and a note for the report, if any);
   * throws with a reason to refuse.
   */
  grow(target: string, lun: number, sizeBytes: number): Promise<{ nexuses: number; note?: string }>
}

export interface GrowStep {
  target: string
  lun: number
  sizeBytes: number
  change: ReloadChange
}

/** What a new config asks of a running node. */
export interface ReloadPlan {
  grows: GrowStep[]
  needsRestart: ReloadChange[]
  refused: ReloadChange[]
  unchanged: UnchangedLun[]
}

/** A loaded config and the YAML field of each LUN (`targets[0].luns[1]`), keyed `iqn/lun`. */
export interface LoadedConfig {
  config: ClusterConfig
  lunFields: ReadonlyMap<string, string>
}

const lunKey = (target: string, lun: number): string => `${target}/${lun}`
const SECRET = '(changed)'

/** YAML key of a config field (camelCase in the code, snake_case in the file). */
const KEY_EXCEPTIONS: Record<string, string> = {
  sizeBytes: 'size',
  maxOutstandingR2T: 'max_outstanding_r2t',
  initialR2T: 'initial_r2t',
}

export function yamlKey(name: string): string {
  return KEY_EXCEPTIONS[name] ?? name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
}

function show(v: unknown): ReloadValue {
  if (v === undefined || v === null) return null
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v
  if (Array.isArray(v)) return v.map((x) => String(x))
  if (typeof v === 'object' && 'text' in v && typeof v.text === 'string') return v.text // a parsed address
  return JSON.stringify(v)
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(show(a)) === JSON.stringify(show(b))
}

function text(v: ReloadValue): string {
  if (v === null) return '(none)'
  if (Array.isArray(v)) return `[${v.join(', ')}]`
  return String(v)
}

interface Where {
  target?: string
  lun?: number
}

function change(field: string, from: ReloadValue, to: ReloadValue, outcome: ReloadChange['outcome'], detail: string, where: Where = {}): ReloadChange {
  return {
    field,
    ...(where.target !== undefined ? { target: where.target } : {}),
    ...(where.lun !== undefined ? { lun: where.lun } : {}),
    from, to, outcome, detail,
  }
}

/** The same change, said to belong to a target (and LUN). */
function at(c: ReloadChange, where: Where): ReloadChange {
  return change(c.field, c.from, c.to, c.outcome, c.detail, where)
}

function restart(field: string, from: ReloadValue, to: ReloadValue, detail?: string, where?: Where): ReloadChange {
  return change(field, from, to, 'restart', detail ?? `${text(from)} → ${text(to)}: takes effect at the next node start`, where)
}

/** Every field of two flat sections that differs, as restart changes. */
function diffSection<T extends object>(
  out: ReloadChange[],
  base: string,
  from: T | undefined,
  to: T | undefined,
  opts: { secret?: readonly string[]; skip?: readonly string[] } = {},
): void {
  if (from === undefined && to === undefined) return
  if (from === undefined || to === undefined) {
    out.push(restart(base, from === undefined ? null : 'set', to === undefined ? null : 'set', `${from === undefined ? 'added' : 'removed'}: takes effect at the next node start`))
    return
  }
  const a = from as Record<string, unknown>
  const b = to as Record<string, unknown>
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])]
  for (const k of keys) {
    if (opts.skip?.includes(k) || same(a[k], b[k])) continue
    const field = `${base}.${yamlKey(k)}`
    if (opts.secret?.includes(k)) out.push(restart(field, a[k] === undefined ? null : SECRET, b[k] === undefined ? null : SECRET, 'changed: takes effect at the next node start'))
    else out.push(restart(field, show(a[k]), show(b[k])))
  }
}

/**
 * Compare the running config (and the LUN sizes served now) with a newly loaded one. Pure: the
 * plan says what to grow and reports everything else.
 */
export function planReload(running: ClusterConfig, next: ClusterConfig, live: readonly LiveLun[], lunFields: ReadonlyMap<string, string> = new Map()): ReloadPlan {
  const plan: ReloadPlan = { grows: [], needsRestart: [], refused: [], unchanged: [] }
  const liveSize = new Map(live.map((l) => [lunKey(l.target, l.lun), l.sizeBytes]))

  const before = new Map(running.targets.map((t, i) => [t.iqn, { t, i }]))
  const after = new Map(next.targets.map((t, i) => [t.iqn, { t, i }]))
  for (const [iqn, { i }] of before) {
    if (!after.has(iqn)) plan.needsRestart.push(restart(`targets[${i}]`, iqn, null, `target ${iqn} is no longer in the file: it is served until the next node start`, { target: iqn }))
  }
  for (const [iqn, { t, i }] of after) {
    const old = before.get(iqn)
    if (!old) {
      plan.needsRestart.push(restart(`targets[${i}]`, null, iqn, `new target ${iqn}: served from the next node start`, { target: iqn }))
      continue
    }
    diffTarget(plan, old.t, t, `targets[${i}]`, liveSize, lunFields)
  }

  const nodeNames = [...new Set([...Object.keys(running.nodes), ...Object.keys(next.nodes)])]
  for (const name of nodeNames) {
    const a = running.nodes[name]
    const b = next.nodes[name]
    if (a && b) diffSection(plan.needsRestart, `nodes.${name}`, a, b, { skip: ['name'] })
    else plan.needsRestart.push(restart(`nodes.${name}`, a ? name : null, b ? name : null, `node ${name} ${a ? 'removed' : 'added'}: takes effect at the next node start`))
  }
  diffSection(plan.needsRestart, 'service', running.service, next.service)
  if (running.peerSecret !== next.peerSecret) {
    plan.needsRestart.push(restart('peer_secret', running.peerSecret === undefined ? null : SECRET, next.peerSecret === undefined ? null : SECRET, 'changed: takes effect at the next node start'))
  }
  diffSection(plan.needsRestart, 'iscsi', running.iscsi, next.iscsi)
  diffSection(plan.needsRestart, 'ha', running.ha, next.ha)
  diffSection(plan.needsRestart, 'journal', running.journal, next.journal)
  return plan
}

function diffTarget(plan: ReloadPlan, a: TargetConfig, b: TargetConfig, field: string, liveSize: ReadonlyMap<string, number>, lunFields: ReadonlyMap<string, string>): void {
  const own: ReloadChange[] = []
  for (const k of ['alias', 'tpgt'] as const) {
    if (!same(a[k], b[k])) own.push(restart(`${field}.${k}`, show(a[k]), show(b[k])))
  }
  diffSection(own, `${field}.chap`, a.chap, b.chap, { secret: ['secret', 'mutualSecret'] })
  if (!same(a.initiators, b.initiators)) own.push(restart(`${field}.initiators`, show(a.initiators), show(b.initiators)))
  plan.needsRestart.push(...own.map((c) => at(c, { target: b.iqn })))

  const lunsBefore = new Map(a.luns.map((l, i) => [l.lun, { l, i }]))
  const lunsAfter = new Map(b.luns.map((l, i) => [l.lun, { l, i }]))
  for (const [n, { i }] of lunsBefore) {
    if (!lunsAfter.has(n)) {
      plan.needsRestart.push(restart(`${field}.luns[${i}]`, n, null, `LUN ${n} is no longer in the file: it is served until the next node start`, { target: b.iqn, lun: n }))
    }
  }
  for (const [n, { l, i }] of lunsAfter) {
    const lf = lunFields.get(lunKey(b.iqn, n)) ?? `${field}.luns[${i}]`
    const old = lunsBefore.get(n)
    if (old) diffLun(plan, old.l, l, lf, b.iqn, liveSize.get(lunKey(b.iqn, n)))
    else plan.needsRestart.push(restart(lf, null, n, `new LUN ${n} (${l.path}): served from the next node start`, { target: b.iqn, lun: n }))
  }
}

function diffLun(plan: ReloadPlan, a: LunConfig, b: LunConfig, field: string, iqn: string, served: number | undefined): void {
  const where = { target: iqn, lun: b.lun }
  const restarts: ReloadChange[] = []
  diffSection(restarts, field, a, b, { skip: ['sizeBytes', 'lun'] })
  let touched = false

  const sizeField = `${field}.size`
  const current = served ?? a.sizeBytes
  const sized = (outcome: ReloadChange['outcome'], detail: string): ReloadChange => change(sizeField, current ?? null, b.sizeBytes ?? null, outcome, detail, where)
  // Another file or device, another block size, or a LUN that becomes writable: its size is
  // settled when it is opened at the next start, not here.
  const reopened = a.path !== b.path || a.blockSize !== b.blockSize || (a.readOnly && !b.readOnly)
  if (b.sizeBytes === undefined || current === undefined || b.sizeBytes === current) {
    if (reopened && !same(a.sizeBytes, b.sizeBytes)) restarts.push(restart(sizeField, show(a.sizeBytes), show(b.sizeBytes)))
  } else if (reopened) {
    restarts.push(sized('restart', `${formatSize(current)} → ${formatSize(b.sizeBytes)}: applies to the LUN reopened at the next node start`))
  } else if (b.sizeBytes < current) {
    touched = true
    plan.refused.push(sized('refused', `${formatSize(b.sizeBytes)} is smaller than the ${formatSize(current)} served now: shrinking a LUN is refused (the data past the new end would vanish); nothing was changed`))
  } else if (b.readOnly) {
    touched = true
    plan.refused.push(sized('refused', `${formatSize(current)} → ${formatSize(b.sizeBytes)}: the LUN is read-only, so its storage is not grown`))
  } else {
    touched = true
    plan.grows.push({ target: iqn, lun: b.lun, sizeBytes: b.sizeBytes, change: sized('applied', `${formatSize(current)} → ${formatSize(b.sizeBytes)}`) })
  }
  plan.needsRestart.push(...restarts.map((c) => at(c, where)))
  if (!touched && restarts.length === 0) plan.unchanged.push({ field, target: iqn, lun: b.lun, sizeBytes: current ?? 0 })
}

/** Perform the grows of a plan, one LUN after the other; a failed one is reported as refused. */
export async function applyReload(
  plan: ReloadPlan,
  grow: ReloadHost['grow'],
  meta: { node: string; config: string },
): Promise<ReloadReport> {
  const applied: ReloadChange[] = []
  const refused = [...plan.refused]
  for (const g of plan.grows) {
    try {
      const { nexuses, note } = await grow(g.target, g.lun, g.sizeBytes)
      const who = nexuses === 1 ? '1 I_T nexus' : `${nexuses} I_T nexuses`
      applied.push({ ...g.change, detail: `${g.change.detail}: grown; CAPACITY DATA HAS CHANGED queued for ${who}${note ? `; ${note}` : ''}` })
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err)
      refused.push({ ...g.change, outcome: 'refused', detail: `${g.change.detail}: not grown: ${why}` })
    }
  }
  return {
    node: meta.node,
    config: meta.config,
    complete: plan.needsRestart.length === 0 && refused.length === 0,
    applied,
    needsRestart: plan.needsRestart,
    refused,
    unchanged: plan.unchanged,
  }
}

/**
 * Load `file` as `node start` does (ConfigError with file:line: field on any mistake), plus the
 * YAML field of every LUN for the report (a second read; positions only, never the values).
 */
export async function loadForReload(file: string): Promise<LoadedConfig> {
  const config = await loadConfig(file)
  const lunFields = new Map<string, string>()
  try {
    const { config: again, luns } = parseConfigDetailed(await readFile(file, 'utf8'), file)
    for (const t of again.targets) {
      for (const l of t.luns) {
        const src = luns.get(l)
        if (src) lunFields.set(lunKey(t.iqn, l.lun), src.field)
      }
    }
  } catch {
    // The file changed between the two reads: the report names LUNs by their sorted index.
  }
  return { config, lunFields }
}

/** Reloads of one node, one at a time (an admin request and a SIGHUP may arrive together). */
export class Reloader {
  private chain: Promise<unknown> = Promise.resolve()

  constructor(
    private readonly host: ReloadHost,
    private readonly load: (file: string) => Promise<LoadedConfig> = loadForReload,
  ) {}

  /** Throws ConfigError (nothing applied) or ReloadError; otherwise resolves with the report. */
  reload(): Promise<ReloadReport> {
    const run = async (): Promise<ReloadReport> => {
      const source = this.host.running.source
      if (source === undefined) {
        throw new ReloadError('NO_CONFIG_FILE', 'this node was started without --config (the embedded default): there is no file to reload')
      }
      const { config, lunFields } = await this.load(source)
      // A file without this node would not start it: the whole file is refused.
      pickNode(config, this.host.nodeName)
      const plan = planReload(this.host.running, config, this.host.luns(), lunFields)
      return applyReload(plan, (t, l, s) => this.host.grow(t, l, s), { node: this.host.nodeName, config: source })
    }
    const p = this.chain.then(run)
    this.chain = p.catch(() => undefined)
    return p
  }
}
