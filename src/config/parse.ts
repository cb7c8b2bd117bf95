// YAML → ClusterConfig. Walks the yaml package's document tree (not plain JS objects) so every
// problem can name its file, line and field path; collects all problems and throws them together.
import { dirname, resolve } from 'node:path'
import {
  LineCounter,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  parseDocument,
  type Document,
  type Node as YamlNode,
} from 'yaml'
import { formatHostPort, isWildcardHost, parseAddress, type HostPort } from './address.js'
import {
  DEFAULT_ADMIN_ADDRESS,
  DEFAULT_HA,
  DEFAULT_JOURNAL_BYTES,
  DEFAULT_IO_MODE,
  DEFAULT_SANITIZE_OVERWRITE,
  DEFAULT_TPGT,
  ISCSI_PORT,
  MAX_PHYSICAL_BLOCK_SIZE,
  defaultIscsiTuning,
  defaultPhysicalBlockSize,
  physicalBlockSizes,
} from './defaults.js'
import { ConfigError, type ConfigProblem } from './errors.js'
import { parseIscsiName } from './names.js'
import { SIZE_HINT, parseSize } from './size.js'
import { closest } from './suggest.js'
import type { IoMode } from '../storage/inline-io.js'
import type {
  BlockSize,
  ChapConfig,
  ClusterConfig,
  DigestName,
  IscsiTuning,
  HaTuning,
  JournalConfig,
  LunConfig,
  NodeConfig,
  ServiceConfig,
  TargetConfig,
} from './types.js'

/** CHAP secret length in bytes. RFC 7143 §12.1.3: fewer than 96 random bits (12 bytes) needs IPsec. */
export const CHAP_SECRET_MIN_BYTES = 12
/** No upper bound in the RFC; 255 bytes keeps secrets within what common initiators store. */
export const CHAP_SECRET_MAX_BYTES = 255
export const CHAP_NAME_MAX_BYTES = 255
export const PEER_SECRET_MIN_BYTES = 16
export const MAX_LUN = 16383
export const MAX_NODES = 2
/** RFC 7143 §13: data segment and burst lengths are 512..2^24-1 bytes. */
const MIN_DATA_LEN = 512
const MAX_DATA_LEN = 16777215

export interface Pos {
  line: number
  column: number
}

/** Where parts of the config came from, for checks that run after parsing (loadConfig's file checks). */
export interface LunSource {
  field: string
  pos: Pos
  pathPos: Pos
}

export interface ParsedConfig {
  config: ClusterConfig
  luns: WeakMap<LunConfig, LunSource>
}

type Entry = { key: string; keyNode: YamlNode; value: YamlNode | null }
type Entries = Map<string, Entry>

const join = (base: string, key: string): string => (base ? `${base}.${key}` : key)
const at = (base: string, i: number): string => `${base}[${i}]`
const bytes = (s: string): number => Buffer.byteLength(s, 'utf8')

class Ctx {
  readonly problems: ConfigProblem[] = []
  /** Field paths an unknown key was taken for ("did you mean"); no "is required" for those. */
  readonly suggested = new Set<string>()
  constructor(
    readonly file: string,
    readonly dir: string,
    private readonly lc: LineCounter,
    private readonly doc: Document.Parsed,
  ) {}

  posOf(node: YamlNode | null | undefined): Pos {
    const offset = node?.range?.[0]
    if (offset === undefined) return { line: 0, column: 0 }
    return this.offsetPos(offset)
  }

  offsetPos(offset: number): Pos {
    const { line, col } = this.lc.linePos(offset)
    return { line, column: col }
  }

  add(node: YamlNode | null | undefined, field: string, message: string, pos?: Pos): void {
    const p = pos ?? this.posOf(node)
    this.problems.push({ file: this.file, line: p.line, column: p.column, field, message })
  }

  /** Follows `*alias` to its anchored node. */
  deref(node: YamlNode | null | undefined): YamlNode | null {
    if (!node) return null
    if (isAlias(node)) return (node.resolve(this.doc) as YamlNode | undefined) ?? null
    return node
  }
}

function describe(node: YamlNode | null): string {
  if (node === null) return 'nothing'
  if (isMap(node)) return 'a mapping'
  if (isSeq(node)) return 'a list'
  if (isScalar(node)) {
    const v = node.value
    if (v === null) return 'nothing'
    if (typeof v === 'string') return `the string ${JSON.stringify(v)}`
    return `${typeof v} ${String(v)}`
  }
  return 'an unsupported value'
}

