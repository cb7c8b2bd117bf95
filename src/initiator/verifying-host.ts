// A host that can tell whether the storage kept its promises (METHOD.md invariants). It writes
// versioned, checksummed units at queue depth, remembers which writes were acknowledged, and
// when its connection dies it reconnects and resends what was in flight, as a real host does.
// At the end every unit must read back as its last acknowledged version or a later one that was
// sent (nothing lost, nothing torn, nothing invented). It also measures the longest time no
// write completed: the I/O pause a failover costs the host.

import { crc32c } from '../wire/digest.js'
import { IscsiInitiatorConnection, type InitiatorConnectionOptions } from './connection.js'

const MAGIC = 0x56484b31 // 'VHK1'
const HEADER = 24

export interface VerifyingHostOptions {
  connect: Omit<InitiatorConnectionOptions, 'queueDepth'>
  /** Distinct units written (each a fixed LBA range). */
  units: number
  /** Blocks per unit (one write covers a whole unit). */
  unitBlocks: number
  /** First LBA of unit 0. */
  firstLba?: number
  queueDepth: number
  /** Stop issuing new writes after this many ms (in-flight ones finish). */
  durationMs: number
  /** Give up reconnecting after this long without a session. */
  reconnectTimeoutMs?: number
  /** Per-command timeout: a command that hangs this long counts as lost and is resent. */
  commandTimeoutMs?: number
  onEvent?: (e: HostEvent) => void
  /**
   * After each reconnect, read every unit back before writing again: a write lost in the
   * failover shows here, before later writes to the same unit could hide it.
   */
  verifyOnReconnect?: boolean
}

export type HostEvent =
  | { type: 'connected'; at: number; attempt: number }
  | { type: 'disconnected'; at: number; reason: string }
  | { type: 'verified'; at: number; lost: number; torn: number; invented: number }

export interface VerifyReport {
  writesAcknowledged: number
  writesResent: number
  reconnects: number
  /** Units whose content is older than their last acknowledged version (or unreadable). */
  lost: Array<{ unit: number; acknowledged: number; found: number | 'torn' | 'zero' }>
  /** Units with a bad checksum or a header that does not belong to the unit. */
  torn: number[]
  /** Units showing a version that was never sent. */
  invented: Array<{ unit: number; found: number; maxSent: number }>
  /** Reconnects after which every unit was read back before writing resumed. */
  verifiedReconnects: number
  /** Longest gap between two write completions while writes were outstanding, ms. */
  longestPauseMs: number
  /** Gaps above 200 ms, in order: one per failover, typically. */
  pausesMs: number[]
  durationMs: number
}

interface UnitState {
  acknowledged: number
  maxSent: number
  inFlight: boolean
}

export class VerifyingHost {
  private conn: IscsiInitiatorConnection | undefined
  private readonly units: UnitState[]
  private readonly blockSize = 512
  private reconnecting: Promise<IscsiInitiatorConnection> | undefined
  private lastCompletionAt = 0
  private readonly pauses: number[] = []
  private longestPause = 0
  private acked = 0
  private resent = 0
  private reconnects = 0
  private readonly isid: string
  /** Written in every unit: data left by another run reads as never written by this one. */
  private readonly runId = (Math.random() * 0xffffffff) >>> 0 || 1
  private everConnected = false
  private readonly findings: Pick<VerifyReport, 'lost' | 'torn' | 'invented'> = { lost: [], torn: [], invented: [] }
  private verifiedReconnects = 0
  /** Time spent reading everything back after reconnects: ours, not the storage's pause. */
  private verifyingMs = 0

  constructor(private readonly opts: VerifyingHostOptions) {
    this.units = Array.from({ length: opts.units }, () => ({ acknowledged: 0, maxSent: 0, inFlight: false }))
    // One ISID for the life of the host, so a reconnect reinstates its session (RFC 7143 §6.3.5).
    this.isid = opts.connect.isid ?? '80' + Math.floor(Math.random() * 0xffffffffff).toString(16).padStart(10, '0')
  }

  /** Writes acknowledged so far (tests wait for a steady stream before injecting a fault). */
  get acknowledged(): number {
    return this.acked
  }

