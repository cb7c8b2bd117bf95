// The reload core: what a newly read config asks of a running node (planReload), the grows
// performed and reported (applyReload), the file read with its file:line errors (Reloader), and
// the admin endpoint that serves it (POST /v1/reload) with its client.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ConfigError, parseConfig, type ClusterConfig } from '../../../src/config/index.js'
import { applyReload, planReload, Reloader, ReloadError, yamlKey, type LiveLun, type ReloadHost } from '../../../src/node/reload.js'
import { AdminProtocolError, NodeMetrics, reloadNode, startAdminServer, type AdminServer } from '../../../src/admin/index.js'
import { checkReloadReport, type ReloadReport } from '../../../src/admin/reload-report.js'

const MiB = 1024 * 1024
const IQN = 'iqn.2026-11.io.iscsi-ha:reload'

interface Lun {
  lun: number
  path?: string
  size?: string
  extra?: string
}

function yaml(opts: { luns?: Lun[]; portal?: string; targetExtra?: string; extra?: string; secondTarget?: boolean } = {}): string {
  const luns = (opts.luns ?? [{ lun: 0, size: '64MiB' }]).map((l) =>
    [`      - lun: ${l.lun}`, `        path: ${l.path ?? `./lun${l.lun}.img`}`, ...(l.size ? [`        size: ${l.size}`] : []), ...(l.extra ? [l.extra] : [])].join('\n'))
  return [
    'targets:',
    `  - iqn: ${IQN}`,
    '    luns:',
    ...luns,
    ...(opts.targetExtra ? [opts.targetExtra] : []),
    ...(opts.secondTarget ? ['  - iqn: iqn.2026-11.io.iscsi-ha:other', '    luns:', '      - lun: 0', '        path: ./other.img', '        size: 1MiB'] : []),
    'nodes:',
    '  a:',
    `    portal: ${opts.portal ?? '127.0.0.1:3260'}`,
    '    admin: 127.0.0.1:7360',
    ...(opts.extra ? [opts.extra] : []),
    '',
  ].join('\n')
}

const FILE = '/srv/iscsi/cluster.yaml'
const cfg = (text: string): ClusterConfig => parseConfig(text, FILE)

/** What runs: the sizes of a config's LUNs (as opened), optionally overridden. */
function liveOf(c: ClusterConfig, sizes: Record<number, number> = {}): LiveLun[] {
  return c.targets.flatMap((t) => t.luns.map((l) => ({ target: t.iqn, lun: l.lun, sizeBytes: sizes[l.lun] ?? l.sizeBytes ?? 0 })))
}

