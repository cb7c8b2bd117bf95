// FileBackend.discard: deallocated ranges read as zeros; aligned stretches of a sparse file give
// their space back (holes punched with fallocate(1)); short and unaligned parts are zeroed.
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { PUNCH_MIN_BYTES, openBackend, type FileBackend } from '../../../src/storage/index.js'

const MiB = 1024 * 1024
let dir: string
let b: FileBackend | undefined

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'iscsi-ha-discard-'))
})
afterEach(async () => {
  await b?.close()
  b = undefined
  await rm(dir, { recursive: true, force: true })
})

describe('FileBackend.discard', () => {
  it('punches holes: the file uses less space afterwards and the range reads as zeros', async () => {
    const path = join(dir, 'lun.img')
    b = await openBackend({ path, sizeBytes: 8 * MiB })
    await b.write(0, Buffer.alloc(8 * MiB, 0xab), { fua: true })
    const before = (await stat(path)).blocks
    await b.discard([{ offset: MiB, length: 4 * MiB }])
    await b.flush()
    const after = (await stat(path)).blocks
    expect(after).toBeLessThan(before)
    expect((await b.read(MiB, 4 * MiB)).equals(Buffer.alloc(4 * MiB))).toBe(true)
    expect((await b.read(0, MiB)).every((x) => x === 0xab)).toBe(true)
    expect((await b.read(5 * MiB, 3 * MiB)).every((x) => x === 0xab)).toBe(true)
  })

  it('unaligned and short ranges, several at once: exactly those bytes become zero', async () => {
    const path = join(dir, 'lun.img')
    b = await openBackend({ path, sizeBytes: 4 * MiB })
    await b.write(0, Buffer.alloc(4 * MiB, 0x5a), { fua: false })
    const ranges = [
      { offset: 512, length: 1024 }, // short
      { offset: 4096 + 512, length: PUNCH_MIN_BYTES + 4096 }, // unaligned both ends, punched inside
      { offset: 2 * MiB, length: MiB }, // aligned
    ]
    await b.discard(ranges)
    const all = await b.read(0, 4 * MiB)
    for (let i = 0; i < all.length; i += 512) {
      const inRange = ranges.some((r) => i >= r.offset && i < r.offset + r.length)
      expect(all[i], `byte ${i}`).toBe(inRange ? 0 : 0x5a)
    }
  })

  it('refuses ranges outside the device and read-only backends', async () => {
    const path = join(dir, 'lun.img')
    b = await openBackend({ path, sizeBytes: MiB })
    await expect(b.discard([{ offset: MiB - 512, length: 1024 }])).rejects.toThrow(/outside/)
    await b.close()
    b = await openBackend({ path, readOnly: true })
    await expect(b.discard([{ offset: 0, length: 512 }])).rejects.toThrow(/read-only/)
  })
})

describe('FileBackend.grow', () => {
  it('extends a file sparsely; refuses shrinking', async () => {
    const path = join(dir, 'lun.img')
    b = await openBackend({ path, sizeBytes: MiB })
    await b.grow(4 * MiB)
    expect(b.sizeBytes).toBe(4 * MiB)
    expect((await stat(path)).size).toBe(4 * MiB)
    expect((await b.read(3 * MiB, 512)).equals(Buffer.alloc(512))).toBe(true)
    await expect(b.grow(MiB)).rejects.toThrow(/smaller/)
  })
})
