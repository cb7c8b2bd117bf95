// Several hosts on one machine: network namespaces on a bridge, made and torn down by the test.
// Addresses live only inside the namespaces (10.231.x.0/24, never routed anywhere).
import { execa, type ResultPromise } from 'execa'

let counter = 0

export interface Lab {
  prefix: string
  subnet: string
  /** The second network (peer link), when asked for. */
  subnet2: string
  /** Interface on the second network inside a host's namespace. */
  iface2(label: string): string
  ip2(label: string): string
  link2(label: string, up: boolean): Promise<void>
  /** Namespace name for a host label. */
  ns(label: string): string
  /** Interface name inside a host's namespace. */
  iface(label: string): string
  ip(label: string): string
  exec(label: string, cmd: string, args: string[], opts?: { timeout?: number }): Promise<{ exitCode: number | undefined; stdout: string; stderr: string }>
  spawn(label: string, cmd: string, args: string[], env?: Record<string, string>): ResultPromise
  /** Cut or restore a host's link (its veth end inside the namespace). */
  link(label: string, up: boolean): Promise<void>
  destroy(): Promise<void>
}

async function sh(args: string[]): Promise<void> {
  const r = await execa('ip', args, { reject: false })
  if (r.exitCode !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`)
}

/**
 * hosts: label → last octet of its own address. `second`: labels that also get an interface
 * on a second bridge (e.g. the controllers' peer link), so it can be cut on its own.
 */
export async function createLab(hosts: Record<string, number>, second: string[] = []): Promise<Lab> {
  const id = `${process.pid % 1000}${counter++}`
  const prefix = `ih${id}`
  const third = (process.pid + counter) % 100 + 20
  const subnet = `10.231.${third}`
  const subnet2 = `10.231.${third + 100}`
  const br = `${prefix}BR1`
  const br2 = `${prefix}BR2`
  const made: string[] = []
  const lab: Lab = {
    prefix,
    subnet,
    subnet2,
    iface2: () => 'eth1',
    ip2: (l) => `${subnet2}.${hosts[l]}`,
    link2: async (l, up) => sh(['-n', lab.ns(l), 'link', 'set', lab.iface2(l), up ? 'up' : 'down']),
    ns: (l) => `${prefix}${l}`,
    // Inside its namespace every host calls its interfaces eth0 and eth1, as machines do, so one
    // config file can name the service address's interface for both controllers.
    iface: () => 'eth0',
    ip: (l) => `${subnet}.${hosts[l]}`,
    exec: async (l, cmd, args, opts = {}) => {
      const r = await execa('ip', ['netns', 'exec', lab.ns(l), cmd, ...args], { reject: false, timeout: opts.timeout ?? 30_000 })
      return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) }
    },
    spawn: (l, cmd, args, env) =>
      execa('ip', ['netns', 'exec', lab.ns(l), cmd, ...args], { reject: false, buffer: false, stdin: 'ignore', env: { ...process.env, ...env } }),
    link: async (l, up) => sh(['-n', lab.ns(l), 'link', 'set', lab.iface(l), up ? 'up' : 'down']),
    destroy: async () => {
      for (const n of made) await execa('ip', ['netns', 'del', n], { reject: false })
      // Outer veth ends normally go with their namespaces; a half-built lab may leave some.
      for (const label of Object.keys(hosts)) {
        for (const end of [`${prefix}${label}p`, `${prefix}${label}r`, `${prefix}${label}i`, `${prefix}${label}j`]) {
          await execa('ip', ['link', 'del', end.slice(0, 15)], { reject: false })
        }
      }
      await execa('ip', ['link', 'del', br], { reject: false })
      await execa('ip', ['link', 'del', br2], { reject: false })
    },
  }
  try {
    await sh(['link', 'add', br, 'type', 'bridge'])
    await sh(['link', 'set', br, 'up'])
    for (const [label, octet] of Object.entries(hosts)) {
      const ns = lab.ns(label)
      const temp = `${prefix}${label}i`.slice(0, 15)
      const inner = lab.iface(label)
      const outer = `${prefix}${label}p`.slice(0, 15)
      await sh(['netns', 'add', ns])
      made.push(ns)
      await sh(['link', 'add', temp, 'type', 'veth', 'peer', 'name', outer])
      await sh(['link', 'set', outer, 'master', br, 'up'])
      await sh(['link', 'set', temp, 'netns', ns])
      await sh(['-n', ns, 'link', 'set', temp, 'name', inner])
      await sh(['-n', ns, 'link', 'set', 'lo', 'up'])
      await sh(['-n', ns, 'addr', 'add', `${subnet}.${octet}/24`, 'dev', inner])
      await sh(['-n', ns, 'link', 'set', inner, 'up'])
    }
    if (second.length > 0) {
      await sh(['link', 'add', br2, 'type', 'bridge'])
      await sh(['link', 'set', br2, 'up'])
      for (const label of second) {
        const ns = lab.ns(label)
        const temp = `${prefix}${label}j`.slice(0, 15)
        const inner = lab.iface2(label)
        const outer = `${prefix}${label}r`.slice(0, 15)
        await sh(['link', 'add', temp, 'type', 'veth', 'peer', 'name', outer])
        await sh(['link', 'set', outer, 'master', br2, 'up'])
        await sh(['link', 'set', temp, 'netns', ns])
        await sh(['-n', ns, 'link', 'set', temp, 'name', inner])
        await sh(['-n', ns, 'addr', 'add', `${subnet2}.${hosts[label]}/24`, 'dev', inner])
        await sh(['-n', ns, 'link', 'set', inner, 'up'])
      }
    }
  } catch (err) {
    await lab.destroy()
    throw err
  }
  return lab
}
