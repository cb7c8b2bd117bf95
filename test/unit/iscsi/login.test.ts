// Login state machine: stages, transitions, identity checks, continuation and CHAP, driven
// with hand-built Login Requests. Expected CHAP values are computed here with node:crypto.

import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { Opcode, type LoginRequest } from '../../../src/wire/pdu.js'
import {
  LoginNegotiator,
  refuseLogin,
  type LoginComplete,
  type LoginEnvironment,
  type LoginOutcome,
  type TargetAccess,
} from '../../../src/iscsi/login.js'
import { OutOfResourcesError } from '../../../src/iscsi/login-errors.js'

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
const keysOf = (o: LoginOutcome): Record<string, string> => Object.fromEntries(dec(o.data))

interface ReqOpts {
  csg: number
  nsg?: number
  transit?: boolean
  cont?: boolean
  keys?: Pairs
  data?: Buffer
  versionMin?: number
  versionMax?: number
  isid?: string
  tsih?: number
}

function req(o: ReqOpts): LoginRequest {
  return {
    opcode: Opcode.LoginRequest,
    immediate: true,
    ahs: [],
    data: o.data ?? enc(o.keys ?? []),
    transit: o.transit ?? false,
    continue: o.cont ?? false,
    csg: o.csg,
    nsg: o.nsg ?? 0,
    versionMax: o.versionMax ?? 0,
    versionMin: o.versionMin ?? 0,
    isid: o.isid ?? '400001370000',
    tsih: o.tsih ?? 0,
    itt: 0x1234,
    cid: 0,
    cmdSN: 10,
    expStatSN: 0,
  }
}

const INITIATOR = 'iqn.1993-08.org.debian:01:host1'
const PLAIN = 'iqn.2024-01.test:plain'
const CHAP = 'iqn.2024-01.test:chap'
const MUTUAL = 'iqn.2024-01.test:mutual'
const RESTRICTED = 'iqn.2024-01.test:restricted'
const SECRET = 'alice-secret-123'
const TARGET_SECRET = 'target-secret-456'

const TARGETS: TargetAccess[] = [
  { iqn: PLAIN, alias: 'Plain Disk', tpgt: 7, portals: ['192.0.2.1:3260,7'] },
  { iqn: CHAP, tpgt: 1, portals: ['192.0.2.1:3260,1'], chap: { user: 'alice', secret: SECRET } },
  {
    iqn: MUTUAL,
    tpgt: 1,
    portals: ['192.0.2.1:3260,1'],
    chap: { user: 'alice', secret: SECRET, mutualUser: 'target-m', mutualSecret: TARGET_SECRET },
  },
  { iqn: RESTRICTED, tpgt: 1, portals: ['192.0.2.1:3260,1'], initiators: ['IQN.1993-08.org.debian:01:good'] },
]

function env(over: Partial<LoginEnvironment> = {}): LoginEnvironment {
  let next = 0x40
  return {
    findTarget: (iqn) => TARGETS.find((t) => t.iqn === iqn),
    listTargets: () => TARGETS,
    targetLimits: {
      maxRecvDataSegmentLength: 65536,
      maxBurstLength: 1048576,
      firstBurstLength: 65536,
      maxOutstandingR2T: 4,
      immediateData: true,
      initialR2T: false,
      defaultTime2Wait: 2,
      defaultTime2Retain: 20,
    },
    randomBytes: (n) => Buffer.from(Array.from({ length: n }, () => next++ & 0xff)),
    ...over,
  }
}

/** What open-iscsi sends in the operational stage. */
const OPERATIONAL_KEYS: Pairs = [
  ['HeaderDigest', 'None'],
  ['DataDigest', 'None'],
  ['DefaultTime2Wait', '2'],
  ['DefaultTime2Retain', '0'],
  ['IFMarker', 'No'],
  ['OFMarker', 'No'],
  ['ErrorRecoveryLevel', '0'],
  ['InitialR2T', 'No'],
  ['ImmediateData', 'Yes'],
  ['MaxBurstLength', '16776192'],
  ['FirstBurstLength', '262144'],
  ['MaxConnections', '1'],
  ['DataPDUInOrder', 'Yes'],
  ['DataSequenceInOrder', 'Yes'],
  ['MaxOutstandingR2T', '1'],
  ['MaxRecvDataSegmentLength', '262144'],
]