/** Reads a mapping, reporting unknown keys (with a suggestion) and non-string keys. */
function readMap(ctx: Ctx, raw: YamlNode | null, field: string, keys: readonly string[] | null): Entries | undefined {
  const node = ctx.deref(raw)
  if (!node || !isMap(node)) {
    ctx.add(node ?? raw, field, `expected a mapping of keys, found ${describe(node)}`)
    return undefined
  }
  const out: Entries = new Map()
  for (const pair of node.items) {
    const keyNode = pair.key as YamlNode | null
    const value = ctx.deref(pair.value as YamlNode | null)
    const k = isScalar(keyNode) ? keyNode.value : undefined
    if (typeof k !== 'string' && typeof k !== 'number') {
      ctx.add(keyNode, field, 'keys must be plain names')
      continue
    }
    const key = String(k)
    if (keys && !keys.includes(key)) {
      const near = closest(key, keys)
      const hint = near ? ` (did you mean "${near}"?)` : ` (expected one of: ${keys.join(', ')})`
      if (near) ctx.suggested.add(join(field, near))
      ctx.add(keyNode, join(field, key), `unknown key${hint}`)
      continue
    }
    out.set(key, { key, keyNode: keyNode as YamlNode, value })
  }
  return out
}

function readSeq(ctx: Ctx, raw: YamlNode | null, field: string): YamlNode[] | undefined {
  const node = ctx.deref(raw)
  if (!node || !isSeq(node)) {
    ctx.add(node ?? raw, field, `expected a list, found ${describe(node)}`)
    return undefined
  }
  return node.items.map((item) => ctx.deref(item as YamlNode | null) ?? (item as YamlNode))
}

/** A value node for reporting: the value, or the key when the value is empty. */
function spot(e: Entry): YamlNode {
  return e.value && e.value.range ? e.value : e.keyNode
}

function required(ctx: Ctx, entries: Entries, parent: YamlNode | null, field: string, key: string): Entry | undefined {
  const e = entries.get(key)
  if (!e && !ctx.suggested.has(join(field, key))) ctx.add(parent, join(field, key), 'is required')
  return e
}

function scalarValue(e: Entry): unknown {
  return e.value && isScalar(e.value) ? e.value.value : e.value === null ? null : undefined
}

function str(ctx: Ctx, e: Entry, field: string, what = 'a string'): string | undefined {
  const v = scalarValue(e)
  if (typeof v === 'string') return v
  const hint = typeof v === 'number' || typeof v === 'boolean' ? ' (put it in quotes)' : ''
  ctx.add(spot(e), field, `expected ${what}, found ${describe(e.value)}${hint}`)
  return undefined
}

function bool(ctx: Ctx, e: Entry, field: string): boolean | undefined {
  const v = scalarValue(e)
  if (typeof v === 'boolean') return v
  ctx.add(spot(e), field, `expected true or false, found ${describe(e.value)}`)
  return undefined
}

function int(ctx: Ctx, e: Entry, field: string, min: number, max: number): number | undefined {
  const v = scalarValue(e)
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    ctx.add(spot(e), field, `expected a whole number ${min}..${max}, found ${describe(e.value)}`)
    return undefined
  }
  if (v < min || v > max) {
    ctx.add(spot(e), field, `${v} is out of range ${min}..${max}`)
    return undefined
  }
  return v
}

function seconds(ctx: Ctx, e: Entry, field: string, min: number, minInclusive: boolean): number | undefined {
  const v = scalarValue(e)
  const okRange = typeof v === 'number' && Number.isFinite(v) && (minInclusive ? v >= min : v > min) && v <= 86400
  if (!okRange) {
    const bound = minInclusive ? `${min} or more` : `more than ${min}`
    ctx.add(spot(e), field, `expected a number of seconds, ${bound} (at most 86400), found ${describe(e.value)}`)
    return undefined
  }
  return v
}

function address(ctx: Ctx, e: Entry, field: string, defaultPort?: number): HostPort | undefined {
  const v = scalarValue(e)
  if (typeof v === 'number') {
    ctx.add(spot(e), field, `expected host:port, found a bare number ${v} (e.g. 127.0.0.1:${v})`)
    return undefined
  }
  const text = str(ctx, e, field, 'an address like 127.0.0.1:3260')
  if (text === undefined) return undefined
  const r = parseAddress(text, defaultPort)
  if (!r.ok) {
    ctx.add(spot(e), field, r.reason)
    return undefined
  }
  return r.address
}

function iscsiName(ctx: Ctx, e: Entry, field: string): string | undefined {
  const text = str(ctx, e, field, 'an iSCSI name')
  if (text === undefined) return undefined
  const r = parseIscsiName(text)
  if (!r.ok) {
    ctx.add(spot(e), field, r.reason)
    return undefined
  }
  return r.name
}

function hasControlChars(s: string): boolean {
  return /[\u0000-\u001f\u007f]/.test(s)
}

// ---------------------------------------------------------------------------------------------

