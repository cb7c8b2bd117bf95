// A target as the session layer sees it: a name, a portal group, its logical units, and who
// may log in. Built by the node runtime from the config.

import type { LogicalUnit } from '../scsi/types.js'
import type { TargetAccess } from './login.js'

export class Target {
  readonly luns = new Map<number, LogicalUnit>()

  constructor(readonly access: TargetAccess) {}

  get iqn(): string {
    return this.access.iqn
  }

  get tpgt(): number {
    return this.access.tpgt
  }

  lunNumbers(): number[] {
    return [...this.luns.keys()].sort((a, b) => a - b)
  }
}
