// Where the reservation state goes when it changes. The logical unit calls save() after every
// change of its reservation state and completes the command only once save() resolved; a
// rejected save() undoes the change and fails the command. The APTPL file beside the LUN
// (src/storage/reservation-file.ts) is one implementation; the HA pair's replication to the
// partner controller will be another (or wrap one).

import type { ReservationSnapshot } from './reservations.js'

export interface ReservationStore {
  /** The state saved last, if any (used once, when the unit starts). */
  load(): Promise<ReservationSnapshot | undefined>
  /** Make `snapshot` the saved state. */
  save(snapshot: ReservationSnapshot): Promise<void>
}
