// The primary's mirrored block device against a fake Mirror whose secondary is a real in-memory
// Journal, over a memory device that tells its page cache (data) from what a flush made durable.

import { describe, expect, it } from 'vitest'
import { MirroredDevice, type MirroredDeviceOptions } from '../../../src/ha/mirrored-device.js'
import type { CopyRequest, JournalEntry, Mirror } from '../../../src/ha/types.js'
import { DISCARD_ENTRY_BYTES, Journal, entryChecksum } from '../../../src/journal/index.js'
import type { ByteRange } from '../../../src/scsi/provisioning.js'
import { MemoryDevice } from '../../helpers/memory-device.js'

const KEY = { target: 'iqn.2024-01.test:disk', lun: 3 }

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await sleep(1)
  }
}

/** Let pending promise callbacks and short timers run. */
async function settle(ms = 5): Promise<void> {
  await sleep(ms)
}

/**
 * A MemoryDevice whose `data` is the page cache; `durable` is what survives a power cut. A flush
 * makes durable what the cache held when it was called; a FUA write makes its own bytes durable.
 * Durable bytes never go back in time (per-byte versions).
 */
class DurableDevice extends MemoryDevice {
  readonly durable: Buffer
  flushDelayMs: () => number = () => 0
  discardDelayMs: () => number = () => 0
  private version = 0
  private readonly cacheVersion: Uint32Array
  private readonly durableVersion: Uint32Array

  constructor(size: number) {
    super(size)
    this.durable = Buffer.alloc(size)
    this.cacheVersion = new Uint32Array(size)
    this.durableVersion = new Uint32Array(size)
  }

  override async write(offset: number, data: Buffer, opts: { fua: boolean }): Promise<void> {
    const copy = Buffer.from(data)
    await super.write(offset, data, opts)
    const v = ++this.version
    this.cacheVersion.fill(v, offset, offset + copy.length)
    if (opts.fua) this.persist(copy, Uint32Array.from({ length: copy.length }, () => v), offset)
  }

  override async flush(): Promise<void> {
    const snapshot = Buffer.from(this.data) // writes completed so far
    const versions = Uint32Array.from(this.cacheVersion)
    await super.flush()
    const d = this.flushDelayMs()
    if (d > 0) await sleep(d)
    this.persist(snapshot, versions, 0)
  }

  /** A discard changes the cache like a write of zeros (holes read as zeros). */
  protected async zero(offset: number, length: number): Promise<void> {
    const d = this.discardDelayMs()
    if (d > 0) await sleep(d)
    this.data.fill(0, offset, offset + length)
    this.cacheVersion.fill(++this.version, offset, offset + length)
  }

  private persist(bytes: Buffer, versions: Uint32Array, at: number): void {
    for (let i = 0; i < bytes.length; i++) {
      if (versions[i]! > this.durableVersion[at + i]!) {
        this.durable[at + i] = bytes[i]!
        this.durableVersion[at + i] = versions[i]!
      }
    }
  }
}

/** A DurableDevice with discard() (what FileBackend has): the SCSI engine and MirroredDevice use it. */
class DiscardingDevice extends DurableDevice {
  /** discard() calls, in call order (recorded before any await). */
  readonly discards: ByteRange[] = []
  /** Make the next discard() reject with this error. */
  failNextDiscard: Error | undefined

  async discard(ranges: readonly ByteRange[]): Promise<void> {
    for (const r of ranges) this.discards.push({ ...r })
    const e = this.failNextDiscard
    this.failNextDiscard = undefined
    if (e) throw e
    for (const r of ranges) await this.zero(r.offset, r.length)
  }
}

type Ack = { seq: number; entry: JournalEntry; resolve: (seq: number) => void; reject: (e: Error) => void }

/** The HA controller's side, with the secondary's journal in the same process. */
class FakeMirror implements Mirror {
  healthy = true
  nextSeq = 0
  readonly journal = new Journal()
  /** Every copy asked for, in call order. */
  readonly copies: JournalEntry[] = []
  readonly completedSeqs: number[] = []
  /** Hold acks until ack()/nak() when true. */
  manual = false
  ackDelayMs: () => number = () => 0
  /** Fail this copy (the link dropped, a nak, a timeout). */
  shouldFail: (e: JournalEntry) => boolean = () => false
  onCompleted: ((seq: number) => void) | undefined
  private held: Ack[] = []

  /** What the device handed to copy(), as given. */
  readonly requests: CopyRequest[] = []

  copy(e: CopyRequest): Promise<number> {
    this.requests.push(e)
    const seq = ++this.nextSeq
    const entry: JournalEntry =
      e.kind === 'discard' ? { ...e, seq, epoch: 1, checksum: entryChecksum(e) } : { ...e, data: Buffer.from(e.data), seq, epoch: 1, checksum: entryChecksum(e) }
    this.copies.push(entry)
    return new Promise<number>((resolve, reject) => {
      const a: Ack = { seq, entry, resolve, reject }
      if (this.manual) {
        this.held.push(a)
        return
      }
      const d = this.ackDelayMs()
      const run = (): void => void this.settle(a)
      if (d > 0) setTimeout(run, d)
      else queueMicrotask(run)
    })
  }

  private async settle(a: Ack): Promise<void> {
    if (this.shouldFail(a.entry)) return a.reject(new Error(`copy ${a.seq}: link lost`))
    await this.journal.add(a.entry)
    a.resolve(a.seq)
  }

