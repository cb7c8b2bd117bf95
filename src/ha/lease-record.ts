// The lease record on shared storage: its byte layout, encoder and validating decoder.
//
// The lease area is two slots of LEASE_SLOT_SIZE bytes (8 KiB in all). Each slot holds one
// 512-byte record followed by zeros. A write carries a generation number (one more than the
// generation it was based on) and goes to slot `generation % 2`; a reader takes the valid slot
// with the highest generation. So consecutive writes alternate slots and a write that is torn
// (power loss, a crash mid-write, a reader racing the writer) can only damage the slot it is
// writing: the other slot still holds the record it replaces, and the reader sees that — exactly
// what it would have seen had it read a moment before the write. Each slot starts on its own
// 4 KiB boundary, so a 4Kn device never has to read-modify-write one slot to update the other.
// A never-written area is first formatted with a fixed blank record (generation 0, slot 0; see
// BLANK_RECORD in lease.ts) whose bytes every node writes identically, so even the very first
// claims, racing each other into slot 1, always leave a valid record behind.
//
// Record layout (all integers little-endian):
//
//   offset size field
//        0    4 magic        "IHAL"
//        4    2 version      1
//        6    2 flags        bit 0: RELEASED (planned handover; see `successor`)
//        8    4 epoch        u32, grows by one at every takeover
//       12    4 durationMs   the holder's lease duration (a watcher waits at least this long)
//       16    8 generation   u64, +1 on every write by anyone; picks the slot and the newer slot
//       24    8 counter      u64, the holder's renewal counter (+1 on every renewal)
//       32    4 incarnation  u32, random per process: tells a restarted holder from its old self
//       36    1 holderLen    bytes of `holder` used (0..64)
//       37    1 successorLen bytes of `successor` used (0..64)
//       38    2 reserved     0
//       40   64 holder       node name, UTF-8, zero padded
//      104   64 successor    node allowed to take over at once after a release, or empty
//      168  340 reserved     0
//      508    4 crc          CRC32C of bytes 0..507
//
// Each slot decodes to one of three kinds: `zero` (never written: all 4 KiB are zero), `valid`
// (magic, version, CRC, lengths and reserved bytes all check out) or `garbage` (anything else).
// Garbage is never taken to mean "free".

import { crc32c } from '@node-rs/crc32'

export const LEASE_MAGIC = Buffer.from('IHAL', 'latin1')
export const LEASE_VERSION = 1
export const LEASE_RECORD_SIZE = 512
export const LEASE_SLOT_SIZE = 4096
export const LEASE_SLOTS = 2
export const LEASE_AREA_SIZE = LEASE_SLOT_SIZE * LEASE_SLOTS
/** Longest node name the record holds, in UTF-8 bytes. */
export const LEASE_NAME_MAX = 64

export const FLAG_RELEASED = 0x0001

const OFF_VERSION = 4
const OFF_FLAGS = 6
const OFF_EPOCH = 8
const OFF_DURATION = 12
const OFF_GENERATION = 16
const OFF_COUNTER = 24
const OFF_INCARNATION = 32
const OFF_HOLDER_LEN = 36
const OFF_SUCCESSOR_LEN = 37
const OFF_RESERVED_A = 38
const OFF_HOLDER = 40
const OFF_SUCCESSOR = 104
const OFF_RESERVED_B = 168
const OFF_CRC = 508
const KNOWN_FLAGS = FLAG_RELEASED

/** One lease record as written to a slot. */
export interface LeaseRecord {
  epoch: number
  /** The node that holds (or, when `released`, last held) the lease. Empty for the blank record. */
  holder: string
  /** Random per holder process; a record only counts as "ours" with our incarnation. */
  incarnation: number
  /** Write generation: +1 on every write, whoever writes. */
  generation: number
  /** Renewal counter of the holder. */
  counter: number
  /** The holder's lease duration in ms. */
  durationMs: number
  /** Planned handover: the holder stopped serving and gave the lease up. */
  released: boolean
  /** With `released`: the node that may take over at once ('' = any node). */
  successor: string
}

