import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  DEFAULT_LEASE_TIMINGS,
  Lease,
  LeaseConfigError,
  leaseTimingsFromHa,
  resolveLeaseTimings,
  type LeaseTimings,
} from '../../../src/ha/lease.js'
import {
  LEASE_AREA_SIZE,
  LEASE_RECORD_SIZE,
  LEASE_SLOT_SIZE,
  decodeLeaseArea,
  decodeLeaseSlot,
  encodeLeaseRecord,
  slotOf,
  type LeaseRecord,
} from '../../../src/ha/lease-record.js'
import { FileLeaseStore, MemoryLeaseStore, leasePathFor, type LeaseStore } from '../../../src/ha/lease-store.js'

// ---- helpers ----

/** A shared simulated monotonic clock; `sleep` advances it and runs hooks (other "processes"). */
class FakeTime {
  now = 1000
  hooks: Array<() => Promise<void>> = []
  clock = (): number => this.now
  sleep = async (ms: number): Promise<void> => {
    this.now += ms
    for (const h of this.hooks.splice(0)) await h()
  }
}

/** A store wrapper that lets a test add latency or misbehave per operation. */
class HookedStore implements LeaseStore {
  beforeRead?: () => void | Promise<void>
  beforeWrite?: (offset: number, data: Buffer) => void | Promise<void>
  afterWrite?: () => void | Promise<void>
  tearNextWrite = false
  constructor(readonly inner: MemoryLeaseStore) {}
  async read(offset: number, length: number): Promise<Buffer> {
    await this.beforeRead?.()
    return this.inner.read(offset, length)
  }
  async write(offset: number, data: Buffer): Promise<void> {
    await this.beforeWrite?.(offset, data)
    if (this.tearNextWrite) {
      this.tearNextWrite = false
      await this.inner.write(offset, data.subarray(0, 200))
      throw new Error('EIO: torn')
    }
    await this.inner.write(offset, data)
    await this.afterWrite?.()
  }
  sync(): Promise<void> {
    return this.inner.sync()
  }
  close(): Promise<void> {
    return this.inner.close()
  }
}

function rec(over: Partial<LeaseRecord> = {}): LeaseRecord {
  return {
    epoch: 3,
    holder: 'a',
    incarnation: 77,
    generation: 10,
    counter: 5,
    durationMs: 600,
    released: false,
    successor: '',
    ...over,
  }
}

function put(store: MemoryLeaseStore, r: LeaseRecord): void {
  encodeLeaseRecord(r).copy(store.bytes, slotOf(r.generation) * LEASE_SLOT_SIZE)
}

function current(store: MemoryLeaseStore): LeaseRecord {
  const v = decodeLeaseArea(store.bytes)
  if (v.kind !== 'record') throw new Error(`no record: ${v.kind}`)
  return v.record
}

function mk(store: LeaseStore, time: FakeTime, node: string, incarnation: number, timings?: Partial<LeaseTimings>): Lease {
  return new Lease({ store, node, incarnation, clock: time.clock, sleep: time.sleep, timings })
}

/** Poll `lease` every pollIntervalMs for `ms`, while `holder` (if any) renews every renewIntervalMs. */
async function run(time: FakeTime, ms: number, watchers: Lease[], holder?: Lease): Promise<void> {
  const end = time.now + ms
  let nextRenew = time.now
  while (time.now < end) {
    if (holder && time.now >= nextRenew) {
      await holder.renew()
      nextRenew += holder.timings.renewIntervalMs
    }
    for (const w of watchers) await w.read()
    time.now += 50
  }
}

// ---- the record ----

