// A BlockDevice over a regular file or a block device: one file descriptor, positioned I/O.
//
// Size rules:
// - Regular file that does not exist: created sparse at `sizeBytes` (required; refused when
//   read-only).
// - Regular file that exists: the configured size wins when it is larger (the file is grown,
//   sparsely); a file larger than the configured size is refused (SHRINK_REFUSED) rather than
//   truncated; without a configured size the file's own size is used.
// - Block device: its size comes from sysfs (/sys/dev/block/MAJ:MIN/size × 512, MAJ:MIN from
//   fstat's rdev; fstat itself reports 0 for block devices). A configured size may be smaller
//   (the LU uses the start of the device) but not larger (DEVICE_TOO_SMALL). The device is
//   opened with O_EXCL, which Linux turns into an exclusive claim: a mounted or otherwise
//   claimed device fails with DEVICE_BUSY.
//
// I/O: read fills one buffer (carved from a shared slab, see wire/buffer-slab.ts), looping on short reads
// (zero-filling past an unexpected end of file); write loops on short writes and, with FUA,
// waits for fdatasync. Reads and writes run inline or in the thread pool as the backend's
// InlineIoPolicy decides (inline-io.ts); fdatasync always runs in the thread pool. Concurrent
// fdatasync requests are batched: a request that arrives while one is running shares the next.

import { execa } from 'execa'
import { constants, readSync, writeSync, type Stats } from 'node:fs'
import { open, readFile, stat, statfs, type FileHandle } from 'node:fs/promises'
import type { BlockDevice } from '../scsi/types.js'
import { StorageError, outOfRange } from './errors.js'
import { InlineIoPolicy, REMOTE_FS_MAGIC, type InlineIoOptions, type InlineIoStats, type IoMode } from './inline-io.js'
import { BufferSlab } from '../wire/buffer-slab.js'

export type BackendKind = 'file' | 'block'

/** A byte range to deallocate. */
export interface ByteRange {
  offset: number
  length: number
}

/** Ranges at least this long (after alignment) are punched; shorter ones are written with zeros. */
export const PUNCH_MIN_BYTES = 64 * 1024
/** Punch alignment: file system block / page size. */
export const PUNCH_ALIGN = 4096
const ZEROS = Buffer.alloc(1024 * 1024)

/**
 * Punch holes with util-linux's fallocate(1) (Node has no fallocate(2)): one process for one
 * range, one shell running them in turn for several. FALLOC_FL_PUNCH_HOLE|KEEP_SIZE works on
 * ext4, xfs, btrfs, tmpfs and (as a zeroing discard) on block devices.
 */
export async function punchHoles(path: string, ranges: readonly ByteRange[]): Promise<void> {
  if (ranges.length === 0) return
  if (ranges.length === 1) {
    const r = ranges[0]
    await execa('fallocate', ['--punch-hole', '--keep-size', '--offset', String(r.offset), '--length', String(r.length), path])
    return
  }
  const script = 'f=$1; shift; while [ $# -gt 1 ]; do fallocate --punch-hole --keep-size --offset "$1" --length "$2" "$f" || exit 1; shift 2; done'
  await execa('sh', ['-c', script, 'punch', path, ...ranges.flatMap((r) => [String(r.offset), String(r.length)])])
}

export interface BackendOptions {
  path: string
  /** Size of the logical unit in bytes. Required to create a file; see the size rules above. */
  sizeBytes?: number
  /** Open read-only: writes fail with StorageError READ_ONLY. */
  readOnly?: boolean
  /** sysfs root, for tests. Default '/sys'. */
  sysfsRoot?: string
  /**
   * Where reads and writes run (inline-io.ts). Default 'auto', which becomes 'threadpool' for a
   * file on a network or cluster file system.
   */
  io?: IoMode
  /** Tuning of the 'auto' policy (tests). */
  inlineIo?: InlineIoOptions
}

/** The I/O mode for a file: 'auto' unless its file system can block for a server's sake. */
async function effectiveIoMode(path: string, kind: BackendKind, requested: IoMode): Promise<IoMode> {
  if (requested !== 'auto' || kind === 'block') return requested
  try {
    const fs = await statfs(path)
    return REMOTE_FS_MAGIC.has(fs.type) ? 'threadpool' : 'auto'
  } catch {
    return 'threadpool' // cannot tell: the safe choice
  }
}

function errno(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined
}

/** Linux dev_t → major, minor (glibc's gnu_dev_major / gnu_dev_minor). */
export function splitDevice(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n)
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n)
  return { major: Number(major), minor: Number(minor) }
}

/** Size in bytes of the block device with device number `rdev`, from sysfs. */
export async function blockDeviceSize(rdev: bigint, path: string, sysfsRoot = '/sys'): Promise<number> {
  const { major, minor } = splitDevice(rdev)
  const file = `${sysfsRoot}/dev/block/${major}:${minor}/size`
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    throw new StorageError('SIZE_UNKNOWN', path, `cannot read the device size from ${file}`, { cause: e })
  }
  const sectors = Number(text.trim())
  if (!Number.isSafeInteger(sectors) || sectors < 0) {
    throw new StorageError('SIZE_UNKNOWN', path, `unexpected content ${JSON.stringify(text.trim())} in ${file}`)
  }
  return sectors * 512
}

