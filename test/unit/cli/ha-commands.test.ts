// The pure parts of journal inspect, takeover, replay and demo: rows in blocks, tables, the
// confirmation rules, journal directory lookup, and the demo's config.
import { describe, expect, it } from 'vitest'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig } from '../../../src/config/index.js'
import { blockSizeLookup, formatAge, journalBodyProblem, journalLines, toRow, type JournalReport } from '../../../src/cli/journal-format.js'
import { confirmRisk } from '../../../src/cli/confirm.js'
import { CommandFailure, failureOf } from '../../../src/cli/failure.js'
import { resolveJournalDir } from '../../../src/cli/journal-source.js'
import { forceRisk, takeoverLines } from '../../../src/cli/takeover-run.js'
import { demoConfigYaml, demoLines, DEMO } from '../../../src/cli/demo-runner.js'
import type { PeerStatusReport } from '../../../src/ha/status.js'

const entry = { seq: 7, epoch: 3, target: 'iqn.2026-11.io.iscsi-ha:t', lun: 1, offset: 3 * 4096, bytes: 10_000, ageMs: 1500, initiator: 'iqn.h', itt: 0x2a }

describe('journal rows', () => {
  const config = parseConfig('targets:\n  - iqn: iqn.2026-11.io.iscsi-ha:T\n    luns:\n      - lun: 1\n        path: ./x.img\n        size: 1MiB\n        block_size: 4096\nnodes:\n  a:\n    portal: 127.0.0.1:3260\n', 'c.yaml')

  it('counts LBA and blocks in the LUN block size from the config, else 512', () => {
    expect(toRow(entry, blockSizeLookup(config))).toMatchObject({ lba: 3, blocks: 3, blockSize: 4096 })
    expect(toRow({ ...entry, lun: 2 }, blockSizeLookup(config))).toMatchObject({ lba: 24, blocks: 20, blockSize: 512 })
    expect(toRow(entry, blockSizeLookup(undefined))).toMatchObject({ lba: 24, blockSize: 512 })
  })

  it('prints a heading and a table, or only the heading when empty', () => {
    const report: JournalReport = {
      source: { kind: 'node', admin: '127.0.0.1:7362', node: 'b', role: 'secondary' },
      stats: { entries: 2, bytes: 20_000, oldestSeq: 7, oldestAgeMs: 1500 },
      blockSizes: 'config',
      entries: [toRow(entry, blockSizeLookup(config))],
    }
    const text = journalLines(report).join('\n')
    expect(text).toContain('node b (secondary) at 127.0.0.1:7362: 2 committed-not-completed copies, 19.5 KiB, oldest #7 1.5 s old')
    expect(text).toMatch(/7\s+3\s+1\s+3\s+3\s+1\.5 s\s+iqn\.h\s+0x0000002a/)
    expect(text).toContain('(1 of 2 shown')
    expect(journalLines({ ...report, stats: { entries: 0, bytes: 0 }, entries: [] })).toHaveLength(1)
  })

  it('checks the shape of a GET /v1/journal answer', () => {
    expect(journalBodyProblem({ node: 'b', role: 'secondary', stats: {}, entries: [entry] })).toBeUndefined()
    expect(journalBodyProblem({ node: 'b', role: 'secondary', stats: {}, entries: [{ ...entry, seq: '7' }] })).toContain('seq')
    expect(journalBodyProblem([])).toBeDefined()
  })

  it('formats ages', () => {
    expect([formatAge(12), formatAge(1500), formatAge(600_000), formatAge(undefined)]).toEqual(['12 ms', '1.5 s', '10 min', '-'])
  })
})