  /** Write for durationMs at queue depth, surviving reconnects; then verify. */
  async run(): Promise<VerifyReport> {
    const started = Date.now()
    await this.session()
    this.lastCompletionAt = Date.now()
    const stopAt = started + this.opts.durationMs
    const workers = Array.from({ length: this.opts.queueDepth }, (_, i) => this.worker(i, stopAt))
    await Promise.all(workers)
    const report = await this.verify()
    await this.conn?.close().catch(() => undefined)
    return { ...report, durationMs: Date.now() - started }
  }

  private async worker(index: number, stopAt: number): Promise<void> {
    let next = index
    while (Date.now() < stopAt) {
      // Each worker owns units index, index+QD, …: one write in flight per unit, always.
      const unit = next % this.units.length
      next += this.opts.queueDepth
      if (next >= this.units.length) next = index
      const u = this.units[unit]!
      if (u.inFlight) continue
      u.inFlight = true
      const version = u.maxSent + 1
      u.maxSent = version
      await this.writeUntilAcknowledged(unit, version)
      u.acknowledged = version
      u.inFlight = false
    }
  }

  private async writeUntilAcknowledged(unit: number, version: number): Promise<void> {
    const data = this.payload(unit, version)
    const lba = (this.opts.firstLba ?? 0) + unit * this.opts.unitBlocks
    for (let attempt = 0; ; attempt++) {
      const conn = await this.session()
      try {
        await conn.write(lba, data, { timeoutMs: this.opts.commandTimeoutMs ?? 5000 })
        this.completed()
        return
      } catch (err) {
        // Not acknowledged: the host resends after reconnecting (the write may or may not have
        // landed; either way the unit may show this version, which was sent, so not invented).
        this.resent++
        this.lost(conn, err)
        if (attempt > 1000) throw err
      }
    }
  }

  private completed(): void {
    const now = Date.now()
    const gap = now - this.lastCompletionAt - this.verifyingMs
    this.verifyingMs = 0
    if (gap > this.longestPause) this.longestPause = gap
    if (gap > 200) this.pauses.push(gap)
    this.lastCompletionAt = now
    this.acked++
  }

  private lost(conn: IscsiInitiatorConnection, err: unknown): void {
    if (this.conn === conn) {
      this.opts.onEvent?.({ type: 'disconnected', at: Date.now(), reason: err instanceof Error ? err.message : String(err) })
      this.conn = undefined
      conn.destroy()
    }
  }

  /** The live session, or a new one (retried until reconnectTimeoutMs). */
  private session(): Promise<IscsiInitiatorConnection> {
    if (this.conn) return Promise.resolve(this.conn)
    this.reconnecting ??= (async () => {
      const deadline = Date.now() + (this.opts.reconnectTimeoutMs ?? 30_000)
      for (let attempt = 1; ; attempt++) {
        try {
          const conn = await IscsiInitiatorConnection.open({
            ...this.opts.connect, isid: this.isid, queueDepth: this.opts.queueDepth,
            connectTimeoutMs: 1000, loginTimeoutMs: 3000,
          })
          const reconnect = this.everConnected
          if (reconnect && this.opts.verifyOnReconnect) {
            const verifyStart = Date.now()
            const found = await this.check(conn).catch((err: unknown) => {
              conn.destroy()
              throw err
            })
            this.findings.lost.push(...found.lost)
            this.findings.torn.push(...found.torn)
            this.findings.invented.push(...found.invented)
            this.verifiedReconnects++
            this.verifyingMs += Date.now() - verifyStart
            this.opts.onEvent?.({ type: 'verified', at: Date.now(), lost: found.lost.length, torn: found.torn.length, invented: found.invented.length })
          }
          if (reconnect) this.reconnects++
          this.everConnected = true
          this.conn = conn
          this.opts.onEvent?.({ type: 'connected', at: Date.now(), attempt })
          void conn.closed.then(() => this.lost(conn, new Error('connection closed')))
          return conn
        } catch (err) {
          if (Date.now() > deadline) throw err
          await new Promise((r) => setTimeout(r, 50))
        }
      }
    })().finally(() => {
      this.reconnecting = undefined
    })
    return this.reconnecting
  }

