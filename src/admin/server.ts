// The admin HTTP/JSON API of one controller, on node:http. Routes live in a small table so later
// commands (HA takeover, replay) can add POST routes with `routes` or `addRoute`.
//
//   GET /v1/status  → NodeStatus as JSON
//   GET /metrics    → Prometheus text exposition
//   GET /healthz    → 200 "ok"
//   POST /v1/reload → ReloadReport as JSON (200 once the file loaded, even when some changes need
//                     a restart); 422 CONFIG_INVALID with file:line: field, 409 NO_CONFIG_FILE
//   anything else   → 404 JSON error; a known path with another method → 405 with Allow
//
// Errors are JSON: {"error": {"code": "NOT_FOUND", "message": "..."}}. Request bodies are capped
// at 64 KiB (413). HEAD is answered for every GET route.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { formatHostPort } from '../config/address.js'
import { isConfigError } from '../config/errors.js'
import type { NodeMetrics } from './metrics.js'
import { ReloadError, type ReloadReport } from './reload-report.js'
import type { NodeStatus } from './status.js'

export const MAX_BODY_BYTES = 64 * 1024
export const DEFAULT_ADMIN_HOST = '127.0.0.1'

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH'
export type AdminLogLevel = 'debug' | 'info' | 'warn' | 'error'
export type AdminLog = (level: AdminLogLevel, message: string, fields?: Record<string, unknown>) => void

export interface AdminRequest {
  method: HttpMethod
  /** Path without the query string. */
  path: string
  query: URLSearchParams
  headers: IncomingHttpHeaders
  /** The raw body (at most MAX_BODY_BYTES); empty for GET. */
  body: Buffer
  /** The body parsed as JSON; throws AdminHttpError(400) when it isn't JSON. Empty body → undefined. */
  json(): unknown
  remoteAddress: string
}

export interface AdminResponse {
  status?: number
  /** Sent as JSON unless it is a string or Buffer (then as is, with `contentType`). */
  body?: unknown
  contentType?: string
  headers?: Record<string, string>
}

export interface AdminRoute {
  method: HttpMethod
  path: string
  handler: (req: AdminRequest) => AdminResponse | Promise<AdminResponse>
}

/** Throw from a handler to answer with a given status and JSON error body. */
export class AdminHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
    this.name = 'AdminHttpError'
  }
}

export interface AdminServerOptions {
  /** Address to bind; loopback by default. */
  host?: string
  /** 0 picks a free port (see the returned address). */
  port: number
  status: () => NodeStatus | Promise<NodeStatus>
  metrics: NodeMetrics
  log?: AdminLog
  /** Extra routes, e.g. the HA commands' POST routes. */
  routes?: AdminRoute[]
  /** Re-read the node's config file and apply what can be applied live (POST /v1/reload). */
  reload?: () => Promise<ReloadReport>
}

export interface AdminServer {
  /** The bound address (the real port when 0 was asked for). */
  address: { host: string; port: number }
  /** `http://host:port` */
  url: string
  /** Adds (or replaces) a route while running. */
  addRoute(route: AdminRoute): void
  /** Stops listening and closes open connections. */
  close(): Promise<void>
}

const JSON_TYPE = 'application/json; charset=utf-8'
const METHODS: readonly string[] = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH']

function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } })
}

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let done = false
    req.on('data', (chunk: Buffer) => {
      if (done) return
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        done = true
        reject(new BodyTooLarge())
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => {
      if (!done) {
        done = true
        resolve(Buffer.concat(chunks))
      }
    })
    req.on('error', (e) => {
      if (!done) {
        done = true
        reject(e)
      }
    })
  })
}

/** POST /v1/reload: the report, or the reason nothing was applied as a JSON error. */
export function reloadRoute(reload: () => Promise<ReloadReport>): AdminRoute {
  return {
    method: 'POST',
    path: '/v1/reload',
    handler: async () => {
      try {
        return { body: await reload() }
      } catch (e) {
        if (isConfigError(e)) throw new AdminHttpError(422, e.code, `${e.message}\nnothing was applied; the node runs as before`)
        if (e instanceof ReloadError) throw new AdminHttpError(409, e.code, e.message)
        throw e
      }
    },
  }
}

export function builtinRoutes(opts: Pick<AdminServerOptions, 'status' | 'metrics' | 'reload'>): AdminRoute[] {
  const reload = opts.reload ? [reloadRoute(opts.reload)] : []
  return [
    ...reload,
    {
      method: 'GET',
      path: '/v1/status',
      handler: async () => ({ body: await opts.status() }),
    },
    {
      method: 'GET',
      path: '/metrics',
      handler: async () => ({ body: await opts.metrics.metricsText(), contentType: opts.metrics.contentType }),
    },
    {
      method: 'GET',
      path: '/healthz',
      handler: () => ({ body: 'ok\n', contentType: 'text/plain; charset=utf-8' }),
    },
  ]
}

