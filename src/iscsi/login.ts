// The login phase of one connection (RFC 7143 §6.3, §11.12, §11.13) as a pure state machine:
// decoded Login Requests in, Login Response fields out. It negotiates keys (§6.2, §12, §13),
// runs CHAP (chap.ts) and, on the final response, hands over the session parameters. The
// caller owns sequence numbers, TSIH allocation, session reinstatement and the socket.
//
// Our responses are a few hundred bytes at most, far below the 8192-byte
// MaxRecvDataSegmentLength in force during login (§13.12), so they never need the C bit.

import type { LoginRequest, LoginResponse } from '../wire/pdu.js'
import { ChapResponder } from './chap.js'
import {
  AuthenticationError,
  AuthorizationError,
  InitiatorError,
  InvalidDuringLoginError,
  LoginError,
  MissingParameterError,
  OutOfResourcesError,
  SessionTypeNotSupportedError,
  TargetError,
  TargetNotFoundError,
  UnsupportedVersionError,
} from './login-errors.js'
import {
  Answer,
  DEFAULT_MAX_RECV_DATA_SEGMENT_LENGTH,
  MAX_ISCSI_NAME_BYTES,
  MAX_SIMPLE_VALUE_BYTES,
  RFC_DEFAULTS,
  formatBoolean,
  initiatorAllowed,
  isReservedAnswer,
  keyDef,
  localValues,
  parseBoolean,
  parseList,
  parseNumber,
  type BooleanField,
  type ChapConfig,
  type KeyDef,
  type LocalValues,
  type LoginEnvironment,
  type NumberField,
  type SessionParams,
  type TargetAccess,
} from './params.js'
import { TextKeyError, encodeTextKeys, parseTextKeys } from './text-keys.js'

export type { ChapConfig, LoginEnvironment, SessionParams, TargetAccess, TargetLimits } from './params.js'
export { initiatorAllowed } from './params.js'

/** Login stages (§11.12.3). Stage 2 is reserved. */
const SECURITY = 0
const OPERATIONAL = 1
const FULL_FEATURE = 3

/**
 * Most text a login request series (C bit set) may accumulate before we give up. §6.1 obliges
 * us to take at least 8192 bytes.
 */
export const MAX_LOGIN_TEXT_BYTES = 65536

/** The Login Response fields this module decides; the caller adds StatSN, ExpCmdSN, MaxCmdSN. */
export type LoginResponseFields = Pick<
  LoginResponse,
  | 'transit'
  | 'continue'
  | 'csg'
  | 'nsg'
  | 'versionMax'
  | 'versionActive'
  | 'isid'
  | 'tsih'
  | 'itt'
  | 'statusClass'
  | 'statusDetail'
  | 'data'
>

/** Send this response and wait for the next Login Request. */
export interface LoginContinue extends LoginResponseFields {
  kind: 'continue'
}

/**
 * Send this response (T=1, NSG=3) and enter Full Feature Phase. `tsih` is the request's TSIH:
 * for a new session (0) the caller allocates one and puts it in the response.
 */
export interface LoginComplete extends LoginResponseFields {
  kind: 'complete'
  params: SessionParams
  isid: string
  initiatorName: string
  cid: number
  authMethod: 'None' | 'CHAP'
  /** Whether the target also authenticated itself to the initiator. */
  mutualChap: boolean
}

/** Send this response (status class 2 or 3, no keys) and close the connection. */
export interface LoginFail extends LoginResponseFields {
  kind: 'fail'
  error: LoginError
  /** For logs; never sent. */
  reason: string
}

export type LoginOutcome = LoginContinue | LoginComplete | LoginFail

type Pairs = Array<[string, string]>

/** The negotiated values, starting from the RFC defaults. */
type Negotiated = Record<BooleanField, boolean> &
  Record<NumberField, number> & {
    headerDigest: boolean
    dataDigest: boolean
    maxRecvDataSegmentLength: number
    maxXmitDataSegmentLength: number
  }

interface FirstRequest {
  isid: string
  tsih: number
  cid: number
  versionMax: number
  versionMin: number
}

