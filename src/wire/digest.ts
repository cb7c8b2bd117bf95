// CRC32C digests (RFC 7143 §13.1: HeaderDigest / DataDigest = CRC32C, generator 0x11EDC6F41).
//
// Wire byte order: the 32-bit CRC value is sent least significant byte first. RFC 3720
// Appendix B.4 lists the digest of 32 zero bytes as the byte sequence aa 36 91 8a, i.e. the value
// 0x8a9136aa written little-endian; Linux (crc32c shash output) and libiscsi do the same.
//
// @node-rs/crc32's crc32c(input, initial) continues a running CRC: crc32c(b, crc32c(a)) equals
// crc32c(a ++ b), so a digest over several segments never needs them concatenated.

import { crc32c as nativeCrc32c } from '@node-rs/crc32'

/** Size of a header or data digest on the wire. */
export const DIGEST_LENGTH = 4

/** CRC32C of `buf`, continuing from `initial` (the result of a previous call) when given. */
export function crc32c(buf: Uint8Array, initial?: number): number {
  return nativeCrc32c(buf, initial) >>> 0
}

/** CRC32C over the concatenation of `buffers`, without concatenating them. */
export function digestOf(...buffers: Uint8Array[]): number {
  let crc = 0
  for (let i = 0; i < buffers.length; i++) {
    const b = buffers[i]!
    if (b.length > 0) crc = nativeCrc32c(b, crc)
  }
  return crc >>> 0
}

/** Write a digest value at `offset` in wire order (little-endian). */
export function writeDigest(target: Uint8Array, offset: number, value: number): void {
  target[offset] = value & 0xff
  target[offset + 1] = (value >>> 8) & 0xff
  target[offset + 2] = (value >>> 16) & 0xff
  target[offset + 3] = value >>> 24
}

/** Read a digest value stored at `offset` in wire order (little-endian). */
export function readDigest(source: Uint8Array, offset: number): number {
  return (
    (source[offset]! |
      (source[offset + 1]! << 8) |
      (source[offset + 2]! << 16) |
      (source[offset + 3]! << 24)) >>>
    0
  )
}
