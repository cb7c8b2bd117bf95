import { describe, expect, it } from 'vitest'
import { DeallocatedMap } from '../../../src/scsi/deallocated-map.js'

/** A reference model: one boolean per block. */
function model(n: number) {
  const bits = new Array<boolean>(n).fill(false)
  return {
    add: (lba: number, blocks: number) => bits.fill(true, lba, lba + blocks),
    remove: (lba: number, blocks: number) => bits.fill(false, lba, lba + blocks),
    runs: (from: number, to: number) => {
      const out: Array<{ lba: number; blocks: number; deallocated: boolean }> = []
      for (let i = from; i < to; i++) {
        const last = out.at(-1)
        if (last && last.deallocated === bits[i]) last.blocks++
        else out.push({ lba: i, blocks: 1, deallocated: bits[i]! })
      }
      return out
    },
  }
}

describe('DeallocatedMap', () => {
  it('reports everything mapped until something is deallocated', () => {
    expect(new DeallocatedMap().runs(10, 1000, 4)).toEqual([{ lba: 10, blocks: 990, deallocated: false }])
  })

  it('merges touching ranges, splits on writes, and stops at max descriptors', () => {
    const m = new DeallocatedMap()
    m.add(100, 50)
    m.add(150, 50)
    expect(m.size).toBe(1)
    m.remove(120, 10)
    expect(m.runs(0, 300, 8)).toEqual([
      { lba: 0, blocks: 100, deallocated: false },
      { lba: 100, blocks: 20, deallocated: true },
      { lba: 120, blocks: 10, deallocated: false },
      { lba: 130, blocks: 70, deallocated: true },
      { lba: 200, blocks: 100, deallocated: false },
    ])
    expect(m.runs(0, 300, 2)).toHaveLength(2)
  })

  it('agrees with a per-block model under 20000 random adds and removes', () => {
    const n = 512
    const m = new DeallocatedMap()
    const ref = model(n)
    let seed = 7
    const rnd = (k: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % k)
    for (let step = 0; step < 20000; step++) {
      const lba = rnd(n)
      const blocks = 1 + rnd(Math.min(64, n - lba))
      if (rnd(2)) {
        m.add(lba, blocks)
        ref.add(lba, blocks)
      } else {
        m.remove(lba, blocks)
        ref.remove(lba, blocks)
      }
      if (step % 97 === 0) {
        const from = rnd(n)
        expect(m.runs(from, n, 1000)).toEqual(ref.runs(from, n))
      }
    }
  })
})
