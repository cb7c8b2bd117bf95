// The initiator's half of the login phase (RFC 7143 §6.3, §11.12, §11.13, §12, §13) as a pure
// state machine: it says what each Login Request carries (stage bits and text keys) and digests
// each Login Response, until the target answers T=1 NSG=3. The connection owns ITT, CmdSN,
// StatSN, ISID, TSIH and the socket.
//
// The exchange it drives:
//   security stage     InitiatorName, SessionType, TargetName, AuthMethod=CHAP|None  (T=1, NSG=1)
//                      with CHAP: CHAP_A=5, then CHAP_N/CHAP_R (+ CHAP_I/CHAP_C when mutual)
//   operational stage  our offers (T=1, NSG=3); the target's answers and its own offers come
//                      back with T=0; we answer the offers, until a response carries T=1 NSG=3.

import { randomBytes as cryptoRandomBytes } from 'node:crypto'
import type { LoginResponse } from '../wire/pdu.js'
import { chapMd5Response } from '../iscsi/chap.js'
import { decodeBinary, encodeHex, formatBoolean, keyDef, parseBoolean, parseList, parseNumber, type BooleanField, type NumberField } from '../iscsi/params.js'
import { encodeTextKeys, parseTextKeys } from '../iscsi/text-keys.js'
import { InitiatorLoginError, InitiatorProtocolError } from './errors.js'

export type Pairs = Array<[string, string]>

export interface ChapCredentials {
  /** CHAP_N we present. */
  user: string
  /** The secret we prove knowledge of. */
  secret: string | Buffer
  /** Mutual CHAP: we challenge the target and check its answer with `secret`. */
  mutual?: {
    secret: string | Buffer
    /** CHAP_N the target must answer with; any name when absent. */
    user?: string
  }
}

/** true = CRC32C only; false = None only; or an explicit preference list. */
export type DigestOffer = boolean | ReadonlyArray<'CRC32C' | 'None'>

export interface LoginOptions {
  initiatorName: string
  initiatorAlias?: string
  /** Default: 'Normal' when targetName is set, else 'Discovery'. */
  sessionType?: 'Normal' | 'Discovery'
  targetName?: string
  chap?: ChapCredentials
  headerDigest?: DigestOffer
  dataDigest?: DigestOffer
  /** What we accept per PDU (default 262144). */
  maxRecvDataSegmentLength?: number
  /** Our offers for a Normal session (RFC defaults apply when the target does not answer). */
  maxBurstLength?: number
  firstBurstLength?: number
  immediateData?: boolean
  initialR2T?: boolean
  maxOutstandingR2T?: number
  /** Offered only when set; otherwise we answer whatever the target offers. */
  defaultTime2Wait?: number
  defaultTime2Retain?: number
  /** Random source for CHAP identifiers and challenges (tests inject a fixed one). */
  randomBytes?: (n: number) => Buffer
  /**
   * Fault injection for tests: rewrite the keys of each outgoing Login Request (`step` counts
   * requests from 0). Whatever it returns is sent.
   */
  mutateKeys?: (pairs: Pairs, info: { csg: number; step: number }) => Pairs
}

/** The session parameters in force after the login (RFC 7143 §13). */
export interface NegotiatedParams {
  sessionType: 'Normal' | 'Discovery'
  authMethod: 'None' | 'CHAP'
  /** The target proved itself with mutual CHAP. */
  mutualChap: boolean
  headerDigest: boolean
  dataDigest: boolean
  /** What we declared: the largest data segment the target may send us. */
  maxRecvDataSegmentLength: number
  /** What the target declared: the largest data segment we may send. */
  maxXmitDataSegmentLength: number
  maxBurstLength: number
  firstBurstLength: number
  immediateData: boolean
  initialR2T: boolean
  maxOutstandingR2T: number
  maxConnections: number
  defaultTime2Wait: number
  defaultTime2Retain: number
  errorRecoveryLevel: number
  dataPDUInOrder: boolean
  dataSequenceInOrder: boolean
  targetPortalGroupTag?: number
  targetAlias?: string
}

