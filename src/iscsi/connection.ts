// One iSCSI connection's protocol logic (RFC 7143): login phase, then full feature phase.
// Pure of sockets: decoded PDUs and clock ticks come in; PDUs to send, digest changes and a
// close request go out through ConnectionIo. The socket glue lives in src/node/.

import {
  Opcode,
  RESERVED_TAG,
  RejectReason,
  TmfFunction,
  TmfResponse,
  type DataOut,
  type InitiatorPdu,
  type LoginRequest,
  type LoginResponse,
  type LogoutRequest,
  type NopOut,
  type ScsiCommand,
  type TargetPdu,
  type TaskMgmtRequest,
  type TextRequest,
} from '../wire/pdu.js'
import { decodeLun } from '../wire/lun.js'
import { ScsiStatus, type ScsiResult } from '../scsi/types.js'
import { senseFor, type TransportSense } from './transport-sense.js'
import { LoginNegotiator, type LoginEnvironment, type SessionParams } from './login.js'
import { answerSendTargets } from './discovery.js'
import { encodeTextKeys, parseTextKeys } from './text-keys.js'
import { Session, SessionRegistry, nexusOf } from './session.js'
import type { Target } from './target.js'
import { ScsiTask, residualOf, type Residual } from './task.js'
import { snAdd, snLe, snLt } from './serial.js'
import { encodePdu } from '../wire/serializer.js'
import { runWithCommand } from './command-context.js'

export interface ConnectionIo {
  /** Queue a PDU; the glue serializes it at once with the digests in force and gathers writes. */
  send(pdu: TargetPdu): void
  /** Digests and receive limit apply from the next PDU in each direction. */
  setDigests(header: boolean, data: boolean): void
  setMaxRecvDataSegmentLength(bytes: number): void
  /** Flush what was queued, then close. */
  close(): void
}

export interface ConnectionObserver {
  command(kind: 'read' | 'write' | 'other', bytes: number, seconds: number, failed: boolean): void
  login(accepted: boolean, detail: string): void
  rejected(reason: RejectReason): void
  sessionsChanged(): void
}

export interface ConnectionSettings {
  /** CmdSN window per session. */
  queueDepth: number
  nopIntervalMs: number
  nopTimeoutMs: number
  loginTimeoutMs: number
  /** Largest ExpectedDataTransferLength accepted for one command. */
  maxTransferBytes: number
  maxSessions: number
}

export interface ConnectionLog {
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
}

export interface ConnectionDeps {
  login: LoginEnvironment
  findTarget(iqn: string): Target | undefined
  sessions: SessionRegistry
  io: ConnectionIo
  now(): number
  log: ConnectionLog
  observer?: ConnectionObserver
  settings: ConnectionSettings
  remote: string
  local: string
}

type Phase = 'login' | 'full' | 'closed'

/** PDUs that carry a CmdSN and are delivered in its order. */
type OrderedPdu = ScsiCommand | NopOut | TaskMgmtRequest | TextRequest | LogoutRequest
/** Stands in the CmdSN order for a command ABORT TASK took as received before it came. */
const ABORTED_BEFORE_ARRIVAL = Symbol('aborted before arrival')

/** A text response longer than one PDU waits here for the initiator's continue requests. */
interface PendingText {
  ttt: number
  rest: Buffer
}

export class IscsiConnection {
  private phase: Phase = 'login'
  private readonly negotiator: LoginNegotiator
  private statSN = 0
  private session: Session | undefined
  private params: SessionParams | undefined
  /** Out-of-order non-immediate commands, keyed by CmdSN, waiting for the gap to fill. */
  /** Commands that came ahead of ExpCmdSN, and CmdSNs aborted before their command came. */
  private readonly heldByCmdSN = new Map<number, OrderedPdu | typeof ABORTED_BEFORE_ARRIVAL>()
  /** Every live SCSI task by ITT. */
  private readonly tasks = new Map<number, ScsiTask>()
  /** Tasks accepted in CmdSN order that have not started: storage sees them in this order. */
  private readonly startQueue: ScsiTask[] = []
  private readonly tasksByTtt = new Map<number, ScsiTask>()
  private nextTtt = 1
  private lastHeardAt: number
  private readonly openedAt: number
  private pingOutstanding: { ttt: number; sentAt: number } | undefined
  private pendingText: PendingText | undefined
  private logoutPending = false

  constructor(private readonly deps: ConnectionDeps) {
    this.negotiator = new LoginNegotiator(deps.login)
    this.openedAt = deps.now()
    this.lastHeardAt = this.openedAt
  }

  get sessionInfo(): Session | undefined {
    return this.session
  }

  get negotiated(): SessionParams | undefined {
    return this.params
  }

  get isClosed(): boolean {
    return this.phase === 'closed'
  }

  // ---------------------------------------------------------------- input