export class LoginNegotiator {
  private readonly local: LocalValues
  private readonly n: Negotiated

  private status: 'login' | 'complete' | 'failed' = 'login'
  private first: FirstRequest | undefined
  /** The CSG the next request must carry. */
  private stage = SECURITY
  /** Data segments of a C-bit series not yet complete (§6.1). */
  private pendingText: Buffer[] = []
  private pendingBytes = 0

  // Identity, fixed by the first complete request (§6.3.1).
  private identified = false
  private initiatorName = ''
  private initiatorAlias: string | undefined
  private sessionType: 'Normal' | 'Discovery' = 'Normal'
  private targetName: string | undefined
  private target: TargetAccess | undefined
  private chapConfig: ChapConfig | undefined
  private announced = false

  /** Keys received in the current stage (a key may be sent once, §6.2). */
  private seenInStage = new Set<string>()
  /** Values of Any-Stage declarative keys, to accept identical re-declarations in a later stage. */
  private readonly declared = new Map<string, string>()

  // Security stage.
  private authMethod: 'None' | 'CHAP' | undefined
  private chap: ChapResponder | undefined

  // Operational stage.
  private mrdslDeclared = false
  private offersMade = false
  /** Keys we offered (§6.2) whose answer has not arrived; value = what we offered. */
  private readonly awaiting = new Map<string, number | boolean>()

  constructor(private readonly env: LoginEnvironment) {
    this.local = localValues(env.targetLimits)
    this.n = {
      headerDigest: RFC_DEFAULTS.headerDigest,
      dataDigest: RFC_DEFAULTS.dataDigest,
      maxRecvDataSegmentLength: DEFAULT_MAX_RECV_DATA_SEGMENT_LENGTH,
      maxXmitDataSegmentLength: DEFAULT_MAX_RECV_DATA_SEGMENT_LENGTH,
      maxConnections: RFC_DEFAULTS.maxConnections,
      initialR2T: RFC_DEFAULTS.initialR2T,
      immediateData: RFC_DEFAULTS.immediateData,
      maxBurstLength: RFC_DEFAULTS.maxBurstLength,
      firstBurstLength: RFC_DEFAULTS.firstBurstLength,
      defaultTime2Wait: RFC_DEFAULTS.defaultTime2Wait,
      defaultTime2Retain: RFC_DEFAULTS.defaultTime2Retain,
      maxOutstandingR2T: RFC_DEFAULTS.maxOutstandingR2T,
      dataPDUInOrder: RFC_DEFAULTS.dataPDUInOrder,
      dataSequenceInOrder: RFC_DEFAULTS.dataSequenceInOrder,
      errorRecoveryLevel: RFC_DEFAULTS.errorRecoveryLevel,
      ifMarker: RFC_DEFAULTS.ifMarker,
      ofMarker: RFC_DEFAULTS.ofMarker,
      rdmaExtensions: RFC_DEFAULTS.rdmaExtensions,
      protocolLevel: RFC_DEFAULTS.protocolLevel,
    }
  }

  /** Process one Login Request. Never throws: every problem becomes a `fail` outcome. */
  handle(req: LoginRequest): LoginOutcome {
    if (this.status === 'complete') {
      return this.fail(req, new InvalidDuringLoginError('login request after the login completed'))
    }
    if (this.status === 'failed') {
      return this.fail(req, new InvalidDuringLoginError('login request after the login failed'))
    }
    try {
      return this.step(req)
    } catch (e) {
      const error = e instanceof LoginError ? e : new TargetError('internal error during login', { cause: e })
      this.status = 'failed'
      return this.fail(req, error)
    }
  }

  // ---------------------------------------------------------------- request framing

