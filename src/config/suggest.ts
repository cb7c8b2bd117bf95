// "Did you mean" for misspelt keys.

function distance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1)
  for (let j = 0; j <= b.length; j++) prev[j] = j
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!
    prev[0] = i
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1))
      diag = up
    }
  }
  return prev[b.length]!
}

/** Compare ignoring case, `_`/`-` and camelCase so `blockSize` and `block-size` find `block_size`. */
function fold(s: string): string {
  return s.toLowerCase().replace(/[_-]/g, '')
}

/** The closest candidate within a small edit distance, or undefined. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = fold(word)
  let best: string | undefined
  let bestD = Infinity
  for (const c of candidates) {
    const d = distance(w, fold(c))
    if (d < bestD) {
      bestD = d
      best = c
    }
  }
  const limit = Math.max(1, Math.floor(w.length / 3))
  return bestD <= limit ? best : undefined
}
