import { describe, expect, it } from 'vitest'
import { InlineIoPolicy } from '../../../src/storage/inline-io.js'

/** A policy on a hand-driven clock. */
function policy(mode: 'auto' | 'inline' | 'threadpool' = 'auto') {
  let t = 0
  const p = new InlineIoPolicy(mode, { now: () => t, backoffMs: 1000, maxBackoffMs: 4000, stallMs: 2 })
  return { p, advance: (ms: number) => (t += ms) }
}

describe('InlineIoPolicy', () => {
  it('runs small requests inline while storage answers like memory', () => {
    const { p } = policy()
    for (let i = 0; i < 1000; i++) {
      expect(p.inline(4096)).toBe(true)
      p.record(4096, 0.004)
    }
    expect(p.stats()).toMatchObject({ mode: 'auto', inlineNow: true, inlineOps: 1000, threadPoolOps: 0, backoffs: 0 })
  })

  it('sends requests above the size limit to the thread pool', () => {
    const { p } = policy()
    expect(p.inline(256 * 1024)).toBe(true)
    expect(p.inline(256 * 1024 + 512)).toBe(false)
    expect(p.stats().threadPoolOps).toBe(1)
  })

  it('backs off for a period after one stalled request, then tries inline again', () => {
    const { p, advance } = policy()
    expect(p.inline(4096)).toBe(true)
    p.record(4096, 5) // a disk seek
    expect(p.stats()).toMatchObject({ inlineNow: false, backoffs: 1 })
    expect(p.inline(4096)).toBe(false)
    advance(999)
    expect(p.inline(4096)).toBe(false)
    advance(2)
    expect(p.inline(4096)).toBe(true)
  })

  it('backs off when many requests are slower than a memory copy (a cold cache on a fast device)', () => {
    const { p } = policy()
    let n = 0
    while (p.inline(4096)) {
      p.record(4096, 0.12) // 120 µs: an SSD read, not a page-cache hit
      if (++n > 100) break
    }
    expect(n).toBeGreaterThan(3) // one slow request alone is not enough
    expect(n).toBeLessThan(20)
    expect(p.stats().backoffs).toBe(1)
  })

  it('doubles the period while storage stays slow and resets it after a clean inline period', () => {
    const { p, advance } = policy()
    const stall = (): void => {
      expect(p.inline(4096)).toBe(true)
      p.record(4096, 10)
    }
    const poolFor = (): number => {
      let waited = 0
      while (!p.stats().inlineNow) {
        advance(100)
        waited += 100
      }
      return waited
    }
    stall()
    expect(poolFor()).toBe(1000)
    stall()
    expect(poolFor()).toBe(2000)
    stall()
    expect(poolFor()).toBe(4000)
    stall()
    expect(poolFor()).toBe(4000) // capped
    // A clean inline stretch longer than the period: storage recovered.
    expect(p.inline(4096)).toBe(true)
    for (let i = 0; i < 50; i++) {
      p.record(4096, 0.003)
      advance(100)
    }
    stall()
    expect(poolFor()).toBe(1000)
  })

  it("'threadpool' never runs inline and 'inline' never backs off", () => {
    const pool = policy('threadpool').p
    expect(pool.inline(512)).toBe(false)
    expect(pool.stats().inlineNow).toBe(false)
    const inline = policy('inline').p
    expect(inline.inline(8 * 1024 * 1024)).toBe(true)
    inline.record(4096, 50)
    expect(inline.stats()).toMatchObject({ inlineNow: true, backoffs: 0 })
  })
})
