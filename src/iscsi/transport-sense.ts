// The few CHECK CONDITIONs the transport itself decides (before or around the SCSI engine).
// Sense bytes still come from the engine's one builder.

import { ScsiStatus, type ScsiResult } from '../scsi/types.js'
import { buildSense, SenseKey } from '../scsi/sense.js'

const TRANSPORT_SENSE = {
  /** EDTL beyond what this target accepts in one command. */
  invalidFieldInCdb: [SenseKey.IllegalRequest, 0x24, 0x00],
  /** SPDTL > EDTL on a write, or Data-Out that breaks the rules (FCP-4 / RFC 7143 §11.4.5.2). */
  invalidFieldInInformationUnit: [SenseKey.IllegalRequest, 0x0e, 0x03],
  /** A LUN this target does not have (SPC-4 §4.7.1). */
  logicalUnitNotSupported: [SenseKey.IllegalRequest, 0x25, 0x00],
  /** Data-Out with a DataSN out of sequence (RFC 7143 §11.7.5). */
  dataPhaseError: [SenseKey.AbortedCommand, 0x4b, 0x00],
  /** Data-Out at an offset other than the next one (DataPDUInOrder=Yes). */
  dataOffsetError: [SenseKey.AbortedCommand, 0x4b, 0x05],
  /** Data-Out past ExpectedDataTransferLength or past its R2T. */
  tooMuchWriteData: [SenseKey.AbortedCommand, 0x4b, 0x02],
  /** Unsolicited data beyond FirstBurstLength, or when none was allowed (§11.4.7.2). */
  unexpectedUnsolicitedData: [SenseKey.AbortedCommand, 0x0c, 0x0c],
  /** A Data-Out lost to a data digest error (RFC 7143 §11.4.7.2). */
  protocolServiceCrcError: [SenseKey.AbortedCommand, 0x47, 0x05],
  /** The engine threw something that was not a ScsiError. */
  internalTargetFailure: [SenseKey.HardwareError, 0x44, 0x00],
} as const

export type TransportSense = keyof typeof TRANSPORT_SENSE

const built = new Map<TransportSense, Buffer>()

export function senseFor(name: TransportSense): ScsiResult {
  let sense = built.get(name)
  if (!sense) {
    const [key, asc, ascq] = TRANSPORT_SENSE[name]
    sense = buildSense(key, asc, ascq)
    built.set(name, sense)
  }
  return { status: ScsiStatus.CheckCondition, sense }
}
