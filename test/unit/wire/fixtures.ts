// Hand-built PDU fixtures: bytes written out word by word from the RFC 7143 §11 layouts, next to
// the PDU object they must decode to. Not produced by our serializer.

import {
  Opcode,
  RESERVED_TAG,
  RejectReason,
  TaskAttribute,
  TmfFunction,
  TmfResponse,
  type Pdu,
} from '../../../src/wire/pdu.js'

/** Hex with whitespace and `// comments` ignored. */
export function hex(strings: TemplateStringsArray, ...values: unknown[]): Buffer {
  let text = ''
  strings.forEach((s, i) => {
    text += s
    if (i < values.length) text += String(values[i])
  })
  const clean = text
    .split('\n')
    .map((line) => line.replace(/\/\/.*$/, ''))
    .join('')
    .replace(/\s+/g, '')
  if (!/^([0-9a-fA-F]{2})*$/.test(clean)) throw new Error(`bad hex fixture: ${clean}`)
  return Buffer.from(clean, 'hex')
}

const ascii = (s: string): Buffer => Buffer.from(s, 'latin1')

export interface Fixture {
  name: string
  pdu: Pdu
  /** The PDU without digests. */
  bytes: Buffer
  /** TotalAHSLength in bytes (to place a header digest). */
  ahsLength: number
  /** DataSegmentLength (to place padding and the data digest). */
  dataLength: number
}

function fx(name: string, pdu: Pdu, bytes: Buffer): Fixture {
  const ahsLength = bytes[4] * 4
  const dataLength = bytes.readUIntBE(5, 3)
  return { name, pdu, bytes, ahsLength, dataLength }
}

const EMPTY = Buffer.alloc(0)

const cdb32 = hex`
  7f 00 00 00 00 00 00 18   09 a1 00 00 00 00 00 00
  00 00 00 00 00 00 00 00   00 00 00 00 00 00 00 08
`

const sense18 = hex`70 00 05 00 00 00 00 0a 00 00 00 00 24 00 00 00 00 00`