  private step(req: LoginRequest): LoginOutcome {
    this.checkHeader(req)

    if (req.continue) {
      // §6.1 / §11.12.2: partial text; acknowledge with an empty response and keep collecting.
      this.appendText(req.data)
      return { kind: 'continue', ...this.fields(req, false, 0, []) }
    }
    this.appendText(req.data)
    const text = Buffer.concat(this.pendingText)
    this.pendingText = []
    this.pendingBytes = 0

    let pairs: Pairs
    try {
      pairs = parseTextKeys(text)
    } catch (e) {
      if (e instanceof TextKeyError) throw new InitiatorError(`malformed login text: ${e.message}`, { cause: e })
      throw e
    }

    if (!this.identified) this.identify(pairs, req)
    return req.csg === SECURITY ? this.securityStage(req, pairs) : this.operationalStage(req, pairs)
  }

  private checkHeader(req: LoginRequest): void {
    // §11.12.4: we speak version 0x00 only.
    if (req.versionMin > 0 || req.versionMax < 0) {
      throw new UnsupportedVersionError(`initiator versions ${req.versionMin}..${req.versionMax} exclude version 0`)
    }
    // §11.12.2: a Login Request with the C bit set MUST have the T bit clear.
    if (req.continue && req.transit) throw new InitiatorError('login request with both C and T set')
    // §11.12.3: CSG is 0 or 1 during login; NSG, when T is set, is a later stage and not 2.
    if (req.csg !== SECURITY && req.csg !== OPERATIONAL) {
      throw new InvalidDuringLoginError(`login request with CSG ${req.csg}`)
    }
    if (req.transit && ((req.nsg !== OPERATIONAL && req.nsg !== FULL_FEATURE) || req.nsg <= req.csg)) {
      throw new InvalidDuringLoginError(`invalid stage transition ${req.csg} -> ${req.nsg}`)
    }
    if (this.first === undefined) {
      this.first = { isid: req.isid, tsih: req.tsih, cid: req.cid, versionMax: req.versionMax, versionMin: req.versionMin }
      this.stage = req.csg
      return
    }
    // §6.3: stages only move forward, and only when the target answered T=1.
    if (req.csg !== this.stage) {
      throw new InvalidDuringLoginError(`login request for stage ${req.csg} while in stage ${this.stage}`)
    }
    // §11.12.4-§11.12.7: version, ISID, TSIH and CID stay the same for the whole login.
    const f = this.first
    if (req.isid !== f.isid || req.tsih !== f.tsih || req.cid !== f.cid) {
      throw new InitiatorError('ISID, TSIH or CID changed during login')
    }
    if (req.versionMax !== f.versionMax || req.versionMin !== f.versionMin) {
      throw new InitiatorError('version fields changed during login')
    }
  }

  private appendText(data: Buffer): void {
    if (data.length === 0) return
    this.pendingBytes += data.length
    if (this.pendingBytes > MAX_LOGIN_TEXT_BYTES) {
      throw new OutOfResourcesError(`login text longer than ${MAX_LOGIN_TEXT_BYTES} bytes`)
    }
    // The PDU's data is a view into the receive buffer: copy it to keep it.
    this.pendingText.push(Buffer.from(data))
  }

  // ---------------------------------------------------------------- identity (§6.3.1)

  private identify(pairs: Pairs, req: LoginRequest): void {
    const get = (key: string): string | undefined => pairs.find(([k]) => k === key)?.[1]

    // §13.5: InitiatorName MUST be in the first login request of every connection.
    const initiatorName = get('InitiatorName')
    if (initiatorName === undefined || initiatorName === '') {
      throw new MissingParameterError('InitiatorName missing from the first login request (§13.5)')
    }
    if (Buffer.byteLength(initiatorName, 'utf8') > MAX_ISCSI_NAME_BYTES) {
      throw new InitiatorError('InitiatorName longer than 223 bytes (§4.2.7)')
    }

    // §13.21: SessionType defaults to Normal.
    const sessionType = get('SessionType') ?? 'Normal'
    if (sessionType !== 'Normal' && sessionType !== 'Discovery') {
      throw new SessionTypeNotSupportedError(`SessionType=${sessionType}`)
    }

    const targetName = get('TargetName')
    let target: TargetAccess | undefined
    if (sessionType === 'Normal') {
      // §13.4: TargetName MUST be in the first login request of a Normal session.
      if (targetName === undefined || targetName === '') {
        throw new MissingParameterError('TargetName missing from the first login request of a Normal session (§13.4)')
      }
      target = this.env.findTarget(targetName)
      if (!target) throw new TargetNotFoundError(`no target ${targetName}`)
      if (!initiatorAllowed(target, initiatorName)) {
        throw new AuthorizationError(`${initiatorName} is not on the allow-list of ${target.iqn}`)
      }
    }

    this.identified = true
    this.initiatorName = initiatorName
    this.sessionType = sessionType
    this.targetName = sessionType === 'Normal' ? targetName : undefined
    this.target = target
    this.chapConfig = sessionType === 'Normal' ? target?.chap : this.env.discoveryChap
    this.declared.set('InitiatorName', initiatorName)
    this.declared.set('SessionType', sessionType)
    if (targetName !== undefined) this.declared.set('TargetName', targetName)

    // §6.3.2: a target that requires authentication cannot let the initiator skip the security stage.
    if (req.csg !== SECURITY && this.chapConfig) {
      throw new AuthenticationError('CHAP is required but the login started in the operational stage')
    }
  }