describe('lease record', () => {
  it('round-trips every field', () => {
    const r = rec({ released: true, successor: 'node-b', holder: 'node-a', generation: 2 ** 40, counter: 2 ** 50, epoch: 0xffffffff })
    const slot = encodeLeaseRecord(r)
    expect(slot.length).toBe(LEASE_SLOT_SIZE)
    expect(slot.subarray(0, 4).toString('latin1')).toBe('IHAL')
    expect(decodeLeaseSlot(slot)).toEqual({ kind: 'valid', record: r })
  })

  it('reads an all-zero slot as never written, not as a record', () => {
    expect(decodeLeaseSlot(Buffer.alloc(LEASE_SLOT_SIZE))).toEqual({ kind: 'zero' })
    expect(decodeLeaseArea(Buffer.alloc(LEASE_AREA_SIZE))).toEqual({ kind: 'empty' })
  })

  it('treats any single flipped bit in the record as garbage', () => {
    const slot = encodeLeaseRecord(rec())
    for (let byte = 0; byte < LEASE_RECORD_SIZE; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const b = Buffer.from(slot)
        b[byte]! ^= 1 << bit
        expect(decodeLeaseSlot(b).kind, `byte ${byte} bit ${bit}`).toBe('garbage')
      }
    }
  })

  it('treats a record torn at any 8-byte boundary (new prefix, old suffix) as garbage', () => {
    const oldSlot = encodeLeaseRecord(rec({ generation: 8, counter: 4 }))
    const newSlot = encodeLeaseRecord(rec({ generation: 10, counter: 6 }))
    for (let cut = 8; cut < LEASE_RECORD_SIZE; cut += 8) {
      const torn = Buffer.concat([newSlot.subarray(0, cut), oldSlot.subarray(cut)])
      if (torn.equals(newSlot) || torn.equals(oldSlot)) continue
      expect(decodeLeaseSlot(torn).kind, `cut at ${cut}`).toBe('garbage')
    }
    // And a half-written slot over zeros.
    const half = Buffer.concat([newSlot.subarray(0, 256), Buffer.alloc(LEASE_SLOT_SIZE - 256)])
    expect(decodeLeaseSlot(half).kind).toBe('garbage')
  })

  it('picks the valid slot with the highest generation; a torn slot falls back to the other', () => {
    const area = Buffer.alloc(LEASE_AREA_SIZE)
    encodeLeaseRecord(rec({ generation: 11, counter: 1 })).copy(area, LEASE_SLOT_SIZE)
    encodeLeaseRecord(rec({ generation: 12, counter: 2 })).copy(area, 0)
    const v = decodeLeaseArea(area)
    expect(v.kind === 'record' && v.record.generation).toBe(12)
    area[100]! ^= 0xff // tear slot 0
    const w = decodeLeaseArea(area)
    expect(w.kind === 'record' && w.record.generation).toBe(11)
    area[LEASE_SLOT_SIZE + 100]! ^= 0xff // and slot 1
    const u = decodeLeaseArea(area)
    expect(u.kind).toBe('unknown')
  })

  it('never reads garbage as free: one garbage slot and one zero slot is unknown', () => {
    const area = Buffer.alloc(LEASE_AREA_SIZE)
    area.fill(0x5a, LEASE_SLOT_SIZE, LEASE_SLOT_SIZE + 300)
    expect(decodeLeaseArea(area).kind).toBe('unknown')
  })

  it('refuses names over 64 bytes and out-of-range numbers', () => {
    expect(() => encodeLeaseRecord(rec({ holder: 'x'.repeat(65) }))).toThrow(/longer than 64/)
    expect(() => encodeLeaseRecord(rec({ epoch: 2 ** 32 }))).toThrow(/epoch/)
    expect(() => encodeLeaseRecord(rec({ counter: -1 }))).toThrow(/counter/)
  })

  it('rejects a valid-CRC record with an unknown version or flags', async () => {
    const { crc32c } = await import('@node-rs/crc32')
    const b = encodeLeaseRecord(rec())
    b.writeUInt16LE(2, 4)
    b.writeUInt32LE(crc32c(b.subarray(0, 508)) >>> 0, 508)
    expect(decodeLeaseSlot(b)).toMatchObject({ kind: 'garbage', why: expect.stringMatching(/version/) })
  })
})

// ---- timings ----

