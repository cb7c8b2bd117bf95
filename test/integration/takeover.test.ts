// Address takeover between two controller namespaces, seen from a host namespace: the new
// owner adds the service address with `ip addr`, announces it with gratuitous ARP, and nudges
// the host's idle connection so the host learns at once that it is dead.
import { afterEach, describe, expect, it } from 'vitest'
import { inCI, isRoot, missingTools } from '../helpers/tools.js'
import { createLab, type Lab } from '../helpers/netns.js'

const reason = (() => {
  if (!isRoot()) {
    if (inCI) throw new Error('the takeover tests need root (network namespaces)')
    return 'not root'
  }
  return missingTools('ip', 'arping')
})()

/** Echo server inside a namespace; resolves once it listens. */
function echoServer(lab: Lab, label: string, ip: string) {
  const child = lab.spawn(label, 'node', ['-e', `require('net').createServer(s=>{s.on('error',()=>{});s.on('data',d=>s.write(d))}).listen(3260,'${ip}',()=>console.log('up'))`])
  return { child, ready: new Promise<void>((res) => child.stdout!.once('data', () => res())) }
}

/** A host that connects, talks once, then idles; prints how long until its connection died. */
function idleClient(lab: Lab, ip: string) {
  const child = lab.spawn('h', 'node', ['-e', `
    const s=require('net').connect(3260,'${ip}',()=>s.write('hi'))
    s.once('data',()=>console.log('port '+s.localPort))
    s.on('error',()=>{})
    s.on('close',()=>{console.log('closed '+Date.now());process.exit(0)})
    setTimeout(()=>{console.log('alive');process.exit(0)},6000)`])
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  const port = new Promise<number>((res) => {
    const check = (): void => {
      const m = /port (\d+)/.exec(out)
      if (m) res(Number(m[1]))
      else setTimeout(check, 20)
    }
    check()
  })
  return { child, port, output: () => out }
}

describe.skipIf(reason)('service address takeover in network namespaces', () => {
  let lab: Lab | undefined
  afterEach(async () => {
    await lab?.destroy()
    lab = undefined
  })

  async function scenario(nudge: boolean): Promise<{ output: string; nudgedAt: number }> {
    lab = await createLab({ h: 2, a: 11, b: 12 })
    const vip = `${lab.subnet}.100`
    await lab.exec('a', 'ip', ['addr', 'add', `${vip}/24`, 'dev', lab.iface('a')])
    const server = echoServer(lab, 'a', vip)
    await server.ready
    const client = idleClient(lab, vip)
    const port = await client.port
    // Power off a: link cut and process killed in the same instant (no FIN reaches the host).
    await lab.link('a', false)
    server.child.kill('SIGKILL')
    // b takes the address over with the project's own takeover code.
    const script = `
      import { ServiceAddress, gratuitousArp, nudgeHostConnections } from '${process.cwd()}/dist/takeover/index.js'
      const addr = new ServiceAddress({ ip: '${vip}', interface: '${lab.iface('b')}', prefix: 24 })
      await addr.assume()
      console.log('held ' + await addr.isHeld())
      await gratuitousArp({ ip: '${vip}', interface: '${lab.iface('b')}', count: 1, intervalS: 0.2 })
      ${nudge ? `console.log(JSON.stringify(await nudgeHostConnections([{ local: '${vip}:3260', remote: '${lab.ip('h')}:${port}' }])))` : ''}
      console.log('nudged ' + Date.now())`
    const r = await lab.exec('b', 'node', ['--input-type=module', '-e', script])
    expect(r.stdout, r.stderr).toContain('held true')
    const nudgedAt = Number(/nudged (\d+)/.exec(r.stdout)?.[1])
    await client.child
    return { output: client.output(), nudgedAt }
  }

  it('resets the host connection at once when nudged', async () => {
    const { output, nudgedAt } = await scenario(true)
    const closedAt = Number(/closed (\d+)/.exec(output)?.[1])
    expect(output).not.toContain('alive')
    expect(closedAt - nudgedAt).toBeLessThan(1000)
  }, 30_000)

  it('leaves the host stuck on a dead connection without the nudge (the control)', async () => {
    const { output } = await scenario(false)
    expect(output).toContain('alive')
  }, 30_000)
})
