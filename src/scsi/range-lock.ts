// LBA range ordering for the commands that must be atomic against other writes: COMPARE AND
// WRITE (VMware ATS), ORWRITE, WRITE ATOMIC, EXTENDED COPY segments.
//
// - shared(): plain writes, unmaps and WRITE SAME. They never wait for each other (the
//   transport already orders overlapping writes), only for an overlapping exclusive operation
//   that arrived before them. With none, the operation starts synchronously, so device writes
//   are still issued in the order execute() is called.
// - exclusive(): waits for every overlapping operation, shared or exclusive, that arrived
//   before it, and holds off every overlapping one that arrives after it until it is done.
// - readGate(): reads wait for an overlapping exclusive operation (so a reader never sees half
//   of an atomic update); otherwise they start at once.
//
// Arrival order is the order of the calls, which is the order execute() sees commands.

interface Op {
  start: number
  end: number
  exclusive: boolean
  done: Promise<void>
}

function overlaps(o: Op, start: number, end: number): boolean {
  return o.start < end && start < o.end
}

export class RangeLock {
  private readonly ops = new Set<Op>()
  private exclusives = 0

  /** Operations in flight (for tests). */
  get size(): number {
    return this.ops.size
  }

  shared<T>(lba: number, blocks: number, fn: () => Promise<T>): Promise<T> {
    return this.enter(lba, blocks, false, fn)
  }

  exclusive<T>(lba: number, blocks: number, fn: () => Promise<T>): Promise<T> {
    return this.enter(lba, blocks, true, fn)
  }

  /** A promise to wait on before reading [lba, lba+blocks), or undefined to read at once. */
  readGate(lba: number, blocks: number): Promise<void> | undefined {
    if (this.exclusives === 0) return undefined
    const end = lba + blocks
    const waits: Promise<void>[] = []
    for (const o of this.ops) if (o.exclusive && overlaps(o, lba, end)) waits.push(o.done)
    return waits.length === 0 ? undefined : Promise.all(waits).then(() => undefined)
  }

  private enter<T>(lba: number, blocks: number, exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    const end = lba + Math.max(blocks, 1)
    const waits: Promise<void>[] = []
    if (exclusive || this.exclusives > 0) {
      for (const o of this.ops) if ((exclusive || o.exclusive) && overlaps(o, lba, end)) waits.push(o.done)
    }
    let release!: () => void
    const op: Op = { start: lba, end, exclusive, done: new Promise<void>((r) => (release = r)) }
    this.ops.add(op)
    if (exclusive) this.exclusives++
    const leave = (): void => {
      this.ops.delete(op)
      if (exclusive) this.exclusives--
      release()
    }
    let run: Promise<T>
    if (waits.length === 0) {
      try {
        run = fn()
      } catch (e) {
        run = Promise.reject(e)
      }
    } else {
      run = Promise.all(waits).then(fn)
    }
    return run.finally(leave)
  }
}
