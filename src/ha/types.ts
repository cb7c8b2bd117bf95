// Contracts of the HA pair (METHOD.md): what the peer link carries, what the secondary's journal
// holds, and how the primary's write path asks for a mirrored commit. Each piece lives in its
// own folder (src/peer, src/journal, src/ha) and meets the others only through these shapes.

/** Which logical unit a copy belongs to. */
export interface LunKey {
  target: string
  lun: number
}

/** What every journal entry carries, whatever it does to its range. */
interface EntryFields {
  /** Primary-assigned, strictly increasing within an epoch; replay order. */
  seq: number
  epoch: number
  key: LunKey
  /** Byte offset on the LUN's storage. */
  offset: number
  /**
   * CRC32C, checked on receipt and before replay: of the data for a write, of the range for a
   * discard (src/journal/entry.ts, entryChecksum).
   */
  checksum: number
  /** The host's I_T nexus and task, for inspection (claim 20: the initiator's session). */
  initiator: string
  isid: string
  itt: number
  /** Wall-clock ms when the primary received the command (for `journal inspect` ages). */
  receivedAtMs: number
}

/** One committed write as the secondary keeps it until the primary says it is on storage. */
export interface WriteEntry extends EntryFields {
  /** Absent on writes from before discards existed: a write. */
  kind?: 'write'
  data: Buffer
}

/**
 * One committed deallocation (UNMAP, WRITE SAME with UNMAP): afterwards the `length` bytes at
 * `offset` read as zeros. It carries no data; replay deallocates the range (punches holes).
 */
export interface DiscardEntry extends EntryFields {
  kind: 'discard'
  /** Bytes deallocated, at least 1. */
  length: number
  data?: never
}

/** What the secondary holds for a committed-not-completed command, replayed in seq order. */
export type JournalEntry = WriteEntry | DiscardEntry

/** A copy as the mirrored device hands it to the Mirror, which numbers and checksums it. */
export type CopyRequest = Omit<WriteEntry, 'seq' | 'epoch' | 'checksum'> | Omit<DiscardEntry, 'seq' | 'epoch' | 'checksum'>

export type Role = 'primary' | 'secondary' | 'candidate' | 'fenced' | 'stopped'

/** A host connection the primary serves on the service address (for the takeover nudge). */
export interface HostConnection {
  /** The service address side, host:port. */
  local: string
  /** The host's side, host:port. */
  remote: string
}

/** The size at which a controller serves one LUN (a lun-sizes report). */
export interface LunSize {
  target: string
  lun: number
  sizeBytes: number
}

/** Messages on the peer link, after the authenticated handshake. Every one carries an epoch. */
export type PeerMessage =
  | { type: 'heartbeat'; epoch: number; role: Role; sentAtMs: number; journalEntries: number }
  | { type: 'heartbeat-ack'; epoch: number; echoSentAtMs: number; role: Role }
  | { type: 'copy'; entry: JournalEntry }
  /** Confirms the copies seq, seq+1, …, seq+count-1 (count ≥ 1): one frame for a run of them. */
  | { type: 'copy-ack'; epoch: number; seq: number; count: number }
  | { type: 'copy-nak'; epoch: number; seq: number; reason: string }
  | { type: 'complete'; epoch: number; seqs: number[] }
  | { type: 'state'; epoch: number; serviceAddress: string; hostConnections: HostConnection[] }
  | { type: 'handover-request'; epoch: number; to: string }
  | { type: 'handover-ready'; epoch: number; lastSeq: number }
  /**
   * Primary → secondary: a new mirroring round begins; every copy of an older round is on
   * storage, so the secondary empties its journal and confirms with sync-ack. Copies are only
   * sent once the round is confirmed.
   */
  | { type: 'sync'; epoch: number; generation: number }
  | { type: 'sync-ack'; epoch: number; generation: number }
  /**
   * The sizes at which the sender serves its LUNs: sent once the link is up and both ends are
   * at one epoch, and after each grow. The primary grows a LUN only once its partner reported
   * serving the new size (a copy past the end the partner knows could not be replayed).
   */
  | { type: 'lun-sizes'; epoch: number; luns: LunSize[] }

export type PeerMessageType = PeerMessage['type']

/**
 * The primary's side of mirroring, as the mirrored block device sees it. The HA controller
 * implements it over the peer link.
 */
export interface Mirror {
  /** A secondary is connected, authenticated, at our epoch and in sync. */
  readonly healthy: boolean
  /**
   * Copy a write or a discard to the secondary; resolves with its seq once the secondary
   * confirmed it holds the copy (the command is then committed), rejects when the copy cannot
   * be confirmed (link lost, nak, timeout): the caller falls back to writing through.
   */
  copy(entry: CopyRequest): Promise<number>
  /** The write with this seq is durable on storage: the secondary may drop its copy (batched). */
  completed(seq: number): void
}
