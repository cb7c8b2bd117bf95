// Contract between the iSCSI transport (src/iscsi) and the SCSI command engine (src/scsi).
// The transport collects a command's Data-Out, calls LogicalUnit.execute, and turns the
// result into Data-In PDUs and a SCSI Response. The engine never sees PDUs.

/** SAM-5 status codes. */
export const enum ScsiStatus {
  Good = 0x00,
  CheckCondition = 0x02,
  ConditionMet = 0x04,
  Busy = 0x08,
  ReservationConflict = 0x18,
  TaskSetFull = 0x28,
  AcaActive = 0x30,
  TaskAborted = 0x40,
}

/** The I_T nexus a command arrives on: keys unit attentions (and, later, reservations). */
export interface Nexus {
  initiatorName: string
  /** ISID as 12 lowercase hex digits. */
  isid: string
  targetName: string
  tpgt: number
  /** Stable string key for maps: `${initiatorName},i,0x${isid},${targetName},t,${tpgt}`. */
  key: string
}

export interface ScsiRequest {
  cdb: Buffer
  nexus: Nexus
  /** ExpectedDataTransferLength from the iSCSI header (bytes the initiator allotted). */
  expectedLength: number
  /** Data-Out the initiator sent, all of it (write-direction commands); empty otherwise. */
  dataOut: Buffer
  /** Set when a task management function aborts the task; the engine may stop early. */
  signal?: AbortSignal
}

export interface ScsiResult {
  status: ScsiStatus
  /** Data-In produced, possibly longer than expectedLength: the transport truncates and sets residuals. */
  dataIn?: Buffer
  /** Fixed-format sense data (SPC-4 §4.5.3) when status is CHECK CONDITION. */
  sense?: Buffer
}

/**
 * What a logical unit wants to move before it can run a command, decided from the CDB alone.
 * The transport uses it to size R2Ts and to reject a bad CDB before soliciting data.
 */
export type DataOutPlan =
  | { kind: 'none' }
  | { kind: 'out'; bytes: number }
  | { kind: 'fail'; result: ScsiResult }

export interface LogicalUnit {
  readonly lun: number
  /** Inspect a CDB before data moves (cheap, synchronous). */
  planDataOut(cdb: Buffer, nexus: Nexus): DataOutPlan
  execute(req: ScsiRequest): Promise<ScsiResult>
  /** Task management: LOGICAL UNIT RESET and the target resets (establishes unit attentions). */
  reset(kind: 'lun' | 'warm' | 'cold', by?: Nexus): void
  /** A nexus went away (session closed or reinstated): drop its pending unit attentions. */
  nexusLost(nexus: Nexus): void
}

/**
 * Block storage as the SCSI engine sees it. A storage backend implements it directly; the HA
 * pair will wrap it with a mirrored implementation that commits to the partner before
 * resolving write() and completes to the backend behind.
 */
export interface BlockDevice {
  readonly sizeBytes: number
  /** Read `length` bytes at `offset` into a fresh Buffer. */
  read(offset: number, length: number): Promise<Buffer>
  /**
   * Resolve when the write is committed; with fua, when it is durable on storage. The device
   * may keep `data` as it is (the HA pair's mirrored device holds it until storage has it, and
   * serves reads from it meanwhile): a caller never changes a buffer it has written.
   */
  write(offset: number, data: Buffer, opts: { fua: boolean }): Promise<void>
  /** Make every completed write durable (fdatasync). */
  flush(): Promise<void>
  close(): Promise<void>
}
