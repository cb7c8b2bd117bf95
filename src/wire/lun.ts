// SAM-5 single-level LUN encoding. The 8-byte LUN field of RFC 7143 §11.2.1 is carried in the
// PDU shapes as a big-endian u64 `bigint`.
//
//   peripheral device addressing (n < 256):    byte0 = 0x00,               byte1 = n
//   flat space addressing        (n < 16384):  byte0 = 0x40 | (n >> 8),     byte1 = n & 0xff
//   bytes 2..7 are zero (single level).

/** Highest LUN encodable with flat space addressing. */
export const MAX_LUN = 0x3fff

const ADDRESS_METHOD_PERIPHERAL = 0x00
const ADDRESS_METHOD_FLAT = 0x40

function firstTwoBytes(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > MAX_LUN) {
    throw new RangeError(`LUN ${n} cannot be encoded (0..${MAX_LUN})`)
  }
  if (n < 256) return (ADDRESS_METHOD_PERIPHERAL << 8) | n
  return ((ADDRESS_METHOD_FLAT | (n >> 8)) << 8) | (n & 0xff)
}

/** Encode LUN `n` as the raw 64-bit LUN field value. Throws RangeError outside 0..16383. */
export function encodeLun(n: number): bigint {
  return BigInt(firstTwoBytes(n)) << 48n
}

/**
 * Decode a raw 64-bit LUN field. Returns undefined for anything that is not a single-level
 * peripheral (bus 0) or flat space address, or when bytes 2..7 are not zero.
 */
export function decodeLun(raw: bigint): number | undefined {
  if (raw < 0n || raw > 0xffffffffffffffffn) return undefined
  if ((raw & 0xffffffffffffn) !== 0n) return undefined
  const top = Number(raw >> 48n)
  const byte0 = top >> 8
  const byte1 = top & 0xff
  switch (byte0 & 0xc0) {
    case ADDRESS_METHOD_PERIPHERAL:
      // Low six bits of byte 0 are the bus identifier; only bus 0 addresses a LUN here.
      return (byte0 & 0x3f) === 0 ? byte1 : undefined
    case ADDRESS_METHOD_FLAT:
      return ((byte0 & 0x3f) << 8) | byte1
    default:
      return undefined
  }
}

/** The 8-byte LUN field for LUN `n` (e.g. a REPORT LUNS list entry). */
export function lunToBytes(n: number): Buffer {
  const out = Buffer.alloc(8)
  out.writeUInt16BE(firstTwoBytes(n), 0)
  return out
}
