// Sessions and the registry that finds, numbers and reinstates them (RFC 7143 §4.3, §6.3.5).
// A session owns the command window (ExpCmdSN/MaxCmdSN) and the task set; its connection
// (MaxConnections=1) owns StatSN and the socket.

import type { SessionParams } from './login.js'
import type { Nexus } from '../scsi/types.js'
import type { Target } from './target.js'
import { snAdd } from './serial.js'

export interface SessionOwner {
  /** Close the connection and abort its tasks; resolves once in-flight storage work is over. */
  shutdown(reason: string): Promise<void>
  /** Abort this session's tasks on one LUN (PREEMPT AND ABORT from another initiator). */
  abortLun(lun: number): Promise<void>
}

export class Session {
  expCmdSN: number
  /** Commands accepted but not yet answered: they hold the window shut (flow control). */
  activeCommands = 0
  readonly createdAt = Date.now()
  commands = 0
  readBytes = 0
  writeBytes = 0
  owner: SessionOwner | undefined
  remote = ''
  local = ''

  constructor(
    readonly tsih: number,
    readonly params: SessionParams,
    readonly isid: string,
    readonly target: Target | undefined,
    readonly nexus: Nexus | undefined,
    initialCmdSN: number,
    readonly queueDepth: number,
  ) {
    this.expCmdSN = initialCmdSN >>> 0
  }

  get key(): string {
    return sessionKey(this.params.initiatorName, this.isid, this.params.targetName ?? '')
  }

  /** RFC 7143 §4.2.2.1: the window narrows as commands queue, so a busy target pushes back. */
  get maxCmdSN(): number {
    const room = Math.max(0, this.queueDepth - this.activeCommands)
    return snAdd(this.expCmdSN, room - 1)
  }
}

export function sessionKey(initiatorName: string, isid: string, targetName: string): string {
  return `${initiatorName}\u0000${isid}\u0000${targetName}`
}

export class SessionRegistry {
  private readonly byKey = new Map<string, Session>()
  private readonly byTsih = new Map<number, Session>()
  private nextTsih = 1

  constructor(private readonly maxSessions: number) {}

  get size(): number {
    return this.byKey.size
  }

  all(): Session[] {
    return [...this.byKey.values()]
  }

  findByTsih(tsih: number): Session | undefined {
    return this.byTsih.get(tsih)
  }

  find(initiatorName: string, isid: string, targetName: string): Session | undefined {
    return this.byKey.get(sessionKey(initiatorName, isid, targetName))
  }

  /** Whether a new session fits; a reinstatement replaces one and always fits. */
  hasRoomFor(initiatorName: string, isid: string, targetName: string): boolean {
    return this.byKey.size < this.maxSessions || this.find(initiatorName, isid, targetName) !== undefined
  }

  allocateTsih(): number {
    // TSIH 0 is reserved for "new session" (RFC 7143 §11.12.6); skip it and any in use.
    for (;;) {
      const tsih = this.nextTsih
      this.nextTsih = this.nextTsih >= 0xffff ? 1 : this.nextTsih + 1
      if (!this.byTsih.has(tsih)) return tsih
    }
  }

  add(session: Session): void {
    this.byKey.set(session.key, session)
    this.byTsih.set(session.tsih, session)
  }

  remove(session: Session): void {
    if (this.byKey.get(session.key) === session) this.byKey.delete(session.key)
    if (this.byTsih.get(session.tsih) === session) this.byTsih.delete(session.tsih)
  }
}

export function nexusOf(initiatorName: string, isid: string, targetName: string, tpgt: number): Nexus {
  return {
    initiatorName,
    isid,
    targetName,
    tpgt,
    key: `${initiatorName},i,0x${isid},${targetName},t,${tpgt}`,
  }
}
