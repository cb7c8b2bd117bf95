// The TypeScript initiator against a real node process: login (Normal and Discovery), SCSI
// I/O at queue depth, the write paths (immediate, unsolicited, R2T), CHAP one-way and mutual,
// digests, the CmdSN window, NOP-In pings, logout and the typed failures.

import { randomBytes } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startNode, type RunningNode } from '../helpers/node-process.js'
import { fetchStatus } from '../../src/admin/client.js'
import {
  IscsiInitiatorConnection,
  InitiatorClosedError,
  InitiatorLoginError,
  InitiatorTimeoutError,
  type InitiatorConnectionOptions,
} from '../../src/initiator/index.js'

const INITIATOR = 'iqn.2026-11.io.iscsi-ha:initiator-test'
const CHAP = { user: 'alice', secret: 'a-12-char-secret' }
const MUTUAL = { user: 'disk-target', secret: 'other-secret-16' }

function hostPort(portal: string): { host: string; port: number } {
  const i = portal.lastIndexOf(':')
  return { host: portal.slice(0, i), port: Number(portal.slice(i + 1)) }
}

const open: IscsiInitiatorConnection[] = []

async function connectTo(node: RunningNode, extra: Partial<InitiatorConnectionOptions> = {}): Promise<IscsiInitiatorConnection> {
  const conn = new IscsiInitiatorConnection({
    ...hostPort(node.portal), initiatorName: INITIATOR, targetName: node.iqn, ...extra,
  })
  open.push(conn)
  await conn.connect()
  await conn.login()
  return conn
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)))
})

