// `iscsi-ha bench` and `bench failover` on tiny counts: the commands work end to end with the
// real clients, and their --json output parses. Not a timed test: no figure is asserted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execa } from 'execa'
import { missingTools } from '../helpers/tools.js'
import { cli, startNode, type RunningNode } from '../helpers/node-process.js'
import type { BenchReport } from '../../src/bench/run.js'
import type { FailoverReport } from '../../src/bench/failover.js'
import { parseQemuImgBench, qemuImgArgs } from '../../src/bench/qemu-img.js'
import { iscsiPerfArgs, parseIscsiPerf } from '../../src/bench/iscsi-perf.js'
import { parseIscsiUrl } from '../../src/bench/url.js'
import { selectWorkloads } from '../../src/bench/workloads.js'

const skip = missingTools('qemu-img', 'iscsi-perf', 'iscsi-readcapacity16')

describe('bench client output parsers', () => {
  it('reads qemu-img bench and iscsi-perf output as the tools print it', () => {
    expect(parseQemuImgBench('Sending 20000 write requests, 4096 bytes each, 32 in parallel (starting at offset 0, step size 4096)\nRun completed in 1.355 seconds.\n'))
      .toEqual({ seconds: 1.355, requests: 20000 })
    expect(() => parseQemuImgBench("qemu-img: Could not open 'iscsi://x/y/0': Failed to connect")).toThrow(/Could not open/)
    expect(qemuImgArgs('iscsi://h/i/0', { op: 'write', blockSize: 4096, queueDepth: 32 }, 100))
      .toEqual(['bench', '-f', 'raw', '-t', 'none', '-n', '-c', '100', '-d', '32', '-s', '4096', '-w', '--pattern=90', 'iscsi://h/i/0'])
    const perf = 'connected to iscsi://h/i/0\ncapacity is 524288 blocks or 268435456 byte (256 MB)\nFIXED transfer size of 8 blocks (4096 byte)\nwill run for 3 seconds.\n\n' +
      '00:00:02 - lba 436243, iops current 30175 (117 MB/s), iops average 30175 (117 MB/s), in_flight 32, busy 0        \r' +
      'iops average 29168 (113 MB/s)                          \n\nfinished.\n'
    expect(parseIscsiPerf(perf)).toEqual({ iops: 29168, transferBytes: 4096, finished: true })
    expect(() => parseIscsiPerf(perf.replace('finished.', 'ABORTED!'))).toThrow(/did not finish/)
    expect(iscsiPerfArgs('iscsi://h/i/0', { blockSize: 4096, queueDepth: 32, pattern: 'rand' }, 512, 2.5)).toEqual(['-m', '32', '-b', '8', '-t', '3', '-r', 'iscsi://h/i/0'])
    expect(parseIscsiUrl('iscsi://u%p@[::1]:3261/iqn.2026-11.io.x:y/3')).toMatchObject({ host: '[::1]', port: 3261, iqn: 'iqn.2026-11.io.x:y', lun: 3 })
    expect(() => parseIscsiUrl('iscsi://host/iqn')).toThrow(/not an iSCSI URL/)
    expect(selectWorkloads(undefined, true).map((w) => w.id)).toEqual(['4k-qd1-read', '4k-qd1-write', '4k-qd32-read', '4k-qd32-write', '128k-qd16-read', 'rand-4k-qd32-read', 'perf-128k-qd16-read'])
  })
})

