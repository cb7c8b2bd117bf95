// Client for a controller's admin API (global fetch). Two failure kinds:
//   AdminUnreachableError (ADMIN_UNREACHABLE): nothing answered — refused, timed out, no route.
//   AdminProtocolError (ADMIN_PROTOCOL): something answered, but not with what we asked for
//     (an HTTP error status, or a body that isn't the expected JSON).
import { formatHostPort, parseAddress, type HostPort } from '../config/address.js'

/** Where an admin API listens: `host:port` text, or any parsed address (only host and port are read). */
export type AdminAddress = string | Pick<HostPort, 'host' | 'port'>
import { checkNodeStatus, type NodeStatus } from './status.js'
import { checkReloadReport, type ReloadReport } from './reload-report.js'

export const DEFAULT_ADMIN_TIMEOUT_MS = 3000

export class AdminUnreachableError extends Error {
  readonly code = 'ADMIN_UNREACHABLE' as const
  constructor(
    readonly address: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`admin API at ${address} is unreachable: ${reason}`, options)
    this.name = 'AdminUnreachableError'
  }
}

export class AdminProtocolError extends Error {
  readonly code = 'ADMIN_PROTOCOL' as const
  constructor(
    readonly address: string,
    message: string,
    /** HTTP status when the failure was an error response. */
    readonly status?: number,
    /** The server's error code from a JSON error body, if any. */
    readonly serverCode?: string,
  ) {
    super(`admin API at ${address}: ${message}`)
    this.name = 'AdminProtocolError'
  }
}

export interface AdminRequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH'
  /** Sent as JSON. */
  body?: unknown
  timeoutMs?: number
}

export interface AdminReply {
  status: number
  contentType: string
  text: string
}

/** `127.0.0.1:7360`, `[::1]:7360`, `http://host:port`, or a parsed address → base URL and display form. */
function target(address: AdminAddress): { base: string; display: string } {
  if (typeof address !== 'string') {
    const display = formatHostPort(address.host, address.port)
    return { base: `http://${display}`, display }
  }
  if (/^https?:\/\//i.test(address)) {
    const u = new URL(address)
    return { base: `${u.protocol}//${u.host}`, display: u.host }
  }
  const r = parseAddress(address)
  if (!r.ok) throw new TypeError(`bad admin address: ${r.reason}`)
  const display = formatHostPort(r.address.host, r.address.port)
  return { base: `http://${display}`, display }
}

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is the node running?)',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_SOCKET: 'connection closed unexpectedly',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
}

function errCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string') return e.code
  return undefined
}

function unreachable(display: string, e: unknown, timeoutMs: number): AdminUnreachableError {
  if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError'))
    return new AdminUnreachableError(display, `no answer within ${timeoutMs} ms`, { cause: e })
  const cause = e instanceof Error ? e.cause : undefined
  const code = errCode(cause) ?? errCode(e)
  const reason = (code && NETWORK_REASONS[code]) ?? (cause instanceof Error ? cause.message : e instanceof Error ? e.message : String(e))
  return new AdminUnreachableError(display, reason, { cause: e })
}

/** One request to the admin API. Non-2xx answers become AdminProtocolError. */
export async function adminRequest(address: AdminAddress, path: string, opts: AdminRequestOptions = {}): Promise<AdminReply> {
  const { base, display } = target(address)
  const timeoutMs = opts.timeoutMs ?? DEFAULT_ADMIN_TIMEOUT_MS
  const signal = AbortSignal.timeout(timeoutMs)
  const init: RequestInit = { method: opts.method ?? 'GET', signal, headers: { accept: 'application/json, text/plain;q=0.9' } }
  if (opts.body !== undefined) {
    init.body = JSON.stringify(opts.body)
    init.headers = { ...init.headers, 'content-type': 'application/json' }
  }
  let status: number
  let contentType: string
  let text: string
  try {
    const res = await fetch(base + path, init)
    status = res.status
    contentType = res.headers.get('content-type') ?? ''
    text = await res.text()
  } catch (e) {
    throw unreachable(display, e, timeoutMs)
  }
  if (status < 200 || status > 299) {
    let message = `${init.method} ${path} answered HTTP ${status}`
    let serverCode: string | undefined
    try {
      const parsed = JSON.parse(text) as unknown
      if (typeof parsed === 'object' && parsed !== null && 'error' in parsed) {
        const err = parsed.error
        if (typeof err === 'object' && err !== null) {
          if ('message' in err && typeof err.message === 'string') message += `: ${err.message}`
          if ('code' in err && typeof err.code === 'string') serverCode = err.code
        }
      }
    } catch {
      // not JSON: keep the status-only message
    }
    throw new AdminProtocolError(display, message, status, serverCode)
  }
  return { status, contentType, text }
}

/** GET a path and decode its JSON body. */
export async function adminGetJson(address: AdminAddress, path: string, opts: { timeoutMs?: number } = {}): Promise<unknown> {
  const reply = await adminRequest(address, path, opts)
  try {
    return JSON.parse(reply.text) as unknown
  } catch {
    const { display } = target(address)
    throw new AdminProtocolError(display, `GET ${path} did not return JSON (content-type ${reply.contentType || 'none'})`, reply.status)
  }
}

/** The node's status (GET /v1/status). */
export async function fetchStatus(address: AdminAddress, opts: { timeoutMs?: number } = {}): Promise<NodeStatus> {
  const body = await adminGetJson(address, '/v1/status', opts)
  const problem = checkNodeStatus(body)
  if (problem !== undefined) {
    throw new AdminProtocolError(target(address).display, `GET /v1/status returned something that is not a node status (${problem})`)
  }
  return body as NodeStatus
}

/**
 * Ask the node to re-read its config file and apply what it can live (POST /v1/reload). A config
 * the node cannot load comes back as AdminProtocolError with status 422 and serverCode
 * CONFIG_INVALID (its message names file:line: field); nothing was applied then.
 */
export async function reloadNode(address: AdminAddress, opts: { timeoutMs?: number } = {}): Promise<ReloadReport> {
  const reply = await adminRequest(address, '/v1/reload', { method: 'POST', ...opts })
  let body: unknown
  try {
    body = JSON.parse(reply.text) as unknown
  } catch {
    throw new AdminProtocolError(target(address).display, `POST /v1/reload did not return JSON (content-type ${reply.contentType || 'none'})`, reply.status)
  }
  const problem = checkReloadReport(body)
  if (problem !== undefined) {
    throw new AdminProtocolError(target(address).display, `POST /v1/reload returned something that is not a reload report (${problem})`)
  }
  return body as ReloadReport
}

/** The Prometheus text (GET /metrics). */
export async function fetchMetrics(address: AdminAddress, opts: { timeoutMs?: number } = {}): Promise<string> {
  return (await adminRequest(address, '/metrics', opts)).text
}

/** True when GET /healthz answers 200; false when unreachable. Protocol errors still throw. */
export async function isHealthy(address: AdminAddress, opts: { timeoutMs?: number } = {}): Promise<boolean> {
  try {
    await adminRequest(address, '/healthz', opts)
    return true
  } catch (e) {
    if (e instanceof AdminUnreachableError) return false
    throw e
  }
}
