// Defaults, the embedded default configuration, and node selection.
import type { IoMode } from '../storage/inline-io.js'
import { resolve } from 'node:path'
import { parseAddress, type HostPort } from './address.js'
import { ConfigError } from './errors.js'
import type { ClusterConfig, HaTuning, IscsiTuning, NodeConfig } from './types.js'

/** The well-known iSCSI port (RFC 7143 §13.2); a portal written without a port gets it. */
export const ISCSI_PORT = 3260
export const DEFAULT_ADMIN_ADDRESS = '127.0.0.1:7360'
export const DEFAULT_PORTAL_ADDRESS = '127.0.0.1:3260'
export const DEFAULT_TARGET_IQN = 'iqn.2026-11.io.iscsi-ha:default'
export const DEFAULT_DATA_DIR = './iscsi-ha-data'
export const DEFAULT_LUN_SIZE = 1024 ** 3
export const DEFAULT_TPGT = 1

/** Largest `physical_block_size`: the SCSI engine refuses more (MAX_PHYSICAL_BLOCK_SIZE, src/scsi/limits.ts). */
export const MAX_PHYSICAL_BLOCK_SIZE = 64 * 1024

/**
 * `physical_block_size` when it is not given: `block_size` itself (LOGICAL BLOCKS PER PHYSICAL
 * BLOCK EXPONENT 0), so a LUN looks like a 512n or a 4Kn disk, as hosts expect of those formats
 * and as libiscsi's GET LBA STATUS test (GetLBAStatus.UnmapSingle) assumes: with several logical
 * blocks per physical block it wants an answer SBC-4 does not allow. The 4 KiB in which the page
 * cache works and holes are punched still reaches hosts that unmap (the Block Limits OPTIMAL
 * UNMAP GRANULARITY is at least 4 KiB). `physical_block_size: 4096` with `block_size: 512`
 * reports a 512e disk, for admins who want hosts to align their I/O to 4 KiB. The SCSI engine has
 * the same default for units built without a config (defaultPhysicalBlockSize in limits.ts).
 */
export function defaultPhysicalBlockSize(blockSize: number): number {
  return blockSize
}

/**
 * `sanitize_overwrite` when it is not given: off. SANITIZE OVERWRITE writes every block of the
 * LUN, so on a thin-provisioned LUN a single host command allocates all of it in the storage
 * pool; an administrator must choose to allow that. BLOCK ERASE is always offered.
 */
export const DEFAULT_SANITIZE_OVERWRITE = false

/**
 * `io` when it is not given: 'auto'. Reads and writes run on the event-loop thread while the
 * page cache answers them, and move to the thread pool for a while when storage is slow; a file
 * on a network or cluster file system always uses the thread pool (src/storage/inline-io.ts).
 */
export const DEFAULT_IO_MODE: IoMode = 'auto'

/** The values `physical_block_size` may take with `blockSize`-byte logical blocks. */
export function physicalBlockSizes(blockSize: number): number[] {
  const out: number[] = []
  for (let p = blockSize; p <= MAX_PHYSICAL_BLOCK_SIZE; p *= 2) out.push(p)
  return out
}

export const DEFAULT_ISCSI: Readonly<IscsiTuning> = Object.freeze<IscsiTuning>({
  maxRecvDataSegmentLength: 262144,
  maxBurstLength: 1048576,
  firstBurstLength: 262144,
  maxOutstandingR2T: 8,
  immediateData: true,
  initialR2T: false,
  nopIntervalS: 5,
  nopTimeoutS: 15,
  queueDepth: 128,
  maxSessions: 64,
  maxConnections: 256,
  headerDigest: ['None', 'CRC32C'],
  dataDigest: ['None', 'CRC32C'],
})

export function defaultIscsiTuning(): IscsiTuning {
  return { ...DEFAULT_ISCSI, headerDigest: [...DEFAULT_ISCSI.headerDigest], dataDigest: [...DEFAULT_ISCSI.dataDigest] }
}

function addr(text: string): HostPort {
  const r = parseAddress(text)
  if (!r.ok) throw new Error(`bad built-in address ${text}: ${r.reason}`)
  return r.address
}

