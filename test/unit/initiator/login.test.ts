// The initiator's login driver wired back to back with the target's LoginNegotiator, every PDU
// passing through the wire codec in both directions. Both sides must end up with the same
// session parameters; refusals surface as InitiatorLoginError with the right status.

import { describe, expect, it } from 'vitest'
import { PduParser, encodePdu } from '../../../src/wire/index.js'
import { Opcode, type LoginRequest, type LoginResponse } from '../../../src/wire/pdu.js'
import {
  LoginNegotiator,
  type LoginComplete,
  type LoginEnvironment,
  type SessionParams,
  type TargetAccess,
  type TargetLimits,
} from '../../../src/iscsi/login.js'
import { parseTextKeys } from '../../../src/iscsi/text-keys.js'
import {
  InitiatorLogin,
  InitiatorLoginError,
  type LoginOptions,
  type NegotiatedParams,
  type Pairs,
} from '../../../src/initiator/index.js'

const INITIATOR = 'iqn.2026-11.io.iscsi-ha:unit-initiator'
const PLAIN = 'iqn.2026-11.io.iscsi-ha:plain'
const ONE_WAY = 'iqn.2026-11.io.iscsi-ha:chap'
const MUTUAL = 'iqn.2026-11.io.iscsi-ha:mutual'
const SECRET = 'initiator-secret-1'
const TARGET_SECRET = 'target-secret-22'

const TARGETS: TargetAccess[] = [
  { iqn: PLAIN, alias: 'plain disk', tpgt: 3, portals: ['192.0.2.1:3260,3'] },
  { iqn: ONE_WAY, tpgt: 1, portals: ['192.0.2.1:3260,1'], chap: { user: 'alice', secret: SECRET } },
  {
    iqn: MUTUAL, tpgt: 1, portals: ['192.0.2.1:3260,1'],
    chap: { user: 'alice', secret: SECRET, mutualUser: 'the-target', mutualSecret: TARGET_SECRET },
  },
]

const LIMITS: TargetLimits = {
  maxRecvDataSegmentLength: 262144,
  maxBurstLength: 1048576,
  firstBurstLength: 262144,
  maxOutstandingR2T: 8,
  immediateData: true,
  initialR2T: false,
  defaultTime2Wait: 2,
  defaultTime2Retain: 0,
}

function env(limits: Partial<TargetLimits> = {}): LoginEnvironment {
  let next = 0x10
  return {
    findTarget: (iqn) => TARGETS.find((t) => t.iqn === iqn),
    listTargets: () => TARGETS,
    targetLimits: { ...LIMITS, ...limits },
    randomBytes: (n) => Buffer.from(Array.from({ length: n }, () => next++ & 0xff)),
  }
}

/** Encode with the wire codec and parse it back on the other side (data copied out). */
function overTheWire<T extends LoginRequest | LoginResponse>(pdu: T, side: 'target' | 'initiator'): T {
  let out: T | undefined
  const parser = new PduParser({
    direction: side,
    onPdu: (p) => {
      out = { ...p, data: Buffer.from(p.data) } as unknown as T
    },
  })
  parser.push(Buffer.concat(encodePdu(pdu)))
  if (!out) throw new Error('PDU did not parse')
  return out
}

interface Run {
  params?: NegotiatedParams
  target?: LoginComplete
  error?: unknown
  requests: Array<{ csg: number; transit: boolean; nsg: number; keys: Pairs }>
}

