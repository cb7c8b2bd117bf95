// Completing journal copies onto LUN storage: `iscsi-ha replay`, and the secondary's takeover
// (METHOD.md, "Failover" step 4) before it serves any command.

import type { JournalEntry, LunKey } from '../ha/types.js'
import { canDiscard } from '../scsi/provisioning.js'
import type { BlockDevice } from '../scsi/types.js'
import { entryLength } from './entry.js'
import { JournalError } from './errors.js'
import type { Journal } from './journal.js'

export interface ApplyResult {
  replayed: number
  /** Data bytes of the writes replayed. */
  bytes: number
  /** Bytes the replayed discards deallocated. */
  discardedBytes: number
  /** Devices written (each flushed once). */
  devices: number
}

function keyName(k: LunKey): string {
  return `${k.target} LUN ${k.lun}`
}

const ZEROS = Buffer.alloc(1024 * 1024)

/**
 * Complete one copy on its device: write a write's data; deallocate a discard's range (the
 * device's discard() punches holes where it can), or write zeros on a device without discard().
 */
export async function applyEntry(dev: BlockDevice, e: JournalEntry): Promise<void> {
  if (e.kind !== 'discard') return dev.write(e.offset, e.data, { fua: false })
  if (canDiscard(dev)) return dev.discard([{ offset: e.offset, length: e.length }])
  for (let done = 0; done < e.length; done += ZEROS.length) {
    await dev.write(e.offset + done, ZEROS.subarray(0, Math.min(ZEROS.length, e.length - done)), { fua: false })
  }
}

/**
 * Replay every copy in `journal` onto its LUN's storage in (epoch, seq) order (a discard
 * deallocates its range: holes on a sparse file, see applyEntry), flush each touched
 * device once, and only then remove the copies from the journal. Every LUN is resolved before
 * anything is written: a copy without a backend fails the replay with JOURNAL_NO_BACKEND and
 * nothing is applied (its data would otherwise be dropped silently).
 */
export async function applyToBackends(
  journal: Journal,
  resolve: (key: LunKey) => BlockDevice | undefined,
): Promise<ApplyResult> {
  const devices = new Map<string, BlockDevice>()
  const nameOf = (k: LunKey): string => `${k.lun}\u0000${k.target}`
  for (const e of journal.pending()) {
    const n = nameOf(e.key)
    let dev = devices.get(n)
    if (!dev) {
      dev = resolve(e.key)
      if (!dev) {
        throw new JournalError('JOURNAL_NO_BACKEND', `no storage for ${keyName(e.key)} (copy ${e.epoch}/${e.seq}): nothing replayed`, {
          epoch: e.epoch,
          seq: e.seq,
        })
      }
      devices.set(n, dev)
    }
    if (e.offset + entryLength(e) > dev.sizeBytes) {
      throw new JournalError(
        'JOURNAL_OUT_OF_RANGE',
        `copy ${e.epoch}/${e.seq} at ${e.offset}+${entryLength(e)} lies outside ${keyName(e.key)} (${dev.sizeBytes} bytes): nothing replayed`,
        { epoch: e.epoch, seq: e.seq },
      )
    }
  }
  const touched = new Set<BlockDevice>()
  const r = await journal.replay(
    async (e) => {
      const dev = devices.get(nameOf(e.key)) ?? resolve(e.key)
      if (!dev) throw new JournalError('JOURNAL_NO_BACKEND', `no storage for ${keyName(e.key)}`, { epoch: e.epoch, seq: e.seq })
      if (e.offset + entryLength(e) > dev.sizeBytes) {
        throw new JournalError('JOURNAL_OUT_OF_RANGE', `copy ${e.epoch}/${e.seq} lies outside ${keyName(e.key)}`, { epoch: e.epoch, seq: e.seq })
      }
      await applyEntry(dev, e)
      touched.add(dev)
    },
    {
      beforeRemove: async () => {
        for (const dev of touched) await dev.flush()
      },
    },
  )
  return { ...r, devices: touched.size }
}
