// The APTPL file: persistent reservation state kept beside the LUN so that it survives a
// restart of the controller when an initiator asked for it (REGISTER with APTPL=1, SPC-4
// §5.14.5). Written atomically: a temporary file is written and fsynced, renamed over the old
// one, and the directory fsynced, so a crash leaves either the old or the new state. When APTPL
// is off the file is removed: the state must then not survive a power loss.
//
// Only the persistent reservation part of the snapshot is kept; the SPC-2 (RESERVE/RELEASE)
// reservation ends with the I_T nexus and never survives a restart.

import { constants } from 'node:fs'
import { open, readFile, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { ReservationStore } from '../scsi/reservation-store.js'
import type { ReservationSnapshot } from '../scsi/reservations.js'

function errno(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined
}

/** Where the APTPL file of a LUN stored at `lunPath` goes: `<lunPath>.pr.json`. */
export function reservationFileFor(lunPath: string): string {
  return `${lunPath}.pr.json`
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY)
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

export class FileReservationStore implements ReservationStore {
  /** What the file holds now ('' = no file), to skip rewriting identical state. */
  private written: string | undefined

  constructor(readonly path: string) {}

  async load(): Promise<ReservationSnapshot | undefined> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (e) {
      if (errno(e) === 'ENOENT') {
        this.written = ''
        return undefined
      }
      throw e
    }
    const parsed = JSON.parse(text) as ReservationSnapshot
    this.written = text
    return { ...parsed, legacyHolder: null }
  }

  async save(snapshot: ReservationSnapshot): Promise<void> {
    if (!snapshot.aptpl) {
      if (this.written === '') return
      try {
        await unlink(this.path)
        await fsyncDir(dirname(this.path))
      } catch (e) {
        if (errno(e) !== 'ENOENT') throw e
      }
      this.written = ''
      return
    }
    const text = `${JSON.stringify({ ...snapshot, legacyHolder: null }, null, 2)}\n`
    if (text === this.written) return
    const tmp = join(dirname(this.path), `.${basename(this.path)}.tmp`)
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600)
    try {
      await fh.writeFile(text, 'utf8')
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, this.path)
    await fsyncDir(dirname(this.path))
    this.written = text
  }
}
