// The standalone target driven by real, independent initiators: libiscsi's tools and QEMU.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execa } from 'execa'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { missingTools } from '../helpers/tools.js'
import { cli, startNode, type RunningNode } from '../helpers/node-process.js'
import { fetchMetrics } from '../../src/admin/client.js'

const skip = missingTools('iscsi-ls', 'iscsi-inq', 'iscsi-readcapacity16', 'qemu-img')

async function run(cmd: string, args: string[], timeout = 60_000) {
  return execa(cmd, args, { reject: false, timeout, all: true })
}

describe.skipIf(skip)('libiscsi and QEMU against a node', () => {
  let node: RunningNode
  beforeAll(async () => {
    node = await startNode({ sizeMiB: 128, iqn: 'iqn.2026-11.io.iscsi-ha:clients' })
  })
  afterAll(async () => {
    await node?.cleanup()
  })

  it('iscsi-ls discovers the target with its portal and LUN size', async () => {
    const r = await run('iscsi-ls', ['-s', `iscsi://${node.portal}`])
    expect(r.exitCode, r.all).toBe(0)
    expect(r.stdout).toContain(`Target:${node.iqn} Portal:${node.portal},1`)
    expect(r.stdout).toMatch(/Lun:0\s+Type:DIRECT_ACCESS \(Size:127M\)/)
  })

  it('iscsi-inq reports the standard data and the identification VPD pages', async () => {
    const std = await run('iscsi-inq', [node.url()])
    expect(std.exitCode, std.all).toBe(0)
    expect(std.stdout).toContain('Vendor:ISCSI-HA')
    expect(std.stdout).toContain('Peripheral Device Type:DIRECT_ACCESS')
    const serial = await run('iscsi-inq', ['-e', '1', '-c', '128', node.url()])
    expect(serial.stdout).toMatch(/Unit Serial Number:\[[0-9A-F]{16}\]/)
    const ids = await run('iscsi-inq', ['-e', '1', '-c', '131', node.url()])
    expect(ids.stdout).toContain('Designator Type:(3) NAA')
    expect(ids.stdout).toContain(`Designator:[${node.iqn},t,0x0001]`)
  })

  it('iscsi-readcapacity16 reports the configured size', async () => {
    const r = await run('iscsi-readcapacity16', [node.url()])
    expect(r.exitCode, r.all).toBe(0)
    expect(r.stdout).toContain(`Total size:${128 * 1024 * 1024}`)
    expect(r.stdout).toContain('LOGICAL BLOCK LENGTH IN BYTES:512')
  })

  it('64 MiB written with qemu-img convert reads back equal with qemu-img compare', async () => {
    const file = join(node.dir, 'random.img')
    await writeFile(file, randomBytes(64 * 1024 * 1024))
    const w = await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', file, node.url()], 120_000)
    expect(w.exitCode, w.all).toBe(0)
    const c = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', file, node.url()], 120_000)
    expect(c.exitCode, c.all).toBe(0)
    expect(c.stdout).toContain('Images are identical')
    // And a corrupted copy is told apart: the comparison can fail.
    const other = join(node.dir, 'other.img')
    const bytes = randomBytes(64 * 1024 * 1024)
    await writeFile(other, bytes)
    const bad = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', other, node.url()], 120_000)
    expect(bad.exitCode).toBe(1)
  }, 240_000)

  it('qemu-img bench writes and reads 4 KiB at queue depth 32', async () => {
    for (const mode of [['-w'], []]) {
      const count = 20000
      const r = await run('qemu-img', ['bench', '-f', 'raw', '-t', 'none', '-n', '-c', String(count), '-d', '32', '-s', '4096', ...mode, node.url()], 120_000)
      expect(r.exitCode, r.all).toBe(0)
      const secs = Number(/Run completed in ([\d.]+) seconds/.exec(r.stdout)?.[1])
      expect(secs).toBeGreaterThan(0)
      console.log(`qemu-img bench 4K QD32 ${mode.length ? 'write' : 'read'}: ${Math.round(count / secs)} IOPS`)
    }
  }, 240_000)

  it('counts the I/O in node status and in Prometheus metrics', async () => {
    const r = await run('node', [cli, 'node', 'status', '--admin', node.admin, '--json'])
    expect(r.exitCode, r.all).toBe(0)
    const status = JSON.parse(r.stdout) as {
      counters: { writeOps: number; readOps: number; writeBytes: number }
      targets: Array<{ iqn: string; luns: Array<{ serial: string; io: { mode: string; inlineOps: number; threadPoolOps: number } }> }>
    }
    expect(status.targets[0]!.iqn).toBe(node.iqn)
    // The LUN file is on a local file system: its 4 KiB requests ran inline (storage/inline-io.ts).
    const io = status.targets[0]!.luns[0]!.io
    expect(io.mode).toBe('auto')
    expect(io.inlineOps).toBeGreaterThan(20000)
    expect(status.counters.writeOps).toBeGreaterThan(20000)
    expect(status.counters.writeBytes).toBeGreaterThanOrEqual(64 * 1024 * 1024)
    const text = await fetchMetrics(node.admin)
    expect(text).toMatch(/iscsi_ha_scsi_commands_total\{op="write"\} \d{5,}/)
    expect(text).toContain('iscsi_ha_scsi_command_seconds_bucket')
    expect(text).toMatch(/iscsi_ha_storage_requests_total\{target="[^"]+",lun="0",where="inline"\} \d{5,}/)
    expect(text).toMatch(/iscsi_ha_storage_inline_backoffs_total\{target="[^"]+",lun="0"\} \d+/)
    const table = await run('node', [cli, 'node', 'status', '--admin', node.admin])
    expect(table.stdout).toContain(status.targets[0]!.luns[0]!.serial)
    expect(table.stdout).toMatch(/auto\/(inline|pool)/)
  })

  it('answers a LUN that does not exist with LOGICAL UNIT NOT SUPPORTED', async () => {
    // libiscsi sends TEST UNIT READY right after login; the sense names the problem.
    const r = await run('iscsi-inq', [node.url(5)])
    expect(r.exitCode).not.toBe(0)
    expect(r.all).toContain('LOGICAL_UNIT_NOT_SUPPORTED')
  })
})

describe.skipIf(skip)('CHAP', () => {
  let node: RunningNode
  beforeAll(async () => {
    node = await startNode({
      iqn: 'iqn.2026-11.io.iscsi-ha:chap',
      targetExtra: '    chap:\n      user: alice\n      secret: a-12-char-secret',
    })
  })
  afterAll(async () => {
    await node?.cleanup()
  })

  it('logs in with the right secret', async () => {
    const r = await run('iscsi-inq', [node.url(0, 'alice%a-12-char-secret')])
    expect(r.exitCode, r.all).toBe(0)
    expect(r.stdout).toContain('Vendor:ISCSI-HA')
  })

  it('refuses a wrong secret, a wrong user and no secret at all', async () => {
    for (const auth of ['alice%wrong-secret-123', 'mallory%a-12-char-secret', undefined]) {
      const r = await run('iscsi-inq', [node.url(0, auth)])
      expect(r.exitCode, `${auth}: ${r.all}`).not.toBe(0)
      expect(r.stdout).not.toContain('Vendor:ISCSI-HA')
    }
    expect(node.logs.filter((l) => l.includes('"msg":"login refused"')).length).toBeGreaterThanOrEqual(3)
  })
})

describe.skipIf(skip)('mutual CHAP with libiscsi', () => {
  let node: RunningNode
  beforeAll(async () => {
    node = await startNode({
      iqn: 'iqn.2026-11.io.iscsi-ha:mutual',
      targetExtra: '    chap:\n      user: alice\n      secret: a-12-char-secret\n      mutual_user: disk-target\n      mutual_secret: the-target-secret',
    })
  })
  afterAll(async () => {
    await node?.cleanup()
  })

  const withTarget = (password: string) =>
    execa('iscsi-inq', [node.url(0, 'alice%a-12-char-secret')], {
      reject: false, all: true, timeout: 30_000,
      env: { LIBISCSI_CHAP_TARGET_USERNAME: 'disk-target', LIBISCSI_CHAP_TARGET_PASSWORD: password },
    })

  it('logs in when the target proves the mutual secret', async () => {
    const r = await withTarget('the-target-secret')
    expect(r.exitCode, r.all).toBe(0)
    expect(r.stdout).toContain('Vendor:ISCSI-HA')
  })

  it('is refused by the initiator when it expects another target secret', async () => {
    const r = await withTarget('not-the-target-secret')
    expect(r.exitCode).not.toBe(0)
    expect(r.stdout).not.toContain('Vendor:ISCSI-HA')
  })
})

describe.skipIf(skip)('digests', () => {
  let node: RunningNode
  beforeAll(async () => {
    node = await startNode({
      iqn: 'iqn.2026-11.io.iscsi-ha:digest',
      // libiscsi's tools offer HeaderDigest=None,CRC32C and DataDigest=None: a target that
      // accepts only CRC32C headers picks it from the list.
      extra: 'iscsi:\n  header_digest: [CRC32C]',
    })
  })
  afterAll(async () => {
    await node?.cleanup()
  })

  it('serves a session with a CRC32C header digest', async () => {
    const file = join(node.dir, 'd.img')
    await writeFile(file, randomBytes(4 * 1024 * 1024))
    const w = await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', file, node.url()])
    expect(w.exitCode, w.all).toBe(0)
    const c = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', file, node.url()])
    expect(c.stdout).toContain('Images are identical')
    const up = node.logs.filter((l) => l.includes('"msg":"session up"') && l.includes('"type":"Normal"'))
    expect(up.length).toBeGreaterThan(0)
    for (const line of up) {
      expect(line).toContain('"headerDigest":true')
    }
  })
})

describe.skipIf(skip)('lifecycle', () => {
  it('keeps the device identity across restarts and stops cleanly on SIGTERM', async () => {
    const serialOf = async (n: RunningNode): Promise<string> => {
      const r = await run('iscsi-inq', ['-e', '1', '-c', '128', n.url()])
      return /Unit Serial Number:\[([0-9A-F]+)\]/.exec(r.stdout)?.[1] ?? ''
    }
    const a = await startNode({ iqn: 'iqn.2026-11.io.iscsi-ha:ident' })
    const first = await serialOf(a)
    expect(await a.stop('SIGTERM')).toBe(0)
    expect(a.logs.some((l) => l.includes('"msg":"node stopped"'))).toBe(true)
    await a.cleanup()
    const b = await startNode({ iqn: 'iqn.2026-11.io.iscsi-ha:ident' })
    const again = await serialOf(b)
    await b.cleanup()
    const c = await startNode({ iqn: 'iqn.2026-11.io.iscsi-ha:other' })
    const different = await serialOf(c)
    await c.cleanup()
    expect(first).toMatch(/^[0-9A-F]{16}$/)
    expect(again).toBe(first)
    expect(different).not.toBe(first)
  }, 60_000)
})
