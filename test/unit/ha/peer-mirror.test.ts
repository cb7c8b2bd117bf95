import { afterEach, describe, expect, it, vi } from 'vitest'
import { PeerMirror, MirrorUnavailableError } from '../../../src/ha/peer-mirror.js'
import type { PeerMessage } from '../../../src/ha/types.js'
import { crc32c } from '../../../src/wire/digest.js'
import { discardChecksum } from '../../../src/journal/index.js'
import { encodeFrame } from '../../../src/peer/codec.js'

function setup(over: { healthy?: () => boolean; send?: (m: PeerMessage) => boolean } = {}) {
  const sent: PeerMessage[] = []
  const mirror = new PeerMirror({
    send: over.send ?? ((m) => (sent.push(m), true)),
    epoch: () => 4,
    isHealthy: over.healthy ?? (() => true),
    ackTimeoutMs: 100,
    completeBatchMs: 5,
    maxBatch: 3,
  })
  return { mirror, sent }
}

const write = (n: number) => ({
  key: { target: 'iqn.2026-11.io.iscsi-ha:t', lun: 0 }, offset: n * 512, data: Buffer.alloc(512, n),
  initiator: 'iqn.host', isid: '400001370000', itt: n, receivedAtMs: 0,
})

afterEach(() => vi.useRealTimers())

describe('PeerMirror', () => {
  it('numbers copies, checksums them, and commits only on the secondary ack', async () => {
    const { mirror, sent } = setup()
    let committed = false
    const p = mirror.copy(write(1)).then((seq) => (committed = true, seq))
    await Promise.resolve()
    expect(committed).toBe(false)
    const copy = sent[0]!
    if (copy.type !== 'copy') throw new Error('expected a copy')
    expect(copy.entry).toMatchObject({ seq: 1, epoch: 4, offset: 512, itt: 1 })
    expect(copy.entry.checksum).toBe(crc32c(Buffer.alloc(512, 1)))
    mirror.onMessage({ type: 'copy-ack', epoch: 4, seq: 1, count: 1 })
    expect(await p).toBe(1)
    expect(mirror.confirmed).toBe(1)
  })

  it('commits a run of copies on one copy-ack, and only those', async () => {
    const { mirror } = setup()
    const done: number[] = []
    const copies = [1, 2, 3, 4].map((i) => mirror.copy(write(i)).then((seq) => done.push(seq)))
    mirror.onMessage({ type: 'copy-ack', epoch: 4, seq: 1, count: 3 })
    await Promise.all(copies.slice(0, 3))
    expect(done).toEqual([1, 2, 3])
    expect(mirror.inFlight).toBe(1)
    mirror.onMessage({ type: 'copy-ack', epoch: 4, seq: 4, count: 1 })
    await copies[3]
    expect(mirror.confirmed).toBe(4)
  })

  it('a run as long as the wire allows settles what is in flight at once, and nothing outside it', async () => {
    const { mirror } = setup()
    const inRange = [mirror.copy(write(1)), mirror.copy(write(2))]
    const before = mirror.copy(write(3))
    mirror.onMessage({ type: 'copy-ack', epoch: 4, seq: 3, count: 1 })
    await before
    const later = [4, 5].map((i) => mirror.copy(write(i)))
    // Walking the range would be 2^32 map lookups: the test would time out.
    mirror.onMessage({ type: 'copy-ack', epoch: 4, seq: 4, count: 0xffff_ffff })
    expect(await Promise.all(later)).toEqual([4, 5])
    expect(mirror.inFlight).toBe(2) // 1 and 2 are below the run
    mirror.onMessage({ type: 'copy-ack', epoch: 4, seq: 1, count: 2 })
    expect(await Promise.all(inRange)).toEqual([1, 2])
  })

  it('copies a discard as its range with a range checksum and no data, committed on the ack like a write', async () => {
    const { mirror, sent } = setup()
    const w = mirror.copy(write(1))
    const d = mirror.copy({ kind: 'discard', key: { target: 'iqn.2026-11.io.iscsi-ha:t', lun: 0 }, offset: 1 << 20, length: 1 << 30, initiator: 'iqn.host', isid: '400001370000', itt: 2, receivedAtMs: 0 })
    const copy = sent[1]!
    if (copy.type !== 'copy') throw new Error('expected a copy')
    expect(copy.entry).toMatchObject({ kind: 'discard', seq: 2, epoch: 4, offset: 1 << 20, length: 1 << 30, checksum: discardChecksum(1 << 20, 1 << 30) })
    expect(copy.entry.data).toBeUndefined()
    // A GiB of UNMAP is one small frame on the peer link.
    expect(encodeFrame(copy).reduce((n, b) => n + b.length, 0)).toBeLessThan(200)
    mirror.onMessage({ type: 'copy-ack', epoch: 4, seq: 2, count: 1 })
    mirror.onMessage({ type: 'copy-ack', epoch: 4, seq: 1, count: 1 })
    expect([await w, await d]).toEqual([1, 2])
    expect(mirror.confirmed).toBe(2)
  })

  it('refuses to copy without a healthy secondary, and when the link will not take it', async () => {
    await expect(setup({ healthy: () => false }).mirror.copy(write(1))).rejects.toBeInstanceOf(MirrorUnavailableError)
    await expect(setup({ send: () => false }).mirror.copy(write(1))).rejects.toThrow(/link down/)
  })

  it('gives a copy up on a nak, on timeout, and all of them when the link fails', async () => {
    const { mirror } = setup()
    const a = mirror.copy(write(1))
    mirror.onMessage({ type: 'copy-nak', epoch: 4, seq: 1, reason: 'journal full' })
    await expect(a).rejects.toThrow(/journal full/)
    const b = mirror.copy(write(2))
    await expect(b).rejects.toThrow(/not confirmed in 100 ms/)
    const c = mirror.copy(write(3))
    const d = mirror.copy(write(4))
    mirror.failAll('peer link down')
    await expect(c).rejects.toThrow(/peer link down/)
    await expect(d).rejects.toThrow(/peer link down/)
    expect(mirror.inFlight).toBe(0)
  })

  it('batches completion notices by count and by time', async () => {
    vi.useFakeTimers()
    const { mirror, sent } = setup()
    mirror.completed(1)
    mirror.completed(2)
    expect(sent).toHaveLength(0)
    mirror.completed(3)
    expect(sent).toEqual([{ type: 'complete', epoch: 4, seqs: [1, 2, 3] }])
    mirror.completed(4)
    vi.advanceTimersByTime(5)
    expect(sent.at(-1)).toEqual({ type: 'complete', epoch: 4, seqs: [4] })
  })
})