  onPdu(pdu: InitiatorPdu): void {
    if (this.phase === 'closed') return
    this.lastHeardAt = this.deps.now()
    if (this.phase === 'login') {
      if (pdu.opcode !== Opcode.LoginRequest) {
        // RFC 7143 §6.3: only Login Requests before the login completes.
        this.deps.log.warn('non-login PDU during login; closing', { opcode: pdu.opcode, remote: this.deps.remote })
        this.close('protocol error during login')
        return
      }
      this.handleLogin(pdu)
      return
    }
    switch (pdu.opcode) {
      case Opcode.DataOut:
        this.handleDataOut(pdu)
        return
      case Opcode.Snack:
        // ErrorRecoveryLevel is 0: SNACK is not supported (RFC 7143 §11.16).
        this.reject(RejectReason.ProtocolError, pdu)
        return
      case Opcode.LoginRequest:
        this.reject(RejectReason.ProtocolError, pdu)
        return
      case Opcode.NopOut:
        if (pdu.itt === RESERVED_TAG) {
          // An answer to our ping (RFC 7143 §11.18): carries no CmdSN to order.
          if (this.pingOutstanding && pdu.ttt === this.pingOutstanding.ttt) this.pingOutstanding = undefined
          return
        }
        this.order(pdu)
        return
      case Opcode.ScsiCommand:
      case Opcode.TaskMgmtRequest:
      case Opcode.TextRequest:
      case Opcode.LogoutRequest:
        this.order(pdu)
        return
    }
  }

  /** A PDU the codec could frame but not accept (bad data digest, unknown opcode). */
  onRecoverableError(reason: RejectReason, header: Buffer): void {
    if (this.phase !== 'full') {
      this.close('bad PDU during login')
      return
    }
    this.sendReject(reason, header)
    // A Data-Out lost to a digest error leaves a hole in its task's data; ErrorRecoveryLevel 0
    // has no recovery R2T, so the task ends with CHECK CONDITION (RFC 7143 §7.8, §11.4.7.2).
    if ((header[0]! & 0x3f) === Opcode.DataOut && header.length >= 20) {
      const task = this.tasks.get(header.readUInt32BE(16))
      if (task && task.state === 'collecting') this.endWithSense(task, 'protocolServiceCrcError')
    }
  }

  /** The stream can no longer be framed: answer with a Reject if we can, then close. */
  onFatalFraming(reason: RejectReason, header: Buffer): void {
    if (this.phase === 'full') this.sendReject(reason, header)
    this.close('unframeable input')
  }

  /** Periodic clock: pings idle initiators, drops silent ones and stalled logins. */
  onTick(): void {
    if (this.phase === 'closed') return
    const now = this.deps.now()
    const s = this.deps.settings
    if (this.phase === 'login') {
      if (now - this.openedAt > s.loginTimeoutMs) this.close('login timed out')
      return
    }
    if (this.pingOutstanding) {
      if (now - this.pingOutstanding.sentAt > s.nopTimeoutMs) this.close('initiator did not answer NOP-In')
      return
    }
    if (s.nopIntervalMs > 0 && now - this.lastHeardAt >= s.nopIntervalMs) {
      const ttt = this.allocTtt()
      this.pingOutstanding = { ttt, sentAt: now }
      // RFC 7143 §11.19: a ping carries ITT 0xffffffff and does not advance StatSN.
      this.send({
        opcode: Opcode.NopIn, immediate: false, ahs: [], data: EMPTY, lun: 0n, itt: RESERVED_TAG, ttt,
        statSN: this.statSN, expCmdSN: this.expCmdSN(), maxCmdSN: this.maxCmdSN(),
      })
    }
  }

  private closedDone: Promise<void> | undefined

  /** The socket closed (or we closed it): abort everything and release the session. */
  onClosed(): Promise<void> {
    this.closedDone ??= this.release()
    return this.closedDone
  }

  private async release(): Promise<void> {
    const wasFull = this.phase === 'full'
    this.phase = 'closed'
    await this.abortAll()
    const session = this.session
    if (session && wasFull) {
      session.owner = undefined
      // ErrorRecoveryLevel 0 and DefaultTime2Retain is not kept: the session ends with its
      // only connection; the initiator logs in anew (and is reinstated by ISID if it races).
      this.deps.sessions.remove(session)
      session.target?.luns.forEach((lu) => session.nexus && lu.nexusLost(session.nexus))
      this.deps.observer?.sessionsChanged()
    }
  }

  // ---------------------------------------------------------------- login

