// One iSCSI initiator connection (RFC 7143) over node:net: login, then SCSI commands with many
// in flight, honouring the target's CmdSN window, sending immediate and unsolicited data,
// answering R2Ts with Data-Out, reassembling Data-In, answering NOP-In pings, logout.
//
// It is test equipment first (sendRaw, a stream of every received PDU, fault-injection hooks)
// and the engine of `iscsi-ha bench` and the failover tests later, which is why commands
// carry their request in every failure (INITIATOR_CLOSED says whether the command left this
// process), so a caller can reconnect and resend like a real host.
//
// ErrorRecoveryLevel is 0: a digest or framing error from the target ends the connection.

import { Socket, connect as netConnect } from 'node:net'
import { randomBytes } from 'node:crypto'
import {
  Opcode,
  RESERVED_TAG,
  TaskAttribute,
  TmfFunction,
  type DataIn,
  type DataOut,
  type InitiatorPdu,
  type LoginResponse,
  type NopIn,
  type R2T,
  type Reject,
  type ScsiResponse,
  type TargetPdu,
  type TaskMgmtResponse,
  type TextResponse,
  type LogoutResponse,
} from '../wire/pdu.js'
import { PduParser, encodePdu, encodeLun, type WireError } from '../wire/index.js'
import { snLt } from '../iscsi/serial.js'
import { encodeTextKeys, parseTextKeys } from '../iscsi/text-keys.js'
import {
  InitiatorClosedError,
  InitiatorConnectError,
  InitiatorError,
  InitiatorProtocolError,
  InitiatorRejectedError,
  InitiatorTimeoutError,
  ScsiStatusError,
} from './errors.js'
import { InitiatorLogin, type LoginOptions, type LoginStep, type NegotiatedParams } from './login.js'
import { DataInAssembler } from './data-in.js'
import { CommandWindow } from './window.js'
import {
  SCSI_CHECK_CONDITION,
  SCSI_GOOD,
  cdbInquiry,
  cdbRead16,
  cdbReadCapacity16,
  cdbReportLuns,
  cdbSynchronizeCache10,
  cdbTestUnitReady,
  cdbWrite16,
  parseInquiry,
  parseReadCapacity16,
  parseReportLuns,
  parseSense,
  type Capacity,
  type InquiryData,
  type Residual,
  type ScsiRequest,
  type ScsiResult,
} from './scsi.js'

export interface InitiatorConnectionOptions extends Omit<LoginOptions, 'sessionType'> {
  host: string
  port: number
  sessionType?: 'Normal' | 'Discovery'
  /** 12 hex digits; default: a random-type ISID (RFC 7143 §11.12.5, T=10b). */
  isid?: string
  /** Connection ID (default 0). */
  cid?: number
  /** 0 for a new session (default). */
  tsih?: number
  /** CmdSN of the login and of the first command (default 1). */
  initialCmdSN?: number
  /** Most SCSI commands outstanding at once on this connection (default 32). */
  queueDepth?: number
  connectTimeoutMs?: number
  /** Whole login phase (default 10 s). */
  loginTimeoutMs?: number
  /** Default per-command timeout; 0 disables (default 30 s). */
  commandTimeoutMs?: number
  /** Answer the target's NOP-In pings (default true); turn off to play a dead host. */
  answerNopIn?: boolean
  /** How often a command rejected for a data digest error is resent (default 2). */
  digestRetries?: number
  /** On a command timeout, send ABORT TASK for it (default true). */
  abortOnTimeout?: boolean
  /**
   * Fault injection for tests: sees every outgoing PDU with its encoded segments and may return
   * replacement bytes (e.g. with a corrupted digest). `attempt` counts resends of the same PDU.
   */
  tamper?: (pdu: InitiatorPdu, segments: Buffer[], attempt: number) => Buffer[] | undefined
}

export interface ScsiCallOptions {
  lun?: number
  dataOut?: Buffer
  readLength?: number
  attribute?: TaskAttribute
  /** Overrides commandTimeoutMs for this command; 0 disables. */
  timeoutMs?: number
}

export interface IoOptions {
  lun?: number
  timeoutMs?: number
}

export interface DiscoveredTarget {
  name: string
  /** TargetAddress values, `host:port,tpgt`. */
  addresses: string[]
}

export interface InitiatorStats {
  pdusSent: number
  pdusReceived: number
  commandsSent: number
  commandsCompleted: number
  dataOutPdus: number
  dataInPdus: number
  r2tsAnswered: number
  nopInAnswered: number
  rejectsReceived: number
  commandRetries: number
  /** Highest number of SCSI commands outstanding at once. */
  maxInFlight: number
  /** Times the queue had to wait for the target to open the CmdSN window. */
  windowStalls: number
}

export interface RejectEvent {
  reason: number
  /** The rejected PDU's header, as echoed. */
  header: Buffer
  opcode: number
  itt: number
}

interface Events {
  /** Every PDU received, after the connection has processed it. Data is a private copy. */
  pdu: (pdu: TargetPdu) => void
  /** Every PDU sent (as built, before tamper). */
  sent: (pdu: InitiatorPdu) => void
  reject: (event: RejectEvent) => void
  /** Something the target sent that we could not use; the connection may stay up. */
  protocolError: (err: Error) => void
  close: (err: Error | undefined) => void
}

type Phase = 'idle' | 'connecting' | 'connected' | 'login' | 'full' | 'logout' | 'closed'

interface Task {
  itt: number
  kind: 'scsi' | 'nop' | 'text' | 'tmf' | 'logout'
  immediate: boolean
  /** Set when the command PDU was built (the CmdSN it took). */
  cmdSN: number | undefined
  pdu: InitiatorPdu | undefined
  sent: boolean
  /** The caller's promise is settled; the task may linger to absorb late PDUs. */
  settled: boolean
  retries: number
  timer: NodeJS.Timeout | undefined
  request?: ScsiRequest
  build(cmdSN: number): InitiatorPdu
  /** Runs right after the command PDU went out (unsolicited Data-Out). */
  afterSend?(): void
  handle(pdu: TargetPdu): void
  fail(err: Error): void
}

