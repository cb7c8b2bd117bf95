// Storage backends: BlockDevice implementations the SCSI engine runs on.

export { openBackend, FileBackend, blockDeviceSize, splitDevice, type BackendKind, type BackendOptions } from './file-backend.js'
export { StorageError, type StorageErrorCode } from './errors.js'