  private handleLogin(req: LoginRequest): void {
    const outcome = this.negotiator.handle(req)
    // §11.13.4: the first login response starts StatSN; each response takes the next one.
    if (this.statSN === 0 && req.expStatSN !== 0) this.statSN = req.expStatSN
    const window = { expCmdSN: req.cmdSN, maxCmdSN: snAdd(req.cmdSN, this.deps.settings.queueDepth - 1) }
    const { kind: _kind, ...fields } = outcome
    const response = (over: Partial<LoginResponse> = {}): LoginResponse => ({
      opcode: Opcode.LoginResponse, immediate: false, ahs: [], transit: fields.transit, continue: fields.continue,
      csg: fields.csg, nsg: fields.nsg, versionMax: fields.versionMax, versionActive: fields.versionActive,
      isid: fields.isid, tsih: fields.tsih, itt: fields.itt, statusClass: fields.statusClass,
      statusDetail: fields.statusDetail, data: fields.data, statSN: 0, ...window, ...over,
    })
    if (outcome.kind === 'fail') {
      this.deps.observer?.login(false, outcome.reason)
      this.deps.log.warn('login refused', {
        remote: this.deps.remote, status: hex4(outcome.statusClass, outcome.statusDetail), reason: outcome.reason,
      })
      this.send(response({ statSN: this.nextStatSN() }))
      this.close('login refused')
      return
    }
    if (outcome.kind === 'continue') {
      this.send(response({ statSN: this.nextStatSN() }))
      return
    }
    // Final response: the session comes to life. Reinstatement must finish first so that no
    // command of the old session can touch storage after the new one starts (§6.3.5).
    void this.completeLogin(req, outcome.params, response)
  }

  private async completeLogin(
    req: LoginRequest,
    params: SessionParams,
    response: (over?: Partial<LoginResponse>) => LoginResponse,
  ): Promise<void> {
    const { sessions } = this.deps
    const targetName = params.targetName ?? ''
    const refuse = (statusClass: number, statusDetail: number, reason: string): void => {
      this.deps.observer?.login(false, reason)
      this.deps.log.warn('login refused', { remote: this.deps.remote, status: hex4(statusClass, statusDetail), reason })
      this.send(response({
        transit: false, nsg: 0, tsih: 0, statSN: this.nextStatSN(), statusClass, statusDetail, data: EMPTY,
      }))
      this.close(reason)
    }
    if (req.tsih !== 0) {
      // Adding a connection to a session: MaxConnections is 1 (§11.13.5 0x0206 / 0x020a).
      if (sessions.findByTsih(req.tsih)) refuse(0x02, 0x06, 'too many connections')
      else refuse(0x02, 0x0a, 'session does not exist')
      return
    }
    if (!sessions.hasRoomFor(params.initiatorName, req.isid, targetName)) {
      refuse(0x03, 0x02, 'out of resources: session limit reached')
      return
    }
    const old = sessions.find(params.initiatorName, req.isid, targetName)
    if (old) {
      this.deps.log.info('reinstating session', { initiator: params.initiatorName, isid: req.isid, tsih: old.tsih })
      sessions.remove(old)
      await old.owner?.shutdown('session reinstated')
      if (this.phase === 'closed') return
    }
    const target = params.targetName ? this.deps.findTarget(params.targetName) : undefined
    const nexus = target ? nexusOf(params.initiatorName, req.isid, target.iqn, target.tpgt) : undefined
    const session = new Session(
      sessions.allocateTsih(), params, req.isid, target, nexus, req.cmdSN, this.deps.settings.queueDepth,
    )
    session.owner = {
      shutdown: (reason) => this.shutdown(reason),
      abortLun: (lun) => this.abortTasks([...this.tasks.values()].filter((t) => t.lunId === lun)),
    }
    session.remote = this.deps.remote
    session.local = this.deps.local
    sessions.add(session)
    this.session = session
    this.params = params
    this.send(response({
      tsih: session.tsih, statSN: this.nextStatSN(), expCmdSN: session.expCmdSN, maxCmdSN: session.maxCmdSN,
    }))
    // Digests and the receive limit start with the first PDU after the final login response.
    this.deps.io.setDigests(params.headerDigest, params.dataDigest)
    this.deps.io.setMaxRecvDataSegmentLength(params.maxRecvDataSegmentLength)
    this.phase = 'full'
    this.deps.observer?.login(true, params.sessionType)
    this.deps.observer?.sessionsChanged()
    this.deps.log.info('session up', {
      tsih: session.tsih, type: params.sessionType, initiator: params.initiatorName, target: params.targetName,
      remote: this.deps.remote, headerDigest: params.headerDigest, dataDigest: params.dataDigest,
    })
  }

  // ---------------------------------------------------------------- command ordering

  /** RFC 7143 §4.2.2.1: deliver non-immediate commands in CmdSN order within the window. */
  private order(pdu: OrderedPdu): void {
    const session = this.session
    if (!session) return
    if (pdu.immediate) {
      this.deliver(pdu)
      return
    }
    const cmdSN = pdu.cmdSN
    if (cmdSN === session.expCmdSN) {
      session.expCmdSN = snAdd(session.expCmdSN, 1)
      this.deliver(pdu)
      this.deliverHeld()
      return
    }
    if (snLt(session.expCmdSN, cmdSN) && snLe(cmdSN, session.maxCmdSN) && !this.heldByCmdSN.has(cmdSN)) {
      // Held past this callback: detach from the receive buffer.
      this.heldByCmdSN.set(cmdSN, detach(pdu))
      return
    }
    if (this.heldByCmdSN.get(cmdSN) === ABORTED_BEFORE_ARRIVAL) return // aborted already (§11.5.1)
    // Outside the window or a duplicate: silently ignored (§4.2.2.1).
    this.deps.log.warn('command outside CmdSN window ignored', { cmdSN, expCmdSN: session.expCmdSN, itt: pdu.itt })
  }

