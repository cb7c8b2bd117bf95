// Start a node process again on the config and directory of one started by startNode (after it
// was stopped or killed): same files, same ports. Stopped by its pid, like the first one.
import { spawnNode, type RunningNode, type SpawnedNode } from './node-process.js'

export type RestartedNode = SpawnedNode

export function restartNode(node: RunningNode): Promise<RestartedNode> {
  return spawnNode(node.configPath, node.dir)
}
