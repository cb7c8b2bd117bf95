// A direct-access block device logical unit (SBC-3) over a BlockDevice.
//
// execute() is the single place where errors become CHECK CONDITION: handlers throw ScsiError
// (→ its sense data) or anything else (→ HARDWARE ERROR / INTERNAL TARGET FAILURE, logged).

import { checkControlByte } from './cdb.js'
import type { LuContext, ScsiLogger } from './context.js'
import { completeIdentity, validateIdentity, type LuIdentity, type LuIdentityInput } from './identity.js'
import { buildVpdPages, standardInquiry } from './inquiry.js'
import { ModePages } from './mode-pages.js'
import { exemptFromUnitAttention, lookupCommand } from './opcodes.js'
import { Asc, ScsiError, internalTargetFailure, invalidFieldInCdb } from './sense.js'
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
  /** Writes fail with DATA PROTECT / WRITE PROTECTED; MODE SENSE reports WP. */
  readOnly?: boolean
  /** Initial (and default) WCE of the caching mode page. When WCE=0 every write is FUA. */
  writeCache: boolean
  /** LUNs of the target, for REPORT LUNS. Default: this LUN only. */
  lunsOfTarget?: () => number[]
  /** Physical block size reported in READ CAPACITY (16) and Block Limits. Default: blockSize. */
  physicalBlockSize?: number
  /** MAXIMUM TRANSFER LENGTH in bytes (rounded down to blocks). Default 8 MiB. */
  maxTransferBytes?: number
  /** OPTIMAL TRANSFER LENGTH in bytes (rounded down to blocks). Default 0: not reported. */
  optimalTransferBytes?: number
  log?: ScsiLogger
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

const consoleLogger: ScsiLogger = {
  error: (msg, meta) => console.error(msg, meta ?? ''),
  warn: (msg, meta) => console.warn(msg, meta ?? ''),
}

function log2(n: number): number {
  return 31 - Math.clz32(n)
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0
}

export class DiskLogicalUnit implements LogicalUnit, LuContext {
  readonly lun: number
  readonly blockSize: number
  readonly blockShift: number
  readonly capacityBlocks: number
  readonly physicalBlockExponent: number
  readonly maxTransferBlocks: number
  readonly optimalTransferBlocks: number
  readonly device: BlockDevice
  readonly identity: LuIdentity
  readonly readOnly: boolean
  readonly modes: ModePages
  readonly unitAttentions = new UnitAttentions()
  readonly standardInquiry: Buffer
  readonly vpdPages: ReadonlyMap<number, Buffer>
  readonly log: ScsiLogger
  private readonly luns: () => number[]

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
    const physical = opts.physicalBlockSize ?? bs
    if (!isPowerOfTwo(physical) || physical < bs || physical / bs > 1 << 15) {
      throw new LuConfigError(`physical block size ${physical} must be a power of two ≥ ${bs}`)
    }
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
    this.device = opts.device
    this.identity = identity
    this.readOnly = opts.readOnly ?? false
    this.modes = new ModePages({ writeCache: opts.writeCache })
    this.log = opts.log ?? consoleLogger
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

  modeParametersChanged(by: Nexus): void {
    this.unitAttentions.establishForOthers(Asc.ModeParametersChanged, by)
  }

  /** Current write cache policy (caching page WCE). */
  get writeCacheEnabled(): boolean {
    return this.modes.writeCacheEnabled
  }

  planDataOut(cdb: Buffer, _nexus: Nexus): DataOutPlan {
    try {
      const def = lookupCommand(cdb)
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
      if (exemptFromUnitAttention(cdb[0])) {
        this.unitAttentions.touch(req.nexus)
      } else {
        const ua = this.unitAttentions.take(req.nexus)
        if (ua !== undefined) return unitAttentionResult(ua)
      }
      const def = lookupCommand(cdb)
      if (cdb.length < def.cdbLength) throw invalidFieldInCdb(0, 7)
      checkControlByte(cdb, def.cdbLength)
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
  }

  nexusLost(nexus: Nexus): void {
    this.unitAttentions.drop(nexus)
  }

  private failure(e: unknown, cdb: Buffer): ScsiResult {
    if (e instanceof ScsiError) return e.toResult()
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
