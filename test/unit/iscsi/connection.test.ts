import { describe, expect, it } from 'vitest'
import { Opcode, RESERVED_TAG, RejectReason, TmfFunction, TmfResponse, type TaskMgmtRequest } from '../../../src/wire/pdu.js'
import { encodeLun } from '../../../src/wire/lun.js'
import { encodeTextKeys } from '../../../src/iscsi/text-keys.js'
import {
  INITIATOR, TARGET_IQN, UNSOLICITED, dataOut, flushMicrotasks, keysOf, loginRequest, makeHarness, read10, write10,
  type Harness,
} from '../../helpers/connection-harness.js'

const FAST_KEYS = {
  InitialR2T: 'No', ImmediateData: 'Yes', FirstBurstLength: '8192', MaxBurstLength: '16384', MaxOutstandingR2T: '2',
}

async function loggedIn(keys: Record<string, string> = FAST_KEYS): Promise<Harness> {
  const h = makeHarness()
  const resp = await h.login(keys)
  expect(resp.opcode).toBe(Opcode.LoginResponse)
  if (resp.opcode !== Opcode.LoginResponse) throw new Error('no login response')
  expect(resp.statusClass).toBe(0)
  h.sent.length = 0
  return h
}

function pattern(bytes: number, seed = 1): Buffer {
  const b = Buffer.alloc(bytes)
  for (let i = 0; i < bytes; i++) b[i] = (i * 7 + seed) & 0xff
  return b
}

function tmf(fn: TmfFunction, itt: number, cmdSN: number, ref = RESERVED_TAG, refCmdSN = 0): TaskMgmtRequest {
  return {
    opcode: Opcode.TaskMgmtRequest, immediate: true, ahs: [], data: Buffer.alloc(0), function: fn, lun: encodeLun(0),
    itt, referencedTaskTag: ref, cmdSN, expStatSN: 0, refCmdSN, expDataSN: 0,
  }
}

describe('login', () => {
  it('completes into full feature phase with a TSIH and the portal group tag', async () => {
    const h = makeHarness()
    const resp = await h.login(FAST_KEYS)
    if (resp.opcode !== Opcode.LoginResponse) throw new Error('expected a login response')
    expect(resp.statusClass).toBe(0)
    expect(resp.transit).toBe(true)
    expect(resp.nsg).toBe(3)
    expect(resp.tsih).toBeGreaterThan(0)
    const first = h.take(Opcode.LoginResponse)[0]!
    expect(keysOf(first).get('TargetPortalGroupTag')).toBe('1')
    expect(h.sessions.size).toBe(1)
  })

  it('turns digests on only after the final login response was queued', async () => {
    const h = makeHarness()
    const resp = await h.login({ ...FAST_KEYS, HeaderDigest: 'CRC32C', DataDigest: 'CRC32C' })
    expect(resp.opcode).toBe(Opcode.LoginResponse)
    expect(h.digests).toEqual({ header: true, data: true })
  })

  it('refuses an unknown target with 0x0203 and closes', async () => {
    const h = makeHarness()
    const resp = await h.login({ TargetName: 'iqn.2026-11.io.iscsi-ha:nope' })
    if (resp.opcode !== Opcode.LoginResponse) throw new Error('expected a login response')
    expect([resp.statusClass, resp.statusDetail]).toEqual([2, 3])
    expect(h.closed()).toBe(true)
  })

  it('closes on a non-login PDU before login', () => {
    const h = makeHarness()
    h.feed(read10(1, 1, 1))
    expect(h.closed()).toBe(true)
    expect(h.unit.executed).toHaveLength(0)
  })

  it('refuses a second connection to a session (MaxConnections=1) with 0x0206', async () => {
    const h = await loggedIn()
    const tsih = h.sessions.all()[0]!.tsih
    const other = makeHarness({ sessions: h.sessions, target: h.conn.sessionInfo!.target!, unit: h.unit })
    other.feed(loginRequest([['InitiatorName', INITIATOR], ['TargetName', TARGET_IQN]], '400001370000', tsih))
    await flushMicrotasks()
    const resp = other.sent.at(-1)!
    if (resp.opcode !== Opcode.LoginResponse) throw new Error('expected a login response')
    expect([resp.statusClass, resp.statusDetail]).toEqual([2, 6])
  })

  it('reinstates a session logging in again with the same ISID: the old connection closes first', async () => {
    const first = await loggedIn()
    first.unit.hold = true
    first.feed(read10(9, 1, 1))
    const second = makeHarness({ sessions: first.sessions, target: first.conn.sessionInfo!.target!, unit: first.unit })
    const loginDone = second.login(FAST_KEYS)
    await flushMicrotasks()
    // The old session's task is still on storage: the new login is not final yet.
    expect(second.take(Opcode.LoginResponse).some((p) => p.nsg === 3)).toBe(false)
    first.unit.release()
    const resp = await loginDone
    await flushMicrotasks()
    const final = second.sent.at(-1)!
    expect(final.opcode).toBe(Opcode.LoginResponse)
    expect(first.closed()).toBe(true)
    expect(first.take(Opcode.ScsiResponse)).toHaveLength(0)
    expect(first.take(Opcode.DataIn)).toHaveLength(0)
    expect(first.sessions.size).toBe(1)
    expect(resp).toBeDefined()
  })
})