describe.skipIf(skip)('iscsi-ha bench', () => {
  let node: RunningNode
  beforeAll(async () => {
    node = await startNode({ sizeMiB: 64, iqn: 'iqn.2026-11.io.iscsi-ha:bench' })
  })
  afterAll(async () => {
    await node?.cleanup()
  })

  it('measures a node with qemu-img and iscsi-perf, interleaved with a --vs baseline, as JSON', async () => {
    const r = await execa('node', [
      cli, 'bench', node.url(), '--vs', node.url(), '--label', 'node', '--label', 'again',
      '--workloads', '4k-qd1-read,4k-qd32-write,rand-4k-qd32-read,perf-128k-qd16-read', '--count', '400', '--seconds', '1',
      '--pid', `node=${node.pid}`, '--json',
    ], { reject: false, timeout: 60_000 })
    expect(r.exitCode, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout) as BenchReport & { rss?: Array<{ label: string; peakKiB: number }> }
    expect(report.baseline).toBe('again')
    expect(report.targets.map((t) => [t.label, t.blockSize])).toEqual([['node', 512], ['again', 512]])
    expect(report.rows.map((row) => `${row.workload}@${row.target}`)).toEqual([
      '4k-qd1-read@node', '4k-qd1-read@again', '4k-qd32-write@node', '4k-qd32-write@again',
      'rand-4k-qd32-read@node', 'rand-4k-qd32-read@again', 'perf-128k-qd16-read@node', 'perf-128k-qd16-read@again',
    ])
    for (const row of report.rows) {
      expect(row.error).toBeUndefined()
      expect(row.iops).toBeGreaterThan(0)
      expect(row.mbps).toBeCloseTo((row.iops * row.blockSize) / 1e6, 6)
      expect(row.meanLatencyUs).toBeCloseTo((row.queueDepth / row.iops) * 1e6, 6)
      if (row.client === 'qemu-img') expect(row.samples[0]!.requests).toBe(400)
      if (row.baseline) expect(row.ratio).toBeUndefined()
      else expect(row.ratio).toBeGreaterThan(0)
    }
    expect(report.rss?.[0]?.peakKiB).toBeGreaterThan(10_000)
    // Progress went to stderr, one line per run.
    expect(r.stderr).toMatch(/\[8\/8\] 128K QD16 seq read again round 1: [0-9]+ IOPS/)
  }, 60_000)

  it('prints a table with the ratio column; a bad URL or workload is exit 2', async () => {
    const r = await execa('node', [cli, 'bench', node.url(), '--vs', node.url(), '--workloads', '4k-qd1-write', '--count', '200'], { reject: false, timeout: 30_000 })
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^workload\s+client\s+target\s+IOPS\s+MB\/s\s+mean lat us\*\s+vs /m)
    expect(r.stdout).toMatch(/4K QD1 seq write\s+qemu-img\s+\S+\s+[0-9]+\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+x/)
    const bad = await execa('node', [cli, 'bench', 'iscsi://nowhere', '--json'], { reject: false })
    expect(bad.exitCode).toBe(2)
    const unknown = await execa('node', [cli, 'bench', node.url(), '--workloads', '4k-qd7-read'], { reject: false })
    expect(unknown.exitCode).toBe(2)
    expect(unknown.stderr).toContain('unknown workload "4k-qd7-read"')
  }, 60_000)
})

describe.skipIf(skip)('iscsi-ha bench failover', () => {
  it('kills the primary under writes once: a pause is measured and nothing is lost', async () => {
    const r = await execa('node', [cli, 'bench', 'failover', '--trials', '1', '--duration', '2500', '--service-host', '127.0.0.63', '--json'], {
      reject: false, timeout: 60_000,
    })
    expect(r.exitCode, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout) as FailoverReport
    expect(report.trials).toHaveLength(1)
    const t = report.trials[0]!
    expect(t.killed).toBe('a')
    expect(t.reconnects).toBeGreaterThanOrEqual(1)
    expect(t.writesAcknowledged).toBeGreaterThan(100)
    expect(t.takeover?.kind).toBe('failover')
    expect(t.pauseMs).toBeGreaterThan(0)
    expect([t.lost, t.torn, t.invented]).toEqual([0, 0, 0])
    expect(report.summary).toMatchObject({ ok: true, lost: 0, maxPauseMs: t.pauseMs, medianPauseMs: t.pauseMs })
  }, 60_000)
})
