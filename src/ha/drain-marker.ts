// "Generation G is drained": written on the shared storage by a primary that lost its
// secondary, after every write it had committed to the secondary reached storage and before it
// acknowledges any write-through. A secondary taking over replays its journal only if the
// journal's generation is newer: otherwise every copy in it is already on storage, and a
// later acknowledged write-through may have overwritten the same blocks.

import { crc32c } from '../wire/digest.js'
import type { LeaseStore } from './lease-store.js'

const MAGIC = 0x49484447 // 'IHDG'
const LENGTH = 16

export class DrainMarker {
  constructor(private readonly store: LeaseStore) {}

  /** The last drained generation; 0 when never written or unreadable (then replay is the safe side). */
  async read(): Promise<number> {
    const b = await this.store.read(0, LENGTH)
    if (b.readUInt32LE(0) !== MAGIC) return 0
    if (crc32c(b.subarray(0, 12)) !== b.readUInt32LE(12)) return 0
    return b.readUInt32LE(4) * 2 ** 32 + b.readUInt32LE(8)
  }

  async write(generation: number): Promise<void> {
    const b = Buffer.alloc(LENGTH)
    b.writeUInt32LE(MAGIC, 0)
    b.writeUInt32LE(Math.floor(generation / 2 ** 32), 4)
    b.writeUInt32LE(generation >>> 0, 8)
    b.writeUInt32LE(crc32c(b.subarray(0, 12)), 12)
    await this.store.write(0, b)
    await this.store.sync()
  }
}