const ROOT_KEYS = ['targets', 'nodes', 'service', 'peer_secret', 'iscsi', 'ha', 'journal'] as const
const HA_KEYS = ['heartbeat_interval_ms', 'dead_after_ms', 'lease_duration_ms', 'lease_renew_ms', 'fence_after_ms', 'ack_timeout_ms', 'lease_path'] as const
const JOURNAL_KEYS = ['max_bytes', 'dir'] as const
const TARGET_KEYS = ['iqn', 'alias', 'tpgt', 'luns', 'chap', 'initiators'] as const
const LUN_KEYS = ['lun', 'path', 'size', 'block_size', 'physical_block_size', 'read_only', 'write_cache', 'removable', 'sanitize_overwrite', 'io', 'serial'] as const
const IO_MODES = ['auto', 'inline', 'threadpool'] as const
const CHAP_KEYS = ['user', 'secret', 'mutual_user', 'mutual_secret'] as const
const NODE_KEYS = ['portal', 'admin', 'peer'] as const
const SERVICE_KEYS = ['address', 'interface', 'prefix'] as const
const ISCSI_KEYS = [
  'max_recv_data_segment_length',
  'max_burst_length',
  'first_burst_length',
  'max_outstanding_r2t',
  'immediate_data',
  'initial_r2t',
  'nop_interval_s',
  'nop_timeout_s',
  'queue_depth',
  'max_sessions',
  'max_connections',
  'header_digest',
  'data_digest',
] as const

function parseLun(ctx: Ctx, raw: YamlNode, field: string, luns: WeakMap<LunConfig, LunSource>): LunConfig | undefined {
  const m = readMap(ctx, raw, field, LUN_KEYS)
  if (!m) return undefined
  const before = ctx.problems.length

  const lunE = required(ctx, m, raw, field, 'lun')
  const lun = lunE && int(ctx, lunE, join(field, 'lun'), 0, MAX_LUN)

  const pathE = required(ctx, m, raw, field, 'path')
  let path: string | undefined
  if (pathE) {
    const p = str(ctx, pathE, join(field, 'path'), 'a file or block device path')
    if (p !== undefined) {
      if (p.trim() === '') ctx.add(spot(pathE), join(field, 'path'), 'must not be empty')
      else if (p.includes('\0')) ctx.add(spot(pathE), join(field, 'path'), 'must not contain NUL')
      else path = resolve(ctx.dir, p)
    }
  }

  let blockSize: BlockSize = 512
  let blockSizeOk = true
  const bsE = m.get('block_size')
  if (bsE) {
    const v = scalarValue(bsE)
    if (v === 512 || v === 4096) blockSize = v
    else {
      ctx.add(spot(bsE), join(field, 'block_size'), `must be 512 or 4096, found ${describe(bsE.value)}`)
      blockSizeOk = false
    }
  }

  // A number of bytes or a size (4KiB): the block size times a power of two, at most 64 KiB.
  // Checked only against a valid block_size, so that one mistake is reported once.
  let physicalBlockSize = defaultPhysicalBlockSize(blockSize)
  const pbsE = m.get('physical_block_size')
  if (pbsE && blockSizeOk) {
    const v = scalarValue(pbsE)
    const f = join(field, 'physical_block_size')
    const allowed = physicalBlockSizes(blockSize)
    const hint = `the block size ${blockSize} times a power of two, at most ${MAX_PHYSICAL_BLOCK_SIZE} (${allowed.slice(0, -1).join(', ')} or ${allowed[allowed.length - 1]})`
    const r = typeof v === 'string' || typeof v === 'number' ? parseSize(v) : undefined
    if (r === undefined) ctx.add(spot(pbsE), f, `expected ${hint}, found ${describe(pbsE.value)}`)
    else if (!r.ok) ctx.add(spot(pbsE), f, r.reason)
    else if (!allowed.includes(r.bytes)) ctx.add(spot(pbsE), f, `must be ${hint}, found ${r.bytes}`)
    else physicalBlockSize = r.bytes
  }

  let sizeBytes: number | undefined
  const sizeE = m.get('size')
  if (sizeE) {
    const v = scalarValue(sizeE)
    const f = join(field, 'size')
    if (typeof v !== 'string' && typeof v !== 'number') {
      ctx.add(spot(sizeE), f, `expected a size such as 1GiB, found ${describe(sizeE.value)}`)
    } else {
      const r = parseSize(v)
      if (!r.ok) ctx.add(spot(sizeE), f, r.reason)
      else if (r.bytes === 0) ctx.add(spot(sizeE), f, `must be more than 0 (${SIZE_HINT})`)
      else if (r.bytes % blockSize !== 0)
        ctx.add(spot(sizeE), f, `${JSON.stringify(v)} (${r.bytes} bytes) is not a multiple of the block size ${blockSize}`)
      else sizeBytes = r.bytes
    }
  }

  const roE = m.get('read_only')
  const readOnly = roE ? bool(ctx, roE, join(field, 'read_only')) : false
  const wcE = m.get('write_cache')
  const writeCache = wcE ? bool(ctx, wcE, join(field, 'write_cache')) : true
  const rmE = m.get('removable')
  const removable = rmE ? bool(ctx, rmE, join(field, 'removable')) : false
  // Opt-in: OVERWRITE allocates every block of a thin LUN (DEFAULT_SANITIZE_OVERWRITE says why).
  const soE = m.get('sanitize_overwrite')
  const sanitizeOverwrite = soE ? bool(ctx, soE, join(field, 'sanitize_overwrite')) : DEFAULT_SANITIZE_OVERWRITE
  let io: IoMode = DEFAULT_IO_MODE
  const ioE = m.get('io')
  if (ioE) {
    const v = str(ctx, ioE, join(field, 'io'), 'auto, inline or threadpool')
    if (v !== undefined) {
      if ((IO_MODES as readonly string[]).includes(v)) io = v as IoMode
      else ctx.add(spot(ioE), join(field, 'io'), `must be auto, inline or threadpool, found ${JSON.stringify(v)}`)
    }
  }

  let serial: string | undefined
  const serialE = m.get('serial')
  if (serialE) {
    const v = scalarValue(serialE)
    const s = typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : str(ctx, serialE, join(field, 'serial'))
    if (s !== undefined) {
      if (!/^[\x21-\x7e]{1,64}$/.test(s))
        ctx.add(spot(serialE), join(field, 'serial'), `${JSON.stringify(s)} must be 1..64 printable ASCII characters without spaces`)
      else serial = s
    }
  }

  if (ctx.problems.length > before || lun === undefined || path === undefined) return undefined
  const out: LunConfig = {
    lun,
    path,
    blockSize,
    physicalBlockSize,
    sanitizeOverwrite: sanitizeOverwrite ?? DEFAULT_SANITIZE_OVERWRITE,
    readOnly: readOnly ?? false,
    writeCache: writeCache ?? true,
    removable: removable ?? false,
    io,
  }
  if (sizeBytes !== undefined) out.sizeBytes = sizeBytes
  if (serial !== undefined) out.serial = serial
  luns.set(out, { field, pos: ctx.posOf(raw), pathPos: ctx.posOf(pathE ? spot(pathE) : raw) })
  return out
}

