// Small I/O buffers carved out of shared slabs. A 4 KiB read or write used to cost one
// ArrayBuffer (Node pools only allocations under 4 KiB); at tens of thousands of commands a
// second the young generation filled with ArrayBuffers whose backing stores every scavenge had
// to free one by one. Carving pieces out of a 256 KiB slab makes that one ArrayBuffer per 64.
//
// A piece keeps its whole slab alive: hand pieces only to holders that live about as long as a
// command (a Data-In on its way to the socket, a write until storage has it), never to a cache.

/** Pieces start on this boundary (a sector), so a later O_DIRECT path can use them as they are. */
const PIECE_ALIGN = 512

export class BufferSlab {
  private slab: Buffer | undefined
  private used = 0

  constructor(
    private readonly slabBytes = 256 * 1024,
    /** Larger requests get a buffer of their own: they would waste a slab's tail. */
    readonly maxPieceBytes = 64 * 1024,
  ) {
    if (maxPieceBytes > slabBytes) throw new RangeError('maxPieceBytes must not exceed slabBytes')
  }

  /** An uninitialized buffer of exactly `length` bytes (like Buffer.allocUnsafe). */
  take(length: number): Buffer {
    if (length > this.maxPieceBytes || length === 0) return Buffer.allocUnsafe(length)
    const span = Math.ceil(length / PIECE_ALIGN) * PIECE_ALIGN
    if (this.slab === undefined || this.used + span > this.slabBytes) {
      this.slab = Buffer.allocUnsafeSlow(this.slabBytes)
      this.used = 0
    }
    const piece = this.slab.subarray(this.used, this.used + length)
    this.used += span
    return piece
  }
}
