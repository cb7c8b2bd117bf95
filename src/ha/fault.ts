// Fault injection for tests and soak runs, off unless the environment asks for it.
// ISCSI_HA_FAULT_STORAGE_DELAY_MS=N delays every storage write of a primary's mirrored devices
// by N ms: slow storage. Committed writes then wait in the two memories long enough that a
// primary killed mid-run leaves copies only the secondary's journal can complete, which is
// what proves the replay (on one machine a killed process's writes otherwise survive in the
// page cache within microseconds).

import type { BlockDevice } from '../scsi/types.js'
import { canDiscard, type ByteRange } from '../scsi/provisioning.js'

export function storageDelayMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.ISCSI_HA_FAULT_STORAGE_DELAY_MS ?? 0)
  return Number.isFinite(v) && v > 0 ? v : 0
}

export class SlowStorage implements BlockDevice {
  constructor(private readonly inner: BlockDevice, private readonly delayMs: number) {
    const backend = inner
    if (canDiscard(backend)) {
      this.discard = async (ranges) => {
        await new Promise((r) => setTimeout(r, this.delayMs))
        return backend.discard(ranges)
      }
    }
  }

  get sizeBytes(): number {
    return this.inner.sizeBytes
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.inner.read(offset, length)
  }

  async write(offset: number, data: Buffer, opts: { fua: boolean }): Promise<void> {
    await new Promise((r) => setTimeout(r, this.delayMs))
    return this.inner.write(offset, data, opts)
  }

  /** Deallocation is a storage write too: as slow, then holes as the backend punches them. */
  readonly discard?: (ranges: readonly ByteRange[]) => Promise<void>

  flush(): Promise<void> {
    return this.inner.flush()
  }

  close(): Promise<void> {
    return this.inner.close()
  }
}
