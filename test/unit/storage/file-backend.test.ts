import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FileBackend, StorageError, blockDeviceSize, openBackend, splitDevice } from '../../../src/storage/index.js'

const MiB = 1024 * 1024

let dir: string
const opened: FileBackend[] = []

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'iscsi-ha-storage-'))
})

afterEach(async () => {
  for (const b of opened.splice(0)) await b.close()
  await rm(dir, { recursive: true, force: true })
})

async function open(opts: Parameters<typeof openBackend>[0]): Promise<FileBackend> {
  const b = await openBackend(opts)
  opened.push(b)
  return b
}

async function expectStorageError(p: Promise<unknown>, code: string, path?: string): Promise<StorageError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  )
  expect(e).toBeInstanceOf(StorageError)
  const se = e as StorageError
  expect(se.code).toBe(code)
  if (path !== undefined) {
    expect(se.path).toBe(path)
    expect(se.message).toContain(path)
  }
  return se
}

describe('regular files', () => {
  it('creates a missing file sparse at the configured size', async () => {
    const path = join(dir, 'lun0.img')
    const b = await open({ path, sizeBytes: 256 * MiB })
    expect(b.kind).toBe('file')
    expect(b.path).toBe(path)
    expect(b.sizeBytes).toBe(256 * MiB)
    const st = await stat(path)
    expect(st.size).toBe(256 * MiB)
    expect(st.blocks * 512).toBeLessThan(MiB) // sparse
    expect(st.mode & 0o777).toBe(0o600)
  })

  it('refuses to create without a size, or read-only', async () => {
    const path = join(dir, 'missing.img')
    await expectStorageError(openBackend({ path }), 'MISSING_SIZE', path)
    await expectStorageError(openBackend({ path, sizeBytes: MiB, readOnly: true }), 'MISSING_READ_ONLY', path)
  })

  it('uses the file size when no size is configured', async () => {
    const path = join(dir, 'existing.img')
    await writeFile(path, Buffer.alloc(8192, 1))
    const b = await open({ path })
    expect(b.sizeBytes).toBe(8192)
  })

  it('grows a smaller file to the configured size, sparsely, keeping its data', async () => {
    const path = join(dir, 'grow.img')
    await writeFile(path, Buffer.alloc(4096, 0x5a))
    const b = await open({ path, sizeBytes: 64 * MiB })
    expect(b.sizeBytes).toBe(64 * MiB)
    const st = await stat(path)
    expect(st.size).toBe(64 * MiB)
    expect(st.blocks * 512).toBeLessThan(MiB)
    expect((await b.read(0, 4096)).every((x) => x === 0x5a)).toBe(true)
    expect((await b.read(4096, 4096)).every((x) => x === 0)).toBe(true)
  })

  it('refuses to shrink a larger file, naming the path', async () => {
    const path = join(dir, 'big.img')
    await writeFile(path, Buffer.alloc(8192))
    const e = await expectStorageError(openBackend({ path, sizeBytes: 4096 }), 'SHRINK_REFUSED', path)
    expect(e.message).toMatch(/8192.*4096/)
    expect((await stat(path)).size).toBe(8192)
  })

  it('refuses to grow a read-only file', async () => {
    const path = join(dir, 'ro.img')
    await writeFile(path, Buffer.alloc(4096))
    await expectStorageError(openBackend({ path, sizeBytes: 8192, readOnly: true }), 'GROW_READ_ONLY', path)
  })

  it('rejects invalid sizes, empty files and non-files', async () => {
    const path = join(dir, 'x.img')
    await expectStorageError(openBackend({ path, sizeBytes: 0 }), 'INVALID_SIZE')
    await expectStorageError(openBackend({ path, sizeBytes: 1.5 }), 'INVALID_SIZE')
    await expectStorageError(openBackend({ path, sizeBytes: -1 }), 'INVALID_SIZE')
    await writeFile(path, '')
    await expectStorageError(openBackend({ path }), 'INVALID_SIZE', path)
    await mkdir(join(dir, 'd'))
    await expectStorageError(openBackend({ path: join(dir, 'd') }), 'UNSUPPORTED_TYPE')
    await expectStorageError(openBackend({ path: '/dev/null' }), 'UNSUPPORTED_TYPE')
  })

  it('reads what was written; unwritten space reads as zeros', async () => {
    const b = await open({ path: join(dir, 'rw.img'), sizeBytes: 16 * MiB })
    const data = Buffer.alloc(3 * 4096)
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff
    await b.write(5 * MiB + 512, data, { fua: false })
    await b.write(16 * MiB - 512, Buffer.alloc(512, 0xee), { fua: true })
    expect((await b.read(5 * MiB + 512, data.length)).equals(data)).toBe(true)
    expect((await b.read(16 * MiB - 512, 512)).every((x) => x === 0xee)).toBe(true)
    expect((await b.read(0, 4096)).every((x) => x === 0)).toBe(true)
    expect((await b.read(0, 0)).length).toBe(0)
    await b.flush()
  })

  it.each(['inline', 'threadpool', 'auto'] as const)('io %s: the same bytes either way, counted where they ran', async (io) => {
    const b = await open({ path: join(dir, `io-${io}.img`), sizeBytes: 4 * MiB, io })
    const big = Buffer.alloc(512 * 1024)
    for (let i = 0; i < big.length; i++) big[i] = (i * 13) & 0xff
    await b.write(4096, Buffer.alloc(4096, 0x5a), { fua: false })
    await b.write(MiB, big, { fua: true })
    expect((await b.read(4096, 4096)).every((x) => x === 0x5a)).toBe(true)
    expect((await b.read(MiB, big.length)).equals(big)).toBe(true)
    const s = b.ioStats()
    // The temp dir is on a local file system, so 'auto' stays 'auto'; the 512 KiB request is
    // over its inline limit.
    expect(s.mode).toBe(io)
    if (io === 'inline') expect(s).toMatchObject({ inlineOps: 4, threadPoolOps: 0 })
    if (io === 'threadpool') expect(s).toMatchObject({ inlineOps: 0, threadPoolOps: 4 })
    if (io === 'auto') expect(s).toMatchObject({ inlineOps: 2, threadPoolOps: 2 })
  })

  it('data survives close and reopen', async () => {
    const path = join(dir, 'persist.img')
    const b = await openBackend({ path, sizeBytes: MiB })
    await b.write(4096, Buffer.from('hello block'), { fua: true })
    await b.close()
    const c = await open({ path, sizeBytes: MiB })
    expect((await c.read(4096, 11)).toString()).toBe('hello block')
    expect((await readFile(path)).subarray(4096, 4107).toString()).toBe('hello block')
  })

  it('reads past an end of file that moved underneath as zeros', async () => {
    const path = join(dir, 'shrunk.img')
    const b = await open({ path, sizeBytes: 8192 })
    await b.write(0, Buffer.alloc(8192, 3), { fua: false })
    await truncate(path, 4096)
    const r = await b.read(2048, 4096)
    expect(r.subarray(0, 2048).every((x) => x === 3)).toBe(true)
    expect(r.subarray(2048).every((x) => x === 0)).toBe(true)
  })

  it('I/O outside the device, on a read-only backend or after close is a StorageError', async () => {
    const path = join(dir, 'guard.img')
    const b = await openBackend({ path, sizeBytes: 8192 })
    await expectStorageError(b.read(8192, 1), 'OUT_OF_RANGE', path)
    await expectStorageError(b.read(-1, 1), 'OUT_OF_RANGE')
    await expectStorageError(b.read(0.5, 1), 'OUT_OF_RANGE')
    await expectStorageError(b.write(8000, Buffer.alloc(512), { fua: false }), 'OUT_OF_RANGE')
    await b.close()
    await b.close() // idempotent
    await expectStorageError(b.read(0, 1), 'CLOSED')
    await expectStorageError(b.flush(), 'CLOSED')
    const ro = await open({ path, readOnly: true })
    expect(ro.readOnly).toBe(true)
    await expectStorageError(ro.write(0, Buffer.alloc(1), { fua: false }), 'READ_ONLY', path)
    expect((await ro.read(0, 10)).length).toBe(10)
  })
})