/** Drive a whole login between InitiatorLogin and LoginNegotiator. */
function runLogin(opts: Partial<LoginOptions>, environment: LoginEnvironment = env()): Run {
  const driver = new InitiatorLogin({ initiatorName: INITIATOR, targetName: PLAIN, randomBytes: fixedRandom(0xa0), ...opts })
  const negotiator = new LoginNegotiator(environment)
  const run: Run = { requests: [] }
  let statSN = 100
  let step = driver.start()
  try {
    for (let i = 0; i < 30; i++) {
      const req = overTheWire<LoginRequest>({
        opcode: Opcode.LoginRequest, immediate: true, ahs: [], data: step.data, transit: step.transit, continue: false,
        csg: step.csg, nsg: step.nsg, versionMax: 0, versionMin: 0, isid: '80aabbccddee', tsih: 0, itt: 7, cid: 0,
        cmdSN: 1, expStatSN: statSN,
      }, 'target')
      run.requests.push({ csg: req.csg, transit: req.transit, nsg: req.nsg, keys: parseTextKeys(req.data) })
      const outcome = negotiator.handle(req)
      const { kind, ...fields } = outcome
      if (kind === 'complete') run.target = outcome
      const resp = overTheWire<LoginResponse>({
        opcode: Opcode.LoginResponse, immediate: false, ahs: [], transit: fields.transit, continue: fields.continue,
        csg: fields.csg, nsg: fields.nsg, versionMax: 0, versionActive: 0, isid: fields.isid, tsih: kind === 'complete' ? 5 : 0,
        itt: fields.itt, statSN: statSN++, expCmdSN: 1, maxCmdSN: 16, statusClass: fields.statusClass,
        statusDetail: fields.statusDetail, data: fields.data,
      }, 'initiator')
      const progress = driver.onResponse(resp)
      if (progress.kind === 'done') {
        run.params = progress.params
        return run
      }
      step = progress.step
    }
    throw new Error('login did not finish')
  } catch (e) {
    run.error = e
    return run
  }
}

function fixedRandom(start: number): (n: number) => Buffer {
  let next = start
  return (n) => Buffer.from(Array.from({ length: n }, () => next++ & 0xff))
}

/** Both sides agree on everything that governs the data path. */
function expectAgreement(ours: NegotiatedParams, theirs: SessionParams): void {
  expect(ours.sessionType).toBe(theirs.sessionType)
  expect(ours.headerDigest).toBe(theirs.headerDigest)
  expect(ours.dataDigest).toBe(theirs.dataDigest)
  expect(ours.maxRecvDataSegmentLength).toBe(theirs.maxXmitDataSegmentLength)
  expect(ours.maxXmitDataSegmentLength).toBe(theirs.maxRecvDataSegmentLength)
  if (theirs.sessionType === 'Normal') {
    expect(ours.maxBurstLength).toBe(theirs.maxBurstLength)
    expect(ours.firstBurstLength).toBe(theirs.firstBurstLength)
    expect(ours.immediateData).toBe(theirs.immediateData)
    expect(ours.initialR2T).toBe(theirs.initialR2T)
    expect(ours.maxOutstandingR2T).toBe(theirs.maxOutstandingR2T)
    expect(ours.defaultTime2Wait).toBe(theirs.defaultTime2Wait)
    expect(ours.defaultTime2Retain).toBe(theirs.defaultTime2Retain)
    expect(ours.errorRecoveryLevel).toBe(theirs.errorRecoveryLevel)
    expect(ours.maxConnections).toBe(theirs.maxConnections)
    expect(ours.dataPDUInOrder).toBe(theirs.dataPDUInOrder)
    expect(ours.dataSequenceInOrder).toBe(theirs.dataSequenceInOrder)
  }
}