  /** Deliver the held commands that are next in CmdSN order; skip those aborted before they came. */
  private deliverHeld(): void {
    const session = this.session!
    for (let next = this.heldByCmdSN.get(session.expCmdSN); next; next = this.heldByCmdSN.get(session.expCmdSN)) {
      this.heldByCmdSN.delete(session.expCmdSN)
      session.expCmdSN = snAdd(session.expCmdSN, 1)
      if (next !== ABORTED_BEFORE_ARRIVAL) this.deliver(next)
    }
  }

  private deliver(pdu: OrderedPdu): void {
    switch (pdu.opcode) {
      case Opcode.ScsiCommand:
        this.handleScsiCommand(pdu)
        return
      case Opcode.NopOut:
        this.send({
          opcode: Opcode.NopIn, immediate: false, ahs: [], data: Buffer.from(pdu.data), lun: pdu.lun, itt: pdu.itt,
          ttt: RESERVED_TAG, statSN: this.nextStatSN(), expCmdSN: this.expCmdSN(), maxCmdSN: this.maxCmdSN(),
        })
        return
      case Opcode.TaskMgmtRequest:
        void this.handleTmf(pdu)
        return
      case Opcode.TextRequest:
        this.handleText(pdu)
        return
      case Opcode.LogoutRequest:
        void this.handleLogout(pdu)
        return
    }
  }

  // ---------------------------------------------------------------- SCSI commands

  private handleScsiCommand(cmd: ScsiCommand): void {
    const session = this.session!
    if (session.params.sessionType === 'Discovery' || !session.target || !session.nexus) {
      // RFC 7143 §11.17.1: a discovery session carries no SCSI commands.
      this.reject(RejectReason.ProtocolError, cmd)
      return
    }
    if (this.tasks.has(cmd.itt)) {
      this.reject(RejectReason.TaskInProgress, cmd)
      return
    }
    const now = this.deps.now()
    const lunId = decodeLun(cmd.lun)
    const lu = lunId === undefined ? undefined : session.target.luns.get(lunId)
    // The codec hands over the CDB as an owned copy (it outlives the receive buffer).
    const cdb = cmd.cdb
    const edtl = cmd.expectedDataTransferLength
    const params = session.params
    let plan = lu ? lu.planDataOut(cdb, session.nexus) : ({ kind: 'none' } as const)
    let residualOverride: Residual | undefined
    if (cmd.write && edtl > this.deps.settings.maxTransferBytes) {
      plan = { kind: 'fail', result: senseFor('invalidFieldInCdb') }
    } else if (plan.kind === 'out' && plan.bytes > edtl) {
      // SPDTL > EDTL (RFC 7143 §11.4.5.2, FCP-4 option a): run the command on the EDTL bytes
      // the initiator sends; the engine writes only the whole blocks among them.
      residualOverride = residualOf(edtl, plan.bytes)
    }
    const unsolicited = cmd.write ? (params.initialR2T ? cmd.data.length : Math.max(params.firstBurstLength, cmd.data.length)) : 0
    const task = new ScsiTask(
      cmd.itt, cmd.cmdSN, cmd.immediate, lunId ?? -1, lu, cdb, edtl, cmd.read, cmd.write, plan,
      Math.min(unsolicited, cmd.write ? edtl : 0), now, cmd.dataRetainable ? cmd.data : undefined,
    )
    task.residualOverride = residualOverride
    this.tasks.set(task.itt, task)
    session.activeCommands++
    session.commands++
    if (cmd.data.length > 0) {
      if (!cmd.write || cmd.data.length > edtl) {
        this.failTask(task, 'tooMuchWriteData', RejectReason.ProtocolError, cmd)
        return
      }
      if (task.dataOut !== cmd.data) cmd.data.copy(task.dataOut, 0)
      task.received += cmd.data.length
      task.unsolicitedPending -= cmd.data.length
      task.unsolicitedOffset = cmd.data.length
    }
    if (cmd.final) {
      // F bit on the command: no unsolicited Data-Out follows (§11.3.1).
      task.nextSolicitOffset = task.received
      task.unsolicitedPending = 0
    }
    this.startQueue.push(task)
    this.solicit(task)
    this.pump()
  }

