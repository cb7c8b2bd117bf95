// Peer-link codec micro-benchmarks. Run: npx vitest bench --run bench/peer.bench.ts
//
// Copy-frame throughput in MB/s is ops/sec × the MiB per op noted in each bench name. Encoding
// never touches the data (it is a separate segment; the caller supplies the entry checksum), so
// the encode figures are per-frame costs; decoding verifies the frame CRC and the entry checksum
// (one CRC32C pass over the data) and, in the chunked benches, assembles the frame from 64 KiB
// socket-sized chunks as PeerLink does (ownData: the data is handed over without another copy).

import { bench, describe } from 'vitest'
import { crc32c } from '../src/wire/digest.js'
import { FrameDecoder, encodeFrame, encodeFrameToBuffer, type Frame } from '../src/peer/codec.js'
import type { JournalEntry } from '../src/ha/types.js'

function entry(size: number, seq: number): JournalEntry {
  const data = Buffer.alloc(size)
  for (let i = 0; i < size; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i)
  return {
    seq,
    epoch: 3,
    key: { target: 'iqn.2024-01.io.example:disk0', lun: 0 },
    offset: seq * size,
    data,
    checksum: crc32c(data),
    initiator: 'iqn.1993-08.org.debian:01:host',
    isid: '400001370000',
    itt: seq,
    receivedAtMs: 1_700_000_000_000,
  }
}

function chunks(b: Buffer, size: number): Buffer[] {
  const out: Buffer[] = []
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size))
  return out
}

const copy1M: Frame = { type: 'copy', entry: entry(1 << 20, 1) }
const copy1MBytes = encodeFrameToBuffer(copy1M)
const copy1MChunks = chunks(copy1MBytes, 64 * 1024)

const copies4k: Frame[] = Array.from({ length: 64 }, (_, i) => ({ type: 'copy', entry: entry(4096, i + 1) }) as Frame)
const copies4kBytes = Buffer.concat(copies4k.map(encodeFrameToBuffer))
const copies4kChunks = chunks(copies4kBytes, 64 * 1024)

const heartbeat: Frame = { type: 'heartbeat', epoch: 3, role: 'primary', sentAtMs: 1_700_000_000_000.5, journalEntries: 12 }
const heartbeats = Buffer.concat(Array.from({ length: 64 }, () => encodeFrameToBuffer(heartbeat)))

let sink = 0
const viewDecoder = new FrameDecoder({ onFrame: (f) => (sink += f.type.length) })
const ownDecoder = new FrameDecoder({ ownData: true, onFrame: (f) => (sink += f.type.length) })

describe('copy 1 MiB', () => {
  bench('encode (1 MiB/op, data not copied)', () => {
    sink += encodeFrame(copy1M).length
  })
  bench('encode + entry checksum (1 MiB/op)', () => {
    const e = (copy1M as Extract<Frame, { type: 'copy' }>).entry
    sink += crc32c(e.data!)
    sink += encodeFrame(copy1M).length
  })
  bench('decode, one chunk, data as a view (1 MiB/op)', () => {
    viewDecoder.push(copy1MBytes)
  })
  bench('decode, 64 KiB chunks, owned data (1 MiB/op)', () => {
    for (const c of copy1MChunks) ownDecoder.push(c)
  })
})

describe('copy 4 KiB × 64', () => {
  bench('encode (0.25 MiB/op)', () => {
    for (const f of copies4k) sink += encodeFrame(f).length
  })
  bench('decode, 64 KiB chunks, data as views (0.25 MiB/op)', () => {
    for (const c of copies4kChunks) viewDecoder.push(c)
  })
  bench('decode, 64 KiB chunks, owned data (0.25 MiB/op)', () => {
    for (const c of copies4kChunks) ownDecoder.push(c)
  })
})

describe('heartbeat × 64', () => {
  bench('encode (64 frames/op)', () => {
    for (let i = 0; i < 64; i++) sink += encodeFrame(heartbeat).length
  })
  bench('decode (64 frames/op)', () => {
    viewDecoder.push(heartbeats)
  })
})

// The secondary confirms a burst of 32 copies: one copy-ack frame each (protocol 2) against
// one frame for the run (protocol 3), encoded by the secondary and decoded by the primary.
const singleAcks = Buffer.concat(Array.from({ length: 32 }, (_, i) => encodeFrameToBuffer({ type: 'copy-ack', epoch: 3, seq: 100 + i, count: 1 })))
const runAck = encodeFrameToBuffer({ type: 'copy-ack', epoch: 3, seq: 100, count: 32 })

describe('confirming 32 copies', () => {
  bench('32 copy-acks: encode + decode (32 copies/op)', () => {
    for (let i = 0; i < 32; i++) sink += encodeFrame({ type: 'copy-ack', epoch: 3, seq: 100 + i, count: 1 }).length
    viewDecoder.push(singleAcks)
  })
  bench('1 copy-ack run: encode + decode (32 copies/op)', () => {
    sink += encodeFrame({ type: 'copy-ack', epoch: 3, seq: 100, count: 32 }).length
    viewDecoder.push(runAck)
  })
})
