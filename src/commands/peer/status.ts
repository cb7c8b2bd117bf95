import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base.js'
import { adminFlags, resolveAdmin } from '../../cli/admin-target.js'
import { peerStatusLines } from '../../cli/peer-format.js'
import { adminGetJson, AdminUnreachableError } from '../../admin/client.js'
import { failWith } from '../../cli/failure.js'
import { HEALTH_EXIT, healthOf, type PeerStatusReport } from '../../ha/status.js'

export default class PeerStatus extends BaseCommand {
  static override summary = 'Show the partner, the peer link, the lease, the roles and the journal.'
  static override description = `Asks a node of the pair (GET /v1/peer) for its role and epoch, the peer link (up/down, heartbeat round trip), the lease on shared storage (holder, epoch, age), who holds the service address, the journal depth, and the last takeover (copies replayed, I/O pause).

Made for cron health checks as well as terminals: --watch shows it live.`
  static override examples = [
    '<%= config.bin %> peer status --config cluster.yaml --node a',
    '<%= config.bin %> peer status --admin 127.0.0.1:7360 --json',
    '<%= config.bin %> peer status --watch',
  ]
  static exitCodes = {
    0: 'healthy: both controllers up, one primary, writes mirrored',
    1: 'degraded: the service runs but the partner is missing or writes are not mirrored',
    2: 'critical: no controller serves, or this node is fenced',
    3: 'unknown: the node could not be reached',
  }
  static override flags = {
    ...adminFlags,
    watch: Flags.boolean({ char: 'w', description: 'show it live until Ctrl-C (a terminal only)' }),
    interval: Flags.integer({ description: 'milliseconds between polls with --watch', default: 500 }),
  }

  public async run(): Promise<PeerStatusReport & { health: string; reasons: string[] }> {
    const { flags } = await this.parse(PeerStatus)
    let admin: string
    try {
      admin = await resolveAdmin(flags)
    } catch (err) {
      failWith(this, err)
    }
    const fetch = async (): Promise<PeerStatusReport> =>
      (await adminGetJson(admin, '/v1/peer', { timeoutMs: flags.timeout })) as PeerStatusReport
    if (flags.watch && !this.jsonEnabled() && process.stdout.isTTY) {
      const { watchPeerStatus } = await import('../../cli/views/peer-status-view.js')
      await watchPeerStatus(fetch, flags.interval)
      this.exit(0)
    }
    let report: PeerStatusReport
    try {
      report = await fetch()
    } catch (err) {
      if (err instanceof AdminUnreachableError) this.error(err.message, { exit: HEALTH_EXIT.unknown })
      throw err
    }
    const verdict = healthOf(report)
    const result = { ...report, ...verdict }
    // With --json oclif prints the returned result.
    if (!this.jsonEnabled()) for (const line of peerStatusLines(report)) this.log(line)
    process.exitCode = HEALTH_EXIT[verdict.health]
    return result
  }
}
