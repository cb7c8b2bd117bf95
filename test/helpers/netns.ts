// Several hosts on one machine: network namespaces on a bridge, made and torn down by the test.
// Addresses live only inside the namespaces (10.231.x.0/24, never routed anywhere).
import { execa, type ResultPromise } from 'execa'

let counter = 0

export interface Lab {
  prefix: string
  subnet: string
  /** Namespace name for a host label. */
  ns(label: string): string
  /** Interface name inside a host's namespace. */
  iface(label: string): string
  ip(label: string): string
  exec(label: string, cmd: string, args: string[], opts?: { timeout?: number }): Promise<{ exitCode: number | undefined; stdout: string; stderr: string }>
  spawn(label: string, cmd: string, args: string[]): ResultPromise
  /** Cut or restore a host's link (its veth end inside the namespace). */
  link(label: string, up: boolean): Promise<void>
  destroy(): Promise<void>
}

async function sh(args: string[]): Promise<void> {
  const r = await execa('ip', args, { reject: false })
  if (r.exitCode !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`)
}

/** hosts: label → last octet of its own address. */
export async function createLab(hosts: Record<string, number>): Promise<Lab> {
  const id = `${process.pid % 1000}${counter++}`
  const prefix = `ih${id}`
  const subnet = `10.231.${(process.pid + counter) % 200 + 20}`
  const br = `${prefix}br`
  const made: string[] = []
  const lab: Lab = {
    prefix,
    subnet,
    ns: (l) => `${prefix}${l}`,
    iface: (l) => `${prefix}${l}`.slice(0, 15),
    ip: (l) => `${subnet}.${hosts[l]}`,
    exec: async (l, cmd, args, opts = {}) => {
      const r = await execa('ip', ['netns', 'exec', lab.ns(l), cmd, ...args], { reject: false, timeout: opts.timeout ?? 30_000 })
      return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) }
    },
    spawn: (l, cmd, args) => execa('ip', ['netns', 'exec', lab.ns(l), cmd, ...args], { reject: false, buffer: false, stdin: 'ignore' }),
    link: async (l, up) => sh(['-n', lab.ns(l), 'link', 'set', lab.iface(l), up ? 'up' : 'down']),
    destroy: async () => {
      for (const n of made) await execa('ip', ['netns', 'del', n], { reject: false })
      await execa('ip', ['link', 'del', br], { reject: false })
    },
  }
  try {
    await sh(['link', 'add', br, 'type', 'bridge'])
    await sh(['link', 'set', br, 'up'])
    for (const [label, octet] of Object.entries(hosts)) {
      const ns = lab.ns(label)
      const inner = lab.iface(label)
      const outer = `${prefix}${label}p`.slice(0, 15)
      await sh(['netns', 'add', ns])
      made.push(ns)
      await sh(['link', 'add', inner, 'type', 'veth', 'peer', 'name', outer])
      await sh(['link', 'set', outer, 'master', br, 'up'])
      await sh(['link', 'set', inner, 'netns', ns])
      await sh(['-n', ns, 'link', 'set', 'lo', 'up'])
      await sh(['-n', ns, 'addr', 'add', `${subnet}.${octet}/24`, 'dev', inner])
      await sh(['-n', ns, 'link', 'set', inner, 'up'])
    }
  } catch (err) {
    await lab.destroy()
    throw err
  }
  return lab
}