export const fixtures: Fixture[] = [
  fx(
    'NOP-Out ping with data',
    {
      opcode: Opcode.NopOut,
      immediate: true,
      ahs: [],
      data: ascii('ping'),
      lun: 0x0001000000000000n,
      itt: 0x11223344,
      ttt: RESERVED_TAG,
      cmdSN: 5,
      expStatSN: 7,
    },
    hex`
      40 80 00 00   // .|I| 0x00, byte1 bit 7 set, reserved
      00 00 00 04   // TotalAHSLength 0, DataSegmentLength 4
      00 01 00 00   // LUN 1 (peripheral)
      00 00 00 00
      11 22 33 44   // ITT
      ff ff ff ff   // TTT
      00 00 00 05   // CmdSN
      00 00 00 07   // ExpStatSN
      00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00
      70 69 6e 67   // "ping"
    `,
  ),
  fx(
    'SCSI Command READ(10)',
    {
      opcode: Opcode.ScsiCommand,
      immediate: false,
      ahs: [],
      data: EMPTY,
      final: true,
      read: true,
      write: false,
      attribute: TaskAttribute.Simple,
      lun: 0n,
      itt: 1,
      expectedDataTransferLength: 4096,
      cmdSN: 0x10,
      expStatSN: 0x20,
      cdb: hex`28 00 00 00 00 10 00 00 08 00 00 00 00 00 00 00`,
    },
    hex`
      01 c1 00 00   // 0x01, F|R|ATTR=1
      00 00 00 00
      00 00 00 00  00 00 00 00   // LUN 0
      00 00 00 01   // ITT
      00 00 10 00   // Expected Data Transfer Length
      00 00 00 10   // CmdSN
      00 00 00 20   // ExpStatSN
      28 00 00 00  00 10 00 00  08 00 00 00  00 00 00 00   // CDB
    `,
  ),
  fx(
    'SCSI Command with Extended CDB AHS and immediate data',
    {
      opcode: Opcode.ScsiCommand,
      immediate: true,
      ahs: [{ type: 1, specific: 0, bytes: cdb32.subarray(16) }],
      data: hex`de ad be ef 01`,
      final: true,
      read: false,
      write: true,
      attribute: TaskAttribute.Ordered,
      lun: 0x4123000000000000n,
      itt: 0xabcdef01,
      expectedDataTransferLength: 512,
      cmdSN: 0xfffffffe,
      expStatSN: 3,
      cdb: cdb32,
    },
    hex`
      41 a2 00 00   // I, 0x01, F|W|ATTR=2
      05 00 00 05   // TotalAHSLength 5 words, DataSegmentLength 5
      41 23 00 00  00 00 00 00   // LUN 0x123 (flat)
      ab cd ef 01
      00 00 02 00
      ff ff ff fe
      00 00 00 03
      7f 00 00 00  00 00 00 18  09 a1 00 00  00 00 00 00   // CDB bytes 0-15
      00 11 01 00   // AHSLength 17 (= CDB length - 15), AHSType 1, reserved
      00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 08   // CDB bytes 16-31
      de ad be ef  01 00 00 00   // data + 3 pad bytes
    `,
  ),
  fx(
    'Task Management Request ABORT TASK',
    {
      opcode: Opcode.TaskMgmtRequest,
      immediate: true,
      ahs: [],
      data: EMPTY,
      function: TmfFunction.AbortTask,
      lun: 0x0003000000000000n,
      itt: 0x99,
      referencedTaskTag: 0x42,
      cmdSN: 100,
      expStatSN: 200,
      refCmdSN: 98,
      expDataSN: 4,
    },
    hex`
      42 81 00 00   // I, 0x02, 1|Function=1
      00 00 00 00
      00 03 00 00  00 00 00 00
      00 00 00 99   // ITT
      00 00 00 42   // Referenced Task Tag
      00 00 00 64   // CmdSN
      00 00 00 c8   // ExpStatSN
      00 00 00 62   // RefCmdSN
      00 00 00 04   // ExpDataSN
      00 00 00 00  00 00 00 00
    `,
  ),
  fx(
    'Login Request security -> full feature',
    {
      opcode: Opcode.LoginRequest,
      immediate: true,
      ahs: [],
      data: ascii('InitiatorName=iqn.x\0'),
      transit: true,
      continue: false,
      csg: 1,
      nsg: 3,
      versionMax: 0,
      versionMin: 0,
      isid: '400001370000',
      tsih: 0,
      itt: 0,
      cid: 1,
      cmdSN: 1,
      expStatSN: 0,
    },
    hex`
      43 87 00 00   // I, 0x03, T|CSG=1|NSG=3, Version-max 0, Version-min 0
      00 00 00 14   // DataSegmentLength 20
      40 00 01 37  00 00 00 00   // ISID 400001370000, TSIH 0
      00 00 00 00   // ITT
      00 01 00 00   // CID 1, reserved
      00 00 00 01   // CmdSN
      00 00 00 00   // ExpStatSN
      00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00
      49 6e 69 74 69 61 74 6f 72 4e 61 6d 65 3d 69 71 6e 2e 78 00   // InitiatorName=iqn.x\0
    `,
  ),
  fx(
    'Text Request SendTargets',
    {
      opcode: Opcode.TextRequest,
      immediate: false,
      ahs: [],
      data: ascii('SendTargets=All\0'),
      final: true,
      continue: false,
      lun: 0n,
      itt: 2,
      ttt: RESERVED_TAG,
      cmdSN: 2,
      expStatSN: 1,
    },
    hex`
      04 80 00 00   // 0x04, F
      00 00 00 10   // DataSegmentLength 16
      00 00 00 00  00 00 00 00
      00 00 00 02
      ff ff ff ff
      00 00 00 02
      00 00 00 01
      00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00
      53 65 6e 64 54 61 72 67 65 74 73 3d 41 6c 6c 00
    `,
  ),
  fx(
    'Data-Out final with padding',
    {
      opcode: Opcode.DataOut,
      immediate: false,
      ahs: [],
      data: hex`01 02 03 04 05 06`,
      final: true,
      lun: 0x0002000000000000n,
      itt: 7,
      ttt: 0x1000,
      expStatSN: 9,
      dataSN: 3,
      bufferOffset: 8192,
    },
    hex`
      05 80 00 00
      00 00 00 06
      00 02 00 00  00 00 00 00
      00 00 00 07   // ITT
      00 00 10 00   // TTT
      00 00 00 00   // reserved
      00 00 00 09   // ExpStatSN
      00 00 00 00   // reserved
      00 00 00 03   // DataSN
      00 00 20 00   // Buffer Offset
      00 00 00 00   // reserved
      01 02 03 04  05 06 00 00
    `,
  ),
  fx(
    'Logout Request close session',
    {
      opcode: Opcode.LogoutRequest,
      immediate: true,
      ahs: [],
      data: EMPTY,
      reason: 0,
      itt: 0x55,
      cid: 0,
      cmdSN: 12,
      expStatSN: 13,
    },
    hex`
      46 80 00 00
      00 00 00 00
      00 00 00 00  00 00 00 00
      00 00 00 55
      00 00 00 00   // CID 0, reserved
      00 00 00 0c
      00 00 00 0d
      00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00
    `,
  ),
  fx(
    'SNACK status',
    {
      opcode: Opcode.Snack,
      immediate: false,
      ahs: [],
      data: EMPTY,
      type: 1,
      lun: 0n,
      itt: RESERVED_TAG,
      ttt: RESERVED_TAG,
      expStatSN: 40,
      begRun: 35,
      runLength: 2,
    },
    hex`
      10 81 00 00   // 0x10, 1|Type=1
      00 00 00 00
      00 00 00 00  00 00 00 00
      ff ff ff ff
      ff ff ff ff
      00 00 00 00
      00 00 00 28
      00 00 00 00  00 00 00 00
      00 00 00 23   // BegRun
      00 00 00 02   // RunLength
    `,
  ),
  fx(
    'NOP-In unsolicited',
    {
      opcode: Opcode.NopIn,
      immediate: false,
      ahs: [],
      data: EMPTY,
      lun: 0n,
      itt: RESERVED_TAG,
      ttt: 0x12,
      statSN: 1000,
      expCmdSN: 50,
      maxCmdSN: 81,
    },
    hex`
      20 80 00 00
      00 00 00 00
      00 00 00 00  00 00 00 00
      ff ff ff ff
      00 00 00 12
      00 00 03 e8
      00 00 00 32
      00 00 00 51
      00 00 00 00  00 00 00 00  00 00 00 00
    `,
  ),
  fx(
    'SCSI Response CHECK CONDITION with sense',
    {
      opcode: Opcode.ScsiResponse,
      immediate: false,
      ahs: [],
      data: Buffer.concat([hex`00 12`, sense18]),
      bidiOverflow: false,
      bidiUnderflow: false,
      overflow: false,
      underflow: true,
      response: 0,
      status: 0x02,
      itt: 0x10,
      snackTag: 0,
      statSN: 77,
      expCmdSN: 78,
      maxCmdSN: 109,
      expDataSN: 0,
      bidiResidualCount: 0,
      residualCount: 512,
      sense: sense18,
    },
    hex`
      21 82 00 02   // 0x21, 1|U, Response 0, Status CHECK CONDITION
      00 00 00 14   // DataSegmentLength 20
      00 00 00 00  00 00 00 00
      00 00 00 10
      00 00 00 00   // SNACK Tag
      00 00 00 4d
      00 00 00 4e
      00 00 00 6d
      00 00 00 00   // ExpDataSN
      00 00 00 00   // Bidirectional Read Residual Count
      00 00 02 00   // Residual Count
      00 12         // SenseLength 18
      70 00 05 00 00 00 00 0a 00 00 00 00 24 00 00 00 00 00
    `,
  ),
  fx(
    'SCSI Response GOOD with bidi overflow flags',
    {
      opcode: Opcode.ScsiResponse,
      immediate: false,
      ahs: [],
      data: EMPTY,
      bidiOverflow: true,
      bidiUnderflow: false,
      overflow: true,
      underflow: false,
      response: 0,
      status: 0,
      itt: 0x11,
      snackTag: 0,
      statSN: 1,
      expCmdSN: 2,
      maxCmdSN: 3,
      expDataSN: 4,
      bidiResidualCount: 5,
      residualCount: 6,
      sense: undefined,
    },
    hex`
      21 94 00 00   // 1|o|O
      00 00 00 00
      00 00 00 00  00 00 00 00
      00 00 00 11
      00 00 00 00
      00 00 00 01
      00 00 00 02
      00 00 00 03
      00 00 00 04
      00 00 00 05
      00 00 00 06
    `,
  ),
  fx(
    'Task Management Response',
    {
      opcode: Opcode.TaskMgmtResponse,
      immediate: false,
      ahs: [],
      data: EMPTY,
      response: TmfResponse.TaskDoesNotExist,
      itt: 0x99,
      statSN: 300,
      expCmdSN: 101,
      maxCmdSN: 132,
    },
    hex`
      22 80 01 00   // Response 1
      00 00 00 00
      00 00 00 00  00 00 00 00
      00 00 00 99
      00 00 00 00
      00 00 01 2c
      00 00 00 65
      00 00 00 84
      00 00 00 00  00 00 00 00  00 00 00 00
    `,
  ),
  fx(
    'Login Response with padding',
    {
      opcode: Opcode.LoginResponse,
      immediate: false,
      ahs: [],
      data: ascii('TargetPortalGroupTag=1\0'),
      transit: true,
      continue: false,
      csg: 1,
      nsg: 3,
      versionMax: 0,
      versionActive: 0,
      isid: '400001370000',
      tsih: 0x0123,
      itt: 0,
      statSN: 0x1000,
      expCmdSN: 1,
      maxCmdSN: 32,
      statusClass: 0,
      statusDetail: 0,
    },
    hex`
      23 87 00 00
      00 00 00 17   // DataSegmentLength 23
      40 00 01 37  00 00 01 23   // ISID, TSIH 0x0123
      00 00 00 00
      00 00 00 00
      00 00 10 00   // StatSN
      00 00 00 01
      00 00 00 20
      00 00 00 00   // Status-Class 0, Status-Detail 0
      00 00 00 00  00 00 00 00
      54 61 72 67 65 74 50 6f 72 74 61 6c 47 72 6f 75 70 54 61 67 3d 31 00   // TargetPortalGroupTag=1\0
      00
    `,
  ),
  fx(
    'Login Response failure (status class 2)',
    {
      opcode: Opcode.LoginResponse,
      immediate: false,
      ahs: [],
      data: EMPTY,
      transit: false,
      continue: false,
      csg: 0,
      nsg: 0,
      versionMax: 0,
      versionActive: 0,
      isid: '80123456abcd',
      tsih: 0,
      itt: 0x77,
      statSN: 0,
      expCmdSN: 0,
      maxCmdSN: 0,
      statusClass: 2,
      statusDetail: 1,
    },
    hex`
      23 00 00 00
      00 00 00 00
      80 12 34 56  ab cd 00 00
      00 00 00 77
      00 00 00 00
      00 00 00 00
      00 00 00 00
      00 00 00 00
      02 01 00 00
      00 00 00 00  00 00 00 00
    `,
  ),
  fx(
    'Text Response continue',
    {
      opcode: Opcode.TextResponse,
      immediate: false,
      ahs: [],
      data: ascii('TargetName=iqn.t\0'),
      final: false,
      continue: true,
      lun: 0n,
      itt: 2,
      ttt: 0x8000,
      statSN: 5,
      expCmdSN: 3,
      maxCmdSN: 34,
    },
    hex`
      24 40 00 00   // C
      00 00 00 11   // 17
      00 00 00 00  00 00 00 00
      00 00 00 02
      00 00 80 00
      00 00 00 05
      00 00 00 03
      00 00 00 22
      00 00 00 00  00 00 00 00  00 00 00 00
      54 61 72 67 65 74 4e 61 6d 65 3d 69 71 6e 2e 74 00   // TargetName=iqn.t\0
      00 00 00
    `,
  ),
  fx(
    'Data-In with status',
    {
      opcode: Opcode.DataIn,
      immediate: false,
      ahs: [],
      data: hex`00 11 22 33 44 55 66 77`,
      final: true,
      acknowledge: false,
      overflow: false,
      underflow: true,
      hasStatus: true,
      status: 0,
      lun: 0x0001000000000000n,
      itt: 0x21,
      ttt: RESERVED_TAG,
      statSN: 60,
      expCmdSN: 61,
      maxCmdSN: 92,
      dataSN: 0,
      bufferOffset: 0,
      residualCount: 8,
    },
    hex`
      25 83 00 00   // F|U|S, Status 0
      00 00 00 08
      00 01 00 00  00 00 00 00
      00 00 00 21
      ff ff ff ff
      00 00 00 3c
      00 00 00 3d
      00 00 00 5c
      00 00 00 00   // DataSN
      00 00 00 00   // Buffer Offset
      00 00 00 08   // Residual Count
      00 11 22 33  44 55 66 77
    `,
  ),
  fx(
    'Data-In with A bit, no status',
    {
      opcode: Opcode.DataIn,
      immediate: false,
      ahs: [],
      data: hex`aa`,
      final: false,
      acknowledge: true,
      overflow: false,
      underflow: false,
      hasStatus: false,
      status: 0,
      lun: 0n,
      itt: 0x22,
      ttt: 0x3000,
      statSN: 0,
      expCmdSN: 70,
      maxCmdSN: 101,
      dataSN: 5,
      bufferOffset: 0x50000,
      residualCount: 0,
    },
    hex`
      25 40 00 00
      00 00 00 01
      00 00 00 00  00 00 00 00
      00 00 00 22
      00 00 30 00
      00 00 00 00
      00 00 00 46
      00 00 00 65
      00 00 00 05
      00 05 00 00
      00 00 00 00
      aa 00 00 00
    `,
  ),
  fx(
    'Logout Response',
    {
      opcode: Opcode.LogoutResponse,
      immediate: false,
      ahs: [],
      data: EMPTY,
      response: 0,
      itt: 0x55,
      statSN: 14,
      expCmdSN: 13,
      maxCmdSN: 44,
      time2Wait: 2,
      time2Retain: 20,
    },
    hex`
      26 80 00 00
      00 00 00 00
      00 00 00 00  00 00 00 00
      00 00 00 55
      00 00 00 00
      00 00 00 0e
      00 00 00 0d
      00 00 00 2c
      00 00 00 00
      00 02 00 14   // Time2Wait 2, Time2Retain 20
      00 00 00 00
    `,
  ),
  fx(
    'R2T',
    {
      opcode: Opcode.R2T,
      immediate: false,
      ahs: [],
      data: EMPTY,
      lun: 0x0005000000000000n,
      itt: 0x31,
      ttt: 0x7001,
      statSN: 90,
      expCmdSN: 91,
      maxCmdSN: 122,
      r2tSN: 1,
      bufferOffset: 65536,
      desiredDataTransferLength: 262144,
    },
    hex`
      31 80 00 00
      00 00 00 00
      00 05 00 00  00 00 00 00
      00 00 00 31
      00 00 70 01
      00 00 00 5a
      00 00 00 5b
      00 00 00 7a
      00 00 00 01
      00 01 00 00
      00 04 00 00
    `,
  ),
  fx(
    'Async Message logout request',
    {
      opcode: Opcode.AsyncMessage,
      immediate: false,
      ahs: [],
      data: EMPTY,
      lun: 0n,
      statSN: 500,
      expCmdSN: 501,
      maxCmdSN: 532,
      asyncEvent: 1,
      asyncVCode: 0,
      parameter1: 0,
      parameter2: 0,
      parameter3: 10,
    },
    hex`
      32 80 00 00
      00 00 00 00
      00 00 00 00  00 00 00 00
      ff ff ff ff   // 0xffffffff
      00 00 00 00
      00 00 01 f4
      00 00 01 f5
      00 00 02 14
      01 00 00 00   // AsyncEvent 1, AsyncVCode 0, Parameter1 0
      00 00 00 0a   // Parameter2 0, Parameter3 10
      00 00 00 00
    `,
  ),
  fx(
    'Reject data digest error',
    {
      opcode: Opcode.Reject,
      immediate: false,
      ahs: [],
      data: hex`
        40 80 00 00  00 00 00 04  00 01 00 00  00 00 00 00
        11 22 33 44  ff ff ff ff  00 00 00 05  00 00 00 07
        00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00
      `,
      reason: RejectReason.DataDigestError,
      statSN: 8,
      expCmdSN: 9,
      maxCmdSN: 40,
      dataSN: 0,
    },
    hex`
      3f 80 02 00   // Reason 0x02
      00 00 00 30   // DataSegmentLength 48
      00 00 00 00  00 00 00 00
      ff ff ff ff
      00 00 00 00
      00 00 00 08
      00 00 00 09
      00 00 00 28
      00 00 00 00
      00 00 00 00  00 00 00 00
      40 80 00 00  00 00 00 04  00 01 00 00  00 00 00 00
      11 22 33 44  ff ff ff ff  00 00 00 05  00 00 00 07
      00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00
    `,
  ),
]