const identity = (target = PLAIN): Pairs => [
  ['InitiatorName', INITIATOR],
  ['TargetName', target],
  ['SessionType', 'Normal'],
]

function md5(id: number, secret: string, challenge: Buffer): Buffer {
  return createHash('md5').update(Buffer.concat([Buffer.of(id), Buffer.from(secret, 'utf8'), challenge])).digest()
}

function expectFail(o: LoginOutcome, status: number): void {
  expect(o.kind).toBe('fail')
  expect((o.statusClass << 8) | o.statusDetail).toBe(status)
  expect(o.transit).toBe(false)
  expect(o.data).toHaveLength(0)
}

function expectComplete(o: LoginOutcome): LoginComplete {
  if (o.kind !== 'complete') throw new Error(`expected complete, got ${o.kind}${o.kind === 'fail' ? `: ${o.reason}` : ''}`)
  expect(o.transit).toBe(true)
  expect(o.nsg).toBe(3)
  expect(o.statusClass).toBe(0)
  return o
}

/** Security stage up to our challenge; returns the negotiator and the challenge. */
function chapToChallenge(target: string, e = env()): { neg: LoginNegotiator; id: number; challenge: Buffer } {
  const neg = new LoginNegotiator(e)
  const r1 = neg.handle(req({ csg: 0, nsg: 1, transit: true, keys: [...identity(target), ['AuthMethod', 'CHAP,None']] }))
  expect(r1.kind).toBe('continue')
  expect(r1.transit).toBe(false) // §12.1.3: not authenticated yet
  expect(keysOf(r1)['AuthMethod']).toBe('CHAP')
  const r2 = neg.handle(req({ csg: 0, keys: [['CHAP_A', '5']] }))
  expect(r2.kind).toBe('continue')
  const k = keysOf(r2)
  expect(k['CHAP_A']).toBe('5')
  expect(k['CHAP_C']).toMatch(/^0x[0-9a-f]{32}$/)
  return { neg, id: Number(k['CHAP_I']), challenge: Buffer.from(k['CHAP_C']!.slice(2), 'hex') }
}

describe('LoginNegotiator: operational-only login', () => {
  it('completes a Normal session in one round trip', () => {
    const neg = new LoginNegotiator(env())
    const o = expectComplete(neg.handle(req({ csg: 1, nsg: 3, transit: true, keys: [...identity(), ...OPERATIONAL_KEYS] })))
    expect(o).toMatchObject({
      csg: 1,
      continue: false,
      versionMax: 0,
      versionActive: 0,
      isid: '400001370000',
      tsih: 0,
      itt: 0x1234,
      initiatorName: INITIATOR,
      cid: 0,
      authMethod: 'None',
      mutualChap: false,
    })
    const k = keysOf(o)
    expect(k['TargetPortalGroupTag']).toBe('7') // §13.9
    expect(k['TargetAlias']).toBe('Plain Disk') // §13.6
    expect(k['MaxRecvDataSegmentLength']).toBe('65536') // our declaration
    expect(o.params).toEqual({
      sessionType: 'Normal',
      initiatorName: INITIATOR,
      targetName: PLAIN,
      target: TARGETS[0],
      headerDigest: false,
      dataDigest: false,
      maxRecvDataSegmentLength: 65536,
      maxXmitDataSegmentLength: 262144,
      maxBurstLength: 1048576,
      firstBurstLength: 65536,
      immediateData: true,
      initialR2T: false,
      maxOutstandingR2T: 1,
      dataPDUInOrder: true,
      dataSequenceInOrder: true,
      defaultTime2Wait: 2,
      defaultTime2Retain: 0,
      errorRecoveryLevel: 0,
      maxConnections: 1,
      ifMarker: false,
      ofMarker: false,
    })
  })

  it('answers every key the initiator sent, plus only our declarations', () => {
    const neg = new LoginNegotiator(env())
    const o = neg.handle(req({ csg: 1, nsg: 3, transit: true, keys: [...identity(), ...OPERATIONAL_KEYS] }))
    const answered = dec(o.data).map(([k]) => k)
    const sent = OPERATIONAL_KEYS.map(([k]) => k).filter((k) => k !== 'MaxRecvDataSegmentLength')
    expect(answered.sort()).toEqual([...sent, 'MaxRecvDataSegmentLength', 'TargetAlias', 'TargetPortalGroupTag'].sort())
  })

  it('walks T=0 requests and sends TargetPortalGroupTag only in the first response', () => {
    const neg = new LoginNegotiator(env())
    const r1 = neg.handle(req({ csg: 1, keys: [...identity(), ['HeaderDigest', 'CRC32C,None']] }))
    expect(r1).toMatchObject({ kind: 'continue', transit: false, nsg: 0, csg: 1 })
    expect(keysOf(r1)).toMatchObject({ TargetPortalGroupTag: '7', HeaderDigest: 'CRC32C', MaxRecvDataSegmentLength: '65536' })
    const r2 = neg.handle(req({ csg: 1, keys: [['DataDigest', 'CRC32C']] }))
    expect(keysOf(r2)).toEqual({ DataDigest: 'CRC32C' })
    const done = expectComplete(neg.handle(req({ csg: 1, nsg: 3, transit: true })))
    expect(done.data).toHaveLength(0)
    expect(done.params.headerDigest).toBe(true)
    expect(done.params.dataDigest).toBe(true)
    expect(done.params.maxXmitDataSegmentLength).toBe(8192) // §13.12 default: never declared
  })

  it('refuses requests after the login completed', () => {
    const neg = new LoginNegotiator(env())
    expectComplete(neg.handle(req({ csg: 1, nsg: 3, transit: true, keys: identity() })))
    expectFail(neg.handle(req({ csg: 1, nsg: 3, transit: true })), 0x020b)
  })
})

