// The engine over the real file backend, on a temporary sparse file.

import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openBackend, type FileBackend } from '../../../src/storage/index.js'
import { cdb, clearUa, expectGood, expectSense, makeLu, pattern, run, rw10, rw16, type Fixture } from './util.js'

const MiB = 1024 * 1024
const SIZE = 512 * MiB

let dir: string
let backend: FileBackend
let f: Fixture

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'iscsi-ha-lu-'))
  backend = await openBackend({ path: join(dir, 'disk.img'), sizeBytes: SIZE })
  f = makeLu({ device: backend })
  await clearUa(f.lu)
})

afterEach(async () => {
  await backend.close()
  await rm(dir, { recursive: true, force: true })
})

describe('DiskLogicalUnit on a sparse file', () => {
  it('reports the file size as capacity', async () => {
    const r = await run(f.lu, cdb(10, 0x25))
    expectGood(r)
    expect(r.dataIn!.readUInt32BE(0)).toBe(SIZE / 512 - 1)
  })

  it('writes and reads back across the whole address space, staying sparse', async () => {
    const lbas = [0, 1, 4095, SIZE / 512 / 2, SIZE / 512 - 8]
    for (const [i, lba] of lbas.entries()) {
      const data = pattern(8 * 512, i + 1)
      const n = Math.min(8, SIZE / 512 - lba)
      expectGood(await run(f.lu, rw16(0x8a, lba, n, 0x08), { dataOut: data.subarray(0, n * 512) }))
      const r = await run(f.lu, rw10(0x28, lba, n))
      expectGood(r)
      expect(r.dataIn!.equals(data.subarray(0, n * 512))).toBe(true)
    }
    expectGood(await run(f.lu, cdb(10, 0x35)))
    const st = await stat(join(dir, 'disk.img'))
    expect(st.size).toBe(SIZE)
    expect(st.blocks * 512).toBeLessThan(4 * MiB)
  })

  it('a never-written range reads as zeros', async () => {
    const r = await run(f.lu, rw10(0x28, 100_000, 128))
    expectGood(r)
    expect(r.dataIn!.every((b) => b === 0)).toBe(true)
  })

  it('VERIFY with BYTCHK compares against the file', async () => {
    const data = pattern(4096, 9)
    expectGood(await run(f.lu, rw10(0x2a, 10, 8), { dataOut: data }))
    expectGood(await run(f.lu, rw10(0x2f, 10, 8, 0x02), { dataOut: data }))
    const bad = Buffer.from(data)
    bad[3000] ^= 1
    expectSense(await run(f.lu, rw10(0x2f, 10, 8, 0x02), { dataOut: bad }), 0xe, 0x1d, 0, { information: 3000 })
  })

  it('concurrent overlapping writes land in execute order', async () => {
    const ps: Promise<unknown>[] = []
    for (let i = 1; i <= 20; i++) ps.push(run(f.lu, rw10(0x2a, 0, 8), { dataOut: Buffer.alloc(4096, i) }))
    await Promise.all(ps)
    const r = await run(f.lu, rw10(0x28, 0, 8))
    expect(r.dataIn!.every((b) => b === 20)).toBe(true)
  })
})