describe('planReload', () => {
  it('finds nothing to do in the same file', () => {
    const c = cfg(yaml())
    const plan = planReload(c, cfg(yaml()), liveOf(c))
    expect(plan.grows).toEqual([])
    expect(plan.needsRestart).toEqual([])
    expect(plan.refused).toEqual([])
    expect(plan.unchanged).toEqual([{ field: 'targets[0].luns[0]', target: IQN, lun: 0, sizeBytes: 64 * MiB }])
  })

  it('plans a grown LUN as a live grow', () => {
    const c = cfg(yaml())
    const plan = planReload(c, cfg(yaml({ luns: [{ lun: 0, size: '128MiB' }] })), liveOf(c))
    expect(plan.grows).toEqual([
      {
        target: IQN, lun: 0, sizeBytes: 128 * MiB,
        change: { field: 'targets[0].luns[0].size', target: IQN, lun: 0, from: 64 * MiB, to: 128 * MiB, outcome: 'applied', detail: '64MiB → 128MiB' },
      },
    ])
    expect(plan.needsRestart).toEqual([])
    expect(plan.unchanged).toEqual([])
  })

  it('compares the size with what is served now, not with the file the node started with', () => {
    const c = cfg(yaml())
    // Grown to 128 MiB by an earlier reload: the same file again is no change.
    expect(planReload(c, cfg(yaml({ luns: [{ lun: 0, size: '128MiB' }] })), liveOf(c, { 0: 128 * MiB })).grows).toEqual([])
    // And going back to the start size is a shrink.
    const back = planReload(c, cfg(yaml()), liveOf(c, { 0: 128 * MiB }))
    expect(back.refused.map((r) => r.field)).toEqual(['targets[0].luns[0].size'])
  })

  it('refuses a shrink, naming the field and both sizes', () => {
    const c = cfg(yaml())
    const plan = planReload(c, cfg(yaml({ luns: [{ lun: 0, size: '32MiB' }] })), liveOf(c))
    expect(plan.grows).toEqual([])
    expect(plan.refused).toHaveLength(1)
    expect(plan.refused[0]).toMatchObject({ field: 'targets[0].luns[0].size', outcome: 'refused', from: 64 * MiB, to: 32 * MiB, target: IQN, lun: 0 })
    expect(plan.refused[0]!.detail).toMatch(/32MiB is smaller than the 64MiB served now: shrinking a LUN is refused/)
  })

  it('refuses to grow a read-only LUN', () => {
    const ro = (size: string): string => yaml({ luns: [{ lun: 0, size, extra: '        read_only: true' }] })
    const c = cfg(ro('64MiB'))
    const plan = planReload(c, cfg(ro('128MiB')), liveOf(c))
    expect(plan.grows).toEqual([])
    expect(plan.refused[0]!.detail).toMatch(/read-only/)
  })

  it('leaves a size that is no longer given alone', () => {
    const c = cfg(yaml())
    const plan = planReload(c, cfg(yaml({ luns: [{ lun: 0 }] })), liveOf(c))
    expect(plan.grows).toEqual([])
    expect(plan.needsRestart).toEqual([])
    expect(plan.unchanged).toHaveLength(1)
  })

  it('lists every other difference per field as needing a restart', () => {
    const c = cfg(yaml({ luns: [{ lun: 0, size: '64MiB' }, { lun: 1, size: '8MiB' }] }))
    const next = cfg(yaml({
      luns: [{ lun: 0, size: '64MiB', extra: '        block_size: 4096\n        write_cache: false' }, { lun: 1, path: './moved.img', size: '16MiB' }, { lun: 2, size: '1MiB' }],
      portal: '127.0.0.1:3261',
      targetExtra: '    alias: disks\n    chap:\n      user: alice\n      secret: a-12-char-secret',
      extra: 'iscsi:\n  max_outstanding_r2t: 4\n  initial_r2t: true\n  queue_depth: 64',
      secondTarget: true,
    }))
    const plan = planReload(c, next, liveOf(c))
    expect(plan.grows).toEqual([]) // LUN 1 moves to another file: its size comes with the restart
    expect(plan.needsRestart.map((r) => r.field).sort()).toEqual([
      'iscsi.initial_r2t',
      'iscsi.max_outstanding_r2t',
      'iscsi.queue_depth',
      'nodes.a.portal',
      'targets[0].alias',
      'targets[0].chap',
      'targets[0].luns[0].block_size',
      'targets[0].luns[0].physical_block_size', // its default follows block_size
      'targets[0].luns[0].write_cache',
      'targets[0].luns[1].path',
      'targets[0].luns[1].size',
      'targets[0].luns[2]',
      'targets[1]',
    ])
    const byField = new Map(plan.needsRestart.map((r) => [r.field, r]))
    expect(byField.get('nodes.a.portal')).toMatchObject({ from: '127.0.0.1:3260', to: '127.0.0.1:3261', outcome: 'restart' })
    expect(byField.get('targets[0].luns[1].path')).toMatchObject({ target: IQN, lun: 1, to: '/srv/iscsi/moved.img' })
    expect(byField.get('targets[0].luns[2]')!.detail).toMatch(/new LUN 2/)
    expect(byField.get('targets[1]')!.detail).toMatch(/new target iqn\.2026-11\.io\.iscsi-ha:other/)
    expect(plan.unchanged).toEqual([])
  })

  it('reports LUNs and targets taken out of the file as needing a restart', () => {
    const c = cfg(yaml({ luns: [{ lun: 0, size: '64MiB' }, { lun: 1, size: '8MiB' }], secondTarget: true }))
    const plan = planReload(c, cfg(yaml()), liveOf(c))
    expect(plan.needsRestart.map((r) => [r.field, r.from, r.to])).toEqual([
      ['targets[1]', 'iqn.2026-11.io.iscsi-ha:other', null],
      ['targets[0].luns[1]', 1, null],
    ])
    expect(plan.needsRestart[1]!.detail).toMatch(/served until the next node start/)
  })

  it('never puts a secret in the report', () => {
    const chap = (secret: string): string => `    chap:\n      user: alice\n      secret: ${secret}`
    const c = cfg(yaml({ targetExtra: chap('first-secret-1234'), extra: 'peer_secret: the-first-long-peer-secret' }))
    const next = cfg(yaml({ targetExtra: chap('second-secret-567'), extra: 'peer_secret: the-other-long-peer-secret' }))
    const plan = planReload(c, next, liveOf(c))
    expect(plan.needsRestart.map((r) => r.field).sort()).toEqual(['peer_secret', 'targets[0].chap.secret'])
    const text = JSON.stringify(plan)
    for (const s of ['first-secret', 'second-secret', 'first-long', 'other-long']) expect(text).not.toContain(s)
  })

  it('names a LUN by its place in the file when given it', () => {
    const c = cfg(yaml({ luns: [{ lun: 1, size: '8MiB' }, { lun: 0, size: '64MiB' }] }))
    const next = cfg(yaml({ luns: [{ lun: 1, size: '16MiB' }, { lun: 0, size: '64MiB' }] }))
    const fields = new Map([[`${IQN}/1`, 'targets[0].luns[0]'], [`${IQN}/0`, 'targets[0].luns[1]']])
    expect(planReload(c, next, liveOf(c), fields).grows[0]!.change.field).toBe('targets[0].luns[0].size')
    // Without positions the sorted index is used.
    expect(planReload(c, next, liveOf(c)).grows[0]!.change.field).toBe('targets[0].luns[1].size')
  })

  it('maps config names to YAML keys', () => {
    expect(yamlKey('sizeBytes')).toBe('size')
    expect(yamlKey('maxRecvDataSegmentLength')).toBe('max_recv_data_segment_length')
    expect(yamlKey('maxOutstandingR2T')).toBe('max_outstanding_r2t')
    expect(yamlKey('nopIntervalS')).toBe('nop_interval_s')
  })
})