describe('writes', () => {
  it('takes immediate and unsolicited data, then solicits the rest with R2Ts of MaxBurstLength', async () => {
    const h = await loggedIn()
    const data = pattern(64 * 512)
    h.feed(write10(1, 1, 64, data.subarray(0, 4096)))
    h.feed(dataOut(1, UNSOLICITED, 4096, data.subarray(4096, 8192), true))
    const r2ts = h.take(Opcode.R2T)
    // 32768 - 8192 unsolicited = 24576 left: MaxBurst 16384 then 8192, both outstanding (MaxOutstandingR2T 2).
    expect(r2ts.map((r) => [r.bufferOffset, r.desiredDataTransferLength, r.r2tSN])).toEqual([[8192, 16384, 0], [24576, 8192, 1]])
    expect(h.unit.executed).toHaveLength(0)
    for (const r of r2ts) {
      for (let off = r.bufferOffset, sn = 0; off < r.bufferOffset + r.desiredDataTransferLength; off += 4096, sn++) {
        const last = off + 4096 >= r.bufferOffset + r.desiredDataTransferLength
        h.feed(dataOut(1, r.ttt, off, data.subarray(off, off + 4096), last, sn))
      }
    }
    await flushMicrotasks()
    expect(h.unit.executed).toHaveLength(1)
    expect(h.unit.executed[0]!.data.equals(data)).toBe(true)
    const [resp] = h.take(Opcode.ScsiResponse)
    expect(resp).toMatchObject({ itt: 1, status: 0, underflow: false, overflow: false, residualCount: 0 })
  })

  it('solicits everything with R2T when InitialR2T=Yes and no immediate data', async () => {
    const h = await loggedIn({ ...FAST_KEYS, InitialR2T: 'Yes', ImmediateData: 'No' })
    h.feed(write10(1, 1, 8, Buffer.alloc(0)))
    const [r2t] = h.take(Opcode.R2T)
    expect(r2t).toMatchObject({ bufferOffset: 0, desiredDataTransferLength: 4096 })
  })

  it('runs SPDTL > EDTL on the EDTL bytes only and reports an overflow residual (FCP-4 a)', async () => {
    const h = await loggedIn()
    h.feed(write10(1, 1, 2, Buffer.alloc(512, 0x62), { expectedDataTransferLength: 512, final: true }))
    await flushMicrotasks()
    expect(h.take(Opcode.R2T)).toHaveLength(0)
    const [resp] = h.take(Opcode.ScsiResponse)
    expect(resp).toMatchObject({ status: 0, overflow: true, residualCount: 512 })
    expect(h.unit.executed[0]!.data.length).toBe(512)
  })

  it('fails a task whose Data-Out DataSN is out of sequence', async () => {
    const h = await loggedIn({ ...FAST_KEYS, InitialR2T: 'Yes', ImmediateData: 'No' })
    h.feed(write10(1, 1, 2, Buffer.alloc(0)))
    const [r2t] = h.take(Opcode.R2T)
    h.feed(dataOut(1, r2t!.ttt, 0, Buffer.alloc(512), false, 1))
    h.feed(dataOut(1, r2t!.ttt, 512, Buffer.alloc(512), true, 2))
    await flushMicrotasks()
    expect(h.take(Opcode.Reject)).toHaveLength(1)
    const [resp] = h.take(Opcode.ScsiResponse)
    expect(resp).toMatchObject({ itt: 1, status: 2 })
    expect([resp!.sense![2]! & 0x0f, resp!.sense![12], resp!.sense![13]]).toEqual([0x0b, 0x4b, 0x00])
    expect(h.unit.executed).toHaveLength(0)
  })

  it('fails a task whose Data-Out skips an offset', async () => {
    const h = await loggedIn({ ...FAST_KEYS, InitialR2T: 'Yes', ImmediateData: 'No' })
    h.feed(write10(1, 1, 2, Buffer.alloc(0)))
    const [r2t] = h.take(Opcode.R2T)
    h.feed(dataOut(1, r2t!.ttt, 512, Buffer.alloc(512), false, 0))
    const [resp] = h.take(Opcode.ScsiResponse)
    expect([resp!.sense![12], resp!.sense![13]]).toEqual([0x4b, 0x05])
  })

  it('reports an underflow when EDTL is larger than the CDB asks', async () => {
    const h = await loggedIn()
    h.feed(write10(1, 1, 1, Buffer.alloc(1024), { expectedDataTransferLength: 1024, final: true }))
    await flushMicrotasks()
    const [resp] = h.take(Opcode.ScsiResponse)
    expect(resp).toMatchObject({ status: 0, underflow: true, residualCount: 512 })
  })

  it('rejects Data-Out for a tag nobody issued', async () => {
    const h = await loggedIn()
    h.feed(dataOut(77, 12345, 0, Buffer.alloc(512), true))
    const [rej] = h.take(Opcode.Reject)
    expect(rej!.reason).toBe(RejectReason.InvalidPduField)
  })

  it('rejects data past the end of the buffer and answers the task', async () => {
    const h = await loggedIn()
    h.feed(write10(1, 1, 2, Buffer.alloc(0)))
    h.feed(dataOut(1, UNSOLICITED, 1024, Buffer.alloc(512), true))
    expect(h.take(Opcode.Reject)).toHaveLength(1)
    expect(h.take(Opcode.ScsiResponse)[0]).toMatchObject({ itt: 1, status: 2 })
    expect(h.unit.executed).toHaveLength(0)
  })
})

