// The pair on loopback: the primary dies under load (kill -9), the secondary takes over,
// replays what was committed but not completed, and the host loses nothing it was told was
// written. A planned switchover under load costs the host no error.
import { afterEach, describe, expect, it } from 'vitest'
import { execa } from 'execa'
import { VerifyingHost, type VerifyReport } from '../../src/initiator/index.js'
import { startPair, type BenchPair as Pair } from '../../src/bench/pair.js'
import { cli } from '../helpers/node-process.js'
import { adminRequest } from '../../src/admin/client.js'

function host(pair: Pair, durationMs: number) {
  return new VerifyingHost({
    connect: {
      host: pair.service.host, port: pair.service.port, targetName: pair.iqn,
      initiatorName: 'iqn.2026-11.io.iscsi-ha:verifying-host',
    },
    units: 512, unitBlocks: 8, queueDepth: 16, durationMs, commandTimeoutMs: 3000, verifyOnReconnect: true,
  })
}

function expectNothingLost(r: VerifyReport): void {
  expect(r.lost, JSON.stringify(r.lost.slice(0, 5))).toEqual([])
  expect(r.torn).toEqual([])
  expect(r.invented).toEqual([])
  expect(r.writesAcknowledged).toBeGreaterThan(100)
}

async function peerStatusExit(admin: string): Promise<number | undefined> {
  const r = await execa('node', [cli, 'peer', 'status', '--admin', admin, '--timeout', '1000'], { reject: false })
  return r.exitCode
}

describe('HA pair on loopback', () => {
  let pair: Pair | undefined
  afterEach(async () => {
    await pair?.cleanup()
    pair = undefined
  })

  it('survives kill -9 of the primary under load: replay, takeover, nothing lost', async () => {
    // Slow storage (40 ms a write) keeps committed writes in the two memories when the primary
    // dies: only the secondary's journal can complete them, so the replay is what is tested.
    pair = await startPair({ serviceHost: '127.0.0.51', env: { ISCSI_HA_FAULT_STORAGE_DELAY_MS: '40' } })
    expect(await peerStatusExit(pair.nodes.a.admin)).toBe(0)
    const h = host(pair, 4000)
    const running = h.run()
    await new Promise((r) => setTimeout(r, 1500))
    await pair.nodes.a.kill('SIGKILL')
    await pair.waitFor((_a, b) => b?.role === 'primary' && b.serving === true, 5000)
    const report = await running
    const b = await pair.nodes.b.status()
    console.log(`kill -9 failover: ${report.writesAcknowledged} writes acknowledged, ${report.writesResent} resent, ` +
      `longest pause ${report.longestPauseMs} ms, replayed ${b.lastTakeover?.replayed} copies, controller pause ${b.lastTakeover?.pauseMs} ms`)
    expectNothingLost(report)
    expect(report.reconnects).toBeGreaterThanOrEqual(1)
    expect(report.verifiedReconnects).toBe(report.reconnects)
    expect(b.lastTakeover?.kind).toBe('failover')
    expect(b.lastTakeover!.replayed).toBeGreaterThan(0)
    expect(report.longestPauseMs).toBeLessThan(2000)
    // The survivor runs alone: degraded (1); the dead node is unreachable (3).
    expect(await peerStatusExit(pair.nodes.b.admin)).toBe(1)
    expect(await peerStatusExit(pair.nodes.a.admin)).toBe(3)
  }, 60_000)

  it('takes the dead node back as secondary at the new epoch, mirrored again, then fails over back', async () => {
    pair = await startPair({ serviceHost: '127.0.0.52' })
    await pair.nodes.a.kill('SIGKILL')
    await pair.waitFor((_a, b) => b?.role === 'primary' && b.serving === true, 5000)
    await pair.nodes.a.start()
    await pair.waitFor((a, b) => a?.role === 'secondary' && b?.mirrored === true && a.epoch === b.epoch, 5000)
    expect(await peerStatusExit(pair.nodes.a.admin)).toBe(0)
    const h = host(pair, 3000)
    const running = h.run()
    await new Promise((r) => setTimeout(r, 1200))
    await pair.nodes.b.kill('SIGKILL')
    const report = await running
    const a = await pair.nodes.a.status()
    expect(a.role).toBe('primary')
    expect(a.epoch).toBeGreaterThanOrEqual(3)
    expectNothingLost(report)
  }, 60_000)

  it('switches over on request under load with no error for the host', async () => {
    pair = await startPair({ serviceHost: '127.0.0.53' })
    const h = host(pair, 3000)
    const running = h.run()
    await new Promise((r) => setTimeout(r, 1000))
    const reply = await adminRequest(pair.nodes.b.admin, '/v1/takeover', { method: 'POST', body: {}, timeoutMs: 2000 })
    expect(reply.status).toBe(200)
    await pair.waitFor((a, b) => b?.role === 'primary' && b.serving === true && a?.role === 'secondary', 5000)
    const report = await running
    const b = await pair.nodes.b.status()
    console.log(`planned switchover: longest pause ${report.longestPauseMs} ms, kind ${b.lastTakeover?.kind}, controller pause ${b.lastTakeover?.pauseMs} ms`)
    expectNothingLost(report)
    expect(b.lastTakeover?.kind).toBe('planned')
    await pair.waitFor((a, bb) => bb?.mirrored === true && a?.role === 'secondary', 5000)
  }, 60_000)
})

