import { Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base.js'
import { adminFlags, resolveAdmin } from '../cli/admin-target.js'
import { confirmRisk } from '../cli/confirm.js'
import { failWith, refused } from '../cli/failure.js'
import { resolveJournalDir } from '../cli/journal-source.js'
import { planOfflineReplay, replayLines, replayOnNode, type ReplayResult } from '../cli/replay-run.js'
import { loadConfig } from '../config/index.js'

export default class Replay extends BaseCommand {
  static override summary = 'Complete the committed-but-not-completed copies to storage now.'
  static override description = `Writes the copies a secondary holds in its journal onto the LUNs' storage, in sequence order, then drops them from the journal (METHOD.md, "Failover" step 4). A takeover does this by itself; this command is for doing it on demand.

On a running secondary (--admin, or --config and --node): POST /v1/replay. Refused on the primary, and while the partner serves as primary (it completes the copies itself, and replaying an older copy after a newer write to the same blocks would bring back stale data).

Offline (--dir with --config), after both controllers stopped: opens the persisted journal directory for writing (refused while a controller holds its lock), maps each copy to its LUN's path in the config, writes it there and flushes. If the primary had drained the journal's generation before writing through alone, the copies are on storage already and are dropped instead of written. Offline replay overwrites blocks, so it asks for a confirmation unless --yes; with --json or without a terminal it refuses (exit 2) unless --yes is given.`
  static override examples = [
    '<%= config.bin %> replay --config cluster.yaml --node b',
    '<%= config.bin %> replay --dir /var/lib/iscsi-ha/journal --node b --config cluster.yaml',
    '<%= config.bin %> replay --dir /var/lib/iscsi-ha/journal/b --config cluster.yaml --yes --json',
  ]
  static exitCodes = {
    0: 'the copies were completed (or there were none)',
    2: 'refused (the node is primary or its partner serves, the journal is in use by a running controller, not confirmed), or bad flags or config',
    3: 'the node could not be reached, or the journal or storage failed',
  }
  static override flags = {
    ...adminFlags,
    admin: Flags.string({ char: 'a', description: 'admin API address host:port of the running secondary', exclusive: ['config', 'dir'] }),
    node: Flags.string({ char: 'n', description: 'node name: whose admin API, or (with --dir) whose directory under the journal dir' }),
    dir: Flags.string({ char: 'd', description: 'replay offline from this persisted journal directory (needs --config for the LUN paths)', dependsOn: ['config'] }),
    yes: Flags.boolean({ char: 'y', description: 'do not ask for a confirmation (offline replay)' }),
  }

  public async run(): Promise<ReplayResult> {
    const { flags } = await this.parse(Replay)
    let result: ReplayResult
    try {
      if (flags.node !== undefined && !flags.config) throw refused('--node needs --config')
      if (!flags.dir) result = await replayOnNode(await resolveAdmin(flags), flags.timeout)
      else {
        const plan = await planOfflineReplay(await loadConfig(flags.config!), resolveJournalDir(flags.dir, flags.node))
        if (plan.copies === 0) {
          await plan.close()
          result = { mode: 'offline', from: plan.dir, replayed: 0, bytes: 0, discardedBytes: 0, paths: [] }
        } else {
          await confirmRisk({
            risk: plan.risk, question: plan.drained ? 'Drop them?' : 'Write them now?', yes: flags.yes, json: this.jsonEnabled(),
            withYes: `${this.config.bin} replay --dir ${flags.dir} --config ${flags.config}${flags.node ? ` --node ${flags.node}` : ''} --yes`,
          }).catch(async (err: unknown) => {
            await plan.close()
            throw err
          })
          result = await plan.run()
        }
      }
    } catch (err) {
      failWith(this, err)
    }
    if (!this.jsonEnabled()) for (const line of replayLines(result)) this.log(line)
    return result
  }
}
