// The HA operator commands against real controllers: demo, journal inspect, takeover, replay.
// A loopback pair of `node start` processes (service address 127.0.0.41, ports picked free),
// stopped by pid in afterAll; `demo` runs on its own fixed addresses.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execa, type ResultPromise } from 'execa'
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cli, freePort } from '../helpers/node-process.js'
import { Journal } from '../../src/journal/index.js'
import { crc32c } from '../../src/wire/digest.js'
import type { PeerStatusReport } from '../../src/ha/status.js'

const IQN = 'iqn.2026-11.io.iscsi-ha:hacmd'
const SERVICE_HOST = '127.0.0.41'

async function iscsiHa(args: string[], opts: { timeout?: number } = {}) {
  const r = await execa('node', [cli, ...args], { reject: false, stdin: 'ignore', timeout: opts.timeout ?? 30_000 })
  // oclif wraps error messages to the terminal width with a ' ›' gutter: read them as one line.
  return { ...r, stderr: r.stderr.replace(/\n\s*›\s*/g, ' ').replace(/\s+/g, ' ') }
}

async function peerOf(admin: string): Promise<PeerStatusReport | undefined> {
  try {
    const res = await fetch(`http://${admin}/v1/peer`, { signal: AbortSignal.timeout(1000) })
    return (await res.json()) as PeerStatusReport
  } catch {
    return undefined
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** A journal with three copies of 8 KiB at 8 KiB, 16 KiB, 24 KiB (bytes 0x41, 0x42, 0x43). */
async function writeJournal(dir: string): Promise<void> {
  const j = await Journal.open(dir)
  for (let i = 1; i <= 3; i++) {
    const data = Buffer.alloc(8192, 0x40 + i)
    await j.add({
      seq: i, epoch: 4, key: { target: IQN, lun: 0 }, offset: i * 8192, data, checksum: crc32c(data),
      initiator: 'iqn.1993-08.org.debian:01:host1', isid: '023d00000001', itt: 0x100 + i, receivedAtMs: Date.now() - 2000,
    })
  }
  await j.close()
}

describe('HA commands', () => {
  let dir = ''
  let config = ''
  const admin: Record<string, string> = {}
  const nodes: Array<{ pid: number; exit: ResultPromise }> = []

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'iscsi-ha-hacmd-'))
    config = join(dir, 'cluster.yaml')
    const port = (host: string) => freePort(host)
    const [pa, pb, aa, ab, qa, qb, svc] = await Promise.all([port('127.0.0.1'), port('127.0.0.2'), port('127.0.0.1'), port('127.0.0.1'), port('127.0.0.1'), port('127.0.0.1'), port(SERVICE_HOST)])
    admin.a = `127.0.0.1:${aa}`
    admin.b = `127.0.0.1:${ab}`
    await writeFile(config, [
      'targets:', `  - iqn: ${IQN}`, '    luns:', '      - lun: 0', '        path: ./lun0.img', '        size: 64MiB', '        block_size: 4096',
      'nodes:',
      '  a:', `    portal: 127.0.0.1:${pa}`, `    admin: ${admin.a}`, `    peer: 127.0.0.1:${qa}`,
      '  b:', `    portal: 127.0.0.2:${pb}`, `    admin: ${admin.b}`, `    peer: 127.0.0.1:${qb}`,
      'service:', `  address: ${SERVICE_HOST}:${svc}`,
      'peer_secret: a-test-secret-of-enough-bytes',
      'journal:', '  dir: ./journal', '',
    ].join('\n'))
    for (const name of ['a', 'b']) {
      const exit = execa('node', [cli, 'node', 'start', '--config', config, '--node', name], { cwd: dir, reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' })
      nodes.push({ pid: exit.pid!, exit })
    }
    await until('a primary and a secondary', async () => {
      const roles = [(await peerOf(admin.a!))?.role, (await peerOf(admin.b!))?.role].sort()
      return roles[0] === 'primary' && roles[1] === 'secondary' ? true : undefined
    })
  })

  afterAll(async () => {
    for (const n of nodes) if (alive(n.pid)) process.kill(n.pid, 'SIGTERM')
    await Promise.all(nodes.map((n) => n.exit))
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  const roleOf = async (name: string) => (await peerOf(admin[name]!))?.role
  const secondaryName = async () => ((await roleOf('a')) === 'secondary' ? 'a' : 'b')

  it('journal inspect reads a running secondary, as JSON and as a table', async () => {
    const sec = await secondaryName()
    const j = await iscsiHa(['journal', 'inspect', '--config', config, '--node', sec, '--json'])
    expect(j.exitCode, j.stderr).toBe(0)
    const report = JSON.parse(j.stdout) as { source: { kind: string; node: string; role: string }; stats: { entries: number; bytes: number }; blockSizes: string; entries: unknown[] }
    expect(report.source).toMatchObject({ kind: 'node', node: sec, role: 'secondary', admin: admin[sec] })
    expect(report.stats).toMatchObject({ entries: expect.any(Number), bytes: expect.any(Number) })
    expect(report.blockSizes).toBe('config')
    expect(Array.isArray(report.entries)).toBe(true)
    const t = await iscsiHa(['journal', 'inspect', '--admin', admin[sec]!])
    expect(t.exitCode, t.stderr).toBe(0)
    expect(t.stdout).toMatch(new RegExp(`^node ${sec} \\(secondary\\) at ${admin[sec]}: \\d+ committed-not-completed`))
    const down = await iscsiHa(['journal', 'inspect', '--admin', `127.0.0.1:${await freePort()}`])
    expect(down.exitCode).toBe(3)
  })

  it('journal inspect reads a persisted journal directory in blocks of the LUN', async () => {
    const jdir = join(dir, 'inspect-journal')
    await writeJournal(join(jdir, 'b'))
    const j = await iscsiHa(['journal', 'inspect', '--dir', jdir, '--config', config, '--json', '--limit', '2'])
    expect(j.exitCode, j.stderr).toBe(0)
    const report = JSON.parse(j.stdout) as { source: { kind: string; dir: string }; stats: { entries: number; bytes: number }; entries: Array<Record<string, unknown>> }
    expect(report.source).toEqual({ kind: 'dir', dir: join(jdir, 'b') })
    expect(report.stats).toMatchObject({ entries: 3, bytes: 3 * 8192, oldestSeq: 1 })
    expect(report.entries).toHaveLength(2)
    expect(report.entries[0]).toMatchObject({ seq: 1, epoch: 4, target: IQN, lun: 0, offset: 8192, bytes: 8192, lba: 2, blocks: 2, blockSize: 4096, initiator: 'iqn.1993-08.org.debian:01:host1', itt: 0x101 })
    const t = await iscsiHa(['journal', 'inspect', '--dir', join(jdir, 'b')])
    expect(t.exitCode, t.stderr).toBe(0)
    expect(t.stdout).toContain('3 committed-not-completed copies, 24 KiB')
    expect(t.stdout).toMatch(/SEQ\s+EPOCH\s+LUN\s+LBA\s+BLOCKS\s+AGE\s+INITIATOR\s+ITT/)
    expect(t.stdout).toMatch(/\n1\s+4\s+0\s+16\s+16\s+\d/) // 512-byte blocks without --config
    expect((await iscsiHa(['journal', 'inspect', '--dir', join(dir, 'nothing-here')])).exitCode).toBe(2)
  })

  it('takeover --to the secondary moves the primary, and peer status agrees', async () => {
    const to = await secondaryName()
    const other = to === 'a' ? 'b' : 'a'
    const r = await iscsiHa(['takeover', '--config', config, '--to', to, '--json'])
    expect(r.exitCode, r.stderr).toBe(0)
    const result = JSON.parse(r.stdout) as Record<string, unknown>
    expect(result).toMatchObject({ node: to, changed: true, role: 'primary', kind: 'planned', replayed: 0 })
    expect(result.pauseMs).toEqual(expect.any(Number))
    const s = await iscsiHa(['peer', 'status', '--config', config, '--node', to, '--json'])
    expect(JSON.parse(s.stdout)).toMatchObject({ node: to, role: 'primary', serving: true, serviceAddress: { heldHere: true } })
    expect(await until(`${other} secondary`, async () => ((await roleOf(other)) === 'secondary' ? true : undefined))).toBe(true)
    const again = await iscsiHa(['takeover', '--config', config, '--to', to])
    expect(again.exitCode).toBe(0)
    expect(again.stdout).toContain('already primary')
    // Accepted but not seen finished within --timeout: exit 1 (the switchover still happens).
    const late = await iscsiHa(['takeover', '--config', config, '--to', other, '--timeout', '1'])
    expect(late.exitCode, late.stderr).toBe(1)
    expect(late.stderr).toContain('not serving as primary after 1 ms')
    await until(`${other} primary again`, async () => ((await roleOf(other)) === 'primary' && (await roleOf(to)) === 'secondary' ? true : undefined))
  })

  it('takeover --force without --yes and without a terminal refuses with exit 2', async () => {
    const to = await secondaryName()
    const r = await iscsiHa(['takeover', '--config', config, '--to', to, '--force'])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toContain('--yes')
    const j = await iscsiHa(['takeover', '--config', config, '--to', to, '--force', '--json'])
    expect(j.exitCode).toBe(2)
    expect(JSON.parse(j.stdout)).toMatchObject({ error: { exit: 2, code: 'CONFIRMATION_NEEDED' } })
    expect(await roleOf(to)).toBe('secondary')
  })

  it('replay on a running secondary is refused while its partner serves', async () => {
    const r = await iscsiHa(['replay', '--config', config, '--node', await secondaryName()])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toContain('serving as primary')
  })

  it('replay --dir completes a journal onto the LUN file offline, and refuses while the journal is locked', async () => {
    const off = join(dir, 'offline')
    const offConfig = join(off, 'cluster.yaml')
    await writeJournal(join(off, 'journal', 'b'))
    await writeFile(offConfig, `targets:\n  - iqn: ${IQN}\n    luns:\n      - lun: 0\n        path: ./lun0.img\n        size: 1MiB\nnodes:\n  b:\n    portal: 127.0.0.1:3260\n`)
    await writeFile(join(off, 'lun0.img'), Buffer.alloc(1024 * 1024))
    const args = ['replay', '--dir', join(off, 'journal'), '--config', offConfig]

    const held = await Journal.open(join(off, 'journal', 'b')) // this process holds the lock
    const locked = await iscsiHa([...args, '--yes'])
    await held.close()
    expect(locked.exitCode).toBe(2)
    expect(locked.stderr).toContain(`in use by process ${process.pid}`)

    const unconfirmed = await iscsiHa(args)
    expect(unconfirmed.exitCode).toBe(2)
    expect(unconfirmed.stderr).toContain('--yes')
    expect((await readFile(join(off, 'lun0.img'))).subarray(8192, 16384).every((b) => b === 0)).toBe(true)

    const r = await iscsiHa([...args, '--yes', '--json'])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ mode: 'offline', replayed: 3, bytes: 3 * 8192 })
    const lun = await open(join(off, 'lun0.img'))
    const got = Buffer.alloc(4 * 8192)
    await lun.read(got, 0, got.length, 0)
    await lun.close()
    expect(got.subarray(0, 8192).every((b) => b === 0)).toBe(true)
    for (let i = 1; i <= 3; i++) expect(got.subarray(i * 8192, (i + 1) * 8192).every((b) => b === 0x40 + i)).toBe(true)
    const after = await iscsiHa(['journal', 'inspect', '--dir', join(off, 'journal'), '--json'])
    expect(JSON.parse(after.stdout)).toMatchObject({ stats: { entries: 0 } })
  })
})

