import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base.js'
import { adminFlags, resolveAdmin } from '../../cli/admin-target.js'
import { failWith } from '../../cli/failure.js'
import { blockSizeLookup, journalLines, type JournalReport } from '../../cli/journal-format.js'
import { journalFromDir, journalFromNode, resolveJournalDir } from '../../cli/journal-source.js'
import { loadConfig } from '../../config/index.js'

export default class JournalInspect extends BaseCommand {
  static override summary = 'List the committed-but-not-completed copies a secondary holds.'
  static override description = `Every write the primary acknowledged but has not yet reported durable on storage has a copy in the secondary's journal (METHOD.md, "The write path"). This lists them in replay order: sequence, epoch, LUN, LBA, blocks, age, and the initiator and task (ITT) that sent the write.

The copies come from a running node (GET /v1/journal on its admin API: --admin, or --config and --node) or from a persisted journal directory (--dir, opened read-only, so it is safe while a controller runs). --dir takes the journal directory itself or the config's journal.dir (then --node, or the only node directory in it).

LBA and BLOCKS use each LUN's block size from --config; without a config, 512-byte blocks.

An empty journal is normal: on a healthy pair copies live for a few milliseconds.`
  static override examples = [
    '<%= config.bin %> journal inspect --config cluster.yaml --node b',
    '<%= config.bin %> journal inspect --admin 127.0.0.1:7362 --json',
    '<%= config.bin %> journal inspect --dir /var/lib/iscsi-ha/journal --node b --config cluster.yaml --limit 20',
  ]
  static exitCodes = {
    0: 'listed (also when the journal is empty)',
    2: 'bad flags or config, or no journal in --dir',
    3: 'the node could not be reached, or the journal file could not be read',
  }
  static override flags = {
    ...adminFlags,
    admin: Flags.string({ char: 'a', description: 'admin API address host:port of the node', exclusive: ['config', 'dir'] }),
    node: Flags.string({ char: 'n', description: 'node name: whose admin API (with --config), or whose directory under --dir' }),
    dir: Flags.string({ char: 'd', description: 'read a persisted journal directory instead of a running node' }),
    limit: Flags.integer({ char: 'l', description: 'list at most this many copies (the oldest first)', default: 100, min: 1 }),
  }

  public async run(): Promise<JournalReport> {
    const { flags } = await this.parse(JournalInspect)
    let report: JournalReport
    try {
      if (flags.node !== undefined && !flags.config && !flags.dir) this.userError('--node needs --config (or --dir)')
      const config = flags.config ? await loadConfig(flags.config) : undefined
      const common = { limit: flags.limit, blockSizeOf: blockSizeLookup(config), fromConfig: config !== undefined }
      report = flags.dir
        ? await journalFromDir(resolveJournalDir(flags.dir, flags.node), common)
        : await journalFromNode(await resolveAdmin(flags), { ...common, timeoutMs: flags.timeout })
    } catch (err) {
      failWith(this, err)
    }
    if (!this.jsonEnabled()) for (const line of journalLines(report)) this.log(line)
    return report
  }
}
