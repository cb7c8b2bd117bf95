// An in-memory BlockDevice for tests: records every call, can fail or delay on demand.

import type { BlockDevice } from '../../src/scsi/types.js'

export interface WriteCall {
  offset: number
  length: number
  fua: boolean
}

export class MemoryDevice implements BlockDevice {
  readonly data: Buffer
  /** Writes in the order write() was called (recorded synchronously, before any await). */
  readonly writes: WriteCall[] = []
  readonly reads: { offset: number; length: number }[] = []
  flushes = 0
  closed = false
  /** Make the next read/write/flush reject with this error. */
  failNext: Error | undefined
  /** Delay (ms) applied to each write, e.g. to check ordering under concurrency. */
  writeDelayMs: ((call: WriteCall) => number) | undefined

  constructor(readonly sizeBytes: number) {
    this.data = Buffer.alloc(sizeBytes)
  }

  private takeFailure(): Error | undefined {
    const e = this.failNext
    this.failNext = undefined
    return e
  }

  private checkRange(offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > this.sizeBytes) {
      throw new RangeError(`I/O ${offset}+${length} outside device of ${this.sizeBytes}`)
    }
  }

  read(offset: number, length: number): Promise<Buffer> {
    this.reads.push({ offset, length })
    const e = this.takeFailure()
    if (e) return Promise.reject(e)
    this.checkRange(offset, length)
    return Promise.resolve(Buffer.from(this.data.subarray(offset, offset + length)))
  }

  write(offset: number, data: Buffer, opts: { fua: boolean }): Promise<void> {
    const call = { offset, length: data.length, fua: opts.fua }
    this.writes.push(call)
    const e = this.takeFailure()
    if (e) return Promise.reject(e)
    this.checkRange(offset, data.length)
    const copy = Buffer.from(data)
    const delay = this.writeDelayMs?.(call) ?? 0
    if (delay <= 0) {
      copy.copy(this.data, offset)
      return Promise.resolve()
    }
    return new Promise((resolve) =>
      setTimeout(() => {
        copy.copy(this.data, offset)
        resolve()
      }, delay),
    )
  }

  flush(): Promise<void> {
    this.flushes++
    const e = this.takeFailure()
    return e ? Promise.reject(e) : Promise.resolve()
  }

  close(): Promise<void> {
    this.closed = true
    return Promise.resolve()
  }
}