  /** Not the first connection of a session (TSIH set): leading-only keys are irrelevant. */
  private get leading(): boolean {
    return (this.first?.tsih ?? 0) === 0
  }

  private get discovery(): boolean {
    return this.sessionType === 'Discovery'
  }

  // ---------------------------------------------------------------- per-key bookkeeping

  /** §6.2: a key may be offered or declared only once; a repeat is an initiator error. */
  private noteKey(key: string): void {
    if (this.seenInStage.has(key)) throw new InitiatorError(`key ${key} sent twice`)
    this.seenInStage.add(key)
  }

  /**
   * An Any-Stage declarative key (§13.4-§13.7, §13.21). Some initiators repeat InitiatorName,
   * TargetName and SessionType in every stage; that is accepted when the value is unchanged.
   */
  private declare(key: string, value: string): void {
    const before = this.declared.get(key)
    if (before !== undefined && before !== value) {
      throw new InitiatorError(`${key} changed during login (${before} -> ${value})`)
    }
    this.declared.set(key, value)
    if (key === 'InitiatorAlias') {
      // §13.7: an iSCSI-local-name-value; an over-long alias is ignored rather than refused.
      this.initiatorAlias = Buffer.byteLength(value, 'utf8') <= MAX_SIMPLE_VALUE_BYTES ? value : undefined
    }
  }

  /**
   * Common screening of one received key. Returns the key's definition when the stage handler
   * must act on it, or undefined when it has been fully dealt with (answer pushed if any).
   */
  private screen(key: string, value: string, answers: Pairs): KeyDef | undefined {
    this.noteKey(key)
    const def = keyDef(key)
    if (!def) {
      // §6.2 / §13.22: unknown keys, X- keys included, are answered NotUnderstood — unless the
      // value is itself one of the reserved answers: never answer an answer.
      if (!isReservedAnswer(value)) answers.push([key, Answer.NotUnderstood])
      return undefined
    }
    // §13.6, §13.8, §13.9: keys only a target may send.
    if (def.sender === 'target') throw new InitiatorError(`${key} may only be sent by a target (${def.section})`)
    if (def.rule.kind === 'declarative' && def.stage === 'any') {
      this.declare(key, value)
      return undefined
    }
    if (isReservedAnswer(value)) return undefined // an unsolicited answer: nothing to answer
    if (def.stage === 'full-feature') {
      // §13.3: SendTargets belongs to the Full Feature Phase.
      answers.push([key, Answer.Irrelevant])
      return undefined
    }
    return def
  }

  // ---------------------------------------------------------------- security stage (§6.3.2, §12)

