import { describe, expect, it } from 'vitest'
import { Opcode } from '../../../src/wire/pdu.js'
import { answerSendTargets } from '../../../src/iscsi/discovery.js'
import { LoginNegotiator, type LoginEnvironment, type SessionParams, type TargetAccess } from '../../../src/iscsi/login.js'

const ME = 'iqn.1993-08.org.debian:01:me'

const A: TargetAccess = { iqn: 'iqn.2024-01.test:a', tpgt: 1, portals: ['192.0.2.10:3260,1', '[2001:db8::10]:3260,1'] }
const B: TargetAccess = { iqn: 'iqn.2024-01.test:b', tpgt: 2, portals: ['192.0.2.11:3261'] } // tag added
const HIDDEN: TargetAccess = { iqn: 'iqn.2024-01.test:hidden', tpgt: 1, portals: ['192.0.2.12:3260,1'], initiators: ['iqn.other:x'] }
const MINE: TargetAccess = { iqn: 'iqn.2024-01.test:mine', tpgt: 1, portals: ['192.0.2.13:3260,1'], initiators: [ME.toUpperCase()] }
const ALL = [A, B, HIDDEN, MINE]

const env: Pick<LoginEnvironment, 'findTarget' | 'listTargets'> = {
  findTarget: (iqn) => ALL.find((t) => t.iqn === iqn),
  listTargets: () => ALL,
}

const discovery: Pick<SessionParams, 'sessionType' | 'initiatorName' | 'targetName' | 'target'> = {
  sessionType: 'Discovery',
  initiatorName: ME,
}
const normal = (t: TargetAccess): Pick<SessionParams, 'sessionType' | 'initiatorName' | 'targetName' | 'target'> => ({
  sessionType: 'Normal',
  initiatorName: ME,
  targetName: t.iqn,
  target: t,
})

describe('answerSendTargets (§13.3)', () => {
  it('All lists every target the initiator may log in to, with its portals', () => {
    expect(answerSendTargets('All', env, discovery)).toEqual([
      ['TargetName', 'iqn.2024-01.test:a'],
      ['TargetAddress', '192.0.2.10:3260,1'],
      ['TargetAddress', '[2001:db8::10]:3260,1'],
      ['TargetName', 'iqn.2024-01.test:b'],
      ['TargetAddress', '192.0.2.11:3261,2'],
      ['TargetName', 'iqn.2024-01.test:mine'],
      ['TargetAddress', '192.0.2.13:3260,1'],
    ])
  })

  it('All in a Normal session is rejected', () => {
    expect(answerSendTargets('All', env, normal(A))).toEqual([['SendTargets', 'Reject']])
  })

  it('<name> answers that target only', () => {
    expect(answerSendTargets('iqn.2024-01.test:b', env, discovery)).toEqual([
      ['TargetName', 'iqn.2024-01.test:b'],
      ['TargetAddress', '192.0.2.11:3261,2'],
    ])
    expect(answerSendTargets('iqn.2024-01.test:b', env, normal(A))).toHaveLength(2)
  })

  it('<name> of an unknown or forbidden target answers nothing', () => {
    expect(answerSendTargets('iqn.2024-01.test:nope', env, discovery)).toEqual([])
    expect(answerSendTargets('iqn.2024-01.test:hidden', env, discovery)).toEqual([])
  })

  it('an empty value in a Normal session answers the session target', () => {
    expect(answerSendTargets('', env, normal(A))).toEqual([
      ['TargetName', 'iqn.2024-01.test:a'],
      ['TargetAddress', '192.0.2.10:3260,1'],
      ['TargetAddress', '[2001:db8::10]:3260,1'],
    ])
    // Without the TargetAccess object, the name is looked up.
    expect(answerSendTargets('', env, { sessionType: 'Normal', initiatorName: ME, targetName: B.iqn })[0]).toEqual(['TargetName', B.iqn])
  })

  it('an empty value in a Discovery session is rejected', () => {
    expect(answerSendTargets('', env, discovery)).toEqual([['SendTargets', 'Reject']])
  })

  it('works on the parameters a discovery login produced', () => {
    const neg = new LoginNegotiator({
      ...env,
      targetLimits: {
        maxRecvDataSegmentLength: 8192,
        maxBurstLength: 262144,
        firstBurstLength: 65536,
        maxOutstandingR2T: 1,
        immediateData: true,
        initialR2T: true,
        defaultTime2Wait: 2,
        defaultTime2Retain: 20,
      },
      randomBytes: (n) => Buffer.alloc(n),
    })
    const o = neg.handle({
      opcode: Opcode.LoginRequest,
      immediate: true,
      ahs: [],
      data: Buffer.from(`InitiatorName=${ME}\0SessionType=Discovery\0`),
      transit: true,
      continue: false,
      csg: 1,
      nsg: 3,
      versionMax: 0,
      versionMin: 0,
      isid: '000000000001',
      tsih: 0,
      itt: 1,
      cid: 0,
      cmdSN: 0,
      expStatSN: 0,
    })
    if (o.kind !== 'complete') throw new Error(`login ${o.kind}`)
    const names = answerSendTargets('All', env, o.params).filter(([k]) => k === 'TargetName').map(([, v]) => v)
    expect(names).toEqual([A.iqn, B.iqn, MINE.iqn])
  })
})
