// The host command a storage write belongs to, for layers below the SCSI engine (the HA
// journal records the initiator and task of every copy). The engine issues a plain WRITE's
// device write synchronously inside execute(), so a value set around that call is enough;
// no AsyncLocalStorage cost on the hot path.

export interface CommandContext {
  initiator: string
  isid: string
  itt: number
}

let current: CommandContext | undefined

export function runWithCommand<T>(ctx: CommandContext, fn: () => T): T {
  const saved = current
  current = ctx
  try {
    return fn()
  } finally {
    current = saved
  }
}

export function currentCommand(): CommandContext | undefined {
  return current
}
