// The mirroring rounds, recorded on the shared storage beside the lease.
//  - active: the round whose copies the secondary may hold (written by the primary when a round
//    starts, before any copy of it is committed);
//  - drained: the newest round whose copies are all on storage (written by a primary that lost
//    its secondary, after its committed writes reached storage and before it acknowledges any
//    write-through; and by whoever replays a journal).
// A secondary replays its journal only if its round is newer than the drained one; a controller
// may not claim the lease while the active round is not drained and it does not hold that
// round's journal: the partner that does (or an offline `iscsi-ha replay`) must complete it.

import { crc32c } from '../wire/digest.js'
import type { LeaseStore } from './lease-store.js'

const MAGIC = 0x49484432 // 'IHD2'
const LENGTH = 16

export interface Rounds {
  active: number
  drained: number
}

export class DrainMarker {
  constructor(private readonly store: LeaseStore) {}

  /** Both rounds; zeros when never written or unreadable. */
  async readState(): Promise<Rounds> {
    const b = await this.store.read(0, LENGTH)
    if (b.readUInt32LE(0) !== MAGIC || crc32c(b.subarray(0, 12)) !== b.readUInt32LE(12)) return { active: 0, drained: 0 }
    return { drained: b.readUInt32LE(4), active: b.readUInt32LE(8) }
  }

  /** The last drained round; 0 when never written (then replay is the safe side). */
  async read(): Promise<number> {
    return (await this.readState()).drained
  }

  /** Record a drained round (never moves backwards). */
  async write(drained: number): Promise<void> {
    const s = await this.readState()
    await this.put({ active: s.active, drained: Math.max(s.drained, drained) })
  }

  /** Record the round that is starting (never moves backwards). */
  async writeActive(active: number): Promise<void> {
    const s = await this.readState()
    await this.put({ active: Math.max(s.active, active), drained: s.drained })
  }

  private async put(r: Rounds): Promise<void> {
    const b = Buffer.alloc(LENGTH)
    b.writeUInt32LE(MAGIC, 0)
    b.writeUInt32LE(r.drained >>> 0, 4)
    b.writeUInt32LE(r.active >>> 0, 8)
    b.writeUInt32LE(crc32c(b.subarray(0, 12)), 12)
    await this.store.write(0, b)
    await this.store.sync()
  }
}