function checkSize(path: string, size: number | undefined): void {
  if (size === undefined) return
  if (!Number.isSafeInteger(size) || size <= 0) {
    throw new StorageError('INVALID_SIZE', path, `size ${size} is not a positive integer number of bytes`)
  }
}

async function policyFor(opts: BackendOptions, path: string, kind: BackendKind): Promise<InlineIoPolicy> {
  return new InlineIoPolicy(await effectiveIoMode(path, kind, opts.io ?? 'auto'), opts.inlineIo)
}

export async function openBackend(opts: BackendOptions): Promise<FileBackend> {
  const { path } = opts
  const readOnly = opts.readOnly ?? false
  checkSize(path, opts.sizeBytes)

  let st: Stats | undefined
  try {
    st = await stat(path)
  } catch (e) {
    if (errno(e) !== 'ENOENT') throw e
  }

  if (st === undefined) {
    if (readOnly) throw new StorageError('MISSING_READ_ONLY', path, 'does not exist and the LU is read-only')
    if (opts.sizeBytes === undefined) throw new StorageError('MISSING_SIZE', path, 'does not exist and no size is configured')
    let fh: FileHandle
    try {
      fh = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600)
    } catch (e) {
      if (errno(e) === 'EEXIST') return openBackend(opts) // created meanwhile: open what is there
      throw e
    }
    try {
      await fh.truncate(opts.sizeBytes)
    } catch (e) {
      await fh.close()
      throw e
    }
    return new FileBackend(fh, path, 'file', opts.sizeBytes, false, await policyFor(opts, path, 'file'))
  }

  if (st.isBlockDevice()) {
    const flags = (readOnly ? constants.O_RDONLY : constants.O_RDWR) | constants.O_EXCL
    let fh: FileHandle
    try {
      fh = await open(path, flags)
    } catch (e) {
      if (errno(e) === 'EBUSY') throw new StorageError('DEVICE_BUSY', path, 'block device is in use (mounted?)', { cause: e })
      throw e
    }
    try {
      const bst = await fh.stat({ bigint: true })
      const deviceSize = await blockDeviceSize(bst.rdev, path, opts.sysfsRoot)
      let size = deviceSize
      if (opts.sizeBytes !== undefined) {
        if (opts.sizeBytes > deviceSize) {
          throw new StorageError(
            'DEVICE_TOO_SMALL',
            path,
            `configured size ${opts.sizeBytes} exceeds the block device size ${deviceSize}`,
          )
        }
        size = opts.sizeBytes
      }
      if (size === 0) throw new StorageError('INVALID_SIZE', path, 'block device has size 0')
      return new FileBackend(fh, path, 'block', size, readOnly, await policyFor(opts, path, 'block'), opts.sysfsRoot)
    } catch (e) {
      await fh.close()
      throw e
    }
  }

  if (!st.isFile()) throw new StorageError('UNSUPPORTED_TYPE', path, 'is neither a regular file nor a block device')

  const fh = await open(path, readOnly ? constants.O_RDONLY : constants.O_RDWR)
  try {
    const current = (await fh.stat()).size
    let size = current
    if (opts.sizeBytes !== undefined) {
      if (current > opts.sizeBytes) {
        throw new StorageError(
          'SHRINK_REFUSED',
          path,
          `file is ${current} bytes, larger than the configured ${opts.sizeBytes}; refusing to shrink it`,
        )
      }
      if (current < opts.sizeBytes) {
        if (readOnly) {
          throw new StorageError(
            'GROW_READ_ONLY',
            path,
            `file is ${current} bytes, smaller than the configured ${opts.sizeBytes}, and the LU is read-only`,
          )
        }
        await fh.truncate(opts.sizeBytes)
      }
      size = opts.sizeBytes
    }
    if (size === 0) throw new StorageError('INVALID_SIZE', path, 'file is empty and no size is configured')
    return new FileBackend(fh, path, 'file', size, readOnly, await policyFor(opts, path, 'file'))
  } catch (e) {
    await fh.close()
    throw e
  }
}

/** Read buffers for every backend of the process (short-lived: they leave as Data-In). */
const readBuffers = new BufferSlab()

export class FileBackend implements BlockDevice {
  private closed = false
  private syncing: Promise<void> | undefined
  private nextSync: Promise<void> | undefined

  private size: number

  constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    readonly kind: BackendKind,
    sizeBytes: number,
    readonly readOnly: boolean,
    private readonly io: InlineIoPolicy = new InlineIoPolicy('threadpool'),
    private readonly sysfsRoot = '/sys',
  ) {
    this.size = sizeBytes
  }

  /** Size of the logical unit in bytes; grows with grow(). */
  get sizeBytes(): number {
    return this.size
  }

  /**
   * Grow the unit to `sizeBytes` (a LUN grown in the config): a file is extended sparsely, a
   * block device must already be that large. Shrinking is refused, as at open.
   */
  async grow(sizeBytes: number): Promise<void> {
    checkSize(this.path, sizeBytes)
    if (this.closed) throw new StorageError('CLOSED', this.path, 'backend is closed')
    if (sizeBytes < this.size) {
      throw new StorageError('SHRINK_REFUSED', this.path, `size ${sizeBytes} is smaller than the current ${this.size}`)
    }
    if (sizeBytes === this.size) return
    if (this.readOnly) throw new StorageError('GROW_READ_ONLY', this.path, 'the LU is read-only')
    if (this.kind === 'block') {
      const rdev = (await this.fh.stat({ bigint: true })).rdev
      const deviceSize = await blockDeviceSize(rdev, this.path, this.sysfsRoot)
      if (sizeBytes > deviceSize) {
        throw new StorageError('DEVICE_TOO_SMALL', this.path, `size ${sizeBytes} exceeds the block device size ${deviceSize}`)
      }
    } else {
      await this.fh.truncate(sizeBytes)
    }
    this.size = sizeBytes
  }

  private check(offset: number, length: number): void {
    if (this.closed) throw new StorageError('CLOSED', this.path, 'backend is closed')
    const bad = outOfRange(this.path, offset, length, this.sizeBytes)
    if (bad) throw bad
  }

  /** Where this backend's I/O has been running. */
  ioStats(): InlineIoStats {
    return this.io.stats()
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.check(offset, length)
    const buf = readBuffers.take(length)
    let done = 0
    if (this.io.inline(length)) {
      const t0 = this.io.clock()
      while (done < length) {
        const n = readSync(this.fh.fd, buf, done, length - done, offset + done)
        if (n === 0) {
          buf.fill(0, done)
          break
        }
        done += n
      }
      this.io.record(length, this.io.clock() - t0)
      return buf
    }
    while (done < length) {
      const { bytesRead } = await this.fh.read(buf, done, length - done, offset + done)
      if (bytesRead === 0) {
        buf.fill(0, done) // the file ended early (truncated behind our back): reads as zeros
        break
      }
      done += bytesRead
    }
    return buf
  }

  async write(offset: number, data: Buffer, opts: { fua: boolean }): Promise<void> {
    this.check(offset, data.length)
    if (this.readOnly) throw new StorageError('READ_ONLY', this.path, 'backend is read-only')
    let done = 0
    if (this.io.inline(data.length)) {
      const t0 = this.io.clock()
      while (done < data.length) done += writeSync(this.fh.fd, data, done, data.length - done, offset + done)
      this.io.record(data.length, this.io.clock() - t0)
    }
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, offset + done)
      done += bytesWritten
    }
    if (opts.fua) await this.sync()
  }

  flush(): Promise<void> {
    if (this.closed) return Promise.reject(new StorageError('CLOSED', this.path, 'backend is closed'))
    return this.sync()
  }

  /** fdatasync, batched: callers arriving while one runs share the next one. */
  private sync(): Promise<void> {
    if (this.syncing === undefined) {
      this.syncing = this.fh.datasync().finally(() => {
        this.syncing = undefined
      })
      return this.syncing
    }
    if (this.nextSync === undefined) {
      this.nextSync = this.syncing
        .catch(() => undefined)
        .then(() => {
          this.nextSync = undefined
          return this.sync()
        })
    }
    return this.nextSync
  }

  /** false once punching failed here (file system without hole support): zeros are written. */
  private punching = true

  /**
   * Deallocate ranges: afterwards they read as zeros, and on sparse files the space of every
   * aligned stretch of at least PUNCH_MIN_BYTES goes back to the file system (hole punched).
   * Short or unaligned parts are overwritten with zeros. Resolves when done (not necessarily
   * durable: a later flush makes it so, as for writes).
   */
  async discard(ranges: readonly ByteRange[]): Promise<void> {
    for (const r of ranges) this.check(r.offset, r.length)
    if (this.readOnly) throw new StorageError('READ_ONLY', this.path, 'backend is read-only')
    const punch: ByteRange[] = []
    const zero: ByteRange[] = []
    for (const r of ranges) {
      if (r.length === 0) continue
      const end = r.offset + r.length
      const a0 = Math.ceil(r.offset / PUNCH_ALIGN) * PUNCH_ALIGN
      const a1 = Math.floor(end / PUNCH_ALIGN) * PUNCH_ALIGN
      if (this.punching && a1 - a0 >= PUNCH_MIN_BYTES) {
        if (a0 > r.offset) zero.push({ offset: r.offset, length: a0 - r.offset })
        punch.push({ offset: a0, length: a1 - a0 })
        if (end > a1) zero.push({ offset: a1, length: end - a1 })
      } else {
        zero.push(r)
      }
    }
    if (punch.length > 0) {
      try {
        await punchHoles(this.path, punch)
      } catch {
        this.punching = false
        zero.push(...punch)
      }
    }
    for (const z of zero) await this.writeZeros(z.offset, z.length)
  }

  private async writeZeros(offset: number, length: number): Promise<void> {
    let done = 0
    while (done < length) {
      const n = Math.min(ZEROS.length, length - done)
      const { bytesWritten } = await this.fh.write(ZEROS, 0, n, offset + done)
      done += bytesWritten
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.fh.close()
  }
}