/** One Login Request's contents, as far as the login driver decides them. */
export interface LoginStep {
  transit: boolean
  csg: number
  nsg: number
  data: Buffer
}

export type LoginProgress = { kind: 'request'; step: LoginStep } | { kind: 'done'; params: NegotiatedParams }

const SECURITY = 0
const OPERATIONAL = 1
const FULL_FEATURE = 3
/** §13.12 / §13.13-§13.14 ranges. */
const MIN_LEN = 512
const MAX_LEN = 2 ** 24 - 1
/** A login that needs more round trips than this is going nowhere. */
const MAX_STEPS = 24
const CHAP_MD5 = 5
const MD5_BYTES = 16

type Field = BooleanField | NumberField

/** Our own value for each negotiable field: what we offer, or answer the target's offers with. */
interface Preferences {
  headerDigest: ReadonlyArray<'CRC32C' | 'None'>
  dataDigest: ReadonlyArray<'CRC32C' | 'None'>
  values: Record<Field, number | boolean>
}

export class InitiatorLogin {
  private stage = SECURITY
  private step = 0
  private readonly sessionType: 'Normal' | 'Discovery'
  private readonly prefs: Preferences
  private readonly random: (n: number) => Buffer
  /** Negotiated values, starting from the RFC 7143 §13 defaults. */
  private readonly n: NegotiatedParams
  /** Keys we offered in this stage and the value offered, awaiting the target's answer. */
  private readonly offered = new Map<string, string>()
  /** Answers to the target's offers, for the next request. */
  private answers: Pairs = []
  /** Text of a response series with the C bit set (§6.1). */
  private partial: Buffer[] = []
  private chapState: 'none' | 'want-algorithm' | 'want-challenge' | 'want-target-response' | 'done' = 'none'
  private mutualChallenge: { id: number; challenge: Buffer } | undefined
  private finished = false

  constructor(private readonly opts: LoginOptions) {
    this.sessionType = opts.sessionType ?? (opts.targetName ? 'Normal' : 'Discovery')
    if (this.sessionType === 'Normal' && !opts.targetName) throw new TypeError('a Normal session needs targetName')
    this.random = opts.randomBytes ?? ((n) => cryptoRandomBytes(n))
    const mrdsl = checkLength('maxRecvDataSegmentLength', opts.maxRecvDataSegmentLength ?? 262144)
    const maxBurst = checkLength('maxBurstLength', opts.maxBurstLength ?? 1048576)
    const firstBurst = Math.min(checkLength('firstBurstLength', opts.firstBurstLength ?? 262144), maxBurst)
    this.prefs = {
      headerDigest: digestList(opts.headerDigest),
      dataDigest: digestList(opts.dataDigest),
      values: {
        initialR2T: opts.initialR2T ?? false,
        immediateData: opts.immediateData ?? true,
        dataPDUInOrder: true,
        dataSequenceInOrder: true,
        ifMarker: false,
        ofMarker: false,
        rdmaExtensions: false,
        maxConnections: 1,
        maxBurstLength: maxBurst,
        firstBurstLength: firstBurst,
        defaultTime2Wait: opts.defaultTime2Wait ?? 2,
        defaultTime2Retain: opts.defaultTime2Retain ?? 0,
        maxOutstandingR2T: opts.maxOutstandingR2T ?? 8,
        errorRecoveryLevel: 0,
        protocolLevel: 1,
      },
    }
    this.n = {
      sessionType: this.sessionType,
      authMethod: 'None',
      mutualChap: false,
      headerDigest: false,
      dataDigest: false,
      maxRecvDataSegmentLength: mrdsl,
      maxXmitDataSegmentLength: 8192,
      maxBurstLength: 262144,
      firstBurstLength: 65536,
      immediateData: true,
      initialR2T: true,
      maxOutstandingR2T: 1,
      maxConnections: 1,
      defaultTime2Wait: 2,
      defaultTime2Retain: 20,
      errorRecoveryLevel: 0,
      dataPDUInOrder: true,
      dataSequenceInOrder: true,
    }
  }

