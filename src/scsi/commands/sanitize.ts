// SANITIZE (SBC-3 §5.30, SBC-4 §5.24). The service actions a unit offers:
// - OVERWRITE (01h), only when the unit is given sanitizeOverwrite (config `sanitize_overwrite`,
//   default off): the INITIALIZATION PATTERN of the parameter list, repeated from the first
//   byte of every logical block, is written over the whole medium OVERWRITE COUNT times,
//   inverted between passes when INVERT is set (the last pass always writes the pattern itself).
//   Each pass is flushed before the next begins: the page cache would otherwise fold the passes
//   into one write of the last. Afterwards every block reads the pattern, so a thin-provisioned
//   LUN ends fully allocated: one host command takes the whole LUN's size from the storage
//   pool, which is why an administrator must allow it. A unit without it neither reports
//   OVERWRITE in REPORT SUPPORTED OPERATION CODES nor accepts it: ILLEGAL REQUEST / INVALID
//   FIELD IN CDB on the SERVICE ACTION field, as for any unsupported service action (opcodes.ts).
// - BLOCK ERASE (02h): every block is deallocated (holes punched, or zeros written) and reads as
//   zeros afterwards (WABEREQ=01b in the Block Device Characteristics page).
// - EXIT FAILURE MODE (1Fh), see below.
// CRYPTO ERASE (03h) needs encryption at rest, which the target does not have: it is not in the
// opcode table, so it is refused as an unsupported service action.
//
// The operation runs in the background, chunk by chunk through the unit's device, so other
// units and the commands that do not touch the medium are served meanwhile. While it runs,
// medium access fails with NOT READY / SANITIZE IN PROGRESS and REQUEST SENSE reports the
// progress (disk-lu.ts, spc.ts); task management functions, resets and the loss of an I_T nexus
// do not stop it (SBC-3 §4.11). IMMED=1 answers once the CDB and the parameter list are
// validated, IMMED=0 when the operation has ended. The state lives in memory: a sanitize cut
// short by a restart of the node is not resumed.
//
// An operation that fails leaves the unit in sanitize failure mode: medium access fails with
// MEDIUM ERROR / SANITIZE COMMAND FAILED. With AUSE=1 (unrestricted completion mode) EXIT
// FAILURE MODE ends it; with AUSE=0 (restricted completion mode) only another sanitize that
// completes without error does, and both EXIT FAILURE MODE and a SANITIZE asking for AUSE=1 are
// refused (SBC-4 §4.11.3, §5.24.1).

import { checkWritable } from '../cdb.js'
import type { LuContext } from '../context.js'
import { deallocate } from '../provisioning.js'
import {
  invalidFieldInCdb,
  invalidFieldInParameterList,
  parameterListLengthError,
  sanitizeFailed,
} from '../sense.js'
import { ScsiStatus, type ScsiRequest, type ScsiResult } from '../types.js'
import { GOOD } from './results.js'

export const SANITIZE_OPCODE = 0x48
export const SANITIZE_OVERWRITE = 0x01
export const SANITIZE_BLOCK_ERASE = 0x02
export const SANITIZE_CRYPTO_ERASE = 0x03
export const SANITIZE_EXIT_FAILURE_MODE = 0x1f

const IMMED = 0x80
const RESERVED_BIT = 0x40
const AUSE = 0x20

/** The OVERWRITE parameter list header: INVERT/TEST/OVERWRITE COUNT, reserved, pattern length. */
export const OVERWRITE_HEADER_BYTES = 4

const TASK_ABORTED: ScsiResult = Object.freeze({ status: ScsiStatus.TaskAborted })

/** Sanitize progress and failure mode of one logical unit. */
export class SanitizeState {
  /** A sanitize operation is in progress. */
  running = false
  /** Sanitize failure mode: the last sanitize operation failed. */
  failed = false
  /** The failed operation asked for AUSE=1: EXIT FAILURE MODE may end failure mode. */
  unrestricted = false
  private done = 0
  private total = 1

  /** PROGRESS INDICATION of the operation in progress: the fraction done, in 65536ths. */
  get progress(): number {
    return Math.min(0xffff, Math.floor((this.done / this.total) * 0x10000))
  }

  /** An operation of `total` units of work starts (synchronously: the next command sees it). */
  begin(total: number): void {
    this.running = true
    this.done = 0
    this.total = Math.max(1, total)
  }

  advance(units: number): void {
    this.done += units
  }

