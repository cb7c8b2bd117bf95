import { BaseCommand } from '../../cli/base.js'
import { renderTable, formatBytes } from '../../cli/table.js'
import { fetchStatus } from '../../admin/client.js'
import { failWith } from '../../cli/failure.js'
import { adminFlags, resolveAdmin } from '../../cli/admin-target.js'
import type { NodeStatus } from '../../admin/status.js'

/** Where a LUN's storage requests run now: `auto/inline`, `auto/pool` (backed off), or the fixed mode. */
function ioWhere(io: NodeStatus['targets'][number]['luns'][number]['io']): string {
  return io.mode === 'auto' ? (io.inlineNow ? 'auto/inline' : 'auto/pool') : io.mode
}

export default class NodeStatusCommand extends BaseCommand {
  static override summary = "Show a running controller's targets, LUNs, sessions and counters."
  static override description = `Reads the admin API of a running node (GET /v1/status) and prints it as tables, or as JSON with --json.

The node is found by --admin, or by --config and --node (its admin address), or at 127.0.0.1:7360.

Exit status: 0 the node answered; 3 the node could not be reached; 2 bad flags or config.`
  static override examples = [
    '<%= config.bin %> node status',
    '<%= config.bin %> node status --admin 127.0.0.1:7360 --json',
    '<%= config.bin %> node status --config cluster.yaml --node b',
  ]
  static override flags = adminFlags

  public async run(): Promise<NodeStatus> {
    const { flags } = await this.parse(NodeStatusCommand)
    let status: NodeStatus
    try {
      status = await fetchStatus(await resolveAdmin(flags), { timeoutMs: flags.timeout })
    } catch (err) {
      failWith(this, err) // bad config: 2; unreachable: 3
    }
    if (!this.jsonEnabled()) this.print(status)
    return status
  }

  private print(s: NodeStatus): void {
    this.log(`node ${s.node}  pid ${s.pid}  version ${s.version}  up ${s.uptimeS}s  portal ${s.portal}  admin ${s.admin}\n`)
    const luns = s.targets.flatMap((t) => t.luns.map((l) => [t.iqn, l.lun, l.kind, formatBytes(l.sizeBytes), l.blockSize, l.serial, l.naa, l.readOnly ? 'ro' : 'rw', l.writeCache ? 'on' : 'off', ioWhere(l.io), l.path]))
    this.log(renderTable(['TARGET', 'LUN', 'KIND', 'SIZE', 'BLOCK', 'SERIAL', 'NAA', 'MODE', 'WCE', 'IO', 'PATH'], luns))
    const sessions = s.targets.flatMap((t) => t.sessions.map((x) => [t.iqn, x.tsih, x.initiatorName, x.remote, x.headerDigest ? 'crc32c' : 'none', x.commands, formatBytes(x.readBytes), formatBytes(x.writeBytes)]))
    this.log('')
    this.log(sessions.length ? renderTable(['TARGET', 'TSIH', 'INITIATOR', 'REMOTE', 'HDIGEST', 'CMDS', 'READ', 'WRITTEN'], sessions) : 'no sessions')
    this.log(`connections open ${s.connections.open} of ${s.connections.limit}`)
    const c = s.counters
    this.log('')
    this.log(renderTable(['COUNTER', 'VALUE'], Object.entries(c).map(([k, v]) => [k, v])))
  }
}