function chapSecret(ctx: Ctx, e: Entry, field: string): string | undefined {
  const s = str(ctx, e, field, 'a secret string')
  if (s === undefined) return undefined
  const n = bytes(s)
  if (n < CHAP_SECRET_MIN_BYTES) {
    ctx.add(
      spot(e),
      field,
      `is ${n} bytes; CHAP secrets need at least ${CHAP_SECRET_MIN_BYTES} bytes (96 bits, RFC 7143 §12.1.3)`,
    )
    return undefined
  }
  if (n > CHAP_SECRET_MAX_BYTES) {
    ctx.add(spot(e), field, `is ${n} bytes; at most ${CHAP_SECRET_MAX_BYTES} are allowed`)
    return undefined
  }
  return s
}

function chapUser(ctx: Ctx, e: Entry, field: string): string | undefined {
  const v = scalarValue(e)
  const s = typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : str(ctx, e, field, 'a user name')
  if (s === undefined) return undefined
  if (s === '' || bytes(s) > CHAP_NAME_MAX_BYTES || hasControlChars(s)) {
    ctx.add(spot(e), field, `must be 1..${CHAP_NAME_MAX_BYTES} bytes without control characters`)
    return undefined
  }
  return s
}

function parseChap(ctx: Ctx, raw: YamlNode | null, field: string): ChapConfig | undefined {
  const m = readMap(ctx, raw, field, CHAP_KEYS)
  if (!m) return undefined
  const before = ctx.problems.length
  const userE = required(ctx, m, raw, field, 'user')
  const user = userE && chapUser(ctx, userE, join(field, 'user'))
  const secretE = required(ctx, m, raw, field, 'secret')
  const secret = secretE && chapSecret(ctx, secretE, join(field, 'secret'))
  const muE = m.get('mutual_user')
  const msE = m.get('mutual_secret')
  const mutualUser = muE && chapUser(ctx, muE, join(field, 'mutual_user'))
  const mutualSecret = msE && chapSecret(ctx, msE, join(field, 'mutual_secret'))
  if (muE && !msE) ctx.add(raw, join(field, 'mutual_secret'), 'is required with mutual_user (mutual CHAP needs both)')
  if (msE && !muE) ctx.add(raw, join(field, 'mutual_user'), 'is required with mutual_secret (mutual CHAP needs both)')
  if (msE && secret !== undefined && mutualSecret !== undefined && secret === mutualSecret) {
    ctx.add(
      spot(msE),
      join(field, 'mutual_secret'),
      'must differ from secret (RFC 7143 §12.1.3: a CHAP secret must not be used in both directions)',
    )
  }
  if (ctx.problems.length > before || user === undefined || secret === undefined) return undefined
  const out: ChapConfig = { user, secret }
  if (mutualUser !== undefined && mutualSecret !== undefined) {
    out.mutualUser = mutualUser
    out.mutualSecret = mutualSecret
  }
  return out
}