describe('LoginNegotiator: identity checks (§6.3.1)', () => {
  it('missing InitiatorName → 0x0207', () => {
    const o = new LoginNegotiator(env()).handle(req({ csg: 1, nsg: 3, transit: true, keys: [['TargetName', PLAIN]] }))
    expectFail(o, 0x0207)
    if (o.kind === 'fail') expect(o.reason).toMatch(/InitiatorName/)
  })

  it('missing TargetName in a Normal session → 0x0207', () => {
    expectFail(new LoginNegotiator(env()).handle(req({ csg: 0, keys: [['InitiatorName', INITIATOR]] })), 0x0207)
  })

  it('unknown target → 0x0203', () => {
    expectFail(new LoginNegotiator(env()).handle(req({ csg: 0, keys: identity('iqn.2024-01.test:nope') })), 0x0203)
  })

  it('initiator not on the allow-list → 0x0202; names compare case-insensitively', () => {
    expectFail(new LoginNegotiator(env()).handle(req({ csg: 1, keys: identity(RESTRICTED) })), 0x0202)
    const ok = new LoginNegotiator(env()).handle(
      req({ csg: 1, nsg: 3, transit: true, keys: [['InitiatorName', 'iqn.1993-08.org.debian:01:GOOD'], ['TargetName', RESTRICTED]] }),
    )
    expectComplete(ok)
  })

  it('unsupported SessionType → 0x0209', () => {
    expectFail(
      new LoginNegotiator(env()).handle(req({ csg: 1, keys: [['InitiatorName', INITIATOR], ['SessionType', 'Bulk']] })),
      0x0209,
    )
  })

  it('an over-long InitiatorName → 0x0200', () => {
    expectFail(
      new LoginNegotiator(env()).handle(req({ csg: 1, keys: [['InitiatorName', `iqn.x:${'a'.repeat(220)}`], ['TargetName', PLAIN]] })),
      0x0200,
    )
  })

  it('an environment that throws → 0x0300, not a crash', () => {
    const e = env({
      findTarget: () => {
        throw new Error('config store down')
      },
    })
    const o = new LoginNegotiator(e).handle(req({ csg: 1, keys: identity() }))
    expectFail(o, 0x0300)
  })
})