describe('both controllers die', () => {
  let pair: Pair | undefined
  afterEach(async () => {
    await pair?.cleanup()
    pair = undefined
  })

  it('the former primary waits for the partner that holds the journal; that one replays; nothing lost', async () => {
    pair = await startPair({
      serviceHost: '127.0.0.54',
      extra: 'journal:\n  dir: ./journal\n',
      env: { ISCSI_HA_FAULT_STORAGE_DELAY_MS: '150' },
    })
    const h = new VerifyingHost({
      connect: { host: pair.service.host, port: pair.service.port, targetName: pair.iqn, initiatorName: 'iqn.2026-11.io.iscsi-ha:both-die' },
      units: 256, unitBlocks: 8, queueDepth: 16, durationMs: 4000, commandTimeoutMs: 3000, verifyOnReconnect: true,
    })
    // Write, then power both off at once while copies are committed but not on storage.
    const writing = h.run().catch((e: unknown) => e)
    const until = Date.now() + 10_000
    while (h.acknowledged < 200 && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
    expect(h.acknowledged).toBeGreaterThanOrEqual(200)
    await Promise.all([pair.nodes.a.kill('SIGKILL'), pair.nodes.b.kill('SIGKILL')])
    // The former primary comes back first: it must not serve without b's journal.
    await pair.nodes.a.start()
    await new Promise((r) => setTimeout(r, 2500))
    const a = await pair.nodes.a.status()
    expect(a.serving).toBe(false)
    expect(pair.nodes.a.logs.some((l) => l.includes('not claiming the lease'))).toBe(true)
    // b returns with its persisted journal, claims, replays and serves; a joins it.
    await pair.nodes.b.start()
    await pair.waitFor((aa, b) => b?.role === 'primary' && b.serving === true && aa?.role === 'secondary', 10_000)
    const line = pair.nodes.b.logs.find((l) => l.includes('"msg":"journal replayed"')) ?? '{}'
    const replayed = Number((JSON.parse(line) as { replayed?: number }).replayed ?? 0)
    console.log(`both died: b replayed ${replayed} copies from its persisted journal`)
    expect(replayed).toBeGreaterThan(0)
    await writing
    const report = await h.verify()
    expect(report.lost, JSON.stringify(report.lost.slice(0, 3))).toEqual([])
    expect(report.torn).toEqual([])
    expect(report.invented).toEqual([])
  }, 60_000)
})
