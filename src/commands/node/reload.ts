import { Flags } from '@oclif/core'
import { resolve } from 'node:path'
import { BaseCommand, EXIT } from '../../cli/base.js'
import { adminFlags, resolveAdmin } from '../../cli/admin-target.js'
import { CommandFailure, failWith } from '../../cli/failure.js'
import { AdminProtocolError, reloadNode } from '../../admin/client.js'
import type { ReloadChange, ReloadReport } from '../../admin/reload-report.js'

export default class NodeReload extends BaseCommand {
  static override summary = "Re-read a running controller's config file and apply what can be applied live."
  static override description = `Asks a running node (POST /v1/reload) to read the config file it was started with again, the same way node start reads it, and compare it with what it serves. Sending SIGHUP to the node process does the same, with the outcome in its log.

Applied live: a LUN whose size: grew. Its file is extended (a block device must already be that large), the LUN serves the new capacity at once, and every connected host gets a unit attention CAPACITY DATA HAS CHANGED on its next command, so it reads the capacity again.

Everything else that differs (targets or LUNs added or removed, path, block_size, read_only, portal, CHAP, tuning…) is listed field by field as needing a restart. A smaller size is refused: shrinking would lose the data past the new end. A file with a mistake is reported as file:line: field and nothing at all is applied; the node keeps running as before.

In an HA pair, reload the secondary first, then the primary: the primary grows a LUN only once its partner's admin API shows the partner serves the new size, since the partner's journal must be able to replay writes past the old end.

The node is found by --admin, or by --config and --node (its admin address), or at 127.0.0.1:7360.

Exit status: 0 every difference was applied (or there was none); 1 the file loaded, but some differences need a restart or were refused, each listed; 2 bad flags, or a mistake in the config file, and nothing was applied; 3 the node could not be reached.`
  static override examples = [
    {
      description: 'Grow LUN 0 to 2 GiB: edit size: in the file the node was started with, then',
      command: '<%= config.bin %> node reload --config /etc/iscsi-ha/cluster.yaml --node a',
    },
    { description: 'The report as JSON, from the node at an admin address', command: '<%= config.bin %> node reload --admin 127.0.0.1:7360 --json' },
    { description: 'The same through a signal (the report goes to the node\'s log)', command: 'kill -HUP <pid of iscsi-ha node start>' },
  ]
  static override flags = {
    ...adminFlags,
    timeout: Flags.integer({ description: 'milliseconds to wait for the node (a grow first completes the writes in flight)', default: 30_000 }),
  }

  public async run(): Promise<ReloadReport> {
    const { flags } = await this.parse(NodeReload)
    let report: ReloadReport
    try {
      report = await reloadNode(await resolveAdmin(flags), { timeoutMs: flags.timeout })
    } catch (err) {
      failWith(this, reloadFailure(err)) // bad config: 2; unreachable: 3
    }
    if (flags.config && resolve(flags.config) !== report.config) {
      this.warn(`the node was started with ${report.config} and reloaded that file, not ${flags.config}`)
    }
    if (!this.jsonEnabled()) this.print(report)
    process.exitCode = report.complete ? EXIT.ok : 1
    return report
  }

  private print(r: ReloadReport): void {
    const n = (list: ReloadChange[], what: string): string => `${list.length} ${what}`
    this.log(`node ${r.node} reloaded ${r.config}: ${n(r.applied, 'applied')}, ${n(r.needsRestart, 'need a restart')}, ${n(r.refused, 'refused')}`)
    const section = (title: string, list: ReloadChange[]): void => {
      if (list.length === 0) return
      this.log(`\n${title}:`)
      for (const c of list) this.log(`  ${c.field}: ${c.detail}`)
    }
    section('applied', r.applied)
    section('needs a restart (iscsi-ha node start)', r.needsRestart)
    section('refused', r.refused)
    if (r.unchanged.length > 0) this.log(`\nunchanged: ${r.unchanged.map((u) => `${u.target}/${u.lun}`).join(', ')}`)
  }
}

/** The node's own refusals keep their exit codes: a config mistake or no file is the user's (2). */
function reloadFailure(err: unknown): unknown {
  if (!(err instanceof AdminProtocolError)) return err
  const said = err.message.replace(/^.*? answered HTTP \d+: /s, '')
  if (err.serverCode === 'CONFIG_INVALID') return new CommandFailure(EXIT.usage, `the node could not load its config: ${said}`, err.serverCode)
  if (err.serverCode === 'NO_CONFIG_FILE') return new CommandFailure(EXIT.usage, said, err.serverCode)
  if (err.status === 404) {
    return new CommandFailure(EXIT.environment, `${err.message}: this node has no reload (an older version?); restart it to apply its config`, 'RELOAD_UNSUPPORTED')
  }
  return err
}