describe('LoginNegotiator: versions and stages (§11.12)', () => {
  it('Version-min above 0 → 0x0205', () => {
    expectFail(new LoginNegotiator(env()).handle(req({ csg: 1, keys: identity(), versionMin: 1, versionMax: 2 })), 0x0205)
  })

  it('accepts a Version-max above 0 when 0 is in range', () => {
    expectComplete(new LoginNegotiator(env()).handle(req({ csg: 1, nsg: 3, transit: true, keys: identity(), versionMax: 3 })))
  })

  it.each([
    ['CSG 3', { csg: 3 }],
    ['CSG 2', { csg: 2 }],
    ['NSG 2', { csg: 0, nsg: 2, transit: true }],
    ['operational → security', { csg: 1, nsg: 0, transit: true }],
    ['operational → operational', { csg: 1, nsg: 1, transit: true }],
  ])('%s → 0x020b', (_name, o) => {
    expectFail(new LoginNegotiator(env()).handle(req({ ...o, keys: identity() })), 0x020b)
  })

  it('skipping ahead before the target agreed to transit → 0x020b', () => {
    const neg = new LoginNegotiator(env())
    expect(neg.handle(req({ csg: 0, keys: [...identity(), ['AuthMethod', 'None']] })).kind).toBe('continue')
    expectFail(neg.handle(req({ csg: 1, nsg: 3, transit: true })), 0x020b)
  })

  it('going back to the security stage → 0x020b', () => {
    const neg = new LoginNegotiator(env())
    const r = neg.handle(req({ csg: 0, nsg: 1, transit: true, keys: [...identity(), ['AuthMethod', 'None']] }))
    expect(r).toMatchObject({ kind: 'continue', transit: true, csg: 0, nsg: 1 })
    expectFail(neg.handle(req({ csg: 0, nsg: 1, transit: true })), 0x020b)
  })

  it('ISID changing during login → 0x0200', () => {
    const neg = new LoginNegotiator(env())
    neg.handle(req({ csg: 1, keys: identity() }))
    expectFail(neg.handle(req({ csg: 1, isid: '400001370001' })), 0x0200)
  })

  it('C and T both set → 0x0200', () => {
    expectFail(new LoginNegotiator(env()).handle(req({ csg: 1, nsg: 3, transit: true, cont: true, keys: identity() })), 0x0200)
  })

  it('malformed text → 0x0200', () => {
    expectFail(new LoginNegotiator(env()).handle(req({ csg: 1, data: Buffer.from(`InitiatorName=${INITIATOR}\0oops\0`) })), 0x0200)
  })

  it('a key sent twice, in one request or across requests of a stage → 0x0200', () => {
    expectFail(
      new LoginNegotiator(env()).handle(req({ csg: 1, keys: [...identity(), ['MaxBurstLength', '512'], ['MaxBurstLength', '512']] })),
      0x0200,
    )
    const neg = new LoginNegotiator(env())
    neg.handle(req({ csg: 1, keys: [...identity(), ['HeaderDigest', 'None']] }))
    expectFail(neg.handle(req({ csg: 1, keys: [['HeaderDigest', 'None']] })), 0x0200)
  })

  it('the identity keys repeated unchanged in the next stage are fine (libiscsi does this); changed → 0x0200', () => {
    const neg = new LoginNegotiator(env())
    neg.handle(req({ csg: 0, nsg: 1, transit: true, keys: [...identity(), ['AuthMethod', 'None']] }))
    expectComplete(neg.handle(req({ csg: 1, nsg: 3, transit: true, keys: [...identity(), ...OPERATIONAL_KEYS] })))

    const neg2 = new LoginNegotiator(env())
    neg2.handle(req({ csg: 0, nsg: 1, transit: true, keys: [...identity(), ['AuthMethod', 'None']] }))
    expectFail(neg2.handle(req({ csg: 1, keys: [['InitiatorName', 'iqn.other:x']] })), 0x0200)
  })

  it('security → Full Feature directly when no operational negotiation is needed', () => {
    const neg = new LoginNegotiator(env())
    const o = expectComplete(neg.handle(req({ csg: 0, nsg: 3, transit: true, keys: [...identity(), ['AuthMethod', 'None']] })))
    expect(o.csg).toBe(0)
    expect(keysOf(o)).toEqual({ TargetPortalGroupTag: '7', TargetAlias: 'Plain Disk', AuthMethod: 'None' })
    // Every operational key stays at its RFC default, ours included.
    expect(o.params).toMatchObject({ maxRecvDataSegmentLength: 8192, maxXmitDataSegmentLength: 8192, initialR2T: true, maxBurstLength: 262144 })
  })

  it('security → Full Feature is steered into the operational stage when a default is beyond our limits', () => {
    const e = env()
    const neg = new LoginNegotiator({ ...e, targetLimits: { ...e.targetLimits, defaultTime2Retain: 0 } })
    const o = neg.handle(req({ csg: 0, nsg: 3, transit: true, keys: [...identity(), ['AuthMethod', 'None']] }))
    expect(o).toMatchObject({ kind: 'continue', transit: true, csg: 0, nsg: 1 })
  })

  it('a security-stage transit without any AuthMethod is fine when no CHAP is configured', () => {
    const neg = new LoginNegotiator(env())
    const o = neg.handle(req({ csg: 0, nsg: 1, transit: true, keys: identity() }))
    expect(o).toMatchObject({ kind: 'continue', transit: true, nsg: 1 })
    expect(expectComplete(neg.handle(req({ csg: 1, nsg: 3, transit: true }))).authMethod).toBe('None')
  })

  it('operational keys in the security stage → 0x0200; security keys in the operational stage → 0x0200', () => {
    expectFail(new LoginNegotiator(env()).handle(req({ csg: 0, keys: [...identity(), ['HeaderDigest', 'None']] })), 0x0200)
    expectFail(new LoginNegotiator(env()).handle(req({ csg: 1, keys: [...identity(), ['AuthMethod', 'None']] })), 0x0200)
  })
})

