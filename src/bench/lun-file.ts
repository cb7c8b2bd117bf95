// LUN files for comparisons: every target gets a byte-identical copy, filled with non-zero data
// (a thin target reports blocks of zeros as deallocated, and QEMU treats those differently).
import { randomFillSync } from 'node:crypto'
import { copyFile, open } from 'node:fs/promises'

export async function writeFilledFile(path: string, bytes: number): Promise<void> {
  const chunk = Buffer.alloc(4 * 1024 * 1024)
  const f = await open(path, 'w')
  try {
    for (let at = 0; at < bytes; at += chunk.length) {
      randomFillSync(chunk)
      await f.write(chunk, 0, Math.min(chunk.length, bytes - at), at)
    }
    await f.sync()
  } finally {
    await f.close()
  }
}

export async function copyLunFile(from: string, to: string): Promise<void> {
  await copyFile(from, to)
}