describe('lease timings', () => {
  it('defaults: 600 ms lease, renew 100, poll 50, fence after 360, settle 100', () => {
    const t = resolveLeaseTimings()
    expect(t).toMatchObject({ ...DEFAULT_LEASE_TIMINGS })
    expect(t.fenceAfterMs).toBeLessThan(t.durationMs)
  })

  it('derives fenceAfter as 0.6 × duration', () => {
    expect(resolveLeaseTimings({ durationMs: 1000 })).toMatchObject({ fenceAfterMs: 600, settleMs: 100 })
    expect(resolveLeaseTimings({ durationMs: 200 })).toMatchObject({ fenceAfterMs: 120, settleMs: 40 })
  })

  it('takes the config’s ha section', () => {
    expect(leaseTimingsFromHa({ leaseDurationMs: 600, leaseRenewMs: 100, fenceAfterMs: 360 })).toMatchObject(DEFAULT_LEASE_TIMINGS)
    expect(leaseTimingsFromHa({ leaseDurationMs: 2000, leaseRenewMs: 200, fenceAfterMs: 1200 })).toMatchObject({ pollIntervalMs: 50, settleMs: 100 })
  })

  it('refuses timings that would let both serve', () => {
    expect(() => resolveLeaseTimings({ fenceAfterMs: 600 })).toThrow(LeaseConfigError)
    expect(() => resolveLeaseTimings({ fenceAfterMs: 700 })).toThrow(/less than durationMs/)
    expect(() => resolveLeaseTimings({ settleMs: 300 })).toThrow(/settleMs/)
    expect(() => resolveLeaseTimings({ renewIntervalMs: 400 })).toThrow(/renewIntervalMs/)
    expect(() => resolveLeaseTimings({ durationMs: -5 })).toThrow(LeaseConfigError)
  })
})

// ---- the lease on memory ----