describe('LoginNegotiator: continuation (C bit, §6.1)', () => {
  it('accumulates a request split mid-pair over several PDUs', () => {
    const whole = enc([...identity(), ...OPERATIONAL_KEYS])
    const cut1 = 17 // inside "InitiatorName=..."
    const cut2 = 90
    const neg = new LoginNegotiator(env())
    const a = neg.handle(req({ csg: 1, cont: true, data: whole.subarray(0, cut1) }))
    expect(a).toMatchObject({ kind: 'continue', transit: false, continue: false, csg: 1, nsg: 0, statusClass: 0 })
    expect(a.data).toHaveLength(0)
    const b = neg.handle(req({ csg: 1, cont: true, data: whole.subarray(cut1, cut2) }))
    expect(b.data).toHaveLength(0)
    const done = expectComplete(neg.handle(req({ csg: 1, nsg: 3, transit: true, data: whole.subarray(cut2) })))
    expect(done.params.maxXmitDataSegmentLength).toBe(262144)
    expect(keysOf(done)['TargetPortalGroupTag']).toBe('7')
  })

  it('copies the data of partial PDUs (the receive buffer is reused)', () => {
    const whole = enc(identity())
    const part = Buffer.from(whole.subarray(0, 20))
    const neg = new LoginNegotiator(env())
    neg.handle(req({ csg: 1, cont: true, data: part }))
    part.fill(0x41)
    expectComplete(neg.handle(req({ csg: 1, nsg: 3, transit: true, data: whole.subarray(20) })))
  })

  it('gives up past 64 KiB of text with 0x0302', () => {
    const neg = new LoginNegotiator(env())
    const chunk = Buffer.alloc(16384, 0x41)
    let o: LoginOutcome | undefined
    for (let i = 0; i < 5; i++) o = neg.handle(req({ csg: 1, cont: true, data: chunk }))
    expectFail(o!, 0x0302)
    if (o?.kind === 'fail') expect(o.error).toBeInstanceOf(OutOfResourcesError)
  })
})