  private securityStage(req: LoginRequest, pairs: Pairs): LoginOutcome {
    const answers: Pairs = []
    let authMethodOffer: string | undefined
    const chapKeys: Partial<Record<string, string>> = {}
    let anyChapKey = false

    for (const [key, value] of pairs) {
      const def = this.screen(key, value, answers)
      if (!def) continue
      // §6.3.2 / §13: only security keys and Any-Stage declarations belong in this stage.
      if (def.stage !== 'security') {
        throw new InitiatorError(`${key} may not be sent in the security stage (${def.section})`)
      }
      if (key === 'AuthMethod') authMethodOffer = value
      else {
        chapKeys[key] = value
        anyChapKey = true
      }
    }

    let progressed = false
    if (authMethodOffer !== undefined) {
      const chosen = this.chooseAuthMethod(authMethodOffer)
      answers.push(['AuthMethod', chosen])
      this.authMethod = chosen
      if (chosen === 'CHAP' && this.chapConfig) {
        this.chap = new ChapResponder(this.chapConfig, (n) => this.env.randomBytes(n))
        progressed = true
      }
    }
    if (anyChapKey) {
      answers.push(...this.chapStep(chapKeys))
      progressed = true
    }

    if (!req.transit) return this.respond(req, false, 0, answers)
    if (!this.authenticated) {
      // §12.1.3: mid-exchange the target answers T=0 until it has verified the initiator.
      if (progressed) return this.respond(req, false, 0, answers)
      throw new AuthenticationError('the initiator tried to leave the security stage without authenticating')
    }
    this.authMethod ??= 'None'

    // Our choice: skipping the operational stage leaves every key at its RFC default; when a
    // default is beyond what we accept, steer the initiator into the operational stage instead.
    const nsg = req.nsg === FULL_FEATURE && this.needsOperationalStage() ? OPERATIONAL : req.nsg
    if (nsg === FULL_FEATURE) return this.complete(req, answers)
    this.enterStage(OPERATIONAL)
    return this.respond(req, true, OPERATIONAL, answers)
  }

  private get authenticated(): boolean {
    if (this.authMethod === 'None') return true
    if (this.authMethod === 'CHAP') return this.chap?.state === 'done'
    return !this.chapConfig // AuthMethod never offered: only fine when none is required
  }

  /** §12.1, §6.2.1: the first method in the initiator's list that we accept for this login. */
  private chooseAuthMethod(offer: string): 'None' | 'CHAP' {
    const list = parseList(offer)
    if (!list) throw new AuthenticationError(`malformed AuthMethod=${offer}`)
    // With credentials configured only CHAP is acceptable; without, only None (we hold no
    // secret to run CHAP with).
    const acceptable = this.chapConfig ? 'CHAP' : 'None'
    if (!list.includes(acceptable)) {
      throw new AuthenticationError(
        this.chapConfig
          ? `CHAP is required; the initiator offered AuthMethod=${offer}`
          : `no CHAP credentials configured; the initiator offered AuthMethod=${offer}`,
      )
    }
    return acceptable
  }

  private chapStep(keys: Partial<Record<string, string>>): Pairs {
    const chap = this.chap
    if (this.authMethod !== 'CHAP' || !chap) throw new AuthenticationError('CHAP keys without AuthMethod=CHAP')
    if (keys['CHAP_A'] !== undefined) {
      if (Object.keys(keys).length !== 1) throw new AuthenticationError('CHAP_A must come alone (§12.1.3)')
      return chap.challenge(keys['CHAP_A'])
    }
    return chap.verify({
      CHAP_N: keys['CHAP_N'],
      CHAP_R: keys['CHAP_R'],
      CHAP_I: keys['CHAP_I'],
      CHAP_C: keys['CHAP_C'],
    })
  }

  // ---------------------------------------------------------------- operational stage (§6.3.3)

