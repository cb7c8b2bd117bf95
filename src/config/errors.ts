// Typed configuration errors. Every problem found in a file is collected and reported together,
// each one naming the file, the line and the field path, e.g.
//   disk.yaml:7: targets[0].luns[0].size: "1GX" is not a size (use e.g. 512MiB, 1GiB, or bytes)

export interface ConfigProblem {
  /** The config file as the caller named it (or `<default>` for the embedded default). */
  file: string
  /** 1-based line, 0 when unknown (e.g. the file could not be read). */
  line: number
  /** 1-based column, 0 when unknown. */
  column: number
  /** Field path such as `targets[0].luns[1].size`; empty for the document as a whole. */
  field: string
  message: string
}

/** One line per problem: `file:line: field: message` (parts that are unknown are left out). */
export function formatProblem(p: ConfigProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}` : p.file
  return p.field ? `${where}: ${p.field}: ${p.message}` : `${where}: ${p.message}`
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID' as const
  /** All problems, in file order. Never empty. */
  readonly problems: readonly ConfigProblem[]
  // The first problem, spread out for callers that only show one.
  readonly file: string
  readonly line: number
  readonly column: number
  readonly field: string
  /** The first problem's own message, without file/line/field. */
  readonly detail: string

  constructor(problems: readonly ConfigProblem[]) {
    if (problems.length === 0) throw new TypeError('ConfigError needs at least one problem')
    const first = problems[0]!
    const message =
      problems.length === 1
        ? formatProblem(first)
        : `${problems.length} problems in ${first.file}:\n` + problems.map((p) => `  ${formatProblem(p)}`).join('\n')
    super(message)
    this.name = 'ConfigError'
    this.problems = problems
    this.file = first.file
    this.line = first.line
    this.column = first.column
    this.field = first.field
    this.detail = first.message
  }
}

export function isConfigError(e: unknown): e is ConfigError {
  return e instanceof ConfigError
}