  /** The first Login Request. */
  start(): LoginStep {
    if (this.step !== 0) throw new Error('login already started')
    const keys: Pairs = [['InitiatorName', this.opts.initiatorName]]
    if (this.opts.initiatorAlias) keys.push(['InitiatorAlias', this.opts.initiatorAlias])
    keys.push(['SessionType', this.sessionType])
    if (this.sessionType === 'Normal') keys.push(['TargetName', this.opts.targetName!])
    keys.push(['AuthMethod', this.opts.chap ? 'CHAP' : 'None'])
    this.offered.set('AuthMethod', this.opts.chap ? 'CHAP' : 'None')
    return this.request(SECURITY, true, OPERATIONAL, keys)
  }

  /** Digest one Login Response. Throws InitiatorLoginError when the login cannot succeed. */
  onResponse(resp: Pick<LoginResponse, 'transit' | 'continue' | 'csg' | 'nsg' | 'statusClass' | 'statusDetail' | 'data' | 'versionActive'>): LoginProgress {
    if (this.finished) throw this.refuse('login response after the login completed')
    if (resp.statusClass !== 0) {
      let keys: Pairs = []
      try {
        keys = parseTextKeys(Buffer.concat([...this.partial, resp.data]))
      } catch {
        // A refusal's text is informational only.
      }
      throw new InitiatorLoginError(
        `target refused the login: status 0x${hex2(resp.statusClass)}${hex2(resp.statusDetail)} (${loginStatusName(resp.statusClass, resp.statusDetail)})`,
        resp.statusClass, resp.statusDetail, 'target', keys,
      )
    }
    if (resp.versionActive !== 0) throw this.refuse(`target chose version ${resp.versionActive}; we speak 0`)
    if (resp.csg !== this.stage) throw this.refuse(`response for stage ${resp.csg} while in stage ${this.stage}`)
    if (resp.continue) {
      // §6.1: more text follows; ask for it with an empty request.
      if (resp.transit) throw this.refuse('login response with both C and T set')
      this.partial.push(Buffer.from(resp.data))
      return { kind: 'request', step: this.request(this.stage, false, 0, []) }
    }
    const text = Buffer.concat([...this.partial, resp.data])
    this.partial = []
    let pairs: Pairs
    try {
      pairs = parseTextKeys(text)
    } catch (e) {
      throw this.refuse(`malformed login response text: ${e instanceof Error ? e.message : String(e)}`)
    }
    return this.stage === SECURITY ? this.securityResponse(resp, pairs) : this.operationalResponse(resp, pairs)
  }

  /** The parameters in force (complete once onResponse returned 'done'). */
  get params(): NegotiatedParams {
    return { ...this.n }
  }

  // ---------------------------------------------------------------- security stage

