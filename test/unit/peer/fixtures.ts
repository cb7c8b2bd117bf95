// Frames of every type, for the codec tests, the fuzzers and the bench.

import { crc32c } from '../../../src/wire/digest.js'
import type { DiscardEntry, JournalEntry, WriteEntry } from '../../../src/ha/types.js'
import { discardChecksum } from '../../../src/journal/entry.js'
import { FRAME_HEADER_LENGTH, type Frame } from '../../../src/peer/codec.js'

/** Deterministic bytes (xorshift32). */
export function pattern(n: number, seed = 1): Buffer {
  let s = seed >>> 0 || 1
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    b[i] = s & 0xff
  }
  return b
}

export function entry(data: Buffer, over: Partial<WriteEntry> = {}): JournalEntry {
  return {
    seq: 42,
    epoch: 7,
    key: { target: 'iqn.2024-01.io.example:disk0', lun: 3 },
    offset: 2 ** 40 + 4096,
    data,
    checksum: crc32c(data),
    initiator: 'iqn.1993-08.org.debian:01:host-ü',
    isid: '400001370000',
    itt: 0xdeadbeef,
    receivedAtMs: 1_700_000_000_123.5,
    ...over,
  }
}

/** A discard (UNMAP) copy: a range and no data. */
export function discard(offset: number, length: number, over: Partial<DiscardEntry> = {}): DiscardEntry {
  return {
    kind: 'discard',
    seq: 43,
    epoch: 7,
    key: { target: 'iqn.2024-01.io.example:disk0', lun: 3 },
    offset,
    length,
    checksum: discardChecksum(offset, length),
    initiator: 'iqn.1993-08.org.debian:01:host-ü',
    isid: '400001370000',
    itt: 0xdeadbef0,
    receivedAtMs: 1_700_000_000_124.5,
    ...over,
  }
}

export const fixtures: { name: string; frame: Frame }[] = [
  {
    name: 'hello',
    frame: { type: 'hello', version: 1, clusterId: 'c0ffee'.repeat(8), nodeName: 'node-a', nonce: pattern(32, 9) },
  },
  { name: 'proof', frame: { type: 'proof', proof: pattern(32, 10) } },
  { name: 'accept', frame: { type: 'accept' } },
  { name: 'refuse', frame: { type: 'refuse', reason: 'bad-secret', detail: 'authentication failed: peer_secret differs' } },
  { name: 'select', frame: { type: 'select' } },
  { name: 'close', frame: { type: 'close', reason: 'shutdown' } },
  {
    name: 'heartbeat',
    frame: { type: 'heartbeat', epoch: 12, role: 'primary', sentAtMs: 1_700_000_000_000.25, journalEntries: 17 },
  },
  { name: 'heartbeat-ack', frame: { type: 'heartbeat-ack', epoch: 12, echoSentAtMs: 123.456, role: 'secondary' } },
  { name: 'copy', frame: { type: 'copy', entry: entry(pattern(4096, 3)) } },
  { name: 'copy (small)', frame: { type: 'copy', entry: entry(pattern(300, 4), { seq: 2 ** 53 - 1, epoch: 0 }) } },
  { name: 'copy (empty data)', frame: { type: 'copy', entry: entry(Buffer.alloc(0), { seq: 1 }) } },
  { name: 'copy-ack', frame: { type: 'copy-ack', epoch: 12, seq: 2 ** 33 + 5, count: 1 } },
  { name: 'copy-nak', frame: { type: 'copy-nak', epoch: 12, seq: 9, reason: 'journal full' } },
  { name: 'complete', frame: { type: 'complete', epoch: 12, seqs: [1, 2, 3, 2 ** 40] } },
  { name: 'complete (none)', frame: { type: 'complete', epoch: 12, seqs: [] } },
  {
    name: 'state',
    frame: {
      type: 'state',
      epoch: 12,
      serviceAddress: '192.0.2.10:3260',
      hostConnections: [
        { local: '192.0.2.10:3260', remote: '198.51.100.7:51234' },
        { local: '[2001:db8::10]:3260', remote: '[2001:db8::77]:40000' },
      ],
    },
  },
  { name: 'state (no hosts)', frame: { type: 'state', epoch: 1, serviceAddress: '', hostConnections: [] } },
  { name: 'handover-request', frame: { type: 'handover-request', epoch: 12, to: 'node-b' } },
  { name: 'handover-ready', frame: { type: 'handover-ready', epoch: 12, lastSeq: 41 } },
  { name: 'sync', frame: { type: 'sync', epoch: 12, generation: 3 } },
  { name: 'sync-ack', frame: { type: 'sync-ack', epoch: 12, generation: 3 } },
  { name: 'copy (discard)', frame: { type: 'copy', entry: discard(2 ** 40, 256 * 1024 * 1024) } },
  { name: 'copy (discard, huge range)', frame: { type: 'copy', entry: discard(0, 2 ** 52, { seq: 2 ** 53 - 1, initiator: '', isid: '' }) } },
  {
    name: 'lun-sizes',
    frame: {
      type: 'lun-sizes',
      epoch: 12,
      luns: [
        { target: 'iqn.2024-01.io.example:disk0', lun: 0, sizeBytes: 128 * 1024 * 1024 },
        { target: 'iqn.2024-01.io.example:disk0', lun: 0xffffffff, sizeBytes: 2 ** 53 - 1 },
        { target: 'iqn.2024-01.io.example:ü', lun: 3, sizeBytes: 0 },
      ],
    },
  },
  { name: 'lun-sizes (none)', frame: { type: 'lun-sizes', epoch: 0, luns: [] } },
  { name: 'copy-ack (a run)', frame: { type: 'copy-ack', epoch: 12, seq: 7, count: 4096 } },
]

/** Recompute a frame's CRC after a test modified its header or payload. */
export function fixCrc(frame: Buffer): Buffer {
  const payloadLength = frame.readUInt32BE(8)
  const end = Math.min(frame.length, FRAME_HEADER_LENGTH + payloadLength)
  frame.writeUInt32BE(crc32c(frame.subarray(FRAME_HEADER_LENGTH, end), crc32c(frame.subarray(0, 16))), 16)
  return frame
}