describe('confirmation rules', () => {
  const base = { risk: 'It may hurt.', question: 'Go?', withYes: 'x --yes', write: () => undefined }

  it('goes ahead with --yes without asking', async () => {
    await expect(confirmRisk({ ...base, yes: true, json: true, interactive: false, ask: () => Promise.reject(new Error('asked')) })).resolves.toBe('assumed-yes')
  })

  it('refuses with exit 2 under --json or without a terminal, naming --yes', async () => {
    for (const o of [{ json: true, interactive: true }, { json: false, interactive: false }]) {
      const err = await confirmRisk({ ...base, yes: false, ...o, ask: () => Promise.reject(new Error('asked')) }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(CommandFailure)
      expect(failureOf(err)).toMatchObject({ exit: 2, code: 'CONFIRMATION_NEEDED' })
      expect((err as Error).message).toContain('x --yes')
    }
  })

  it('asks at a terminal, showing the risk; anything but yes is a refusal', async () => {
    const shown: string[] = []
    await expect(confirmRisk({ ...base, yes: false, json: false, interactive: true, write: (t) => shown.push(t), ask: async () => true })).resolves.toBe('confirmed')
    expect(shown.join('')).toContain('It may hurt.')
    for (const answer of [false, undefined]) {
      const err = await confirmRisk({ ...base, yes: false, json: false, interactive: true, ask: async () => answer }).catch((e: unknown) => e)
      expect(failureOf(err)).toMatchObject({ exit: 2, code: 'NOT_CONFIRMED' })
    }
  })
})

describe('journal directory lookup', () => {
  it('takes the directory itself, a named node under it, or the only one', async () => {
    const root = await mkdtemp(join(tmpdir(), 'iscsi-ha-jdir-'))
    try {
      for (const n of ['a', 'b']) {
        await mkdir(join(root, n))
        await writeFile(join(root, n, 'journal.log'), '')
      }
      expect(resolveJournalDir(join(root, 'a'))).toBe(join(root, 'a'))
      expect(resolveJournalDir(root, 'b')).toBe(join(root, 'b'))
      expect(() => resolveJournalDir(root)).toThrow(/a, b: name one with --node/)
      await rm(join(root, 'a'), { recursive: true })
      expect(resolveJournalDir(root)).toBe(join(root, 'b'))
      expect(failureOf(captured(() => resolveJournalDir(join(root, 'none'))))).toMatchObject({ exit: 2, code: 'JOURNAL_NOT_FOUND' })
    } finally {
      await rm(root, { recursive: true, force: true })
    }
  })
})

function captured(fn: () => unknown): unknown {
  try {
    fn()
  } catch (e) {
    return e
  }
  return undefined
}

describe('takeover words', () => {
  const before = { node: 'b', peer: { name: 'a', link: 'down' } } as PeerStatusReport
  it('names the risk of forcing, by the partner it would fence', () => {
    expect(forceRisk(before)).toMatch(/a is unreachable.*corrupt/)
    expect(forceRisk({ ...before, peer: { ...before.peer, link: 'up', role: 'primary' } })).toContain('a is reachable (role primary)')
  })
  it('prints the kind, pause and replayed copies', () => {
    const lines = takeoverLines({ node: 'b', admin: 'x', changed: true, role: 'primary', epoch: 4, kind: 'planned', pauseMs: 120, replayed: 1, replayedBytes: 4096, elapsedMs: 300, detail: '' })
    expect(lines.join('\n')).toMatch(/b is primary \(epoch 4\) after a planned takeover[\s\S]*pause 120 ms; 1 committed-not-completed copy replayed \(4 KiB\)/)
  })
})

describe('demo config', () => {
  it('is accepted by the config validator, with the documented addresses', () => {
    const c = parseConfig(demoConfigYaml('a-generated-secret-of-32-bytes!!'), '/tmp/demo/cluster.yaml')
    expect(c.service?.address.text).toBe(DEMO.service)
    expect(Object.values(c.nodes).map((n) => [n.portal.text, n.admin.text, n.peer?.text])).toEqual([
      ['127.0.0.1:3261', '127.0.0.1:7361', '127.0.0.1:7461'],
      ['127.0.0.2:3261', '127.0.0.1:7362', '127.0.0.1:7462'],
    ])
    expect(c.targets[0]!.luns[0]).toMatchObject({ sizeBytes: 1024 ** 3, path: '/tmp/demo/lun0.img' })
    expect(c.journal.dir).toBe('/tmp/demo/journal')
  })

  it('tells the URL, the takeover and kill commands', () => {
    const text = demoLines({
      url: 'iscsi://127.0.0.10:3260/iqn.2026-11.io.iscsi-ha:demo/0', config: '/d/cluster.yaml', dataDir: '/d', primary: 'a', secondary: 'b',
      nodes: [{ name: 'a', pid: 10, portal: 'p', admin: 'q', peer: 'r', log: '/d/node-a.log', role: 'primary' }],
      commands: { takeover: 'iscsi-ha takeover --config /d/cluster.yaml --to b', kill: 'kill -9 10', peerStatus: ['iscsi-ha peer status --config /d/cluster.yaml --node a'], journal: 'j' },
    }).join('\n')
    for (const s of ['iscsi://127.0.0.10:3260/iqn.2026-11.io.iscsi-ha:demo/0', 'takeover --config /d/cluster.yaml --to b', 'kill -9 10', 'Ctrl-C']) expect(text).toContain(s)
  })
})
