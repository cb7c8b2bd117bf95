// `iscsi-ha node reload` (and SIGHUP) against a real node process: a LUN grown in the config is
// served at its new size without a restart, the connected host is told through a unit
// attention CAPACITY DATA HAS CHANGED (2Ah/09h), a shrink is refused naming the field, and a
// config with a mistake exits 2 with file:line while the node keeps serving.
import { execa } from 'execa'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { missingTools } from '../helpers/tools.js'
import { cli, startNode, type RunningNode } from '../helpers/node-process.js'
import {
  IscsiInitiatorConnection,
  SCSI_CHECK_CONDITION,
  SCSI_GOOD,
  cdbRead16,
  cdbReadCapacity16,
  cdbTestUnitReady,
  cdbWrite16,
  parseReadCapacity16,
} from '../../src/initiator/index.js'
import type { ReloadReport } from '../../src/admin/reload-report.js'

const MiB = 1024 * 1024
const noLibiscsi = missingTools('iscsi-readcapacity16')

function hostPort(portal: string): { host: string; port: number } {
  const i = portal.lastIndexOf(':')
  return { host: portal.slice(0, i), port: Number(portal.slice(i + 1)) }
}

async function reload(args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa('node', [cli, 'node', 'reload', ...args], { reject: false, timeout: 60_000 })
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr }
}