  /** Issue R2Ts up to MaxOutstandingR2T, each at most MaxBurstLength (§11.8). */
  private solicit(task: ScsiTask): void {
    const params = this.session!.params
    while (task.r2ts.size < params.maxOutstandingR2T && task.nextSolicitOffset < task.solicitLimit) {
      const length = Math.min(params.maxBurstLength, task.solicitLimit - task.nextSolicitOffset)
      const ttt = this.allocTtt()
      const r2t = { ttt, r2tSN: task.nextR2TSN++, offset: task.nextSolicitOffset, length, received: 0, nextDataSN: 0 }
      task.addR2T(r2t)
      this.tasksByTtt.set(ttt, task)
      task.nextSolicitOffset += length
      this.send({
        opcode: Opcode.R2T, immediate: false, ahs: [], data: EMPTY, lun: 0n, itt: task.itt, ttt,
        statSN: this.statSN, expCmdSN: this.expCmdSN(), maxCmdSN: this.maxCmdSN(), r2tSN: r2t.r2tSN,
        bufferOffset: r2t.offset, desiredDataTransferLength: r2t.length,
      })
    }
  }

  private handleDataOut(pdu: DataOut): void {
    const task = pdu.ttt === RESERVED_TAG ? this.tasks.get(pdu.itt) : this.tasksByTtt.get(pdu.ttt)
    if (!task || task.itt !== pdu.itt) {
      // Data for a task that was aborted or already answered: quietly dropped, as the
      // initiator may still be sending what it owed (§11.7.1); a stranger's tag is rejected.
      if (!task && this.recentlyEnded(pdu.itt)) return
      this.reject(RejectReason.InvalidPduField, pdu)
      return
    }
    if (task.state !== 'collecting') return
    const end = pdu.bufferOffset + pdu.data.length
    if (end > task.dataOut.length) {
      this.failTask(task, 'tooMuchWriteData', RejectReason.ProtocolError, pdu)
      return
    }
    // DataPDUInOrder and DataSequenceInOrder are Yes: each sequence runs at consecutive
    // offsets with DataSN 0, 1, 2 … (§11.7.5); ErrorRecoveryLevel 0 cannot mend a gap.
    if (pdu.ttt === RESERVED_TAG) {
      if (pdu.data.length > task.unsolicitedPending) {
        this.failTask(task, 'unexpectedUnsolicitedData', RejectReason.ProtocolError, pdu)
        return
      }
      if (pdu.dataSN !== task.unsolicitedDataSN) {
        this.failTask(task, 'dataPhaseError', RejectReason.ProtocolError, pdu)
        return
      }
      if (pdu.bufferOffset !== task.unsolicitedOffset) {
        this.failTask(task, 'dataOffsetError', RejectReason.ProtocolError, pdu)
        return
      }
      task.unsolicitedDataSN++
      task.unsolicitedOffset = end
      task.unsolicitedPending -= pdu.data.length
      if (pdu.final) task.unsolicitedPending = 0
    } else {
      const r2t = task.r2ts.get(pdu.ttt)!
      if (end > r2t.offset + r2t.length) {
        this.failTask(task, 'tooMuchWriteData', RejectReason.ProtocolError, pdu)
        return
      }
      if (pdu.dataSN !== r2t.nextDataSN) {
        this.failTask(task, 'dataPhaseError', RejectReason.ProtocolError, pdu)
        return
      }
      if (pdu.bufferOffset !== r2t.offset + r2t.received) {
        this.failTask(task, 'dataOffsetError', RejectReason.ProtocolError, pdu)
        return
      }
      r2t.nextDataSN++
      r2t.received += pdu.data.length
      if (pdu.final || r2t.received >= r2t.length) {
        task.deleteR2T(pdu.ttt)
        this.tasksByTtt.delete(pdu.ttt)
      }
    }
    pdu.data.copy(task.dataOut, pdu.bufferOffset)
    task.received += pdu.data.length
    this.solicit(task)
    if (task.dataComplete) this.pump()
  }

  /** Start every task whose data is in, in the order the window accepted them. */
  private pump(): void {
    while (this.startQueue.length > 0) {
      const head = this.startQueue[0]!
      if (head.state === 'aborted') {
        this.startQueue.shift()
        continue
      }
      if (!head.dataComplete) {
        // Only an ORDERED or HEAD OF QUEUE... keep strict order: a later task never passes an
        // earlier one, so overlapping writes reach storage in CmdSN order.
        return
      }
      this.startQueue.shift()
      this.start(head)
    }
  }

  private start(task: ScsiTask): void {
    task.state = 'running'
    const session = this.session!
    // REPORT LUNS answers on any LUN (SPC-4 §6.33): for an absent one, a unit the target has does.
    const lu = task.lu ?? (task.cdb[0] === 0xa0 ? session.target!.luns.values().next().value : undefined)
    if (task.earlyResult || !lu) {
      const result = task.earlyResult ?? this.noSuchLun(task)
      this.finish(task, result)
      return
    }
    const nexus = session.nexus!
    const run = runWithCommand({ initiator: nexus.initiatorName, isid: nexus.isid, itt: task.itt }, () =>
      lu.execute({
        cdb: task.cdb, nexus, expectedLength: task.expectedLength, dataOut: task.dataOut,
      }),
    )
    task.finished = run.then(
      (result) => this.finish(task, result),
      (err: unknown) => {
        this.deps.log.warn('SCSI engine failed', { itt: task.itt, error: String(err) })
        this.finish(task, senseFor('internalTargetFailure'))
      },
    )
  }