const EMPTY = Buffer.alloc(0)
const LOGIN_MAX_SEGMENT = 8192

export class IscsiInitiatorConnection {
  readonly options: InitiatorConnectionOptions
  readonly isid: string
  readonly cid: number
  readonly stats: InitiatorStats = {
    pdusSent: 0, pdusReceived: 0, commandsSent: 0, commandsCompleted: 0, dataOutPdus: 0, dataInPdus: 0,
    r2tsAnswered: 0, nopInAnswered: 0, rejectsReceived: 0, commandRetries: 0, maxInFlight: 0, windowStalls: 0,
  }
  /** Block size for read()/write(); readCapacity16() updates it. */
  blockSize = 512
  /** Answer NOP-In pings; may be flipped at any time. */
  answerNopIn: boolean

  private phase: Phase = 'idle'
  private socket: Socket | undefined
  private parser: PduParser<'initiator'>
  private readonly window: CommandWindow
  private expStatSN = 0
  private headerDigest = false
  private dataDigest = false
  private negotiated: NegotiatedParams | undefined
  private tsihValue: number
  private nextItt = 1
  private readonly tasks = new Map<number, Task>()
  private readonly queue: Task[] = []
  private scsiInFlight = 0
  private drainWait = false
  private windowStalled = false
  /** Handles Login Responses during the login phase (synchronously, inside the parser callback). */
  private loginWaiter: ((pdu: LoginResponse) => void) | undefined
  private closeError: Error | undefined
  /** We ended the connection ourselves (close()): its closing is not an error. */
  private localClose = false
  private readonly closedPromise: Promise<Error | undefined>
  private resolveClosed!: (err: Error | undefined) => void
  private readonly listeners: { [K in keyof Events]: Array<Events[K]> } = {
    pdu: [], sent: [], reject: [], protocolError: [], close: [],
  }

  constructor(options: InitiatorConnectionOptions) {
    this.options = options
    this.isid = (options.isid ?? randomIsid()).toLowerCase()
    if (!/^[0-9a-f]{12}$/.test(this.isid)) throw new TypeError(`ISID must be 12 hex digits, got ${options.isid}`)
    this.cid = options.cid ?? 0
    this.tsihValue = options.tsih ?? 0
    this.answerNopIn = options.answerNopIn ?? true
    this.window = new CommandWindow(options.initialCmdSN ?? 1)
    this.parser = this.makeParser()
    this.closedPromise = new Promise((res) => (this.resolveClosed = res))
  }

  /** Connect and log in. */
  static async open(options: InitiatorConnectionOptions): Promise<IscsiInitiatorConnection> {
    const conn = new IscsiInitiatorConnection(options)
    try {
      await conn.connect()
      await conn.login()
    } catch (err) {
      conn.destroy()
      throw err
    }
    return conn
  }

  // ---------------------------------------------------------------- state

  /** Negotiated parameters (after login). */
  get params(): NegotiatedParams {
    if (!this.negotiated) throw new InitiatorClosedError('not logged in')
    return this.negotiated
  }

  get tsih(): number {
    return this.tsihValue
  }

  get isLoggedIn(): boolean {
    return this.phase === 'full'
  }

  get isClosed(): boolean {
    return this.phase === 'closed'
  }

  /** SCSI commands sent and not yet answered. */
  get inFlight(): number {
    return this.scsiInFlight
  }

  /** Commands and requests not yet answered, oldest first (ITT for abortTask, request to resend). */
  outstanding(): Array<{ itt: number; kind: Task['kind']; sent: boolean; cmdSN: number | undefined; request?: ScsiRequest }> {
    return [...this.tasks.values()].map((t) => ({
      itt: t.itt, kind: t.kind, sent: t.sent, cmdSN: t.cmdSN, ...(t.request ? { request: t.request } : {}),
    }))
  }

  /** The CmdSN window as we see it. */
  get cmdWindow(): { cmdSN: number; expCmdSN: number; maxCmdSN: number } {
    return { cmdSN: this.window.cmdSN, expCmdSN: this.window.expCmdSN, maxCmdSN: this.window.maxCmdSN }
  }

  get statSN(): { expStatSN: number } {
    return { expStatSN: this.expStatSN }
  }

  /** Resolves when the socket has closed, with the reason if it was not our own close. */
  get closed(): Promise<Error | undefined> {
    return this.closedPromise
  }

  on<K extends keyof Events>(event: K, fn: Events[K]): this {
    this.listeners[event].push(fn)
    return this
  }

  off<K extends keyof Events>(event: K, fn: Events[K]): this {
    const list = this.listeners[event] as Array<Events[K]>
    const i = list.indexOf(fn)
    if (i >= 0) list.splice(i, 1)
    return this
  }