describe('LoginNegotiator: AuthMethod (§12.1)', () => {
  it('answers None to "CHAP,None" when the target has no CHAP', () => {
    const o = new LoginNegotiator(env()).handle(
      req({ csg: 0, nsg: 1, transit: true, keys: [...identity(), ['AuthMethod', 'CHAP,None']] }),
    )
    expect(o).toMatchObject({ kind: 'continue', transit: true, nsg: 1 })
    expect(keysOf(o)['AuthMethod']).toBe('None')
  })

  it('refuses CHAP alone when the target has no secret → 0x0201', () => {
    expectFail(new LoginNegotiator(env()).handle(req({ csg: 0, keys: [...identity(), ['AuthMethod', 'CHAP']] })), 0x0201)
  })

  it('refuses None alone when the target requires CHAP → 0x0201', () => {
    expectFail(new LoginNegotiator(env()).handle(req({ csg: 0, keys: [...identity(CHAP), ['AuthMethod', 'None']] })), 0x0201)
  })

  it('refuses a login that skips the security stage of a CHAP target → 0x0201', () => {
    expectFail(new LoginNegotiator(env()).handle(req({ csg: 1, nsg: 3, transit: true, keys: identity(CHAP) })), 0x0201)
  })

  it('refuses a transit without AuthMethod when CHAP is required → 0x0201', () => {
    expectFail(new LoginNegotiator(env()).handle(req({ csg: 0, nsg: 1, transit: true, keys: identity(CHAP) })), 0x0201)
  })

  it('picks CHAP from "SRP,CHAP,None" for a CHAP target', () => {
    const o = new LoginNegotiator(env()).handle(req({ csg: 0, keys: [...identity(CHAP), ['AuthMethod', 'SRP,CHAP,None']] }))
    expect(keysOf(o)['AuthMethod']).toBe('CHAP')
  })

  it('refuses CHAP keys when None was negotiated → 0x0201', () => {
    const neg = new LoginNegotiator(env())
    neg.handle(req({ csg: 0, keys: [...identity(), ['AuthMethod', 'None']] }))
    expectFail(neg.handle(req({ csg: 0, keys: [['CHAP_A', '5']] })), 0x0201)
  })
})

