// What command handlers see of a logical unit. DiskLogicalUnit implements it; handlers depend on
// this interface only, which keeps the opcode table free of import cycles.

import type { LuIdentity } from './identity.js'
import type { ModePages } from './mode-pages.js'
import type { BlockDevice, Nexus } from './types.js'
import type { UnitAttentions } from './unit-attention.js'

export interface ScsiLogger {
  error(msg: string, meta?: Record<string, unknown>): void
  warn(msg: string, meta?: Record<string, unknown>): void
}

export interface LuContext {
  readonly lun: number
  readonly blockSize: number
  /** log2(blockSize). */
  readonly blockShift: number
  /** Number of logical blocks (device size / block size, rounded down). */
  readonly capacityBlocks: number
  /** log2(physical block size / logical block size), reported in READ CAPACITY (16). */
  readonly physicalBlockExponent: number
  /** MAXIMUM TRANSFER LENGTH in blocks (Block Limits VPD); larger transfers are rejected. */
  readonly maxTransferBlocks: number
  /** OPTIMAL TRANSFER LENGTH in blocks (Block Limits VPD), 0 = not reported. */
  readonly optimalTransferBlocks: number
  readonly device: BlockDevice
  readonly identity: LuIdentity
  readonly readOnly: boolean
  readonly modes: ModePages
  readonly unitAttentions: UnitAttentions
  /** Standard INQUIRY data, built once. */
  readonly standardInquiry: Buffer
  /** VPD pages by page code, built once. */
  readonly vpdPages: ReadonlyMap<number, Buffer>
  lunsOfTarget(): number[]
  /** Establish MODE PARAMETERS CHANGED for every nexus but `by`. */
  modeParametersChanged(by: Nexus): void
  readonly log: ScsiLogger
}