  /** Commands to a LUN the target does not have (SPC-4 §4.7.1, SAM-5 §5.8.3). */
  private noSuchLun(task: ScsiTask): ScsiResult {
    if (task.cdb[0] === 0x12) {
      // INQUIRY to an absent LUN: peripheral qualifier 011b, type 1Fh.
      const data = Buffer.alloc(36)
      data[0] = 0x7f
      data[2] = 0x06
      data[3] = 0x02
      data[4] = 31
      return { status: ScsiStatus.Good, dataIn: data }
    }
    return senseFor('logicalUnitNotSupported')
  }

  private finish(task: ScsiTask, result: ScsiResult): void {
    if (task.state === 'aborted' || this.phase === 'closed') return
    task.state = 'done'
    this.endTask(task)
    const session = this.session!
    const seconds = (this.deps.now() - task.startedAt) / 1000
    const failed = result.status !== ScsiStatus.Good
    if (task.isRead) {
      const produced = result.dataIn?.length ?? 0
      const sent = Math.min(produced, task.expectedLength)
      session.readBytes += sent
      this.deps.observer?.command('read', sent, seconds, failed)
      this.sendDataIn(task, result, residualOf(task.expectedLength, produced))
      return
    }
    let residual: Residual
    if (task.residualOverride) residual = task.residualOverride
    else if (task.plan.kind === 'out') residual = residualOf(task.expectedLength, task.plan.bytes)
    else residual = residualOf(task.expectedLength, 0)
    if (task.isWrite) {
      const written = failed ? 0 : task.plan.kind === 'out' ? task.plan.bytes : 0
      session.writeBytes += written
      this.deps.observer?.command('write', written, seconds, failed)
    } else {
      this.deps.observer?.command('other', 0, seconds, failed)
    }
    if (result.dataIn && result.dataIn.length > 0 && task.expectedLength > 0) {
      // A command with no R bit that still returned data: send what fits (e.g. bidi-less
      // commands mis-flagged by an initiator); residuals follow the data.
      this.sendDataIn(task, result, residualOf(task.expectedLength, result.dataIn.length))
      return
    }
    this.sendResponse(task, result, residual)
  }

  /** Data-In PDUs of at most MaxXmitDataSegmentLength; status in the last one when GOOD (§11.7). */
  private sendDataIn(task: ScsiTask, result: ScsiResult, residual: Residual): void {
    const data = result.dataIn
    const total = data ? Math.min(data.length, task.expectedLength) : 0
    const phaseCollapse = result.status === ScsiStatus.Good && !result.sense
    if (total === 0 || !data) {
      this.sendResponse(task, result, residual)
      return
    }
    const max = this.session!.params.maxXmitDataSegmentLength
    for (let offset = 0; offset < total; offset += max) {
      const length = Math.min(max, total - offset)
      const last = offset + length >= total
      const withStatus = last && phaseCollapse
      this.send({
        opcode: Opcode.DataIn, immediate: false, ahs: [], data: data.subarray(offset, offset + length),
        final: last, acknowledge: false, overflow: withStatus && residual.overflow,
        underflow: withStatus && residual.underflow, hasStatus: withStatus, status: withStatus ? result.status : 0,
        lun: 0n, itt: task.itt, ttt: RESERVED_TAG, statSN: withStatus ? this.nextStatSN() : 0,
        expCmdSN: this.expCmdSN(), maxCmdSN: this.maxCmdSN(), dataSN: task.dataInSN++, bufferOffset: offset,
        residualCount: withStatus ? residual.count : 0,
      })
    }
    if (!phaseCollapse) this.sendResponse(task, result, residual)
  }

  private sendResponse(task: ScsiTask, result: ScsiResult, residual: Residual): void {
    this.send({
      opcode: Opcode.ScsiResponse, immediate: false, ahs: [], data: EMPTY, bidiOverflow: false,
      bidiUnderflow: false, overflow: residual.overflow, underflow: residual.underflow, response: 0,
      status: result.status, itt: task.itt, snackTag: 0, statSN: this.nextStatSN(), expCmdSN: this.expCmdSN(),
      maxCmdSN: this.maxCmdSN(), expDataSN: task.dataInSN, bidiResidualCount: 0, residualCount: residual.count,
      ...(result.sense ? { sense: result.sense } : {}),
    })
  }

  /**
   * A protocol violation inside one task's data: reject the PDU and end the task with CHECK
   * CONDITION; its remaining Data-Out is dropped quietly when it arrives.
   */
  private failTask(task: ScsiTask, sense: TransportSense, reason: RejectReason, pdu: InitiatorPdu): void {
    this.reject(reason, pdu)
    if (task.state === 'collecting') this.endWithSense(task, sense)
  }

  private endWithSense(task: ScsiTask, sense: TransportSense): void {
    task.state = 'done'
    this.endTask(task)
    this.sendResponse(task, senseFor(sense), residualOf(0, 0))
    // Later tasks may have been waiting behind this one.
    this.pump()
  }

