// A direct-access block device logical unit (SBC-3) over a BlockDevice.
//
// execute() is the single place where errors become CHECK CONDITION: handlers throw ScsiError
// (→ its sense data) or anything else (→ HARDWARE ERROR / INTERNAL TARGET FAILURE, logged).

import { DeallocatedMap } from './deallocated-map.js'
import { canDiscard, type DiscardCapable } from './provisioning.js'
import { checkControlByte } from './cdb.js'
import { MediumState, mediumNotPresent } from './commands/medium.js'
import { SANITIZE_OPCODE, SanitizeState } from './commands/sanitize.js'
import { CopyRegistry } from './commands/xcopy.js'
import type { LuContext, ScsiLogger } from './context.js'
import { completeIdentity, validateIdentity, type LuIdentity, type LuIdentityInput } from './identity.js'
import { buildVpdPages, standardInquiry } from './inquiry.js'
import { defaultLimits, defaultPhysicalBlockSize, physicalBlockSizeProblem, type BlockLimits } from './limits.js'
import { ModePages } from './mode-pages.js'
import { RangeLock } from './range-lock.js'
import { lookupCommand, type CommandDef } from './opcodes.js'
import type { ReservationStore } from './reservation-store.js'
import { portMatches, ReservationState, type PortIds, type ProutOutcome } from './reservations.js'
import {
  Asc,
  ReservationConflictError,
  ScsiError,
  internalTargetFailure,
  invalidFieldInCdb,
  sanitizeFailed,
  sanitizeInProgress,
} from './sense.js'
import {
  ScsiStatus,
  type BlockDevice,
  type DataOutPlan,
  type LogicalUnit,
  type Nexus,
  type ScsiRequest,
  type ScsiResult,
} from './types.js'
import { UnitAttentions, unitAttentionSense, type UaCode } from './unit-attention.js'

export interface DiskLogicalUnitOptions {
  lun: number
  /** Logical block size: 512 (default) or 4096. */
  blockSize?: number
  device: BlockDevice
  /** vendor/product/revision default to 'ISCSI-HA' / 'VIRTUAL-DISK' / '0001'. */
  identity: LuIdentityInput
  /**
   * Removable medium (INQUIRY RMB=1): START STOP UNIT ejects and loads it, PREVENT ALLOW MEDIUM
   * REMOVAL holds it. Default false: a fixed disk.
   */
  removable?: boolean
  /** Writes fail with DATA PROTECT / WRITE PROTECTED; MODE SENSE reports WP. */
  readOnly?: boolean
  /** Initial (and default) WCE of the caching mode page. When WCE=0 every write is FUA. */
  writeCache: boolean
  /** LUNs of the target, for REPORT LUNS. Default: this LUN only. */
  lunsOfTarget?: () => number[]
  /**
   * Physical block size: blockSize × a power of two, at most 64 KiB. Reported in READ CAPACITY
   * (16) (LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT) and in the Block Limits VPD page (optimal
   * transfer length and unmap granularities). Default: defaultPhysicalBlockSize(blockSize), the
   * block size itself (see limits.ts for why); 4096 with 512-byte blocks reports a 512e disk.
   */
  physicalBlockSize?: number
  /**
   * Offer SANITIZE OVERWRITE (service action 01h). Default false: OVERWRITE writes every block,
   * so on a thin-provisioned LUN one host command allocates all of it in the storage pool; an
   * administrator opts in (config `sanitize_overwrite`). Without it the service action is not
   * reported by REPORT SUPPORTED OPERATION CODES and is refused as unsupported (opcodes.ts).
   * BLOCK ERASE is always offered.
   */
  sanitizeOverwrite?: boolean
  /** MAXIMUM TRANSFER LENGTH in bytes (rounded down to blocks). Default 8 MiB. */
  maxTransferBytes?: number
  /** OPTIMAL TRANSFER LENGTH in bytes (rounded down to blocks). Default 0: not reported. */
  optimalTransferBytes?: number
  log?: ScsiLogger
  /**
   * Where reservation state is saved on every change (APTPL file, HA replication). Without it
   * reservations live in memory only and REPORT CAPABILITIES still offers APTPL.
   */
  reservationStore?: ReservationStore
  /**
   * EXTENDED COPY between units: the unit of the node whose NAA designator is `naa`. Without
   * it a unit copies within itself only.
   */
  copyTargets?: (naa: Buffer) => LuContext | undefined
  /** PREEMPT AND ABORT: the transport should abort the tasks of these initiator ports. */
  onPreempted?: (ports: PortIds[]) => void
}

