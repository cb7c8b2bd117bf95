// Storage backends: BlockDevice implementations the SCSI engine runs on.

export {
  openBackend,
  FileBackend,
  blockDeviceSize,
  splitDevice,
  punchHoles,
  PUNCH_MIN_BYTES,
  PUNCH_ALIGN,
  type BackendKind,
  type BackendOptions,
  type ByteRange,
} from './file-backend.js'
export { StorageError, type StorageErrorCode } from './errors.js'
export { FileReservationStore, reservationFileFor } from './reservation-file.js'