  get waiting(): number {
    return this.held.length
  }

  /** Confirm the oldest `n` held copies. */
  async ack(n = this.held.length): Promise<void> {
    for (const a of this.held.splice(0, n)) await this.settle(a)
  }

  nak(n = this.held.length): void {
    for (const a of this.held.splice(0, n)) a.reject(new Error(`copy ${a.seq}: nak`))
  }

  completed(seq: number): void {
    this.completedSeqs.push(seq)
    this.onCompleted?.(seq)
    this.journal.complete([seq])
  }
}

function setup(over: Partial<MirroredDeviceOptions> & { size?: number; noDiscard?: boolean } = {}) {
  const backend = over.noDiscard ? (new DurableDevice(over.size ?? 64 * 1024) as DiscardingDevice) : new DiscardingDevice(over.size ?? 64 * 1024)
  const mirror = new FakeMirror()
  let current: Mirror | undefined = mirror
  const dev = new MirroredDevice({
    backend,
    key: KEY,
    mirror: () => current,
    maxPendingBytes: 1 << 20,
    // Short, so the tests below see completions within a few settle() turns.
    flushDelayMs: 2,
    ...over,
  })
  return {
    backend,
    mirror,
    dev,
    setMirror(m: Mirror | undefined) {
      current = m
    },
  }
}

function fill(n: number, byte: number): Buffer {
  return Buffer.alloc(n, byte)
}

/** Track whether a promise settled. */
function watch(p: Promise<unknown>): { done: () => boolean; error: () => unknown } {
  let done = false
  let error: unknown
  p.then(
    () => (done = true),
    (e: unknown) => {
      done = true
      error = e
    },
  )
  return { done: () => done, error: () => error }
}

