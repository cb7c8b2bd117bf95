import { Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base.js'
import { confirmRisk } from '../cli/confirm.js'
import { failWith, refused } from '../cli/failure.js'
import { adminOfNode, forceRisk, readPeer, runTakeover, takeoverLines, type TakeoverResult } from '../cli/takeover-run.js'
import { loadConfig } from '../config/index.js'

export default class Takeover extends BaseCommand {
  static override summary = 'Move the service address to the named node: a planned switchover, or forced.'
  static override description = `Asks the node that should become primary (POST /v1/takeover on its admin API) to take over, then watches it (GET /v1/peer) until it serves as primary on the service address, and prints how it went: the kind of takeover, the host I/O pause the new primary measured, and the committed-not-completed copies it replayed.

A planned switchover needs a live primary: it drains its I/O, completes its writes, drops the address and hands the lease over, so hosts see a short pause and no error.

--force is for when the partner is unreachable: the node claims the lease at once with a higher epoch, without the partner's handover. It asks for a confirmation that names the risk, unless --yes; with --json or without a terminal it refuses (exit 2) unless --yes is given.

The node is found by --config and --to (its admin address in the config), or by --admin.`
  static override examples = [
    '<%= config.bin %> takeover --config cluster.yaml --to b',
    '<%= config.bin %> takeover --admin 127.0.0.1:7362 --json',
    '<%= config.bin %> takeover --config cluster.yaml --to b --force --yes',
  ]
  static exitCodes = {
    0: 'the node serves as primary (or already did)',
    1: 'the takeover was accepted but not finished within --timeout',
    2: 'refused (by the node, or not confirmed: --force needs --yes without a terminal), or bad flags or config',
    3: 'the node could not be reached',
  }
  static override flags = {
    to: Flags.string({ char: 't', description: 'the node that should become primary (its admin address is read from --config)', dependsOn: ['config'] }),
    config: Flags.string({ char: 'c', description: 'cluster config file' }),
    admin: Flags.string({ char: 'a', description: 'admin API address host:port of the node that should become primary', exclusive: ['config'] }),
    force: Flags.boolean({ char: 'f', description: 'take over without the partner (when it is unreachable); asks for a confirmation' }),
    yes: Flags.boolean({ char: 'y', description: 'do not ask for a confirmation' }),
    timeout: Flags.integer({ description: 'milliseconds to wait for the node to serve as primary', default: 10_000, min: 1 }),
  }

  public async run(): Promise<TakeoverResult> {
    const { flags } = await this.parse(Takeover)
    let result: TakeoverResult
    try {
      let admin: string
      if (flags.admin) admin = flags.admin
      else if (flags.config && flags.to) admin = adminOfNode(await loadConfig(flags.config), flags.to)
      else throw refused('name the node that should become primary: --config FILE --to NODE, or --admin HOST:PORT')
      const before = await readPeer(admin, 3000)
      if (flags.to && before.node !== flags.to) throw refused(`${admin} is node ${before.node}, not ${flags.to}`)
      if (flags.force && !(before.role === 'primary' && before.serving)) {
        await confirmRisk({
          risk: forceRisk(before), question: `Force ${before.node} to take over now?`, yes: flags.yes, json: this.jsonEnabled(),
          withYes: `${this.config.bin} takeover ${flags.admin ? `--admin ${admin}` : `--config ${flags.config} --to ${before.node}`} --force --yes`,
        })
      }
      result = await runTakeover({ admin, before, force: flags.force, timeoutMs: flags.timeout })
    } catch (err) {
      failWith(this, err)
    }
    if (!this.jsonEnabled()) for (const line of takeoverLines(result)) this.log(line)
    return result
  }
}
