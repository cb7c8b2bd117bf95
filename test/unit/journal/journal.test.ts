// The secondary's journal in memory: order, checksums, the bound, replay.

import { describe, expect, it } from 'vitest'
import { DISCARD_ENTRY_BYTES, Journal, JournalError, applyToBackends } from '../../../src/journal/index.js'
import type { ByteRange } from '../../../src/scsi/provisioning.js'
import { MemoryDevice } from '../../helpers/memory-device.js'
import { codeOf, discard, entry } from './fixtures.js'

/** A MemoryDevice that deallocates (zeros) ranges and records each discard() call. */
class DiscardingDevice extends MemoryDevice {
  readonly discards: ByteRange[] = []
  discard(ranges: readonly ByteRange[]): Promise<void> {
    for (const r of ranges) {
      this.discards.push({ ...r })
      this.data.fill(0, r.offset, r.offset + r.length)
    }
    return Promise.resolve()
  }
}

describe('Journal (memory)', () => {
  it('holds copies and lists them in (epoch, seq) order', async () => {
    const j = new Journal()
    await j.add(entry(3, 0, 'c'))
    await j.add(entry(1, 0, 'a'))
    await j.add(entry(1, 0, 'z', { epoch: 2 }))
    await j.add(entry(2, 0, 'b'))
    expect(j.pending().map((e) => `${e.epoch}/${e.seq}`)).toEqual(['1/1', '1/2', '1/3', '2/1'])
    expect(j.stats()).toMatchObject({ entries: 4, bytes: 4 })
  })

  it('complete drops copies; the epoch defaults to the highest seen', async () => {
    const j = new Journal()
    for (let s = 1; s <= 4; s++) await j.add(entry(s, s * 10, 'x'))
    await j.add(entry(1, 0, 'y', { epoch: 2 }))
    j.complete([1]) // epoch 2
    expect(j.pending().map((e) => `${e.epoch}/${e.seq}`)).toEqual(['1/1', '1/2', '1/3', '1/4'])
    j.complete([2, 4, 99], 1)
    expect(j.pending().map((e) => e.seq)).toEqual([1, 3])
    expect(j.stats().bytes).toBe(2)
    j.clear()
    expect(j.pending()).toEqual([])
    expect(j.stats()).toEqual({ entries: 0, bytes: 0 })
  })

  it('refuses a copy whose data does not match its checksum', async () => {
    const j = new Journal()
    const e = entry(1, 0, 'hello')
    e.checksum ^= 1
    expect(await codeOf(j.add(e))).toBe('JOURNAL_BAD_CHECKSUM')
    expect(j.stats().entries).toBe(0)
  })

  it('does not recompute a checksum the caller says it verified (the peer codec checks every copy)', async () => {
    const j = new Journal()
    const e = entry(1, 0, 'hello')
    e.checksum ^= 1 // what only the caller's own check would catch
    await j.add(e, { checksumVerified: true })
    expect(j.stats().entries).toBe(1)
    expect(await codeOf(j.add({ ...entry(1, 1, 'x'), checksum: 7 }, { checksumVerified: false }))).toBe('JOURNAL_BAD_CHECKSUM')
  })

  it('refuses entries it cannot store', async () => {
    const j = new Journal()
    expect(await codeOf(j.add(entry(-1, 0, 'a')))).toBe('JOURNAL_INVALID_ENTRY')
    expect(await codeOf(j.add(entry(1, 0.5, 'a')))).toBe('JOURNAL_INVALID_ENTRY')
    expect(await codeOf(j.add(entry(1, 0, 'a', { isid: 'x'.repeat(70000) })))).toBe('JOURNAL_INVALID_ENTRY')
  })

  it('is bounded by maxBytes: JOURNAL_FULL, room again after completion', async () => {
    const j = new Journal({ maxBytes: 10 })
    await j.add(entry(1, 0, Buffer.alloc(6)))
    await j.add(entry(2, 0, Buffer.alloc(4)))
    const e = await codeOf(j.add(entry(3, 0, Buffer.alloc(1))))
    expect(e).toBe('JOURNAL_FULL')
    expect(j.stats()).toMatchObject({ entries: 2, bytes: 10 })
    // Replacing a copy (a resend) counts only the difference.
    await j.add(entry(2, 0, Buffer.alloc(4, 7)))
    j.complete([1])
    await j.add(entry(3, 0, Buffer.alloc(6)))
    expect(j.stats()).toMatchObject({ entries: 2, bytes: 10 })
  })

  it('reports the oldest copy and its age', async () => {
    let now = 5000
    const j = new Journal({ now: () => now })
    await j.add(entry(7, 0, 'a', { receivedAtMs: 4000 }))
    await j.add(entry(5, 0, 'a', { receivedAtMs: 4500 }))
    now = 6000
    expect(j.stats()).toEqual({ entries: 2, bytes: 2, oldestSeq: 5, oldestAgeMs: 1500 })
  })

  it('replays overlapping copies in (epoch, seq) order and removes them', async () => {
    const j = new Journal()
    // Added out of order; every copy overlaps the previous one.
    await j.add(entry(3, 2, 'CCCC'))
    await j.add(entry(1, 0, 'AAAAAA'))
    await j.add(entry(1, 4, 'DD', { epoch: 2 }))
    await j.add(entry(2, 1, 'BBB'))
    const dev = new MemoryDevice(16)
    const order: string[] = []
    const r = await j.replay(async (e) => {
      order.push(`${e.epoch}/${e.seq}`)
      await dev.write(e.offset, e.data!, { fua: false })
    })
    expect(order).toEqual(['1/1', '1/2', '1/3', '2/1'])
    expect(r).toEqual({ replayed: 4, bytes: 15, discardedBytes: 0 })
    expect(dev.data.subarray(0, 6).toString()).toBe('ABCCDD')
    expect(j.pending()).toEqual([])
  })

  it('verifies every checksum before applying anything', async () => {
    const j = new Journal()
    await j.add(entry(1, 0, 'good'))
    const bad = entry(2, 0, 'evil')
    await j.add(bad)
    bad.data[0] = 0x45 // damaged in memory after it was accepted
    const applied: number[] = []
    const err = await j.replay(async (e) => void applied.push(e.seq)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(JournalError)
    expect((err as JournalError).code).toBe('JOURNAL_BAD_CHECKSUM')
    expect((err as JournalError).seq).toBe(2)
    expect(applied).toEqual([])
    expect(j.stats().entries).toBe(2)
  })

  it('removes nothing when an apply fails, so a second replay redoes the same order', async () => {
    const j = new Journal()
    for (let s = 1; s <= 3; s++) await j.add(entry(s, 0, `v${s}`))
    await expect(
      j.replay(async (e) => {
        if (e.seq === 2) throw new Error('EIO')
      }),
    ).rejects.toThrow('EIO')
    expect(j.pending().map((e) => e.seq)).toEqual([1, 2, 3])
    const seen: number[] = []
    await j.replay(async (e) => void seen.push(e.seq))
    expect(seen).toEqual([1, 2, 3])
    expect(j.stats().entries).toBe(0)
  })

  it('keeps copies added during a replay', async () => {
    const j = new Journal()
    await j.add(entry(1, 0, 'a'))
    await j.replay(async () => {
      await j.add(entry(2, 0, 'b'))
    })
    expect(j.pending().map((e) => e.seq)).toEqual([2])
  })
})

describe('applyToBackends', () => {
  const lun0 = { target: 't', lun: 0 }
  const lun1 = { target: 't', lun: 1 }

  it('replays onto each LUN in order and flushes each touched device once', async () => {
    const j = new Journal()
    const d0 = new MemoryDevice(64)
    const d1 = new MemoryDevice(64)
    const d2 = new MemoryDevice(64)
    await j.add(entry(2, 0, 'second', { key: lun0 }))
    await j.add(entry(1, 0, 'first!', { key: lun0 }))
    await j.add(entry(3, 8, 'other', { key: lun1 }))
    const flushedBeforeRemove: number[] = []
    const r = await applyToBackends(j, (k) => {
      flushedBeforeRemove.push(j.stats().entries)
      return k.lun === 0 ? d0 : k.lun === 1 ? d1 : d2
    })
    expect(r).toEqual({ replayed: 3, bytes: 17, discardedBytes: 0, devices: 2 })
    expect(d0.data.subarray(0, 6).toString()).toBe('second')
    expect(d0.writes.map((w) => w.fua)).toEqual([false, false])
    expect(d1.data.subarray(8, 13).toString()).toBe('other')
    expect([d0.flushes, d1.flushes, d2.flushes]).toEqual([1, 1, 0])
    expect(j.pending()).toEqual([])
  })

  it('applies nothing when a LUN has no backend', async () => {
    const j = new Journal()
    const d0 = new MemoryDevice(64)
    await j.add(entry(1, 0, 'a', { key: lun0 }))
    await j.add(entry(2, 0, 'b', { key: lun1 }))
    const err = await j.applyToBackends((k) => (k.lun === 0 ? d0 : undefined)).catch((e: unknown) => e)
    expect((err as JournalError).code).toBe('JOURNAL_NO_BACKEND')
    expect(d0.writes).toEqual([])
    expect(j.stats().entries).toBe(2)
  })

  it('applies nothing when a copy lies outside its device', async () => {
    const j = new Journal()
    const d0 = new MemoryDevice(8)
    await j.add(entry(1, 0, 'a', { key: lun0 }))
    await j.add(entry(2, 6, 'abc', { key: lun0 }))
    const err = await j.applyToBackends(() => d0).catch((e: unknown) => e)
    expect((err as JournalError).code).toBe('JOURNAL_OUT_OF_RANGE')
    expect(d0.writes).toEqual([])
  })

  it('keeps the copies when the flush fails', async () => {
    const j = new Journal()
    const d0 = new MemoryDevice(8)
    await j.add(entry(1, 0, 'a', { key: lun0 }))
    const orig = d0.flush.bind(d0)
    d0.flush = () => {
      d0.failNext = new Error('flush EIO')
      return orig()
    }
    await expect(j.applyToBackends(() => d0)).rejects.toThrow('flush EIO')
    expect(j.stats().entries).toBe(1)
  })
})

describe('Journal: discard entries (UNMAP)', () => {
  it('holds a discard without data: no data bytes, DISCARD_ENTRY_BYTES against maxBytes', async () => {
    const j = new Journal({ maxBytes: 3 * DISCARD_ENTRY_BYTES })
    await j.add(discard(1, 0, 1 << 30)) // 1 GiB of UNMAP holds no memory for data
    await j.add(discard(2, 1 << 30, 512))
    expect(j.stats()).toMatchObject({ entries: 2, bytes: 0 })
    expect(j.pending().map((e) => [e.kind, e.data])).toEqual([
      ['discard', undefined],
      ['discard', undefined],
    ])
    // The count of entries is bounded: a third fits, a fourth does not, a write of one byte neither.
    await j.add(discard(3, 0, 4096))
    expect(await codeOf(j.add(discard(4, 0, 4096)))).toBe('JOURNAL_FULL')
    expect(await codeOf(j.add(entry(4, 0, 'x')))).toBe('JOURNAL_FULL')
    j.complete([1, 2])
    await j.add(entry(4, 0, Buffer.alloc(DISCARD_ENTRY_BYTES)))
    await j.add(discard(5, 0, 4096))
    expect(j.stats()).toMatchObject({ entries: 3, bytes: DISCARD_ENTRY_BYTES })
  })

  it('checks a discard: its range checksum, a positive length, no data', async () => {
    const j = new Journal()
    expect(await codeOf(j.add(discard(1, 0, 4096, { checksum: discard(1, 0, 4097).checksum })))).toBe('JOURNAL_BAD_CHECKSUM')
    expect(await codeOf(j.add(discard(1, 0, 0)))).toBe('JOURNAL_INVALID_ENTRY')
    expect(await codeOf(j.add(discard(1, 0, 1.5)))).toBe('JOURNAL_INVALID_ENTRY')
    expect(await codeOf(j.add({ ...discard(1, 0, 4096), data: Buffer.alloc(1) } as never))).toBe('JOURNAL_INVALID_ENTRY')
    expect(await codeOf(j.add({ ...entry(1, 0, 'a'), kind: 'trim' } as never))).toBe('JOURNAL_INVALID_ENTRY')
    expect(j.stats().entries).toBe(0)
    await j.add(discard(1, 2 ** 40, 4096))
    expect(j.stats().entries).toBe(1)
  })

  it('replays a discard in seq order between writes: the later write wins, the earlier one is gone', async () => {
    const j = new Journal()
    await j.add(entry(3, 6, 'LATER'))
    await j.add(discard(2, 2, 10))
    await j.add(entry(1, 0, 'EARLIER-WRITE-'))
    const dev = new DiscardingDevice(16)
    const r = await j.applyToBackends(() => dev)
    expect(r).toEqual({ replayed: 3, bytes: 19, discardedBytes: 10, devices: 1 })
    expect(dev.discards).toEqual([{ offset: 2, length: 10 }])
    expect(dev.data.toString('latin1')).toBe('EA\0\0\0\0LATER\0E-\0\0')
    expect(dev.flushes).toBe(1)
    expect(j.pending()).toEqual([])
  })

  it('on a device without discard(), replay writes zeros over the range', async () => {
    const j = new Journal()
    const dev = new MemoryDevice(3 << 20)
    dev.data.fill(7)
    await j.add(discard(1, 1000, (2 << 20) + 5))
    await j.applyToBackends(() => dev)
    expect(dev.data.subarray(1000, 1000 + (2 << 20) + 5).every((b) => b === 0)).toBe(true)
    expect([dev.data[999], dev.data[1000 + (2 << 20) + 5]]).toEqual([7, 7])
  })

  it('applies nothing when a discard lies outside its device, and verifies discard checksums first', async () => {
    const j = new Journal()
    const dev = new DiscardingDevice(8192)
    await j.add(entry(1, 0, 'a'))
    await j.add(discard(2, 4096, 8192))
    expect(await codeOf(j.applyToBackends(() => dev))).toBe('JOURNAL_OUT_OF_RANGE')
    expect([dev.writes, dev.discards]).toEqual([[], []])
    const k = new Journal()
    const d = discard(1, 0, 4096)
    await k.add(d)
    ;(d as { length: number }).length = 8192 // damaged in memory after it was accepted
    expect(await codeOf(k.applyToBackends(() => dev))).toBe('JOURNAL_BAD_CHECKSUM')
    expect(dev.discards).toEqual([])
  })
})