function parseTarget(ctx: Ctx, raw: YamlNode, field: string, luns: WeakMap<LunConfig, LunSource>): TargetConfig | undefined {
  const m = readMap(ctx, raw, field, TARGET_KEYS)
  if (!m) return undefined
  const before = ctx.problems.length

  const iqnE = required(ctx, m, raw, field, 'iqn')
  const iqn = iqnE && iscsiName(ctx, iqnE, join(field, 'iqn'))

  let alias: string | undefined
  const aliasE = m.get('alias')
  if (aliasE) {
    const a = str(ctx, aliasE, join(field, 'alias'))
    if (a !== undefined) {
      if (a === '' || bytes(a) > 255 || hasControlChars(a))
        ctx.add(spot(aliasE), join(field, 'alias'), 'must be 1..255 bytes without control characters')
      else alias = a
    }
  }

  const tpgtE = m.get('tpgt')
  const tpgt = tpgtE ? int(ctx, tpgtE, join(field, 'tpgt'), 1, 65535) : DEFAULT_TPGT

  const lunList: LunConfig[] = []
  const lunsE = required(ctx, m, raw, field, 'luns')
  if (lunsE) {
    const f = join(field, 'luns')
    const items = readSeq(ctx, lunsE.value, f)
    if (items && items.length === 0) ctx.add(spot(lunsE), f, 'must list at least one LUN')
    const seen = new Map<number, { field: string; line: number }>()
    items?.forEach((item, i) => {
      const lf = at(f, i)
      const lun = parseLun(ctx, item, lf, luns)
      if (!lun) return
      const prev = seen.get(lun.lun)
      if (prev) {
        const lunNode = (isMap(item) ? item.get('lun', true) : null) as YamlNode | null
        ctx.add(lunNode ?? item, join(lf, 'lun'), `LUN ${lun.lun} is already used by ${prev.field} (line ${prev.line})`)
        return
      }
      seen.set(lun.lun, { field: lf, line: ctx.posOf(item).line })
      lunList.push(lun)
    })
  }

  let chap: ChapConfig | undefined
  const chapE = m.get('chap')
  if (chapE) chap = parseChap(ctx, chapE.value, join(field, 'chap'))

  let initiators: string[] | undefined
  const initE = m.get('initiators')
  if (initE) {
    const f = join(field, 'initiators')
    const items = readSeq(ctx, initE.value, f)
    if (items) {
      if (items.length === 0) ctx.add(spot(initE), f, 'is empty, which would refuse every initiator (remove the key to allow any)')
      const names: string[] = []
      items.forEach((item, i) => {
        const name = iscsiName(ctx, { key: String(i), keyNode: item, value: item }, at(f, i))
        if (name === undefined) return
        if (names.includes(name)) ctx.add(item, at(f, i), `${JSON.stringify(name)} is listed twice`)
        else names.push(name)
      })
      initiators = names
    }
  }

  if (ctx.problems.length > before || iqn === undefined || tpgt === undefined) return undefined
  const out: TargetConfig = { iqn, tpgt, luns: lunList.sort((a, b) => a.lun - b.lun) }
  if (alias !== undefined) out.alias = alias
  if (chap) out.chap = chap
  if (initiators) out.initiators = initiators
  return out
}

function parseNode(ctx: Ctx, name: string, keyNode: YamlNode, raw: YamlNode | null, field: string): NodeConfig | undefined {
  const before = ctx.problems.length
  if (!/^[a-z0-9_-]+$/.test(name)) {
    ctx.add(keyNode, field, `node name ${JSON.stringify(name)} must match [a-z0-9_-]+ (lower-case letters, digits, '_', '-')`)
  }
  const m = readMap(ctx, raw ?? keyNode, field, NODE_KEYS)
  if (!m) return undefined
  const portalE = required(ctx, m, raw, field, 'portal')
  const portal = portalE && address(ctx, portalE, join(field, 'portal'), ISCSI_PORT)
  const adminE = m.get('admin')
  const admin = adminE ? address(ctx, adminE, join(field, 'admin')) : defaultAdmin()
  const peerE = m.get('peer')
  const peer = peerE && address(ctx, peerE, join(field, 'peer'))
  if (portal && admin && portal.port === admin.port && portal.host === admin.host) {
    ctx.add(adminE ? spot(adminE) : raw, join(field, 'admin'), `is the same address as the portal (${portal.text})`)
  }
  if (ctx.problems.length > before || !portal || !admin) return undefined
  const out: NodeConfig = { name, portal, admin }
  if (peer) out.peer = peer
  return out
}

function defaultAdmin(): HostPort {
  const r = parseAddress(DEFAULT_ADMIN_ADDRESS)
  if (!r.ok) throw new Error('bad default admin address')
  return r.address
}

