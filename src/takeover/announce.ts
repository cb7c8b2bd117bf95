// Telling the network and the hosts that the service address moved (claims 46, 47).
//  - Gratuitous ARP (iputils arping -U): switches and hosts repoint the address's MAC at once.
//  - A nudge per host connection the old primary had: a plain TCP connect from the service
//    address:port to the host's port. The host holds an ESTABLISHED connection with that
//    4-tuple, so it answers the SYN with a challenge ACK (RFC 5961 §4); our kernel has no such
//    connection and answers that ACK with a RST carrying the host's own expected sequence
//    number, which the host accepts. A host that was idly waiting for replies learns at once
//    that its connection is dead, instead of after its TCP or iSCSI timeouts — the effect of
//    CTDB's "tickle ACK", with no raw sockets and no extra tool: the kernel sends every packet.

import { connect } from 'node:net'
import { execa } from 'execa'
import type { HostConnection } from '../ha/types.js'

export interface ArpOptions {
  ip: string
  interface: string
  count?: number
  intervalS?: number
}

/** Several unsolicited ARPs, spaced; resolves when arping is done (≈ count × interval). */
export async function gratuitousArp(opts: ArpOptions): Promise<{ sent: number; error?: string }> {
  const count = opts.count ?? 3
  const r = await execa('arping', ['-U', '-q', '-c', String(count), '-i', String(opts.intervalS ?? 0.2), '-I', opts.interface, opts.ip], {
    reject: false,
    timeout: 10_000,
  })
  // arping -U exits 1 when no reply came, which is normal for unsolicited ARP.
  if (r.exitCode !== 0 && r.exitCode !== 1) return { sent: 0, error: String(r.stderr || r.shortMessage) }
  return { sent: count }
}

function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':')
  const host = s.slice(0, i).replace(/^\[|\]$/g, '')
  return { host, port: Number(s.slice(i + 1)) }
}

export interface NudgeResult {
  connection: HostConnection
  /** How the probe ended: 'refused' means the host had already dropped the old connection. */
  outcome: 'refused' | 'reset' | 'timeout' | 'error'
}

/**
 * Nudge every host connection; must run before the service port listens on this node (a
 * listening socket would hold the local port). Resolves within `timeoutMs`.
 */
export async function nudgeHostConnections(conns: HostConnection[], timeoutMs = 300): Promise<NudgeResult[]> {
  return Promise.all(conns.map((c) => nudgeOne(c, timeoutMs)))
}

function nudgeOne(c: HostConnection, timeoutMs: number): Promise<NudgeResult> {
  const local = splitHostPort(c.local)
  const remote = splitHostPort(c.remote)
  return new Promise((resolve) => {
    const socket = connect({ host: remote.host, port: remote.port, localAddress: local.host, localPort: local.port })
    const done = (outcome: NudgeResult['outcome']): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve({ connection: c, outcome })
    }
    const timer = setTimeout(() => done('timeout'), timeoutMs)
    socket.once('connect', () => done('error'))
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') done('refused')
      else if (err.code === 'ECONNRESET') done('reset')
      else done('error')
    })
  })
}
