// Public surface of the SCSI command engine.

export * from './types.js'
export { DiskLogicalUnit, LuConfigError, DEFAULT_MAX_TRANSFER_BYTES, type DiskLogicalUnitOptions } from './disk-lu.js'
export type { LuContext, ScsiLogger } from './context.js'
export {
  deriveIdentity,
  validateIdentity,
  IdentityError,
  completeIdentity,
  DEFAULT_COMPANY_ID,
  DEFAULT_VENDOR,
  DEFAULT_PRODUCT,
  DEFAULT_REVISION,
  type LuIdentity,
  type LuIdentityInput,
  type DerivedIdentity,
  type DeriveOptions,
} from './identity.js'
export { COMMANDS, lookupCommand, type CommandDef } from './opcodes.js'
export {
  ScsiError,
  SenseKey,
  Asc,
  buildSense,
  checkCondition,
  decodeSense,
  FIXED_SENSE_LENGTH,
  type DecodedSense,
  type SenseDetails,
} from './sense.js'
export { UnitAttentions, unitAttentionSense } from './unit-attention.js'
export { targetPortName } from './inquiry.js'
export {
  ReservationState,
  PrType,
  ProutAction,
  portMatches,
  transportId,
  parseTransportId,
  type Access,
  type PortIds,
  type ProutRequest,
  type ProutOutcome,
  type ReservationSnapshot,
} from './reservations.js'
export type { ReservationStore } from './reservation-store.js'
export { canDiscard, type DiscardCapable, type ByteRange } from './provisioning.js'
