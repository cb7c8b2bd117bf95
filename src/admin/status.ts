// What a controller reports about itself on GET /v1/status. The node runtime fills it in; the
// CLI (`node status`) and the HA peer read it. All times are ISO-8601 strings in UTC; all
// sizes and byte counts are numbers of bytes.

import type { InlineIoStats } from '../storage/inline-io.js'

/** Bumped on incompatible changes to NodeStatus. */
export const STATUS_SCHEMA_VERSION = 1

export interface LunStatus {
  lun: number
  /** Absolute path of the backing file or block device. */
  path: string
  kind: 'file' | 'block'
  sizeBytes: number
  blockSize: number
  /** Unit serial number (VPD page 0x80). */
  serial: string
  /** NAA identifier (VPD page 0x83) as lower-case hex without a prefix, e.g. "6001405f3a2b...". */
  naa: string
  readOnly: boolean
  /** Whether WCE is reported (write-back cache). */
  writeCache: boolean
  /** Where storage requests run (inline on the event loop or in the thread pool), and counts. */
  io: InlineIoStats
}

export interface SessionStatus {
  /** Target Session Identifying Handle. */
  tsih: number
  /** The SessionType key's value (RFC 7143 §13.21). */
  type: 'Normal' | 'Discovery'
  initiatorName: string
  /** Initiator Session ID as 12 lower-case hex digits. */
  isid: string
  /** Initiator's address, `host:port` (IPv6 in brackets). */
  remote: string
  /** The portal address the connection arrived on, `host:port`. */
  local: string
  connectedAt: string
  /** True when CRC32C header digests are in use, false for None. */
  headerDigest: boolean
  /** True when CRC32C data digests are in use, false for None. */
  dataDigest: boolean
  /** What the target accepts per PDU (declared by the target). */
  maxRecvDataSegmentLength: number
  /** What the target may send per PDU (declared by the initiator). */
  maxXmitDataSegmentLength: number
  /** SCSI commands received on this session. */
  commands: number
  readBytes: number
  writeBytes: number
}

export interface TargetStatus {
  iqn: string
  alias?: string
  tpgt: number
  luns: LunStatus[]
  sessions: SessionStatus[]
}

/** Totals since the node started; the same numbers the Prometheus counters carry. */
export interface NodeCounters {
  readOps: number
  writeOps: number
  readBytes: number
  writeBytes: number
  otherOps: number
  scsiErrors: number
  loginsAccepted: number
  loginsRejected: number
  pdusRejected: number
  connectionsDropped: number
  /** Connections turned away at once because max_connections were already open. */
  connectionsRefused: number
}

export interface NodeStatus {
  /** The node's name from the config (`nodes.<name>`). */
  node: string
  pid: number
  /** iscsi-ha package version. */
  version: string
  startedAt: string
  uptimeS: number
  /** iSCSI portal the node listens on, `host:port`. */
  portal: string
  /** Admin API address, `host:port`. */
  admin: string
  targets: TargetStatus[]
  /** TCP connections open on the portal now (logged in or still logging in), and the cap. */
  connections: { open: number; limit: number }
  counters: NodeCounters
}

export function emptyCounters(): NodeCounters {
  return {
    readOps: 0,
    writeOps: 0,
    readBytes: 0,
    writeBytes: 0,
    otherOps: 0,
    scsiErrors: 0,
    loginsAccepted: 0,
    loginsRejected: 0,
    pdusRejected: 0,
    connectionsDropped: 0,
    connectionsRefused: 0,
  }
}

const COUNTER_KEYS = Object.keys(emptyCounters()) as (keyof NodeCounters)[]

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * A shape check of a decoded status (top level, counters and the target list), enough to catch
 * talking to something that isn't an iscsi-ha admin API. Returns a reason, or undefined if it fits.
 */
export function checkNodeStatus(v: unknown): string | undefined {
  if (!isRecord(v)) return 'not a JSON object'
  for (const k of ['node', 'version', 'startedAt', 'portal', 'admin'] as const)
    if (typeof v[k] !== 'string') return `field ${k} is not a string`
  for (const k of ['pid', 'uptimeS'] as const) if (typeof v[k] !== 'number') return `field ${k} is not a number`
  if (!Array.isArray(v.targets)) return 'field targets is not a list'
  for (const [i, t] of v.targets.entries()) {
    if (!isRecord(t) || typeof t.iqn !== 'string' || !Array.isArray(t.luns) || !Array.isArray(t.sessions))
      return `targets[${i}] is not a target status`
  }
  const conns = v.connections
  if (!isRecord(conns) || typeof conns.open !== 'number' || typeof conns.limit !== 'number')
    return 'field connections is not { open, limit }'
  const c = v.counters
  if (!isRecord(c)) return 'field counters is not an object'
  for (const k of COUNTER_KEYS) if (typeof c[k] !== 'number') return `counters.${k} is not a number`
  return undefined
}

export function isNodeStatus(v: unknown): v is NodeStatus {
  return checkNodeStatus(v) === undefined
}
