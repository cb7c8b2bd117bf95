import { describe, expect, it } from 'vitest'
import { SlowStorage, storageDelayMs } from '../../../src/ha/fault.js'
import type { ByteRange } from '../../../src/scsi/provisioning.js'
import type { BlockDevice } from '../../../src/scsi/types.js'

function device(withDiscard: boolean): BlockDevice & { calls: string[]; discard?: (r: readonly ByteRange[]) => Promise<void> } {
  const calls: string[] = []
  const d = {
    calls,
    sizeBytes: 1 << 20,
    read: async () => Buffer.alloc(0),
    write: async (offset: number) => void calls.push(`write ${offset}`),
    flush: async () => void calls.push('flush'),
    close: async () => undefined,
  }
  return withDiscard ? Object.assign(d, { discard: async (r: readonly ByteRange[]) => void calls.push(`discard ${r.map((x) => `${x.offset}+${x.length}`).join(',')}`) }) : d
}

describe('SlowStorage (ISCSI_HA_FAULT_STORAGE_DELAY_MS)', () => {
  it('delays writes and discards by the configured time, then forwards them', async () => {
    const inner = device(true)
    const slow = new SlowStorage(inner, 40)
    const t0 = performance.now()
    await slow.write(4096, Buffer.alloc(512), { fua: false })
    await slow.discard!([{ offset: 0, length: 8192 }])
    expect(performance.now() - t0).toBeGreaterThanOrEqual(75)
    expect(inner.calls).toEqual(['write 4096', 'discard 0+8192'])
  })

  it('offers discard only when the device under it can', () => {
    expect(new SlowStorage(device(false), 10).discard).toBeUndefined()
    expect(typeof new SlowStorage(device(true), 10).discard).toBe('function')
  })

  it('reads the delay from the environment, ignoring nonsense', () => {
    expect(storageDelayMs({ ISCSI_HA_FAULT_STORAGE_DELAY_MS: '300' })).toBe(300)
    expect(storageDelayMs({ ISCSI_HA_FAULT_STORAGE_DELAY_MS: 'x' })).toBe(0)
    expect(storageDelayMs({})).toBe(0)
  })
})