export class LuConfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'LuConfigError'
  }
}

export const DEFAULT_MAX_TRANSFER_BYTES = 8 * 1024 * 1024

const NONE: DataOutPlan = Object.freeze({ kind: 'none' })
const TASK_ABORTED: ScsiResult = Object.freeze({ status: ScsiStatus.TaskAborted })
const RESERVATION_CONFLICT: ScsiResult = Object.freeze({ status: ScsiStatus.ReservationConflict })

const consoleLogger: ScsiLogger = {
  error: (msg, meta) => console.error(msg, meta ?? ''),
  warn: (msg, meta) => console.warn(msg, meta ?? ''),
}

function log2(n: number): number {
  return 31 - Math.clz32(n)
}

export class DiskLogicalUnit implements LogicalUnit, LuContext {
  readonly lun: number
  readonly blockSize: number
  readonly blockShift: number
  capacityBlocks: number
  readonly physicalBlockExponent: number
  readonly maxTransferBlocks: number
  readonly optimalTransferBlocks: number
  readonly device: BlockDevice
  readonly deallocated = new DeallocatedMap()
  readonly limits: BlockLimits
  readonly locks = new RangeLock()
  readonly identity: LuIdentity
  readonly readOnly: boolean
  readonly sanitizeOverwrite: boolean
  readonly modes: ModePages
  readonly unitAttentions = new UnitAttentions()
  readonly standardInquiry: Buffer
  readonly vpdPages: ReadonlyMap<number, Buffer>
  readonly log: ScsiLogger
  readonly reservations: ReservationState
  readonly copies = new CopyRegistry()
  readonly sanitize = new SanitizeState()
  readonly medium: MediumState
  private readonly copyTargets: ((naa: Buffer) => LuContext | undefined) | undefined
  private readonly luns: () => number[]
  private readonly reservationStore: ReservationStore | undefined
  private readonly onPreempted: ((ports: PortIds[]) => void) | undefined
  private reservationChain: Promise<unknown> = Promise.resolve()

  constructor(opts: DiskLogicalUnitOptions) {
    const bs = opts.blockSize ?? 512
    if (bs !== 512 && bs !== 4096) throw new LuConfigError(`block size ${bs} not supported (512 or 4096)`)
    if (!Number.isInteger(opts.lun) || opts.lun < 0 || opts.lun > 0x3fff) {
      throw new LuConfigError(`LUN ${opts.lun} out of range 0..16383`)
    }
    const identity = completeIdentity(opts.identity)
    validateIdentity(identity)
    const capacity = Math.floor(opts.device.sizeBytes / bs)
    if (capacity < 1) throw new LuConfigError(`device of ${opts.device.sizeBytes} bytes holds no ${bs}-byte block`)
    const physical = opts.physicalBlockSize ?? defaultPhysicalBlockSize(bs)
    const problem = physicalBlockSizeProblem(bs, physical)
    if (problem !== undefined) throw new LuConfigError(problem)
    const maxBlocks = Math.floor((opts.maxTransferBytes ?? DEFAULT_MAX_TRANSFER_BYTES) / bs)
    if (maxBlocks < 1 || maxBlocks > 0xffffffff) throw new LuConfigError('maximum transfer length out of range')
    const optBlocks = Math.floor((opts.optimalTransferBytes ?? 0) / bs)
    if (optBlocks < 0 || optBlocks > maxBlocks) throw new LuConfigError('optimal transfer length out of range')

    this.lun = opts.lun
    this.blockSize = bs
    this.blockShift = log2(bs)
    this.capacityBlocks = capacity
    this.physicalBlockExponent = log2(physical / bs)
    this.maxTransferBlocks = maxBlocks
    this.optimalTransferBlocks = optBlocks
    // Every write through the unit maps its blocks again (see DeallocatedMap).
    this.device = trackWrites(opts.device, this.deallocated, this.blockSize)
    this.limits = defaultLimits(bs, maxBlocks, physical / bs)
    this.identity = identity
    this.readOnly = opts.readOnly ?? false
    this.sanitizeOverwrite = opts.sanitizeOverwrite ?? false
    this.modes = new ModePages({ writeCache: opts.writeCache })
    this.log = opts.log ?? consoleLogger
    this.reservations = new ReservationState(identity.relativeTargetPortId)
    this.reservationStore = opts.reservationStore
    this.onPreempted = opts.onPreempted
    this.copyTargets = opts.copyTargets
    this.medium = new MediumState(opts.removable ?? false)
    const lun = opts.lun
    this.luns = opts.lunsOfTarget ?? (() => [lun])
    this.standardInquiry = standardInquiry(this)
    this.vpdPages = buildVpdPages(this)
    if (opts.device.sizeBytes % bs !== 0) {
      this.log.warn('device size is not a multiple of the block size; the tail is not addressable', {
        lun,
        sizeBytes: opts.device.sizeBytes,
        blockSize: bs,
      })
    }
  }

