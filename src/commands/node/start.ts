import { Flags } from '@oclif/core'
import { BaseCommand, EXIT } from '../../cli/base.js'
import { loadConfig, defaultConfig, selectNode, isConfigError } from '../../config/index.js'
import { Controller } from '../../node/controller.js'
import { createLogger, type LogLevel } from '../../node/log.js'

export default class NodeStart extends BaseCommand {
  static override summary = 'Run a controller in the foreground.'
  static override description = `Serves the targets of the config file on this node's portal and its admin API, until SIGINT or SIGTERM; then sessions are dropped after their in-flight I/O, data is flushed and files closed.

With no --config it serves the embedded default: one target on 127.0.0.1:3260 with a 1 GiB sparse LUN under ./iscsi-ha-data/, and prints the iSCSI URL to use.

Logs are JSON lines on stderr. The URLs to connect to are printed on stdout (or as JSON with --json).`
  static override examples = [
    '<%= config.bin %> node start',
    '<%= config.bin %> node start --config /etc/iscsi-ha/cluster.yaml --node a',
  ]
  static override flags = {
    config: Flags.string({ char: 'c', description: 'cluster config file (YAML); the embedded default when absent' }),
    node: Flags.string({ char: 'n', description: 'which node of the config this controller is' }),
    'data-dir': Flags.string({ description: 'where the embedded default keeps its LUN file', default: './iscsi-ha-data' }),
    'log-level': Flags.string({ options: ['debug', 'info', 'warn', 'error'], default: 'info', description: 'least severe log level written' }),
  }

  public async run(): Promise<{ node: string; urls: string[]; admin: string }> {
    const { flags } = await this.parse(NodeStart)
    const log = createLogger({ level: flags['log-level'] as LogLevel })
    let controller: Controller
    let nodeName: string
    try {
      const config = flags.config ? await loadConfig(flags.config) : defaultConfig(flags['data-dir'])
      nodeName = selectNode(config, flags.node)
      controller = await Controller.start({ config, nodeName, log })
    } catch (err) {
      if (isConfigError(err)) this.userError(err.message)
      this.environmentError(`cannot start: ${err instanceof Error ? err.message : String(err)}`)
    }
    const status = controller.status()
    const result = { node: nodeName, urls: controller.urls(), admin: status.admin }
    if (this.jsonEnabled()) this.logJson(result)
    else for (const url of result.urls) this.log(url)
    await new Promise<void>((resolve) => {
      const stop = (signal: string): void => {
        log.info('signal received, stopping', { signal })
        process.off('SIGINT', onInt)
        process.off('SIGTERM', onTerm)
        void controller.stop().then(resolve)
      }
      const onInt = (): void => stop('SIGINT')
      const onTerm = (): void => stop('SIGTERM')
      process.on('SIGINT', onInt)
      process.on('SIGTERM', onTerm)
    })
    this.exit(EXIT.ok)
  }
}