  private operationalStage(req: LoginRequest, pairs: Pairs): LoginOutcome {
    const answers: Pairs = []
    let firstBurst: string | undefined

    for (const [key, value] of pairs) {
      if (this.awaiting.has(key)) {
        this.noteKey(key)
        this.takeAnswer(key, value)
        continue
      }
      const def = this.screen(key, value, answers)
      if (!def) continue
      if (def.stage === 'security') {
        throw new InitiatorError(`${key} may only be sent in the security stage (${def.section})`)
      }
      // §13.14: whether FirstBurstLength is relevant depends on InitialR2T and ImmediateData,
      // which may come later in the same text: decide after the others.
      if (key === 'FirstBurstLength') firstBurst = value
      else {
        const answer = this.negotiate(key, value, def)
        if (answer !== undefined) answers.push([key, answer])
      }
    }
    if (firstBurst !== undefined) answers.push(['FirstBurstLength', this.negotiateFirstBurst(firstBurst)])

    // §13.12: declare what we accept once, in our first operational-stage response.
    if (!this.mrdslDeclared) {
      this.mrdslDeclared = true
      this.n.maxRecvDataSegmentLength = this.local.maxRecvDataSegmentLength
      answers.push(['MaxRecvDataSegmentLength', String(this.local.maxRecvDataSegmentLength)])
    }

    if (!req.transit) return this.respond(req, false, 0, answers)
    if (this.awaiting.size > 0) {
      throw new InitiatorError(`no answer to ${[...this.awaiting.keys()].join(', ')} before transit`)
    }
    // §6.2: keys the initiator left at their defaults that we cannot live with are offered now.
    // §11.13 (T bit): a response carrying offers needs answers, so it must have T=0.
    if (!this.offersMade) {
      this.offersMade = true
      const offers = this.offersNeeded()
      if (offers.length > 0) {
        for (const [key, value] of offers) {
          this.awaiting.set(key, value)
          answers.push([key, typeof value === 'boolean' ? formatBoolean(value) : String(value)])
        }
        return this.respond(req, false, 0, answers)
      }
    }
    return this.complete(req, answers)
  }

  /** Answer one operational key; undefined means "no answer" (declarations). */
  private negotiate(key: string, value: string, def: KeyDef): string | undefined {
    if ((def.irrelevantForDiscovery && this.discovery) || (def.leadingOnly && !this.leading)) {
      return Answer.Irrelevant
    }
    const rule = def.rule
    switch (rule.kind) {
      case 'list': {
        // §6.2.1: the first offered value we support; none → Reject (the default stays).
        const list = parseList(value)
        // The operator may narrow the digests we accept (e.g. CRC32C only).
        const accepted =
          key === 'HeaderDigest' ? this.env.targetLimits.headerDigests
          : key === 'DataDigest' ? this.env.targetLimits.dataDigests
          : undefined
        const chosen = list?.find((v) => rule.supported.includes(v) && (!accepted || accepted.includes(v)))
        if (chosen === undefined) return Answer.Reject
        if (key === 'HeaderDigest') this.n.headerDigest = chosen === 'CRC32C'
        if (key === 'DataDigest') this.n.dataDigest = chosen === 'CRC32C'
        return chosen
      }
      case 'boolean': {
        const theirs = parseBoolean(value)
        if (theirs === undefined) return Answer.Reject
        // §6.2.2: AND / OR of both sides.
        const ours = this.local[rule.field]
        const result = rule.result === 'and' ? theirs && ours : theirs || ours
        this.n[rule.field] = result
        return formatBoolean(result)
      }
      case 'number': {
        const theirs = parseNumber(value)
        if (theirs === undefined || theirs < rule.min || theirs > rule.max) return Answer.Reject
        // §6.2.2: Minimum / Maximum of both sides.
        const ours = this.local[rule.field]
        const result = rule.result === 'min' ? Math.min(theirs, ours) : Math.max(theirs, ours)
        this.n[rule.field] = result
        return String(result)
      }
      case 'declared-number': {
        // §13.12: the initiator's MaxRecvDataSegmentLength bounds every PDU we send. We cannot
        // answer a declaration with Reject, and we need a valid bound: refuse the login.
        const declared = parseNumber(value)
        if (declared === undefined || declared < rule.min || declared > rule.max) {
          throw new InitiatorError(`${key}=${value} is outside ${rule.min}..${rule.max} (${def.section})`)
        }
        this.n.maxXmitDataSegmentLength = declared
        return undefined
      }
      case 'reject':
        // §13.25: OFMarkInt / IFMarkInt MUST be answered Reject.
        return Answer.Reject
      case 'declarative':
        return undefined
      case 'security':
        return Answer.Reject // not reached: screened out by the caller
    }
  }