describe('LoginNegotiator: CHAP (§12.1.3)', () => {
  it('one-way CHAP succeeds (libiscsi flow) and then the operational stage completes', () => {
    const { neg, id, challenge } = chapToChallenge(CHAP)
    expect(challenge).toHaveLength(16)
    const r3 = neg.handle(
      req({ csg: 0, nsg: 1, transit: true, keys: [['CHAP_N', 'alice'], ['CHAP_R', `0x${md5(id, SECRET, challenge).toString('hex').toUpperCase()}`]] }),
    )
    expect(r3).toMatchObject({ kind: 'continue', transit: true, csg: 0, nsg: 1, statusClass: 0 })
    expect(r3.data).toHaveLength(0) // nothing to say back in one-way CHAP
    const done = expectComplete(neg.handle(req({ csg: 1, nsg: 3, transit: true, keys: [...identity(CHAP), ...OPERATIONAL_KEYS] })))
    expect(done.authMethod).toBe('CHAP')
    expect(done.mutualChap).toBe(false)
  })

  it('accepts a base64 CHAP_R', () => {
    const { neg, id, challenge } = chapToChallenge(CHAP)
    const o = neg.handle(
      req({ csg: 0, nsg: 1, transit: true, keys: [['CHAP_N', 'alice'], ['CHAP_R', `0b${md5(id, SECRET, challenge).toString('base64')}`]] }),
    )
    expect(o).toMatchObject({ kind: 'continue', transit: true })
  })

  it('takes CHAP_A together with AuthMethod=CHAP', () => {
    const neg = new LoginNegotiator(env())
    const o = neg.handle(req({ csg: 0, keys: [...identity(CHAP), ['AuthMethod', 'CHAP'], ['CHAP_A', '7,5']] }))
    expect(keysOf(o)).toMatchObject({ AuthMethod: 'CHAP', CHAP_A: '5' })
  })

  it('refuses CHAP_A without MD5 → 0x0201', () => {
    const neg = new LoginNegotiator(env())
    neg.handle(req({ csg: 0, keys: [...identity(CHAP), ['AuthMethod', 'CHAP']] }))
    expectFail(neg.handle(req({ csg: 0, keys: [['CHAP_A', '6,7']] })), 0x0201)
  })

  it('wrong secret → 0x0201', () => {
    const { neg, id, challenge } = chapToChallenge(CHAP)
    const o = neg.handle(req({ csg: 0, nsg: 1, transit: true, keys: [['CHAP_N', 'alice'], ['CHAP_R', `0x${md5(id, 'not-the-secret', challenge).toString('hex')}`]] }))
    expectFail(o, 0x0201)
  })

  it('wrong user name → 0x0201', () => {
    const { neg, id, challenge } = chapToChallenge(CHAP)
    const o = neg.handle(req({ csg: 0, nsg: 1, transit: true, keys: [['CHAP_N', 'mallory'], ['CHAP_R', `0x${md5(id, SECRET, challenge).toString('hex')}`]] }))
    expectFail(o, 0x0201)
  })

  it.each([
    ['too short', '0x00112233'],
    ['too long', `0x${'00'.repeat(17)}`],
    ['not binary', 'hello'],
    ['empty', ''],
  ])('CHAP_R %s → 0x0201, not a crash', (_name, value) => {
    const { neg } = chapToChallenge(CHAP)
    expectFail(neg.handle(req({ csg: 0, nsg: 1, transit: true, keys: [['CHAP_N', 'alice'], ['CHAP_R', value]] })), 0x0201)
  })

  it('CHAP_N without CHAP_R → 0x0201', () => {
    const { neg } = chapToChallenge(CHAP)
    expectFail(neg.handle(req({ csg: 0, nsg: 1, transit: true, keys: [['CHAP_N', 'alice']] })), 0x0201)
  })

  it('a response before the challenge → 0x0201', () => {
    const neg = new LoginNegotiator(env())
    neg.handle(req({ csg: 0, keys: [...identity(CHAP), ['AuthMethod', 'CHAP']] }))
    expectFail(neg.handle(req({ csg: 0, keys: [['CHAP_N', 'alice'], ['CHAP_R', `0x${'00'.repeat(16)}`]] })), 0x0201)
  })

  it('a transit request after the challenge without a response → 0x0201', () => {
    const { neg } = chapToChallenge(CHAP)
    expectFail(neg.handle(req({ csg: 0, nsg: 1, transit: true })), 0x0201)
  })

  it('mutual CHAP: the target answers with its own CHAP_N/CHAP_R', () => {
    const { neg, id, challenge } = chapToChallenge(MUTUAL)
    const ic = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 7 + 3) & 0xff))
    const o = neg.handle(
      req({
        csg: 0,
        nsg: 1,
        transit: true,
        keys: [
          ['CHAP_N', 'alice'],
          ['CHAP_R', `0x${md5(id, SECRET, challenge).toString('hex')}`],
          ['CHAP_I', '200'],
          ['CHAP_C', `0x${ic.toString('hex')}`],
        ],
      }),
    )
    expect(o).toMatchObject({ kind: 'continue', transit: true, nsg: 1 })
    const k = keysOf(o)
    expect(k['CHAP_N']).toBe('target-m')
    expect(k['CHAP_R']).toBe(`0x${md5(200, TARGET_SECRET, ic).toString('hex')}`)
    const done = expectComplete(neg.handle(req({ csg: 1, nsg: 3, transit: true, keys: OPERATIONAL_KEYS })))
    expect(done.mutualChap).toBe(true)
  })

  it('mutual CHAP with a base64 challenge', () => {
    const { neg, id, challenge } = chapToChallenge(MUTUAL)
    const ic = Buffer.from('mutual-challenge-bytes')
    const o = neg.handle(
      req({
        csg: 0,
        keys: [
          ['CHAP_N', 'alice'],
          ['CHAP_R', `0x${md5(id, SECRET, challenge).toString('hex')}`],
          ['CHAP_I', '0x0a'],
          ['CHAP_C', `0b${ic.toString('base64')}`],
        ],
      }),
    )
    expect(o.transit).toBe(false) // the initiator asked for T=0
    expect(keysOf(o)['CHAP_R']).toBe(`0x${md5(10, TARGET_SECRET, ic).toString('hex')}`)
  })

  it('mutual CHAP configured but the initiator does not challenge → 0x0201', () => {
    const { neg, id, challenge } = chapToChallenge(MUTUAL)
    const o = neg.handle(req({ csg: 0, nsg: 1, transit: true, keys: [['CHAP_N', 'alice'], ['CHAP_R', `0x${md5(id, SECRET, challenge).toString('hex')}`]] }))
    expectFail(o, 0x0201)
  })

  it('the initiator challenges a target without mutual credentials → 0x0201', () => {
    const { neg, id, challenge } = chapToChallenge(CHAP)
    const o = neg.handle(
      req({
        csg: 0,
        nsg: 1,
        transit: true,
        keys: [
          ['CHAP_N', 'alice'],
          ['CHAP_R', `0x${md5(id, SECRET, challenge).toString('hex')}`],
          ['CHAP_I', '1'],
          ['CHAP_C', `0x${'11'.repeat(16)}`],
        ],
      }),
    )
    expectFail(o, 0x0201)
  })

  it('a reflected challenge → 0x0201, and no target response leaks', () => {
    const { neg, id, challenge } = chapToChallenge(MUTUAL)
    const o = neg.handle(
      req({
        csg: 0,
        nsg: 1,
        transit: true,
        keys: [
          ['CHAP_N', 'alice'],
          ['CHAP_R', `0x${md5(id, SECRET, challenge).toString('hex')}`],
          ['CHAP_I', String(id)],
          ['CHAP_C', `0x${challenge.toString('hex')}`],
        ],
      }),
    )
    expectFail(o, 0x0201)
  })

  it('CHAP_I without CHAP_C → 0x0201', () => {
    const { neg, id, challenge } = chapToChallenge(MUTUAL)
    const o = neg.handle(
      req({ csg: 0, nsg: 1, transit: true, keys: [['CHAP_N', 'alice'], ['CHAP_R', `0x${md5(id, SECRET, challenge).toString('hex')}`], ['CHAP_I', '1']] }),
    )
    expectFail(o, 0x0201)
  })

  it('a wrong initiator response is refused before any mutual answer is computed', () => {
    const { neg, id, challenge } = chapToChallenge(MUTUAL)
    const o = neg.handle(
      req({
        csg: 0,
        nsg: 1,
        transit: true,
        keys: [
          ['CHAP_N', 'alice'],
          ['CHAP_R', `0x${md5(id, 'guess', challenge).toString('hex')}`],
          ['CHAP_I', '1'],
          ['CHAP_C', `0x${'22'.repeat(16)}`],
        ],
      }),
    )
    expectFail(o, 0x0201)
  })
})