  /** The operation ended: without error, or failed (failure mode, restricted unless AUSE=1). */
  end(ok: boolean, ause: boolean): void {
    this.running = false
    this.failed = !ok
    this.unrestricted = !ok && ause
  }

  exitFailureMode(): void {
    this.failed = false
    this.unrestricted = false
  }
}

/** Whether `lu` offers SANITIZE OVERWRITE (the opcode table's `offered` for its row). */
export function overwriteOffered(lu: LuContext): boolean {
  return lu.sanitizeOverwrite
}

/** Validates the CDB (everything that does not need the parameter list); returns its length. */
export function planSanitize(lu: LuContext, cdb: Buffer): number {
  if (cdb[1] & RESERVED_BIT) throw invalidFieldInCdb(1, 6)
  for (let i = 2; i <= 6; i++) if (cdb[i] !== 0) throw invalidFieldInCdb(i) // reserved bytes
  const len = cdb.readUInt16BE(7)
  if ((cdb[1] & 0x1f) === SANITIZE_OVERWRITE) {
    // SBC-3 §5.30: more than the header, at most the header and one block of pattern.
    if (len <= OVERWRITE_HEADER_BYTES || len > OVERWRITE_HEADER_BYTES + lu.blockSize) throw invalidFieldInCdb(7)
  } else if (len !== 0) {
    throw invalidFieldInCdb(7) // BLOCK ERASE and EXIT FAILURE MODE take no parameter list
  }
  return len
}

export interface OverwriteParameters {
  /** INVERT: the pattern is inverted between consecutive passes. */
  invert: boolean
  /** OVERWRITE COUNT, 1..31. */
  passes: number
  /** INITIALIZATION PATTERN, 1..block size bytes. */
  pattern: Buffer
}

function highestBit(b: number): number {
  return 31 - Math.clz32(b)
}

/**
 * The OVERWRITE parameter list (SBC-3 §5.30), validated; `length` is the CDB's PARAMETER
 * LIST LENGTH, already checked by planSanitize. Field pointers are into the parameter list.
 */
export function overwriteParameters(lu: LuContext, length: number, dataOut: Buffer): OverwriteParameters {
  if (dataOut.length < length) throw parameterListLengthError()
  const p = dataOut.subarray(0, length)
  const b0 = p[0]
  // TEST (bits 6..5): only 00b; the other values select vendor-specific test modes.
  if (b0 & 0x60) throw invalidFieldInParameterList(0, 6)
  const passes = b0 & 0x1f
  if (passes === 0) throw invalidFieldInParameterList(0, 4) // OVERWRITE COUNT 0 is reserved
  if (p[1] !== 0) throw invalidFieldInParameterList(1, highestBit(p[1])) // reserved
  const patternLength = p.readUInt16BE(2)
  if (patternLength === 0 || patternLength > lu.blockSize) throw invalidFieldInParameterList(2)
  // The list must be exactly the header and the pattern: shorter cuts the pattern off, longer
  // holds bytes the pattern length does not account for. Either way the initiator's idea of the
  // pattern is not what arrived, and a destructive command does not guess.
  if (OVERWRITE_HEADER_BYTES + patternLength > length) throw parameterListLengthError()
  if (OVERWRITE_HEADER_BYTES + patternLength < length) throw invalidFieldInParameterList(2)
  return {
    invert: (b0 & 0x80) !== 0,
    passes,
    pattern: Buffer.from(p.subarray(OVERWRITE_HEADER_BYTES)),
  }
}

/**
 * Pass `pass` (0-based) of `passes` writes the inverted pattern when INVERT is set and an odd
 * number of passes follow it, so the last pass writes the pattern itself: with an even count the
 * first pass is inverted, with an odd one it is not (SBC-3 §5.30).
 */
export function passInverted(invert: boolean, pass: number, passes: number): boolean {
  return invert && (passes - 1 - pass) % 2 === 1
}

/** One logical block of the pattern: repeated from the block's first byte, inverted or not. */
export function patternBlock(pattern: Buffer, blockSize: number, inverted: boolean): Buffer {
  const b = Buffer.alloc(blockSize)
  for (let off = 0; off < blockSize; off += pattern.length) pattern.copy(b, off)
  if (inverted) for (let i = 0; i < blockSize; i++) b[i] = ~b[i] & 0xff
  return b
}

/** Bytes written (or deallocated) per step: other units' commands run between the steps. */
const CHUNK_BYTES = 1024 * 1024