describe('lease: holder', () => {
  let time: FakeTime
  let mem: MemoryLeaseStore
  beforeEach(() => {
    time = new FakeTime()
    mem = new MemoryLeaseStore()
  })

  it('takes a never-written lease at once with epoch 1 and renews it with counter+1', async () => {
    const a = mk(mem, time, 'a', 1)
    const r = await a.acquireInitial()
    expect(r).toMatchObject({ ok: true, epoch: 1 })
    expect(current(mem)).toMatchObject({ holder: 'a', epoch: 1, counter: 1, incarnation: 1, durationMs: 600 })
    expect(a.state).toBe('held')
    expect(a.mustFence()).toBe(false)
    const c0 = current(mem).counter
    time.now += 100
    const rr = await a.renew()
    expect(rr).toMatchObject({ outcome: 'renewed', epoch: 1, counter: c0 + 1, validFrom: time.now, validUntil: time.now + 360 })
    expect(current(mem).counter).toBe(c0 + 1)
    expect(mem.syncs).toBeGreaterThanOrEqual(2)
  })

  it('mustFence turns true fenceAfterMs after the last renewal began, and stays true', async () => {
    const a = mk(mem, time, 'a', 1)
    await a.acquireInitial()
    time.now += 50
    const r = await a.renew()
    if (r.outcome !== 'renewed') throw new Error(r.outcome)
    expect(a.mustFence(r.validFrom + 359)).toBe(false)
    expect(a.mustFence(r.validFrom + 360)).toBe(true)
    expect(a.state).toBe('expired')
    expect(a.mustFence(r.validFrom + 1)).toBe(true) // sticky
    const writes = mem.writes
    expect(await a.renew()).toMatchObject({ outcome: 'expired' })
    expect(mem.writes).toBe(writes) // an expired holder never writes again
  })

  it('a renewal that starts after the deadline does not write and does not revive the lease', async () => {
    const a = mk(mem, time, 'a', 1)
    await a.acquireInitial()
    time.now += 400 // paused past fenceAfter, nobody asked mustFence
    const writes = mem.writes
    expect(await a.renew()).toMatchObject({ outcome: 'expired' })
    expect(mem.writes).toBe(writes)
    expect(a.mustFence()).toBe(true)
  })

  it('a slow renewal counts if it finished before the deadline; one whose read returns after it writes nothing', async () => {
    const h = new HookedStore(mem)
    const a = mk(h, time, 'a', 1)
    await a.acquireInitial()
    await a.renew()
    const started = time.now + 10
    time.now = started
    h.afterWrite = () => {
      time.now += 300 // deadline is lastOk + 360
    }
    expect(await a.renew()).toMatchObject({ outcome: 'renewed', validFrom: started })
    h.afterWrite = undefined
    // Paused between read and write until past the deadline: nothing written, tenure over.
    const gen = current(mem).generation
    h.beforeRead = () => {
      time.now += 400
    }
    expect(await a.renew()).toMatchObject({ outcome: 'expired' })
    expect(current(mem).generation).toBe(gen)
    expect(a.mustFence()).toBe(true)
  })

  it('a renewal that finishes after the deadline does not extend it', async () => {
    const h = new HookedStore(mem)
    const a = mk(h, time, 'a', 1)
    await a.acquireInitial()
    const deadline = a.validUntil()
    time.now = deadline - 20
    h.afterWrite = () => {
      time.now += 30
    }
    expect(await a.renew()).toMatchObject({ outcome: 'expired' })
    expect(a.mustFence()).toBe(true)
  })

  it('a torn renewal write leaves the previous record readable and the next renewal succeeds', async () => {
    const h = new HookedStore(mem)
    const a = mk(h, time, 'a', 1)
    await a.acquireInitial()
    time.now += 100
    await a.renew()
    const good = current(mem)
    h.tearNextWrite = true
    time.now += 100
    expect(await a.renew()).toMatchObject({ outcome: 'failed', reason: 'io' })
    expect(current(mem)).toEqual(good) // the torn slot is garbage; the other slot still holds `good`
    time.now += 100
    expect(await a.renew()).toMatchObject({ outcome: 'renewed' })
    expect(current(mem).generation).toBe(good.generation + 1)
  })

  it('is lost when the record shows a higher epoch or another holder at our epoch', async () => {
    const a = mk(mem, time, 'a', 1)
    await a.acquireInitial()
    const mine = current(mem)
    put(mem, { ...mine, generation: mine.generation + 1, epoch: 2, holder: 'b', incarnation: 9 })
    time.now += 100
    expect(await a.renew()).toMatchObject({ outcome: 'lost', holder: 'b', epoch: 2 })
    expect(a.state).toBe('lost')
    expect(a.mustFence()).toBe(true)
    expect(await a.renew()).toMatchObject({ outcome: 'lost' })

    const mem2 = new MemoryLeaseStore()
    const a2 = mk(mem2, time, 'a', 1)
    await a2.acquireInitial()
    const m2 = current(mem2)
    put(mem2, { ...m2, generation: m2.generation + 1, holder: 'b', incarnation: 9 })
    expect(await a2.renew()).toMatchObject({ outcome: 'lost' })
  })

  it('a restarted process (same node name, new incarnation) does not mistake the old record for its own', async () => {
    const a = mk(mem, time, 'a', 1)
    await a.acquireInitial()
    const mine = current(mem)
    put(mem, { ...mine, generation: mine.generation + 1, incarnation: 2 })
    expect(await a.renew()).toMatchObject({ outcome: 'lost' })
  })

  it('writes over a stale lower-epoch record (a deposed holder’s late write)', async () => {
    const a = mk(mem, time, 'a', 1)
    await a.acquireInitial()
    const mine = current(mem)
    put(mem, { ...mine, generation: mine.generation + 1, epoch: 0, holder: 'b', incarnation: 9, counter: 999 })
    time.now += 100
    expect(await a.renew()).toMatchObject({ outcome: 'renewed', repaired: true })
    expect(current(mem)).toMatchObject({ holder: 'a', epoch: 1, incarnation: 1 })
  })

  it('does not write over an unreadable record, and fences when that lasts', async () => {
    const a = mk(mem, time, 'a', 1)
    await a.acquireInitial()
    await a.renew()
    mem.bytes.fill(0x33)
    for (let i = 0; i < 3; i++) {
      time.now += 100
      expect(await a.renew()).toMatchObject({ outcome: 'failed', reason: 'unknown' })
    }
    expect(mem.bytes.every((b) => b === 0x33)).toBe(true)
    time.now += 100
    expect(a.mustFence()).toBe(true)
  })
})