describe('InitiatorLogin against LoginNegotiator', () => {
  it('logs in to a Normal session without authentication', () => {
    const run = runLogin({})
    expect(run.error).toBeUndefined()
    expectAgreement(run.params!, run.target!.params)
    expect(run.params).toMatchObject({
      sessionType: 'Normal', authMethod: 'None', headerDigest: false, dataDigest: false,
      maxRecvDataSegmentLength: 262144, maxXmitDataSegmentLength: 262144, immediateData: true, initialR2T: false,
      targetPortalGroupTag: 3, targetAlias: 'plain disk',
    })
    // Security stage first, then the operational stage asking for Full Feature Phase.
    expect(run.requests[0]).toMatchObject({ csg: 0, transit: true, nsg: 1 })
    expect(run.requests[0]!.keys).toContainEqual(['AuthMethod', 'None'])
    expect(run.requests[1]).toMatchObject({ csg: 1, transit: true, nsg: 3 })
  })

  it('answers the offers the target makes with T=0', () => {
    // The target wants ImmediateData=No and a shorter DefaultTime2Retain than the default: it
    // offers them when we do not, and we must answer before it lets us through.
    const run = runLogin({ defaultTime2Wait: undefined }, env({ immediateData: false, maxBurstLength: 65536, firstBurstLength: 8192 }))
    expect(run.error).toBeUndefined()
    expectAgreement(run.params!, run.target!.params)
    expect(run.params).toMatchObject({ immediateData: false, maxBurstLength: 65536, firstBurstLength: 8192, defaultTime2Retain: 0 })
  })

  it('negotiates what we ask for: digests, R2T policy, smaller limits', () => {
    const run = runLogin({
      headerDigest: true, dataDigest: ['CRC32C', 'None'], initialR2T: true, immediateData: false,
      maxRecvDataSegmentLength: 4096, maxBurstLength: 131072, firstBurstLength: 65536, maxOutstandingR2T: 2,
      defaultTime2Wait: 1, defaultTime2Retain: 10,
    })
    expect(run.error).toBeUndefined()
    expectAgreement(run.params!, run.target!.params)
    expect(run.params).toMatchObject({
      headerDigest: true, dataDigest: true, initialR2T: true, immediateData: false, maxRecvDataSegmentLength: 4096,
      maxBurstLength: 131072, maxOutstandingR2T: 2, defaultTime2Wait: 2, defaultTime2Retain: 0,
    })
  })

  it('keeps None when the target only accepts None and we allow it, refuses when we require CRC32C', () => {
    const allowed = runLogin({ headerDigest: ['CRC32C', 'None'] }, env({ headerDigests: ['None'] }))
    expect(allowed.error).toBeUndefined()
    expect(allowed.params!.headerDigest).toBe(false)
    const required = runLogin({ headerDigest: true }, env({ headerDigests: ['None'] }))
    expect(required.error).toBeInstanceOf(InitiatorLoginError)
    expect(required.error).toMatchObject({ refusedBy: 'initiator', code: 'INITIATOR_LOGIN_FAILED' })
  })

  it('logs in to a Discovery session with only the keys that matter there', () => {
    const run = runLogin({ targetName: undefined, sessionType: 'Discovery', dataDigest: true })
    expect(run.error).toBeUndefined()
    expectAgreement(run.params!, run.target!.params)
    expect(run.params!.sessionType).toBe('Discovery')
    const opKeys = run.requests.find((r) => r.csg === 1)!.keys.map(([k]) => k)
    expect(opKeys).toEqual(['HeaderDigest', 'DataDigest', 'MaxRecvDataSegmentLength'])
    expect(run.requests[0]!.keys.map(([k]) => k)).not.toContain('TargetName')
  })

  it('authenticates with one-way CHAP', () => {
    const run = runLogin({ targetName: ONE_WAY, chap: { user: 'alice', secret: SECRET } })
    expect(run.error).toBeUndefined()
    expect(run.target).toMatchObject({ authMethod: 'CHAP', mutualChap: false })
    expect(run.params).toMatchObject({ authMethod: 'CHAP', mutualChap: false })
    // AuthMethod, then CHAP_A alone, then CHAP_N/CHAP_R.
    expect(run.requests[1]!.keys).toEqual([['CHAP_A', '5']])
    expect(run.requests[2]!.keys.map(([k]) => k)).toEqual(['CHAP_N', 'CHAP_R'])
    expectAgreement(run.params!, run.target!.params)
  })

  it('authenticates both ways with mutual CHAP', () => {
    const run = runLogin({ targetName: MUTUAL, chap: { user: 'alice', secret: SECRET, mutual: { user: 'the-target', secret: TARGET_SECRET } } })
    expect(run.error).toBeUndefined()
    expect(run.target).toMatchObject({ mutualChap: true })
    expect(run.params!.mutualChap).toBe(true)
    expect(run.requests[2]!.keys.map(([k]) => k)).toEqual(['CHAP_N', 'CHAP_R', 'CHAP_I', 'CHAP_C'])
  })

  it('surfaces the target refusing a wrong secret as 0x0201', () => {
    const run = runLogin({ targetName: ONE_WAY, chap: { user: 'alice', secret: 'not-the-secret' } })
    expect(run.error).toBeInstanceOf(InitiatorLoginError)
    expect(run.error).toMatchObject({ statusClass: 2, statusDetail: 1, refusedBy: 'target', status: 0x0201 })
  })

  it('surfaces a CHAP_R of the wrong length (test hook) as 0x0201', () => {
    const run = runLogin({
      targetName: ONE_WAY, chap: { user: 'alice', secret: SECRET },
      mutateKeys: (pairs) => pairs.map(([k, v]): [string, string] => (k === 'CHAP_R' ? [k, '0x0102030405060708'] : [k, v])),
    })
    expect(run.error).toMatchObject({ statusClass: 2, statusDetail: 1, refusedBy: 'target' })
  })

  it('refuses a target that fails mutual CHAP or answers under another name', () => {
    const wrongSecret = runLogin({ targetName: MUTUAL, chap: { user: 'alice', secret: SECRET, mutual: { secret: 'who-knows-this-1' } } })
    expect(wrongSecret.error).toMatchObject({ refusedBy: 'initiator', statusClass: 2, statusDetail: 1 })
    const wrongName = runLogin({ targetName: MUTUAL, chap: { user: 'alice', secret: SECRET, mutual: { user: 'impostor', secret: TARGET_SECRET } } })
    expect(wrongName.error).toMatchObject({ refusedBy: 'initiator' })
  })

  it('reports a CHAP-only target refusing AuthMethod=None, and an unknown target', () => {
    expect(runLogin({ targetName: ONE_WAY }).error).toMatchObject({ statusClass: 2, statusDetail: 1, refusedBy: 'target' })
    expect(runLogin({ targetName: 'iqn.2026-11.io.iscsi-ha:none' }).error).toMatchObject({ statusClass: 2, statusDetail: 3 })
  })
})