  /** The unit's bytes: a header naming unit and version, a pattern, and a CRC over it all. */
  private payload(unit: number, version: number): Buffer {
    const b = Buffer.allocUnsafe(this.opts.unitBlocks * this.blockSize)
    b.writeUInt32BE(MAGIC, 0)
    b.writeUInt32BE(unit, 4)
    b.writeUInt32BE(version, 8)
    b.writeUInt32BE(b.length, 12)
    b.writeUInt32BE(this.runId, 16)
    let x = (unit * 2654435761 + version * 40503) >>> 0
    for (let i = HEADER; i < b.length; i += 4) {
      x = (x * 1664525 + 1013904223) >>> 0
      b.writeUInt32BE(x, i)
    }
    b.writeUInt32BE(crc32c(b.subarray(HEADER)), 20)
    return b
  }

  /** What a unit holds: a version, never written by this run (zero), or torn (any check fails). */
  private decode(unit: number, b: Buffer): number | 'zero' | 'torn' {
    if (b.every((x) => x === 0)) return 'zero'
    // Another run's unit, intact: not ours, as if never written (a torn one still counts torn).
    if (b.readUInt32BE(0) === MAGIC && b.readUInt32BE(16) !== this.runId && crc32c(b.subarray(HEADER)) === b.readUInt32BE(20)) return 'zero'
    if (b.readUInt32BE(0) !== MAGIC || b.readUInt32BE(4) !== unit || b.readUInt32BE(12) !== b.length) return 'torn'
    if (crc32c(b.subarray(HEADER)) !== b.readUInt32BE(20)) return 'torn'
    return b.readUInt32BE(8)
  }

  async verify(): Promise<Omit<VerifyReport, 'durationMs'>> {
    const final = await this.readAll(() => this.session())
    return {
      writesAcknowledged: this.acked, writesResent: this.resent, reconnects: this.reconnects,
      verifiedReconnects: this.verifiedReconnects,
      lost: [...this.findings.lost, ...final.lost], torn: [...this.findings.torn, ...final.torn],
      invented: [...this.findings.invented, ...final.invented], longestPauseMs: this.longestPause, pausesMs: this.pauses,
    }
  }

  /** One pass over every unit on a given connection (throws if it fails: the caller retries). */
  private check(conn: IscsiInitiatorConnection): Promise<Pick<VerifyReport, 'lost' | 'torn' | 'invented'>> {
    return this.readAll(() => Promise.resolve(conn), true)
  }

  private async readAll(
    session: () => Promise<IscsiInitiatorConnection>,
    once = false,
  ): Promise<Pick<VerifyReport, 'lost' | 'torn' | 'invented'>> {
    const report: Pick<VerifyReport, 'lost' | 'torn' | 'invented'> = { lost: [], torn: [], invented: [] }
    const perRead = Math.max(1, Math.floor(256 / this.opts.unitBlocks))
    for (let first = 0; first < this.units.length; first += perRead) {
      const count = Math.min(perRead, this.units.length - first)
      const lba = (this.opts.firstLba ?? 0) + first * this.opts.unitBlocks
      let data: Buffer | undefined
      for (let attempt = 0; data === undefined; attempt++) {
        const conn = await session()
        try {
          data = await conn.read(lba, count * this.opts.unitBlocks, { timeoutMs: 10_000 })
        } catch (err) {
          if (once) throw err
          this.lost(conn, err)
          if (attempt > 100) throw err
        }
      }
      for (let i = 0; i < count; i++) {
        const unit = first + i
        const u = this.units[unit]!
        const size = this.opts.unitBlocks * this.blockSize
        const found = this.decode(unit, data.subarray(i * size, (i + 1) * size))
        if (found === 'torn') report.torn.push(unit)
        const version = typeof found === 'number' ? found : 0
        if (version < u.acknowledged) report.lost.push({ unit, acknowledged: u.acknowledged, found })
        if (version > u.maxSent) report.invented.push({ unit, found: version, maxSent: u.maxSent })
      }
    }
    return report
  }
}
