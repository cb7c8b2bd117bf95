// The secondary's journal of committed-not-completed copies, and replay onto storage.

export {
  Journal,
  compareEntries,
  JOURNAL_FILE,
  JOURNAL_LOCK_FILE,
  DEFAULT_MAX_BYTES,
  type JournalOptions,
  type OpenOptions,
  type JournalStats,
  type LoadInfo,
  type ReplayOptions,
} from './journal.js'
export { applyToBackends, applyEntry, type ApplyResult } from './apply.js'
export { JournalError, isJournalError, type JournalErrorCode, type JournalErrorDetails } from './errors.js'
export { FORMAT_VERSION, MIN_FORMAT_VERSION, entryRecordLength } from './format.js'
export { DISCARD_ENTRY_BYTES, discardChecksum, entryChecksum, entryCharge, entryDataBytes, entryLength } from './entry.js'