  /** ImmediateData as it will end up: negotiated, or No because we are about to offer No. */
  private get effectiveImmediateData(): boolean {
    if (!this.seenInStage.has('ImmediateData') && !this.awaiting.has('ImmediateData') && !this.local.immediateData) {
      return false
    }
    return this.n.immediateData
  }

  private negotiateFirstBurst(value: string): string {
    if (this.discovery || !this.leading) return Answer.Irrelevant
    // §13.14: irrelevant when InitialR2T=Yes and ImmediateData=No.
    if (this.n.initialR2T && !this.effectiveImmediateData) return Answer.Irrelevant
    const theirs = parseNumber(value)
    if (theirs === undefined || theirs < 512 || theirs > 2 ** 24 - 1) return Answer.Reject
    // §13.14: FirstBurstLength MUST NOT exceed MaxBurstLength.
    const result = Math.min(theirs, this.local.firstBurstLength, this.n.maxBurstLength)
    this.n.firstBurstLength = result
    return String(result)
  }

  /** The initiator's answer to one of our offers. */
  private takeAnswer(key: string, value: string): void {
    const offered = this.awaiting.get(key)
    this.awaiting.delete(key)
    const def = keyDef(key)
    const rule = def?.rule
    if (typeof offered === 'boolean' && rule?.kind === 'boolean') {
      const theirs = parseBoolean(value)
      if (theirs === undefined) throw new InitiatorError(`unusable answer ${key}=${value} to our offer`)
      this.n[rule.field] = rule.result === 'and' ? theirs && offered : theirs || offered
      return
    }
    if (typeof offered === 'number' && rule?.kind === 'number') {
      const theirs = parseNumber(value)
      if (theirs === undefined || theirs < rule.min || theirs > rule.max) {
        throw new InitiatorError(`unusable answer ${key}=${value} to our offer`)
      }
      this.n[rule.field] = rule.result === 'min' ? Math.min(theirs, offered) : Math.max(theirs, offered)
      return
    }
    throw new TargetError(`no rule for our offer of ${key}`)
  }

  /**
   * Keys the initiator did not send whose RFC default is beyond our limits (normal sessions,
   * leading connection only): we must offer our value (§6.2). Keys already seen are settled.
   */
  private offersNeeded(): Array<[string, number | boolean]> {
    if (this.discovery || !this.leading) return []
    const seen = (k: string): boolean => this.stage === OPERATIONAL && this.seenInStage.has(k)
    const offers: Array<[string, number | boolean]> = []
    const ours = this.local
    const n = this.n
    let immediateData = n.immediateData
    if (!seen('ImmediateData') && !ours.immediateData && n.immediateData) {
      offers.push(['ImmediateData', false])
      immediateData = false
    }
    let maxBurst = n.maxBurstLength
    if (!seen('MaxBurstLength') && ours.maxBurstLength < n.maxBurstLength) {
      offers.push(['MaxBurstLength', ours.maxBurstLength])
      maxBurst = ours.maxBurstLength
    }
    const firstBurstRelevant = !(n.initialR2T && !immediateData)
    const firstBurst = Math.min(ours.firstBurstLength, maxBurst)
    if (firstBurstRelevant && !seen('FirstBurstLength') && firstBurst < n.firstBurstLength) {
      offers.push(['FirstBurstLength', firstBurst])
    }
    if (!seen('MaxOutstandingR2T') && ours.maxOutstandingR2T < n.maxOutstandingR2T) {
      offers.push(['MaxOutstandingR2T', ours.maxOutstandingR2T])
    }
    if (!seen('DefaultTime2Wait') && ours.defaultTime2Wait > n.defaultTime2Wait) {
      offers.push(['DefaultTime2Wait', ours.defaultTime2Wait])
    }
    if (!seen('DefaultTime2Retain') && ours.defaultTime2Retain < n.defaultTime2Retain) {
      offers.push(['DefaultTime2Retain', ours.defaultTime2Retain])
    }
    return offers
  }

  /** Whether going straight from security to Full Feature would leave an unacceptable default. */
  private needsOperationalStage(): boolean {
    if (this.local.maxRecvDataSegmentLength < DEFAULT_MAX_RECV_DATA_SEGMENT_LENGTH) return true
    return this.offersNeeded().length > 0
  }

