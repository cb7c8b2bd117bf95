import { describe, expect, it } from 'vitest'
import { BufferSlab } from '../../../src/wire/buffer-slab.js'

describe('BufferSlab', () => {
  it('carves sector-aligned, non-overlapping pieces of exactly the asked length', () => {
    const slab = new BufferSlab(64 * 1024, 16 * 1024)
    const pieces = [4096, 512, 100, 4096, 16 * 1024].map((n) => slab.take(n))
    expect(pieces.map((p) => p.length)).toEqual([4096, 512, 100, 4096, 16 * 1024])
    for (const p of pieces) {
      expect(p.buffer).toBe(pieces[0]!.buffer) // one ArrayBuffer for all of them
      expect(p.byteOffset % 512).toBe(0)
    }
    pieces.forEach((p, i) => p.fill(i + 1))
    pieces.forEach((p, i) => expect(p.every((b) => b === i + 1)).toBe(true))
  })

  it('starts a new slab when the current one is full, leaving earlier pieces intact', () => {
    const slab = new BufferSlab(8192, 4096)
    const a = slab.take(4096)
    const b = slab.take(4096)
    const c = slab.take(4096)
    expect(a.buffer).toBe(b.buffer)
    expect(c.buffer).not.toBe(a.buffer)
    a.fill(1)
    c.fill(3)
    expect(a.every((x) => x === 1)).toBe(true)
  })

  it('gives large and empty requests buffers of their own', () => {
    const slab = new BufferSlab(64 * 1024, 16 * 1024)
    const big = slab.take(16 * 1024 + 1)
    expect(big.length).toBe(16 * 1024 + 1)
    expect(big.buffer.byteLength).toBeGreaterThanOrEqual(16 * 1024 + 1)
    expect(big.buffer).not.toBe(slab.take(10).buffer)
    expect(slab.take(0).length).toBe(0)
    expect(() => new BufferSlab(1024, 2048)).toThrow(RangeError)
  })
})