describe('reads', () => {
  it('splits Data-In by the initiator MaxRecvDataSegmentLength with status in the last PDU', async () => {
    const h = await loggedIn()
    h.feed(read10(1, 1, 20))
    await flushMicrotasks()
    const pdus = h.take(Opcode.DataIn)
    expect(pdus.map((p) => [p.dataSN, p.bufferOffset, p.data.length, p.hasStatus, p.final])).toEqual([
      [0, 0, 4096, false, false], [1, 4096, 4096, false, false], [2, 8192, 2048, true, true],
    ])
    const whole = Buffer.concat(pdus.map((p) => p.data))
    expect(whole[300]).toBe(300 & 0xff)
    expect(h.take(Opcode.ScsiResponse)).toHaveLength(0)
  })

  it('truncates to EDTL with an overflow residual, and pads nothing with an underflow one', async () => {
    const h = await loggedIn()
    h.feed(read10(1, 1, 4, { expectedDataTransferLength: 1000 }))
    h.feed(read10(2, 2, 1, { expectedDataTransferLength: 4096 }))
    await flushMicrotasks()
    const [a, b] = h.take(Opcode.DataIn)
    expect(a).toMatchObject({ itt: 1, overflow: true, residualCount: 1048 })
    expect(a!.data.length).toBe(1000)
    expect(b).toMatchObject({ itt: 2, underflow: true, residualCount: 3584 })
  })

  it('advances StatSN once per command, not per Data-In', async () => {
    const h = await loggedIn()
    h.feed(read10(1, 1, 20))
    h.feed(read10(2, 2, 1))
    await flushMicrotasks()
    const withStatus = h.take(Opcode.DataIn).filter((p) => p.hasStatus)
    expect(withStatus[1]!.statSN - withStatus[0]!.statSN).toBe(1)
  })
})

