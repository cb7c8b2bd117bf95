// 32-bit serial number arithmetic (RFC 1982, as required by RFC 7143 §4.2.2.1 for CmdSN,
// StatSN and DataSN comparisons).

export function snAdd(a: number, n: number): number {
  return (a + n) >>> 0
}

/** a < b in serial arithmetic. */
export function snLt(a: number, b: number): boolean {
  return a !== b && ((b - a) >>> 0) < 0x80000000
}

export function snLe(a: number, b: number): boolean {
  return a === b || snLt(a, b)
}

/** Distance from a forward to b (b - a mod 2^32). */
export function snDistance(a: number, b: number): number {
  return (b - a) >>> 0
}
