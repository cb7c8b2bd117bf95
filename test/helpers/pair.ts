// A loopback HA pair for tests: two `iscsi-ha node start` processes on one config, ports picked
// free, a service address on 127.0.0.x unique to the caller, stopped by pid and cleaned up.
import { execa, type ResultPromise } from 'execa'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cli } from './node-process.js'
import { loopbackPairConfig } from '../../src/bench/pair.js'
import { adminGetJson } from '../../src/admin/client.js'
import type { PeerStatusReport } from '../../src/ha/status.js'

export interface PairNode {
  name: 'a' | 'b'
  admin: string
  pid: number | undefined
  logs: string[]
  running: boolean
  start(): Promise<void>
  kill(signal?: NodeJS.Signals): Promise<void>
  status(): Promise<PeerStatusReport>
}

export interface Pair {
  dir: string
  configPath: string
  /** The file each node was started with (both configPath unless startPair got nodeConfig). */
  configPaths: { a: string; b: string }
  iqn: string
  service: { host: string; port: number }
  nodes: { a: PairNode; b: PairNode }
  primary(): Promise<PairNode | undefined>
  waitFor(pred: (a?: PeerStatusReport, b?: PeerStatusReport) => boolean, timeoutMs?: number): Promise<void>
  cleanup(): Promise<void>
}

export interface StartPairOptions {
  serviceHost: string
  sizeMiB?: number
  extra?: string
  env?: Record<string, string>
  /**
   * A config file of its own for each node (as on two machines), made from the pair's config;
   * `admins` are the addresses each node's admin API really listens on.
   */
  nodeConfig?: (name: 'a' | 'b', yaml: string, admins: { a: string; b: string }) => string
}

export async function startPair(opts: StartPairOptions): Promise<Pair> {
  const dir = await mkdtemp(join(tmpdir(), 'iscsi-ha-pair-'))
  const iqn = 'iqn.2026-11.io.iscsi-ha:pair'
  const { yaml, admins, service } = await loopbackPairConfig({
    iqn, lunPath: join(dir, 'lun0.img'), sizeMiB: opts.sizeMiB ?? 64, serviceHost: opts.serviceHost,
    peerSecret: 'a-long-shared-secret-for-tests', ...(opts.extra ? { extra: opts.extra } : {}),
  })
  const port = service.port
  const ports = { aa: admins.a.port, ab: admins.b.port }
  const configPath = join(dir, 'pair.yaml')
  await writeFile(configPath, yaml)
  const configPaths = { a: configPath, b: configPath }
  if (opts.nodeConfig) {
    const real = { a: `127.0.0.1:${ports.aa}`, b: `127.0.0.1:${ports.ab}` }
    for (const name of ['a', 'b'] as const) {
      configPaths[name] = join(dir, `pair-${name}.yaml`)
      await writeFile(configPaths[name], opts.nodeConfig(name, yaml, real))
    }
  }

  const makeNode = (name: 'a' | 'b', admin: string): PairNode => {
    let child: ResultPromise | undefined
    let exited: Promise<unknown> = Promise.resolve()
    const node: PairNode = {
      name, admin, pid: undefined, logs: [], running: false,
      async start() {
        child = execa('node', [cli, 'node', 'start', '--config', configPaths[name], '--node', name], {
          cwd: dir, reject: false, stdin: 'ignore', buffer: false, env: { ...process.env, ...opts.env },
        })
        node.pid = child.pid
        node.running = true
        let buf = ''
        child.stderr!.on('data', (d: Buffer) => {
          buf += d.toString()
          let nl: number
          while ((nl = buf.indexOf('\n')) >= 0) {
            node.logs.push(buf.slice(0, nl))
            buf = buf.slice(nl + 1)
          }
        })
        child.stdout!.resume()
        exited = child.then(() => {
          node.running = false
        })
        const until = Date.now() + 15_000
        for (;;) {
          if (!node.running) throw new Error(`node ${name} exited:\n${node.logs.join('\n')}`)
          const s = await node.status().catch(() => undefined)
          if (s) return
          if (Date.now() > until) throw new Error(`node ${name} did not answer in 15 s`)
          await new Promise((r) => setTimeout(r, 50))
        }
      },
      async kill(signal = 'SIGKILL') {
        if (node.pid !== undefined && node.running) process.kill(node.pid, signal)
        await exited
      },
      status: () => adminGetJson(admin, '/v1/peer', { timeoutMs: 1000 }) as Promise<PeerStatusReport>,
    }
    return node
  }
  const nodes = { a: makeNode('a', `127.0.0.1:${ports.aa}`), b: makeNode('b', `127.0.0.1:${ports.ab}`) }
  const pair: Pair = {
    dir, configPath, configPaths, iqn, service: { host: opts.serviceHost, port }, nodes,
    async primary() {
      for (const n of [nodes.a, nodes.b]) {
        const s = n.running ? await n.status().catch(() => undefined) : undefined
        if (s?.role === 'primary' && s.serving) return n
      }
      return undefined
    },
    async waitFor(pred, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs
      for (;;) {
        const a = nodes.a.running ? await nodes.a.status().catch(() => undefined) : undefined
        const b = nodes.b.running ? await nodes.b.status().catch(() => undefined) : undefined
        if (pred(a, b)) return
        if (Date.now() > until) throw new Error(`pair did not reach the expected state: a=${JSON.stringify(a)} b=${JSON.stringify(b)}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    },
    async cleanup() {
      await nodes.a.kill('SIGKILL').catch(() => undefined)
      await nodes.b.kill('SIGKILL').catch(() => undefined)
      await rm(dir, { recursive: true, force: true })
    },
  }
  try {
    await nodes.a.start()
    await pair.waitFor((a) => a?.role === 'primary' && a.serving)
    await nodes.b.start()
    await pair.waitFor((a, b) => a?.mirrored === true && b?.role === 'secondary')
  } catch (err) {
    await pair.cleanup()
    throw err
  }
  return pair
}