describe('command window', () => {
  it('executes in CmdSN order whatever the arrival order', async () => {
    const h = await loggedIn()
    h.feed(read10(3, 3, 1))
    h.feed(read10(2, 2, 1))
    expect(h.unit.executed).toHaveLength(0)
    h.feed(read10(1, 1, 1))
    await flushMicrotasks()
    expect(h.take(Opcode.DataIn).map((p) => p.itt)).toEqual([1, 2, 3])
  })

  it('answers REPORT LUNS on an absent LUN through a unit the target has, and nothing else there', async () => {
    const h = await loggedIn()
    const reportLuns = { ...read10(1, 1, 1, { lun: encodeLun(9), expectedDataTransferLength: 64 }), cdb: Buffer.from([0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0]) }
    h.feed(reportLuns)
    h.feed(read10(2, 2, 1, { lun: encodeLun(9) }))
    await flushMicrotasks()
    expect(h.unit.executed.map((e) => e.opcode)).toEqual([0xa0])
    const [resp] = h.take(Opcode.ScsiResponse).filter((r) => r.itt === 2)
    expect(resp).toMatchObject({ status: 2 })
    expect([resp!.sense![12], resp!.sense![13]]).toEqual([0x25, 0x00])
  })

  it('ignores a command outside the window', async () => {
    const h = await loggedIn()
    h.feed(read10(1, 500, 1))
    await flushMicrotasks()
    expect(h.unit.executed).toHaveLength(0)
    expect(h.sent).toHaveLength(0)
  })

  it('narrows MaxCmdSN while commands are outstanding', async () => {
    const h = await loggedIn()
    h.unit.hold = true
    h.feed(read10(1, 1, 1))
    h.feed(read10(2, 2, 1))
    h.feed(read10(3, 3, 1))
    h.feed({ opcode: Opcode.NopOut, immediate: true, ahs: [], data: Buffer.from('ping'), lun: 0n, itt: 50, ttt: RESERVED_TAG, cmdSN: 4, expStatSN: 0 })
    const [nop] = h.take(Opcode.NopIn)
    expect(nop!.expCmdSN).toBe(4)
    expect(nop!.maxCmdSN).toBe(4 + 16 - 3 - 1)
    expect(nop!.data.toString()).toBe('ping')
    h.unit.release()
  })

  it('holds later writes behind an earlier one still waiting for data', async () => {
    const h = await loggedIn({ ...FAST_KEYS, InitialR2T: 'Yes', ImmediateData: 'No' })
    h.feed(write10(1, 1, 1, Buffer.alloc(0)))
    h.feed(read10(2, 2, 1))
    await flushMicrotasks()
    expect(h.unit.executed).toHaveLength(0)
    const [r2t] = h.take(Opcode.R2T)
    h.feed(dataOut(1, r2t!.ttt, 0, Buffer.alloc(512, 1), true))
    await flushMicrotasks()
    expect(h.unit.executed.map((e) => e.opcode)).toEqual([0x2a, 0x28])
  })
})

describe('task management', () => {
  it('answers ABORT TASK only after the task left storage, and never answers the task', async () => {
    const h = await loggedIn()
    h.unit.hold = true
    h.feed(read10(5, 1, 1))
    h.feed(tmf(TmfFunction.AbortTask, 6, 2, 5, 1))
    await flushMicrotasks()
    expect(h.take(Opcode.TaskMgmtResponse)).toHaveLength(0)
    h.unit.release()
    await flushMicrotasks()
    expect(h.take(Opcode.TaskMgmtResponse)[0]).toMatchObject({ itt: 6, response: TmfResponse.Complete })
    expect(h.take(Opcode.DataIn)).toHaveLength(0)
    expect(h.take(Opcode.ScsiResponse)).toHaveLength(0)
  })

  it('says TASK DOES NOT EXIST for an unknown tag not in the window', async () => {
    const h = await loggedIn()
    h.feed(tmf(TmfFunction.AbortTask, 6, 1, 99, 40))
    await flushMicrotasks()
    expect(h.take(Opcode.TaskMgmtResponse)[0]!.response).toBe(TmfResponse.TaskDoesNotExist)
  })

  it('says TASK DOES NOT EXIST for a task that was received and is over (RefCmdSN below ExpCmdSN)', async () => {
    const h = await loggedIn()
    h.feed(read10(5, 1, 1))
    await flushMicrotasks()
    expect(h.take(Opcode.DataIn)).toHaveLength(1)
    h.feed(tmf(TmfFunction.AbortTask, 6, 2, 5, 1))
    await flushMicrotasks()
    expect(h.take(Opcode.TaskMgmtResponse)[0]).toMatchObject({ itt: 6, response: TmfResponse.TaskDoesNotExist })
  })

  it('takes a command not yet received but inside the window as received and aborted: it never runs, the window moves on', async () => {
    const h = await loggedIn()
    h.feed(tmf(TmfFunction.AbortTask, 6, 2, 5, 1)) // immediate, for CmdSN 1, which has not come yet
    await flushMicrotasks()
    expect(h.take(Opcode.TaskMgmtResponse)[0]).toMatchObject({ itt: 6, response: TmfResponse.Complete })
    h.feed(read10(5, 1, 1)) // arrives after its abort
    h.feed(read10(7, 2, 1))
    await flushMicrotasks()
    expect(h.unit.executed).toHaveLength(1)
    expect(h.take(Opcode.DataIn).map((d) => d.itt)).toEqual([7])
  })

  it('drops a command held out of order when it is aborted, and delivers the rest once the gap fills', async () => {
    const h = await loggedIn()
    h.feed(read10(8, 2, 1)) // ahead of ExpCmdSN 1: held
    h.feed(tmf(TmfFunction.AbortTask, 6, 3, 8, 2))
    await flushMicrotasks()
    expect(h.take(Opcode.TaskMgmtResponse)[0]).toMatchObject({ itt: 6, response: TmfResponse.Complete })
    h.feed(read10(7, 1, 1))
    h.feed(read10(9, 3, 1))
    await flushMicrotasks()
    expect(h.take(Opcode.DataIn).map((d) => d.itt)).toEqual([7, 9])
  })

  it('resets the logical unit on LUN RESET and refuses a LUN that does not exist', async () => {
    const h = await loggedIn()
    h.feed(tmf(TmfFunction.LogicalUnitReset, 6, 1))
    h.feed({ ...tmf(TmfFunction.LogicalUnitReset, 7, 1), lun: encodeLun(9) })
    await flushMicrotasks()
    expect(h.unit.resets).toEqual(['lun'])
    const byItt = new Map(h.take(Opcode.TaskMgmtResponse).map((r) => [r.itt, r.response]))
    expect([byItt.get(6), byItt.get(7)]).toEqual([TmfResponse.Complete, TmfResponse.LunDoesNotExist])
  })
})

