import { request } from 'node:http'
import { createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  AdminProtocolError,
  AdminUnreachableError,
  NodeMetrics,
  adminRequest,
  fetchMetrics,
  fetchStatus,
  isHealthy,
  startAdminServer,
  type AdminServer,
  type NodeStatus,
} from '../../../src/admin/index.js'

function sampleStatus(metrics: NodeMetrics): NodeStatus {
  return {
    node: 'a',
    pid: process.pid,
    version: '0.1.0',
    startedAt: '2026-11-24T00:00:00.000Z',
    uptimeS: 12,
    portal: '127.0.0.1:3260',
    admin: '127.0.0.1:7360',
    targets: [
      {
        iqn: 'iqn.2026-11.io.iscsi-ha:default',
        alias: 'default',
        tpgt: 1,
        luns: [
          {
            lun: 0,
            path: '/tmp/lun0.img',
            kind: 'file',
            sizeBytes: 1024 ** 3,
            blockSize: 512,
            serial: 'abc',
            naa: '6001405abcdef0123456789abcdef012',
            readOnly: false,
            writeCache: true,
            io: { mode: 'auto', inlineNow: true, inlineOps: 10, threadPoolOps: 2, backoffs: 0 },
          },
        ],
        sessions: [
          {
            tsih: 1,
            type: 'Normal',
            initiatorName: 'iqn.1993-08.org.debian:01:host1',
            isid: '023d00000001',
            remote: '127.0.0.1:50000',
            local: '127.0.0.1:3260',
            connectedAt: '2026-11-24T00:00:01.000Z',
            headerDigest: false,
            dataDigest: true,
            maxRecvDataSegmentLength: 262144,
            maxXmitDataSegmentLength: 262144,
            commands: 3,
            readBytes: 4096,
            writeBytes: 0,
          },
        ],
      },
    ],
    connections: { open: 1, limit: 256 },
    counters: metrics.counters(),
  }
}

/** Raw HTTP so we can send odd methods and bodies. */
function raw(port: number, method: string, path: string, body?: Buffer | string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }))
    })
    req.on('error', reject)
    if (body !== undefined) req.write(body)
    req.end()
  })
}

async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const port = (srv.address() as { port: number }).port
  await new Promise<void>((r) => srv.close(() => r()))
  return port
}

describe('NodeMetrics', () => {
  it('counts commands, bytes, errors and logins in both prom text and plain counters', async () => {
    const m = new NodeMetrics({ node: 'a' })
    m.observeCommand('read', 4096, 0.00004)
    m.observeCommand('read', 8192, 0.002)
    m.observeCommand('write', 512, 0.3)
    m.observeCommand('other', 0, 0.00001, true)
    m.loginAccepted()
    m.login(true)
    m.login(false)
    m.pduRejected()
    m.connectionDropped()
    m.connectionRefused()
    m.connectionRefused()
    let open = 7
    m.openConnections(() => open)
    m.sessionOpened()
    m.sessionOpened()
    m.sessionClosed()
    expect(m.totals.readOps).toBe(2)
    expect(m.counters()).toEqual({
      readOps: 2,
      writeOps: 1,
      readBytes: 12288,
      writeBytes: 512,
      otherOps: 1,
      scsiErrors: 1,
      loginsAccepted: 2,
      loginsRejected: 1,
      pdusRejected: 1,
      connectionsDropped: 1,
      connectionsRefused: 2,
    })
    expect(m.sessions).toBe(1)
    const text = await m.metricsText()
    expect(text).toContain('iscsi_ha_scsi_commands_total{op="read",node="a"} 2')
    expect(text).toContain('iscsi_ha_scsi_commands_total{op="write",node="a"} 1')
    expect(text).toContain('iscsi_ha_scsi_commands_total{op="other",node="a"} 1')
    expect(text).toContain('iscsi_ha_bytes_total{dir="read",node="a"} 12288')
    expect(text).toContain('iscsi_ha_bytes_total{dir="write",node="a"} 512')
    expect(text).toContain('iscsi_ha_scsi_errors_total{node="a"} 1')
    expect(text).toContain('iscsi_ha_logins_total{result="accepted",node="a"} 2')
    expect(text).toContain('iscsi_ha_logins_total{result="rejected",node="a"} 1')
    expect(text).toContain('iscsi_ha_pdus_rejected_total{node="a"} 1')
    expect(text).toContain('iscsi_ha_connections_dropped_total{node="a"} 1')
    expect(text).toContain('iscsi_ha_connections_refused_total{node="a"} 2')
    expect(text).toContain('iscsi_ha_connections_open{node="a"} 7')
    open = 3
    expect(await m.metricsText()).toContain('iscsi_ha_connections_open{node="a"} 3')
    expect(text).toContain('iscsi_ha_sessions{node="a"} 1')
    expect(text).toContain('iscsi_ha_scsi_command_seconds_bucket{le="0.00005",node="a",op="read"} 1')
    expect(text).toContain('iscsi_ha_scsi_command_seconds_bucket{le="0.0025",node="a",op="read"} 2')
    expect(text).toContain('iscsi_ha_scsi_command_seconds_count{node="a",op="write"} 1')
    expect(text).toContain('process_cpu_user_seconds_total')
  })

  it('keeps registries separate and can skip process metrics', async () => {
    const a = new NodeMetrics({ defaultMetrics: false })
    const b = new NodeMetrics({ defaultMetrics: false })
    a.observeCommand('write', 100, 0.001)
    expect(await b.metricsText()).toContain('iscsi_ha_scsi_commands_total{op="write"} 0')
    expect(await a.metricsText()).toContain('iscsi_ha_scsi_commands_total{op="write"} 1')
    expect(await a.metricsText()).not.toContain('process_cpu')
  })
})

