export type StorageErrorCode =
  /** The file does not exist and no size was configured to create it with. */
  | 'MISSING_SIZE'
  /** The file does not exist and the LU is read-only (nothing to create). */
  | 'MISSING_READ_ONLY'
  /** The existing file is larger than the configured size: shrinking would lose data. */
  | 'SHRINK_REFUSED'
  /** The existing file is smaller than the configured size but the LU is read-only. */
  | 'GROW_READ_ONLY'
  /** The configured size is larger than the block device. */
  | 'DEVICE_TOO_SMALL'
  /** The block device is in use (mounted, or opened exclusively by someone else). */
  | 'DEVICE_BUSY'
  /** The block device size could not be read from sysfs. */
  | 'SIZE_UNKNOWN'
  /** Neither a regular file nor a block device. */
  | 'UNSUPPORTED_TYPE'
  /** A size that is not a positive safe integer, or a backend of size 0. */
  | 'INVALID_SIZE'
  /** An I/O request outside [0, sizeBytes). The engine validates first; this is a safety net. */
  | 'OUT_OF_RANGE'
  /** A write on a backend opened read-only. */
  | 'READ_ONLY'
  /** An I/O request after close(). */
  | 'CLOSED'

/** Every failure the storage layer decides itself; OS errors (EIO, ENOSPC, ...) pass through. */
export class StorageError extends Error {
  readonly code: StorageErrorCode
  readonly path: string

  constructor(code: StorageErrorCode, path: string, message: string, options?: { cause?: unknown }) {
    super(`${path}: ${message}`, options)
    this.name = 'StorageError'
    this.code = code
    this.path = path
  }
}

/** OUT_OF_RANGE for an I/O request not inside [0, sizeBytes) of the device at `path`, else undefined. */
export function outOfRange(path: string, offset: number, length: number, sizeBytes: number): StorageError | undefined {
  if (Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0 && offset + length <= sizeBytes) {
    return undefined
  }
  return new StorageError('OUT_OF_RANGE', path, `I/O of ${length} bytes at ${offset} outside 0..${sizeBytes}`)
}
