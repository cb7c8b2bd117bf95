// Drive an IscsiConnection with PDU objects and a fake clock: no sockets, no codec.
import { IscsiConnection, type ConnectionSettings } from '../../src/iscsi/connection.js'
import { SessionRegistry } from '../../src/iscsi/session.js'
import { Target } from '../../src/iscsi/target.js'
import type { LoginEnvironment, TargetAccess } from '../../src/iscsi/login.js'
import { encodeTextKeys, parseTextKeys } from '../../src/iscsi/text-keys.js'
import {
  Opcode,
  RESERVED_TAG,
  TaskAttribute,
  type InitiatorPdu,
  type LoginRequest,
  type ScsiCommand,
  type TargetPdu,
} from '../../src/wire/pdu.js'
import { encodeLun } from '../../src/wire/lun.js'
import type { DataOutPlan, LogicalUnit, Nexus, ScsiRequest, ScsiResult } from '../../src/scsi/types.js'

export const TARGET_IQN = 'iqn.2026-11.io.iscsi-ha:unit'
export const INITIATOR = 'iqn.2026-11.io.iscsi-ha:host1'

/**
 * A logical unit that records what it was asked to do. WRITE(10) consumes blocks×512 bytes;
 * READ(10) returns blocks×512 bytes of a counting pattern; execution can be held open.
 */
export class RecordingUnit implements LogicalUnit {
  readonly executed: Array<{ opcode: number; data: Buffer; nexus: string }> = []
  readonly resets: string[] = []
  hold = false
  private held: Array<() => void> = []

  constructor(readonly lun: number) {}

  planDataOut(cdb: Buffer): DataOutPlan {
    if (cdb[0] === 0x2a) return { kind: 'out', bytes: cdb.readUInt16BE(7) * 512 }
    return { kind: 'none' }
  }

  async execute(req: ScsiRequest): Promise<ScsiResult> {
    this.executed.push({ opcode: req.cdb[0]!, data: Buffer.from(req.dataOut), nexus: req.nexus.key })
    if (this.hold) await new Promise<void>((res) => this.held.push(res))
    if (req.cdb[0] === 0x28) {
      const bytes = req.cdb.readUInt16BE(7) * 512
      const data = Buffer.alloc(bytes)
      for (let i = 0; i < bytes; i++) data[i] = i & 0xff
      return { status: 0, dataIn: data }
    }
    return { status: 0 }
  }

  release(): void {
    const h = this.held
    this.held = []
    h.forEach((r) => r())
  }

  reset(kind: 'lun' | 'warm' | 'cold'): void {
    this.resets.push(kind)
  }

  nexusLost(_nexus: Nexus): void {}
}

export interface Harness {
  conn: IscsiConnection
  sent: TargetPdu[]
  closed: () => boolean
  unit: RecordingUnit
  sessions: SessionRegistry
  clock: { now: number }
  digests: { header: boolean; data: boolean }
  feed(pdu: InitiatorPdu): void
  login(keys?: Record<string, string>, isid?: string): Promise<TargetPdu>
  take<T extends TargetPdu['opcode']>(opcode: T): Extract<TargetPdu, { opcode: T }>[]
}

export const settings: ConnectionSettings = {
  queueDepth: 16, nopIntervalMs: 5000, nopTimeoutMs: 15000, loginTimeoutMs: 15000,
  maxTransferBytes: 16 << 20, maxSessions: 8,
}