  private enterStage(stage: number): void {
    this.stage = stage
    this.seenInStage = new Set()
  }

  // ---------------------------------------------------------------- responses

  /**
   * §13.9: TargetPortalGroupTag goes in the response to the first complete Login Request of a
   * Normal session; §13.6: TargetAlias, when configured, is announced to Normal sessions.
   */
  private announcements(): Pairs {
    if (this.announced || this.sessionType !== 'Normal' || !this.target) return []
    this.announced = true
    const out: Pairs = [['TargetPortalGroupTag', String(this.target.tpgt)]]
    if (this.target.alias) out.push(['TargetAlias', this.target.alias])
    return out
  }

  private fields(req: LoginRequest, transit: boolean, nsg: number, pairs: Pairs): LoginResponseFields {
    return {
      transit,
      continue: false,
      csg: req.csg,
      // §11.13: NSG is meaningful only with T=1.
      nsg: transit ? nsg : 0,
      versionMax: 0,
      versionActive: 0,
      isid: req.isid,
      tsih: req.tsih,
      itt: req.itt,
      statusClass: 0,
      statusDetail: 0,
      data: encodeTextKeys(pairs),
    }
  }

  private respond(req: LoginRequest, transit: boolean, nsg: number, answers: Pairs): LoginContinue {
    return { kind: 'continue', ...this.fields(req, transit, nsg, [...this.announcements(), ...answers]) }
  }

  private complete(req: LoginRequest, answers: Pairs): LoginComplete {
    const n = this.n
    const params: SessionParams = {
      sessionType: this.sessionType,
      initiatorName: this.initiatorName,
      headerDigest: n.headerDigest,
      dataDigest: n.dataDigest,
      maxRecvDataSegmentLength: n.maxRecvDataSegmentLength,
      maxXmitDataSegmentLength: n.maxXmitDataSegmentLength,
      maxBurstLength: n.maxBurstLength,
      firstBurstLength: Math.min(n.firstBurstLength, n.maxBurstLength),
      immediateData: n.immediateData,
      initialR2T: n.initialR2T,
      maxOutstandingR2T: n.maxOutstandingR2T,
      dataPDUInOrder: n.dataPDUInOrder,
      dataSequenceInOrder: n.dataSequenceInOrder,
      defaultTime2Wait: n.defaultTime2Wait,
      defaultTime2Retain: n.defaultTime2Retain,
      errorRecoveryLevel: n.errorRecoveryLevel,
      maxConnections: n.maxConnections,
      ifMarker: false,
      ofMarker: false,
    }
    if (this.initiatorAlias !== undefined) params.initiatorAlias = this.initiatorAlias
    if (this.targetName !== undefined) params.targetName = this.targetName
    if (this.target !== undefined) params.target = this.target
    this.status = 'complete'
    return {
      kind: 'complete',
      ...this.fields(req, true, FULL_FEATURE, [...this.announcements(), ...answers]),
      params,
      isid: req.isid,
      initiatorName: this.initiatorName,
      cid: req.cid,
      authMethod: this.authMethod ?? 'None',
      mutualChap: this.chap?.mutual ?? false,
    }
  }

  private fail(req: LoginRequest, error: LoginError): LoginFail {
    return {
      kind: 'fail',
      ...this.fields(req, false, 0, []),
      statusClass: error.statusClass,
      statusDetail: error.statusDetail,
      error,
      reason: error.message,
    }
  }
}

/** Build the fields of a refusal for `req` (for refusals the caller decides, e.g. 0x0302). */
export function refuseLogin(req: LoginRequest, error: LoginError): LoginResponseFields {
  return {
    transit: false,
    continue: false,
    csg: req.csg,
    nsg: 0,
    versionMax: 0,
    versionActive: 0,
    isid: req.isid,
    tsih: req.tsih,
    itt: req.itt,
    statusClass: error.statusClass,
    statusDetail: error.statusDetail,
    data: Buffer.alloc(0),
  }
}