function parseService(ctx: Ctx, raw: YamlNode | null, field: string): ServiceConfig | undefined {
  const m = readMap(ctx, raw, field, SERVICE_KEYS)
  if (!m) return undefined
  const before = ctx.problems.length
  const addrE = required(ctx, m, raw, field, 'address')
  const addr = addrE && address(ctx, addrE, join(field, 'address'), ISCSI_PORT)
  if (addrE && addr && (addr.family === 'dns' || isWildcardHost(addr.host))) {
    ctx.add(spot(addrE), join(field, 'address'), `${JSON.stringify(addr.text)}: the service address must be a specific IPv4 or IPv6 address`)
  }
  const ifE = m.get('interface')
  let iface: string | undefined
  if (ifE) {
    const s = str(ctx, ifE, join(field, 'interface'), 'an interface name')
    if (s !== undefined) {
      if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(s))
        ctx.add(spot(ifE), join(field, 'interface'), `${JSON.stringify(s)} is not an interface name (1..15 characters)`)
      else iface = s
    }
  }
  // Without an interface the address is already local (loopback): nothing to add or drop.
  const prefixE = m.get('prefix')
  const maxPrefix = addr?.family === 6 ? 128 : 32
  const prefix = prefixE ? int(ctx, prefixE, join(field, 'prefix'), 0, maxPrefix) : maxPrefix
  if (ctx.problems.length > before || !addr || prefix === undefined) return undefined
  return { address: addr, ...(iface !== undefined ? { interface: iface } : {}), prefix }
}


function parseHa(ctx: Ctx, raw: YamlNode | null, field: string): HaTuning {
  const t: HaTuning = { ...DEFAULT_HA }
  const m = readMap(ctx, raw, field, HA_KEYS)
  if (!m) return t
  const setInt = (key: string, min: number, max: number, assign: (v: number) => void): void => {
    const e = m.get(key)
    if (!e) return
    const v = int(ctx, e, join(field, key), min, max)
    if (v !== undefined) assign(v)
  }
  setInt('heartbeat_interval_ms', 10, 60_000, (v) => (t.heartbeatIntervalMs = v))
  setInt('dead_after_ms', 20, 600_000, (v) => (t.deadAfterMs = v))
  setInt('lease_duration_ms', 50, 600_000, (v) => (t.leaseDurationMs = v))
  setInt('lease_renew_ms', 10, 60_000, (v) => (t.leaseRenewMs = v))
  setInt('fence_after_ms', 20, 600_000, (v) => (t.fenceAfterMs = v))
  setInt('ack_timeout_ms', 10, 600_000, (v) => (t.ackTimeoutMs = v))
  const lpE = m.get('lease_path')
  if (lpE) {
    const p = str(ctx, lpE, join(field, 'lease_path'), 'a file path on the shared storage')
    if (p !== undefined && p.trim() !== '') t.leasePath = resolve(ctx.dir, p)
  }
  // Safety: a primary must have fenced itself before the partner may take over.
  if (t.fenceAfterMs >= t.leaseDurationMs)
    ctx.add(m.get('fence_after_ms') ? spot(m.get('fence_after_ms')!) : raw, join(field, 'fence_after_ms'), `${t.fenceAfterMs} must be less than lease_duration_ms ${t.leaseDurationMs}, or both controllers could serve at once`)
  if (t.leaseRenewMs * 2 > t.fenceAfterMs)
    ctx.add(m.get('lease_renew_ms') ? spot(m.get('lease_renew_ms')!) : raw, join(field, 'lease_renew_ms'), `${t.leaseRenewMs} leaves less than two renewals before fence_after_ms ${t.fenceAfterMs}`)
  if (t.heartbeatIntervalMs * 2 > t.deadAfterMs)
    ctx.add(m.get('dead_after_ms') ? spot(m.get('dead_after_ms')!) : raw, join(field, 'dead_after_ms'), `${t.deadAfterMs} is less than two heartbeat intervals (${t.heartbeatIntervalMs})`)
  return t
}

function parseJournal(ctx: Ctx, raw: YamlNode | null, field: string): JournalConfig {
  const j: JournalConfig = { maxBytes: DEFAULT_JOURNAL_BYTES }
  const m = readMap(ctx, raw, field, JOURNAL_KEYS)
  if (!m) return j
  const mbE = m.get('max_bytes')
  if (mbE) {
    const v = scalarValue(mbE)
    const r = typeof v === 'string' || typeof v === 'number' ? parseSize(v) : undefined
    if (!r || !r.ok || r.bytes < 1024 * 1024) ctx.add(spot(mbE), join(field, 'max_bytes'), `expected a size of at least 1MiB (${SIZE_HINT})`)
    else j.maxBytes = r.bytes
  }
  const dE = m.get('dir')
  if (dE) {
    const p = str(ctx, dE, join(field, 'dir'), 'a directory on the local disk')
    if (p !== undefined && p.trim() !== '') j.dir = resolve(ctx.dir, p)
  }
  return j
}