describe('lease: watcher and takeover', () => {
  let time: FakeTime
  let mem: MemoryLeaseStore
  beforeEach(() => {
    time = new FakeTime()
    mem = new MemoryLeaseStore()
  })

  it('never sees a renewed lease as lapsed', async () => {
    const a = mk(mem, time, 'a', 1)
    const b = mk(mem, time, 'b', 2)
    await a.acquireInitial()
    for (let i = 0; i < 40; i++) {
      await run(time, 100, [b], a)
      expect(b.lapsed()).toBe(false)
    }
    expect(await b.takeOver()).toMatchObject({ ok: false, reason: 'not-lapsed', holder: 'a' })
    // A restarted b at cluster start: a renews while b watches, so b backs off.
    const renewing = async (): Promise<void> => {
      await a.renew()
      time.hooks.push(renewing)
    }
    time.hooks.push(renewing)
    expect(await b.acquireInitial()).toMatchObject({ ok: false, reason: 'held', holder: 'a' })
    time.hooks.length = 0
  })

  it('sees a lapse only after the record stayed unchanged for the duration (+ drift margin)', async () => {
    const a = mk(mem, time, 'a', 1)
    const b = mk(mem, time, 'b', 2)
    await a.acquireInitial()
    await b.read()
    const firstSeen = time.now
    const need = 600 + b.timings.driftMarginMs
    time.now = firstSeen + need - 1
    await b.read()
    expect(b.lapsed()).toBe(false)
    expect((await b.read()).ageMs).toBe(need - 1)
    time.now = firstSeen + need
    await b.read()
    expect(b.lapsed()).toBe(true)
  })

  it('waits the longer of its own and the holder’s duration', async () => {
    const a = mk(mem, time, 'a', 1, { durationMs: 1000 })
    const b = mk(mem, time, 'b', 2)
    await a.acquireInitial()
    await b.read()
    time.now += 700
    await b.read()
    expect(b.lapsed()).toBe(false)
    time.now += 303
    await b.read()
    expect(b.lapsed()).toBe(true)
  })

  it('takes over a lapsed lease with epoch+1; the old holder then finds it lost', async () => {
    const a = mk(mem, time, 'a', 1)
    const b = mk(mem, time, 'b', 2)
    await a.acquireInitial()
    await run(time, 300, [b], a)
    // a stops renewing (dies or is paused)
    await run(time, 700, [b])
    expect(b.lapsed()).toBe(true)
    const t = await b.takeOver()
    expect(t).toMatchObject({ ok: true, epoch: 2 })
    expect(current(mem)).toMatchObject({ holder: 'b', epoch: 2 })
    expect(b.mustFence()).toBe(false)
    // a wakes up: it is long past its deadline.
    expect(a.mustFence()).toBe(true)
    expect(await a.renew()).toMatchObject({ outcome: 'expired' })
    // and b keeps renewing
    time.now += 100
    expect(await b.renew()).toMatchObject({ outcome: 'renewed', epoch: 2 })
  })

  it('a paused primary has fenced itself before the watcher may take over', async () => {
    const a = mk(mem, time, 'a', 1)
    const b = mk(mem, time, 'b', 2)
    await a.acquireInitial()
    await run(time, 500, [b], a)
    const lastValid = a.validUntil()
    await run(time, 1000, [b])
    expect(b.lapsed()).toBe(true)
    // The earliest instant b could serve is after its takeover read; a's lease ran out well before.
    const before = time.now
    const r = await b.takeOver()
    if (!r.ok) throw new Error(r.detail)
    expect(lastValid).toBeLessThanOrEqual(before)
    expect(lastValid + (600 - 360)).toBeLessThanOrEqual(before)
  })

  it('compare-after-write: a takeover fails when another claim lands during its settle time', async () => {
    const b = mk(mem, time, 'b', 2)
    put(mem, rec({ holder: 'a', epoch: 4, generation: 20 }))
    await run(time, 700, [b])
    expect(b.lapsed()).toBe(true)
    // While b waits settleMs, c's claim (made from the same read) lands in the same slot.
    time.hooks.push(async () => {
      put(mem, rec({ holder: 'c', epoch: 5, generation: 21, counter: 0, incarnation: 3 }))
    })
    expect(await b.takeOver()).toMatchObject({ ok: false, reason: 'raced', holder: 'c', epoch: 5 })
    expect(b.mustFence()).toBe(true)
    expect(b.state).toBe('lost')
  })

  it('two watchers racing for one lapsed lease: at most one wins', async () => {
    put(mem, rec({ holder: 'a', epoch: 4, generation: 20 }))
    for (let order = 0; order < 2; order++) {
      const m = new MemoryLeaseStore()
      mem.bytes.copy(m.bytes)
      const b = mk(m, time, 'b', 2)
      const c = mk(m, time, 'c', 3)
      await run(time, 700, [b, c])
      expect(b.lapsed() && c.lapsed()).toBe(true)
      // Interleave: both read, both write, both reread (memory store ops resolve in order).
      const [rb, rc] = order === 0 ? await Promise.all([b.takeOver(), c.takeOver()]) : (await Promise.all([c.takeOver(), b.takeOver()])).reverse()
      const winners = [rb!, rc!].filter((r) => r.ok)
      expect(winners.length).toBe(1)
      expect([b.mustFence(), c.mustFence()].filter((f) => !f).length).toBeLessThanOrEqual(1)
    }
  })

  it('first claims racing on a never-written area: a torn slot 1 falls back to the blank record', async () => {
    const h = new HookedStore(mem)
    const a = mk(h, time, 'a', 1)
    // b's claim (same generation, same slot) lands interleaved with a's: slot 1 is garbage.
    h.afterWrite = () => {
      if (decodeLeaseSlot(mem.bytes.subarray(LEASE_SLOT_SIZE, 2 * LEASE_SLOT_SIZE)).kind !== 'valid') return
      const other = encodeLeaseRecord(rec({ holder: 'b', epoch: 1, generation: 1, counter: 0, incarnation: 2 }))
      other.copy(mem.bytes, LEASE_SLOT_SIZE + 256, 256, 512)
      h.afterWrite = undefined
    }
    expect(await a.takeOver()).toMatchObject({ ok: false, reason: 'raced' })
    const v = decodeLeaseArea(mem.bytes)
    expect(v.kind === 'record' && v.record).toMatchObject({ generation: 0, holder: '', epoch: 0, released: true })
    const st = await a.read()
    expect(st.kind).toBe('empty')
    expect(st.lapsed).toBe(true)
    // Never reuses an epoch it has claimed before, even one that failed.
    expect(await a.takeOver()).toMatchObject({ ok: true, epoch: 2 })
  })

  it('a slow claim does not count', async () => {
    const h = new HookedStore(mem)
    put(mem, rec({ holder: 'a', epoch: 4, generation: 20 }))
    const b = mk(h, time, 'b', 2)
    await run(time, 700, [b])
    // Only the claim is slow (150 ms > settleMs); the rest would be quick enough.
    h.afterWrite = () => {
      time.now += 150
      h.afterWrite = undefined
    }
    expect(await b.takeOver()).toMatchObject({ ok: false, reason: 'slow' })
    expect(b.mustFence()).toBe(true)
  })

  it('acquireInitial: waits out a dead holder’s record, then takes it', async () => {
    put(mem, rec({ holder: 'b', epoch: 7, generation: 30 }))
    const a = mk(mem, time, 'a', 1)
    const t0 = time.now
    const r = await a.acquireInitial()
    expect(r).toMatchObject({ ok: true, epoch: 8 })
    expect(time.now - t0).toBeGreaterThanOrEqual(600)
  })

  it('acquireInitial: a restarted node waits out its own previous incarnation’s record too', async () => {
    put(mem, rec({ holder: 'a', epoch: 7, generation: 30, incarnation: 99 }))
    const a = mk(mem, time, 'a', 1)
    const t0 = time.now
    expect(await a.acquireInitial()).toMatchObject({ ok: true, epoch: 8 })
    expect(time.now - t0).toBeGreaterThanOrEqual(600)
  })

  it('acquireInitial: refuses an unreadable record (never treated as free)', async () => {
    mem.bytes.fill(0x42, 0, 600)
    const a = mk(mem, time, 'a', 1)
    expect(await a.acquireInitial()).toMatchObject({ ok: false, reason: 'unknown' })
    await run(time, 2000, [a])
    expect(a.lapsed()).toBe(false)
    expect(await a.takeOver()).toMatchObject({ ok: false, reason: 'unknown' })
  })

  it('forced takeover over an unreadable record: epoch above the floor, after waiting out the duration', async () => {
    mem.bytes.fill(0x42, 0, 600)
    const a = mk(mem, time, 'a', 1)
    const t0 = time.now
    const r = await a.takeOver({ force: true, epochFloor: 12 })
    expect(r).toMatchObject({ ok: true, epoch: 13 })
    expect(time.now - t0).toBeGreaterThanOrEqual(600)
    expect(current(mem)).toMatchObject({ holder: 'a', epoch: 13 })
    expect(a.mustFence()).toBe(false)
  })

  it('forced takeover from a live holder: the holder is lost before the taker may serve', async () => {
    const a = mk(mem, time, 'a', 1)
    const b = mk(mem, time, 'b', 2)
    await a.acquireInitial()
    time.now += 100
    await a.renew()
    let aLostAt = -1
    let bServingDuringEmbargo = false
    // a keeps renewing every 100 ms while b's forced takeover sleeps.
    const keepRenewing = async (): Promise<void> => {
      if (!b.mustFence()) bServingDuringEmbargo = true
      const r = await a.renew()
      if (r.outcome !== 'renewed' && aLostAt < 0) aLostAt = time.now
      time.hooks.push(keepRenewing)
    }
    time.hooks.push(keepRenewing)
    const t0 = time.now
    const r = await b.takeOver({ force: true })
    time.hooks.length = 0
    expect(r).toMatchObject({ ok: true, epoch: 2 })
    expect(bServingDuringEmbargo).toBe(false)
    expect(aLostAt).toBeGreaterThan(0)
    expect(a.mustFence()).toBe(true)
    expect(time.now - t0).toBeGreaterThanOrEqual(600)
  })
})

