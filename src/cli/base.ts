// Base for every command: --json everywhere, errors split by who must act.
import { Command } from '@oclif/core'

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

  /** A failure the user can fix: a clear message naming the field, and exit code 2. */
  protected userError(message: string): never {
    this.error(message, { exit: EXIT.usage })
  }

  protected environmentError(message: string): never {
    this.error(message, { exit: EXIT.environment })
  }
}
