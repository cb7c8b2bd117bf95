// The key=value text format of Login and Text PDUs (RFC 7143 §6.1): UTF-8 `key=value` pairs,
// each followed by one NUL. This module only frames and unframes; what a key means lives in
// params.ts. Callers concatenate the data segments of a C-bit series (one logical text data
// segment, §6.1) before parsing, since a pair may straddle PDUs.

/** RFC 7143 §6.1: a key name (standard-label) is at most 63 bytes. */
export const MAX_KEY_BYTES = 63
/**
 * Longest raw value accepted by the codec. RFC 7143 §6.1 limits most values to 255 bytes (per
 * key, checked in params.ts); the largest legal values are the large binary values of CHAP
 * (§12.1.3), and every implementation must accept 8192 bytes of text in a negotiation.
 */
export const MAX_VALUE_BYTES = 8192

export type TextKeyErrorCode =
  | 'unterminated'
  | 'missing-equals'
  | 'empty-key'
  | 'key-too-long'
  | 'invalid-key'
  | 'value-too-long'
  | 'invalid-utf8'
  | 'junk-after-padding'
  | 'invalid-value'

export class TextKeyError extends Error {
  constructor(
    readonly code: TextKeyErrorCode,
    message: string,
    /** Byte offset of the offending pair within the data segment. */
    readonly offset: number,
  ) {
    super(message)
    this.name = 'TextKeyError'
  }
}

const NUL = 0x00
const EQUALS = 0x3d
/**
 * Key names: RFC 7143 §6.1 standard-label characters (letters, digits, dot, minus, plus,
 * commercial at, underscore), plus '#' for X# keys such as X#NodeArchitecture (§13.26).
 */
const KEY_CHARS = /^[A-Za-z0-9.\-+@_#]+$/

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Parse a logical text data segment into pairs, in order. Duplicates are kept: deciding whether
 * a repeated key is an error is the negotiator's business (§6.2). Trailing zero bytes after the
 * last NUL (padding) are tolerated; anything else after them is an error.
 */
export function parseTextKeys(data: Buffer): Array<[string, string]> {
  const pairs: Array<[string, string]> = []
  let pos = 0
  while (pos < data.length) {
    const end = data.indexOf(NUL, pos)
    if (end === pos) {
      // An empty "pair": from here on only padding may follow.
      for (let i = pos; i < data.length; i++) {
        if (data[i] !== NUL) throw new TextKeyError('junk-after-padding', 'text after the NUL padding', i)
      }
      break
    }
    if (end < 0) {
      // §6.1: every pair, including the last, MUST be followed by one NUL.
      throw new TextKeyError('unterminated', 'key=value pair without its NUL terminator', pos)
    }
    const eq = data.indexOf(EQUALS, pos)
    if (eq < 0 || eq > end) throw new TextKeyError('missing-equals', 'pair without "="', pos)
    if (eq === pos) throw new TextKeyError('empty-key', 'pair with an empty key', pos)
    if (eq - pos > MAX_KEY_BYTES) {
      throw new TextKeyError('key-too-long', `key longer than ${MAX_KEY_BYTES} bytes`, pos)
    }
    if (end - eq - 1 > MAX_VALUE_BYTES) {
      throw new TextKeyError('value-too-long', `value longer than ${MAX_VALUE_BYTES} bytes`, pos)
    }
    const key = data.toString('latin1', pos, eq)
    if (!KEY_CHARS.test(key)) throw new TextKeyError('invalid-key', 'key with characters outside §6.1', pos)
    let value: string
    try {
      value = utf8.decode(data.subarray(eq + 1, end))
    } catch {
      throw new TextKeyError('invalid-utf8', 'value is not valid UTF-8', pos)
    }
    pairs.push([key, value])
    pos = end + 1
  }
  return pairs
}

/** Encode pairs as `key=value\0...` (no padding: the PDU serializer pads the segment). */
export function encodeTextKeys(pairs: Iterable<[string, string]>): Buffer {
  const parts: Buffer[] = []
  for (const [key, value] of pairs) {
    if (key.length === 0 || key.length > MAX_KEY_BYTES || !KEY_CHARS.test(key)) {
      throw new TextKeyError('invalid-key', `cannot encode key ${JSON.stringify(key)}`, 0)
    }
    if (value.includes('\0')) throw new TextKeyError('invalid-value', `value of ${key} contains NUL`, 0)
    parts.push(Buffer.from(`${key}=${value}\0`, 'utf8'))
  }
  return Buffer.concat(parts)
}
