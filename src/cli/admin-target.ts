// How a command finds the node it talks to: --admin, or --config and --node, or the default.
import { Flags } from '@oclif/core'
import { loadConfig, selectNode } from '../config/index.js'

export const adminFlags = {
  admin: Flags.string({ char: 'a', description: 'admin API address host:port of the node', exclusive: ['config'] }),
  config: Flags.string({ char: 'c', description: "cluster config file; the node's admin address is read from it" }),
  node: Flags.string({ char: 'n', description: 'node name in the config', dependsOn: ['config'] }),
  timeout: Flags.integer({ description: 'milliseconds to wait for the node', default: 3000 }),
}

export const DEFAULT_ADMIN = '127.0.0.1:7360'

/** Throws ConfigError for a bad config (the caller maps it to exit 2). */
export async function resolveAdmin(flags: { admin?: string; config?: string; node?: string }): Promise<string> {
  if (flags.admin) return flags.admin
  if (flags.config) {
    const config = await loadConfig(flags.config)
    return config.nodes[selectNode(config, flags.node)]!.admin.text
  }
  return DEFAULT_ADMIN
}
