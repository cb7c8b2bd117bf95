// Wire codec micro-benchmarks. Run: npx vitest bench --run bench/wire.bench.ts
//
// Each parse bench pushes a prepared buffer into a long-lived parser; the per-PDU rate is
// ops/sec × the number of PDUs per op (noted in the bench name).

import { bench, describe } from 'vitest'
import { PduParser } from '../src/wire/parser.js'
import {
  encodeDataIn,
  encodeNopIn,
  encodeScsiCommand,
  encodeScsiResponse,
  encodeToBuffer,
  type EncodeOptions,
} from '../src/wire/serializer.js'
import {
  Opcode,
  RESERVED_TAG,
  TaskAttribute,
  type DataIn,
  type DataOut,
  type NopIn,
  type ScsiCommand,
  type ScsiResponse,
} from '../src/wire/pdu.js'

const NONE: EncodeOptions = { headerDigest: false, dataDigest: false }
const BOTH: EncodeOptions = { headerDigest: true, dataDigest: true }

const read10: ScsiCommand = {
  opcode: Opcode.ScsiCommand,
  immediate: false,
  ahs: [],
  data: Buffer.alloc(0),
  final: true,
  read: true,
  write: false,
  attribute: TaskAttribute.Simple,
  lun: 0x0001000000000000n,
  itt: 0x1234,
  expectedDataTransferLength: 4096,
  cmdSN: 100,
  expStatSN: 200,
  cdb: Buffer.from('28000000100000000800000000000000', 'hex'),
}

const dataOut4k: DataOut = {
  opcode: Opcode.DataOut,
  immediate: false,
  ahs: [],
  data: Buffer.alloc(4096, 0x5a),
  final: true,
  lun: 0x0001000000000000n,
  itt: 0x1234,
  ttt: 0x10,
  expStatSN: 200,
  dataSN: 0,
  bufferOffset: 0,
}

const dataIn4k: DataIn = {
  opcode: Opcode.DataIn,
  immediate: false,
  ahs: [],
  data: Buffer.alloc(4096, 0xa5),
  final: true,
  acknowledge: false,
  overflow: false,
  underflow: false,
  hasStatus: true,
  status: 0,
  lun: 0n,
  itt: 0x1234,
  ttt: RESERVED_TAG,
  statSN: 300,
  expCmdSN: 101,
  maxCmdSN: 132,
  dataSN: 0,
  bufferOffset: 0,
  residualCount: 0,
}

const goodResponse: ScsiResponse = {
  opcode: Opcode.ScsiResponse,
  immediate: false,
  ahs: [],
  data: Buffer.alloc(0),
  bidiOverflow: false,
  bidiUnderflow: false,
  overflow: false,
  underflow: false,
  response: 0,
  status: 0,
  itt: 0x1234,
  snackTag: 0,
  statSN: 301,
  expCmdSN: 101,
  maxCmdSN: 132,
  expDataSN: 1,
  bidiResidualCount: 0,
  residualCount: 0,
  sense: undefined,
}

const nopIn: NopIn = {
  opcode: Opcode.NopIn,
  immediate: false,
  ahs: [],
  data: Buffer.alloc(0),
  lun: 0n,
  itt: RESERVED_TAG,
  ttt: 1,
  statSN: 1,
  expCmdSN: 1,
  maxCmdSN: 1,
}

let sink = 0
const count = (): void => {
  sink++
}

function targetParser(opts: EncodeOptions): PduParser<'target'> {
  return new PduParser({
    direction: 'target',
    maxDataSegmentLength: 262144,
    headerDigest: opts.headerDigest,
    dataDigest: opts.dataDigest,
    onPdu: count,
    onError: count,
  })
}

const oneCommand = encodeToBuffer(read10)
const commands100 = Buffer.concat(Array.from({ length: 100 }, () => oneCommand))
const writeStream = Buffer.concat(
  Array.from({ length: 16 }, () => [encodeToBuffer(read10), encodeToBuffer(dataOut4k)]).flat(),
)
const writeStreamDigests = Buffer.concat(
  Array.from({ length: 16 }, () => [encodeToBuffer(read10, BOTH), encodeToBuffer(dataOut4k, BOTH)]).flat(),
)
// The 16 x (command + 4 KiB Data-Out) stream cut into MSS-sized TCP segments.
const mssChunks: Buffer[] = []
for (let o = 0; o < writeStream.length; o += 1448) mssChunks.push(writeStream.subarray(o, o + 1448))

describe('parse', () => {
  const p1 = targetParser(NONE)
  bench('SCSI Command, 1 PDU per push (in place)', () => {
    p1.push(oneCommand)
  })

  const p2 = targetParser(NONE)
  bench('SCSI Command x100 in one push [100 PDUs/op]', () => {
    p2.push(commands100)
  })

  const p3 = targetParser(NONE)
  bench('command + 4 KiB Data-Out x16, one push [32 PDUs/op]', () => {
    p3.push(writeStream)
  })

  const p4 = targetParser(NONE)
  bench('command + 4 KiB Data-Out x16, 1448-byte chunks [32 PDUs/op]', () => {
    for (let i = 0; i < mssChunks.length; i++) p4.push(mssChunks[i]!)
  })

  const p5 = targetParser(BOTH)
  bench('command + 4 KiB Data-Out x16, header+data digests [32 PDUs/op]', () => {
    p5.push(writeStreamDigests)
  })
})

describe('serialize', () => {
  bench('SCSI Command (initiator side)', () => {
    sink += encodeScsiCommand(read10, NONE).length
  })
  bench('Data-In 4 KiB with status', () => {
    sink += encodeDataIn(dataIn4k, NONE).length
  })
  bench('SCSI Response GOOD', () => {
    sink += encodeScsiResponse(goodResponse, NONE).length
  })
  bench('NOP-In', () => {
    sink += encodeNopIn(nopIn, NONE).length
  })
  bench('Data-In 4 KiB, header+data digests', () => {
    sink += encodeDataIn(dataIn4k, BOTH).length
  })
  bench('SCSI Response GOOD, header digest', () => {
    sink += encodeScsiResponse(goodResponse, BOTH).length
  })
})

// The header-allocation choice behind the serializer: allocUnsafe (pooled) with every byte
// written explicitly, against zeroed allocations.
describe('48-byte header allocation', () => {
  bench('Buffer.alloc(48)', () => {
    sink += Buffer.alloc(48)[0]!
  })
  bench('Buffer.allocUnsafe(48).fill(0)', () => {
    sink += Buffer.allocUnsafe(48).fill(0)[0]!
  })
  bench('Buffer.allocUnsafe(48) + 12 explicit word writes', () => {
    const h = Buffer.allocUnsafe(48)
    for (let o = 0; o < 48; o += 4) {
      h[o] = 0
      h[o + 1] = 0
      h[o + 2] = 0
      h[o + 3] = 0
    }
    sink += h[0]!
  })
})
