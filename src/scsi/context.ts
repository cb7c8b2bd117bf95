// What command handlers see of a logical unit. DiskLogicalUnit implements it; handlers depend on
// this interface only, which keeps the opcode table free of import cycles.

import type { DeallocatedMap } from './deallocated-map.js'
import type { LuIdentity } from './identity.js'
import type { MediumState } from './commands/medium.js'
import type { SanitizeState } from './commands/sanitize.js'
import type { CopyRegistry } from './commands/xcopy.js'
import type { BlockLimits } from './limits.js'
import type { ModePages } from './mode-pages.js'
import type { RangeLock } from './range-lock.js'
import type { ProutOutcome, ReservationState } from './reservations.js'
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
  /** Block Limits VPD values, enforced by the handlers. */
  readonly limits: BlockLimits
  /** Orders atomic commands (COMPARE AND WRITE …) against overlapping writes. */
  readonly locks: RangeLock
  /** Blocks deallocated and not written since: what GET LBA STATUS reports. */
  readonly deallocated: DeallocatedMap
  readonly identity: LuIdentity
  readonly readOnly: boolean
  /** SANITIZE OVERWRITE is offered (DiskLogicalUnitOptions.sanitizeOverwrite). */
  readonly sanitizeOverwrite: boolean
  readonly modes: ModePages
  readonly unitAttentions: UnitAttentions
  /** Standard INQUIRY data, built once. */
  readonly standardInquiry: Buffer
  /** VPD pages by page code, built once. */
  readonly vpdPages: ReadonlyMap<number, Buffer>
  /** Persistent and SPC-2 reservations of this unit. */
  readonly reservations: ReservationState
  /**
   * Run one change of the reservation state, serialized with every other change; when it
   * changed something, the new state is persisted/replicated and the unit attentions it owes
   * are established before the returned promise resolves. `change` throws to fail the command.
   */
  changeReservations(by: Nexus, change: (pr: ReservationState) => ProutOutcome | boolean): Promise<void>
  /** Removable medium: present or ejected, and who prevents its removal. */
  readonly medium: MediumState
  /** SANITIZE in progress / failure mode. */
  readonly sanitize: SanitizeState
  /** EXTENDED COPY operations, for RECEIVE COPY RESULTS. */
  readonly copies: CopyRegistry
  /** Another logical unit of the node with this NAA designator (EXTENDED COPY targets). */
  findCopyTarget(naa: Buffer): LuContext | undefined
  lunsOfTarget(): number[]
  /** Establish MODE PARAMETERS CHANGED for every nexus but `by`. */
  modeParametersChanged(by: Nexus): void
  readonly log: ScsiLogger
}
