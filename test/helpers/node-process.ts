// Start a real `iscsi-ha node start` process for a test, and stop it by its pid.
import { execa, type ResultPromise } from 'execa'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

export const repoRoot = resolve(import.meta.dirname, '../..')
export const cli = join(repoRoot, 'bin/run.js')

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer()
    srv.once('error', rej)
    srv.listen(0, host, () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => res(port))
    })
  })
}

export interface RunningNode {
  dir: string
  configPath: string
  portal: string
  admin: string
  iqn: string
  url(lun?: number, auth?: string): string
  logs: string[]
  pid: number
  stop(signal?: NodeJS.Signals): Promise<number | undefined>
  cleanup(): Promise<void>
}

export interface NodeOptions {
  iqn?: string
  sizeMiB?: number
  /** Extra YAML under the target (chap, initiators …), indented for the target's mapping. */
  targetExtra?: string
  /** Extra top-level YAML (iscsi tuning …). */
  extra?: string
  luns?: number
}

export async function startNode(opts: NodeOptions = {}): Promise<RunningNode> {
  const dir = await mkdtemp(join(tmpdir(), 'iscsi-ha-test-'))
  const port = await freePort()
  const adminPort = await freePort()
  const iqn = opts.iqn ?? 'iqn.2026-11.io.iscsi-ha:test'
  const luns = Array.from({ length: opts.luns ?? 1 }, (_, i) =>
    `      - lun: ${i}\n        path: ./lun${i}.img\n        size: ${opts.sizeMiB ?? 64}MiB`).join('\n')
  const yaml = [
    'targets:',
    `  - iqn: ${iqn}`,
    '    luns:',
    luns,
    opts.targetExtra ?? '',
    'nodes:',
    '  a:',
    `    portal: 127.0.0.1:${port}`,
    `    admin: 127.0.0.1:${adminPort}`,
    opts.extra ?? '',
  ].join('\n')
  const configPath = join(dir, 'cluster.yaml')
  await writeFile(configPath, yaml)
  const { pid, logs, stop } = await spawnNode(configPath, dir)
  const portal = `127.0.0.1:${port}`
  return {
    dir, configPath, portal, admin: `127.0.0.1:${adminPort}`, iqn, logs, pid, stop,
    url: (lun = 0, auth?: string) => `iscsi://${auth ? auth + '@' : ''}${portal}/${iqn}/${lun}`,
    cleanup: async () => {
      await stop().catch(() => undefined)
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** A `node start` process on `configPath` (node a), once it logged "node ready"; stopped by its pid. */
export interface SpawnedNode {
  pid: number
  logs: string[]
  stop(signal?: NodeJS.Signals): Promise<number | undefined>
}

export async function spawnNode(configPath: string, cwd: string): Promise<SpawnedNode> {
  const logs: string[] = []
  const child: ResultPromise = execa('node', [cli, 'node', 'start', '--config', configPath, '--node', 'a'], {
    cwd, reject: false, stdin: 'ignore', buffer: false,
  })
  const pid = child.pid!
  let exited = false
  const exit = child.then((r) => {
    exited = true
    return r.exitCode
  })
  await new Promise<void>((res, rej) => {
    let buf = ''
    const timer = setTimeout(() => rej(new Error(`node did not start in 20s:\n${logs.join('\n')}`)), 20_000)
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
