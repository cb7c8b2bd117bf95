// Every login key with its negotiation outcome (RFC 7143 §13, §6.2): answers, NotUnderstood,
// Irrelevant and Reject, target offers, and the resulting session parameters.

import { describe, expect, it } from 'vitest'
import { Opcode, type LoginRequest } from '../../../src/wire/pdu.js'
import {
  LoginNegotiator,
  type LoginComplete,
  type LoginEnvironment,
  type LoginOutcome,
  type SessionParams,
  type TargetLimits,
} from '../../../src/iscsi/login.js'

type Pairs = Array<[string, string]>

const enc = (pairs: Pairs): Buffer => Buffer.from(pairs.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8')
const dec = (data: Buffer): Pairs =>
  data
    .toString('utf8')
    .split('\0')
    .filter((s) => s.length > 0)
    .map((s) => {
      const i = s.indexOf('=')
      return [s.slice(0, i), s.slice(i + 1)]
    })

function req(csg: number, keys: Pairs, o: { transit?: boolean; nsg?: number; tsih?: number } = {}): LoginRequest {
  return {
    opcode: Opcode.LoginRequest,
    immediate: true,
    ahs: [],
    data: enc(keys),
    transit: o.transit ?? false,
    continue: false,
    csg,
    nsg: o.nsg ?? 0,
    versionMax: 0,
    versionMin: 0,
    isid: '23d000000001',
    tsih: o.tsih ?? 0,
    itt: 7,
    cid: 1,
    cmdSN: 1,
    expStatSN: 0,
  }
}

const INITIATOR = 'iqn.1991-05.com.microsoft:host'
const TARGET = 'iqn.2024-01.test:t1'

const LIMITS: TargetLimits = {
  maxRecvDataSegmentLength: 65536,
  maxBurstLength: 1048576,
  firstBurstLength: 131072,
  maxOutstandingR2T: 4,
  immediateData: true,
  initialR2T: false,
  defaultTime2Wait: 2,
  defaultTime2Retain: 20,
}

function env(limits: Partial<TargetLimits> = {}): LoginEnvironment {
  const t = { iqn: TARGET, tpgt: 1, portals: ['198.51.100.1:3260,1'] }
  return {
    findTarget: (iqn) => (iqn === TARGET ? t : undefined),
    listTargets: () => [t],
    targetLimits: { ...LIMITS, ...limits },
    randomBytes: (n) => Buffer.alloc(n, 1),
  }
}

const NORMAL: Pairs = [
  ['InitiatorName', INITIATOR],
  ['TargetName', TARGET],
]
const DISCOVERY: Pairs = [
  ['InitiatorName', INITIATOR],
  ['SessionType', 'Discovery'],
]

/** One operational-stage request with T=1 → FFP; returns the outcome and the answers. */
function negotiate(
  keys: Pairs,
  o: { limits?: Partial<TargetLimits>; session?: Pairs; tsih?: number } = {},
): { outcome: LoginOutcome; answers: Map<string, string> } {
  const neg = new LoginNegotiator(env(o.limits))
  const outcome = neg.handle(req(1, [...(o.session ?? NORMAL), ...keys], { transit: true, nsg: 3, tsih: o.tsih }))
  return { outcome, answers: new Map(dec(outcome.data)) }
}

function completed(outcome: LoginOutcome): LoginComplete {
  if (outcome.kind !== 'complete') throw new Error(`expected complete, got ${outcome.kind}${outcome.kind === 'fail' ? `: ${outcome.reason}` : ''}`)
  return outcome
}

// [key, offered value, our answer, resulting SessionParams fields (if any), limits override]
type Row = [string, string, string, Partial<SessionParams>, Partial<TargetLimits>?]

const TABLE: Row[] = [
  // §13.1: first value of the initiator's list that we support
  ['HeaderDigest', 'CRC32C,None', 'CRC32C', { headerDigest: true }],
  ['HeaderDigest', 'None,CRC32C', 'None', { headerDigest: false }],
  ['HeaderDigest', 'CRC32C', 'CRC32C', { headerDigest: true }],
  ['HeaderDigest', 'X-vendor.digest,CRC32C', 'CRC32C', { headerDigest: true }],
  ['HeaderDigest', 'SHA1', 'Reject', { headerDigest: false }],
  // An operator who accepts only CRC32C takes it from anywhere in the list, refuses None alone.
  ['HeaderDigest', 'None,CRC32C', 'CRC32C', { headerDigest: true }, { headerDigests: ['CRC32C'] }],
  ['HeaderDigest', 'None', 'Reject', { headerDigest: false }, { headerDigests: ['CRC32C'] }],
  ['DataDigest', 'None,CRC32C', 'CRC32C', { dataDigest: true }, { dataDigests: ['CRC32C'] }],
  ['HeaderDigest', 'CRC32C,None', 'None', { headerDigest: false }, { headerDigests: ['None'] }],
  ['HeaderDigest', 'CRC32C,,None', 'Reject', { headerDigest: false }],
  ['DataDigest', 'CRC32C,None', 'CRC32C', { dataDigest: true }],
  ['DataDigest', 'None', 'None', { dataDigest: false }],
  // §13.2: Minimum, 1..65535; we support 1
  ['MaxConnections', '8', '1', { maxConnections: 1 }],
  ['MaxConnections', '0', 'Reject', { maxConnections: 1 }],
  ['MaxConnections', '65536', 'Reject', { maxConnections: 1 }],
  // §13.10: OR
  ['InitialR2T', 'No', 'No', { initialR2T: false }],
  ['InitialR2T', 'Yes', 'Yes', { initialR2T: true }],
  ['InitialR2T', 'No', 'Yes', { initialR2T: true }, { initialR2T: true }],
  ['InitialR2T', 'yes', 'Reject', { initialR2T: true }],
  // §13.11: AND
  ['ImmediateData', 'Yes', 'Yes', { immediateData: true }],
  ['ImmediateData', 'No', 'No', { immediateData: false }],
  ['ImmediateData', 'Yes', 'No', { immediateData: false }, { immediateData: false }],
  ['ImmediateData', 'True', 'Reject', { immediateData: true }],
  // §13.13: Minimum, 512..2^24-1
  ['MaxBurstLength', '16776192', '1048576', { maxBurstLength: 1048576 }],
  ['MaxBurstLength', '65536', '65536', { maxBurstLength: 65536 }],
  ['MaxBurstLength', '0x10000', '65536', { maxBurstLength: 65536 }],
  ['MaxBurstLength', '511', 'Reject', { maxBurstLength: 262144 }],
  ['MaxBurstLength', '16777216', 'Reject', { maxBurstLength: 262144 }],
  ['MaxBurstLength', '1e6', 'Reject', { maxBurstLength: 262144 }],
  ['MaxBurstLength', '99999999999999999999999', 'Reject', { maxBurstLength: 262144 }],
  // §13.14: Minimum, never above MaxBurstLength
  ['FirstBurstLength', '262144', '131072', { firstBurstLength: 131072 }],
  ['FirstBurstLength', '4096', '4096', { firstBurstLength: 4096 }],
  ['FirstBurstLength', '100', 'Reject', { firstBurstLength: 65536 }],
  // §13.15: Maximum, 0..3600
  ['DefaultTime2Wait', '0', '2', { defaultTime2Wait: 2 }],
  ['DefaultTime2Wait', '10', '10', { defaultTime2Wait: 10 }],
  ['DefaultTime2Wait', '3601', 'Reject', { defaultTime2Wait: 2 }],
  // §13.16: Minimum, 0..3600
  ['DefaultTime2Retain', '0', '0', { defaultTime2Retain: 0 }],
  ['DefaultTime2Retain', '60', '20', { defaultTime2Retain: 20 }],
  ['DefaultTime2Retain', '-1', 'Reject', { defaultTime2Retain: 20 }],
  // §13.17: Minimum, 1..65535
  ['MaxOutstandingR2T', '16', '4', { maxOutstandingR2T: 4 }],
  ['MaxOutstandingR2T', '1', '1', { maxOutstandingR2T: 1 }],
  ['MaxOutstandingR2T', '0', 'Reject', { maxOutstandingR2T: 1 }],
  // §13.18, §13.19: OR (we want order)
  ['DataPDUInOrder', 'No', 'Yes', { dataPDUInOrder: true }],
  ['DataPDUInOrder', 'Yes', 'Yes', { dataPDUInOrder: true }],
  ['DataSequenceInOrder', 'No', 'Yes', { dataSequenceInOrder: true }],
  // §13.20: Minimum, 0..2; we support 0
  ['ErrorRecoveryLevel', '2', '0', { errorRecoveryLevel: 0 }],
  ['ErrorRecoveryLevel', '0', '0', { errorRecoveryLevel: 0 }],
  ['ErrorRecoveryLevel', '3', 'Reject', { errorRecoveryLevel: 0 }],
  // §13.23: list; we report the RFC 3720 way only
  ['TaskReporting', 'FastAbort,RFC3720', 'RFC3720', {}],
  ['TaskReporting', 'ResponseFence,FastAbort', 'Reject', {}],
  // §13.24: Minimum; we are level 1
  ['iSCSIProtocolLevel', '2', '1', {}],
  ['iSCSIProtocolLevel', '0', '0', {}],
  ['iSCSIProtocolLevel', '32', 'Reject', {}],
  // §13.25: obsolete markers
  ['IFMarker', 'Yes', 'No', { ifMarker: false }],
  ['OFMarker', 'No', 'No', { ofMarker: false }],
  ['IFMarkInt', '2048~8192', 'Reject', {}],
  ['OFMarkInt', '2048', 'Reject', {}],
  // RFC 7145: no iSER here
  ['RDMAExtensions', 'Yes', 'No', {}],
  // §13.22 and unknown keys
  ['X-com.example.Feature', 'On', 'NotUnderstood', {}],
  ['FancyNewKey', '1', 'NotUnderstood', {}],
  // §13.3: SendTargets belongs to the Full Feature Phase
  ['SendTargets', 'All', 'Irrelevant', {}],
]

describe('operational keys in a Normal session', () => {
  it.each(TABLE)('%s=%s → %s', (key, offered, answer, params, limits) => {
    const { outcome, answers } = negotiate([[key, offered]], { limits })
    expect(answers.get(key)).toBe(answer)
    expect(completed(outcome).params).toMatchObject(params)
  })

  it('MaxRecvDataSegmentLength is a declaration each way (§13.12)', () => {
    const { outcome, answers } = negotiate([['MaxRecvDataSegmentLength', '4096']])
    expect(answers.get('MaxRecvDataSegmentLength')).toBe('65536') // ours, not an answer
    expect(completed(outcome).params).toMatchObject({ maxRecvDataSegmentLength: 65536, maxXmitDataSegmentLength: 4096 })
  })

  it('MaxRecvDataSegmentLength is declared even when the initiator does not declare its own', () => {
    const { outcome, answers } = negotiate([])
    expect(answers.get('MaxRecvDataSegmentLength')).toBe('65536')
    expect(completed(outcome).params.maxXmitDataSegmentLength).toBe(8192)
  })

  it.each(['511', '16777216', 'big'])('MaxRecvDataSegmentLength=%s is refused with 0x0200', (v) => {
    const { outcome } = negotiate([['MaxRecvDataSegmentLength', v]])
    expect(outcome.kind).toBe('fail')
    expect([outcome.statusClass, outcome.statusDetail]).toEqual([2, 0])
  })

  it('declarations get no answer: InitiatorAlias, X#NodeArchitecture, SessionType', () => {
    const { outcome, answers } = negotiate([
      ['InitiatorAlias', 'host-a'],
      ['X#NodeArchitecture', 'ExampleOS/1.0'],
      ['SessionType', 'Normal'],
    ])
    expect([...answers.keys()].sort()).toEqual(['MaxRecvDataSegmentLength', 'TargetPortalGroupTag'])
    expect(completed(outcome).params.initiatorAlias).toBe('host-a')
  })

  it.each(['TargetAlias', 'TargetAddress', 'TargetPortalGroupTag'])('%s from the initiator → 0x0200', (key) => {
    const { outcome } = negotiate([[key, '1']])
    expect(outcome.kind).toBe('fail')
    expect([outcome.statusClass, outcome.statusDetail]).toEqual([2, 0])
  })

  it('an unsolicited answer value is not answered', () => {
    const { outcome, answers } = negotiate([
      ['HeaderDigest', 'Reject'],
      ['X-foo', 'NotUnderstood'],
    ])
    expect(answers.has('HeaderDigest')).toBe(false)
    expect(answers.has('X-foo')).toBe(false)
    expect(outcome.kind).toBe('complete')
  })

  it('FirstBurstLength is Irrelevant when InitialR2T=Yes and ImmediateData=No (§13.14), whatever the order', () => {
    const { answers } = negotiate([
      ['FirstBurstLength', '65536'],
      ['InitialR2T', 'Yes'],
      ['ImmediateData', 'No'],
    ])
    expect(answers.get('FirstBurstLength')).toBe('Irrelevant')
    expect(answers.get('InitialR2T')).toBe('Yes')
    expect(answers.get('ImmediateData')).toBe('No')
  })

  it('FirstBurstLength stays relevant when either R2T or immediate data allows unsolicited data', () => {
    expect(negotiate([['InitialR2T', 'Yes'], ['ImmediateData', 'Yes'], ['FirstBurstLength', '8192']]).answers.get('FirstBurstLength')).toBe('8192')
    expect(negotiate([['InitialR2T', 'No'], ['ImmediateData', 'No'], ['FirstBurstLength', '8192']]).answers.get('FirstBurstLength')).toBe('8192')
  })

  it('FirstBurstLength never ends above the negotiated MaxBurstLength', () => {
    const { outcome, answers } = negotiate([['MaxBurstLength', '16384'], ['FirstBurstLength', '65536']])
    expect(answers.get('FirstBurstLength')).toBe('16384')
    expect(completed(outcome).params).toMatchObject({ maxBurstLength: 16384, firstBurstLength: 16384 })
  })

  it('leading-only keys are Irrelevant on a non-leading login (TSIH set)', () => {
    const { answers } = negotiate(
      [['MaxBurstLength', '65536'], ['ErrorRecoveryLevel', '0'], ['HeaderDigest', 'CRC32C']],
      { tsih: 9 },
    )
    expect(answers.get('MaxBurstLength')).toBe('Irrelevant')
    expect(answers.get('ErrorRecoveryLevel')).toBe('Irrelevant')
    expect(answers.get('HeaderDigest')).toBe('CRC32C') // connection-only key
  })
})

describe('operational keys in a Discovery session', () => {
  it.each([
    ['MaxConnections', '1', 'Irrelevant'],
    ['InitialR2T', 'No', 'Irrelevant'],
    ['ImmediateData', 'Yes', 'Irrelevant'],
    ['MaxBurstLength', '262144', 'Irrelevant'],
    ['FirstBurstLength', '65536', 'Irrelevant'],
    ['MaxOutstandingR2T', '1', 'Irrelevant'],
    ['DataPDUInOrder', 'Yes', 'Irrelevant'],
    ['DataSequenceInOrder', 'Yes', 'Irrelevant'],
    ['TaskReporting', 'RFC3720', 'Irrelevant'],
    ['RDMAExtensions', 'No', 'Irrelevant'],
    // Still negotiated in discovery sessions:
    ['HeaderDigest', 'CRC32C,None', 'CRC32C'],
    ['DataDigest', 'None', 'None'],
    ['ErrorRecoveryLevel', '1', '0'],
    ['DefaultTime2Wait', '5', '5'],
    ['DefaultTime2Retain', '0', '0'],
    ['IFMarker', 'No', 'No'],
  ])('%s=%s → %s', (key, offered, answer) => {
    const { outcome, answers } = negotiate([[key, offered]], { session: DISCOVERY })
    expect(answers.get(key)).toBe(answer)
    expect(outcome.kind).toBe('complete')
  })

  it('makes no offers in a discovery session', () => {
    const { outcome } = negotiate([], { session: DISCOVERY, limits: { immediateData: false, maxBurstLength: 4096, defaultTime2Retain: 0 } })
    expect(outcome.kind).toBe('complete')
  })
})

describe('target offers for keys left at an unacceptable default (§6.2)', () => {
  const limits: Partial<TargetLimits> = {
    immediateData: false,
    maxBurstLength: 131072,
    firstBurstLength: 32768,
    defaultTime2Retain: 0,
    defaultTime2Wait: 5,
  }

  it('offers in a T=0 response and completes once the initiator answers', () => {
    const neg = new LoginNegotiator(env(limits))
    const r1 = neg.handle(req(1, [...NORMAL, ['InitialR2T', 'No'], ['MaxRecvDataSegmentLength', '65536']], { transit: true, nsg: 3 }))
    expect(r1).toMatchObject({ kind: 'continue', transit: false })
    const offers = new Map(dec(r1.data))
    expect(offers.get('ImmediateData')).toBe('No')
    expect(offers.get('MaxBurstLength')).toBe('131072')
    expect(offers.get('FirstBurstLength')).toBe('32768') // relevant: InitialR2T=No
    expect(offers.get('DefaultTime2Retain')).toBe('0')
    expect(offers.get('DefaultTime2Wait')).toBe('5')
    expect(offers.has('MaxOutstandingR2T')).toBe(false) // our 4 is above the default 1

    const r2 = neg.handle(
      req(1, [
        ['ImmediateData', 'No'],
        ['MaxBurstLength', '65536'],
        ['FirstBurstLength', '32768'],
        ['DefaultTime2Retain', '0'],
        ['DefaultTime2Wait', '5'],
      ], { transit: true, nsg: 3 }),
    )
    const done = completed(r2)
    expect(r2.data).toHaveLength(0) // answers are not answered
    expect(done.params).toMatchObject({
      immediateData: false,
      initialR2T: false,
      maxBurstLength: 65536,
      firstBurstLength: 32768,
      defaultTime2Retain: 0,
      defaultTime2Wait: 5,
    })
  })

  it('does not offer FirstBurstLength when it will be irrelevant', () => {
    const neg = new LoginNegotiator(env(limits))
    const r1 = neg.handle(req(1, NORMAL, { transit: true, nsg: 3 })) // InitialR2T stays Yes
    const offers = new Map(dec(r1.data))
    expect(offers.get('ImmediateData')).toBe('No')
    expect(offers.has('FirstBurstLength')).toBe(false)
  })

  it('answers a FirstBurstLength Irrelevant when our ImmediateData=No offer will make it so', () => {
    const { answers } = negotiate([['FirstBurstLength', '65536']], { limits: { immediateData: false } })
    expect(answers.get('FirstBurstLength')).toBe('Irrelevant')
    expect(answers.get('ImmediateData')).toBe('No')
  })

  it('offers nothing for keys the initiator already negotiated', () => {
    const keys: Pairs = [
      ['ImmediateData', 'Yes'],
      ['MaxBurstLength', '262144'],
      ['FirstBurstLength', '65536'],
      ['DefaultTime2Retain', '20'],
      ['DefaultTime2Wait', '2'],
    ]
    const { outcome, answers } = negotiate(keys, { limits })
    const done = completed(outcome)
    expect(answers.get('ImmediateData')).toBe('No')
    expect(done.params).toMatchObject({ immediateData: false, maxBurstLength: 131072, defaultTime2Retain: 0, defaultTime2Wait: 5 })
  })

  it('a transit without answering our offers → 0x0200', () => {
    const neg = new LoginNegotiator(env(limits))
    neg.handle(req(1, NORMAL, { transit: true, nsg: 3 }))
    const o = neg.handle(req(1, [['ImmediateData', 'No']], { transit: true, nsg: 3 }))
    expect(o.kind).toBe('fail')
    expect([o.statusClass, o.statusDetail]).toEqual([2, 0])
  })

  it('an unusable answer to an offer → 0x0200', () => {
    const neg = new LoginNegotiator(env({ immediateData: false }))
    neg.handle(req(1, NORMAL, { transit: true, nsg: 3 }))
    const o = neg.handle(req(1, [['ImmediateData', 'Reject']], { transit: true, nsg: 3 }))
    expect(o.kind).toBe('fail')
  })

  it('computes the result even when the answer breaks the result function', () => {
    const neg = new LoginNegotiator(env({ maxBurstLength: 131072 }))
    neg.handle(req(1, NORMAL, { transit: true, nsg: 3 }))
    const done = completed(neg.handle(req(1, [['MaxBurstLength', '16776192']], { transit: true, nsg: 3 })))
    expect(done.params.maxBurstLength).toBe(131072)
  })
})