describe('admin server', () => {
  let server: AdminServer
  let metrics: NodeMetrics
  const logs: string[] = []

  beforeAll(async () => {
    metrics = new NodeMetrics({ node: 'a' })
    server = await startAdminServer({
      host: '127.0.0.1',
      port: 0,
      metrics,
      status: async () => sampleStatus(metrics),
      log: (level, msg) => logs.push(`${level} ${msg}`),
      routes: [
        {
          method: 'POST',
          path: '/v1/echo',
          handler: (req) => ({ status: 202, body: { got: req.json() } }),
        },
        {
          method: 'GET',
          path: '/v1/boom',
          handler: () => {
            throw new Error('kaboom')
          },
        },
      ],
    })
  })
  afterAll(async () => {
    await server.close()
  })

  it('binds the asked host on a real port', () => {
    expect(server.address.host).toBe('127.0.0.1')
    expect(server.address.port).toBeGreaterThan(0)
    expect(server.url).toBe(`http://127.0.0.1:${server.address.port}`)
    expect(logs).toContain('info admin API listening')
  })

  it('GET /v1/status returns the status JSON', async () => {
    metrics.observeCommand('read', 4096, 0.0001)
    const res = await raw(server.address.port, 'GET', '/v1/status')
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8')
    const body = JSON.parse(res.text) as NodeStatus
    expect(body.node).toBe('a')
    expect(body.targets[0]?.sessions[0]?.isid).toBe('023d00000001')
    expect(body.counters.readOps).toBe(1)
  })

  it('GET /metrics returns prometheus text with the right content type', async () => {
    metrics.observeCommand('write', 1024, 0.001)
    const res = await raw(server.address.port, 'GET', '/metrics')
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8')
    expect(res.text).toContain('# TYPE iscsi_ha_scsi_commands_total counter')
    expect(res.text).toContain('iscsi_ha_scsi_commands_total{op="write",node="a"} 1')
    expect(res.text).toContain('iscsi_ha_bytes_total{dir="write",node="a"} 1024')
    expect(res.text).toContain('# TYPE iscsi_ha_scsi_command_seconds histogram')
  })

  it('GET /healthz is ok, HEAD works too', async () => {
    const res = await raw(server.address.port, 'GET', '/healthz')
    expect(res.status).toBe(200)
    expect(res.text).toBe('ok\n')
    const head = await raw(server.address.port, 'HEAD', '/healthz')
    expect(head.status).toBe(200)
    expect(head.text).toBe('')
  })

  it('unknown paths are 404 JSON, other methods 405 with Allow', async () => {
    const nf = await raw(server.address.port, 'GET', '/nope?x=1')
    expect(nf.status).toBe(404)
    expect(JSON.parse(nf.text)).toEqual({ error: { code: 'NOT_FOUND', message: 'no route for GET /nope' } })
    const na = await raw(server.address.port, 'POST', '/v1/status', '{}', { 'content-type': 'application/json' })
    expect(na.status).toBe(405)
    expect(na.headers.allow).toBe('GET, HEAD')
    expect(JSON.parse(na.text)).toMatchObject({ error: { code: 'METHOD_NOT_ALLOWED' } })
    const del = await raw(server.address.port, 'DELETE', '/metrics')
    expect(del.status).toBe(405)
  })

  it('extra POST routes get the JSON body; bad JSON is 400', async () => {
    const ok = await raw(server.address.port, 'POST', '/v1/echo', JSON.stringify({ a: 1 }), { 'content-type': 'application/json' })
    expect(ok.status).toBe(202)
    expect(JSON.parse(ok.text)).toEqual({ got: { a: 1 } })
    const bad = await raw(server.address.port, 'POST', '/v1/echo', '{nope', { 'content-type': 'application/json' })
    expect(bad.status).toBe(400)
    expect(JSON.parse(bad.text)).toMatchObject({ error: { code: 'BAD_JSON' } })
    const wrong = await raw(server.address.port, 'GET', '/v1/echo')
    expect(wrong.status).toBe(405)
    expect(wrong.headers.allow).toBe('POST')
  })

  it('refuses bodies over 64 KiB, declared or streamed', async () => {
    const big = Buffer.alloc(64 * 1024 + 1, 0x61)
    const declared = await raw(server.address.port, 'POST', '/v1/echo', big)
    expect(declared.status).toBe(413)
    expect(JSON.parse(declared.text)).toMatchObject({ error: { code: 'BODY_TOO_LARGE' } })
    const chunked = await raw(server.address.port, 'POST', '/v1/echo', big, { 'transfer-encoding': 'chunked' })
    expect(chunked.status).toBe(413)
    const fits = await raw(server.address.port, 'POST', '/v1/echo', JSON.stringify({ s: 'x'.repeat(60000) }))
    expect(fits.status).toBe(202)
  })

  it('a throwing handler is a 500 JSON error and is logged', async () => {
    const res = await raw(server.address.port, 'GET', '/v1/boom')
    expect(res.status).toBe(500)
    expect(JSON.parse(res.text)).toEqual({ error: { code: 'INTERNAL', message: 'kaboom' } })
    expect(logs).toContain('error admin request failed')
  })

  it('addRoute adds routes while running', async () => {
    server.addRoute({ method: 'POST', path: '/v1/takeover', handler: () => ({ body: { ok: true } }) })
    const res = await adminRequest(server.address, '/v1/takeover', { method: 'POST', body: {} })
    expect(JSON.parse(res.text)).toEqual({ ok: true })
  })

  it('client: fetchStatus, fetchMetrics, isHealthy', async () => {
    const addr = `127.0.0.1:${server.address.port}`
    const st = await fetchStatus(addr, { timeoutMs: 2000 })
    expect(st.node).toBe('a')
    expect(st.targets[0]?.luns[0]?.kind).toBe('file')
    expect(await fetchMetrics(addr)).toContain('iscsi_ha_sessions')
    expect(await isHealthy(server.url)).toBe(true)
  })

  it('client: HTTP errors and non-status JSON are AdminProtocolError', async () => {
    const addr = `127.0.0.1:${server.address.port}`
    const e1 = await adminRequest(addr, '/nope').catch((e: unknown) => e)
    expect(e1).toBeInstanceOf(AdminProtocolError)
    expect(e1).toMatchObject({ code: 'ADMIN_PROTOCOL', status: 404, serverCode: 'NOT_FOUND' })
    expect((e1 as Error).message).toBe(`admin API at ${addr}: GET /nope answered HTTP 404: no route for GET /nope`)
  })
})