  private securityResponse(resp: { transit: boolean; nsg: number }, pairs: Pairs): LoginProgress {
    const chap: Partial<Record<string, string>> = {}
    for (const [key, value] of pairs) {
      if (key === 'AuthMethod') this.takeAuthMethod(value)
      else if (key.startsWith('CHAP_')) chap[key] = value
      else this.takeCommon(key, value)
    }
    const out: Pairs = []
    if (this.chapState === 'want-challenge') {
      if (chap['CHAP_C'] === undefined) throw this.refuse('target did not send a CHAP challenge', 0x02, 0x01)
      out.push(...this.answerChallenge(chap))
    } else if (this.chapState === 'want-target-response') {
      this.checkTargetResponse(chap)
    }
    if (this.chapState === 'want-algorithm') {
      // §12.1.3: the initiator opens CHAP by proposing algorithms; we only do MD5.
      this.chapState = 'want-challenge'
      return { kind: 'request', step: this.request(SECURITY, false, 0, [['CHAP_A', String(CHAP_MD5)]]) }
    }
    if (out.length > 0) return { kind: 'request', step: this.request(SECURITY, true, OPERATIONAL, out) }

    if (resp.transit) {
      if (this.opts.chap && this.chapState !== 'done') throw this.refuse('target left the security stage before CHAP completed')
      if (this.opts.chap?.mutual && !this.n.mutualChap) throw this.refuse('target did not answer our mutual CHAP challenge')
      if (resp.nsg === FULL_FEATURE) return this.finish()
      if (resp.nsg !== OPERATIONAL) throw this.refuse(`target moved to stage ${resp.nsg}`)
      this.enterOperational()
      return { kind: 'request', step: this.operationalOffers() }
    }
    // T=0 with nothing for us to say: ask again to move on.
    return { kind: 'request', step: this.request(SECURITY, true, OPERATIONAL, []) }
  }

  private takeAuthMethod(value: string): void {
    if (!this.offered.has('AuthMethod')) throw this.refuse(`unexpected AuthMethod=${value}`)
    this.offered.delete('AuthMethod')
    const wanted = this.opts.chap ? 'CHAP' : 'None'
    if (value !== wanted) throw this.refuse(`target answered AuthMethod=${value}; we offered ${wanted}`, 0x02, 0x01)
    this.n.authMethod = wanted
    if (wanted === 'CHAP') this.chapState = 'want-algorithm'
  }

  /** CHAP_A/CHAP_I/CHAP_C from the target → CHAP_N/CHAP_R (+ our challenge when mutual). */
  private answerChallenge(keys: Partial<Record<string, string>>): Pairs {
    const creds = this.opts.chap!
    const algorithm = keys['CHAP_A'] !== undefined ? parseNumber(keys['CHAP_A']) : undefined
    if (algorithm !== CHAP_MD5) throw this.refuse(`target chose CHAP_A=${keys['CHAP_A'] ?? '(none)'}; we offered 5`, 0x02, 0x01)
    const id = keys['CHAP_I'] !== undefined ? parseNumber(keys['CHAP_I']) : undefined
    if (id === undefined || id > 255) throw this.refuse(`bad CHAP_I=${keys['CHAP_I'] ?? '(none)'}`, 0x02, 0x01)
    const challenge = keys['CHAP_C'] !== undefined ? decodeBinary(keys['CHAP_C']) : undefined
    if (!challenge || challenge.length === 0) throw this.refuse('bad CHAP_C', 0x02, 0x01)
    const out: Pairs = [
      ['CHAP_N', creds.user],
      ['CHAP_R', encodeHex(chapMd5Response(id, creds.secret, challenge))],
    ]
    if (creds.mutual) {
      let ours = this.random(MD5_BYTES)
      // Never hand the target its own challenge back (§12.1.3, reflection).
      if (ours.equals(challenge)) ours = Buffer.from(ours.map((b) => b ^ 0xff))
      const ourId = this.random(1)[0]!
      this.mutualChallenge = { id: ourId, challenge: Buffer.from(ours) }
      out.push(['CHAP_I', String(ourId)], ['CHAP_C', encodeHex(ours)])
      this.chapState = 'want-target-response'
    } else {
      this.chapState = 'done'
    }
    return out
  }

  private checkTargetResponse(keys: Partial<Record<string, string>>): void {
    const mutual = this.opts.chap!.mutual!
    const sent = this.mutualChallenge!
    const name = keys['CHAP_N']
    const response = keys['CHAP_R'] !== undefined ? decodeBinary(keys['CHAP_R']) : undefined
    if (name === undefined || response === undefined) throw this.refuse('target did not answer our CHAP challenge', 0x02, 0x01)
    if (mutual.user !== undefined && name !== mutual.user) {
      throw this.refuse(`target answered as CHAP_N=${name}, expected ${mutual.user}`, 0x02, 0x01)
    }
    const expected = chapMd5Response(sent.id, mutual.secret, sent.challenge)
    if (!response.equals(expected)) throw this.refuse('target failed mutual CHAP authentication', 0x02, 0x01)
    this.chapState = 'done'
    this.n.mutualChap = true
  }

