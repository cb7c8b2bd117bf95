// A command's helpers fail with the exit code the command documents; the command only maps.
import { Errors } from '@oclif/core'
import { AdminProtocolError, AdminUnreachableError } from '../admin/client.js'
import { isConfigError } from '../config/index.js'
import { EXIT } from './base.js'

export class CommandFailure extends Error {
  constructor(
    readonly exit: number,
    message: string,
    readonly code?: string,
  ) {
    super(message)
    this.name = 'CommandFailure'
  }
}

/** A refusal or a mistake the user must fix: exit 2. */
export function refused(message: string, code?: string): CommandFailure {
  return new CommandFailure(EXIT.usage, message, code)
}

/** Exit code and message for any error a helper throws (unknown errors: exit 3, the environment). */
export function failureOf(err: unknown): { exit: number; message: string; code?: string } {
  if (err instanceof CommandFailure) return { exit: err.exit, message: err.message, ...(err.code ? { code: err.code } : {}) }
  if (isConfigError(err)) return { exit: EXIT.usage, message: err.message, code: 'CONFIG_INVALID' }
  if (err instanceof AdminUnreachableError) return { exit: EXIT.environment, message: err.message, code: err.code }
  if (err instanceof AdminProtocolError && err.status === 404) {
    return { exit: EXIT.usage, message: `${err.message}: is it a node of an HA pair (two nodes and a service address in its config)?`, code: 'NOT_HA_NODE' }
  }
  if (err instanceof AdminProtocolError) return { exit: EXIT.environment, message: err.message, code: err.serverCode ?? err.code }
  const code = typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined
  return { exit: EXIT.environment, message: err instanceof Error ? err.message : String(err), ...(code ? { code } : {}) }
}

/** Ends the command with the failure's message and exit code (kept under --json by BaseCommand). */
export function failWith(cmd: { error(message: string, options: { exit: number; code?: string }): never }, err: unknown): never {
  if (err instanceof Errors.CLIError) throw err // already carries its exit code (userError, exit)
  const f = failureOf(err)
  return cmd.error(f.message, { exit: f.exit, ...(f.code ? { code: f.code } : {}) })
}