async function overwrite(lu: LuContext, p: OverwriteParameters): Promise<void> {
  const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / lu.blockSize))
  for (let pass = 0; pass < p.passes; pass++) {
    const block = patternBlock(p.pattern, lu.blockSize, passInverted(p.invert, pass, p.passes))
    // A fresh buffer each pass: a device may keep the buffers it was given (the HA mirror's
    // journal), so a buffer once written is never changed.
    const chunk = Buffer.alloc(Math.min(perChunk, Math.max(1, lu.capacityBlocks)) * lu.blockSize)
    for (let off = 0; off < chunk.length; off += lu.blockSize) block.copy(chunk, off)
    for (let lba = 0; lba < lu.capacityBlocks; lba += perChunk) {
      const n = Math.min(perChunk, lu.capacityBlocks - lba)
      const data = chunk.subarray(0, n * lu.blockSize)
      // Exclusive: a write that was in flight when the sanitize began finishes first.
      await lu.locks.exclusive(lba, n, () => lu.device.write(lba * lu.blockSize, data, { fua: false }))
      lu.sanitize.advance(n)
    }
    await lu.device.flush()
  }
}

async function blockErase(lu: LuContext): Promise<void> {
  const perChunk = Math.max(1, Math.floor((256 * 1024 * 1024) / lu.blockSize))
  for (let lba = 0; lba < lu.capacityBlocks; lba += perChunk) {
    const blocks = Math.min(perChunk, lu.capacityBlocks - lba)
    await lu.locks.exclusive(lba, blocks, () => deallocate(lu, [{ lba, blocks }]))
    lu.sanitize.advance(blocks)
  }
  await lu.device.flush()
}

/**
 * Runs a sanitize operation in the background: the unit is marked as sanitizing before this
 * returns. The promise resolves true when it completed without error, false when it failed
 * (the unit is then in failure mode); it never rejects.
 */
function start(lu: LuContext, name: string, ause: boolean, total: number, work: () => Promise<void>): Promise<boolean> {
  lu.sanitize.begin(total)
  return work().then(
    () => {
      lu.sanitize.end(true, ause)
      return true
    },
    (e: unknown) => {
      lu.sanitize.end(false, ause)
      lu.log.error(`SANITIZE ${name} failed: the unit is in sanitize failure mode`, { lun: lu.lun, error: String(e) })
      return false
    },
  )
}

/** `op`, or 'aborted' as soon as `signal` fires (the operation itself goes on). */
function untilAborted<T>(op: Promise<T>, signal: AbortSignal | undefined): Promise<T | 'aborted'> {
  if (signal === undefined) return op
  if (signal.aborted) return Promise.resolve('aborted')
  return new Promise((resolve) => {
    const onAbort = (): void => resolve('aborted')
    signal.addEventListener('abort', onAbort, { once: true })
    void op.then((v) => {
      signal.removeEventListener('abort', onAbort)
      resolve(v)
    })
  })
}

export async function sanitize(lu: LuContext, req: ScsiRequest): Promise<ScsiResult> {
  const cdb = req.cdb
  const len = planSanitize(lu, cdb)
  const sa = cdb[1] & 0x1f
  const ause = (cdb[1] & AUSE) !== 0
  const state = lu.sanitize
  const restricted = state.failed && !state.unrestricted
  if (sa === SANITIZE_EXIT_FAILURE_MODE) {
    // Restricted completion mode: only a sanitize that completes without error ends it.
    if (restricted) throw invalidFieldInCdb(1, 4)
    state.exitFailureMode()
    return GOOD
  }
  if (restricted && ause) throw invalidFieldInCdb(1, 5)
  const params = sa === SANITIZE_OVERWRITE ? overwriteParameters(lu, len, req.dataOut) : undefined
  checkWritable(lu)
  const op =
    params !== undefined
      ? start(lu, 'OVERWRITE', ause, params.passes * lu.capacityBlocks, () => overwrite(lu, params))
      : start(lu, 'BLOCK ERASE', ause, lu.capacityBlocks, () => blockErase(lu))
  if (cdb[1] & IMMED) return GOOD
  // The task may be aborted; the sanitize goes on regardless (SBC-3 §4.11).
  const outcome = await untilAborted(op, req.signal)
  if (outcome === 'aborted') return TASK_ABORTED
  if (!outcome) throw sanitizeFailed()
  return GOOD
}