describe('lease: planned handover', () => {
  it('release names the successor, who takes over without waiting out the duration', async () => {
    const time = new FakeTime()
    const mem = new MemoryLeaseStore()
    const a = mk(mem, time, 'a', 1)
    const b = mk(mem, time, 'b', 2)
    const c = mk(mem, time, 'c', 3)
    await a.acquireInitial()
    await run(time, 300, [b, c], a)
    expect(await a.release('b')).toEqual({ ok: true, epoch: 1 })
    expect(a.state).toBe('released')
    expect(a.mustFence()).toBe(true)
    expect(current(mem)).toMatchObject({ holder: 'a', epoch: 1, released: true, successor: 'b' })
    expect(await a.renew()).toMatchObject({ outcome: 'expired' })
    await b.read()
    await c.read()
    expect(b.lapsed()).toBe(true)
    expect(c.lapsed()).toBe(false) // not the named successor: waits the normal lapse
    expect((await b.read()).kind).toBe('released')
    const t0 = time.now
    expect(await b.takeOver()).toMatchObject({ ok: true, epoch: 2 })
    expect(time.now - t0).toBeLessThanOrEqual(b.timings.settleMs)
  })

  it('release without a successor lets anyone take it; a lost holder cannot release', async () => {
    const time = new FakeTime()
    const mem = new MemoryLeaseStore()
    const a = mk(mem, time, 'a', 1)
    await a.acquireInitial()
    expect(await a.release()).toMatchObject({ ok: true })
    const c = mk(mem, time, 'c', 3)
    await c.read()
    expect(c.lapsed()).toBe(true)
    expect(await a.release()).toMatchObject({ ok: false })
  })
})

