// `iscsi-ha demo`: a pair of controllers on loopback as two child processes, with a generated
// config in a data directory, their logs beside it, and a clean stop by pid.
import { execa } from 'execa'
import { randomBytes } from 'node:crypto'
import { accessSync, closeSync, constants, openSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { delimiter, isAbsolute, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { adminGetJson, fetchStatus } from '../admin/client.js'
import type { PeerStatusReport } from '../ha/status.js'
import { CommandFailure } from './failure.js'
import { EXIT } from './base.js'

export const DEMO = {
  iqn: 'iqn.2026-11.io.iscsi-ha:demo',
  service: '127.0.0.10:3260',
  nodes: {
    a: { portal: '127.0.0.1:3261', admin: '127.0.0.1:7361', peer: '127.0.0.1:7461' },
    b: { portal: '127.0.0.2:3261', admin: '127.0.0.1:7362', peer: '127.0.0.1:7462' },
  },
} as const
export type DemoNodeName = keyof typeof DEMO.nodes
const NAMES: DemoNodeName[] = ['a', 'b']

export function demoConfigYaml(secret: string): string {
  const node = (n: DemoNodeName): string[] => [`  ${n}:`, `    portal: ${DEMO.nodes[n].portal}`, `    admin: ${DEMO.nodes[n].admin}`, `    peer: ${DEMO.nodes[n].peer}`]
  return [
    '# Written by `iscsi-ha demo` (rewritten at each start). Paths are relative to this file.',
    'targets:', `  - iqn: ${DEMO.iqn}`, '    alias: demo', '    luns:',
    '      - lun: 0', '        path: ./lun0.img', '        size: 1GiB   # sparse: takes no space until written',
    'nodes:', ...node('a'), ...node('b'),
    'service:', `  address: ${DEMO.service}   # loopback: no interface, the primary listens on it`,
    `peer_secret: ${secret}`,
    'journal:', '  dir: ./journal   # the secondary persists its copies here (journal inspect --dir, replay --dir)', '',
  ].join('\n')
}

export interface DemoNode {
  name: DemoNodeName
  pid: number
  portal: string
  admin: string
  peer: string
  log: string
  role?: string
}

export interface DemoFacts {
  url: string
  config: string
  dataDir: string
  primary: DemoNodeName
  secondary: DemoNodeName
  nodes: DemoNode[]
  commands: { takeover: string; kill: string; peerStatus: string[]; journal: string }
}

/** How to run this CLI from a shell: `iscsi-ha` when on PATH, else node with the path of bin/run.js. */
export function cliInvocation(runJs: string): string {
  const onPath = (dir: string): boolean => {
    try {
      accessSync(join(dir, 'iscsi-ha'), constants.X_OK)
      return true
    } catch {
      return false
    }
  }
  return (process.env.PATH ?? '').split(delimiter).some((d) => d !== '' && onPath(d)) ? 'iscsi-ha' : `node ${shown(runJs)}`
}

function shown(path: string): string {
  const rel = relative(process.cwd(), path)
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path
}

/** Signal a child by pid; it may have exited a moment ago. */
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {
    // gone already
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export class DemoPair {
  private readonly children = new Map<DemoNodeName, { pid: number; done: Promise<void>; exited: boolean }>()
  private exitListeners: Array<(name: DemoNodeName, how: string) => void> = []
  private readonly killAll = (): void => {
    for (const c of this.children.values()) if (!c.exited) signal(c.pid, 'SIGKILL')
  }
  facts!: DemoFacts

  private constructor(readonly dataDir: string, readonly runJs: string) {}

  /**
   * Writes the config, starts both nodes, and waits until one is primary and the other
   * secondary. Resolves undefined (both stopped again) when `signal` aborts meanwhile.
   */
  static async start(opts: { dataDir: string; timeoutMs: number; signal: AbortSignal }): Promise<DemoPair | undefined> {
    const runJs = fileURLToPath(new URL('../../bin/run.js', import.meta.url))
    const pair = new DemoPair(resolve(opts.dataDir), runJs)
    await mkdir(pair.dataDir, { recursive: true })
    const config = join(pair.dataDir, 'cluster.yaml')
    await writeFile(config, demoConfigYaml(randomBytes(24).toString('base64url')), { mode: 0o600 })
    process.once('exit', pair.killAll)
    try {
      for (const name of NAMES) pair.spawn(name, config)
      const facts = await pair.waitForRoles(config, opts.timeoutMs, opts.signal)
      if (facts) pair.facts = facts
      else await pair.stop(2000)
      return facts ? pair : undefined
    } catch (err) {
      await pair.stop(2000)
      throw err
    }
  }

  private spawn(name: DemoNodeName, config: string): void {
    // execa's types list descriptors 3..9 only; at run time any open descriptor is handed to
    // spawn as is, so the child writes its log itself (it keeps logging if this process dies).
    const fd = openSync(this.logOf(name), 'w') as 3
    const start = () => execa(process.execPath, [this.runJs, 'node', 'start', '--config', config, '--node', name], {
      cwd: this.dataDir, stdin: 'ignore', stdout: fd, stderr: fd, detached: true, cleanup: false, reject: false,
    })
    let child: ReturnType<typeof start>
    try {
      child = start()
    } finally {
      closeSync(fd) // the child has its own copy
    }
    const entry = { pid: child.pid!, exited: false, done: Promise.resolve() }
    entry.done = child.then((r) => {
      entry.exited = true
      const how = r.signal ? `killed by ${r.signal}` : `exited with code ${r.exitCode ?? '?'}`
      for (const l of this.exitListeners) l(name, how)
    })
    this.children.set(name, entry)
  }

  logOf(name: DemoNodeName): string {
    return join(this.dataDir, `node-${name}.log`)
  }

  onExit(listener: (name: DemoNodeName, how: string) => void): void {
    this.exitListeners.push(listener)
  }

  get running(): DemoNodeName[] {
    return NAMES.filter((n) => this.children.get(n)?.exited === false)
  }

  private async waitForRoles(config: string, timeoutMs: number, signal: AbortSignal): Promise<DemoFacts | undefined> {
    const deadline = performance.now() + timeoutMs
    const roles: Partial<Record<DemoNodeName, PeerStatusReport>> = {}
    const ours = new Set<DemoNodeName>()
    for (;;) {
      if (signal.aborted) return undefined
      for (const n of NAMES) {
        const child = this.children.get(n)!
        if (child.exited) throw this.startFailure(`node ${n} stopped while starting`)
        // The admin address must be answered by our child, not by a controller already there.
        const pid = ours.has(n) ? child.pid : (await fetchStatus(DEMO.nodes[n].admin, { timeoutMs: 1000 }).catch(() => undefined))?.pid
        if (pid === undefined) continue
        if (pid !== child.pid) throw this.startFailure(`${DEMO.nodes[n].admin} is answered by another process (pid ${pid})`)
        ours.add(n)
        roles[n] = (await adminGetJson(DEMO.nodes[n].admin, '/v1/peer', { timeoutMs: 1000 }).catch(() => undefined)) as PeerStatusReport | undefined
      }
      const primary = NAMES.find((n) => roles[n]?.role === 'primary' && roles[n]?.serving)
      const secondary = NAMES.find((n) => n !== primary && roles[n]?.role === 'secondary')
      if (primary && secondary) return this.factsOf(config, primary, secondary)
      if (performance.now() > deadline) {
        throw this.startFailure(`the pair did not settle within ${timeoutMs} ms (a: ${roles.a?.role ?? 'no answer'}, b: ${roles.b?.role ?? 'no answer'})`)
      }
      await sleep(100)
    }
  }

  private startFailure(what: string): CommandFailure {
    const tails = NAMES.flatMap((n) => {
      let lines: string[] = []
      try {
        lines = readFileSync(this.logOf(n), 'utf8').trimEnd().split('\n').filter((l) => l !== '').slice(-3)
      } catch {
        // no log
      }
      return lines.length ? [`  ${shown(this.logOf(n))}:\n${lines.map((l) => `    ${l}`).join('\n')}`] : []
    })
    const logs = tails.length ? ` Last log lines:\n${tails.join('\n')}` : ''
    return new CommandFailure(EXIT.environment, `demo: ${what}. Are the demo's addresses free (another demo running)?${logs}`, 'DEMO_START_FAILED')
  }

  private factsOf(config: string, primary: DemoNodeName, secondary: DemoNodeName): DemoFacts {
    const bin = cliInvocation(this.runJs)
    const cfg = shown(config)
    return {
      url: `iscsi://${DEMO.service}/${DEMO.iqn}/0`,
      config, dataDir: this.dataDir, primary, secondary,
      nodes: NAMES.map((n) => ({ name: n, pid: this.children.get(n)!.pid, ...DEMO.nodes[n], log: this.logOf(n), role: n === primary ? 'primary' : 'secondary' })),
      commands: {
        takeover: `${bin} takeover --config ${cfg} --to ${secondary}`,
        kill: `kill -9 ${this.children.get(primary)!.pid}`,
        peerStatus: NAMES.map((n) => `${bin} peer status --config ${cfg} --node ${n}`),
        journal: `${bin} journal inspect --config ${cfg} --node ${secondary}`,
      },
    }
  }

  /** SIGTERM by pid (the secondary first, so the primary is not taken over), SIGKILL after the timeout. */
  async stop(timeoutMs: number): Promise<void> {
    const order = this.facts ? [this.facts.secondary, this.facts.primary] : NAMES
    for (const n of order) {
      const c = this.children.get(n)
      if (!c || c.exited) continue
      signal(c.pid, 'SIGTERM')
      let timer: NodeJS.Timeout | undefined
      const stopped = await Promise.race([c.done.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)))])
      clearTimeout(timer)
      if (!stopped && !c.exited) {
        signal(c.pid, 'SIGKILL')
        await c.done
      }
    }
    process.off('exit', this.killAll)
  }
}

export function demoLines(f: DemoFacts): string[] {
  const node = (n: DemoNode): string => `  ${n.name}  ${(n.role ?? '').padEnd(9)}  pid ${String(n.pid).padEnd(7)} portal ${n.portal}  admin ${n.admin}  log ${shown(n.log)}`
  return [
    'A pair of controllers runs on loopback:',
    ...f.nodes.map(node),
    '',
    `Connect to:  ${f.url}`,
    `  e.g.  qemu-img info ${f.url}`,
    '',
    'Fail over, planned (the host sees a short pause, no error):',
    `  ${f.commands.takeover}`,
    `or the primary dies (${f.secondary} takes over by itself):`,
    `  ${f.commands.kill}`,
    'Look at the pair and the journal:',
    ...f.commands.peerStatus.map((c) => `  ${c}`),
    `  ${f.commands.journal}`,
    '',
    `Config and data in ${shown(f.dataDir)}. Ctrl-C stops both controllers.`,
  ]
}
