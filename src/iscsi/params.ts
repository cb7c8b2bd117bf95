// Login keys (RFC 7143 §12, §13): the environment a login runs against, the parameters a login
// produces, the table of keys with their negotiation rules, and the value grammar (§6.1).

// ------------------------------------------------------------------ environment and results

export interface ChapConfig {
  /** CHAP_N the initiator must present. */
  user: string
  /** Secret the initiator proves knowledge of (used as its UTF-8 bytes). */
  secret: string
  /** Mutual CHAP: the name the target answers with. */
  mutualUser?: string
  /** Mutual CHAP: the target's own secret; must differ from `secret` (§9.2.1). */
  mutualSecret?: string
}

export interface TargetAccess {
  iqn: string
  alias?: string
  tpgt: number
  /** "ip:port,tpgt" strings for SendTargets (IPv6 addresses in brackets). */
  portals: string[]
  /** When set, CHAP is mandatory for this target. */
  chap?: ChapConfig
  /** Allow-list of initiator names; undefined means any initiator. */
  initiators?: string[]
}

/** Our preferences and caps for the negotiable session parameters. */
export interface TargetLimits {
  maxRecvDataSegmentLength: number
  maxBurstLength: number
  firstBurstLength: number
  maxOutstandingR2T: number
  immediateData: boolean
  initialR2T: boolean
  defaultTime2Wait: number
  defaultTime2Retain: number
  /** Digests this target accepts (HeaderDigest / DataDigest); both when absent. */
  headerDigests?: readonly string[]
  dataDigests?: readonly string[]
}

export interface LoginEnvironment {
  findTarget(iqn: string): TargetAccess | undefined
  /** For discovery SendTargets. */
  listTargets(): TargetAccess[]
  targetLimits: TargetLimits
  /** Injected for deterministic tests (CHAP identifiers and challenges). */
  randomBytes(n: number): Buffer
  /** When set, CHAP is mandatory for discovery sessions. */
  discoveryChap?: ChapConfig
}

export interface SessionParams {
  sessionType: 'Normal' | 'Discovery'
  initiatorName: string
  initiatorAlias?: string
  targetName?: string
  target?: TargetAccess
  headerDigest: boolean
  dataDigest: boolean
  /** What we accept per PDU (what we declared, or the 8192 default if we never declared). */
  maxRecvDataSegmentLength: number
  /** The initiator's declared MaxRecvDataSegmentLength: the most we may send per PDU. */
  maxXmitDataSegmentLength: number
  maxBurstLength: number
  firstBurstLength: number
  immediateData: boolean
  initialR2T: boolean
  maxOutstandingR2T: number
  dataPDUInOrder: boolean
  dataSequenceInOrder: boolean
  defaultTime2Wait: number
  defaultTime2Retain: number
  errorRecoveryLevel: number
  maxConnections: number
  ifMarker: false
  ofMarker: false
}

/** Allow-list check. iSCSI names compare case-insensitively: they are normalized to lower case (§4.2.7). */
export function initiatorAllowed(target: TargetAccess, initiatorName: string): boolean {
  if (!target.initiators) return true
  const name = initiatorName.toLowerCase()
  return target.initiators.some((allowed) => allowed.toLowerCase() === name)
}

// ------------------------------------------------------------------ limits and defaults

/** §6.1: most values are at most 255 bytes. */
export const MAX_SIMPLE_VALUE_BYTES = 255
/** §4.2.7 (iSCSI names): at most 223 bytes. */
export const MAX_ISCSI_NAME_BYTES = 223
/** §13.12-§13.14: data segment and burst lengths range over 512..2^24-1. */
export const MIN_DATA_LENGTH = 512
export const MAX_DATA_LENGTH = 2 ** 24 - 1
/** §13.12: the MaxRecvDataSegmentLength in force until one is declared. */
export const DEFAULT_MAX_RECV_DATA_SEGMENT_LENGTH = 8192

/** The values in force for a session before (or without) negotiation: RFC 7143 §13 defaults. */
export const RFC_DEFAULTS = {
  headerDigest: false,
  dataDigest: false,
  maxConnections: 1,
  initialR2T: true,
  immediateData: true,
  maxRecvDataSegmentLength: DEFAULT_MAX_RECV_DATA_SEGMENT_LENGTH,
  maxBurstLength: 262144,
  firstBurstLength: 65536,
  defaultTime2Wait: 2,
  defaultTime2Retain: 20,
  maxOutstandingR2T: 1,
  dataPDUInOrder: true,
  dataSequenceInOrder: true,
  errorRecoveryLevel: 0,
  ifMarker: false,
  ofMarker: false,
  rdmaExtensions: false,
  protocolLevel: 1,
} as const