describe('nop, text and logout', () => {
  it('pings an idle initiator and drops it when it does not answer', async () => {
    const h = await loggedIn()
    h.clock.now = 6000
    h.conn.onTick()
    const [ping] = h.take(Opcode.NopIn)
    expect(ping).toMatchObject({ itt: RESERVED_TAG })
    h.clock.now = 12000
    h.conn.onTick()
    expect(h.closed()).toBe(false)
    h.clock.now = 22000
    h.conn.onTick()
    expect(h.closed()).toBe(true)
  })

  it('keeps a connection that answers the ping', async () => {
    const h = await loggedIn()
    h.clock.now = 6000
    h.conn.onTick()
    const [ping] = h.take(Opcode.NopIn)
    h.feed({ opcode: Opcode.NopOut, immediate: true, ahs: [], data: Buffer.alloc(0), lun: 0n, itt: RESERVED_TAG, ttt: ping!.ttt, cmdSN: 1, expStatSN: 0 })
    h.clock.now = 30000
    h.conn.onTick()
    expect(h.closed()).toBe(false)
  })

  it('answers SendTargets in a normal session with its own target', async () => {
    const h = await loggedIn()
    h.feed({ opcode: Opcode.TextRequest, immediate: false, ahs: [], data: encodeTextKeys([['SendTargets', '']]), final: true, continue: false, lun: 0n, itt: 3, ttt: RESERVED_TAG, cmdSN: 1, expStatSN: 0 })
    const [resp] = h.take(Opcode.TextResponse)
    expect(keysOf(resp!).get('TargetName')).toBe(TARGET_IQN)
    expect(resp!.final).toBe(true)
  })

  it('logs out after outstanding commands finish, then closes', async () => {
    const h = await loggedIn()
    h.unit.hold = true
    h.feed(read10(1, 1, 1))
    h.feed({ opcode: Opcode.LogoutRequest, immediate: false, ahs: [], data: Buffer.alloc(0), reason: 0, itt: 2, cid: 0, cmdSN: 2, expStatSN: 0 })
    await flushMicrotasks()
    expect(h.take(Opcode.LogoutResponse)).toHaveLength(0)
    h.unit.release()
    await flushMicrotasks()
    const order = h.sent.map((p) => p.opcode)
    expect(order.indexOf(Opcode.DataIn)).toBeLessThan(order.indexOf(Opcode.LogoutResponse))
    expect(h.closed()).toBe(true)
  })

  it('rejects a SCSI command in a discovery session', async () => {
    const h = makeHarness()
    await h.login({ SessionType: 'Discovery', TargetName: '' })
    h.sent.length = 0
    h.feed(read10(1, 1, 1))
    expect(h.take(Opcode.Reject)[0]!.reason).toBe(RejectReason.ProtocolError)
  })
})
