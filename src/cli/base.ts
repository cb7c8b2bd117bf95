// Base for every command: --json everywhere, errors split by who must act.
import { Command, Errors, type Interfaces } from '@oclif/core'

/** Exit codes shared by the toolkit (status commands add their own, documented per command). */
export const EXIT = {
  ok: 0,
  /** The user must act: bad flag, bad config. */
  usage: 2,
  /** Something outside failed: storage, a port in use, a subprocess. */
  environment: 3,
} as const

export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true

  /**
   * Under --json a script reads stdout and the exit code: the error goes out as JSON and the
   * documented exit code is kept (oclif alone would exit 1).
   */
  protected override async catch(err: Interfaces.CommandError): Promise<unknown> {
    if (err instanceof Errors.ExitError) {
      // this.exit(n): not an error, whatever the output mode.
      process.exitCode = err.oclif.exit
      return undefined
    }
    if (!this.jsonEnabled()) return super.catch(err)
    const exit = (err as { oclif?: { exit?: number } }).oclif?.exit ?? 1
    this.logJson({ error: { message: err.message, exit, ...(codeOf(err) ? { code: codeOf(err) } : {}) } })
    process.exitCode = exit
    return undefined
  }

  /** A failure the user can fix: a clear message naming the field, and exit code 2. */
  protected userError(message: string): never {
    this.error(message, { exit: EXIT.usage })
  }

  protected environmentError(message: string): never {
    this.error(message, { exit: EXIT.environment })
  }
}

function codeOf(err: Error): string | undefined {
  const code = (err as Error & { code?: unknown }).code
  return typeof code === 'string' ? code : undefined
}