export type SlotContent = { kind: 'zero' } | { kind: 'garbage'; why: string } | { kind: 'valid'; record: LeaseRecord }

/** What the whole lease area says. */
export type LeaseView =
  | { kind: 'empty' }
  | { kind: 'unknown'; why: string }
  | { kind: 'record'; record: LeaseRecord; slot: number }

export class LeaseRecordError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'LeaseRecordError'
  }
}

function nameBytes(name: string, field: string): Buffer {
  const b = Buffer.from(name, 'utf8')
  if (b.length > LEASE_NAME_MAX) throw new LeaseRecordError(`${field} ${JSON.stringify(name)} is longer than ${LEASE_NAME_MAX} bytes`)
  if (b.includes(0)) throw new LeaseRecordError(`${field} ${JSON.stringify(name)} contains a NUL byte`)
  return b
}

function checkUint(v: number, max: number, field: string): void {
  if (!Number.isSafeInteger(v) || v < 0 || v > max) throw new LeaseRecordError(`${field} ${v} is not an integer in 0..${max}`)
}

/** Encode `rec` into a full slot image (LEASE_SLOT_SIZE bytes: the record, then zeros). */
export function encodeLeaseRecord(rec: LeaseRecord): Buffer {
  checkUint(rec.epoch, 0xffffffff, 'epoch')
  checkUint(rec.durationMs, 0xffffffff, 'durationMs')
  checkUint(rec.incarnation, 0xffffffff, 'incarnation')
  checkUint(rec.generation, Number.MAX_SAFE_INTEGER, 'generation')
  checkUint(rec.counter, Number.MAX_SAFE_INTEGER, 'counter')
  const holder = nameBytes(rec.holder, 'holder')
  const successor = nameBytes(rec.successor, 'successor')
  const b = Buffer.alloc(LEASE_SLOT_SIZE)
  LEASE_MAGIC.copy(b, 0)
  b.writeUInt16LE(LEASE_VERSION, OFF_VERSION)
  b.writeUInt16LE(rec.released ? FLAG_RELEASED : 0, OFF_FLAGS)
  b.writeUInt32LE(rec.epoch, OFF_EPOCH)
  b.writeUInt32LE(rec.durationMs, OFF_DURATION)
  b.writeBigUInt64LE(BigInt(rec.generation), OFF_GENERATION)
  b.writeBigUInt64LE(BigInt(rec.counter), OFF_COUNTER)
  b.writeUInt32LE(rec.incarnation, OFF_INCARNATION)
  b.writeUInt8(holder.length, OFF_HOLDER_LEN)
  b.writeUInt8(successor.length, OFF_SUCCESSOR_LEN)
  holder.copy(b, OFF_HOLDER)
  successor.copy(b, OFF_SUCCESSOR)
  b.writeUInt32LE(crc32c(b.subarray(0, OFF_CRC)) >>> 0, OFF_CRC)
  return b
}

function allZero(b: Uint8Array, from = 0, to = b.length): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false
  return true
}

function readName(b: Buffer, off: number, len: number): string | null {
  if (len > LEASE_NAME_MAX) return null
  if (!allZero(b, off + len, off + LEASE_NAME_MAX)) return null
  const raw = b.subarray(off, off + len)
  if (raw.includes(0)) return null
  const s = raw.toString('utf8')
  // Reject invalid UTF-8 (the decoder substitutes U+FFFD): the bytes must round-trip.
  if (!Buffer.from(s, 'utf8').equals(raw)) return null
  return s
}