  private readonly ended: number[] = []

  private endTask(task: ScsiTask): void {
    this.tasks.delete(task.itt)
    for (const ttt of task.r2ts.keys()) this.tasksByTtt.delete(ttt)
    task.clearR2Ts()
    const idx = this.startQueue.indexOf(task)
    if (idx >= 0) this.startQueue.splice(idx, 1)
    if (this.session) this.session.activeCommands = Math.max(0, this.session.activeCommands - 1)
    this.ended.push(task.itt)
    if (this.ended.length > 64) this.ended.shift()
  }

  private recentlyEnded(itt: number): boolean {
    return this.ended.includes(itt)
  }

  // ---------------------------------------------------------------- task management

  /** RFC 7143 §11.5; the response goes out only after every affected task is over. */
  private async handleTmf(req: TaskMgmtRequest): Promise<void> {
    const respond = (response: TmfResponse): void => {
      if (this.phase !== 'full') return
      this.send({
        opcode: Opcode.TaskMgmtResponse, immediate: false, ahs: [], data: EMPTY, response, itt: req.itt,
        statSN: this.nextStatSN(), expCmdSN: this.expCmdSN(), maxCmdSN: this.maxCmdSN(),
      })
    }
    const session = this.session!
    if (!session.target) {
      respond(TmfResponse.Rejected)
      return
    }
    const lunId = decodeLun(req.lun)
    const lu = lunId === undefined ? undefined : session.target.luns.get(lunId)
    switch (req.function) {
      case TmfFunction.AbortTask: {
        const victim = this.tasks.get(req.referencedTaskTag)
        if (!victim) {
          // RFC 7143 §11.5.1 b) and c): no such task. With its RefCmdSN inside the CmdSN window
          // (ExpCmdSN..MaxCmdSN: not received yet, or held out of order) and before the TMF's own
          // CmdSN, it counts as received and aborted: Function complete, and the window moves past
          // it. Below ExpCmdSN it was received and is over: Task does not exist.
          const ref = req.refCmdSN
          const inWindow = snLe(session.expCmdSN, ref) && snLe(ref, session.maxCmdSN)
          if (!inWindow || !snLt(ref, req.cmdSN)) {
            respond(TmfResponse.TaskDoesNotExist)
            return
          }
          this.heldByCmdSN.set(ref, ABORTED_BEFORE_ARRIVAL)
          this.deliverHeld()
          respond(TmfResponse.Complete)
          return
        }
        await this.abortTasks([victim])
        respond(TmfResponse.Complete)
        return
      }
      case TmfFunction.AbortTaskSet:
      case TmfFunction.ClearTaskSet: {
        if (!lu) {
          respond(TmfResponse.LunDoesNotExist)
          return
        }
        await this.abortTasks([...this.tasks.values()].filter((t) => t.lunId === lunId))
        respond(TmfResponse.Complete)
        return
      }
      case TmfFunction.LogicalUnitReset: {
        if (!lu) {
          respond(TmfResponse.LunDoesNotExist)
          return
        }
        await this.abortTasks([...this.tasks.values()].filter((t) => t.lunId === lunId))
        lu.reset('lun', session.nexus)
        respond(TmfResponse.Complete)
        return
      }
      case TmfFunction.TargetWarmReset:
      case TmfFunction.TargetColdReset: {
        const cold = req.function === TmfFunction.TargetColdReset
        await this.abortTasks([...this.tasks.values()])
        for (const unit of session.target.luns.values()) unit.reset(cold ? 'cold' : 'warm', session.nexus)
        // Other sessions to this target lose their tasks too (SAM-5 §7.8).
        const others = this.deps.sessions.all().filter((s) => s !== session && s.target === session.target)
        if (cold) {
          // A cold reset also drops every connection to the target, this one after the answer.
          await Promise.all(others.map((s) => s.owner?.shutdown('target cold reset')))
          respond(TmfResponse.Complete)
          this.close('target cold reset')
          return
        }
        respond(TmfResponse.Complete)
        return
      }
      case TmfFunction.ClearAca:
      case TmfFunction.TaskReassign:
        respond(TmfResponse.NotSupported)
        return
      default:
        respond(TmfResponse.Rejected)
    }
  }

  private async abortTasks(victims: ScsiTask[]): Promise<void> {
    const running: Promise<void>[] = []
    for (const task of victims) {
      const wasRunning = task.state === 'running'
      // A task that has started is not stopped midway (the engine checks for an abort only
      // before it begins); its answer is dropped in finish().
      task.state = 'aborted'
      this.endTask(task)
      if (wasRunning) running.push(task.finished)
    }
    // Tasks queued behind an aborted one may start now.
    this.pump()
    await Promise.all(running)
  }

  private async abortAll(): Promise<void> {
    this.heldByCmdSN.clear()
    await this.abortTasks([...this.tasks.values()])
  }

  // ---------------------------------------------------------------- text and logout

