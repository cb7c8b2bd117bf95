// Typed journal errors. Callers branch on `code`; the message is for people.

export type JournalErrorCode =
  /** An entry's data does not match its CRC32C (on receipt, or before replay). */
  | 'JOURNAL_BAD_CHECKSUM'
  /** Accepting the entry would take the journal beyond `maxBytes`. */
  | 'JOURNAL_FULL'
  /** An entry whose fields cannot be stored (negative seq, non-integer offset, huge strings...). */
  | 'JOURNAL_INVALID_ENTRY'
  /** The journal file is damaged before its end (a record fails its check and data follows it). */
  | 'JOURNAL_CORRUPT'
  /** The journal file was written by a format version this build does not read. */
  | 'JOURNAL_UNSUPPORTED_VERSION'
  /** `Journal.open` without `create` and there is no journal in the directory. */
  | 'JOURNAL_NOT_FOUND'
  /** Another live process holds the journal directory. */
  | 'JOURNAL_LOCKED'
  /** A change on a journal opened read-only. */
  | 'JOURNAL_READ_ONLY'
  /** A change after close(). */
  | 'JOURNAL_CLOSED'
  /** Appending to the journal file failed; the journal refuses further copies until reopened. */
  | 'JOURNAL_IO_FAILED'
  /** Replay onto storage: no backend for an entry's LUN (nothing was applied). */
  | 'JOURNAL_NO_BACKEND'
  /** Replay onto storage: a copy lies outside its LUN's backend (nothing was applied). */
  | 'JOURNAL_OUT_OF_RANGE'

export interface JournalErrorDetails {
  /** The journal file, when the error is about one. */
  path?: string
  /** Byte offset of the damaged record in the journal file. */
  offset?: number
  epoch?: number
  seq?: number
  cause?: unknown
}

export class JournalError extends Error {
  readonly code: JournalErrorCode
  readonly path: string | undefined
  readonly offset: number | undefined
  readonly epoch: number | undefined
  readonly seq: number | undefined

  constructor(code: JournalErrorCode, message: string, details: JournalErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.name = 'JournalError'
    this.code = code
    this.path = details.path
    this.offset = details.offset
    this.epoch = details.epoch
    this.seq = details.seq
  }
}

export function isJournalError(e: unknown, code?: JournalErrorCode): e is JournalError {
  return e instanceof JournalError && (code === undefined || e.code === code)
}
