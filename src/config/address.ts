// host:port addresses: `127.0.0.1:3260`, `[::1]:3260`, `node-a.example:7360`.
import { isIPv4, isIPv6 } from 'node:net'

export interface HostPort {
  /** IPv4 literal, IPv6 literal without brackets, or a DNS name. */
  host: string
  port: number
  /** The address as written in the config. */
  text: string
  family: 4 | 6 | 'dns'
}

export type AddressResult = { ok: true; address: HostPort } | { ok: false; reason: string }

const HOSTNAME_RE = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i

function parsePort(text: string, show: string): { ok: true; port: number } | { ok: false; reason: string } {
  if (!/^\d{1,5}$/.test(text)) return { ok: false, reason: `${show}: port ${JSON.stringify(text)} is not a number 1..65535` }
  const port = Number(text)
  if (port < 1 || port > 65535) return { ok: false, reason: `${show}: port ${port} is not in 1..65535` }
  return { ok: true, port }
}

/**
 * Parses `host:port` or `[v6]:port`. With `defaultPort`, a bare host (`10.0.0.5`, `[fd00::5]`)
 * gets that port. Bare IPv6 without brackets is refused since its last group looks like a port.
 */
export function parseAddress(input: string, defaultPort?: number): AddressResult {
  const text = input.trim()
  const show = JSON.stringify(input)
  const hint = defaultPort === undefined ? 'host:port or [IPv6]:port' : 'host[:port] or [IPv6][:port]'
  if (text === '') return { ok: false, reason: `must not be empty (use ${hint})` }

  let host: string
  let portText: string | undefined
  if (text.startsWith('[')) {
    const close = text.indexOf(']')
    if (close < 0) return { ok: false, reason: `${show} has "[" without "]" (use ${hint})` }
    host = text.slice(1, close)
    const rest = text.slice(close + 1)
    if (rest !== '') {
      if (!rest.startsWith(':')) return { ok: false, reason: `${show}: expected ":port" after "]"` }
      portText = rest.slice(1)
    }
    if (!isIPv6(host)) return { ok: false, reason: `${show}: ${JSON.stringify(host)} is not an IPv6 address` }
  } else {
    const colons = text.split(':').length - 1
    if (colons > 1) return { ok: false, reason: `${show}: write IPv6 addresses in brackets, e.g. [::1]:3260` }
    const idx = text.lastIndexOf(':')
    host = idx < 0 ? text : text.slice(0, idx)
    if (idx >= 0) portText = text.slice(idx + 1)
    if (!isIPv4(host) && !HOSTNAME_RE.test(host)) {
      return { ok: false, reason: `${show}: ${JSON.stringify(host)} is not an IPv4 address or host name (use ${hint})` }
    }
    if (/^[\d.]+$/.test(host) && !isIPv4(host)) return { ok: false, reason: `${show}: ${JSON.stringify(host)} is not a valid IPv4 address` }
  }

  let port: number
  if (portText === undefined) {
    if (defaultPort === undefined) return { ok: false, reason: `${show} has no port (use ${hint})` }
    port = defaultPort
  } else {
    const p = parsePort(portText, show)
    if (!p.ok) return p
    port = p.port
  }
  const family = isIPv4(host) ? 4 : isIPv6(host) ? 6 : 'dns'
  return { ok: true, address: { host, port, text, family } }
}

/** `host:port` with brackets around IPv6 literals, fit for URLs and log lines. */
export function formatHostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`
}

/** True for the unspecified addresses (listen on every interface). */
export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || (isIPv6(host) && /^[0:]+$/.test(host))
}