/** The special answers of §6.2 (a key's value may be replaced by one of these). */
export const Answer = {
  NotUnderstood: 'NotUnderstood',
  Irrelevant: 'Irrelevant',
  Reject: 'Reject',
} as const

export function isReservedAnswer(value: string): boolean {
  return value === Answer.NotUnderstood || value === Answer.Irrelevant || value === Answer.Reject
}

// ------------------------------------------------------------------ key table

/** When a key may be sent (the "Use" line of §13, plus "Any-Stage"). */
export type KeyStage = 'security' | 'operational' | 'any' | 'full-feature'
export type KeySender = 'initiator' | 'target' | 'both'

/** Negotiated boolean and numeric values the login keeps track of, by field. */
export type BooleanField = 'initialR2T' | 'immediateData' | 'dataPDUInOrder' | 'dataSequenceInOrder' | 'ifMarker' | 'ofMarker' | 'rdmaExtensions'
export type NumberField =
  | 'maxConnections'
  | 'maxBurstLength'
  | 'firstBurstLength'
  | 'defaultTime2Wait'
  | 'defaultTime2Retain'
  | 'maxOutstandingR2T'
  | 'errorRecoveryLevel'
  | 'protocolLevel'

export type KeyRule =
  /** No answer expected; the value is simply declared (§6.2). */
  | { kind: 'declarative' }
  /** Boolean with result function AND or OR (§6.2.2). */
  | { kind: 'boolean'; result: 'and' | 'or'; field: BooleanField }
  /** Numerical with result function Minimum or Maximum, range inclusive (§6.2.2). */
  | { kind: 'number'; result: 'min' | 'max'; min: number; max: number; field: NumberField }
  /** List: the responder picks the first offered value it supports (§6.2.1). */
  | { kind: 'list'; supported: readonly string[] }
  /** Numerical declaration with a range (MaxRecvDataSegmentLength). */
  | { kind: 'declared-number'; min: number; max: number }
  /** Handled by the authentication exchange (§12). */
  | { kind: 'security' }
  /** Obsolete keys that must be answered Reject (§13.25). */
  | { kind: 'reject' }

export interface KeyDef {
  name: string
  /** RFC 7143 section, for messages. */
  section: string
  stage: KeyStage
  sender: KeySender
  /** "LO": only meaningful on the leading connection of a session. */
  leadingOnly: boolean
  /** "Irrelevant when: SessionType=Discovery". */
  irrelevantForDiscovery: boolean
  rule: KeyRule
}

const DIGESTS = ['CRC32C', 'None'] as const

function def(
  name: string,
  section: string,
  stage: KeyStage,
  sender: KeySender,
  rule: KeyRule,
  flags: { lo?: boolean; discoveryIrrelevant?: boolean } = {},
): KeyDef {
  return {
    name,
    section,
    stage,
    sender,
    rule,
    leadingOnly: flags.lo ?? false,
    irrelevantForDiscovery: flags.discoveryIrrelevant ?? false,
  }
}

const len = { min: MIN_DATA_LENGTH, max: MAX_DATA_LENGTH }

