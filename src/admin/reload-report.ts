// What a controller answers on POST /v1/reload (and logs on SIGHUP): the differences between
// the config file as it is now and what the node runs, each one applied live, left for a
// restart, or refused. `iscsi-ha node reload` prints it, or passes it through with --json.

/** A config value as shown in the report; secrets are never included (`"(changed)"`). */
export type ReloadValue = string | number | boolean | string[] | null

export type ReloadOutcome = 'applied' | 'restart' | 'refused'

export interface ReloadChange {
  /** The YAML field, e.g. `targets[0].luns[1].size` or `iscsi.queue_depth`. */
  field: string
  /** The target (IQN) and LUN number the field belongs to, when it belongs to one. */
  target?: string
  lun?: number
  /** Value running now / in the file; null when absent on that side. */
  from: ReloadValue
  to: ReloadValue
  outcome: ReloadOutcome
  /** One sentence for a person: what was done, or why not. */
  detail: string
}

export interface UnchangedLun {
  field: string
  target: string
  lun: number
  sizeBytes: number
}

export interface ReloadReport {
  /** The node's name (`nodes.<name>`). */
  node: string
  /** Absolute path of the config file that was read. */
  config: string
  /** True when every difference was applied (or there was none). */
  complete: boolean
  applied: ReloadChange[]
  /** Differences a running node cannot take: they take effect at the next `node start`. */
  needsRestart: ReloadChange[]
  /** Differences that were not applied and would not be by a restart either (or failed). */
  refused: ReloadChange[]
  /** LUNs the file leaves exactly as they run. */
  unchanged: UnchangedLun[]
}

/** A reload that could not start: nothing was read or applied (answered with HTTP 409). */
export class ReloadError extends Error {
  constructor(
    readonly code: 'NO_CONFIG_FILE',
    message: string,
  ) {
    super(message)
    this.name = 'ReloadError'
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function checkChanges(v: unknown, name: string): string | undefined {
  if (!Array.isArray(v)) return `field ${name} is not a list`
  for (const [i, c] of v.entries()) {
    if (!isRecord(c) || typeof c.field !== 'string' || typeof c.detail !== 'string' || typeof c.outcome !== 'string')
      return `${name}[${i}] is not a change`
  }
  return undefined
}

/** A shape check of a decoded report; returns a reason, or undefined when it fits. */
export function checkReloadReport(v: unknown): string | undefined {
  if (!isRecord(v)) return 'not a JSON object'
  if (typeof v.node !== 'string') return 'field node is not a string'
  if (typeof v.config !== 'string') return 'field config is not a string'
  if (typeof v.complete !== 'boolean') return 'field complete is not a boolean'
  for (const k of ['applied', 'needsRestart', 'refused'] as const) {
    const why = checkChanges(v[k], k)
    if (why !== undefined) return why
  }
  if (!Array.isArray(v.unchanged)) return 'field unchanged is not a list'
  return undefined
}
