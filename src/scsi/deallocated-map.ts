// Which blocks this unit deallocated (UNMAP, WRITE SAME with UNMAP) and has not written since:
// what GET LBA STATUS reports, answered from memory. Reading the data to find zeros would cost
// a storage read per question, and QEMU asks before its reads. Blocks of unknown state (e.g.
// holes from before a restart) report as mapped: a host then reads the zeros, never misses data.

export interface ProvisioningRun {
  lba: number
  blocks: number
  deallocated: boolean
}

export class DeallocatedMap {
  /** Sorted, disjoint, non-adjacent [start, end) block ranges. */
  private starts: number[] = []
  private ends: number[] = []

  get size(): number {
    return this.starts.length
  }

  add(lba: number, blocks: number): void {
    if (blocks <= 0) return
    let start = lba
    let end = lba + blocks
    // Merge every range that overlaps or touches [start, end).
    let i = this.firstEndingAtOrAfter(start)
    let j = i
    while (j < this.starts.length && this.starts[j]! <= end) {
      start = Math.min(start, this.starts[j]!)
      end = Math.max(end, this.ends[j]!)
      j++
    }
    this.starts.splice(i, j - i, start)
    this.ends.splice(i, j - i, end)
  }

  /** The blocks were written: mapped again. */
  remove(lba: number, blocks: number): void {
    if (blocks <= 0 || this.starts.length === 0) return
    const start = lba
    const end = lba + blocks
    const i = this.firstEndingAfter(start)
    let j = i
    const keepStarts: number[] = []
    const keepEnds: number[] = []
    while (j < this.starts.length && this.starts[j]! < end) {
      if (this.starts[j]! < start) {
        keepStarts.push(this.starts[j]!)
        keepEnds.push(start)
      }
      if (this.ends[j]! > end) {
        keepStarts.push(end)
        keepEnds.push(this.ends[j]!)
      }
      j++
    }
    this.starts.splice(i, j - i, ...keepStarts)
    this.ends.splice(i, j - i, ...keepEnds)
  }

  /** Alternating mapped/deallocated runs from `from` up to `to`, at most `max` of them. */
  runs(from: number, to: number, max: number): ProvisioningRun[] {
    const out: ProvisioningRun[] = []
    let at = from
    let i = this.firstEndingAfter(from)
    while (at < to && out.length < max) {
      const s = i < this.starts.length ? this.starts[i]! : Infinity
      if (at < s) {
        const end = Math.min(s, to)
        out.push({ lba: at, blocks: end - at, deallocated: false })
        at = end
      } else {
        const end = Math.min(this.ends[i]!, to)
        out.push({ lba: at, blocks: end - at, deallocated: true })
        at = end
        i++
      }
    }
    return out
  }

  /** Index of the first range whose end is >= x (touching ranges merge on add). */
  private firstEndingAtOrAfter(x: number): number {
    let lo = 0
    let hi = this.ends.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.ends[mid]! < x) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Index of the first range whose end is > x. */
  private firstEndingAfter(x: number): number {
    let lo = 0
    let hi = this.ends.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.ends[mid]! <= x) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}
