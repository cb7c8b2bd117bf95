// A loopback HA pair for `bench failover`, the tgt comparison and the HA integration tests: two
// `iscsi-ha node start` processes on one config (node a on 127.0.0.1, node b on 127.0.0.2, one
// shared LUN file),
// hosts connect to the service address (a 127.0.0.x of the caller's choosing), ports are
// picked free, and everything is stopped by pid and removed by cleanup().
import { randomBytes } from 'node:crypto'
import { existsSync, rmSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { adminGetJson } from '../admin/client.js'
import type { PeerStatusReport } from '../ha/status.js'
import { ControllerProcess } from './controller-process.js'
import { freePort } from './ports.js'

export const PAIR_IQN = 'iqn.2026-11.io.iscsi-ha:bench-pair'
export type PairNodeName = 'a' | 'b'

export interface BenchPairNode {
  name: PairNodeName
  admin: string
  process: ControllerProcess | undefined
  readonly running: boolean
  /** The last lines the running (or last) process logged. */
  readonly logs: readonly string[]
  start(): Promise<void>
  kill(signal?: NodeJS.Signals): Promise<void>
  status(): Promise<PeerStatusReport>
}

export interface BenchPair {
  dir: string
  configPath: string
  /** The file each node was started with (both configPath unless startPair got nodeConfig). */
  configPaths: Record<PairNodeName, string>
  iqn: string
  service: { host: string; port: number }
  url: string
  nodes: Record<PairNodeName, BenchPairNode>
  /** The node that is primary and serving, if any. */
  primary(): Promise<BenchPairNode | undefined>
  waitFor(pred: (a?: PeerStatusReport, b?: PeerStatusReport) => boolean, timeoutMs?: number, what?: string): Promise<void>
  /** Until one node is primary and serving and the other secondary with writes mirrored. */
  waitMirrored(timeoutMs?: number): Promise<{ primary: PairNodeName; secondary: PairNodeName }>
  cleanup(): Promise<void>
}

export interface PairOptions {
  /** 127.0.0.x: the service address hosts connect to. */
  serviceHost: string
  sizeMiB?: number
  /** Use this LUN file (shared by both nodes) instead of a new sparse one. */
  lunPath?: string
  env?: Record<string, string>
  /** Extra top-level YAML (iscsi tuning, journal …; not ha: the lease lives in the pair's directory). */
  extra?: string
  /** Options for node itself per controller, e.g. --cpu-prof into a directory of its own. */
  nodeArgs?: (name: PairNodeName) => string[]
  /**
   * A config file of its own for each node (as on two machines), made from the pair's config;
   * `admins` are the addresses each node's admin API really listens on.
   */
  nodeConfig?: (name: PairNodeName, yaml: string, admins: Record<PairNodeName, string>) => string
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

const liveDirs = new Set<string>()

/** For a Ctrl-C handler that exits at once: remove the directories of pairs not cleaned up (after killLeftoverControllers). */
export function removeLeftoverPairDirs(): void {
  for (const d of liveDirs) rmSync(d, { recursive: true, force: true })
  liveDirs.clear()
}

/**
 * The config of a pair on loopback: portals on 127.0.0.1 and 127.0.0.2, admin and peer ports
 * picked free, the service address on `serviceHost`. Shared by `bench failover` and the tests.
 */
export async function loopbackPairConfig(o: {
  iqn: string
  lunPath: string
  /** Size for a LUN file that does not exist yet. */
  sizeMiB?: number
  serviceHost: string
  peerSecret: string
  /** More top-level YAML (ha:, journal: …). */
  extra?: string
}): Promise<{ yaml: string; admins: { a: { port: number }; b: { port: number } }; service: { host: string; port: number } }> {
  const port = await freePort(o.serviceHost)
  const p = {
    pa: await freePort('127.0.0.1'), pb: await freePort('127.0.0.2'),
    aa: await freePort(), ab: await freePort(), qa: await freePort(), qb: await freePort(),
  }
  const size = o.sizeMiB !== undefined ? `\n        size: ${o.sizeMiB}MiB` : ''
  const yaml = `targets:
  - iqn: ${o.iqn}
    luns:
      - lun: 0
        path: ${JSON.stringify(o.lunPath)}${size}
nodes:
  a:
    portal: 127.0.0.1:${p.pa}
    admin: 127.0.0.1:${p.aa}
    peer: 127.0.0.1:${p.qa}
  b:
    portal: 127.0.0.2:${p.pb}
    admin: 127.0.0.1:${p.ab}
    peer: 127.0.0.1:${p.qb}
service:
  address: ${o.serviceHost}:${port}
peer_secret: ${o.peerSecret}
${o.extra ?? ''}
`
  return { yaml, admins: { a: { port: p.aa }, b: { port: p.ab } }, service: { host: o.serviceHost, port } }
}

export async function startPair(opts: PairOptions): Promise<BenchPair> {
  const dir = await mkdtemp(join(tmpdir(), 'iscsi-ha-bench-pair-'))
  liveDirs.add(dir)
  const lunPath = opts.lunPath ?? join(dir, 'lun0.img')
  const { yaml, admins, service } = await loopbackPairConfig({
    iqn: PAIR_IQN, lunPath, ...(existsSync(lunPath) ? {} : { sizeMiB: opts.sizeMiB ?? 64 }),
    serviceHost: opts.serviceHost, peerSecret: randomBytes(24).toString('base64url'),
    extra: `ha:\n  lease_path: ${JSON.stringify(join(dir, 'lease'))}\n${opts.extra ?? ''}`,
  })
  const port = service.port
  const ports = { aa: admins.a.port, ab: admins.b.port }
  const configPath = join(dir, 'pair.yaml')
  await writeFile(configPath, yaml, { mode: 0o600 })
  const configPaths = { a: configPath, b: configPath }
  if (opts.nodeConfig) {
    const real = { a: `127.0.0.1:${ports.aa}`, b: `127.0.0.1:${ports.ab}` }
    for (const name of ['a', 'b'] as const) {
      configPaths[name] = join(dir, `pair-${name}.yaml`)
      await writeFile(configPaths[name], opts.nodeConfig(name, yaml, real), { mode: 0o600 })
    }
  }

  const makeNode = (name: PairNodeName, admin: string): BenchPairNode => {
    const node: BenchPairNode = {
      name, admin, process: undefined,
      get running() {
        return node.process?.running === true
      },
      get logs() {
        return node.process?.logs ?? []
      },
      async start() {
        const proc = new ControllerProcess(name, {
          configPath: configPaths[name], node: name, cwd: dir, ...(opts.env ? { env: opts.env } : {}), ...(opts.nodeArgs ? { nodeArgs: opts.nodeArgs(name) } : {}),
        })
        node.process = proc
        const until = Date.now() + 15_000
        for (;;) {
          if (!proc.running) throw new Error(`node ${name} exited while starting${proc.logTail()}`)
          if (await node.status().catch(() => undefined)) return
          if (Date.now() > until) throw new Error(`node ${name} did not answer on its admin API in 15 s${proc.logTail()}`)
          await sleep(50)
        }
      },
      async kill(signal = 'SIGKILL') {
        await node.process?.kill(signal)
      },
      status: () => adminGetJson(admin, '/v1/peer', { timeoutMs: 1000 }) as Promise<PeerStatusReport>,
    }
    return node
  }
  const nodes = { a: makeNode('a', `127.0.0.1:${ports.aa}`), b: makeNode('b', `127.0.0.1:${ports.ab}`) }
  const statusOf = async (n: BenchPairNode): Promise<PeerStatusReport | undefined> => (n.running ? n.status().catch(() => undefined) : undefined)
  const pair: BenchPair = {
    dir, configPath, configPaths, iqn: PAIR_IQN, service: { host: opts.serviceHost, port }, nodes,
    url: `iscsi://${opts.serviceHost}:${port}/${PAIR_IQN}/0`,
    async primary() {
      for (const n of [nodes.a, nodes.b]) {
        const s = await statusOf(n)
        if (s?.role === 'primary' && s.serving) return n
      }
      return undefined
    },
    async waitFor(pred, timeoutMs = 10_000, what = 'the expected state') {
      const until = Date.now() + timeoutMs
      for (;;) {
        const a = await statusOf(nodes.a)
        const b = await statusOf(nodes.b)
        if (pred(a, b)) return
        if (Date.now() > until) {
          throw new Error(`the pair did not reach ${what} in ${timeoutMs} ms: a=${JSON.stringify(a) ?? 'no answer'} b=${JSON.stringify(b) ?? 'no answer'}`)
        }
        await sleep(50)
      }
    },
    async waitMirrored(timeoutMs = 15_000) {
      let roles: { primary: PairNodeName; secondary: PairNodeName } | undefined
      await pair.waitFor((a, b) => {
        if (a?.role === 'primary' && a.serving && a.mirrored && b?.role === 'secondary') roles = { primary: 'a', secondary: 'b' }
        else if (b?.role === 'primary' && b.serving && b.mirrored && a?.role === 'secondary') roles = { primary: 'b', secondary: 'a' }
        else roles = undefined
        return roles !== undefined
      }, timeoutMs, 'a mirrored primary and secondary')
      return roles!
    },
    async cleanup() {
      await Promise.all([nodes.a.process?.stop(3000), nodes.b.process?.stop(3000)]).catch(() => undefined)
      await rm(dir, { recursive: true, force: true })
      liveDirs.delete(dir)
    },
  }
  try {
    await nodes.a.start()
    await pair.waitFor((a) => a?.role === 'primary' && a.serving, 10_000, 'node a primary')
    await nodes.b.start()
    await pair.waitMirrored()
  } catch (err) {
    await pair.cleanup()
    throw err
  }
  return pair
}