  lunsOfTarget(): number[] {
    return this.luns()
  }

  findCopyTarget(naa: Buffer): LuContext | undefined {
    return this.copyTargets?.(naa)
  }

  /** Load the saved reservation state (APTPL), if the store has one. Call once, before serving. */
  async loadReservations(): Promise<void> {
    const saved = await this.reservationStore?.load()
    if (saved !== undefined) this.reservations.restore({ ...saved, legacyHolder: null })
  }

  changeReservations(by: Nexus, change: (pr: ReservationState) => ProutOutcome | boolean): Promise<void> {
    const run = async (): Promise<void> => {
      const before = this.reservationStore === undefined ? undefined : this.reservations.snapshot()
      const out = change(this.reservations)
      const outcome: ProutOutcome = typeof out === 'boolean' ? { changed: out, unitAttentions: [], preempted: [] } : out
      if (!outcome.changed) return
      if (this.reservationStore !== undefined) {
        try {
          await this.reservationStore.save(this.reservations.snapshot())
        } catch (e) {
          this.reservations.restore(before!)
          throw e
        }
      }
      for (const ua of outcome.unitAttentions) {
        this.unitAttentions.establishWhere(ua.code, (n) => portMatches(ua.to, n), by)
      }
      if (outcome.preempted.length > 0) this.onPreempted?.(outcome.preempted)
    }
    const p = this.reservationChain.then(run)
    this.reservationChain = p.catch(() => undefined)
    return p
  }

  /** A change made outside a command (reset, nexus loss): saved in the background. */
  private reservationsChangedBehind(): void {
    const store = this.reservationStore
    if (store === undefined) return
    const p = this.reservationChain.then(() => store.save(this.reservations.snapshot()))
    this.reservationChain = p.catch((e: unknown) => {
      this.log.error('saving reservation state failed', { lun: this.lun, error: String(e) })
    })
  }

  /**
   * The device grew (a LUN grown in the config; the storage already has the new size): the
   * new capacity is served and every I_T nexus gets CAPACITY DATA HAS CHANGED. Returns false
   * when the capacity is what it was. A device that shrank is refused (data would vanish).
   */
  capacityChanged(): boolean {
    const blocks = Math.floor(this.device.sizeBytes / this.blockSize)
    if (blocks === this.capacityBlocks) return false
    if (blocks < this.capacityBlocks) throw new LuConfigError(`device shrank from ${this.capacityBlocks} to ${blocks} blocks`)
    this.capacityBlocks = blocks
    this.unitAttentions.establishForAll(Asc.CapacityDataHasChanged)
    return true
  }

  modeParametersChanged(by: Nexus): void {
    this.unitAttentions.establishForOthers(Asc.ModeParametersChanged, by)
  }

  /** Current write cache policy (caching page WCE). */
  get writeCacheEnabled(): boolean {
    return this.modes.writeCacheEnabled
  }

  planDataOut(cdb: Buffer, _nexus: Nexus): DataOutPlan {
    try {
      const def = lookupCommand(cdb, this)
      if (def.planOut === undefined) return NONE
      if (cdb.length < def.cdbLength) throw invalidFieldInCdb(0, 7)
      checkControlByte(cdb, def.cdbLength)
      const bytes = def.planOut(this, cdb)
      return bytes === 0 ? NONE : { kind: 'out', bytes }
    } catch (e) {
      return { kind: 'fail', result: this.failure(e, cdb) }
    }
  }