describe('applyReload', () => {
  const meta = { node: 'a', config: FILE }

  it('grows through the host and reports the unit attention', async () => {
    const c = cfg(yaml({ luns: [{ lun: 0, size: '64MiB' }, { lun: 1, size: '8MiB' }] }))
    const plan = planReload(c, cfg(yaml({ luns: [{ lun: 0, size: '128MiB' }, { lun: 1, size: '9MiB' }] })), liveOf(c))
    const calls: Array<[string, number, number]> = []
    const report = await applyReload(plan, async (t, l, s) => {
      calls.push([t, l, s])
      return { nexuses: l === 0 ? 2 : 1 }
    }, meta)
    expect(calls).toEqual([[IQN, 0, 128 * MiB], [IQN, 1, 9 * MiB]])
    expect(report.complete).toBe(true)
    expect(report.applied.map((c) => c.detail)).toEqual([
      '64MiB → 128MiB: grown; CAPACITY DATA HAS CHANGED queued for 2 I_T nexuses',
      '8MiB → 9MiB: grown; CAPACITY DATA HAS CHANGED queued for 1 I_T nexus',
    ])
    expect(checkReloadReport(JSON.parse(JSON.stringify(report)))).toBeUndefined()
  })

  it('reports a grow the host refuses, and goes on with the others', async () => {
    const c = cfg(yaml({ luns: [{ lun: 0, size: '64MiB' }, { lun: 1, size: '8MiB' }] }))
    const plan = planReload(c, cfg(yaml({ luns: [{ lun: 0, size: '128MiB' }, { lun: 1, size: '9MiB' }] })), liveOf(c))
    const report = await applyReload(plan, async (_t, l) => {
      if (l === 0) throw new Error('the partner has not grown it')
      return { nexuses: 0, note: 'a note' }
    }, meta)
    expect(report.complete).toBe(false)
    expect(report.refused).toEqual([
      expect.objectContaining({ field: 'targets[0].luns[0].size', outcome: 'refused', detail: '64MiB → 128MiB: not grown: the partner has not grown it' }),
    ])
    expect(report.applied.map((c) => c.detail)).toEqual(['8MiB → 9MiB: grown; CAPACITY DATA HAS CHANGED queued for 0 I_T nexuses; a note'])
  })

  it('is incomplete when something needs a restart, even with nothing to grow', async () => {
    const c = cfg(yaml())
    const report = await applyReload(planReload(c, cfg(yaml({ portal: '127.0.0.1:3999' })), liveOf(c)), async () => ({ nexuses: 0 }), meta)
    expect(report).toMatchObject({ complete: false, applied: [], refused: [] })
    expect(report.needsRestart.map((r) => r.field)).toEqual(['nodes.a.portal'])
  })
})