describe('fdatasync batching', () => {
  function fakeHandle() {
    const pending: (() => void)[] = []
    let calls = 0
    const fh = {
      datasync: () => {
        calls++
        return new Promise<void>((resolve) => pending.push(resolve))
      },
      close: () => Promise.resolve(),
    }
    return {
      backend: new FileBackend(fh as unknown as FileHandle, '/fake', 'file', 4096, false),
      calls: () => calls,
      finishOne: () => pending.shift()?.(),
    }
  }

  const tick = () => new Promise((r) => setImmediate(r))

  it('requests arriving during a sync share the next one', async () => {
    const h = fakeHandle()
    let done = 0
    const p1 = h.backend.flush().then(() => done++)
    const p2 = h.backend.flush().then(() => done++)
    const p3 = h.backend.flush().then(() => done++)
    expect(h.calls()).toBe(1)
    h.finishOne()
    await tick()
    expect(done).toBe(1) // p1 only: p2 and p3 must wait for a sync that started after them
    expect(h.calls()).toBe(2)
    h.finishOne()
    await Promise.all([p1, p2, p3])
    expect(done).toBe(3)
    expect(h.calls()).toBe(2)
  })

  it('a failed sync rejects its waiters but not the next batch', async () => {
    const fh = {
      n: 0,
      datasync(): Promise<void> {
        this.n++
        return this.n === 1 ? Promise.reject(new Error('EIO')) : Promise.resolve()
      },
      close: () => Promise.resolve(),
    }
    const b = new FileBackend(fh as unknown as FileHandle, '/fake', 'file', 4096, false)
    const p1 = b.flush()
    const p2 = b.flush()
    await expect(p1).rejects.toThrow('EIO')
    await expect(p2).resolves.toBeUndefined()
  })
})