function digests(ctx: Ctx, e: Entry, field: string): DigestName[] | undefined {
  const node = e.value
  const items: YamlNode[] = node && isSeq(node) ? (node.items as YamlNode[]) : node ? [node] : []
  const out: DigestName[] = []
  for (const item of items) {
    const v = isScalar(item) ? item.value : undefined
    const name = typeof v === 'string' ? v.toUpperCase() : ''
    const d: DigestName | undefined = name === 'NONE' ? 'None' : name === 'CRC32C' ? 'CRC32C' : undefined
    if (!d) {
      ctx.add(item, field, `expected None or CRC32C (or a list of them, in order of preference), found ${describe(item)}`)
      return undefined
    }
    if (!out.includes(d)) out.push(d)
  }
  if (out.length === 0) {
    ctx.add(spot(e), field, 'must name at least one of None, CRC32C')
    return undefined
  }
  return out
}

function parseIscsi(ctx: Ctx, raw: YamlNode | null, field: string): IscsiTuning {
  const t = defaultIscsiTuning()
  const m = readMap(ctx, raw, field, ISCSI_KEYS)
  if (!m) return t
  const f = (k: string): string => join(field, k)
  const setInt = (key: string, min: number, max: number, assign: (v: number) => void): void => {
    const e = m.get(key)
    if (!e) return
    const v = int(ctx, e, f(key), min, max)
    if (v !== undefined) assign(v)
  }
  setInt('max_recv_data_segment_length', MIN_DATA_LEN, MAX_DATA_LEN, (v) => (t.maxRecvDataSegmentLength = v))
  setInt('max_burst_length', MIN_DATA_LEN, MAX_DATA_LEN, (v) => (t.maxBurstLength = v))
  setInt('first_burst_length', MIN_DATA_LEN, MAX_DATA_LEN, (v) => (t.firstBurstLength = v))
  setInt('max_outstanding_r2t', 1, 65535, (v) => (t.maxOutstandingR2T = v))
  setInt('queue_depth', 1, 65535, (v) => (t.queueDepth = v))
  setInt('max_sessions', 1, 65535, (v) => (t.maxSessions = v))
  setInt('max_connections', 1, 65535, (v) => (t.maxConnections = v))
  const setBool = (key: string, assign: (v: boolean) => void): void => {
    const e = m.get(key)
    if (!e) return
    const v = bool(ctx, e, f(key))
    if (v !== undefined) assign(v)
  }
  setBool('immediate_data', (v) => (t.immediateData = v))
  setBool('initial_r2t', (v) => (t.initialR2T = v))
  const niE = m.get('nop_interval_s')
  if (niE) {
    const v = seconds(ctx, niE, f('nop_interval_s'), 0, true)
    if (v !== undefined) t.nopIntervalS = v
  }
  const ntE = m.get('nop_timeout_s')
  if (ntE) {
    const v = seconds(ctx, ntE, f('nop_timeout_s'), 0, false)
    if (v !== undefined) t.nopTimeoutS = v
  }
  const hdE = m.get('header_digest')
  if (hdE) t.headerDigest = digests(ctx, hdE, f('header_digest')) ?? t.headerDigest
  const ddE = m.get('data_digest')
  if (ddE) t.dataDigest = digests(ctx, ddE, f('data_digest')) ?? t.dataDigest

  const fbE = m.get('first_burst_length')
  if (t.firstBurstLength > t.maxBurstLength) {
    ctx.add(
      fbE ? spot(fbE) : raw,
      f('first_burst_length'),
      `${t.firstBurstLength} is larger than max_burst_length ${t.maxBurstLength} (RFC 7143 §13.14)`,
    )
  }
  return t
}

/** Two controllers claiming the same unicast host:port is a mistake; loopback and wildcard are per machine. */
function checkNodeAddresses(ctx: Ctx, nodes: Record<string, NodeConfig>, nodesNode: YamlNode | null): void {
  const seen = new Map<string, string>()
  for (const node of Object.values(nodes)) {
    for (const kind of ['portal', 'admin', 'peer'] as const) {
      const a = node[kind]
      if (!a || a.family === 'dns' || isWildcardHost(a.host) || /^127\.|^::1$/.test(a.host)) continue
      const key = formatHostPort(a.host, a.port)
      const field = `nodes.${node.name}.${kind}`
      const prev = seen.get(key)
      if (prev && !prev.startsWith(`nodes.${node.name}.`)) {
        const valueNode = nodesNode && isMap(nodesNode) ? (nodesNode.getIn([node.name, kind], true) as YamlNode | undefined) : undefined
        ctx.add(valueNode ?? nodesNode, field, `${key} is also used by ${prev}`)
      } else if (!prev) seen.set(key, field)
    }
  }
}