describe('iscsi-ha demo', () => {
  it('starts a pair, prints the URL, refuses a second demo, and stops both controllers on SIGTERM', async () => {
    const data = await mkdtemp(join(tmpdir(), 'iscsi-ha-demo-test-'))
    const demo = execa('node', [cli, 'demo', '--data-dir', data, '--json'], { reject: false, stdin: 'ignore', buffer: false })
    try {
      const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
        let out = ''
        demo.stdout!.on('data', (chunk: Buffer) => {
          out += chunk.toString()
          const nl = out.indexOf('\n')
          if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as Record<string, unknown>)
        })
        void demo.then((r) => reject(new Error(`demo exited with ${r.exitCode} before it was ready`)))
      })
      expect(ready).toMatchObject({ event: 'ready', url: 'iscsi://127.0.0.10:3260/iqn.2026-11.io.iscsi-ha:demo/0' })
      const facts = ready as { primary: string; secondary: string; nodes: Array<{ name: string; pid: number; admin: string; log: string }>; commands: { takeover: string; kill: string } }
      expect(facts.commands.takeover).toMatch(new RegExp(`takeover --config \\S+cluster\\.yaml --to ${facts.secondary}$`))
      const pids = facts.nodes.map((n) => n.pid)
      expect(facts.commands.kill).toBe(`kill -9 ${facts.nodes.find((n) => n.name === facts.primary)!.pid}`)
      for (const n of facts.nodes) {
        expect((await peerOf(n.admin))?.role).toBe(n.name === facts.primary ? 'primary' : 'secondary')
        expect(n.log.startsWith(data)).toBe(true)
      }
      expect(pids.every(alive)).toBe(true)
      // A second demo finds the addresses taken: it says so instead of reporting the first one's pair.
      const second = await iscsiHa(['demo', '--data-dir', join(data, 'second')])
      expect(second.exitCode).toBe(3)
      expect(second.stderr).toContain('is answered by another process')
      expect(second.stdout).not.toContain('Connect to')
      process.kill(demo.pid!, 'SIGTERM')
      const r = await demo
      expect(r.exitCode).toBe(0)
      expect(pids.some(alive)).toBe(false)
    } finally {
      if (demo.exitCode === null) demo.kill('SIGTERM') // the demo stops its controllers itself
      await demo
      await rm(data, { recursive: true, force: true })
    }
  })
})
