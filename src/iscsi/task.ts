// One SCSI command's life on a connection: collecting its Data-Out (immediate, unsolicited,
// then R2T-solicited), waiting its turn, running, answering. Pure bookkeeping: the connection
// decides what to send; this file only says what is owed.

import type { LogicalUnit, DataOutPlan, ScsiResult } from '../scsi/types.js'
import { BufferSlab } from '../wire/buffer-slab.js'

export type TaskState = 'collecting' | 'ready' | 'running' | 'done' | 'aborted'

export interface OutstandingR2T {
  ttt: number
  r2tSN: number
  offset: number
  length: number
  received: number
  /** DataSN restarts at 0 for each R2T's sequence (RFC 7143 §11.7.5). */
  nextDataSN: number
}

export class ScsiTask {
  state: TaskState = 'collecting'
  /** Bytes of Data-Out the initiator will send in all (ExpectedDataTransferLength for writes). */
  readonly dataOut: Buffer
  /** Bytes landed in dataOut so far. */
  received = 0
  /** Unsolicited bytes (immediate + Data-Out with TTT 0xffffffff) still to come. */
  unsolicitedPending: number
  /** Next byte offset not yet covered by immediate, unsolicited or an R2T. */
  nextSolicitOffset: number
  /** How far R2Ts may solicit: less than dataOut.length when the CDB was refused up front. */
  solicitLimit: number
  nextR2TSN = 0
  /** Outstanding R2Ts by TTT; most commands never have one, so the map comes with the first. */
  private r2tMap: Map<number, OutstandingR2T> | undefined
  dataInSN = 0
  /** Settles when the task's storage work is over (whatever the outcome). */
  finished: Promise<void> = Promise.resolve()
  /** Answer decided before execution (a refused CDB): sent once the unsolicited data is in. */
  earlyResult: ScsiResult | undefined
  /** Residual fixed at arrival (SPDTL > EDTL on a write: FCP-4 overflow). */
  residualOverride: Residual | undefined
  /** The unsolicited sequence's next DataSN and buffer offset. */
  unsolicitedDataSN = 0
  unsolicitedOffset = 0
  readonly startedAt: number

  constructor(
    readonly itt: number,
    readonly cmdSN: number,
    readonly immediate: boolean,
    readonly lunId: number,
    readonly lu: LogicalUnit | undefined,
    readonly cdb: Buffer,
    readonly expectedLength: number,
    readonly isRead: boolean,
    readonly isWrite: boolean,
    readonly plan: DataOutPlan,
    /** Bytes the initiator may send without an R2T: FirstBurstLength or 0, capped by EDTL. */
    unsolicitedAllowance: number,
    now: number,
    /**
     * All of the Data-Out, when it came as immediate data the task may keep (see
     * ScsiCommand.dataRetainable): used as it is instead of copied.
     */
    wholeImmediateData?: Buffer,
  ) {
    const outLength = isWrite ? expectedLength : 0
    this.dataOut =
      outLength === 0 ? EMPTY : wholeImmediateData?.length === outLength ? wholeImmediateData : dataOutBuffers.take(outLength)
    this.unsolicitedPending = Math.min(unsolicitedAllowance, outLength)
    this.nextSolicitOffset = this.unsolicitedPending
    // Solicit no more than the CDB will use: surplus EDTL is only taken if sent unsolicited.
    this.solicitLimit = plan.kind === 'out' ? Math.min(outLength, plan.bytes) : 0
    this.earlyResult = plan.kind === 'fail' ? plan.result : undefined
    this.startedAt = now
  }

  get r2ts(): ReadonlyMap<number, OutstandingR2T> {
    return this.r2tMap ?? NO_R2TS
  }

  addR2T(r2t: OutstandingR2T): void {
    ;(this.r2tMap ??= new Map()).set(r2t.ttt, r2t)
  }

  deleteR2T(ttt: number): void {
    this.r2tMap?.delete(ttt)
  }

  clearR2Ts(): void {
    this.r2tMap?.clear()
  }

  /** Everything the task will ever receive has arrived. */
  get dataComplete(): boolean {
    return this.unsolicitedPending === 0 && this.r2ts.size === 0 && this.nextSolicitOffset >= this.solicitLimit
  }
}

const EMPTY = Buffer.alloc(0)
const NO_R2TS: ReadonlyMap<number, OutstandingR2T> = new Map()
/** Data-Out buffers of every connection: a task keeps its buffer about as long as it runs. */
const dataOutBuffers = new BufferSlab()

/** Residual bookkeeping for the SCSI Response / final Data-In (RFC 7143 §11.4.5). */
export interface Residual {
  overflow: boolean
  underflow: boolean
  count: number
}

export function residualOf(expected: number, wanted: number): Residual {
  if (wanted > expected) return { overflow: true, underflow: false, count: wanted - expected }
  if (wanted < expected) return { overflow: false, underflow: true, count: expected - wanted }
  return NO_RESIDUAL
}

const NO_RESIDUAL: Residual = { overflow: false, underflow: false, count: 0 }
