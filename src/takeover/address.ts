// The service address (claims 23, 28, 38): the controller that serves adds it beside its own
// address; the one that stops drops it. On loopback there is nothing to add: every 127/8
// address is already local, and listening on it is what "holding" means.

import { execa } from 'execa'

export interface ServiceAddressOptions {
  ip: string
  /** Interface to add the address to; absent means the address is already local (loopback). */
  interface?: string
  prefix?: number
  /**
   * Seconds the kernel keeps the address unless it is refreshed. A controller whose process
   * dies while its machine lives stops refreshing, and the kernel drops the address by itself:
   * the dead process cannot keep answering for it. 0: forever (no refresh needed).
   */
  lifetimeS?: number
  /** Runs `ip` (injected in tests). */
  run?: (cmd: string, args: string[]) => Promise<{ stdout: string }>
}

export class TakeoverError extends Error {
  readonly code = 'TAKEOVER_COMMAND_FAILED'
  constructor(readonly command: string, readonly stderr: string) {
    super(`${command} failed: ${stderr.trim() || 'no output'}`)
  }
}

const defaultRun = async (cmd: string, args: string[]): Promise<{ stdout: string }> => {
  const r = await execa(cmd, args, { reject: false })
  if (r.exitCode !== 0) throw new TakeoverError(`${cmd} ${args.join(' ')}`, String(r.stderr))
  return { stdout: String(r.stdout) }
}

export class ServiceAddress {
  private readonly run: NonNullable<ServiceAddressOptions['run']>

  constructor(private readonly opts: ServiceAddressOptions) {
    this.run = opts.run ?? defaultRun
  }

  get managed(): boolean {
    return this.opts.interface !== undefined
  }

  /** Whether the interface carries the address now (always true on loopback). */
  async isHeld(): Promise<boolean> {
    if (!this.opts.interface) return true
    const { stdout } = await this.run('ip', ['-j', 'addr', 'show', 'dev', this.opts.interface])
    const links = JSON.parse(stdout || '[]') as Array<{ addr_info?: Array<{ local?: string }> }>
    return links.some((l) => (l.addr_info ?? []).some((a) => a.local === this.opts.ip))
  }

  /** Add the address, or renew its lifetime when it is there already (idempotent). */
  async assume(): Promise<void> {
    if (!this.opts.interface) return
    // replace: adds the address, or renews the lifetime of one that is there.
    await this.run('ip', ['addr', 'replace', `${this.opts.ip}/${this.prefixLength}`, 'dev', this.opts.interface, ...this.lifetimeArgs()])
  }

  /** Keep a held address alive (call every lifetime/3 or so while serving). */
  async refresh(): Promise<void> {
    if (!this.opts.interface || !this.opts.lifetimeS) return
    await this.assume()
  }

  private get prefixLength(): number {
    return this.opts.prefix ?? (this.opts.ip.includes(':') ? 128 : 32)
  }

  private lifetimeArgs(): string[] {
    const life = this.opts.lifetimeS ? ['valid_lft', String(this.opts.lifetimeS), 'preferred_lft', String(this.opts.lifetimeS)] : []
    // nodad: an IPv6 address must be usable at once, not after duplicate detection.
    return this.opts.ip.includes(':') ? [...life, 'nodad'] : life
  }

  /** Drop the address (idempotent): a controller that stops serving must not answer for it. */
  async release(): Promise<void> {
    if (!this.opts.interface || !(await this.isHeld())) return
    await this.run('ip', ['addr', 'del', `${this.opts.ip}/${this.prefixLength}`, 'dev', this.opts.interface])
  }
}
