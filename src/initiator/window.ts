// The initiator's view of the command window (RFC 7143 §4.2.2.1). Non-immediate commands take
// consecutive CmdSNs; one may be sent only while its CmdSN is within [ExpCmdSN, MaxCmdSN]. The
// target moves the window with the ExpCmdSN/MaxCmdSN fields of its PDUs; a window with
// MaxCmdSN = ExpCmdSN - 1 is closed. All comparisons use 32-bit serial arithmetic.

import { snAdd, snDistance, snLe, snLt } from '../iscsi/serial.js'

export class CommandWindow {
  /** CmdSN of the next non-immediate command; immediate PDUs carry it without taking it. */
  private next: number
  private exp: number
  private max: number

  /** `initialCmdSN` is the CmdSN of the login requests; the first command reuses it. */
  constructor(initialCmdSN: number) {
    this.next = initialCmdSN >>> 0
    this.exp = this.next
    // Until the target says otherwise, one command may be outstanding.
    this.max = this.next
  }

  get cmdSN(): number {
    return this.next
  }

  get expCmdSN(): number {
    return this.exp
  }

  get maxCmdSN(): number {
    return this.max
  }

  /** Whether a non-immediate command may be sent now. */
  get open(): boolean {
    return snLe(this.next, this.max)
  }

  /** CmdSNs still available before the window closes. */
  get room(): number {
    return this.open ? snDistance(this.next, this.max) + 1 : 0
  }

  /** Commands sent that the target has not yet acknowledged receiving (CmdSN ≥ ExpCmdSN). */
  get unacknowledged(): number {
    return snDistance(this.exp, this.next)
  }

  /** Take the next CmdSN for a non-immediate command. Throws when the window is closed. */
  take(): number {
    if (!this.open) throw new Error(`CmdSN window closed (next ${this.next}, MaxCmdSN ${this.max})`)
    const sn = this.next
    this.next = snAdd(this.next, 1)
    return sn
  }

  /**
   * Apply ExpCmdSN/MaxCmdSN from a target PDU. Values with MaxCmdSN < ExpCmdSN - 1 are
   * ignored (§4.2.2.1); otherwise each only moves forward. Returns true if the window opened.
   */
  update(expCmdSN: number, maxCmdSN: number): boolean {
    const exp = expCmdSN >>> 0
    const max = maxCmdSN >>> 0
    if (snLt(max, snAdd(exp, -1))) return false
    // ExpCmdSN can never pass the next CmdSN we have not sent yet.
    if (snLt(this.exp, exp) && snLe(exp, this.next)) this.exp = exp
    const wasOpen = this.open
    const before = this.max
    if (snLt(this.max, max)) this.max = max
    return (!wasOpen && this.open) || (this.open && before !== this.max)
  }
}