describe('admin client against bad servers', () => {
  it('a closed port is AdminUnreachableError naming the address', async () => {
    const port = await freePort()
    const addr = `127.0.0.1:${port}`
    const err = await fetchStatus(addr, { timeoutMs: 2000 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AdminUnreachableError)
    expect(err).toMatchObject({ code: 'ADMIN_UNREACHABLE', address: addr })
    expect((err as Error).message).toBe(`admin API at ${addr} is unreachable: connection refused (is the node running?)`)
    expect(await isHealthy(addr)).toBe(false)
  })

  it('a server that never answers times out as AdminUnreachableError', async () => {
    const sockets: import('node:net').Socket[] = []
    const silent = createServer((s) => sockets.push(s))
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    const port = (silent.address() as { port: number }).port
    try {
      const err = await fetchStatus(`127.0.0.1:${port}`, { timeoutMs: 200 }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(AdminUnreachableError)
      expect((err as Error).message).toMatch(/no answer within 200 ms/)
    } finally {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => silent.close(() => r()))
    }
  })

  it('a server that answers something else is AdminProtocolError', async () => {
    const m = new NodeMetrics({ defaultMetrics: false })
    const srv = await startAdminServer({ port: 0, metrics: m, status: () => ({ hello: 'world' }) as unknown as NodeStatus })
    try {
      const err = await fetchStatus(srv.address).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(AdminProtocolError)
      expect((err as Error).message).toMatch(/not a node status \(field node is not a string\)/)
    } finally {
      await srv.close()
    }
  })

  it('listening on a busy port fails with a clear message', async () => {
    const m = new NodeMetrics({ defaultMetrics: false })
    const first = await startAdminServer({ port: 0, metrics: m, status: () => sampleStatus(m) })
    try {
      await expect(startAdminServer({ port: first.address.port, metrics: m, status: () => sampleStatus(m) })).rejects.toThrow(
        `admin API cannot listen on 127.0.0.1:${first.address.port}: address already in use`,
      )
    } finally {
      await first.close()
    }
  })
})