  // ---------------------------------------------------------------- operational stage

  private enterOperational(): void {
    this.stage = OPERATIONAL
    this.offered.clear()
  }

  private operationalOffers(): LoginStep {
    const keys: Pairs = []
    const offer = (key: string, value: string): void => {
      keys.push([key, value])
      this.offered.set(key, value)
    }
    offer('HeaderDigest', this.prefs.headerDigest.join(','))
    offer('DataDigest', this.prefs.dataDigest.join(','))
    // §13.12: a declaration, not an offer: no answer comes back.
    keys.push(['MaxRecvDataSegmentLength', String(this.n.maxRecvDataSegmentLength)])
    if (this.sessionType === 'Normal') {
      const v = this.prefs.values
      offer('InitialR2T', formatBoolean(v.initialR2T as boolean))
      offer('ImmediateData', formatBoolean(v.immediateData as boolean))
      offer('MaxBurstLength', String(v.maxBurstLength))
      offer('FirstBurstLength', String(v.firstBurstLength))
      offer('MaxOutstandingR2T', String(v.maxOutstandingR2T))
      offer('MaxConnections', '1')
      offer('ErrorRecoveryLevel', '0')
      offer('DataPDUInOrder', 'Yes')
      offer('DataSequenceInOrder', 'Yes')
      if (this.opts.defaultTime2Wait !== undefined) offer('DefaultTime2Wait', String(v.defaultTime2Wait))
      if (this.opts.defaultTime2Retain !== undefined) offer('DefaultTime2Retain', String(v.defaultTime2Retain))
    }
    return this.request(OPERATIONAL, true, FULL_FEATURE, keys)
  }

  private operationalResponse(resp: { transit: boolean; nsg: number }, pairs: Pairs): LoginProgress {
    for (const [key, value] of pairs) {
      if (this.offered.has(key)) this.takeAnswer(key, value)
      else this.takeOffer(key, value)
    }
    if (resp.transit) {
      if (resp.nsg !== FULL_FEATURE) throw this.refuse(`target moved from the operational stage to stage ${resp.nsg}`)
      return this.finish()
    }
    const answers = this.answers
    this.answers = []
    return { kind: 'request', step: this.request(OPERATIONAL, true, FULL_FEATURE, answers) }
  }

  /** The target's answer to one of our offers (§6.2). */
  private takeAnswer(key: string, value: string): void {
    const offered = this.offered.get(key)!
    this.offered.delete(key)
    if (value === 'NotUnderstood' || value === 'Irrelevant' || value === 'Reject') {
      // The default stays in force; for digests that means None.
      if ((key === 'HeaderDigest' || key === 'DataDigest') && !offered.split(',').includes('None')) {
        throw this.refuse(`target answered ${key}=${value} to our ${key}=${offered}`)
      }
      return
    }
    if (key === 'HeaderDigest' || key === 'DataDigest') {
      if (!offered.split(',').includes(value)) throw this.refuse(`target chose ${key}=${value}, not among ${offered}`)
      if (key === 'HeaderDigest') this.n.headerDigest = value === 'CRC32C'
      else this.n.dataDigest = value === 'CRC32C'
      return
    }
    const def = keyDef(key)
    const rule = def?.rule
    if (rule?.kind === 'boolean') {
      const theirs = parseBoolean(value)
      const ours = parseBoolean(offered)!
      // §6.2.2: the answer is the function's result; AND cannot turn our No into Yes, OR cannot
      // turn our Yes into No.
      if (theirs === undefined || (rule.result === 'and' && !ours && theirs) || (rule.result === 'or' && ours && !theirs)) {
        throw this.refuse(`unusable answer ${key}=${value} to our ${key}=${offered}`)
      }
      this.setField(rule.field, theirs)
      return
    }
    if (rule?.kind === 'number') {
      const theirs = parseNumber(value)
      const ours = parseNumber(offered)!
      if (theirs === undefined || theirs < rule.min || theirs > rule.max ||
          (rule.result === 'min' && theirs > ours) || (rule.result === 'max' && theirs < ours)) {
        throw this.refuse(`unusable answer ${key}=${value} to our ${key}=${offered}`)
      }
      this.setField(rule.field, theirs)
      return
    }
    throw new InitiatorProtocolError(`no rule for our offer of ${key}`)
  }

