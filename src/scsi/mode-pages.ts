// Mode pages (SPC-4 §7.5, SBC-3 §6.4) of a disk logical unit: current, changeable and default
// values, and the MODE SELECT validation against the changeable mask. Saved values are not
// supported (PC=3 and SP=1 are rejected by the command handlers).
//
// Supported pages, none with subpages:
//   0x01 Read-Write Error Recovery   nothing changeable
//   0x08 Caching                     WCE changeable (the only changeable bit)
//   0x0A Control                     SWP changeable (software write protect; D_SENSE=0: fixed-format sense only)
//   0x1C Informational Exceptions    nothing changeable
//
// Current values are shared by all I_T nexuses and survive resets (see DiskLogicalUnit.reset).

import { invalidFieldInParameterList, parameterListLengthError } from './sense.js'

export const enum ModePageCode {
  ReadWriteErrorRecovery = 0x01,
  Caching = 0x08,
  Control = 0x0a,
  InformationalExceptions = 0x1c,
  AllPages = 0x3f,
}

/** Page control field of MODE SENSE. */
export const enum PageControl {
  Current = 0,
  Changeable = 1,
  Default = 2,
  Saved = 3,
}

interface PageDef {
  code: number
  /** Whole page, header included. */
  defaults: Buffer
  changeable: Buffer
}

const WCE = 0x04
/** Control page byte 4: SOFTWARE WRITE PROTECT. */
const SWP = 0x08

function page(code: number, body: number[]): Buffer {
  const b = Buffer.alloc(2 + body.length)
  b[0] = code
  b[1] = body.length
  for (let i = 0; i < body.length; i++) b[i + 2] = body[i]
  return b
}

function pageDefs(writeCache: boolean): PageDef[] {
  // Read-Write Error Recovery: AWRE=1 ARRE=1, no retries reported, recovery time limit 0.
  const rwer = page(ModePageCode.ReadWriteErrorRecovery, [0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
  // Caching: WCE from config, RCD=0; prefetch and segment fields zero.
  const caching = page(ModePageCode.Caching, [writeCache ? WCE : 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
  // Control: TST=0, GLTSD=1 (no log parameters saved), QUEUE ALGORITHM MODIFIER=1 (unrestricted:
  // overlapping reads may see old or new data), QERR=0, SWP=0, TAS=0, busy timeout unlimited.
  const control = page(ModePageCode.Control, [0x02, 0x10, 0x00, 0x00, 0, 0, 0xff, 0xff, 0, 0])
  // Informational Exceptions Control: DEXCPT=1 (no failure prediction), MRIE=0.
  const iec = page(ModePageCode.InformationalExceptions, [0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 0])

  const none = (p: Buffer): Buffer => {
    const c = Buffer.alloc(p.length)
    c[0] = p[0]
    c[1] = p[1]
    return c
  }
  const cachingChangeable = none(caching)
  cachingChangeable[2] = WCE
  const controlChangeable = none(control)
  controlChangeable[4] = SWP
  return [
    { code: ModePageCode.ReadWriteErrorRecovery, defaults: rwer, changeable: none(rwer) },
    { code: ModePageCode.Caching, defaults: caching, changeable: cachingChangeable },
    { code: ModePageCode.Control, defaults: control, changeable: controlChangeable },
    { code: ModePageCode.InformationalExceptions, defaults: iec, changeable: none(iec) },
  ]
}

export interface ModeSelectOutcome {
  /** Some current value actually changed. */
  changed: boolean
}

export class ModePages {
  private readonly defs: PageDef[]
  private readonly byCode = new Map<number, PageDef>()
  private readonly current = new Map<number, Buffer>()
  /** Mirror of the caching page's WCE bit, read on every write. */
  private wce: boolean

  constructor(opts: { writeCache: boolean }) {
    this.defs = pageDefs(opts.writeCache)
    for (const d of this.defs) {
      this.byCode.set(d.code, d)
      this.current.set(d.code, Buffer.from(d.defaults))
    }
    this.wce = opts.writeCache
  }

  /** Write cache enabled (caching page WCE). When false every write is issued with FUA. */
  get writeCacheEnabled(): boolean {
    return this.wce
  }

  /** Software write protect (control page SWP): the medium refuses writes while set. */
  get softwareWriteProtect(): boolean {
    return (this.current.get(ModePageCode.Control)![4] & SWP) !== 0
  }

  /** True when `code` names a page (or 0x3F, all pages) this unit has. */
  has(code: number): boolean {
    return code === ModePageCode.AllPages || this.byCode.has(code)
  }

  /**
   * The page bytes MODE SENSE returns for page `code` (0x3F: all pages in ascending order) with
   * page control `pc` (Current, Changeable or Default; the caller rejects Saved).
   */
  sense(code: number, pc: PageControl): Buffer {
    const pick = (d: PageDef): Buffer =>
      pc === PageControl.Changeable ? d.changeable : pc === PageControl.Default ? d.defaults : this.current.get(d.code)!
    if (code === ModePageCode.AllPages) return Buffer.concat(this.defs.map(pick))
    const d = this.byCode.get(code)
    if (d === undefined) throw new RangeError(`mode page 0x${code.toString(16)} not supported`)
    return pick(d)
  }

  /**
   * Validate and apply the mode pages of a MODE SELECT parameter list. `pages` holds the bytes
   * after the header and block descriptors; `base` is their offset in the parameter list (for
   * field pointers). Nothing is applied unless every page is valid.
   */
  select(pages: Buffer, base: number): ModeSelectOutcome {
    const staged: { code: number; bytes: Buffer }[] = []
    let off = 0
    while (off < pages.length) {
      if (pages.length - off < 2) throw parameterListLengthError()
      const b0 = pages[off]
      if (b0 & 0x40) throw invalidFieldInParameterList(base + off, 6) // SPF: no subpages here
      const code = b0 & 0x3f
      const def = this.byCode.get(code)
      if (def === undefined) throw invalidFieldInParameterList(base + off, 5)
      const len = pages[off + 1]
      if (len !== def.defaults.length - 2) throw invalidFieldInParameterList(base + off + 1, 7)
      if (off + 2 + len > pages.length) throw parameterListLengthError()
      const cur = this.current.get(code)!
      const next = Buffer.from(cur)
      for (let i = 2; i < 2 + len; i++) {
        const v = pages[off + i]
        const diff = (v ^ cur[i]) & ~def.changeable[i] & 0xff
        if (diff !== 0) throw invalidFieldInParameterList(base + off + i, 31 - Math.clz32(diff))
        next[i] = v
      }
      staged.push({ code, bytes: next })
      off += 2 + len
    }
    let changed = false
    for (const s of staged) {
      const cur = this.current.get(s.code)!
      if (!cur.equals(s.bytes)) {
        changed = true
        s.bytes.copy(cur)
      }
    }
    this.wce = (this.current.get(ModePageCode.Caching)![2] & WCE) !== 0
    return { changed }
  }
}