export function makeHarness(shared?: { sessions: SessionRegistry; target: Target; unit: RecordingUnit }): Harness {
  const sent: TargetPdu[] = []
  let closed = false
  const clock = { now: 0 }
  const digests = { header: false, data: false }
  const unit = shared?.unit ?? new RecordingUnit(0)
  const access: TargetAccess = { iqn: TARGET_IQN, tpgt: 1, portals: ['127.0.0.1:3260,1'] }
  const target = shared?.target ?? new Target(access)
  if (!shared) target.luns.set(0, unit)
  const sessions = shared?.sessions ?? new SessionRegistry(8)
  const env: LoginEnvironment = {
    findTarget: (iqn) => (iqn === TARGET_IQN ? access : undefined),
    listTargets: () => [access],
    targetLimits: {
      maxRecvDataSegmentLength: 8192, maxBurstLength: 16384, firstBurstLength: 8192, maxOutstandingR2T: 2,
      immediateData: true, initialR2T: false, defaultTime2Wait: 2, defaultTime2Retain: 0,
    },
    randomBytes: (n) => Buffer.alloc(n, 7),
  }
  const conn = new IscsiConnection({
    login: env,
    findTarget: (iqn) => (iqn === TARGET_IQN ? target : undefined),
    sessions,
    io: {
      send: (p) => sent.push(p.data.length ? { ...p, data: Buffer.from(p.data) } : p),
      setDigests: (h, d) => {
        digests.header = h
        digests.data = d
      },
      setMaxRecvDataSegmentLength: () => undefined,
      close: () => {
        closed = true
      },
    },
    now: () => clock.now,
    log: { info: () => undefined, warn: () => undefined },
    settings,
    remote: '127.0.0.1:50000',
    local: '127.0.0.1:3260',
  })
  const h: Harness = {
    conn, sent, closed: () => closed, unit, sessions, clock, digests,
    feed: (pdu) => conn.onPdu(pdu),
    async login(keys = {}, isid = '400001370000') {
      const all: Record<string, string> = {
        InitiatorName: INITIATOR, TargetName: TARGET_IQN, SessionType: 'Normal', HeaderDigest: 'None',
        DataDigest: 'None', MaxRecvDataSegmentLength: '4096', ...keys,
      }
      conn.onPdu(loginRequest(Object.entries(all), isid))
      await flushMicrotasks()
      // Like a real initiator: answer keys the target offered until it lets us transit.
      let seen = 0
      for (let round = 0; round < 4; round++) {
        const resp = sent.at(-1)
        if (sent.length === seen) break // no new answer yet (e.g. waiting on a reinstatement)
        seen = sent.length
        if (!resp || resp.opcode !== Opcode.LoginResponse || resp.transit || resp.statusClass !== 0) break
        const offered = [...keysOf(resp)].filter(([k]) => !(k in all) && k !== 'TargetPortalGroupTag' && k !== 'TargetAlias')
        conn.onPdu({ ...loginRequest(offered, isid), itt: 0x1000 + round + 1 })
        await flushMicrotasks()
      }
      const done = async (): Promise<TargetPdu> => {
        while (!closed && !sent.some((p) => p.opcode === Opcode.LoginResponse && (p.nsg === 3 || p.statusClass !== 0))) {
          await new Promise((r) => setImmediate(r))
        }
        return sent.at(-1)!
      }
      return done()
    },
    take(opcode) {
      const out = sent.filter((p) => p.opcode === opcode)
      return out as never
    },
  }
  return h
}

export function loginRequest(pairs: Array<[string, string]>, isid = '400001370000', tsih = 0): LoginRequest {
  return {
    opcode: Opcode.LoginRequest, immediate: true, ahs: [], transit: true, continue: false, csg: 1, nsg: 3,
    versionMax: 0, versionMin: 0, isid, tsih, itt: 0x1000, cid: 0, cmdSN: 1, expStatSN: 0,
    data: encodeTextKeys(pairs),
  }
}

export function keysOf(pdu: TargetPdu): Map<string, string> {
  return new Map(parseTextKeys(pdu.data))
}

export function write10(itt: number, cmdSN: number, blocks: number, immediate: Buffer, opts: Partial<ScsiCommand> = {}): ScsiCommand {
  const cdb = Buffer.alloc(16)
  cdb[0] = 0x2a
  cdb.writeUInt16BE(blocks, 7)
  return {
    opcode: Opcode.ScsiCommand, immediate: false, ahs: [], data: immediate, final: false, read: false, write: true,
    attribute: TaskAttribute.Simple, lun: encodeLun(0), itt, expectedDataTransferLength: blocks * 512, cmdSN,
    expStatSN: 0, cdb, ...opts,
  }
}

export function read10(itt: number, cmdSN: number, blocks: number, opts: Partial<ScsiCommand> = {}): ScsiCommand {
  const cdb = Buffer.alloc(16)
  cdb[0] = 0x28
  cdb.writeUInt16BE(blocks, 7)
  return {
    opcode: Opcode.ScsiCommand, immediate: false, ahs: [], data: Buffer.alloc(0), final: true, read: true,
    write: false, attribute: TaskAttribute.Simple, lun: encodeLun(0), itt, expectedDataTransferLength: blocks * 512,
    cmdSN, expStatSN: 0, cdb, ...opts,
  }
}

export function dataOut(itt: number, ttt: number, offset: number, data: Buffer, final: boolean, dataSN = 0): InitiatorPdu {
  return {
    opcode: Opcode.DataOut, immediate: false, ahs: [], data, final, lun: encodeLun(0), itt, ttt, expStatSN: 0,
    dataSN, bufferOffset: offset,
  }
}

export const UNSOLICITED = RESERVED_TAG

export async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve()
  await new Promise((r) => setImmediate(r))
}