// ---------------------------------------------------------------------------------------------
// Reference CRC32C (bitwise, reflected polynomial 0x82F63B78) — independent of @node-rs/crc32.

export function referenceCrc32c(buf: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0
  for (let i = 0; i < buf.length; i++) {
    c ^= buf[i]
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
  }
  return ~c >>> 0
}

function le32(v: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(v >>> 0)
  return b
}

/** Insert digests into a digest-less fixture encoding, using the reference CRC. */
export function withDigests(f: Fixture, headerDigest: boolean, dataDigest: boolean): Buffer {
  const headerEnd = 48 + f.ahsLength
  const header = f.bytes.subarray(0, headerEnd)
  const rest = f.bytes.subarray(headerEnd) // padded data
  const parts: Buffer[] = [header]
  if (headerDigest) parts.push(le32(referenceCrc32c(header)))
  parts.push(rest)
  if (dataDigest && f.dataLength > 0) parts.push(le32(referenceCrc32c(rest)))
  return Buffer.concat(parts)
}

export const DIGEST_MODES: { name: string; headerDigest: boolean; dataDigest: boolean }[] = [
  { name: 'no digests', headerDigest: false, dataDigest: false },
  { name: 'header digest', headerDigest: true, dataDigest: false },
  { name: 'data digest', headerDigest: false, dataDigest: true },
  { name: 'both digests', headerDigest: true, dataDigest: true },
]

/** Deep-copy every Buffer in a decoded PDU (they are views valid only during the callback). */
export function snapshot(pdu: Pdu): Pdu {
  const copy: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(pdu)) {
    if (Buffer.isBuffer(v)) copy[k] = Buffer.from(v)
    else if (k === 'ahs' && Array.isArray(v)) {
      copy[k] = (v as Pdu['ahs']).map((a) => ({ ...a, bytes: Buffer.from(a.bytes) }))
    } else copy[k] = v
  }
  return copy as unknown as Pdu
}