/** Parses and validates, returning source positions alongside. Throws ConfigError. */
export function parseConfigDetailed(text: string, fileName: string): ParsedConfig {
  const lc = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lc, keepSourceTokens: true, prettyErrors: false, uniqueKeys: true })
  const source = resolve(fileName)
  const ctx = new Ctx(fileName, dirname(source), lc, doc)

  if (doc.errors.length > 0) {
    for (const err of doc.errors) {
      const p = ctx.offsetPos(err.pos[0])
      const msg = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')
      ctx.add(null, '', `YAML syntax: ${msg}`, p)
    }
    throw new ConfigError(ctx.problems)
  }
  const root = doc.contents as YamlNode | null
  if (!root || (isScalar(root) && root.value === null)) {
    throw new ConfigError([{ file: fileName, line: 1, column: 1, field: '', message: 'the file is empty (it needs targets: and nodes:)' }])
  }

  const luns = new WeakMap<LunConfig, LunSource>()
  const top = readMap(ctx, root, '', ROOT_KEYS)
  if (!top) throw new ConfigError(ctx.problems)

  // targets
  const targets: TargetConfig[] = []
  const targetsE = required(ctx, top, root, '', 'targets')
  if (targetsE) {
    const items = readSeq(ctx, targetsE.value, 'targets')
    if (items && items.length === 0) ctx.add(spot(targetsE), 'targets', 'must list at least one target')
    const seenIqn = new Map<string, { field: string; line: number }>()
    const seenPath = new Map<string, string>()
    items?.forEach((item, i) => {
      const field = at('targets', i)
      const t = parseTarget(ctx, item, field, luns)
      if (!t) return
      const prev = seenIqn.get(t.iqn)
      if (prev) {
        const iqnNode = (isMap(item) ? item.get('iqn', true) : null) as YamlNode | null
        ctx.add(iqnNode ?? item, join(field, 'iqn'), `${t.iqn} is already used by ${prev.field} (line ${prev.line})`)
        return
      }
      seenIqn.set(t.iqn, { field, line: ctx.posOf(item).line })
      for (const lun of t.luns) {
        const src = luns.get(lun)
        const lf = src?.field ?? field
        const other = seenPath.get(lun.path)
        if (other) ctx.add(null, join(lf, 'path'), `${lun.path} is already the backing store of ${other}`, src?.pathPos)
        else seenPath.set(lun.path, lf)
      }
      targets.push(t)
    })
  }

  // nodes
  const nodes: Record<string, NodeConfig> = {}
  const nodesE = required(ctx, top, root, '', 'nodes')
  if (nodesE) {
    const m = readMap(ctx, nodesE.value, 'nodes', null)
    if (m) {
      if (m.size === 0) ctx.add(spot(nodesE), 'nodes', 'must define at least one node')
      if (m.size > MAX_NODES) ctx.add(spot(nodesE), 'nodes', `defines ${m.size} nodes; an HA pair has at most ${MAX_NODES}`)
      for (const e of m.values()) {
        const n = parseNode(ctx, e.key, e.keyNode, e.value, join('nodes', e.key))
        if (n) nodes[n.name] = n
      }
      checkNodeAddresses(ctx, nodes, nodesE.value)
    }
  }

  let service: ServiceConfig | undefined
  const serviceE = top.get('service')
  if (serviceE) service = parseService(ctx, serviceE.value, 'service')

  let peerSecret: string | undefined
  const psE = top.get('peer_secret')
  if (psE) {
    const s = str(ctx, psE, 'peer_secret', 'a secret string')
    if (s !== undefined) {
      if (bytes(s) < PEER_SECRET_MIN_BYTES) ctx.add(spot(psE), 'peer_secret', `is ${bytes(s)} bytes; use at least ${PEER_SECRET_MIN_BYTES}`)
      else peerSecret = s
    }
  }

  const iscsiE = top.get('iscsi')
  const iscsi = iscsiE ? parseIscsi(ctx, iscsiE.value, 'iscsi') : defaultIscsiTuning()

  const haE = top.get('ha')
  const ha = haE ? parseHa(ctx, haE.value, 'ha') : { ...DEFAULT_HA }
  const journalE = top.get('journal')
  const journal = journalE ? parseJournal(ctx, journalE.value, 'journal') : { maxBytes: DEFAULT_JOURNAL_BYTES }

  if (ctx.problems.length > 0) {
    ctx.problems.sort((a, b) => a.line - b.line || a.column - b.column)
    throw new ConfigError(ctx.problems)
  }
  const config: ClusterConfig = { source, targets, nodes, iscsi, ha, journal }
  if (service) config.service = service
  if (peerSecret !== undefined) config.peerSecret = peerSecret
  return { config, luns }
}

/**
 * Parses and validates config text. `fileName` names the file in messages and anchors relative
 * LUN paths (to its directory). Does not touch the file system. Throws ConfigError listing
 * every problem found.
 */
export function parseConfig(text: string, fileName: string): ClusterConfig {
  return parseConfigDetailed(text, fileName).config
}
