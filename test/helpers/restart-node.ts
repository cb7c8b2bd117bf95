// Start a node process again on the config and directory of one started by startNode (after it
// was stopped or killed): same files, same ports. Stopped by its pid, like the first one.
import { execa } from 'execa'
import { cli, type RunningNode } from './node-process.js'

export interface RestartedNode {
  pid: number
  logs: string[]
  stop(signal?: NodeJS.Signals): Promise<number | undefined>
}

export async function restartNode(node: RunningNode): Promise<RestartedNode> {
  const child = execa('node', [cli, 'node', 'start', '--config', node.configPath, '--node', 'a'], {
    cwd: node.dir, reject: false, stdin: 'ignore', buffer: false,
  })
  const pid = child.pid!
  const logs: string[] = []
  let exited = false
  const exit = child.then((r) => {
    exited = true
    return r.exitCode
  })
  await new Promise<void>((res, rej) => {
    let buf = ''
    const timer = setTimeout(() => rej(new Error(`node did not start again in 20s:\n${logs.join('\n')}`)), 20_000)
    child.stderr!.on('data', (chunk: Buffer) => {
      buf += chunk.toString()
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        logs.push(line)
        if (line.includes('"msg":"node ready"')) {
          clearTimeout(timer)
          res()
        }
      }
    })
    void exit.then((code) => {
      clearTimeout(timer)
      rej(new Error(`node exited with ${code} before it was ready:\n${logs.join('\n')}`))
    })
  })
  child.stdout!.resume()
  return {
    pid, logs,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (!exited) process.kill(pid, signal)
      return (await exit) ?? undefined
    },
  }
}