export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const log: AdminLog = opts.log ?? (() => {})
  const table = new Map<string, Map<HttpMethod, AdminRoute>>()
  const addRoute = (route: AdminRoute): void => {
    let byMethod = table.get(route.path)
    if (!byMethod) table.set(route.path, (byMethod = new Map()))
    byMethod.set(route.method, route)
  }
  for (const r of builtinRoutes(opts)) addRoute(r)
  for (const r of opts.routes ?? []) addRoute(r)

  const send = (req: IncomingMessage, res: ServerResponse, status: number, body: string | Buffer, contentType: string, headers: Record<string, string> = {}): void => {
    if (res.headersSent) return
    const payload = typeof body === 'string' ? Buffer.from(body, 'utf8') : body
    res.writeHead(status, { 'content-type': contentType, 'content-length': String(payload.length), 'cache-control': 'no-store', ...headers })
    res.end(req.method === 'HEAD' ? undefined : payload)
  }
  const sendError = (req: IncomingMessage, res: ServerResponse, status: number, code: string, message: string, headers?: Record<string, string>): void =>
    send(req, res, status, errorBody(code, message), JSON_TYPE, headers)

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const rawMethod = req.method ?? 'GET'
    const url = new URL(req.url ?? '/', 'http://admin.invalid')
    const path = url.pathname
    const byMethod = table.get(path)

    const declared = Number(req.headers['content-length'] ?? 0)
    if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) {
      sendError(req, res, 413, 'BODY_TOO_LARGE', `request bodies are limited to ${MAX_BODY_BYTES} bytes`, { connection: 'close' })
      req.resume()
      return
    }
    if (!byMethod) {
      req.resume()
      sendError(req, res, 404, 'NOT_FOUND', `no route for ${rawMethod} ${path}`)
      return
    }
    const method = (rawMethod === 'HEAD' ? 'GET' : rawMethod) as HttpMethod
    const route = METHODS.includes(method) ? byMethod.get(method) : undefined
    if (!route) {
      req.resume()
      const allow: string[] = [...byMethod.keys()]
      if (allow.includes('GET')) allow.push('HEAD')
      sendError(req, res, 405, 'METHOD_NOT_ALLOWED', `${rawMethod} is not allowed on ${path} (allowed: ${allow.join(', ')})`, {
        allow: allow.join(', '),
      })
      return
    }

    let body: Buffer
    try {
      body = await readBody(req)
    } catch (e) {
      if (e instanceof BodyTooLarge) {
        sendError(req, res, 413, 'BODY_TOO_LARGE', `request bodies are limited to ${MAX_BODY_BYTES} bytes`, { connection: 'close' })
        req.resume()
        return
      }
      throw e
    }

    const request: AdminRequest = {
      method,
      path,
      query: url.searchParams,
      headers: req.headers,
      body,
      remoteAddress: req.socket.remoteAddress ?? '',
      json(): unknown {
        if (body.length === 0) return undefined
        try {
          return JSON.parse(body.toString('utf8')) as unknown
        } catch {
          throw new AdminHttpError(400, 'BAD_JSON', 'the request body is not valid JSON')
        }
      },
    }
    const out = await route.handler(request)
    const status = out.status ?? 200
    if (typeof out.body === 'string' || Buffer.isBuffer(out.body)) {
      send(req, res, status, out.body, out.contentType ?? 'text/plain; charset=utf-8', out.headers)
    } else if (out.body === undefined) {
      send(req, res, status, '', out.contentType ?? JSON_TYPE, out.headers)
    } else {
      send(req, res, status, JSON.stringify(out.body) + '\n', out.contentType ?? JSON_TYPE, out.headers)
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (e instanceof AdminHttpError) {
        sendError(req, res, e.status, e.code, e.message)
        return
      }
      const message = e instanceof Error ? e.message : String(e)
      log('error', 'admin request failed', { method: req.method, url: req.url, error: message })
      sendError(req, res, 500, 'INTERNAL', message)
    })
  })
  server.requestTimeout = 30_000
  server.headersTimeout = 10_000
  server.keepAliveTimeout = 5_000

  const host = opts.host ?? DEFAULT_ADMIN_HOST
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      const where = formatHostPort(host, opts.port)
      const why = e.code === 'EADDRINUSE' ? 'address already in use' : e.code === 'EADDRNOTAVAIL' ? 'address not available on this host' : e.message
      reject(Object.assign(new Error(`admin API cannot listen on ${where}: ${why}`), { code: e.code }))
    }
    server.once('error', onError)
    server.listen(opts.port, host, () => {
      server.off('error', onError)
      resolve()
    })
  })
  server.on('error', (e) => log('error', 'admin server error', { error: e.message }))

  const bound = server.address() as AddressInfo
  const address = { host, port: bound.port }
  log('info', 'admin API listening', { address: formatHostPort(host, bound.port) })

  let closing: Promise<void> | undefined
  return {
    address,
    url: `http://${formatHostPort(host, bound.port)}`,
    addRoute,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    },
  }
}