/** Every key this target understands. Anything else is answered NotUnderstood (§6.2). */
export const KEY_TABLE: ReadonlyMap<string, KeyDef> = new Map(
  [
    // §12: security negotiation
    def('AuthMethod', '§12.1', 'security', 'both', { kind: 'security' }),
    def('CHAP_A', '§12.1.3', 'security', 'both', { kind: 'security' }),
    def('CHAP_I', '§12.1.3', 'security', 'both', { kind: 'security' }),
    def('CHAP_C', '§12.1.3', 'security', 'both', { kind: 'security' }),
    def('CHAP_N', '§12.1.3', 'security', 'both', { kind: 'security' }),
    def('CHAP_R', '§12.1.3', 'security', 'both', { kind: 'security' }),
    // §13: operational keys
    def('HeaderDigest', '§13.1', 'operational', 'both', { kind: 'list', supported: DIGESTS }),
    def('DataDigest', '§13.1', 'operational', 'both', { kind: 'list', supported: DIGESTS }),
    def('MaxConnections', '§13.2', 'operational', 'both',
      { kind: 'number', result: 'min', min: 1, max: 65535, field: 'maxConnections' },
      { lo: true, discoveryIrrelevant: true }),
    def('SendTargets', '§13.3', 'full-feature', 'initiator', { kind: 'declarative' }),
    def('TargetName', '§13.4', 'any', 'initiator', { kind: 'declarative' }),
    def('InitiatorName', '§13.5', 'any', 'initiator', { kind: 'declarative' }),
    def('TargetAlias', '§13.6', 'any', 'target', { kind: 'declarative' }),
    def('InitiatorAlias', '§13.7', 'any', 'initiator', { kind: 'declarative' }),
    def('TargetAddress', '§13.8', 'any', 'target', { kind: 'declarative' }),
    def('TargetPortalGroupTag', '§13.9', 'any', 'target', { kind: 'declarative' }),
    def('InitialR2T', '§13.10', 'operational', 'both',
      { kind: 'boolean', result: 'or', field: 'initialR2T' }, { lo: true, discoveryIrrelevant: true }),
    def('ImmediateData', '§13.11', 'operational', 'both',
      { kind: 'boolean', result: 'and', field: 'immediateData' }, { lo: true, discoveryIrrelevant: true }),
    def('MaxRecvDataSegmentLength', '§13.12', 'operational', 'both', { kind: 'declared-number', ...len }),
    def('MaxBurstLength', '§13.13', 'operational', 'both',
      { kind: 'number', result: 'min', ...len, field: 'maxBurstLength' }, { lo: true, discoveryIrrelevant: true }),
    def('FirstBurstLength', '§13.14', 'operational', 'both',
      { kind: 'number', result: 'min', ...len, field: 'firstBurstLength' }, { lo: true, discoveryIrrelevant: true }),
    def('DefaultTime2Wait', '§13.15', 'operational', 'both',
      { kind: 'number', result: 'max', min: 0, max: 3600, field: 'defaultTime2Wait' }, { lo: true }),
    def('DefaultTime2Retain', '§13.16', 'operational', 'both',
      { kind: 'number', result: 'min', min: 0, max: 3600, field: 'defaultTime2Retain' }, { lo: true }),
    def('MaxOutstandingR2T', '§13.17', 'operational', 'both',
      { kind: 'number', result: 'min', min: 1, max: 65535, field: 'maxOutstandingR2T' },
      { lo: true, discoveryIrrelevant: true }),
    def('DataPDUInOrder', '§13.18', 'operational', 'both',
      { kind: 'boolean', result: 'or', field: 'dataPDUInOrder' }, { lo: true, discoveryIrrelevant: true }),
    def('DataSequenceInOrder', '§13.19', 'operational', 'both',
      { kind: 'boolean', result: 'or', field: 'dataSequenceInOrder' }, { lo: true, discoveryIrrelevant: true }),
    def('ErrorRecoveryLevel', '§13.20', 'operational', 'both',
      { kind: 'number', result: 'min', min: 0, max: 2, field: 'errorRecoveryLevel' }, { lo: true }),
    def('SessionType', '§13.21', 'any', 'initiator', { kind: 'declarative' }, { lo: true }),
    def('TaskReporting', '§13.23', 'operational', 'both', { kind: 'list', supported: ['RFC3720'] },
      { lo: true, discoveryIrrelevant: true }),
    def('iSCSIProtocolLevel', '§13.24', 'operational', 'both',
      { kind: 'number', result: 'min', min: 0, max: 31, field: 'protocolLevel' }, { lo: true }),
    // §13.25: obsoleted keys. IFMarker/OFMarker may be answered No (AND with our No).
    def('IFMarker', '§13.25', 'operational', 'both', { kind: 'boolean', result: 'and', field: 'ifMarker' }),
    def('OFMarker', '§13.25', 'operational', 'both', { kind: 'boolean', result: 'and', field: 'ofMarker' }),
    def('IFMarkInt', '§13.25', 'operational', 'both', { kind: 'reject' }),
    def('OFMarkInt', '§13.25', 'operational', 'both', { kind: 'reject' }),
    def('X#NodeArchitecture', '§13.26', 'any', 'both', { kind: 'declarative' }, { lo: true }),
    // RFC 7145 (iSER): we only do TCP, so AND with our No.
    def('RDMAExtensions', 'RFC 7145', 'operational', 'both',
      { kind: 'boolean', result: 'and', field: 'rdmaExtensions' }, { lo: true, discoveryIrrelevant: true }),
  ].map((d) => [d.name, d]),
)

