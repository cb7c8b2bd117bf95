// The CLI as a script or an operator sees it: help, exit codes, messages, the embedded default.
import { describe, expect, it } from 'vitest'
import { execa } from 'execa'
import { mkdtemp, rm, writeFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cli, freePort } from '../helpers/node-process.js'
import { missingTools } from '../helpers/tools.js'

async function iscsiHa(args: string[], cwd?: string) {
  const r = await execa('node', [cli, ...args], { reject: false, all: true, timeout: 30_000, ...(cwd ? { cwd } : {}) })
  // oclif wraps error messages to the terminal width with a ' ›' gutter: read them as one line.
  return { ...r, stderr: r.stderr.replace(/\n\s*›\s*/g, ' ') }
}

describe('iscsi-ha CLI', () => {
  it('lists its commands and has help for each', async () => {
    const top = await iscsiHa(['--help'])
    expect(top.exitCode).toBe(0)
    expect(top.stdout).toContain('node')
    const topic = await iscsiHa(['node', '--help'])
    expect(topic.stdout).toContain('node start')
    expect(topic.stdout).toContain('node status')
    for (const cmd of [['node', 'start'], ['node', 'status']]) {
      const r = await iscsiHa([...cmd, '--help'])
      expect(r.exitCode).toBe(0)
      expect(r.stdout).toContain('--json')
    }
  })

  it('refuses a bad config with exit 2, naming the file, line and field', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'iscsi-ha-cli-'))
    try {
      const file = join(dir, 'bad.yaml')
      await writeFile(file, [
        'targets:',
        '  - iqn: iqn.2026-11.io.iscsi-ha:x',
        '    luns:',
        '      - lun: 0',
        '        path: ./x.img',
        '        size: 12 parsecs',
        'nodes:',
        '  a:',
        '    portal: 127.0.0.1:3260',
      ].join('\n'))
      const r = await iscsiHa(['node', 'start', '--config', file])
      expect(r.exitCode).toBe(2)
      expect(r.stderr).toContain('bad.yaml:6')
      expect(r.stderr).toContain('targets[0].luns[0].size')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('says which node to pick when the config has two and none was named', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'iscsi-ha-cli-'))
    try {
      const file = join(dir, 'two.yaml')
      await writeFile(file, 'targets:\n  - iqn: iqn.2026-11.io.iscsi-ha:x\n    luns:\n      - lun: 0\n        path: ./x.img\n        size: 1MiB\nnodes:\n  a:\n    portal: 127.0.0.1:3260\n  b:\n    portal: 127.0.0.2:3260\n')
      const r = await iscsiHa(['node', 'start', '--config', file])
      expect(r.exitCode).toBe(2)
      expect(r.stderr).toMatch(/--node/)
      expect(r.stderr).toMatch(/\(a,\s+b\)/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('node status exits 3 naming the address when the node is not there', async () => {
    const port = await freePort()
    const r = await iscsiHa(['node', 'status', '--admin', `127.0.0.1:${port}`, '--timeout', '500'])
    expect(r.exitCode).toBe(3)
    expect(r.stderr).toContain(`127.0.0.1:${port}`)
    const j = await iscsiHa(['node', 'status', '--admin', `127.0.0.1:${port}`, '--timeout', '500', '--json'])
    expect(j.exitCode).toBe(3)
    expect(JSON.parse(j.stdout).error).toBeDefined()
  })

  const skip = missingTools('iscsi-inq')
  it.skipIf(skip)('starts the embedded default with no config and prints the URL to use', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'iscsi-ha-default-'))
    const child = execa('node', [cli, 'node', 'start'], { cwd: dir, reject: false, all: false, buffer: false })
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = ''
        const timer = setTimeout(() => reject(new Error('no URL printed in 20 s')), 20_000)
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString()
          const m = /iscsi:\/\/\S+/.exec(out)
          if (m) {
            clearTimeout(timer)
            resolve(m[0])
          }
        })
        void child.then((r) => reject(new Error(`node start exited ${r.exitCode}`)))
      })
      expect(url).toBe('iscsi://127.0.0.1:3260/iqn.2026-11.io.iscsi-ha:default/0')
      const inq = await execa('iscsi-readcapacity16', [url], { reject: false })
      expect(inq.stdout).toContain(`Total size:${1024 ** 3}`)
      const file = await stat(join(dir, 'iscsi-ha-data', 'lun0.img'))
      expect(file.size).toBe(1024 ** 3)
      expect(file.blocks * 512).toBeLessThan(16 * 1024 * 1024) // sparse
    } finally {
      child.kill('SIGTERM')
      const r = await child
      expect(r.exitCode).toBe(0)
      await rm(dir, { recursive: true, force: true })
    }
  })
})