describe('InitiatorLogin response handling', () => {
  const base = { transit: false, continue: false, csg: 0, nsg: 0, statusClass: 0, statusDetail: 0, versionActive: 0 }
  const text = (pairs: Pairs): Buffer => Buffer.from(pairs.map(([k, v]) => `${k}=${v}\0`).join(''))

  it('collects a response split with the C bit before reading it', () => {
    const driver = new InitiatorLogin({ initiatorName: INITIATOR, targetName: PLAIN })
    driver.start()
    const whole = text([['AuthMethod', 'None'], ['TargetPortalGroupTag', '9']])
    const first = driver.onResponse({ ...base, continue: true, data: whole.subarray(0, 7) })
    // An empty request asks for the rest.
    expect(first).toMatchObject({ kind: 'request', step: { csg: 0, transit: false } })
    expect(first.kind === 'request' && first.step.data.length).toBe(0)
    const second = driver.onResponse({ ...base, transit: true, nsg: 1, data: whole.subarray(7) })
    expect(second.kind).toBe('request')
    expect(driver.params.targetPortalGroupTag).toBe(9)
  })

  it('answers target keys it does not know with NotUnderstood and rejects out-of-range offers', () => {
    const driver = new InitiatorLogin({ initiatorName: INITIATOR, targetName: PLAIN })
    driver.start()
    const op = driver.onResponse({ ...base, transit: true, nsg: 1, data: text([['AuthMethod', 'None']]) })
    expect(op.kind).toBe('request')
    const next = driver.onResponse({
      ...base, csg: 1,
      data: text([['X-vendor.key', 'x'], ['DefaultTime2Wait', '99999'], ['IFMarkInt', '2048'], ['MaxRecvDataSegmentLength', '65536']]),
    })
    expect(next.kind).toBe('request')
    const keys = next.kind === 'request' ? parseTextKeys(next.step.data) : []
    expect(keys).toEqual([['X-vendor.key', 'NotUnderstood'], ['DefaultTime2Wait', 'Reject'], ['IFMarkInt', 'Reject']])
    expect(driver.params.maxXmitDataSegmentLength).toBe(65536)
  })

  it('refuses answers that break the negotiation rules', () => {
    const driver = new InitiatorLogin({ initiatorName: INITIATOR, targetName: PLAIN, maxBurstLength: 65536 })
    driver.start()
    driver.onResponse({ ...base, transit: true, nsg: 1, data: text([['AuthMethod', 'None']]) })
    // MaxBurstLength is negotiated with Minimum: an answer above our offer is invalid.
    expect(() => driver.onResponse({ ...base, csg: 1, data: text([['MaxBurstLength', '131072']]) })).toThrow(InitiatorLoginError)
  })

  it('reports a non-zero status with its class and detail', () => {
    const driver = new InitiatorLogin({ initiatorName: INITIATOR, targetName: PLAIN })
    driver.start()
    const err = (() => {
      try {
        driver.onResponse({ ...base, statusClass: 3, statusDetail: 2, data: Buffer.alloc(0) })
      } catch (e) {
        return e
      }
      return undefined
    })()
    expect(err).toBeInstanceOf(InitiatorLoginError)
    expect(err).toMatchObject({ status: 0x0302, refusedBy: 'target' })
    expect((err as Error).message).toContain('out of resources')
  })
})