  private emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): void {
    for (const fn of [...this.listeners[event]]) (fn as (...a: Parameters<Events[K]>) => void)(...args)
  }

  /**
   * The next received PDU that satisfies `match` (default: any). Rejects with INITIATOR_TIMEOUT,
   * or INITIATOR_CLOSED if the connection closes first.
   */
  waitForPdu(match: (pdu: TargetPdu) => boolean = () => true, timeoutMs = 5000): Promise<TargetPdu> {
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer)
        this.off('pdu', onPdu)
        this.off('close', onClose)
      }
      const onPdu = (pdu: TargetPdu): void => {
        if (!match(pdu)) return
        cleanup()
        resolve(pdu)
      }
      const onClose = (err: Error | undefined): void => {
        cleanup()
        reject(new InitiatorClosedError('connection closed while waiting for a PDU', undefined, false, { cause: err }))
      }
      const timer = setTimeout(() => {
        cleanup()
        reject(new InitiatorTimeoutError(`no matching PDU within ${timeoutMs} ms`, timeoutMs))
      }, timeoutMs)
      if (this.phase === 'closed') {
        onClose(this.closeError)
        return
      }
      this.on('pdu', onPdu)
      this.on('close', onClose)
    })
  }

  // ---------------------------------------------------------------- connect and login

  /** Open the TCP connection. */
  connect(): Promise<void> {
    if (this.phase !== 'idle') return Promise.reject(new Error(`connect() in phase ${this.phase}`))
    this.phase = 'connecting'
    const { host, port } = this.options
    const address = `${host.includes(':') ? `[${host}]` : host}:${port}`
    const timeoutMs = this.options.connectTimeoutMs ?? 5000
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host, port, noDelay: true })
      this.socket = socket
      const timer = setTimeout(() => {
        socket.destroy()
        fail(new InitiatorTimeoutError(`connect to ${address} timed out after ${timeoutMs} ms`, timeoutMs))
      }, timeoutMs)
      const fail = (err: Error): void => {
        clearTimeout(timer)
        socket.off('connect', onConnect)
        this.shut(err)
        reject(err instanceof InitiatorError ? err : new InitiatorConnectError(address, { cause: err }))
      }
      const onConnect = (): void => {
        clearTimeout(timer)
        socket.off('error', fail)
        socket.setNoDelay(true)
        this.phase = 'connected'
        this.attach(socket)
        resolve()
      }
      socket.once('connect', onConnect)
      socket.once('error', fail)
    })
  }

  private attach(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => {
      try {
        this.parser.push(chunk)
      } catch (err) {
        // A fatal framing error (e.g. header digest) or a bug in a handler: at ErrorRecoveryLevel 0
        // the connection cannot continue.
        const e = err instanceof InitiatorError ? err : new InitiatorProtocolError(`unusable input from the target: ${String(err)}`, { cause: err })
        this.emit('protocolError', e)
        this.shut(e)
      }
    })
    socket.on('error', (err) => this.shut(err))
    socket.on('close', () =>
      this.shut(this.localClose ? undefined : (this.closeError ?? new InitiatorClosedError('connection closed by the target'))),
    )
    // The target ends the connection with a FIN: answer it so the socket closes.
    socket.on('end', () => socket.end())
  }

  private makeParser(): PduParser<'initiator'> {
    return new PduParser({
      direction: 'initiator',
      maxDataSegmentLength: LOGIN_MAX_SEGMENT,
      onPdu: (pdu) => this.receive(pdu),
      onError: (err: WireError) => {
        if (err.code === 'WIRE_DATA_DIGEST') {
          // ERL 0: no SNACK to recover a lost Data-In or response; the connection must go.
          throw new InitiatorProtocolError(`data digest error on a PDU from the target: ${err.message}`, { cause: err })
        }
        this.emit('protocolError', new InitiatorProtocolError(`ignored a PDU from the target: ${err.message}`, { cause: err }))
      },
    })
  }

  /**
   * Run the login phase; resolves with the negotiated parameters. Each Login Response is handled
   * inside the parser callback, so digests switch on exactly after the final one (RFC 7143 §13.1)
   * even when the target's next PDU arrives in the same TCP segment.
   */
  login(): Promise<NegotiatedParams> {
    if (this.phase !== 'connected') return Promise.reject(new Error(`login() in phase ${this.phase}`))
    this.phase = 'login'
    const o = this.options
    const timeoutMs = o.loginTimeoutMs ?? 10_000
    return new Promise<NegotiatedParams>((resolve, reject) => {
      let driver: InitiatorLogin
      try {
        driver = new InitiatorLogin({ ...o, sessionType: o.sessionType ?? (o.targetName ? 'Normal' : 'Discovery') })
      } catch (e) {
        this.shut(undefined)
        reject(e)
        return
      }
      const itt = this.allocItt()
      let done = false
      const finish = (err: Error | undefined, params?: NegotiatedParams): void => {
        if (done) return
        done = true
        clearTimeout(timer)
        this.off('close', onClose)
        this.loginWaiter = undefined
        if (err) {
          this.shut(err)
          reject(err)
        } else {
          resolve(params!)
        }
      }
      const onClose = (err: Error | undefined): void =>
        finish(new InitiatorClosedError('connection closed during login', undefined, false, { cause: err }))
      const timer = setTimeout(() => finish(new InitiatorTimeoutError(`login did not complete within ${timeoutMs} ms`, timeoutMs)), timeoutMs)
      this.on('close', onClose)
      const send = (step: LoginStep): void => {
        this.writePdu({
          opcode: Opcode.LoginRequest, immediate: true, ahs: [], data: step.data, transit: step.transit,
          continue: false, csg: step.csg, nsg: step.nsg, versionMax: 0, versionMin: 0, isid: this.isid,
          tsih: this.tsihValue, itt, cid: this.cid, cmdSN: this.window.cmdSN, expStatSN: this.expStatSN,
        }, 0)
      }
      this.loginWaiter = (resp) => {
        try {
          if (resp.itt !== itt) throw new InitiatorProtocolError(`login response for ITT ${resp.itt}, expected ${itt}`)
          const progress = driver.onResponse(resp)
          if (progress.kind === 'request') {
            send(progress.step)
            return
          }
          this.tsihValue = resp.tsih
          this.window.update(resp.expCmdSN, resp.maxCmdSN)
          this.enterFullFeature(progress.params)
          finish(undefined, progress.params)
        } catch (e) {
          finish(e instanceof Error ? e : new Error(String(e)))
        }
      }
      try {
        send(driver.start())
      } catch (e) {
        finish(e instanceof Error ? e : new Error(String(e)))
      }
    })
  }

  private enterFullFeature(params: NegotiatedParams): void {
    this.loginWaiter = undefined
    this.negotiated = params
    // Digests and our receive limit start with the first PDU after the final login response
    // (RFC 7143 §13.1, §13.12). The parser reads these afresh for each PDU.
    this.headerDigest = params.headerDigest
    this.dataDigest = params.dataDigest
    this.parser.headerDigest = params.headerDigest
    this.parser.dataDigest = params.dataDigest
    this.parser.maxDataSegmentLength = params.maxRecvDataSegmentLength
    this.phase = 'full'
    this.pump()
  }

  // ---------------------------------------------------------------- receive

  private receive(pdu: TargetPdu): void {
    this.stats.pdusReceived++
    this.track(pdu)
    switch (pdu.opcode) {
      case Opcode.LoginResponse:
        if (this.phase === 'login' && this.loginWaiter) this.loginWaiter(pdu)
        else this.emit('protocolError', new InitiatorProtocolError('Login Response outside the login phase'))
        break
      case Opcode.NopIn:
        this.onNopIn(pdu)
        break
      case Opcode.Reject:
        this.onReject(pdu)
        break
      case Opcode.AsyncMessage:
        // Logout requests, drops and renegotiation are the caller's business (see the 'pdu' stream).
        break
      case Opcode.ScsiResponse:
      case Opcode.DataIn:
      case Opcode.R2T:
      case Opcode.TextResponse:
      case Opcode.LogoutResponse:
      case Opcode.TaskMgmtResponse: {
        const task = this.tasks.get(pdu.itt)
        if (!task) {
          this.emit('protocolError', new InitiatorProtocolError(`PDU 0x${pdu.opcode.toString(16)} for unknown ITT 0x${pdu.itt.toString(16)}`))
          break
        }
        task.handle(pdu)
        break
      }
    }
    if (this.listeners.pdu.length > 0) this.emit('pdu', detach(pdu))
    this.pump()
  }

  /** StatSN and the command window from any target PDU (RFC 7143 §4.2.2.1, §4.2.2.2). */
  private track(pdu: TargetPdu): void {
    if (pdu.opcode === Opcode.LoginResponse) {
      this.expStatSN = (pdu.statSN + 1) >>> 0
      return
    }
    if (this.phase === 'login') return
    this.window.update(pdu.expCmdSN, pdu.maxCmdSN)
    let carriesStatus: boolean
    switch (pdu.opcode) {
      case Opcode.DataIn:
        carriesStatus = pdu.hasStatus
        break
      case Opcode.R2T:
        carriesStatus = false
        break
      case Opcode.NopIn:
        // A ping (ITT reserved) carries the next StatSN without taking it.
        carriesStatus = pdu.itt !== RESERVED_TAG
        break
      default:
        carriesStatus = true
    }
    if (carriesStatus) {
      const next = (pdu.statSN + 1) >>> 0
      if (snLt(this.expStatSN, next)) this.expStatSN = next
    }
  }

  private onNopIn(pdu: NopIn): void {
    if (pdu.itt !== RESERVED_TAG) {
      this.tasks.get(pdu.itt)?.handle(pdu)
    }
    if (pdu.ttt !== RESERVED_TAG && this.answerNopIn && this.phase === 'full') {
      // RFC 7143 §11.18: answer a ping with ITT 0xffffffff, its TTT and LUN, as an immediate PDU
      // carrying the current CmdSN (which it does not take); echo its data.
      this.stats.nopInAnswered++
      this.writePdu({
        opcode: Opcode.NopOut, immediate: true, ahs: [], data: Buffer.from(pdu.data), lun: pdu.lun, itt: RESERVED_TAG,
        ttt: pdu.ttt, cmdSN: this.window.cmdSN, expStatSN: this.expStatSN,
      }, 0)
    }
  }

  private onReject(pdu: Reject): void {
    this.stats.rejectsReceived++
    const header = Buffer.from(pdu.data)
    const opcode = header.length >= 1 ? header[0]! & 0x3f : -1
    const itt = header.length >= 20 ? header.readUInt32BE(16) : RESERVED_TAG
    this.emit('reject', { reason: pdu.reason, header, opcode, itt })
    const task = itt === RESERVED_TAG ? undefined : this.tasks.get(itt)
    if (!task || !task.pdu) return
    if (opcode === task.pdu.opcode) {
      // The command PDU itself was discarded. A data digest error leaves a CmdSN gap that only
      // this command can plug (RFC 7143 §7.8, §11.17.1): resend it unchanged.
      const limit = this.options.digestRetries ?? 2
      if (pdu.reason === 0x02 && task.retries < limit && !task.settled) {
        task.retries++
        this.stats.commandRetries++
        this.writePdu(task.pdu, task.retries)
        task.afterSend?.()
        return
      }
      this.finishTask(task)
      task.fail(new InitiatorRejectedError(pdu.reason, header, task.request))
      return
    }
    // A Reject for one of a task's Data-Out PDUs: the target still owes the task's response
    // (RFC 7143 §7.3); the task's timeout covers a target that never sends it.
  }

  // ---------------------------------------------------------------- send

  private writePdu(pdu: InitiatorPdu, attempt: number): void {
    const socket = this.socket
    if (!socket || socket.destroyed || this.phase === 'closed') return
    let segments = encodePdu(pdu, { headerDigest: this.headerDigest, dataDigest: this.dataDigest })
    const tampered = this.options.tamper?.(pdu, segments, attempt)
    if (tampered) segments = tampered
    socket.cork()
    for (const s of segments) socket.write(s)
    socket.uncork()
    this.stats.pdusSent++
    if (this.listeners.sent.length > 0) this.emit('sent', pdu)
  }

  /**
   * Write raw bytes to the socket, bypassing the codec (tests: malformed PDUs). The target sees
   * them in stream order with everything else we send.
   */
  sendRaw(bytes: Buffer): void {
    const socket = this.socket
    if (!socket || socket.destroyed) throw new InitiatorClosedError('not connected')
    socket.write(bytes)
  }

  /** Encode a PDU with the digests in force, without sending it (to corrupt it for sendRaw). */
  encode(pdu: InitiatorPdu): Buffer {
    return Buffer.concat(encodePdu(pdu, { headerDigest: this.headerDigest, dataDigest: this.dataDigest }))
  }

  private allocItt(): number {
    for (;;) {
      const itt = this.nextItt
      this.nextItt = this.nextItt >= 0x7fffffff ? 1 : this.nextItt + 1
      if (!this.tasks.has(itt)) return itt
    }
  }

  /** Queue a task; it goes out when the window (and, for SCSI, the queue depth) allows. */
  private submit(task: Task, timeoutMs: number): void {
    if (this.phase !== 'full') {
      task.fail(new InitiatorClosedError(`cannot send: connection is ${this.phase === 'closed' ? 'closed' : `in phase ${this.phase}`}`, task.request))
      return
    }
    this.tasks.set(task.itt, task)
    if (timeoutMs > 0) {
      task.timer = setTimeout(() => this.timeOut(task, timeoutMs), timeoutMs)
      task.timer.unref?.()
    }
    if (task.immediate) {
      // Immediate PDUs take no CmdSN: they never wait for the window (pings, aborts, logout).
      this.transmit(task)
      return
    }
    this.queue.push(task)
    this.pump()
  }

  /** Send queued tasks while the CmdSN window and the queue depth allow, in order. */
  private pump(): void {
    if (this.phase !== 'full' && this.phase !== 'logout') return
    const depth = this.options.queueDepth ?? 32
    const socket = this.socket
    if (socket && socket.writableNeedDrain && this.queue.length > 0) {
      // The target is not reading as fast as we queue: hold new commands until the socket drains.
      if (!this.drainWait) {
        this.drainWait = true
        socket.once('drain', () => {
          this.drainWait = false
          this.pump()
        })
      }
      return
    }
    while (this.queue.length > 0) {
      const task = this.queue[0]!
      if (task.settled && !task.sent) {
        this.queue.shift()
        this.tasks.delete(task.itt)
        continue
      }
      if (task.kind === 'scsi' && this.scsiInFlight >= depth) return
      if (!task.immediate && !this.window.open) {
        if (!this.windowStalled) this.stats.windowStalls++
        this.windowStalled = true
        return
      }
      this.windowStalled = false
      this.queue.shift()
      this.transmit(task)
    }
  }

  /** Give the task its CmdSN and put its PDU (and any unsolicited data) on the wire. */
  private transmit(task: Task): void {
    const cmdSN = task.immediate ? this.window.cmdSN : this.window.take()
    task.cmdSN = cmdSN
    task.pdu = task.build(cmdSN)
    if (task.kind === 'scsi') {
      this.scsiInFlight++
      this.stats.commandsSent++
      if (this.scsiInFlight > this.stats.maxInFlight) this.stats.maxInFlight = this.scsiInFlight
    }
    task.sent = true
    this.writePdu(task.pdu, 0)
    task.afterSend?.()
  }

  /** The task is over on the wire: forget it. */
  private finishTask(task: Task): void {
    if (task.timer) clearTimeout(task.timer)
    task.timer = undefined
    if (this.tasks.get(task.itt) === task) this.tasks.delete(task.itt)
    if (task.kind === 'scsi' && task.sent) {
      this.scsiInFlight--
      this.stats.commandsCompleted++
    }
    task.sent = false
  }

  private timeOut(task: Task, timeoutMs: number): void {
    task.timer = undefined
    if (task.settled) return
    const what = task.kind === 'scsi' ? `SCSI command 0x${task.request!.cdb[0]!.toString(16)}` : task.kind
    task.fail(new InitiatorTimeoutError(`${what} (ITT 0x${task.itt.toString(16)}) got no answer within ${timeoutMs} ms`, timeoutMs, task.request))
    if (!task.sent) {
      const i = this.queue.indexOf(task)
      if (i >= 0) this.queue.splice(i, 1)
      this.tasks.delete(task.itt)
      return
    }
    // Still on the wire: keep absorbing its PDUs; ask the target to drop it.
    if (task.kind === 'scsi' && (this.options.abortOnTimeout ?? true) && this.phase === 'full') {
      void this.abortTask(task.itt).catch(() => undefined)
    }
  }

  // ---------------------------------------------------------------- SCSI

  /** Run one SCSI command. Resolves with whatever status the target returned. */
  scsi(cdb: Buffer, opts: ScsiCallOptions = {}): Promise<ScsiResult> {
    const lun = opts.lun ?? 0
    const dataOut = opts.dataOut ?? EMPTY
    const readLength = opts.readLength ?? 0
    if (dataOut.length > 0 && readLength > 0) return Promise.reject(new TypeError('bidirectional commands are not supported'))
    if (cdb.length < 1 || cdb.length > 16) return Promise.reject(new RangeError('CDB must be 1..16 bytes'))
    const request: ScsiRequest = { cdb: Buffer.from(cdb), lun, ...(dataOut.length ? { dataOut } : {}), ...(readLength ? { readLength } : {}), ...(opts.attribute !== undefined ? { attribute: opts.attribute } : {}) }
    const lunField = encodeLun(lun)
    const isWrite = dataOut.length > 0
    const edtl = isWrite ? dataOut.length : readLength
    return new Promise<ScsiResult>((resolve, reject) => {
      const assembler = readLength > 0 ? new DataInAssembler(readLength) : undefined
      let immediateLength = 0
      let unsolicitedEnd = 0
      const task: Task = {
        itt: this.allocItt(), kind: 'scsi', immediate: false, cmdSN: undefined, pdu: undefined, sent: false,
        settled: false, retries: 0, timer: undefined, request,
        build: (cmdSN) => {
          const p = this.params
          if (isWrite) {
            // RFC 7143 §13.10-§13.14: immediate data up to FirstBurstLength (and one PDU); with
            // InitialR2T=No, unsolicited Data-Out up to FirstBurstLength in all.
            immediateLength = p.immediateData ? Math.min(edtl, p.firstBurstLength, p.maxXmitDataSegmentLength) : 0
            unsolicitedEnd = p.initialR2T ? immediateLength : Math.min(edtl, p.firstBurstLength)
          }
          return {
            opcode: Opcode.ScsiCommand, immediate: false, ahs: [], data: dataOut.subarray(0, immediateLength),
            // F: no unsolicited Data-Out follows the command (§11.3.1).
            final: unsolicitedEnd <= immediateLength, read: readLength > 0, write: isWrite,
            attribute: opts.attribute ?? TaskAttribute.Simple, lun: lunField, itt: task.itt,
            expectedDataTransferLength: edtl, cmdSN, expStatSN: this.expStatSN, cdb: request.cdb,
          }
        },
        afterSend: () => {
          if (unsolicitedEnd > immediateLength) this.sendDataOut(task.itt, lunField, RESERVED_TAG, dataOut, immediateLength, unsolicitedEnd - immediateLength)
        },
        handle: (pdu) => {
          switch (pdu.opcode) {
            case Opcode.DataIn:
              onDataIn(pdu)
              return
            case Opcode.R2T:
              onR2T(pdu)
              return
            case Opcode.ScsiResponse:
              onResponse(pdu)
              return
            default:
              return
          }
        },
        fail: (err) => {
          if (task.settled) return
          task.settled = true
          reject(err)
        },
      }
      const complete = (result: ScsiResult): void => {
        this.finishTask(task)
        if (task.settled) return
        task.settled = true
        resolve(result)
      }
      const protocolFailure = (message: string): void => {
        const err = new InitiatorProtocolError(`ITT 0x${task.itt.toString(16)}: ${message}`)
        this.emit('protocolError', err)
        task.fail(err)
      }
      const onDataIn = (pdu: DataIn): void => {
        this.stats.dataInPdus++
        if (!assembler) {
          protocolFailure('Data-In for a command that reads nothing')
          return
        }
        try {
          assembler.add(pdu)
        } catch (e) {
          protocolFailure(e instanceof Error ? e.message : String(e))
          return
        }
        if (pdu.hasStatus) {
          const residual: Residual = { overflow: pdu.overflow, underflow: pdu.underflow, count: pdu.residualCount }
          finishWith(pdu.status, 0, undefined, residual)
        }
      }
      const onR2T = (pdu: R2T): void => {
        const end = pdu.bufferOffset + pdu.desiredDataTransferLength
        if (!isWrite || end > dataOut.length || pdu.desiredDataTransferLength === 0) {
          protocolFailure(`R2T for bytes ${pdu.bufferOffset}..${end} of a ${dataOut.length}-byte write`)
          return
        }
        this.stats.r2tsAnswered++
        this.sendDataOut(task.itt, lunField, pdu.ttt, dataOut, pdu.bufferOffset, pdu.desiredDataTransferLength)
      }
      const onResponse = (pdu: ScsiResponse): void => {
        const residual: Residual = { overflow: pdu.overflow, underflow: pdu.underflow, count: pdu.residualCount }
        const sense = pdu.sense && pdu.sense.length > 0 ? parseSense(Buffer.from(pdu.sense)) : undefined
        finishWith(pdu.status, pdu.response, sense, residual)
      }
      const finishWith = (status: number, response: number, sense: ScsiResult['sense'], residual: Residual): void => {
        if (assembler && status === SCSI_GOOD && response === 0) {
          const mismatch = assembler.checkResidual(residual)
          if (mismatch) {
            this.finishTask(task)
            protocolFailure(mismatch)
            return
          }
        }
        const result: ScsiResult = { status, response, residual, dataInPdus: assembler?.pdus ?? 0, itt: task.itt, cmdSN: task.cmdSN ?? 0 }
        if (sense) result.sense = sense
        if (assembler) result.data = assembler.result()
        complete(result)
      }
      this.submit(task, opts.timeoutMs ?? this.options.commandTimeoutMs ?? 30_000)
    })
  }

  /** Data-Out PDUs for [offset, offset+length) of `data`, each within MaxXmitDataSegmentLength. */
  private sendDataOut(itt: number, lun: bigint, ttt: number, data: Buffer, offset: number, length: number): void {
    const max = this.params.maxXmitDataSegmentLength
    let dataSN = 0
    for (let at = offset; at < offset + length; at += max) {
      const n = Math.min(max, offset + length - at)
      const pdu: DataOut = {
        opcode: Opcode.DataOut, immediate: false, ahs: [], data: data.subarray(at, at + n), final: at + n >= offset + length,
        lun, itt, ttt, expStatSN: this.expStatSN, dataSN: dataSN++, bufferOffset: at,
      }
      this.stats.dataOutPdus++
      this.writePdu(pdu, 0)
    }
  }

  /** SCSI command with automatic retry on UNIT ATTENTION (as hosts do); throws on other errors. */
  private async checked(operation: string, cdb: Buffer, opts: ScsiCallOptions): Promise<ScsiResult> {
    for (let attempt = 0; ; attempt++) {
      const result = await this.scsi(cdb, opts)
      if (result.status === SCSI_GOOD && result.response === 0) return result
      const unitAttention = result.status === SCSI_CHECK_CONDITION && result.sense?.key === 0x06
      if (!unitAttention || attempt >= 4) throw new ScsiStatusError(operation, result)
    }
  }

  /** READ(16) of `blocks` blocks at `lba`. */
  async read(lba: number | bigint, blocks: number, opts: IoOptions = {}): Promise<Buffer> {
    const length = blocks * this.blockSize
    const result = await this.checked('READ(16)', cdbRead16(lba, blocks), { ...opts, readLength: length })
    return result.data ?? Buffer.alloc(0)
  }

  /** WRITE(16) of `data` (a whole number of blocks) at `lba`. */
  async write(lba: number | bigint, data: Buffer, opts: IoOptions & { fua?: boolean } = {}): Promise<void> {
    if (data.length % this.blockSize !== 0) throw new RangeError(`write of ${data.length} bytes is not a multiple of the ${this.blockSize}-byte block`)
    await this.checked('WRITE(16)', cdbWrite16(lba, data.length / this.blockSize, { fua: opts.fua ?? false }), { ...opts, dataOut: data })
  }

  async inquiry(opts: IoOptions = {}): Promise<InquiryData> {
    const result = await this.checked('INQUIRY', cdbInquiry(96), { ...opts, readLength: 96 })
    return parseInquiry(result.data ?? Buffer.alloc(0))
  }

  /** READ CAPACITY(16); sets blockSize. */
  async readCapacity16(opts: IoOptions = {}): Promise<Capacity> {
    const result = await this.checked('READ CAPACITY(16)', cdbReadCapacity16(32), { ...opts, readLength: 32 })
    const cap = parseReadCapacity16(result.data ?? Buffer.alloc(0))
    this.blockSize = cap.blockSize
    return cap
  }

  /** TEST UNIT READY; resolves with the result whatever the status (a UA is normal here). */
  testUnitReady(opts: IoOptions = {}): Promise<ScsiResult> {
    return this.scsi(cdbTestUnitReady(), opts)
  }

  async synchronizeCache(opts: IoOptions = {}): Promise<void> {
    await this.checked('SYNCHRONIZE CACHE(10)', cdbSynchronizeCache10(), opts)
  }

  async reportLuns(opts: IoOptions = {}): Promise<number[]> {
    const result = await this.checked('REPORT LUNS', cdbReportLuns(4096), { ...opts, readLength: 4096 })
    return parseReportLuns(result.data ?? Buffer.alloc(0))
  }

  // ---------------------------------------------------------------- other requests

  /** NOP-Out ping (immediate); resolves with the NOP-In's data. */
  nop(data: Buffer = EMPTY, opts: { timeoutMs?: number } = {}): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const task: Task = {
        itt: this.allocItt(), kind: 'nop', immediate: true, cmdSN: undefined, pdu: undefined, sent: false, settled: false,
        retries: 0, timer: undefined,
        build: (cmdSN) => ({
          opcode: Opcode.NopOut, immediate: true, ahs: [], data, lun: 0n, itt: task.itt, ttt: RESERVED_TAG, cmdSN,
          expStatSN: this.expStatSN,
        }),
        handle: (pdu) => {
          if (pdu.opcode !== Opcode.NopIn) return
          this.finishTask(task)
          if (task.settled) return
          task.settled = true
          resolve(Buffer.from(pdu.data))
        },
        fail: (err) => {
          if (task.settled) return
          task.settled = true
          reject(err)
        },
      }
      this.submit(task, opts.timeoutMs ?? this.options.commandTimeoutMs ?? 30_000)
    })
  }

  /** A Text Request exchange (RFC 7143 §11.10), following continuations; returns all pairs. */
  text(pairs: Array<[string, string]>, opts: { timeoutMs?: number } = {}): Promise<Array<[string, string]>> {
    return new Promise((resolve, reject) => {
      const parts: Buffer[] = []
      let ttt = RESERVED_TAG
      let first = true
      const task: Task = {
        itt: this.allocItt(), kind: 'text', immediate: false, cmdSN: undefined, pdu: undefined, sent: false, settled: false,
        retries: 0, timer: undefined,
        build: (cmdSN) => {
          const data = first ? encodeTextKeys(pairs) : EMPTY
          first = false
          return {
            opcode: Opcode.TextRequest, immediate: false, ahs: [], data, final: true, continue: false, lun: 0n,
            itt: task.itt, ttt, cmdSN, expStatSN: this.expStatSN,
          }
        },
        handle: (pdu) => {
          if (pdu.opcode !== Opcode.TextResponse) return
          const r = pdu as TextResponse
          parts.push(Buffer.from(r.data))
          if (r.continue || (!r.final && r.ttt !== RESERVED_TAG)) {
            // §11.11.1: more text: ask for it with an empty request carrying the TTT.
            ttt = r.ttt
            task.sent = false
            this.queue.push(task)
            return
          }
          this.finishTask(task)
          if (task.settled) return
          task.settled = true
          try {
            resolve(parseTextKeys(Buffer.concat(parts)))
          } catch (e) {
            reject(new InitiatorProtocolError(`malformed Text Response: ${e instanceof Error ? e.message : String(e)}`))
          }
        },
        fail: (err) => {
          if (task.settled) return
          task.settled = true
          reject(err)
        },
      }
      this.submit(task, opts.timeoutMs ?? this.options.commandTimeoutMs ?? 30_000)
    })
  }

  /** SendTargets (RFC 7143 §13.3); `All` needs a Discovery session. */
  async sendTargets(value = 'All'): Promise<DiscoveredTarget[]> {
    const pairs = await this.text([['SendTargets', value]])
    const out: DiscoveredTarget[] = []
    for (const [key, v] of pairs) {
      if (key === 'TargetName') out.push({ name: v, addresses: [] })
      else if (key === 'TargetAddress' && out.length > 0) out[out.length - 1]!.addresses.push(v)
      else if (key === 'SendTargets' && v === 'Reject') throw new InitiatorProtocolError(`target rejected SendTargets=${value}`)
    }
    return out
  }

  /** ABORT TASK (RFC 7143 §11.5) for one of our commands; resolves with the TMF response code. */
  abortTask(itt: number, opts: { timeoutMs?: number } = {}): Promise<number> {
    const victim = this.tasks.get(itt)
    if (!victim || victim.cmdSN === undefined) return Promise.reject(new TypeError(`no sent task with ITT 0x${itt.toString(16)}`))
    return this.taskManagement(TmfFunction.AbortTask, victim.request?.lun ?? 0, itt, victim.cmdSN, opts.timeoutMs)
  }

  /** LOGICAL UNIT RESET (RFC 7143 §11.5). */
  lunReset(lun = 0, opts: { timeoutMs?: number } = {}): Promise<number> {
    return this.taskManagement(TmfFunction.LogicalUnitReset, lun, RESERVED_TAG, this.window.cmdSN, opts.timeoutMs)
  }

  private taskManagement(fn: TmfFunction, lun: number, referenced: number, refCmdSN: number, timeoutMs?: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const task: Task = {
        itt: this.allocItt(), kind: 'tmf', immediate: true, cmdSN: undefined, pdu: undefined, sent: false, settled: false,
        retries: 0, timer: undefined,
        build: (cmdSN) => ({
          opcode: Opcode.TaskMgmtRequest, immediate: true, ahs: [], data: EMPTY, function: fn, lun: encodeLun(lun),
          itt: task.itt, referencedTaskTag: referenced, cmdSN, expStatSN: this.expStatSN, refCmdSN, expDataSN: 0,
        }),
        handle: (pdu) => {
          if (pdu.opcode !== Opcode.TaskMgmtResponse) return
          this.finishTask(task)
          if (fn === TmfFunction.AbortTask && (pdu as TaskMgmtResponse).response === 0) {
            // The aborted task gets no response of its own (§11.5.1): retire it here.
            const victim = this.tasks.get(referenced)
            if (victim) {
              this.finishTask(victim)
              victim.fail(new InitiatorClosedError('task aborted', victim.request, true))
            }
          }
          if (task.settled) return
          task.settled = true
          resolve((pdu as TaskMgmtResponse).response)
        },
        fail: (err) => {
          if (task.settled) return
          task.settled = true
          reject(err)
        },
      }
      this.submit(task, timeoutMs ?? this.options.commandTimeoutMs ?? 30_000)
    })
  }

  /**
   * Logout (reason 0, close the session) after the outstanding commands finish; resolves when
   * the target answered and the connection closed.
   */
  async logout(opts: { timeoutMs?: number } = {}): Promise<number> {
    if (this.phase !== 'full') throw new InitiatorClosedError(`logout in phase ${this.phase}`)
    const timeoutMs = opts.timeoutMs ?? 10_000
    await this.drain(timeoutMs)
    const response = await new Promise<number>((resolve, reject) => {
      const task: Task = {
        itt: this.allocItt(), kind: 'logout', immediate: true, cmdSN: undefined, pdu: undefined, sent: false,
        settled: false, retries: 0, timer: undefined,
        build: (cmdSN) => ({
          opcode: Opcode.LogoutRequest, immediate: true, ahs: [], data: EMPTY, reason: 0, itt: task.itt, cid: this.cid,
          cmdSN, expStatSN: this.expStatSN,
        }),
        handle: (pdu) => {
          if (pdu.opcode !== Opcode.LogoutResponse) return
          this.finishTask(task)
          if (task.settled) return
          task.settled = true
          const r = (pdu as LogoutResponse).response
          if (r === 0) this.phase = 'logout'
          resolve(r)
        },
        fail: (err) => {
          if (task.settled) return
          task.settled = true
          reject(err)
        },
      }
      this.submit(task, timeoutMs)
    })
    if (response === 0) {
      // §11.15: the target closes the connection after a successful logout; do not wait long.
      const t = setTimeout(() => this.destroy(), 2000)
      await this.closedPromise
      clearTimeout(t)
    }
    return response
  }

  /** Wait until no task is outstanding (or the timeout passes). */
  async drain(timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs
    while ([...this.tasks.values()].some((t) => !t.settled) && Date.now() < until && this.phase === 'full') {
      await new Promise((r) => setTimeout(r, 5))
    }
  }

  /** Close the TCP connection (FIN); pending commands fail with INITIATOR_CLOSED. */
  async close(): Promise<void> {
    const socket = this.socket
    if (!socket || this.phase === 'closed' || this.phase === 'idle') {
      this.shut(undefined)
      return
    }
    this.localClose = true
    socket.end()
    const t = setTimeout(() => socket.destroy(), 2000)
    await this.closedPromise
    clearTimeout(t)
  }

  /** Drop the connection at once (RST). */
  destroy(): void {
    this.socket?.destroy()
    this.shut(undefined)
  }

  /** Enter the closed phase once: fail every task, tell listeners. */
  private shut(reason: Error | undefined): void {
    if (this.phase === 'closed') return
    const wasLoggedOut = this.phase === 'logout'
    this.phase = 'closed'
    this.closeError = reason
    if (this.socket && !this.socket.destroyed) this.socket.destroy()
    const why = wasLoggedOut ? 'connection closed after logout' : reason ? `connection closed: ${reason.message}` : 'connection closed'
    const all = new Set<Task>([...this.tasks.values(), ...this.queue])
    this.tasks.clear()
    this.queue.length = 0
    for (const task of all) {
      if (task.timer) clearTimeout(task.timer)
      task.fail(new InitiatorClosedError(why, task.request, task.sent, { cause: reason }))
    }
    this.scsiInFlight = 0
    this.emit('close', reason)
    this.resolveClosed(reason)
  }
}

/** A random-type ISID (RFC 7143 §11.12.5: T=10b in the top two bits). */
export function randomIsid(): string {
  const b = randomBytes(6)
  b[0] = 0x80 | (b[0]! & 0x3f)
  return b.toString('hex')
}

/** A private copy of a received PDU (the parser's views die after the callback). */
function detach(pdu: TargetPdu): TargetPdu {
  const copy = { ...pdu, data: Buffer.from(pdu.data) }
  if (copy.opcode === Opcode.ScsiResponse && copy.sense) copy.sense = Buffer.from(copy.sense)
  return copy
}

