// The receive side of a stream decoder (the iSCSI PDU parser, the peer-link frame decoder): the
// bytes not yet consumed, as `buf[start, end)`. A pushed chunk is parsed in place when nothing is
// left over; otherwise it is copied behind the leftover in owned storage, which is compacted or
// grown by doubling. Never a Buffer.concat per chunk. Views a decoder handed out into the old
// storage stay intact: growing allocates anew, and compaction happens only when allowed.

const EMPTY = Buffer.alloc(0)

export class ReceiveBuffer {
  /** What the unconsumed bytes live in: a borrowed chunk, the owned storage, or a decoder's own. */
  buf: Buffer = EMPTY
  start = 0
  end = 0
  /** Owned, writable storage (undefined until first needed). */
  private store: Buffer | undefined = undefined

  constructor(
    private readonly initialSize: number,
    /** An idle store larger than this is released rather than kept for reuse. */
    private readonly retainLimit: number,
  ) {}

  get pending(): number {
    return this.end - this.start
  }

  /** Whether `b` is the owned storage (a decoder must not drop it when it empties). */
  owns(b: Buffer): boolean {
    return b === this.store
  }

  /** Take a chunk: in place when nothing is left over, else behind the leftover. */
  take(input: Buffer, need = 0): void {
    if (this.start === this.end) {
      this.buf = input
      this.start = 0
      this.end = input.length
      if (this.store !== undefined && this.store.length > this.retainLimit) this.store = undefined
    } else if (input.length > 0) {
      this.append(input, true, need)
    }
  }

  /**
   * Copy `input` behind the unconsumed bytes, in owned storage. `mayCompact`: no view into the
   * storage is live (false while a decoder callback runs). `need`: bytes the current unit needs.
   */
  append(input: Buffer, mayCompact: boolean, need = 0): void {
    const leftover = this.end - this.start
    const required = leftover + input.length
    const store = this.store
    if (store !== undefined && this.buf === store) {
      if (store.length - this.end >= input.length) {
        input.copy(store, this.end)
        this.end += input.length
        return
      }
      if (mayCompact && store.length >= required) {
        store.copyWithin(0, this.start, this.end)
        input.copy(store, leftover)
        this.start = 0
        this.end = required
        return
      }
    } else if (store !== undefined && store.length >= required) {
      // The store is not what the pending bytes (or any live view) point into: reuse it.
      this.buf.copy(store, 0, this.start, this.end)
      input.copy(store, leftover)
      this.buf = store
      this.start = 0
      this.end = required
      return
    }
    // Grow: a fresh allocation, so views into the old storage stay intact.
    let size = store === undefined ? this.initialSize : store.length * 2
    const want = Math.max(required, need)
    while (size < want) size *= 2
    const next = Buffer.allocUnsafe(size)
    this.buf.copy(next, 0, this.start, this.end)
    input.copy(next, leftover)
    this.store = next
    this.buf = next
    this.start = 0
    this.end = required
  }

  /** Forget everything (a decoder that failed). */
  reset(): void {
    this.buf = EMPTY
    this.start = 0
    this.end = 0
    this.store = undefined
  }
}