  /** A key the target sent on its own: a declaration, or an offer we must answer (§6.2). */
  private takeOffer(key: string, value: string): void {
    if (this.takeCommon(key, value)) return
    if (value === 'NotUnderstood' || value === 'Irrelevant' || value === 'Reject') return // never answer an answer
    const def = keyDef(key)
    if (!def) {
      this.answers.push([key, 'NotUnderstood'])
      return
    }
    const rule = def.rule
    switch (rule.kind) {
      case 'declared-number': {
        // §13.12: the target's MaxRecvDataSegmentLength bounds every PDU we send it.
        const n = parseNumber(value)
        if (n === undefined || n < MIN_LEN || n > MAX_LEN) throw this.refuse(`target declared ${key}=${value}`)
        this.n.maxXmitDataSegmentLength = n
        return
      }
      case 'list': {
        const list = parseList(value)
        const mine = key === 'HeaderDigest' ? this.prefs.headerDigest : key === 'DataDigest' ? this.prefs.dataDigest : undefined
        const chosen = mine ? mine.find((d) => list?.includes(d)) : undefined
        if (chosen === undefined) {
          this.answers.push([key, 'Reject'])
          return
        }
        if (key === 'HeaderDigest') this.n.headerDigest = chosen === 'CRC32C'
        if (key === 'DataDigest') this.n.dataDigest = chosen === 'CRC32C'
        this.answers.push([key, chosen])
        return
      }
      case 'boolean': {
        const theirs = parseBoolean(value)
        if (theirs === undefined) {
          this.answers.push([key, 'Reject'])
          return
        }
        const ours = this.prefs.values[rule.field] as boolean
        const result = rule.result === 'and' ? ours && theirs : ours || theirs
        this.setField(rule.field, result)
        this.answers.push([key, formatBoolean(result)])
        return
      }
      case 'number': {
        const theirs = parseNumber(value)
        if (theirs === undefined || theirs < rule.min || theirs > rule.max) {
          this.answers.push([key, 'Reject'])
          return
        }
        const ours = this.prefs.values[rule.field] as number
        const result = rule.result === 'min' ? Math.min(ours, theirs) : Math.max(ours, theirs)
        this.setField(rule.field, result)
        this.answers.push([key, String(result)])
        return
      }
      case 'reject':
        this.answers.push([key, 'Reject'])
        return
      case 'declarative':
      case 'security':
        return
    }
  }

  /** Declarations any stage may carry. Returns true when the key was one of them. */
  private takeCommon(key: string, value: string): boolean {
    switch (key) {
      case 'TargetPortalGroupTag': {
        const n = parseNumber(value)
        if (n !== undefined) this.n.targetPortalGroupTag = n
        return true
      }
      case 'TargetAlias':
        this.n.targetAlias = value
        return true
      case 'TargetAddress':
        return true
      default:
        return false
    }
  }