describe('lease: status', () => {
  it('reports holder, epoch, counter, age since the last change, and our own standing', async () => {
    const time = new FakeTime()
    const mem = new MemoryLeaseStore()
    const a = mk(mem, time, 'a', 1)
    const b = mk(mem, time, 'b', 2)
    expect((await b.read()).kind).toBe('empty')
    await a.acquireInitial()
    await b.read()
    time.now += 120
    const s = await b.read()
    expect(s).toMatchObject({ kind: 'held', holder: 'a', epoch: 1, counter: 1, durationMs: 600, ageMs: 120, lapsed: false })
    expect(s.self).toMatchObject({ node: 'b', state: 'none', epoch: 0, validForMs: 0 })
    const sa = await a.read()
    expect(sa.self).toMatchObject({ node: 'a', state: 'held', epoch: 1 })
    expect(sa.self.validForMs).toBeGreaterThan(0)
    mem.bytes.fill(7, 0, 100)
    mem.bytes.fill(7, LEASE_SLOT_SIZE, LEASE_SLOT_SIZE + 100)
    const u = await b.read()
    expect(u.kind).toBe('unknown')
    expect(u.error).toMatch(/magic|CRC/)
  })

  it('a failed read is reported, never throws, and confirms nothing', async () => {
    const time = new FakeTime()
    const mem = new MemoryLeaseStore()
    const h = new HookedStore(mem)
    put(mem, rec({ holder: 'a', epoch: 2, generation: 4 }))
    const b = mk(h, time, 'b', 2)
    await b.read()
    h.beforeRead = () => {
      throw new Error('EIO')
    }
    time.now += 1000
    const s = await b.read()
    expect(s.readError).toMatch(/EIO/)
    expect(s).toMatchObject({ kind: 'held', holder: 'a', epoch: 2, lapsed: false })
    expect(await b.acquireInitial()).toMatchObject({ ok: false, reason: 'io' })
    expect(await b.takeOver()).toMatchObject({ ok: false, reason: 'io' })
  })

  it('validates the node name', () => {
    const mem = new MemoryLeaseStore()
    expect(() => new Lease({ store: mem, node: '' })).toThrow(LeaseConfigError)
    expect(() => new Lease({ store: mem, node: 'n'.repeat(65) })).toThrow(LeaseConfigError)
    expect(() => new Lease({ store: mem, node: 'a', timings: { fenceAfterMs: 600 } })).toThrow(LeaseConfigError)
  })
})