  private handleText(req: TextRequest): void {
    const params = this.session!.params
    let payload: Buffer
    if (req.ttt !== RESERVED_TAG) {
      // Continue a long response (§11.10.4) or, with an unknown TTT, a protocol error.
      if (!this.pendingText || this.pendingText.ttt !== req.ttt) {
        this.reject(RejectReason.InvalidPduField, req)
        return
      }
      payload = this.pendingText.rest
      this.pendingText = undefined
    } else {
      this.pendingText = undefined
      let pairs: Array<[string, string]>
      try {
        pairs = parseTextKeys(req.data)
      } catch {
        this.reject(RejectReason.ProtocolError, req)
        return
      }
      const answer: Array<[string, string]> = []
      for (const [key, value] of pairs) {
        if (key === 'SendTargets') answer.push(...answerSendTargets(value, this.deps.login, params))
        else answer.push([key, 'NotUnderstood'])
      }
      payload = encodeTextKeys(answer)
    }
    const max = params.maxXmitDataSegmentLength
    const more = payload.length > max
    const chunk = more ? payload.subarray(0, max) : payload
    const ttt = more ? this.allocTtt() : RESERVED_TAG
    if (more) this.pendingText = { ttt, rest: Buffer.from(payload.subarray(max)) }
    this.send({
      opcode: Opcode.TextResponse, immediate: false, ahs: [], data: chunk, final: !more, continue: more,
      lun: req.lun, itt: req.itt, ttt, statSN: this.nextStatSN(), expCmdSN: this.expCmdSN(), maxCmdSN: this.maxCmdSN(),
    })
  }

  private async handleLogout(req: LogoutRequest): Promise<void> {
    if (this.logoutPending) return
    this.logoutPending = true
    // Commands before the logout in CmdSN order finish first (§11.14).
    await Promise.all([...this.tasks.values()].filter((t) => t.state === 'running').map((t) => t.finished))
    if (this.phase !== 'full') return
    // reason 2 (remove for recovery) needs ErrorRecoveryLevel 2: response 2 "not supported".
    const response = req.reason === 2 ? 2 : 0
    this.send({
      opcode: Opcode.LogoutResponse, immediate: false, ahs: [], data: EMPTY, response, itt: req.itt,
      statSN: this.nextStatSN(), expCmdSN: this.expCmdSN(), maxCmdSN: this.maxCmdSN(), time2Wait: 0, time2Retain: 0,
    })
    if (response === 0) this.close('logout')
    else this.logoutPending = false
  }

  /** Close this connection and wait for its storage work: used by reinstatement and resets. */
  async shutdown(reason: string): Promise<void> {
    if (this.phase === 'closed') return
    this.close(reason)
    await this.onClosed()
  }

  // ---------------------------------------------------------------- helpers

  private reject(reason: RejectReason, pdu: InitiatorPdu): void {
    this.sendReject(reason, headerOf(pdu))
  }

  private sendReject(reason: RejectReason, header: Buffer): void {
    this.deps.observer?.rejected(reason)
    this.deps.log.warn('PDU rejected', { reason, opcode: header[0]! & 0x3f, remote: this.deps.remote })
    this.send({
      opcode: Opcode.Reject, immediate: false, ahs: [], data: header, reason, statSN: this.nextStatSN(),
      expCmdSN: this.expCmdSN(), maxCmdSN: this.maxCmdSN(), dataSN: 0,
    })
  }

  private send(pdu: TargetPdu): void {
    if (this.phase === 'closed') return
    this.deps.io.send(pdu)
  }

  private close(reason: string): void {
    if (this.phase === 'closed') return
    this.deps.log.info('connection closing', { reason, remote: this.deps.remote })
    this.deps.io.close()
    void this.onClosed()
  }

  private nextStatSN(): number {
    const sn = this.statSN
    this.statSN = snAdd(this.statSN, 1)
    return sn
  }

  private expCmdSN(): number {
    return this.session?.expCmdSN ?? 0
  }

  private maxCmdSN(): number {
    return this.session?.maxCmdSN ?? 0
  }

  private allocTtt(): number {
    const ttt = this.nextTtt
    this.nextTtt = this.nextTtt >= 0x7fffffff ? 1 : this.nextTtt + 1
    return ttt
  }
}

const EMPTY = Buffer.alloc(0)

function hex4(statusClass: number, statusDetail: number): string {
  return `0x${((statusClass << 8) | statusDetail).toString(16).padStart(4, '0')}`
}

/** Keep a PDU past its parser callback: its data is a view into the receive buffer. */
function detach<T extends InitiatorPdu>(pdu: T): T {
  const copy = { ...pdu, data: Buffer.from(pdu.data) }
  if (copy.opcode === Opcode.ScsiCommand) copy.cdb = Buffer.from(copy.cdb)
  return copy
}

/** The 48-byte header echoed in a Reject (§11.17): rebuilt from the PDU's own fields. */
function headerOf(pdu: InitiatorPdu): Buffer {
  return Buffer.from(encodePdu({ ...pdu, ahs: [], data: EMPTY })[0]!.subarray(0, 48))
}

