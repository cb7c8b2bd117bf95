// The validated configuration, as the rest of iscsi-ha sees it. Field names are the camelCase of
// the YAML keys; sizes are byte counts; paths are absolute; addresses are parsed.
import type { IoMode } from '../storage/inline-io.js'
import type { HostPort } from './address.js'

export type { HostPort } from './address.js'

export type BlockSize = 512 | 4096
export type DigestName = 'None' | 'CRC32C'

export interface LunConfig {
  /** LUN number, 0..16383. */
  lun: number
  /** Absolute path of the backing file or block device. */
  path: string
  /** Size in bytes; required (checked by loadConfig) when `path` does not exist yet, ignored for block devices. */
  sizeBytes?: number
  blockSize: BlockSize
  /**
   * Physical block size in bytes (READ CAPACITY (16) LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT,
   * Block Limits granularities): blockSize × a power of two, at most 64 KiB. Default blockSize
   * (defaultPhysicalBlockSize in defaults.ts says why); 4096 with 512-byte blocks reports 512e.
   */
  physicalBlockSize: number
  /**
   * Offer SANITIZE OVERWRITE. Default false: it writes every block, so on a thin-provisioned LUN
   * one host command allocates the whole LUN in the storage pool (DEFAULT_SANITIZE_OVERWRITE).
   */
  sanitizeOverwrite: boolean
  readOnly: boolean
  /**
   * Where reads and writes run: 'auto' (default; inline on the event loop while the page cache
   * answers, the thread pool when storage is slow or remote), 'inline', or 'threadpool'.
   */
  io: IoMode
  /** Report a volatile write cache (WCE=1); the engine then honours SYNCHRONIZE CACHE and FUA. Default true. */
  writeCache: boolean
  /**
   * Removable medium (INQUIRY RMB=1: START STOP UNIT ejects, PREVENT ALLOW MEDIUM REMOVAL holds).
   * Default false: Windows failover clusters refuse removable disks.
   */
  removable: boolean
  /** Unit serial number override (VPD page 0x80); printable ASCII, at most 64 characters. */
  serial?: string
}

export interface ChapConfig {
  /** CHAP_N the initiator must present. */
  user: string
  /** Secret the initiator proves; 12..255 bytes. */
  secret: string
  /** Mutual CHAP: the name the target answers with. Set together with mutualSecret. */
  mutualUser?: string
  /** Mutual CHAP: the target's secret; 12..255 bytes and different from `secret`. */
  mutualSecret?: string
}

export interface TargetConfig {
  /** Normalized (lower-case) iSCSI name: iqn., eui. or naa. */
  iqn: string
  alias?: string
  /** Target portal group tag reported to initiators, 1..65535 (default 1). */
  tpgt: number
  /** Sorted by LUN number. */
  luns: LunConfig[]
  chap?: ChapConfig
  /** Allowed initiator names (normalized); undefined means any initiator may log in. */
  initiators?: string[]
}

export interface NodeConfig {
  /** The key under `nodes:`, matching [a-z0-9_-]+. */
  name: string
  /** Where this controller's iSCSI target listens. */
  portal: HostPort
  /** Where its management API (HTTP/JSON) listens. */
  admin: HostPort
  /** Where the partner controller reaches it (HA pairing). */
  peer?: HostPort
}

export interface ServiceConfig {
  /** The floating service address initiators use (moves with the active controller). */
  address: HostPort
  /** Network interface the controller adds it to; absent: the address is already local (loopback). */
  interface?: string
  /** Prefix length for the address (0..32 for IPv4, 0..128 for IPv6); default 32 / 128. */
  prefix: number
}

/** Timings of the pair (defaults give a failover under 1 s on a quiet network). */
export interface HaTuning {
  heartbeatIntervalMs: number
  /** Nothing heard on the peer link for this long: the link is down. */
  deadAfterMs: number
  /** A lease not renewed for this long (seen by the watcher's own clock) has lapsed. */
  leaseDurationMs: number
  leaseRenewMs: number
  /** A primary that could not renew for this long stops serving (must be < leaseDurationMs). */
  fenceAfterMs: number
  /** A copy not confirmed by the secondary within this is written through instead. */
  ackTimeoutMs: number
  /** Lease area on the shared storage; default: beside the first LUN, `<path>.lease`. */
  leasePath?: string
}

export interface JournalConfig {
  /** Committed-not-completed bytes held at most; the primary waits beyond it. */
  maxBytes: number
  /** Persist the secondary's copies here (local disk) so `replay` works after both died. */
  dir?: string
}

export interface IscsiTuning {
  maxRecvDataSegmentLength: number
  maxBurstLength: number
  firstBurstLength: number
  maxOutstandingR2T: number
  immediateData: boolean
  initialR2T: boolean
  /** Seconds between NOP-In pings to an idle initiator; 0 disables them. */
  nopIntervalS: number
  /** Seconds to wait for a NOP-Out answer before dropping the connection. */
  nopTimeoutS: number
  /** Commands an initiator may have outstanding per session (the CmdSN window). */
  queueDepth: number
  /** Sessions (normal and discovery) the node accepts at once; further logins are refused. */
  maxSessions: number
  /** TCP connections the portal accepts at once; further ones are closed on accept. */
  maxConnections: number
  /** Digests the target accepts, in order of preference. */
  headerDigest: DigestName[]
  dataDigest: DigestName[]
}

export interface ClusterConfig {
  /** Absolute path of the file it was loaded from; undefined for the embedded default or parsed text without a real file. */
  source?: string
  targets: TargetConfig[]
  /** Controllers by name (at most two: an HA pair). */
  nodes: Record<string, NodeConfig>
  service?: ServiceConfig
  /** Shared secret the two controllers authenticate each other with (at least 16 bytes). */
  peerSecret?: string
  iscsi: IscsiTuning
  ha: HaTuning
  journal: JournalConfig
}