// ---- the file store ----

describe('FileLeaseStore', () => {
  let dir: string
  const open: FileLeaseStore[] = []
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'iscsi-ha-lease-'))
  })
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close()
    await rm(dir, { recursive: true, force: true })
  })
  const openStore = async (p: string): Promise<FileLeaseStore> => {
    const s = await FileLeaseStore.open(p)
    open.push(s)
    return s
  }

  it('puts the lease beside the LUN and creates it zero-filled', async () => {
    const p = leasePathFor(join(dir, 'disk1.img'))
    expect(p).toBe(join(dir, 'disk1.img.lease'))
    await openStore(p)
    expect((await stat(p)).size).toBe(LEASE_AREA_SIZE)
    expect((await readFile(p)).every((b) => b === 0)).toBe(true)
  })

  it('two controllers on the same file: acquire, renew, watch, take over', async () => {
    const p = join(dir, 'l.lease')
    const [s1, s2] = await Promise.all([openStore(p), openStore(p)])
    const time = new FakeTime()
    const a = mk(s1!, time, 'a', 1)
    const b = mk(s2!, time, 'b', 2)
    expect(await a.acquireInitial()).toMatchObject({ ok: true, epoch: 1 })
    await run(time, 400, [b], a)
    expect((await b.read()).holder).toBe('a')
    expect(b.lapsed()).toBe(false)
    await run(time, 700, [b])
    expect(await b.takeOver()).toMatchObject({ ok: true, epoch: 2 })
    expect(await a.renew()).toMatchObject({ outcome: 'expired' })
    const v = decodeLeaseArea(await readFile(p))
    expect(v.kind === 'record' && v.record).toMatchObject({ holder: 'b', epoch: 2 })
  })

  it('survives a torn slot on disk and reads a short file as zeros', async () => {
    const p = join(dir, 'l.lease')
    const s = await openStore(p)
    const time = new FakeTime()
    const a = mk(s, time, 'a', 1)
    await a.acquireInitial()
    time.now += 100
    await a.renew()
    const bytes = await readFile(p)
    const v = decodeLeaseArea(bytes)
    if (v.kind !== 'record') throw new Error(v.kind)
    // Tear the newest slot on disk.
    bytes.fill(0xee, v.slot * LEASE_SLOT_SIZE + 64, v.slot * LEASE_SLOT_SIZE + 128)
    await writeFile(p, bytes)
    const st = await (mk(s, time, 'b', 2)).read()
    expect(st).toMatchObject({ kind: 'held', holder: 'a', generation: v.record.generation - 1 })
    // A short (truncated) file reads as zeros past its end.
    const q = join(dir, 'short.lease')
    await writeFile(q, Buffer.alloc(100))
    const sq = await openStore(q)
    expect((await sq.read(0, LEASE_AREA_SIZE)).length).toBe(LEASE_AREA_SIZE)
    expect((await mk(sq, time, 'b', 2).read()).kind).toBe('empty')
  })

  it('reports an unopenable path', async () => {
    await expect(FileLeaseStore.open(join(dir, 'missing-dir', 'x.lease'))).rejects.toMatchObject({ code: 'OPEN_FAILED' })
  })
})