/** Decode one slot image (at least LEASE_RECORD_SIZE bytes; bytes past the record are ignored). */
export function decodeLeaseSlot(slot: Buffer): SlotContent {
  if (slot.length < LEASE_RECORD_SIZE) return { kind: 'garbage', why: `slot is ${slot.length} bytes` }
  if (allZero(slot)) return { kind: 'zero' }
  if (!slot.subarray(0, 4).equals(LEASE_MAGIC)) return { kind: 'garbage', why: 'bad magic' }
  const crc = crc32c(slot.subarray(0, OFF_CRC)) >>> 0
  if (crc !== slot.readUInt32LE(OFF_CRC)) return { kind: 'garbage', why: 'bad CRC' }
  const version = slot.readUInt16LE(OFF_VERSION)
  if (version !== LEASE_VERSION) return { kind: 'garbage', why: `unsupported version ${version}` }
  const flags = slot.readUInt16LE(OFF_FLAGS)
  if ((flags & ~KNOWN_FLAGS) !== 0) return { kind: 'garbage', why: `unknown flags 0x${flags.toString(16)}` }
  if (slot.readUInt16LE(OFF_RESERVED_A) !== 0 || !allZero(slot, OFF_RESERVED_B, OFF_CRC)) return { kind: 'garbage', why: 'reserved bytes set' }
  const generation = slot.readBigUInt64LE(OFF_GENERATION)
  const counter = slot.readBigUInt64LE(OFF_COUNTER)
  if (generation > BigInt(Number.MAX_SAFE_INTEGER) || counter > BigInt(Number.MAX_SAFE_INTEGER)) {
    return { kind: 'garbage', why: 'generation or counter out of range' }
  }
  const holder = readName(slot, OFF_HOLDER, slot.readUInt8(OFF_HOLDER_LEN))
  const successor = readName(slot, OFF_SUCCESSOR, slot.readUInt8(OFF_SUCCESSOR_LEN))
  if (holder === null || successor === null) return { kind: 'garbage', why: 'bad name field' }
  return {
    kind: 'valid',
    record: {
      epoch: slot.readUInt32LE(OFF_EPOCH),
      holder,
      incarnation: slot.readUInt32LE(OFF_INCARNATION),
      generation: Number(generation),
      counter: Number(counter),
      durationMs: slot.readUInt32LE(OFF_DURATION),
      released: (flags & FLAG_RELEASED) !== 0,
      successor,
    },
  }
}

/**
 * Decode the whole lease area: the valid slot with the highest generation wins; all slots zero
 * means never written (`empty`); no valid slot and some non-zero slot is `unknown`.
 */
export function decodeLeaseArea(area: Buffer): LeaseView {
  if (area.length < LEASE_AREA_SIZE) return { kind: 'unknown', why: `lease area is ${area.length} bytes, expected ${LEASE_AREA_SIZE}` }
  let best: { record: LeaseRecord; slot: number } | null = null
  const bad: string[] = []
  for (let i = 0; i < LEASE_SLOTS; i++) {
    const c = decodeLeaseSlot(area.subarray(i * LEASE_SLOT_SIZE, (i + 1) * LEASE_SLOT_SIZE))
    if (c.kind === 'valid') {
      if (!best || c.record.generation > best.record.generation) best = { record: c.record, slot: i }
    } else if (c.kind === 'garbage') {
      bad.push(`slot ${i}: ${c.why}`)
    }
  }
  if (best) return { kind: 'record', record: best.record, slot: best.slot }
  if (bad.length === 0) return { kind: 'empty' }
  return { kind: 'unknown', why: bad.join('; ') }
}

/** The slot a record with this generation is written to. */
export function slotOf(generation: number): number {
  return generation % LEASE_SLOTS
}

/** Two records are the same observation: every field equal. */
export function sameRecord(a: LeaseRecord, b: LeaseRecord): boolean {
  return (
    a.epoch === b.epoch &&
    a.holder === b.holder &&
    a.incarnation === b.incarnation &&
    a.generation === b.generation &&
    a.counter === b.counter &&
    a.durationMs === b.durationMs &&
    a.released === b.released &&
    a.successor === b.successor
  )
}
