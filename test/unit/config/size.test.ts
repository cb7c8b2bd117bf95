import { describe, expect, it } from 'vitest'
import { formatSize, parseSize } from '../../../src/config/size.js'

const ok = (v: string | number): number => {
  const r = parseSize(v)
  if (!r.ok) throw new Error(r.reason)
  return r.bytes
}

describe('parseSize', () => {
  it('binary units: K/M/G/T with or without i/iB are powers of 1024', () => {
    expect(ok('512MiB')).toBe(512 * 1024 ** 2)
    expect(ok('1GiB')).toBe(1024 ** 3)
    expect(ok('1G')).toBe(1024 ** 3)
    expect(ok('1Gi')).toBe(1024 ** 3)
    expect(ok('1T')).toBe(1024 ** 4)
    expect(ok('4k')).toBe(4096)
    expect(ok('2 TiB')).toBe(2 * 1024 ** 4)
    expect(ok('1.5GiB')).toBe(1.5 * 1024 ** 3)
  })
  it('KB/MB/GB/TB are powers of 1000', () => {
    expect(ok('1GB')).toBe(1e9)
    expect(ok('500MB')).toBe(500e6)
    expect(ok('2TB')).toBe(2e12)
    expect(ok('1kB')).toBe(1000)
  })
  it('bytes: plain numbers, digits, B suffix', () => {
    expect(ok(1048576)).toBe(1048576)
    expect(ok('4096')).toBe(4096)
    expect(ok('4096B')).toBe(4096)
  })
  it('rejects nonsense with a hint', () => {
    for (const bad of ['1GX', 'big', '', '-1G', '1 gigabyte', 'G1', '1e9']) {
      const r = parseSize(bad)
      expect(r.ok, bad).toBe(false)
      if (!r.ok) expect(r.reason).toMatch(/is not a size \(use e\.g\. 512MiB, 1GiB, or bytes\)/)
    }
    const frac = parseSize('0.1K')
    expect(frac.ok).toBe(false)
    if (!frac.ok) expect(frac.reason).toMatch(/whole number of bytes/)
    expect(parseSize(1.5).ok).toBe(false)
    expect(parseSize('99999P').ok).toBe(false)
  })
  it('formats with the largest exact binary unit', () => {
    expect(formatSize(1024 ** 3)).toBe('1GiB')
    expect(formatSize(1536 * 1024)).toBe('1536KiB')
    expect(formatSize(1000)).toBe('1000B')
  })
})
