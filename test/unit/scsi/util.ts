// Shared helpers for the SCSI engine tests (not a test file itself).

import { expect } from 'vitest'
import { DiskLogicalUnit, type DiskLogicalUnitOptions } from '../../../src/scsi/disk-lu.js'
import { deriveIdentity } from '../../../src/scsi/identity.js'
import { decodeSense, type DecodedSense } from '../../../src/scsi/sense.js'
import { ScsiStatus, type BlockDevice, type Nexus, type ScsiResult } from '../../../src/scsi/types.js'
import { MemoryDevice } from '../../helpers/memory-device.js'

export const TARGET = 'iqn.2024-01.test.iscsi-ha:disk1'

export function nexus(initiator = 'iqn.2024-01.test:init1', isid = '400001370000'): Nexus {
  return {
    initiatorName: initiator,
    isid,
    targetName: TARGET,
    tpgt: 1,
    key: `${initiator},i,0x${isid},${TARGET},t,1`,
  }
}

export const N1 = nexus()
export const N2 = nexus('iqn.2024-01.test:init2', '400001370001')

export interface Fixture {
  lu: DiskLogicalUnit
  dev: MemoryDevice
  errors: string[]
  warnings: string[]
}

export function makeLu(
  opts: Partial<Omit<DiskLogicalUnitOptions, 'device'>> & { sizeBytes?: number; device?: BlockDevice } = {},
): Fixture {
  const dev = new MemoryDevice(opts.sizeBytes ?? 1024 * 512)
  const errors: string[] = []
  const warnings: string[] = []
  const lun = opts.lun ?? 0
  const lu = new DiskLogicalUnit({
    lun,
    device: opts.device ?? dev,
    identity: opts.identity ?? { ...deriveIdentity(TARGET, lun), targetName: TARGET, tpgt: 1, relativeTargetPortId: 1 },
    writeCache: opts.writeCache ?? true,
    log: { error: (m) => errors.push(m), warn: (m) => warnings.push(m) },
    ...opts,
  })
  return { lu, dev, errors, warnings }
}

/** Build a CDB of `len` bytes from (offset, value) settings. */
export function cdb(len: number, opcode: number, set: (b: Buffer) => void = () => undefined): Buffer {
  const b = Buffer.alloc(Math.max(len, 16))
  b[0] = opcode
  set(b)
  return b
}

export function rw10(opcode: number, lba: number, blocks: number, byte1 = 0): Buffer {
  return cdb(10, opcode, (b) => {
    b[1] = byte1
    b.writeUInt32BE(lba >>> 0, 2)
    b.writeUInt16BE(blocks, 7)
  })
}

export function rw12(opcode: number, lba: number, blocks: number, byte1 = 0): Buffer {
  return cdb(12, opcode, (b) => {
    b[1] = byte1
    b.writeUInt32BE(lba >>> 0, 2)
    b.writeUInt32BE(blocks, 6)
  })
}

export function rw16(opcode: number, lba: number | bigint, blocks: number, byte1 = 0): Buffer {
  return cdb(16, opcode, (b) => {
    b[1] = byte1
    b.writeBigUInt64BE(BigInt(lba), 2)
    b.writeUInt32BE(blocks, 10)
  })
}

export function rw6(opcode: number, lba: number, blocks: number): Buffer {
  return cdb(6, opcode, (b) => {
    b[1] = (lba >> 16) & 0x1f
    b.writeUInt16BE(lba & 0xffff, 2)
    b[4] = blocks & 0xff
  })
}

export async function run(
  lu: DiskLogicalUnit,
  c: Buffer,
  opts: { dataOut?: Buffer; nexus?: Nexus; expectedLength?: number; signal?: AbortSignal } = {},
): Promise<ScsiResult> {
  return lu.execute({
    cdb: c,
    nexus: opts.nexus ?? N1,
    expectedLength: opts.expectedLength ?? opts.dataOut?.length ?? 0,
    dataOut: opts.dataOut ?? Buffer.alloc(0),
    signal: opts.signal,
  })
}

/** Consume pending unit attentions of a nexus with TEST UNIT READY until GOOD. */
export async function clearUa(lu: DiskLogicalUnit, n: Nexus = N1): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const r = await run(lu, cdb(6, 0x00), { nexus: n })
    if (r.status === ScsiStatus.Good) return i
  }
  throw new Error('unit attentions never cleared')
}

export function expectGood(r: ScsiResult): void {
  if (r.status !== ScsiStatus.Good) {
    const s = r.sense ? decodeSense(r.sense) : undefined
    throw new Error(`expected GOOD, got status 0x${r.status.toString(16)} ${JSON.stringify(s)}`)
  }
}

export function expectSense(
  r: ScsiResult,
  key: number,
  asc: number,
  ascq: number,
  extra: Partial<Pick<DecodedSense, 'fieldPointer' | 'bitPointer' | 'cd' | 'information' | 'valid'>> = {},
): DecodedSense {
  expect(r.status).toBe(ScsiStatus.CheckCondition)
  expect(r.sense).toBeDefined()
  const s = decodeSense(r.sense!)
  expect({ key: s.senseKey, asc: s.asc, ascq: s.ascq }).toEqual({ key, asc, ascq })
  for (const [k, v] of Object.entries(extra)) expect(s[k as keyof DecodedSense], k).toBe(v)
  return s
}

export function fill(len: number, byte: number): Buffer {
  return Buffer.alloc(len, byte)
}

/** Deterministic pseudo-random bytes. */
export function pattern(len: number, seed = 1): Buffer {
  const b = Buffer.alloc(len)
  let x = seed >>> 0 || 1
  for (let i = 0; i < len; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    b[i] = x & 0xff
  }
  return b
}