describe('Reloader', () => {
  let dir: string
  let file: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'iscsi-ha-reload-'))
    file = join(dir, 'cluster.yaml')
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  /** A host over the config in `file` as it is now, recording grows. */
  async function hostFor(text: string, grow?: ReloadHost['grow']): Promise<{ host: ReloadHost; grows: number[][] }> {
    await writeFile(file, text)
    const running = parseConfig(text, file)
    const sizes = new Map(running.targets[0]!.luns.map((l) => [l.lun, l.sizeBytes ?? 0]))
    const grows: number[][] = []
    const host: ReloadHost = {
      nodeName: 'a',
      running,
      luns: () => [...sizes].map(([lun, sizeBytes]) => ({ target: IQN, lun, sizeBytes })),
      grow: grow ?? (async (_t, lun, size) => {
        grows.push([lun, size])
        sizes.set(lun, size)
        return { nexuses: 1 }
      }),
    }
    return { host, grows }
  }

  it('reads the file the node started with and grows what grew', async () => {
    const { host, grows } = await hostFor(yaml({ luns: [{ lun: 1, size: '8MiB' }, { lun: 0, size: '64MiB' }] }))
    const reloader = new Reloader(host)
    await writeFile(file, yaml({ luns: [{ lun: 1, size: '8MiB' }, { lun: 0, size: '128MiB' }] }))
    const report = await reloader.reload()
    expect(grows).toEqual([[0, 128 * MiB]])
    expect(report).toMatchObject({ node: 'a', config: file, complete: true })
    // The LUN's field is its place in the file (LUN 0 is the second entry).
    expect(report.applied.map((c) => c.field)).toEqual(['targets[0].luns[1].size'])
    expect(report.unchanged.map((u) => u.field)).toEqual(['targets[0].luns[0]'])
    // A second reload of the same file finds nothing left to do.
    const again = await reloader.reload()
    expect(again.applied).toEqual([])
    expect(again.complete).toBe(true)
  })

  it('applies nothing from a file with a mistake and says where it is', async () => {
    const { host, grows } = await hostFor(yaml())
    await writeFile(file, yaml({ luns: [{ lun: 0, size: '128MiB' }], extra: 'iscsi:\n  queue_depth: many' }))
    const err = await new Reloader(host).reload().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+: iscsi\\.queue_depth: `))
    expect(grows).toEqual([])
  })

  it('refuses a file without this node as a config error', async () => {
    const { host, grows } = await hostFor(yaml())
    await writeFile(file, yaml({ luns: [{ lun: 0, size: '128MiB' }] }).replace('  a:', '  b:'))
    await expect(new Reloader(host).reload()).rejects.toThrow(/nodes: no node named "a"/)
    expect(grows).toEqual([])
  })

  it('has nothing to reload on a node started from the embedded default', async () => {
    const { host } = await hostFor(yaml())
    const { source: _dropped, ...embedded } = host.running
    const err = await new Reloader({ ...host, running: embedded }).reload().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ReloadError)
    expect((err as ReloadError).code).toBe('NO_CONFIG_FILE')
  })

  it('runs one reload at a time', async () => {
    let inside = 0
    let most = 0
    const { host } = await hostFor(yaml(), async () => {
      inside++
      most = Math.max(most, inside)
      await new Promise((r) => setTimeout(r, 20))
      inside--
      return { nexuses: 0 }
    })
    await writeFile(file, yaml({ luns: [{ lun: 0, size: '128MiB' }] }))
    const reloader = new Reloader(host)
    const reports = await Promise.all([reloader.reload(), reloader.reload(), reloader.reload()])
    expect(most).toBe(1)
    expect(reports.every((r) => r.applied.length === 1)).toBe(true)
  })
})

describe('POST /v1/reload', () => {
  let server: AdminServer | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  const sample: ReloadReport = {
    node: 'a', config: FILE, complete: true, needsRestart: [], refused: [], unchanged: [],
    applied: [{ field: 'targets[0].luns[0].size', target: IQN, lun: 0, from: 64 * MiB, to: 128 * MiB, outcome: 'applied', detail: 'grown' }],
  }

  async function serve(reload: () => Promise<ReloadReport>): Promise<string> {
    server = await startAdminServer({ port: 0, metrics: new NodeMetrics(), status: () => { throw new Error('not used') }, reload })
    return server.url
  }

  it('answers the report', async () => {
    const url = await serve(async () => sample)
    expect(await reloadNode(url)).toEqual(sample)
  })

  it('answers 422 CONFIG_INVALID with file:line: field when the file has a mistake', async () => {
    const problem = { file: FILE, line: 7, column: 15, field: 'targets[0].luns[0].size', message: '"3XB" is not a size' }
    const url = await serve(async () => {
      throw new ConfigError([problem])
    })
    const err = await reloadNode(url).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AdminProtocolError)
    expect(err).toMatchObject({ status: 422, serverCode: 'CONFIG_INVALID' })
    expect((err as Error).message).toContain(`${FILE}:7: targets[0].luns[0].size: "3XB" is not a size`)
    expect((err as Error).message).toContain('nothing was applied')
  })

  it('answers 409 NO_CONFIG_FILE for a node without a file', async () => {
    const url = await serve(async () => {
      throw new ReloadError('NO_CONFIG_FILE', 'started without --config')
    })
    await expect(reloadNode(url)).rejects.toMatchObject({ status: 409, serverCode: 'NO_CONFIG_FILE' })
  })

  it('is only a POST', async () => {
    const url = await serve(async () => sample)
    const res = await fetch(`${url}/v1/reload`)
    expect(res.status).toBe(405)
    expect(res.headers.get('allow')).toBe('POST')
  })

  it('rejects an answer that is not a report', async () => {
    const url = await serve(async () => ({ node: 'a' }) as unknown as ReloadReport)
    await expect(reloadNode(url)).rejects.toThrow(/not a reload report/)
  })
})