describe('block devices', () => {
  it('splitDevice decodes Linux dev_t (old and large numbers)', () => {
    const makedev = (major: number, minor: number): bigint =>
      ((BigInt(major) & 0xfffff000n) << 32n) |
      ((BigInt(major) & 0xfffn) << 8n) |
      ((BigInt(minor) & 0xffffff00n) << 12n) |
      (BigInt(minor) & 0xffn)
    expect(splitDevice(65024n)).toEqual({ major: 254, minor: 0 })
    for (const [ma, mi] of [
      [7, 3],
      [259, 300],
      [4095, 1048575],
      [5000, 70000],
    ]) {
      expect(splitDevice(makedev(ma, mi))).toEqual({ major: ma, minor: mi })
    }
  })

  it('blockDeviceSize reads sectors × 512 from sysfs', async () => {
    await mkdir(join(dir, 'dev/block/7:3'), { recursive: true })
    await writeFile(join(dir, 'dev/block/7:3/size'), '16384\n')
    expect(await blockDeviceSize((7n << 8n) | 3n, '/dev/loop3', dir)).toBe(8 * MiB)
    await expectStorageError(blockDeviceSize((7n << 8n) | 4n, '/dev/loop4', dir), 'SIZE_UNKNOWN', '/dev/loop4')
    await writeFile(join(dir, 'dev/block/7:3/size'), 'junk')
    await expectStorageError(blockDeviceSize((7n << 8n) | 3n, '/dev/loop3', dir), 'SIZE_UNKNOWN')
  })
})

/** A loop device over a sparse file, when this machine lets us make one (root, losetup). */
function tryLoop(image: string): string | undefined {
  try {
    return execFileSync('losetup', ['--find', '--show', image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return undefined
  }
}

describe('block device backend (loop device)', () => {
  let loopDir: string | undefined
  let loop: string | undefined

  afterAll(async () => {
    if (loop) execFileSync('losetup', ['-d', loop])
    if (loopDir) await rm(loopDir, { recursive: true, force: true })
  })

  it('opens a block device with its size from sysfs, exclusively', async (ctx) => {
    loopDir = await mkdtemp(join(tmpdir(), 'iscsi-ha-loop-'))
    const image = join(loopDir, 'loop.img')
    await writeFile(image, '')
    await truncate(image, 8 * MiB)
    loop = tryLoop(image)
    if (!loop) ctx.skip()
    const b = await openBackend({ path: loop! })
    try {
      expect(b.kind).toBe('block')
      expect(b.sizeBytes).toBe(8 * MiB)
      await b.write(MiB, Buffer.alloc(4096, 0x42), { fua: true })
      expect((await b.read(MiB, 4096)).every((x) => x === 0x42)).toBe(true)
      await expectStorageError(openBackend({ path: loop! }), 'DEVICE_BUSY', loop)
    } finally {
      await b.close()
    }
    const part = await openBackend({ path: loop!, sizeBytes: 4 * MiB })
    expect(part.sizeBytes).toBe(4 * MiB)
    await part.close()
    await expectStorageError(openBackend({ path: loop!, sizeBytes: 16 * MiB }), 'DEVICE_TOO_SMALL', loop)
    const ro = await openBackend({ path: loop!, readOnly: true })
    await expectStorageError(ro.write(0, Buffer.alloc(512), { fua: false }), 'READ_ONLY')
    await ro.close()
  })
})