export function keyDef(name: string): KeyDef | undefined {
  return KEY_TABLE.get(name)
}

/** The target's own value for each negotiable field, from its configured limits (clamped to range). */
export type LocalValues = Record<BooleanField, boolean> & Record<NumberField, number> & { maxRecvDataSegmentLength: number }

export function localValues(limits: TargetLimits): LocalValues {
  const maxBurstLength = clamp(limits.maxBurstLength, MIN_DATA_LENGTH, MAX_DATA_LENGTH)
  return {
    maxRecvDataSegmentLength: clamp(limits.maxRecvDataSegmentLength, MIN_DATA_LENGTH, MAX_DATA_LENGTH),
    maxBurstLength,
    // §13.14: FirstBurstLength MUST NOT exceed MaxBurstLength.
    firstBurstLength: Math.min(clamp(limits.firstBurstLength, MIN_DATA_LENGTH, MAX_DATA_LENGTH), maxBurstLength),
    maxOutstandingR2T: clamp(limits.maxOutstandingR2T, 1, 65535),
    defaultTime2Wait: clamp(limits.defaultTime2Wait, 0, 3600),
    defaultTime2Retain: clamp(limits.defaultTime2Retain, 0, 3600),
    immediateData: limits.immediateData,
    initialR2T: limits.initialR2T,
    // What this implementation supports, independent of configuration:
    maxConnections: 1,
    errorRecoveryLevel: 0,
    protocolLevel: 1,
    dataPDUInOrder: true,
    dataSequenceInOrder: true,
    ifMarker: false,
    ofMarker: false,
    rdmaExtensions: false,
  }
}

function clamp(n: number, lo: number, hi: number): number {
  if (!Number.isFinite(n)) return lo
  return Math.min(hi, Math.max(lo, Math.trunc(n)))
}

// ------------------------------------------------------------------ value grammar (§6.1)

/**
 * A numerical value: decimal-constant or hex-constant (§6.1). Returns undefined when malformed
 * or beyond 2^53 (every numerical key we know has a far smaller range, so that is out of range
 * either way).
 */
export function parseNumber(value: string): number | undefined {
  let n: number
  if (/^[0-9]+$/.test(value)) n = Number(value)
  else if (/^0[xX][0-9a-fA-F]+$/.test(value)) n = Number.parseInt(value.slice(2), 16)
  else return undefined
  return Number.isSafeInteger(n) ? n : undefined
}

/** A boolean-value is exactly "Yes" or "No" (§6.1, case-sensitive). */
export function parseBoolean(value: string): boolean | undefined {
  if (value === 'Yes') return true
  if (value === 'No') return false
  return undefined
}

export function formatBoolean(b: boolean): 'Yes' | 'No' {
  return b ? 'Yes' : 'No'
}

/** A list-of-values: comma-separated, no empty item, each item at most 255 bytes (§6.1). */
export function parseList(value: string): string[] | undefined {
  const items = value.split(',')
  for (const item of items) {
    if (item.length === 0 || Buffer.byteLength(item, 'utf8') > MAX_SIMPLE_VALUE_BYTES) return undefined
  }
  return items
}

/**
 * A binary-value used as a byte string (CHAP_C, CHAP_R): hex-constant "0x..." or
 * base64-constant "0b..." (§6.1). An odd number of hex digits has an implied leading zero nibble.
 */
export function decodeBinary(value: string): Buffer | undefined {
  const prefix = value.slice(0, 2)
  const body = value.slice(2)
  if (prefix === '0x' || prefix === '0X') {
    if (!/^[0-9a-fA-F]+$/.test(body)) return undefined
    return Buffer.from(body.length % 2 === 1 ? `0${body}` : body, 'hex')
  }
  if (prefix === '0b' || prefix === '0B') {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length % 4 !== 0) return undefined
    const bytes = Buffer.from(body, 'base64')
    // Canonical only: reject encodings whose unused bits are set.
    return bytes.length > 0 && bytes.toString('base64') === body ? bytes : undefined
  }
  return undefined
}

/** Encode bytes as a hex-constant (what initiators parse most widely). */
export function encodeHex(bytes: Buffer): string {
  return `0x${bytes.toString('hex')}`
}
