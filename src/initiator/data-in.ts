// Reassembly of one command's Data-In (RFC 7143 §11.7). We negotiate DataPDUInOrder=Yes and
// DataSequenceInOrder=Yes, so the PDUs of a read arrive with DataSN 0, 1, 2, ... at
// consecutive buffer offsets; anything else is a target protocol error (ErrorRecoveryLevel 0
// has no SNACK to mend a gap). Pure: no socket.

import { InitiatorProtocolError } from './errors.js'
import type { Residual } from './scsi.js'

export interface DataInSegment {
  dataSN: number
  bufferOffset: number
  /** Only read during add(): it may be a view into a receive buffer. */
  data: Buffer
}

export class DataInAssembler {
  private buffer: Buffer | undefined
  private nextDataSN = 0
  private end = 0
  private count = 0

  /** `expectedLength`: the ExpectedDataTransferLength of the read. */
  constructor(readonly expectedLength: number) {}

  /** Data-In PDUs accepted so far. */
  get pdus(): number {
    return this.count
  }

  /** Bytes received so far. */
  get bytes(): number {
    return this.end
  }

  /** Copy one Data-In PDU's data into place. Throws InitiatorProtocolError on a sequence error. */
  add(seg: DataInSegment): void {
    if (seg.dataSN !== this.nextDataSN) {
      throw new InitiatorProtocolError(`Data-In DataSN ${seg.dataSN}, expected ${this.nextDataSN}`)
    }
    if (seg.bufferOffset !== this.end) {
      throw new InitiatorProtocolError(`Data-In BufferOffset ${seg.bufferOffset}, expected ${this.end} (DataPDUInOrder=Yes)`)
    }
    const stop = seg.bufferOffset + seg.data.length
    if (stop > this.expectedLength) {
      throw new InitiatorProtocolError(
        `Data-In ends at byte ${stop}, beyond the ExpectedDataTransferLength of ${this.expectedLength}`,
      )
    }
    if (seg.data.length > 0) {
      this.buffer ??= Buffer.allocUnsafe(this.expectedLength)
      seg.data.copy(this.buffer, seg.bufferOffset)
    }
    this.end = stop
    this.nextDataSN++
    this.count++
  }

  /**
   * Check the final residual against what arrived (RFC 7143 §11.4.5: with GOOD status an
   * underflow of N means exactly ExpectedDataTransferLength - N bytes were sent). Returns a
   * description of the mismatch, or undefined.
   */
  checkResidual(residual: Residual): string | undefined {
    const promised = residual.underflow ? this.expectedLength - residual.count : this.expectedLength
    if (promised !== this.end) {
      return `received ${this.end} bytes of Data-In, but the residual (${residual.underflow ? 'underflow' : residual.overflow ? 'overflow' : 'none'} ${residual.count}) implies ${promised}`
    }
    return undefined
  }

  /** The data received (a view of the reassembly buffer, exactly `bytes` long). */
  result(): Buffer {
    if (!this.buffer) return Buffer.alloc(0)
    return this.buffer.subarray(0, this.end)
  }
}
