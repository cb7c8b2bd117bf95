// Where the lease area lives. The lease logic only needs positioned reads and writes and a way
// to make a write durable; `LeaseStore` is that, so the logic runs on memory in unit tests and
// on a file or block device in a controller.
//
// Visibility: both controllers must see each other's writes when they read. That holds for a
// file both open on one machine, a cluster or network filesystem with coherent reads (NFS with
// attribute caching off, GFS2, OCFS2), or a shared block device read without a page cache. The
// file store reads with plain pread; use it only where that is coherent.

import { constants } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { LEASE_AREA_SIZE } from './lease-record.js'

export interface LeaseStore {
  /** Read `length` bytes at `offset`; bytes past the end of the store read as zero. */
  read(offset: number, length: number): Promise<Buffer>
  /** Write all of `data` at `offset` (not necessarily durable until `sync`). */
  write(offset: number, data: Buffer): Promise<void>
  /** Make every completed write durable (fdatasync). */
  sync(): Promise<void>
  close(): Promise<void>
}

/** The lease file beside a LUN's backing file: `<lun>.lease`. */
export function leasePathFor(lunPath: string): string {
  return `${lunPath}.lease`
}

export class LeaseStoreError extends Error {
  readonly code: 'OPEN_FAILED' | 'IO' | 'CLOSED'
  readonly path: string
  constructor(code: LeaseStoreError['code'], path: string, message: string, options?: { cause?: unknown }) {
    super(`${path}: ${message}`, options)
    this.name = 'LeaseStoreError'
    this.code = code
    this.path = path
  }
}

/** An in-memory store (tests, single-process simulations). */
export class MemoryLeaseStore implements LeaseStore {
  readonly bytes: Buffer
  syncs = 0
  writes = 0

  constructor(size = LEASE_AREA_SIZE) {
    this.bytes = Buffer.alloc(size)
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length)
    if (offset < this.bytes.length) this.bytes.copy(out, 0, offset, Math.min(this.bytes.length, offset + length))
    return out
  }

  async write(offset: number, data: Buffer): Promise<void> {
    if (offset + data.length > this.bytes.length) throw new LeaseStoreError('IO', '<memory>', `write past the end (${offset}+${data.length})`)
    data.copy(this.bytes, offset)
    this.writes++
  }

  async sync(): Promise<void> {
    this.syncs++
  }

  async close(): Promise<void> {}
}

function errno(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined
}

/**
 * The lease area in a file (or block device): positioned reads and writes and fdatasync.
 * `open` creates a missing file (exclusively, so two controllers starting together agree on one
 * file) sized to the lease area and filled with zeros, and syncs it and its directory.
 */
export class FileLeaseStore implements LeaseStore {
  readonly path: string
  private fh: FileHandle | null

  private constructor(path: string, fh: FileHandle) {
    this.path = path
    this.fh = fh
  }

  static async open(path: string): Promise<FileLeaseStore> {
    let fh: FileHandle
    try {
      fh = await open(path, constants.O_RDWR)
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw new LeaseStoreError('OPEN_FAILED', path, `cannot open: ${String(e)}`, { cause: e })
      try {
        fh = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600)
        await fh.truncate(LEASE_AREA_SIZE)
        await fh.sync()
        await syncDir(dirname(path))
      } catch (e2) {
        if (errno(e2) !== 'EEXIST') throw new LeaseStoreError('OPEN_FAILED', path, `cannot create: ${String(e2)}`, { cause: e2 })
        // The partner created it a moment ago.
        try {
          fh = await open(path, constants.O_RDWR)
        } catch (e3) {
          throw new LeaseStoreError('OPEN_FAILED', path, `cannot open: ${String(e3)}`, { cause: e3 })
        }
      }
    }
    return new FileLeaseStore(path, fh)
  }

  private handle(): FileHandle {
    if (!this.fh) throw new LeaseStoreError('CLOSED', this.path, 'lease store is closed')
    return this.fh
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const fh = this.handle()
    const out = Buffer.alloc(length)
    let done = 0
    try {
      while (done < length) {
        const { bytesRead } = await fh.read(out, done, length - done, offset + done)
        if (bytesRead === 0) break // past the end: the rest stays zero
        done += bytesRead
      }
    } catch (e) {
      throw new LeaseStoreError('IO', this.path, `read failed: ${String(e)}`, { cause: e })
    }
    return out
  }

  async write(offset: number, data: Buffer): Promise<void> {
    const fh = this.handle()
    let done = 0
    try {
      while (done < data.length) {
        const { bytesWritten } = await fh.write(data, done, data.length - done, offset + done)
        if (bytesWritten === 0) throw new Error('short write')
        done += bytesWritten
      }
    } catch (e) {
      throw new LeaseStoreError('IO', this.path, `write failed: ${String(e)}`, { cause: e })
    }
  }

  async sync(): Promise<void> {
    try {
      await this.handle().datasync()
    } catch (e) {
      if (e instanceof LeaseStoreError) throw e
      throw new LeaseStoreError('IO', this.path, `fdatasync failed: ${String(e)}`, { cause: e })
    }
  }

  async close(): Promise<void> {
    const fh = this.fh
    this.fh = null
    if (fh) await fh.close()
  }
}

async function syncDir(dir: string): Promise<void> {
  let d: FileHandle | null = null
  try {
    d = await open(dir, constants.O_RDONLY)
    await d.sync()
  } catch {
    // Some filesystems refuse fsync on a directory; the file itself is synced.
  } finally {
    await d?.close()
  }
}
