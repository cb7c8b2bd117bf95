// Completing journal copies onto LUN storage: `iscsi-ha replay`, and the secondary's takeover
// (METHOD.md, "Failover" step 4) before it serves any command.

import type { LunKey } from '../ha/types.js'
import type { BlockDevice } from '../scsi/types.js'
import { JournalError } from './errors.js'
import type { Journal } from './journal.js'

export interface ApplyResult {
  replayed: number
  bytes: number
  /** Devices written (each flushed once). */
  devices: number
}

function keyName(k: LunKey): string {
  return `${k.target} LUN ${k.lun}`
}

/**
 * Replay every copy in `journal` onto its LUN's storage in (epoch, seq) order, flush each touched
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
    if (e.offset + e.data.length > dev.sizeBytes) {
      throw new JournalError(
        'JOURNAL_OUT_OF_RANGE',
        `copy ${e.epoch}/${e.seq} at ${e.offset}+${e.data.length} lies outside ${keyName(e.key)} (${dev.sizeBytes} bytes): nothing replayed`,
        { epoch: e.epoch, seq: e.seq },
      )
    }
  }
  const touched = new Set<BlockDevice>()
  const r = await journal.replay(
    async (e) => {
      const dev = devices.get(nameOf(e.key)) ?? resolve(e.key)
      if (!dev) throw new JournalError('JOURNAL_NO_BACKEND', `no storage for ${keyName(e.key)}`, { epoch: e.epoch, seq: e.seq })
      if (e.offset + e.data.length > dev.sizeBytes) {
        throw new JournalError('JOURNAL_OUT_OF_RANGE', `copy ${e.epoch}/${e.seq} lies outside ${keyName(e.key)}`, { epoch: e.epoch, seq: e.seq })
      }
      await dev.write(e.offset, e.data, { fua: false })
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