describe('initiator against a node', () => {
  let node: RunningNode

  beforeAll(async () => {
    node = await startNode({ sizeMiB: 64, extra: 'iscsi:\n  nop_interval_s: 0.5\n  nop_timeout_s: 5' })
  })
  afterAll(async () => {
    await node?.cleanup()
  })

  it('logs in, identifies the LUN and reads its capacity', async () => {
    const conn = await connectTo(node)
    expect(conn.tsih).toBeGreaterThan(0)
    expect(conn.params.sessionType).toBe('Normal')
    expect(conn.params.targetPortalGroupTag).toBe(1)
    const tur = await conn.testUnitReady()
    // The first command of a new nexus may report the power-on unit attention.
    expect([0, 2]).toContain(tur.status)
    const inq = await conn.inquiry()
    expect(inq.peripheralDeviceType).toBe(0)
    const cap = await conn.readCapacity16()
    expect(cap.blockSize).toBe(512)
    expect(cap.blocks).toBe(BigInt((64 * 1024 * 1024) / 512))
    expect(await conn.reportLuns()).toEqual([0])
  })

  it('discovers the target with SendTargets on a Discovery session', async () => {
    const conn = await connectTo(node, { targetName: undefined, sessionType: 'Discovery' })
    expect(conn.params.sessionType).toBe('Discovery')
    const targets = await conn.sendTargets('All')
    expect(targets).toEqual([{ name: node.iqn, addresses: [`${node.portal},1`] }])
    expect(await conn.logout()).toBe(0)
    expect(conn.isClosed).toBe(true)
  })

  it('writes and reads back 1 MiB of random data at queue depth 16', async () => {
    const conn = await connectTo(node, { queueDepth: 16 })
    const data = randomBytes(1024 * 1024)
    const chunk = 16 * 1024
    const lbaBase = 4096
    const writes = []
    for (let off = 0; off < data.length; off += chunk) {
      writes.push(conn.write(lbaBase + off / 512, data.subarray(off, off + chunk)))
    }
    await Promise.all(writes)
    expect(conn.stats.maxInFlight).toBe(16)
    const reads = []
    for (let off = 0; off < data.length; off += chunk) reads.push(conn.read(lbaBase + off / 512, chunk / 512))
    const back = Buffer.concat(await Promise.all(reads))
    expect(back.equals(data)).toBe(true)
    expect(conn.inFlight).toBe(0)
  })

  it('moves one large transfer through immediate data, unsolicited Data-Out and R2Ts', async () => {
    // Target defaults: ImmediateData=Yes, InitialR2T=No, FirstBurstLength 256 KiB.
    const conn = await connectTo(node, { maxRecvDataSegmentLength: 8192 })
    expect(conn.params.immediateData).toBe(true)
    expect(conn.params.initialR2T).toBe(false)
    const data = randomBytes(3 * 1024 * 1024 + 4096)
    await conn.write(100_000, data, { fua: true })
    expect(conn.stats.r2tsAnswered).toBeGreaterThan(0)
    expect(conn.stats.dataOutPdus).toBeGreaterThan(0)
    const back = await conn.read(100_000, data.length / 512)
    expect(back.equals(data)).toBe(true)
    // Our MaxRecvDataSegmentLength of 8192 bounds every Data-In.
    expect(conn.stats.dataInPdus).toBeGreaterThanOrEqual(data.length / 8192)
  })

  it('writes with InitialR2T=Yes and ImmediateData=No (every byte solicited)', async () => {
    const conn = await connectTo(node, { initialR2T: true, immediateData: false })
    expect(conn.params.initialR2T).toBe(true)
    expect(conn.params.immediateData).toBe(false)
    const data = randomBytes(512 * 1024)
    await conn.write(60_000, data)
    expect(conn.stats.r2tsAnswered).toBeGreaterThan(0)
    expect((await conn.read(60_000, data.length / 512)).equals(data)).toBe(true)
  })

  it('negotiates CRC32C header and data digests and does I/O with them', async () => {
    const conn = await connectTo(node, { headerDigest: true, dataDigest: true })
    expect(conn.params.headerDigest).toBe(true)
    expect(conn.params.dataDigest).toBe(true)
    const data = randomBytes(256 * 1024 + 512)
    await conn.write(70_000, data)
    expect((await conn.read(70_000, data.length / 512)).equals(data)).toBe(true)
    const status = await fetchStatus(node.admin)
    const session = status.targets[0]!.sessions.find((s) => s.isid === conn.isid)
    expect(session).toMatchObject({ headerDigest: true, dataDigest: true })
  })

  it('survives CmdSN wrap-around', async () => {
    const conn = await connectTo(node, { initialCmdSN: 0xfffffff0, queueDepth: 8 })
    const data = randomBytes(4096)
    const ops = []
    for (let i = 0; i < 40; i++) ops.push(conn.write(80_000 + i * 8, data))
    await Promise.all(ops)
    expect(conn.cmdWindow.cmdSN).toBeLessThan(0x100)
    expect((await conn.read(80_000 + 39 * 8, 8)).equals(data)).toBe(true)
  })

  it('answers NOP-In pings, so an idle session stays up', async () => {
    const conn = await connectTo(node)
    await new Promise((r) => setTimeout(r, 1600))
    expect(conn.stats.nopInAnswered).toBeGreaterThan(0)
    expect(conn.isClosed).toBe(false)
    expect((await conn.nop(Buffer.from('ping'))).toString()).toBe('ping')
    await conn.testUnitReady()
  })

  it('fails pending and new commands with INITIATOR_CLOSED when the connection goes', async () => {
    const conn = await connectTo(node)
    const pending = conn.read(0, 2048)
    conn.destroy()
    const err = await pending.catch((e: unknown) => e)
    expect(err).toBeInstanceOf(InitiatorClosedError)
    expect((err as InitiatorClosedError).code).toBe('INITIATOR_CLOSED')
    expect((err as InitiatorClosedError).request?.cdb[0]).toBe(0x88)
    await expect(conn.testUnitReady()).rejects.toMatchObject({ code: 'INITIATOR_CLOSED' })
  })

  it('reports a missing target as INITIATOR_LOGIN_FAILED 0x0203', async () => {
    const err = await connectTo(node, { targetName: 'iqn.2026-11.io.iscsi-ha:nope' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(InitiatorLoginError)
    expect(err).toMatchObject({ code: 'INITIATOR_LOGIN_FAILED', statusClass: 2, statusDetail: 3, refusedBy: 'target' })
  })
})

describe('initiator waiting on a closed CmdSN window', () => {
  let node: RunningNode
  beforeAll(async () => {
    node = await startNode({ sizeMiB: 16, extra: 'iscsi:\n  queue_depth: 4' })
  })
  afterAll(async () => {
    await node?.cleanup()
  })

  it('never has more commands outstanding than the target allows', async () => {
    const conn = await connectTo(node, { queueDepth: 64 })
    const data = randomBytes(64 * 1024)
    const ops = []
    for (let i = 0; i < 32; i++) ops.push(conn.write(i * 128, data))
    await Promise.all(ops)
    expect(conn.stats.maxInFlight).toBeLessThanOrEqual(4)
    expect(conn.stats.windowStalls).toBeGreaterThan(0)
    expect((await conn.read(31 * 128, 128)).equals(data)).toBe(true)
  })
})

describe('initiator with CHAP', () => {
  let oneWay: RunningNode
  let mutual: RunningNode
  beforeAll(async () => {
    ;[oneWay, mutual] = await Promise.all([
      startNode({ sizeMiB: 16, targetExtra: `    chap:\n      user: ${CHAP.user}\n      secret: ${CHAP.secret}` }),
      startNode({
        sizeMiB: 16,
        targetExtra: `    chap:\n      user: ${CHAP.user}\n      secret: ${CHAP.secret}\n      mutual_user: ${MUTUAL.user}\n      mutual_secret: ${MUTUAL.secret}`,
      }),
    ])
  })
  afterAll(async () => {
    await Promise.all([oneWay?.cleanup(), mutual?.cleanup()])
  })

  it('logs in with one-way CHAP', async () => {
    const conn = await connectTo(oneWay, { chap: CHAP })
    expect(conn.params.authMethod).toBe('CHAP')
    expect(conn.params.mutualChap).toBe(false)
    await conn.write(0, Buffer.alloc(4096, 7))
    expect((await conn.read(0, 8)).equals(Buffer.alloc(4096, 7))).toBe(true)
  })

  it('is refused with 0x0201 for a wrong secret or no CHAP at all', async () => {
    await expect(connectTo(oneWay, { chap: { ...CHAP, secret: 'the-wrong-secret' } })).rejects.toMatchObject({
      code: 'INITIATOR_LOGIN_FAILED', statusClass: 2, statusDetail: 1, refusedBy: 'target',
    })
    await expect(connectTo(oneWay)).rejects.toMatchObject({ code: 'INITIATOR_LOGIN_FAILED', statusClass: 2, statusDetail: 1 })
  })

  it('logs in with mutual CHAP and checks the target', async () => {
    const conn = await connectTo(mutual, { chap: { ...CHAP, mutual: { user: MUTUAL.user, secret: MUTUAL.secret } } })
    expect(conn.params.mutualChap).toBe(true)
    await conn.testUnitReady()
  })

  it('refuses a target that proves the wrong mutual secret', async () => {
    const err = await connectTo(mutual, { chap: { ...CHAP, mutual: { secret: 'not-what-the-target-has' } } }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(InitiatorLoginError)
    expect(err).toMatchObject({ refusedBy: 'initiator', statusClass: 2, statusDetail: 1 })
  })
})

describe('initiator timeouts', () => {
  let server: Server
  const sockets: Socket[] = []
  afterAll(async () => {
    sockets.forEach((s) => s.destroy())
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()))
  })

  it('gives up a login the target never answers with INITIATOR_TIMEOUT', async () => {
    server = createServer((s) => {
      sockets.push(s)
      s.resume()
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const addr = server.address()
    const port = typeof addr === 'object' && addr ? addr.port : 0
    const conn = new IscsiInitiatorConnection({ host: '127.0.0.1', port, initiatorName: INITIATOR, targetName: 'iqn.2026-11.x:y', loginTimeoutMs: 300 })
    open.push(conn)
    await conn.connect()
    const err = await conn.login().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(InitiatorTimeoutError)
    expect(conn.isClosed).toBe(true)
  })

  it('reports a refused TCP connection as INITIATOR_CONNECT_FAILED', async () => {
    const probe = createServer()
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()))
    const addr = probe.address()
    const port = typeof addr === 'object' && addr ? addr.port : 0
    await new Promise<void>((r) => probe.close(() => r()))
    await expect(IscsiInitiatorConnection.open({ host: '127.0.0.1', port, initiatorName: INITIATOR, targetName: 'iqn.2026-11.x:y' }))
      .rejects.toMatchObject({ code: 'INITIATOR_CONNECT_FAILED' })
  })
})