describe('MirroredDevice: the mirrored write path', () => {
  it('acknowledges a write only once the secondary confirmed its copy', async () => {
    const { dev, mirror, backend } = setup()
    mirror.manual = true
    const w = watch(dev.write(512, fill(512, 0xaa), { fua: false }))
    await settle()
    expect(w.done()).toBe(false)
    expect(mirror.copies).toHaveLength(1)
    expect(backend.writes).toEqual([]) // completed only after the commit
    await mirror.ack()
    await settle()
    expect(w.done()).toBe(true)
    expect(w.error()).toBeUndefined()
    expect(mirror.journal.stats().entries).toBe(0) // completed meanwhile
    expect(backend.writes).toEqual([{ offset: 512, length: 512, fua: false }])
  })

  it('hands the mirror the command context, or empty strings without one', async () => {
    let ctx: { initiator: string; isid: string; itt: number } | undefined = { initiator: 'iqn.h', isid: '400001370000', itt: 42 }
    const { dev, mirror } = setup({ context: () => ctx, now: () => 1234 })
    await dev.write(0, fill(8, 1), { fua: false })
    ctx = undefined
    await dev.write(8, fill(8, 2), { fua: false })
    expect(mirror.copies.map((c) => [c.initiator, c.isid, c.itt, c.receivedAtMs, c.key, c.offset])).toEqual([
      ['iqn.h', '400001370000', 42, 1234, KEY, 0],
      ['', '', 0, 1234, KEY, 8],
    ])
  })

  it('serves committed data from the overlay before it reaches the backend', async () => {
    const { dev, backend } = setup()
    backend.writeDelayMs = () => 40
    await dev.write(1000, fill(100, 7), { fua: false })
    expect(backend.data.subarray(1000, 1100)).toEqual(fill(100, 0))
    const r = await dev.read(990, 120)
    expect(r).toEqual(Buffer.concat([fill(10, 0), fill(100, 7), fill(10, 0)]))
    expect(dev.stats()).toMatchObject({ pendingWrites: 1, pendingBytes: 100, mode: 'mirrored' })
    await dev.flush()
    expect(backend.data.subarray(1000, 1100)).toEqual(fill(100, 7))
    expect(dev.stats()).toMatchObject({ pendingWrites: 0, pendingBytes: 0 })
  })

  it('keeps the caller buffer as it is: the copy and the overlay are that memory, not copies of it', async () => {
    const { dev, mirror } = setup()
    mirror.manual = true
    const buf = fill(16, 5)
    const w = dev.write(0, buf, { fua: false })
    await settle()
    const handed = mirror.requests[0]!
    expect(handed.kind === 'discard' ? undefined : handed.data).toBe(buf)
    expect(await dev.read(0, 16)).toEqual(fill(16, 5)) // from the overlay: not on the backend yet
    await mirror.ack()
    await w
    await dev.flush()
  })

  it('tells the secondary a write completed only once it is flushed to storage, in seq order', async () => {
    const { dev, mirror, backend } = setup({ flushDelayMs: 5 })
    backend.writeDelayMs = (c) => (c.offset / 512) % 3
    backend.flushDelayMs = () => 3
    const problems: string[] = []
    mirror.onCompleted = (seq) => {
      const c = mirror.copies[seq - 1]!
      if (!backend.durable.subarray(c.offset, c.offset + c.data!.length).equals(c.data!)) problems.push(`seq ${seq} not durable`)
    }
    const writes = Array.from({ length: 40 }, (_, i) => dev.write(i * 512, fill(512, i + 1), { fua: false }))
    await Promise.all(writes)
    await dev.drain()
    expect(problems).toEqual([])
    expect([...mirror.completedSeqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
    // Flushes were batched: far fewer than writes.
    expect(backend.flushes).toBeLessThan(10)
    expect(mirror.journal.stats().entries).toBe(0)
  })

  it('gathers completions for flushDelayMs, and flushes at once when the waiting writes reach flushBytes', async () => {
    const { dev, mirror, backend } = setup({ flushDelayMs: 60, flushBytes: 4096 })
    await dev.write(0, fill(1024, 1), { fua: false })
    await dev.write(1024, fill(1024, 2), { fua: false })
    await settle(20)
    // Committed and on the backend, but the flush waits for its timer: nothing completed yet.
    expect(backend.flushes).toBe(0)
    expect(mirror.completedSeqs).toEqual([])
    expect(dev.stats().pendingWrites).toBe(2)
    // Two more bring the waiting bytes to flushBytes: one flush now, for all four.
    await dev.write(2048, fill(1024, 3), { fua: false })
    await dev.write(3072, fill(1024, 4), { fua: false })
    await settle(10)
    expect(backend.flushes).toBe(1)
    expect(mirror.completedSeqs).toEqual([1, 2, 3, 4])
    expect(dev.stats()).toMatchObject({ pendingWrites: 0, pendingBytes: 0 })
  })

  it('does not flush back to back under a steady stream: writes that arrive during a flush wait for the next timer', async () => {
    const { dev, mirror, backend } = setup({ flushDelayMs: 40 })
    backend.flushDelayMs = () => 10
    const stopAt = performance.now() + 200
    let i = 0
    while (performance.now() < stopAt) {
      await dev.write((i % 64) * 512, fill(512, (i % 250) + 1), { fua: false })
      i++
      await settle(1)
    }
    await dev.drain()
    expect(mirror.completedSeqs).toHaveLength(i)
    // 200 ms of writes with a 40 ms delay: about five flushes (plus the drain's), not one per 10 ms flush.
    expect(backend.flushes).toBeGreaterThanOrEqual(3)
    expect(backend.flushes).toBeLessThanOrEqual(8)
  })

  it('does not complete before the flush: a failing flush keeps the copy at the secondary', async () => {
    const errors: unknown[] = []
    const { dev: d2, mirror, backend } = setup({ flushDelayMs: 0, onBackendError: (e) => errors.push(e) })
    const orig = backend.flush.bind(backend)
    let failures = 2
    backend.flush = () => {
      if (failures-- > 0) backend.failNext = new Error('flush EIO')
      return orig()
    }
    await d2.write(0, fill(64, 3), { fua: false })
    await settle(2)
    expect(mirror.completedSeqs).toEqual([])
    expect(mirror.journal.stats().entries).toBe(1)
    await expect(d2.flush()).rejects.toThrow('flush EIO') // the host hears of it
    await until(() => mirror.completedSeqs.length === 1) // retried with backoff until it succeeds
    await d2.drain()
    expect(mirror.completedSeqs).toEqual([1])
    expect(errors.length).toBeGreaterThanOrEqual(1)
  })

  it('retries a failed backend write of a committed write; reads keep seeing the data', async () => {
    const { dev, mirror, backend } = setup()
    backend.failNext = new Error('write EIO')
    await dev.write(0, fill(32, 8), { fua: false }) // committed: GOOD regardless
    expect(await dev.read(0, 32)).toEqual(fill(32, 8))
    await until(() => mirror.completedSeqs.length === 1)
    await dev.drain()
    expect(backend.data.subarray(0, 32)).toEqual(fill(32, 8))
    expect(mirror.completedSeqs).toEqual([1])
    expect(backend.writes).toHaveLength(2)
  })

  it('with FUA, waits for the write to be on storage as well', async () => {
    const { dev, backend, mirror } = setup({ flushDelayMs: 5000 })
    backend.writeDelayMs = () => 10
    const t0 = Date.now()
    await dev.write(0, fill(512, 4), { fua: true })
    expect(backend.durable.subarray(0, 512)).toEqual(fill(512, 4))
    expect(mirror.completedSeqs).toEqual([1])
    expect(Date.now() - t0).toBeLessThan(2500) // FUA does not wait out the batching delay
    // Without FUA the write returns at commit, long before the backend has it.
    backend.writeDelayMs = () => 30
    await dev.write(512, fill(512, 5), { fua: false })
    expect(backend.data.subarray(512, 1024)).toEqual(fill(512, 0))
    await dev.flush()
  })

  it('writes overlapping writes to the backend in commit order, others concurrently', async () => {
    const { dev, backend } = setup()
    const finished: number[] = []
    backend.writeDelayMs = (c) => (c.length === 100 ? 30 : c.length === 50 ? 1 : 5)
    const orig = backend.write.bind(backend)
    backend.write = async (o, d, opts) => {
      await orig(o, d, opts)
      finished.push(d.length)
    }
    await dev.write(0, fill(100, 1), { fua: false }) // slow
    await dev.write(50, fill(50, 2), { fua: false }) // fast, overlaps the first
    await dev.write(4096, fill(10, 3), { fua: false }) // elsewhere
    await settle(10)
    // The third went to the backend while the first was still being written; the second waited.
    expect(backend.writes.map((w) => w.length)).toEqual([100, 10])
    await dev.flush()
    expect(finished).toEqual([10, 100, 50])
    expect(backend.data.subarray(0, 100)).toEqual(Buffer.concat([fill(50, 1), fill(50, 2)]))
  })

  it('waits at maxPendingBytes instead of growing memory, and lets writes in in order', async () => {
    const { dev, mirror } = setup({ maxPendingBytes: 8192 })
    mirror.manual = true
    const a = watch(dev.write(0, fill(4096, 1), { fua: false }))
    const b = watch(dev.write(4096, fill(4096, 2), { fua: false }))
    const c = watch(dev.write(8192, fill(4096, 3), { fua: false }))
    const d = watch(dev.write(12288, fill(100, 4), { fua: false }))
    await settle()
    expect(mirror.copies).toHaveLength(2)
    expect(dev.stats()).toMatchObject({ pendingBytes: 8192, waitingForRoom: 2 })
    await mirror.ack(1)
    await settle(10) // a completes: c gets room, d still waits behind it (FIFO)
    expect(a.done()).toBe(true)
    expect(mirror.copies.map((x) => x.offset)).toEqual([0, 4096, 8192])
    expect(dev.stats()).toMatchObject({ pendingBytes: 8192, waitingForRoom: 1 })
    mirror.manual = false
    await mirror.ack()
    await dev.drain()
    await settle(1)
    expect(mirror.copies.map((x) => x.offset)).toEqual([0, 4096, 8192, 12288])
    expect([b.done(), c.done(), d.done()]).toEqual([true, true, true])
    expect(dev.stats()).toMatchObject({ pendingBytes: 0, waitingForRoom: 0 })
  })

  it('admits a single write larger than maxPendingBytes when nothing is pending', async () => {
    const { dev } = setup({ maxPendingBytes: 1024 })
    await dev.write(0, fill(4096, 1), { fua: false })
    await dev.flush()
  })

  it('flush() waits for every committed write to complete, then flushes the backend', async () => {
    const { dev, backend, mirror } = setup({ flushDelayMs: 5000 })
    backend.writeDelayMs = () => 5
    for (let i = 0; i < 10; i++) await dev.write(i * 100, fill(100, i), { fua: false })
    const flushesBefore = backend.flushes
    const t0 = Date.now()
    await dev.flush()
    expect(Date.now() - t0).toBeLessThan(2500) // it does not wait out the batching delay
    expect(dev.stats().pendingWrites).toBe(0)
    expect(mirror.completedSeqs).toHaveLength(10)
    expect(backend.flushes).toBeGreaterThan(flushesBefore)
    expect(backend.durable.subarray(900, 1000)).toEqual(fill(100, 9))
  })

  it('close() drains, flushes and closes the backend, and refuses later writes', async () => {
    const { dev, backend, mirror } = setup()
    backend.writeDelayMs = () => 5
    await dev.write(0, fill(10, 1), { fua: false })
    await dev.close()
    expect(backend.closed).toBe(true)
    expect(mirror.completedSeqs).toEqual([1])
    await expect(dev.write(0, fill(1, 1), { fua: false })).rejects.toMatchObject({ code: 'CLOSED' })
  })

  it('rejects I/O outside the device without mirroring it', async () => {
    const { dev, mirror } = setup({ size: 4096 })
    await expect(dev.write(4000, fill(200, 1), { fua: false })).rejects.toMatchObject({ code: 'OUT_OF_RANGE' })
    await expect(dev.read(-1, 2)).rejects.toMatchObject({ code: 'OUT_OF_RANGE' })
    expect(mirror.copies).toEqual([])
  })

  it('abort() stops touching the backend and fails waiters', async () => {
    const { dev, backend, mirror } = setup()
    backend.writeDelayMs = () => 20
    await dev.write(0, fill(10, 1), { fua: false }) // its backend write is under way
    mirror.manual = true
    const w = watch(dev.write(0, fill(10, 2), { fua: false }))
    const f = watch(dev.flush())
    await settle(1)
    dev.abort()
    await settle(40)
    expect(f.error()).toBeInstanceOf(Error)
    await mirror.ack()
    await settle()
    expect(w.error()).toBeInstanceOf(Error)
    expect(backend.writes).toHaveLength(1) // the second write never reached the backend
    expect(mirror.completedSeqs).toEqual([]) // nothing completed after the abort: the partner replays
    await expect(dev.read(0, 1)).rejects.toBeInstanceOf(Error)
  })
})

describe('MirroredDevice: degraded (write-through)', () => {
  it('writes through when there is no mirror or it is unhealthy', async () => {
    const { dev, backend, mirror, setMirror } = setup()
    backend.writeDelayMs = () => 10
    mirror.healthy = false
    expect(dev.stats().mode).toBe('degraded')
    await dev.write(0, fill(100, 1), { fua: false })
    expect(backend.data.subarray(0, 100)).toEqual(fill(100, 1)) // on the backend before GOOD
    expect(backend.durable.subarray(0, 100)).toEqual(fill(100, 0)) // no FUA: not synced
    setMirror(undefined)
    await dev.write(100, fill(100, 2), { fua: true })
    expect(backend.durable.subarray(100, 200)).toEqual(fill(100, 2))
    expect(backend.writes.map((w) => w.fua)).toEqual([false, true])
    expect(mirror.copies).toEqual([])
    expect(dev.stats()).toMatchObject({ pendingWrites: 0, mode: 'degraded' })
  })

  it('syncWriteThrough makes every written-through write durable before GOOD', async () => {
    const { dev, backend, mirror } = setup({ syncWriteThrough: true })
    mirror.healthy = false
    await dev.write(0, fill(100, 1), { fua: false })
    expect(backend.durable.subarray(0, 100)).toEqual(fill(100, 1))
  })

  it('writes through when the copy fails', async () => {
    const { dev, backend, mirror } = setup()
    mirror.manual = true
    backend.writeDelayMs = () => 10
    const w = watch(dev.write(0, fill(100, 1), { fua: false }))
    await settle()
    expect(w.done()).toBe(false)
    mirror.nak()
    await settle(20)
    expect(w.done()).toBe(true)
    expect(w.error()).toBeUndefined()
    expect(backend.data.subarray(0, 100)).toEqual(fill(100, 1))
    expect(mirror.completedSeqs).toEqual([])
    expect(mirror.journal.stats().entries).toBe(0)
  })

  it('reports a failed write-through to the host, and reads show the older data', async () => {
    const { dev, backend, mirror } = setup()
    await dev.write(0, fill(10, 1), { fua: false })
    await dev.flush()
    mirror.healthy = false
    backend.failNext = new Error('EIO')
    await expect(dev.write(0, fill(10, 2), { fua: false })).rejects.toThrow('EIO')
    expect(await dev.read(0, 10)).toEqual(fill(10, 1))
    expect(dev.stats().pendingWrites).toBe(0)
  })

  it('acknowledges a write-through only once earlier overlapping mirrored writes are completed', async () => {
    const { dev, backend, mirror } = setup({ flushDelayMs: 30 })
    const order: string[] = []
    mirror.onCompleted = (seq) => order.push(`completed #${seq}`)
    await dev.write(0, fill(100, 1), { fua: false }) // committed, completion waits for a flush
    backend.flushDelayMs = () => 40 // the flush that completes it is slow
    mirror.healthy = false
    const w = watch(dev.write(50, fill(100, 2), { fua: false }).then(() => order.push('write-through acknowledged')))
    await settle(10)
    expect(backend.data.subarray(50, 150)).toEqual(fill(100, 2)) // on the backend, in order
    expect(w.done()).toBe(false) // but the secondary still holds the older copy of 50..99
    await dev.drain()
    await settle(1)
    expect(w.done()).toBe(true)
    expect(order).toEqual(['completed #1', 'write-through acknowledged'])
    expect(mirror.completedSeqs).toEqual([1])
    expect(await dev.read(0, 150)).toEqual(Buffer.concat([fill(50, 1), fill(100, 2)]))
  })
})

describe('MirroredDevice: discard (UNMAP)', () => {
  it('acknowledges a discard once the secondary confirmed its copy, which carries the range and no data', async () => {
    let ctx: { initiator: string; isid: string; itt: number } | undefined = { initiator: 'iqn.h', isid: '400001370000', itt: 9 }
    const { dev, mirror, backend } = setup({ context: () => ctx, now: () => 77 })
    mirror.manual = true
    const d = watch(dev.discard([{ offset: 4096, length: 32768 }]))
    await settle()
    expect(d.done()).toBe(false)
    expect(mirror.copies).toHaveLength(1)
    expect(mirror.copies[0]).toMatchObject({ kind: 'discard', offset: 4096, length: 32768, key: KEY, initiator: 'iqn.h', itt: 9, receivedAtMs: 77 })
    expect(mirror.copies[0]!.data).toBeUndefined()
    expect(backend.discards).toEqual([]) // completed only after the commit
    ctx = undefined
    await mirror.ack()
    await settle()
    expect(d.done()).toBe(true)
    expect(d.error()).toBeUndefined()
    expect(backend.discards).toEqual([{ offset: 4096, length: 32768 }])
    expect(backend.writes).toEqual([]) // no zeros written: the backend deallocates
    expect(mirror.completedSeqs).toEqual([1]) // after the batched flush
    expect(mirror.journal.stats().entries).toBe(0)
  })

  it('reads zeros from the overlay while the discard is not on the backend yet', async () => {
    const { dev, backend, mirror } = setup()
    await dev.write(0, fill(8192, 0x33), { fua: false })
    await dev.flush()
    backend.discardDelayMs = () => 40
    await dev.discard([{ offset: 1024, length: 4096 }])
    expect(backend.data.subarray(1024, 5120)).toEqual(fill(4096, 0x33)) // still on the backend
    expect(await dev.read(0, 8192)).toEqual(Buffer.concat([fill(1024, 0x33), fill(4096, 0), fill(3072, 0x33)]))
    expect(dev.stats()).toMatchObject({ pendingWrites: 1, pendingBytes: DISCARD_ENTRY_BYTES, mode: 'mirrored' })
    expect(mirror.journal.stats()).toMatchObject({ entries: 1, bytes: 0 })
    await dev.flush()
    expect(backend.durable.subarray(1024, 5120)).toEqual(fill(4096, 0))
    expect(dev.stats()).toMatchObject({ pendingWrites: 0, pendingBytes: 0 })
  })

  it('orders a discard with overlapping writes: the earlier write never resurfaces, the later one wins', async () => {
    const { dev, backend } = setup()
    const done: string[] = []
    const origWrite = backend.write.bind(backend)
    backend.write = async (o, d, opts) => {
      await origWrite(o, d, opts)
      done.push(`write ${o}`)
    }
    const origDiscard = backend.discard.bind(backend)
    backend.discard = async (ranges) => {
      await origDiscard(ranges)
      done.push(`discard ${ranges[0]!.offset}`)
    }
    backend.writeDelayMs = (c) => (c.offset === 0 ? 40 : 1)
    await dev.write(0, fill(4096, 1), { fua: false }) // earlier, slow to reach the backend
    await dev.discard([{ offset: 1024, length: 2048 }])
    await dev.write(2048, fill(512, 2), { fua: false }) // later, inside the range
    const expected = Buffer.concat([fill(1024, 1), fill(1024, 0), fill(512, 2), fill(512, 0), fill(1024, 1)])
    expect(await dev.read(0, 4096)).toEqual(expected)
    await settle(10)
    expect(await dev.read(0, 4096)).toEqual(expected)
    await dev.flush()
    expect(done).toEqual(['write 0', 'discard 1024', 'write 2048'])
    expect(backend.durable.subarray(0, 4096)).toEqual(expected)
    expect(await dev.read(0, 4096)).toEqual(expected)
  })

  it('one entry per range, resolved once all are committed; empty ranges are skipped', async () => {
    const { dev, mirror, backend } = setup()
    mirror.manual = true
    const d = watch(dev.discard([{ offset: 0, length: 512 }, { offset: 8192, length: 0 }, { offset: 16384, length: 1024 }]))
    await settle()
    expect(mirror.copies.map((c) => [c.kind, c.offset, c.kind === 'discard' ? c.length : -1])).toEqual([
      ['discard', 0, 512],
      ['discard', 16384, 1024],
    ])
    await mirror.ack(1)
    await settle()
    expect(d.done()).toBe(false)
    await mirror.ack()
    await settle()
    expect(d.done()).toBe(true)
    await dev.flush()
    expect(backend.discards).toEqual([{ offset: 0, length: 512 }, { offset: 16384, length: 1024 }])
  })

  it('the ranges of one UNMAP reach the backend in one discard() call, as without the pair', async () => {
    const { dev, backend, mirror } = setup()
    await dev.discard(Array.from({ length: 8 }, (_, i) => ({ offset: i * 8192, length: 4096 })))
    await dev.flush()
    expect(mirror.copies).toHaveLength(8)
    expect(backend.discards).toHaveLength(8)
    // Degraded too: one call for the whole UNMAP.
    mirror.healthy = false
    const calls: number[] = []
    const orig = backend.discard.bind(backend)
    backend.discard = (ranges) => {
      calls.push(ranges.length)
      return orig(ranges)
    }
    await dev.discard(Array.from({ length: 5 }, (_, i) => ({ offset: i * 8192, length: 512 })))
    expect(calls).toEqual([5])
  })

  it('abort() before a committed discard reached the backend: the backend is not touched, nothing completes', async () => {
    const { dev, backend, mirror } = setup()
    await dev.discard([{ offset: 0, length: 4096 }])
    dev.abort()
    await settle(10)
    expect(backend.discards).toEqual([])
    expect(mirror.completedSeqs).toEqual([])
    expect(mirror.journal.stats().entries).toBe(1) // the partner replays it
  })

  it('rejects a discard outside the device without mirroring anything', async () => {
    const { dev, mirror } = setup({ size: 8192 })
    await expect(dev.discard([{ offset: 0, length: 512 }, { offset: 8000, length: 512 }])).rejects.toMatchObject({ code: 'OUT_OF_RANGE' })
    expect(mirror.copies).toEqual([])
  })

  it('counts DISCARD_ENTRY_BYTES per entry against maxPendingBytes: a huge UNMAP waits for room', async () => {
    const { dev, mirror } = setup({ maxPendingBytes: 2 * DISCARD_ENTRY_BYTES })
    mirror.manual = true
    const ranges = Array.from({ length: 5 }, (_, i) => ({ offset: i * 4096, length: 4096 }))
    const d = watch(dev.discard(ranges))
    await settle()
    expect(mirror.copies).toHaveLength(2)
    expect(dev.stats()).toMatchObject({ pendingWrites: 2, pendingBytes: 2 * DISCARD_ENTRY_BYTES, waitingForRoom: 3 })
    mirror.manual = false
    await mirror.ack()
    await until(() => d.done())
    expect(d.error()).toBeUndefined()
    expect(mirror.copies).toHaveLength(5)
    await dev.drain()
    expect(dev.stats()).toMatchObject({ pendingBytes: 0, waitingForRoom: 0 })
  })

  it('retries a failed backend discard of a committed discard; reads keep seeing zeros', async () => {
    const { dev, mirror, backend } = setup()
    await dev.write(0, fill(4096, 5), { fua: false })
    await dev.flush()
    backend.failNextDiscard = new Error('discard EIO')
    await dev.discard([{ offset: 0, length: 4096 }])
    expect(await dev.read(0, 4096)).toEqual(fill(4096, 0))
    await until(() => mirror.completedSeqs.length === 2)
    await dev.drain()
    expect(backend.discards).toHaveLength(2)
    expect(backend.durable.subarray(0, 4096)).toEqual(fill(4096, 0))
  })

  it('writes zeros through write() on a backend without discard()', async () => {
    const { dev, backend } = setup({ noDiscard: true, size: 3 << 20 })
    await dev.write(0, fill(3 << 20, 9), { fua: false })
    await dev.discard([{ offset: 100, length: (2 << 20) + 10 }])
    await dev.flush()
    expect(backend.writes.slice(1).map((w) => [w.offset, w.length])).toEqual([
      [100, 1 << 20],
      [100 + (1 << 20), 1 << 20],
      [100 + (2 << 20), 10],
    ])
    expect(backend.durable.subarray(100, 110 + (2 << 20)).every((b) => b === 0)).toBe(true)
    expect([backend.durable[99], backend.durable[110 + (2 << 20)]]).toEqual([9, 9])
  })

  it('degraded: deallocates on the backend before resolving; syncWriteThrough flushes it too', async () => {
    const { dev, backend, mirror } = setup({ syncWriteThrough: true })
    await dev.write(0, fill(8192, 4), { fua: false })
    await dev.flush()
    mirror.healthy = false
    expect(dev.stats().mode).toBe('degraded')
    backend.discardDelayMs = () => 10
    await dev.discard([{ offset: 4096, length: 4096 }])
    expect(backend.discards).toEqual([{ offset: 4096, length: 4096 }])
    expect(backend.durable.subarray(4096, 8192)).toEqual(fill(4096, 0)) // durable before GOOD
    expect(mirror.copies).toHaveLength(1) // only the first write
    expect(dev.stats()).toMatchObject({ pendingWrites: 0, pendingBytes: 0 })
  })

  it('degraded after a failed copy; a failed backend discard is reported and reads show the older data', async () => {
    const { dev, backend, mirror } = setup()
    await dev.write(0, fill(4096, 6), { fua: false })
    await dev.flush()
    mirror.manual = true
    const d = watch(dev.discard([{ offset: 0, length: 2048 }]))
    await settle()
    mirror.nak()
    await settle(5)
    expect(d.done()).toBe(true)
    expect(d.error()).toBeUndefined()
    expect(backend.data.subarray(0, 2048)).toEqual(fill(2048, 0))
    mirror.manual = false
    mirror.healthy = false
    backend.failNextDiscard = new Error('EIO')
    await expect(dev.discard([{ offset: 2048, length: 2048 }])).rejects.toThrow('EIO')
    expect(await dev.read(0, 4096)).toEqual(Buffer.concat([fill(2048, 0), fill(2048, 6)]))
  })

  it('degraded: acknowledged only once earlier overlapping mirrored writes are completed', async () => {
    const { dev, backend, mirror } = setup({ flushDelayMs: 30 })
    const order: string[] = []
    mirror.onCompleted = (seq) => order.push(`completed #${seq}`)
    await dev.write(0, fill(4096, 1), { fua: false }) // committed, completion waits for a flush
    backend.flushDelayMs = () => 40
    mirror.healthy = false
    const d = watch(dev.discard([{ offset: 1024, length: 1024 }]).then(() => order.push('discard acknowledged')))
    await settle(10)
    expect(backend.data.subarray(1024, 2048)).toEqual(fill(1024, 0)) // on the backend, in order
    expect(d.done()).toBe(false) // the secondary still holds the older copy of 1024..2047
    await dev.drain()
    await settle(1)
    expect(d.done()).toBe(true)
    expect(order).toEqual(['completed #1', 'discard acknowledged'])
    expect(mirror.completedSeqs).toEqual([1])
    expect(await dev.read(0, 4096)).toEqual(Buffer.concat([fill(1024, 1), fill(1024, 0), fill(2048, 1)]))
  })
})

// --- randomized -------------------------------------------------------------------------------

function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const SIZE = 16 * 1024

function randomRange(rnd: () => number): { offset: number; length: number } {
  const length = 1 + Math.floor(rnd() * (rnd() < 0.8 ? 600 : 4000))
  const offset = Math.floor(rnd() * (SIZE - length))
  return { offset, length }
}

/** What a failover would leave: durable storage, then the secondary's copies in seq order. */
function afterFailover(backend: DurableDevice, journal: Journal): Buffer {
  const img = Buffer.from(backend.durable)
  for (const e of journal.pending()) {
    if (e.kind === 'discard') img.fill(0, e.offset, e.offset + e.length)
    else e.data.copy(img, e.offset)
  }
  return img
}

describe('MirroredDevice: randomized', () => {
  const seeds = [1, 2, 3, 20240601]

  for (const seed of seeds) {
    it(`one host, random delays, failures and mirror flips: reads return the last acknowledged data (seed ${seed})`, async () => {
      const rnd = prng(seed)
      const { dev, backend, mirror } = setup({ size: SIZE, maxPendingBytes: 8192, flushDelayMs: 1, syncWriteThrough: true })
      backend.writeDelayMs = () => (rnd() < 0.5 ? 0 : Math.floor(rnd() * 4))
      backend.flushDelayMs = () => (rnd() < 0.5 ? 0 : Math.floor(rnd() * 3))
      mirror.ackDelayMs = () => (rnd() < 0.3 ? 0 : Math.floor(rnd() * 3))
      mirror.shouldFail = () => rnd() < 0.08
      const model = Buffer.alloc(SIZE)
      let value = 0
      for (let op = 0; op < 300; op++) {
        if (rnd() < 0.04) mirror.healthy = !mirror.healthy
        const r = rnd()
        if (r < 0.6) {
          const { offset, length } = randomRange(rnd)
          const data = Buffer.alloc(length, (++value % 255) + 1)
          await dev.write(offset, data, { fua: rnd() < 0.2 })
          data.copy(model, offset)
          // At this instant the primary may die: storage + the secondary's copies must hold
          // every acknowledged write.
          expect(afterFailover(backend, mirror.journal).equals(model), `failover image after op ${op}`).toBe(true)
        } else if (r < 0.9) {
          const { offset, length } = randomRange(rnd)
          const got = await dev.read(offset, length)
          expect(got.equals(model.subarray(offset, offset + length)), `read ${offset}+${length} at op ${op}`).toBe(true)
        } else if (r < 0.95) {
          await dev.flush()
          expect(backend.durable.equals(model), `durable after flush at op ${op}`).toBe(true)
        } else {
          await sleep(Math.floor(rnd() * 5))
          expect(afterFailover(backend, mirror.journal).equals(model), `failover image at op ${op}`).toBe(true)
        }
      }
      await dev.flush()
      expect(backend.data.equals(model)).toBe(true)
      expect(backend.durable.equals(model)).toBe(true)
      expect(mirror.journal.stats().entries).toBe(0)
    })

    for (const tight of [false, true]) {
      it(`writes and discards, random delays, failures and mirror flips${tight ? ', little room' : ''}: reads and failover images hold (seed ${seed})`, async () => {
        const rnd = prng(seed * 104729 + (tight ? 1 : 0))
        // With little room, writes and discards wait for it: a read issued meanwhile may not see
        // them yet (as with any concurrent commands), so reads are checked after they resolved.
        const maxPendingBytes = tight ? 3 * DISCARD_ENTRY_BYTES : 1 << 30
        const { dev, backend, mirror } = setup({ size: SIZE, maxPendingBytes, flushDelayMs: 1, syncWriteThrough: true })
        backend.writeDelayMs = () => (rnd() < 0.5 ? 0 : Math.floor(rnd() * 4))
        backend.discardDelayMs = () => (rnd() < 0.5 ? 0 : Math.floor(rnd() * 4))
        backend.flushDelayMs = () => (rnd() < 0.5 ? 0 : Math.floor(rnd() * 3))
        mirror.ackDelayMs = () => (rnd() < 0.3 ? 0 : Math.floor(rnd() * 3))
        mirror.shouldFail = () => rnd() < 0.08
        const model = Buffer.alloc(SIZE)
        let value = 0
        for (let round = 0; round < 60; round++) {
          if (rnd() < 0.1) mirror.healthy = !mirror.healthy
          const ops: Promise<unknown>[] = []
          for (let n = 1 + Math.floor(rnd() * 8); n > 0; n--) {
            const r = rnd()
            const { offset, length } = randomRange(rnd)
            if (r < 0.45) {
              const data = Buffer.alloc(length, (++value % 255) + 1)
              ops.push(dev.write(offset, data, { fua: rnd() < 0.1 }))
              data.copy(model, offset) // call order decides
            } else if (r < 0.75) {
              const second = randomRange(rnd)
              const ranges = rnd() < 0.3 ? [{ offset, length }, second] : [{ offset, length }]
              ops.push(dev.discard(ranges))
              for (const x of ranges) model.fill(0, x.offset, x.offset + x.length)
            } else if (!tight) {
              // Everything called so far is in the overlay: the read sees it.
              const want = Buffer.from(model.subarray(offset, offset + length))
              ops.push(dev.read(offset, length).then((got) => expect(got.equals(want), `read ${offset}+${length} in round ${round}`).toBe(true)))
            }
          }
          await Promise.all(ops)
          // Everything acknowledged: storage plus the secondary's copies must hold it all.
          expect(afterFailover(backend, mirror.journal).equals(model), `failover image after round ${round}`).toBe(true)
          expect((await dev.read(0, SIZE)).equals(model), `whole device after round ${round}`).toBe(true)
        }
        await dev.flush()
        expect(backend.durable.equals(model)).toBe(true)
        expect(mirror.journal.stats().entries).toBe(0)
      })
    }

    it(`concurrent overlapping writes and reads: the final data follows call order (seed ${seed})`, async () => {
      const rnd = prng(seed * 7919)
      const { dev, backend, mirror } = setup({ size: SIZE, maxPendingBytes: 6000, flushDelayMs: 2 })
      backend.writeDelayMs = () => Math.floor(rnd() * 4)
      backend.flushDelayMs = () => Math.floor(rnd() * 2)
      mirror.ackDelayMs = () => Math.floor(rnd() * 4)
      mirror.shouldFail = () => rnd() < 0.1
      const model = Buffer.alloc(SIZE)
      let value = 0
      for (let round = 0; round < 40; round++) {
        if (rnd() < 0.2) mirror.healthy = !mirror.healthy
        const ops: Promise<unknown>[] = []
        const n = 1 + Math.floor(rnd() * 12)
        for (let i = 0; i < n; i++) {
          if (rnd() < 0.7) {
            const { offset, length } = randomRange(rnd)
            const data = Buffer.alloc(length, (++value % 255) + 1)
            ops.push(dev.write(offset, data, { fua: rnd() < 0.1 }))
            data.copy(model, offset) // call order decides
          } else {
            const { offset, length } = randomRange(rnd)
            ops.push(dev.read(offset, length))
          }
          if (rnd() < 0.3) await sleep(Math.floor(rnd() * 2))
        }
        if (rnd() < 0.2) ops.push(dev.flush())
        await Promise.all(ops)
        const whole = await dev.read(0, SIZE)
        expect(whole.equals(model), `round ${round}`).toBe(true)
      }
      await dev.close()
      expect(backend.data.equals(model)).toBe(true)
    })
  }
})