  async execute(req: ScsiRequest): Promise<ScsiResult> {
    const cdb = req.cdb
    if (req.signal?.aborted) return TASK_ABORTED
    try {
      // A pending unit attention is reported before anything else is checked, an unsupported
      // opcode included; the commands that do not report unit attentions leave them pending.
      let def: CommandDef | undefined
      let unsupported: unknown
      try {
        def = lookupCommand(cdb, this)
      } catch (e) {
        unsupported = e
      }
      if (def !== undefined && !def.reportsUnitAttention) {
        this.unitAttentions.touch(req.nexus)
      } else {
        const ua = this.unitAttentions.take(req.nexus)
        if (ua !== undefined) return unitAttentionResult(ua)
      }
      if (def === undefined) throw unsupported
      if (cdb.length < def.cdbLength) throw invalidFieldInCdb(0, 7)
      checkControlByte(cdb, def.cdbLength)
      if (this.reservations.conflicts(req.nexus, def.access)) return RESERVATION_CONFLICT
      if (def.needsMedium && !this.medium.present) throw mediumNotPresent()
      if ((this.sanitize.running || this.sanitize.failed) && def.access !== 'info') {
        // SBC-3 §4.11: while a sanitize runs only INQUIRY, REPORT LUNS, REQUEST SENSE (and the
        // REPORT SUPPORTED commands) are processed, the others learn how far it got. After a
        // failed one, medium access fails until EXIT FAILURE MODE or another sanitize that
        // completes (SANITIZE goes through: sanitize.ts applies the completion mode).
        if (this.sanitize.running) throw sanitizeInProgress(this.sanitize.progress)
        if (cdb[0] !== SANITIZE_OPCODE && def.access !== 'pr' && def.access !== 'status') throw sanitizeFailed()
      }
      return await def.run(this, req)
    } catch (e) {
      return this.failure(e, cdb)
    }
  }

  /**
   * Establishes a unit attention for every nexus, the issuer included (libiscsi's multipath reset
   * test expects the issuing path to see it too): LOGICAL UNIT RESET → 29h/03h BUS DEVICE RESET
   * FUNCTION OCCURRED; TARGET WARM RESET → 29h/00h POWER ON, RESET, OR BUS DEVICE RESET OCCURRED
   * (29h/02h names a parallel SCSI bus reset, which iSCSI does not have); TARGET COLD RESET →
   * 29h/01h POWER ON OCCURRED.
   * Mode parameters keep their current values: reverting WCE behind a host that changed it
   * could make it skip cache flushes.
   */
  reset(kind: 'lun' | 'warm' | 'cold', _by?: Nexus): void {
    const code =
      kind === 'lun'
        ? Asc.BusDeviceResetFunctionOccurred
        : kind === 'warm'
          ? Asc.PowerOnResetOrBusDeviceReset
          : Asc.PowerOnOccurred
    this.unitAttentions.establishReset(code)
    this.medium.reset()
    // SPC-2 reservations end with a reset; persistent reservations do not (SPC-4 §5.14.1).
    if (this.reservations.reset()) this.reservationsChangedBehind()
  }

  nexusLost(nexus: Nexus): void {
    this.unitAttentions.drop(nexus)
    this.copies.forget(nexus)
    this.medium.nexusLost(nexus)
    if (this.reservations.nexusLost(nexus)) this.reservationsChangedBehind()
  }

  private failure(e: unknown, cdb: Buffer): ScsiResult {
    if (e instanceof ScsiError) return e.toResult()
    if (e instanceof ReservationConflictError) return RESERVATION_CONFLICT
    this.log.error('internal error executing SCSI command', {
      lun: this.lun,
      opcode: cdb.length > 0 ? `0x${cdb[0].toString(16).padStart(2, '0')}` : 'none',
      error: e instanceof Error ? (e.stack ?? e.message) : String(e),
    })
    return internalTargetFailure()
  }
}

function unitAttentionResult(code: UaCode): ScsiResult {
  return { status: ScsiStatus.CheckCondition, sense: unitAttentionSense(code) }
}

/** The device as the handlers see it: writes clear the deallocated map for their blocks. */
function trackWrites(inner: BlockDevice, map: DeallocatedMap, blockSize: number): BlockDevice {
  const tracked: BlockDevice & Partial<DiscardCapable> = {
    get sizeBytes() {
      return inner.sizeBytes
    },
    read: (offset, length) => inner.read(offset, length),
    write: (offset, data, opts) => {
      if (map.size > 0) map.remove(Math.floor(offset / blockSize), Math.ceil(data.length / blockSize))
      return inner.write(offset, data, opts)
    },
    flush: () => inner.flush(),
    close: () => inner.close(),
  }
  if (canDiscard(inner)) tracked.discard = (ranges) => inner.discard(ranges)
  return tracked
}