describe('node reload grows a LUN live', () => {
  let node: RunningNode
  let conn: IscsiInitiatorConnection
  let original: string

  /** The config file with its LUN size (and anything else) replaced. */
  async function edit(from: RegExp, to: string): Promise<void> {
    const text = await readFile(node.configPath, 'utf8')
    expect(text).toMatch(from)
    await writeFile(node.configPath, text.replace(from, to))
  }

  async function capacityBytes(): Promise<number> {
    const r = await conn.scsi(cdbReadCapacity16(32), { readLength: 32 })
    expect(r.status).toBe(SCSI_GOOD)
    const cap = parseReadCapacity16(r.data!)
    return Number(cap.blocks) * cap.blockSize
  }

  /** The next command of the existing session: CHECK CONDITION, UNIT ATTENTION 2Ah/09h. */
  async function expectCapacityChangedAttention(): Promise<void> {
    const r = await conn.scsi(cdbTestUnitReady())
    expect(r.status).toBe(SCSI_CHECK_CONDITION)
    expect(r.sense).toMatchObject({ key: 0x06, asc: 0x2a, ascq: 0x09 })
  }

  beforeAll(async () => {
    node = await startNode({ sizeMiB: 64, iqn: 'iqn.2026-11.io.iscsi-ha:reload' })
    original = await readFile(node.configPath, 'utf8')
    conn = new IscsiInitiatorConnection({ ...hostPort(node.portal), initiatorName: 'iqn.2026-11.io.iscsi-ha:reload-host', targetName: node.iqn })
    await conn.connect()
    await conn.login()
    const first = await conn.scsi(cdbTestUnitReady()) // the new nexus's power-on unit attention
    expect([SCSI_GOOD, SCSI_CHECK_CONDITION]).toContain(first.status)
    expect((await conn.scsi(cdbTestUnitReady())).status).toBe(SCSI_GOOD)
  })
  afterAll(async () => {
    await conn?.close().catch(() => undefined)
    await node?.cleanup()
  })

  it('a file that did not change applies nothing and exits 0', async () => {
    const r = await reload(['--admin', node.admin, '--json'])
    expect(r.exitCode, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout) as ReloadReport
    expect(report).toMatchObject({ node: 'a', config: node.configPath, complete: true, applied: [], needsRestart: [], refused: [] })
    expect(report.unchanged).toEqual([{ field: 'targets[0].luns[0]', target: node.iqn, lun: 0, sizeBytes: 64 * MiB }])
    expect((await conn.scsi(cdbTestUnitReady())).status).toBe(SCSI_GOOD)
  })

  it('64 MiB → 128 MiB: applied, the session gets 2Ah/09h, then READ CAPACITY(16) shows 128 MiB', async () => {
    expect(await capacityBytes()).toBe(64 * MiB)
    await edit(/size: 64MiB/, 'size: 128MiB')
    const r = await reload(['--admin', node.admin, '--json'])
    expect(r.exitCode, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout) as ReloadReport
    expect(report.complete).toBe(true)
    expect(report.applied).toEqual([
      expect.objectContaining({ field: 'targets[0].luns[0].size', target: node.iqn, lun: 0, from: 64 * MiB, to: 128 * MiB, outcome: 'applied' }),
    ])
    expect(report.applied[0]!.detail).toMatch(/CAPACITY DATA HAS CHANGED queued for 1 I_T nexus/)

    await expectCapacityChangedAttention()
    expect(await capacityBytes()).toBe(128 * MiB)
    expect((await stat(join(node.dir, 'lun0.img'))).size).toBe(128 * MiB)

    // The new blocks are there to write and read, up to the last one.
    const last = 128 * MiB / 512 - 1
    const block = Buffer.alloc(512, 0x5a)
    expect((await conn.scsi(cdbWrite16(last, 1), { dataOut: block })).status).toBe(SCSI_GOOD)
    expect((await conn.scsi(cdbRead16(last, 1), { readLength: 512 })).data).toEqual(block)
    expect((await conn.scsi(cdbRead16(last + 1, 1), { readLength: 512 })).sense).toMatchObject({ key: 0x05, asc: 0x21 })
  })

  it.skipIf(noLibiscsi)('iscsi-readcapacity16 on a new session sees 128 MiB', async () => {
    const r = await execa('iscsi-readcapacity16', [node.url()], { reject: false, timeout: 30_000, all: true })
    expect(r.exitCode, r.all).toBe(0)
    expect(r.stdout).toContain(`Total size:${128 * MiB}`)
  })

  it('a shrink is refused naming the field, exits 1 and changes nothing', async () => {
    await edit(/size: 128MiB/, 'size: 32MiB')
    const r = await reload(['--admin', node.admin, '--json'])
    expect(r.exitCode, r.stderr).toBe(1)
    const report = JSON.parse(r.stdout) as ReloadReport
    expect(report.complete).toBe(false)
    expect(report.applied).toEqual([])
    expect(report.refused).toEqual([
      expect.objectContaining({ field: 'targets[0].luns[0].size', from: 128 * MiB, to: 32 * MiB, outcome: 'refused' }),
    ])
    expect(report.refused[0]!.detail).toMatch(/32MiB is smaller than the 128MiB served now: shrinking a LUN is refused/)
    // No unit attention, same capacity, same file.
    expect((await conn.scsi(cdbTestUnitReady())).status).toBe(SCSI_GOOD)
    expect(await capacityBytes()).toBe(128 * MiB)
    expect((await stat(join(node.dir, 'lun0.img'))).size).toBe(128 * MiB)

    // Without --json the refusal is printed with its field.
    const text = await reload(['--admin', node.admin])
    expect(text.exitCode).toBe(1)
    expect(text.stdout).toContain('refused:\n  targets[0].luns[0].size: 32MiB is smaller than the 128MiB served now')
  })

  it('a change that needs a restart is listed by field and exits 1', async () => {
    await writeFile(node.configPath, original.replace(/size: 64MiB/, 'size: 128MiB').replace(/portal: 127\.0\.0\.1:(\d+)/, 'portal: 127.0.0.1:1'))
    const r = await reload(['--admin', node.admin, '--json'])
    expect(r.exitCode, r.stderr).toBe(1)
    const report = JSON.parse(r.stdout) as ReloadReport
    expect(report.needsRestart).toEqual([expect.objectContaining({ field: 'nodes.a.portal', to: '127.0.0.1:1', outcome: 'restart' })])
    expect(report.applied).toEqual([])
    expect((await conn.scsi(cdbTestUnitReady())).status).toBe(SCSI_GOOD)
  })

  it('a config with a mistake exits 2 with file:line, applies nothing, and the node keeps serving', async () => {
    await writeFile(node.configPath, original.replace(/size: 64MiB/, 'size: 256XB'))
    const line = original.split('\n').findIndex((l) => l.includes('size: 64MiB')) + 1
    const where = `${node.configPath}:${line}: targets[0].luns[0].size:`

    // Asked of the node: it reads its own file and answers with the problem.
    const viaNode = await reload(['--admin', node.admin, '--json'])
    expect(viaNode.exitCode).toBe(2)
    const err = (JSON.parse(viaNode.stdout) as { error: { message: string; exit: number; code: string } }).error
    expect(err).toMatchObject({ exit: 2, code: 'CONFIG_INVALID' })
    expect(err.message).toContain(where)
    expect(err.message).toContain('nothing was applied')
    const plain = await reload(['--admin', node.admin])
    expect(plain.exitCode).toBe(2)
    expect(plain.stderr).toContain(`${node.configPath}:${line}:`)

    // Found through --config: the same file fails to load here first, with the same exit code.
    const viaConfig = await reload(['--config', node.configPath, '--node', 'a'])
    expect(viaConfig.exitCode).toBe(2)
    expect(viaConfig.stderr).toContain(`:${line}:`)

    expect((await conn.scsi(cdbTestUnitReady())).status).toBe(SCSI_GOOD)
    expect(await capacityBytes()).toBe(128 * MiB)
    const status = await execa('node', [cli, 'node', 'status', '--admin', node.admin, '--json'], { reject: false })
    expect(status.exitCode).toBe(0)
  })

  it('SIGHUP reloads too: 128 MiB → 192 MiB, logged, with the same unit attention', async () => {
    await writeFile(node.configPath, original.replace(/size: 64MiB/, 'size: 192MiB'))
    const before = node.logs.length
    process.kill(node.pid, 'SIGHUP')
    const until = Date.now() + 10_000
    let logged: string | undefined
    while (!logged && Date.now() < until) {
      logged = node.logs.slice(before).find((l) => l.includes('"msg":"config reloaded"'))
      if (!logged) await new Promise((r) => setTimeout(r, 50))
    }
    expect(logged, node.logs.slice(before).join('\n')).toBeDefined()
    expect(logged).toContain('targets[0].luns[0].size: 128MiB → 192MiB: grown')
    await expectCapacityChangedAttention()
    expect(await capacityBytes()).toBe(192 * MiB)

    // A broken file on SIGHUP is logged and the node lives on.
    await writeFile(node.configPath, 'targets: [\n')
    const mark = node.logs.length
    process.kill(node.pid, 'SIGHUP')
    const end = Date.now() + 10_000
    let failed: string | undefined
    while (!failed && Date.now() < end) {
      failed = node.logs.slice(mark).find((l) => l.includes('"msg":"config reload failed; nothing was applied"'))
      if (!failed) await new Promise((r) => setTimeout(r, 50))
    }
    expect(failed).toContain(`${node.configPath}:`)
    expect((await conn.scsi(cdbTestUnitReady())).status).toBe(SCSI_GOOD)
    expect(await capacityBytes()).toBe(192 * MiB)
  })
})