/**
 * The configuration used when none is given: one target with LUN 0, a 1 GiB sparse file
 * `<dataDir>/lun0.img` (dataDir resolved against the current directory), and one node `a`
 * with its portal on 127.0.0.1:3260 and its admin API on 127.0.0.1:7360.
 */
export function defaultConfig(dataDir: string = DEFAULT_DATA_DIR): ClusterConfig {
  return {
    targets: [
      {
        iqn: DEFAULT_TARGET_IQN,
        alias: 'default',
        tpgt: DEFAULT_TPGT,
        luns: [
          {
            lun: 0,
            path: resolve(dataDir, 'lun0.img'),
            sizeBytes: DEFAULT_LUN_SIZE,
            blockSize: 512,
            physicalBlockSize: defaultPhysicalBlockSize(512),
            sanitizeOverwrite: DEFAULT_SANITIZE_OVERWRITE,
            readOnly: false,
            writeCache: true,
            removable: false,
            io: DEFAULT_IO_MODE,
          },
        ],
      },
    ],
    nodes: { a: { name: 'a', portal: addr(DEFAULT_PORTAL_ADDRESS), admin: addr(DEFAULT_ADMIN_ADDRESS) } },
    iscsi: defaultIscsiTuning(),
    ha: { ...DEFAULT_HA },
    journal: { maxBytes: DEFAULT_JOURNAL_BYTES },
  }
}

/**
 * The default configuration as a commented YAML file (what `defaultConfig(dataDir)` returns when
 * loaded from a file in the current directory), for `init`-style commands and documentation.
 */
export function exampleConfigYaml(dataDir: string = DEFAULT_DATA_DIR): string {
  const lunPath = `${dataDir.replace(/\/+$/, '')}/lun0.img`
  return `# iscsi-ha configuration. Sizes: K/M/G/T and KiB/MiB/GiB/TiB are powers of 1024;
# KB/MB/GB/TB are powers of 1000. Relative paths are relative to this file's directory.
targets:
  - iqn: ${DEFAULT_TARGET_IQN}
    alias: default
    luns:
      - lun: 0
        path: ${JSON.stringify(lunPath)}   # created sparse at this size if missing
        size: 1GiB
        block_size: 512
    # chap: { user: alice, secret: a-12-char-secret }
    # initiators: [iqn.1993-08.org.debian:01:host1]
nodes:
  a:
    portal: ${DEFAULT_PORTAL_ADDRESS}
    admin: ${DEFAULT_ADMIN_ADDRESS}
`
}

/**
 * Picks the node this process runs as and returns its name (a key of `cfg.nodes`): `name` when
 * given, else the only node. Throws a ConfigError naming the choices when the name is unknown or
 * there are several to choose from.
 */
export function selectNode(cfg: ClusterConfig, name?: string): string {
  return pickNode(cfg, name).name
}

/** Like selectNode, returning the node's config. */
export function pickNode(cfg: ClusterConfig, name?: string): NodeConfig {
  const names = Object.keys(cfg.nodes)
  const file = cfg.source ?? '<config>'
  const fail = (message: string): never => {
    throw new ConfigError([{ file, line: 0, column: 0, field: 'nodes', message }])
  }
  if (name !== undefined) {
    const node = Object.hasOwn(cfg.nodes, name) ? cfg.nodes[name] : undefined
    if (!node) return fail(`no node named ${JSON.stringify(name)} (choose one of: ${names.join(', ') || 'none defined'})`)
    return node
  }
  if (names.length === 1) return cfg.nodes[names[0]!]!
  if (names.length === 0) return fail('no nodes are defined')
  return fail(`${names.length} nodes are defined (${names.join(', ')}): name the one to run as with --node`)
}

/** HA pair timings: see HaTuning. */
export const DEFAULT_HA: Readonly<HaTuning> = Object.freeze({
  heartbeatIntervalMs: 100,
  deadAfterMs: 400,
  leaseDurationMs: 600,
  leaseRenewMs: 100,
  fenceAfterMs: 360,
  ackTimeoutMs: 1000,
})

/** Committed-not-completed bytes the pair holds at most by default. */
export const DEFAULT_JOURNAL_BYTES = 256 * 1024 * 1024
