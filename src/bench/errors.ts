// A benchmark client that ran but did not produce a result (or could not reach the target).
import { tail } from './bounded.js'

export class ClientError extends Error {
  readonly code = 'BENCH_CLIENT_FAILED'
  constructor(
    readonly client: string,
    what: string,
    readonly output: string,
  ) {
    const last = tail(output)
    super(`${client}: ${what}${last ? ` (${last})` : ''}`)
    this.name = 'ClientError'
  }
}
