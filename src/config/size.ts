// Size strings for LUNs.
//
// Units (case-insensitive, optional space between number and unit):
//   (none), B                 bytes
//   K, Ki, KiB                1024          (binary; storage admins mean this by "1G")
//   M, Mi, MiB                1024²
//   G, Gi, GiB                1024³
//   T, Ti, TiB                1024⁴
//   P, Pi, PiB                1024⁵
//   KB, MB, GB, TB, PB        powers of 1000 (decimal, as printed on drive labels)
// So `1G` == `1GiB` == 1073741824 while `1GB` == 1000000000. A fraction is allowed when the
// result is a whole number of bytes (`1.5GiB`). A plain YAML integer is a byte count.

const BINARY: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }
const DECIMAL: Record<string, number> = { k: 1e3, m: 1e6, g: 1e9, t: 1e12, p: 1e15 }

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*(?:([kmgtp])(i?)(b?)|(b?))$/i

export const SIZE_HINT = 'use e.g. 512MiB, 1GiB, or bytes'

export type SizeResult = { ok: true; bytes: number } | { ok: false; reason: string }

/** Parses a size string or byte count; see the table above for units. */
export function parseSize(input: string | number): SizeResult {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) return { ok: false, reason: `${input} is not a whole number of bytes` }
    return { ok: true, bytes: input }
  }
  const text = input.trim()
  const m = SIZE_RE.exec(text)
  if (!m) return { ok: false, reason: `${JSON.stringify(input)} is not a size (${SIZE_HINT})` }
  const [, num, prefix, i, b] = m
  let mult: number
  if (!prefix) mult = 1
  else {
    const p = prefix.toLowerCase()
    // "KB" (a B but no i) is decimal; "K", "Ki" and "KiB" are binary.
    mult = b && !i ? DECIMAL[p]! : BINARY[p]!
  }
  const value = Number(num) * mult
  if (!Number.isSafeInteger(value)) {
    if (Number.isFinite(value) && value < Number.MAX_SAFE_INTEGER)
      return { ok: false, reason: `${JSON.stringify(input)} is not a whole number of bytes` }
    return { ok: false, reason: `${JSON.stringify(input)} is too large` }
  }
  return { ok: true, bytes: value }
}

/** Formats bytes with the largest binary unit that divides them exactly: 1073741824 → "1GiB". */
export function formatSize(bytes: number): string {
  const units: [string, number][] = [
    ['PiB', 1024 ** 5],
    ['TiB', 1024 ** 4],
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ]
  for (const [name, mult] of units) if (bytes >= mult && bytes % mult === 0) return `${bytes / mult}${name}`
  return `${bytes}B`
}