describe('LoginNegotiator: discovery sessions', () => {
  const discovery: Pairs = [
    ['InitiatorName', INITIATOR],
    ['SessionType', 'Discovery'],
  ]

  it('needs no TargetName and announces no portal group', () => {
    const o = expectComplete(new LoginNegotiator(env()).handle(req({ csg: 1, nsg: 3, transit: true, keys: [...discovery, ...OPERATIONAL_KEYS] })))
    expect(o.params.sessionType).toBe('Discovery')
    expect(o.params.targetName).toBeUndefined()
    expect(o.params.target).toBeUndefined()
    expect(keysOf(o)['TargetPortalGroupTag']).toBeUndefined()
    expect(keysOf(o)['MaxRecvDataSegmentLength']).toBe('65536')
  })

  it('uses the discovery CHAP credentials when configured', () => {
    const e = env({ discoveryChap: { user: 'disc', secret: 'discovery-secret' } })
    expectFail(new LoginNegotiator(e).handle(req({ csg: 1, keys: discovery })), 0x0201)
    const neg = new LoginNegotiator(e)
    neg.handle(req({ csg: 0, keys: [...discovery, ['AuthMethod', 'CHAP']] }))
    const k = keysOf(neg.handle(req({ csg: 0, keys: [['CHAP_A', '5']] })))
    const id = Number(k['CHAP_I'])
    const c = Buffer.from(k['CHAP_C']!.slice(2), 'hex')
    const o = neg.handle(req({ csg: 0, nsg: 3, transit: true, keys: [['CHAP_N', 'disc'], ['CHAP_R', `0x${md5(id, 'discovery-secret', c).toString('hex')}`]] }))
    expect(expectComplete(o).authMethod).toBe('CHAP')
  })

  it('a later SessionType contradicting the first request → 0x0200', () => {
    const neg = new LoginNegotiator(env())
    neg.handle(req({ csg: 1, keys: [['InitiatorName', INITIATOR], ['TargetName', PLAIN]] }))
    expectFail(neg.handle(req({ csg: 1, keys: [['SessionType', 'Discovery']] })), 0x0200)
  })
})

describe('refuseLogin', () => {
  it('builds a refusal for a status the caller decides', () => {
    const r = req({ csg: 1, keys: identity(), tsih: 5 })
    expect(refuseLogin(r, new OutOfResourcesError('no room'))).toEqual({
      transit: false,
      continue: false,
      csg: 1,
      nsg: 0,
      versionMax: 0,
      versionActive: 0,
      isid: '400001370000',
      tsih: 5,
      itt: 0x1234,
      statusClass: 3,
      statusDetail: 2,
      data: Buffer.alloc(0),
    })
  })
})
