import { Flags } from '@oclif/core'
import { BaseCommand, EXIT } from '../../cli/base.js'
import { loadConfig, defaultConfig, selectNode, isConfigError } from '../../config/index.js'
import { Controller } from '../../node/controller.js'
import { HaNode, isPair } from '../../ha/node.js'
import { createLogger, type LogLevel } from '../../node/log.js'
import type { ReloadReport } from '../../admin/reload-report.js'

export default class NodeStart extends BaseCommand {
  static override summary = 'Run a controller in the foreground.'
  static override description = `Serves the targets of the config file on this node's portal and its admin API, until SIGINT or SIGTERM; then sessions are dropped after their in-flight I/O, data is flushed and files closed.

SIGHUP re-reads the config file, as "iscsi-ha node reload" does: a LUN whose size grew is grown live, everything else that changed is logged as needing a restart, and a file with a mistake is logged and changes nothing.

With no --config it serves the embedded default: one target on 127.0.0.1:3260 with a 1 GiB sparse LUN under ./iscsi-ha-data/, and prints the iSCSI URL to use.

When the config has two nodes and a service address, the node runs as one half of the HA pair: it joins as secondary or becomes primary through the lease on shared storage, and serves on the service address only while primary.

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
    let running: { stop(): Promise<void>; reload(): Promise<ReloadReport> }
    let result: { node: string; urls: string[]; admin: string }
    try {
      const config = flags.config ? await loadConfig(flags.config) : defaultConfig(flags['data-dir'])
      const nodeName = selectNode(config, flags.node)
      const admin = config.nodes[nodeName]!.admin.text
      if (isPair(config)) {
        // Two controllers and a service address: this node is one half of the HA pair.
        const node = await HaNode.start({ config, nodeName, log })
        running = node
        result = { node: nodeName, urls: node.serviceUrls(), admin }
      } else {
        const controller = await Controller.start({ config, nodeName, log })
        running = controller
        result = { node: nodeName, urls: controller.urls(), admin }
      }
    } catch (err) {
      if (isConfigError(err)) this.userError(err.message)
      this.environmentError(`cannot start: ${err instanceof Error ? err.message : String(err)}`)
    }
    if (this.jsonEnabled()) this.logJson(result)
    else for (const url of result.urls) this.log(url)
    await new Promise<void>((resolve) => {
      let stopping = false
      const stop = (signal: string): void => {
        log.info('signal received, stopping', { signal })
        stopping = true
        process.off('SIGINT', onInt)
        process.off('SIGTERM', onTerm)
        void running.stop().then(resolve)
      }
      const onInt = (): void => stop('SIGINT')
      const onTerm = (): void => stop('SIGTERM')
      // SIGHUP reloads the config, as daemons do (the node logs what it applied); it stays
      // handled while stopping so that a late one cannot kill the process mid-flush.
      const onHup = (): void => {
        if (stopping) return
        log.info('signal received, reloading the config', { signal: 'SIGHUP' })
        running.reload().catch((err: unknown) => {
          log.error('config reload failed; nothing was applied', { error: err instanceof Error ? err.message : String(err) })
        })
      }
      process.on('SIGINT', onInt)
      process.on('SIGTERM', onTerm)
      process.on('SIGHUP', onHup)
    })
    this.exit(EXIT.ok)
  }
}