  private setField(field: Field, value: number | boolean): void {
    switch (field) {
      case 'initialR2T': this.n.initialR2T = value as boolean; break
      case 'immediateData': this.n.immediateData = value as boolean; break
      case 'dataPDUInOrder': this.n.dataPDUInOrder = value as boolean; break
      case 'dataSequenceInOrder': this.n.dataSequenceInOrder = value as boolean; break
      case 'maxBurstLength': this.n.maxBurstLength = value as number; break
      case 'firstBurstLength': this.n.firstBurstLength = value as number; break
      case 'maxOutstandingR2T': this.n.maxOutstandingR2T = value as number; break
      case 'maxConnections': this.n.maxConnections = value as number; break
      case 'defaultTime2Wait': this.n.defaultTime2Wait = value as number; break
      case 'defaultTime2Retain': this.n.defaultTime2Retain = value as number; break
      case 'errorRecoveryLevel': this.n.errorRecoveryLevel = value as number; break
      default: break // markers, RDMA, protocol level: nothing to keep
    }
  }

  // ---------------------------------------------------------------- helpers

  private finish(): LoginProgress {
    if (this.offered.size > 0 && this.stage === OPERATIONAL) {
      // Keys the target never answered keep their defaults; only digests we require matter.
      for (const [key, value] of this.offered) {
        if ((key === 'HeaderDigest' || key === 'DataDigest') && !value.split(',').includes('None')) {
          throw this.refuse(`target never answered ${key}=${value}`)
        }
      }
    }
    if (this.opts.chap && this.chapState !== 'done') throw this.refuse('target ended the login before CHAP completed')
    // §13.14: FirstBurstLength never exceeds MaxBurstLength.
    this.n.firstBurstLength = Math.min(this.n.firstBurstLength, this.n.maxBurstLength)
    this.finished = true
    return { kind: 'done', params: this.params }
  }

  private request(csg: number, transit: boolean, nsg: number, keys: Pairs): LoginStep {
    if (this.step >= MAX_STEPS) throw this.refuse(`no progress after ${MAX_STEPS} login requests`)
    const sent = this.opts.mutateKeys ? this.opts.mutateKeys(keys, { csg, step: this.step }) : keys
    this.step++
    return { transit, csg, nsg: transit ? nsg : 0, data: encodeTextKeys(sent) }
  }

  /** We end the login ourselves (status 0 unless a class/detail describes it better). */
  private refuse(message: string, statusClass = 0, statusDetail = 0): InitiatorLoginError {
    this.finished = true
    return new InitiatorLoginError(message, statusClass, statusDetail, 'initiator')
  }
}

function digestList(offer: DigestOffer | undefined): ReadonlyArray<'CRC32C' | 'None'> {
  if (offer === undefined || offer === false) return ['None']
  if (offer === true) return ['CRC32C']
  if (offer.length === 0) throw new TypeError('a digest preference list needs at least one entry')
  return offer
}

function checkLength(name: string, n: number): number {
  if (!Number.isInteger(n) || n < MIN_LEN || n > MAX_LEN) throw new RangeError(`${name} must be an integer in ${MIN_LEN}..${MAX_LEN}`)
  return n
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0')
}

/** RFC 7143 §11.13.5 names for messages. */
export function loginStatusName(statusClass: number, statusDetail: number): string {
  const code = (statusClass << 8) | statusDetail
  const names: Record<number, string> = {
    0x0101: 'target moved temporarily',
    0x0102: 'target moved permanently',
    0x0200: 'initiator error',
    0x0201: 'authentication failure',
    0x0202: 'authorization failure',
    0x0203: 'not found',
    0x0204: 'target removed',
    0x0205: 'unsupported version',
    0x0206: 'too many connections',
    0x0207: 'missing parameter',
    0x0208: "can't include in session",
    0x0209: 'session type not supported',
    0x020a: 'session does not exist',
    0x020b: 'invalid during login',
    0x0300: 'target error',
    0x0301: 'service unavailable',
    0x0302: 'out of resources',
  }
  return names[code] ?? 'unknown status'
}
