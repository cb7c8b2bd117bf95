// libiscsi's whole conformance suite, `iscsi-test-cu -d -S -v -t ALL URL URL`, against one node:
// the same LUN twice (two sessions, two initiator names) so the multipath and two-initiator
// tests run. Fails on any failed test, on any skipped test whose reason is not the one explained
// below (README, "SCSI conformance"), and on any "[FAILED]" line the suite logs outside the tests
// whose design makes a correct target log one. Companion runs pass what the main run skips for
// want of an option: a read-only LUN passes ReadOnly.ReadOnlySBC, a LUN with 4096-byte physical
// blocks and SANITIZE OVERWRITE allowed passes the LBPPB and OVERWRITE tests. Prints the counts.
// Takes about a minute.
import { afterAll, describe, expect, it } from 'vitest'
import { execa, type ResultPromise } from 'execa'
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { missingTools } from '../helpers/tools.js'
import { cli, freePort } from '../helpers/node-process.js'
import {
  IscsiInitiatorConnection,
  SCSI_CHECK_CONDITION,
  SCSI_GOOD,
  cdbReadCapacity16,
  cdbRead16,
  cdbWrite16,
  type ScsiCallOptions,
  type ScsiResult,
} from '../../src/initiator/index.js'

const skip = missingTools('iscsi-test-cu')

export interface ExplainedSkip {
  /** Why a correct target skips it with the LUN under test. */
  reason: string
  /** Every "[SKIPPED]" line the test logs matches this: it skips for the reason given, no other. */
  logs: RegExp
}

const LBPPB_1 = /^\[SKIPPED\] LBPPB < 2\. Skipping test$/
const NO_OVERWRITE = /^\[SKIPPED\] SANITIZE OVERWRITE is not implemented according to REPORT_SUPPORTED_OPCODES\.$/
const NO_CRYPTO_ERASE = /^\[SKIPPED\] SANITIZE CRYPTO_ERASE is not implemented according to REPORT_SUPPORTED_OPCODES\.$/
const NO_OVERWRITE_OR_CRYPTO_ERASE = /^\[SKIPPED\] SANITIZE (?:OVERWRITE|CRYPTO_ERASE) is not implemented according to REPORT_SUPPORTED_OPCODES\.$/

/** The LUN of the LBPPB/OVERWRITE companion run: 512e, SANITIZE OVERWRITE allowed. */
export const COMPANION_CONFIG = 'physical_block_size: 4096 and sanitize_overwrite: true'
const IN_COMPANION = `passes in the companion run with ${COMPANION_CONFIG}`
const LBPPB_REASON =
  `runs only when the LUN reports several logical blocks per physical block; by default it reports one (physical = logical, ` +
  `like a 512n disk: hosts expect it, and libiscsi's GetLBAStatus.UnmapSingle fails a correct target otherwise); ${IN_COMPANION}`

/**
 * Skips of the main run (the default LUN config, removable), each with its reason and the skip
 * lines it allows. Nothing else may skip, and every one of these must.
 */
export const EXPLAINED_SKIPS: Record<string, ExplainedSkip> = {
  'ReadOnly.ReadOnlySBC': {
    reason: 'the LUN under test is writable; passes in the companion run against a read-only LUN',
    logs: /^\[SKIPPED\] Logical unit is not write-protected\. Skipping test\.$/,
  },
  'CompareAndWrite.InvalidDataOutSize': { reason: LBPPB_REASON, logs: LBPPB_1 },
  'WriteSame10.UnmapUnaligned': { reason: LBPPB_REASON, logs: LBPPB_1 },
  'WriteSame16.UnmapUnaligned': { reason: LBPPB_REASON, logs: LBPPB_1 },
  'WriteSame10.InvalidDataOutSize': { reason: LBPPB_REASON, logs: LBPPB_1 },
  'WriteSame16.InvalidDataOutSize': { reason: LBPPB_REASON, logs: LBPPB_1 },
  'Sanitize.CryptoErase': {
    reason: 'CRYPTO ERASE needs encryption at rest, which the target does not have',
    logs: NO_CRYPTO_ERASE,
  },
  'Sanitize.Overwrite': {
    reason:
      'SANITIZE OVERWRITE is off by default (config sanitize_overwrite): it writes every block, so on a thin LUN one host ' +
      `command allocates the whole LUN in the storage pool; ${IN_COMPANION}`,
    logs: NO_OVERWRITE,
  },
  'Sanitize.Readonly': {
    reason:
      'runs (BLOCK ERASE is refused on a write-protected LUN) but logs a skip for OVERWRITE (off by default) and CRYPTO ERASE; ' +
      `${IN_COMPANION}, where only the CRYPTO ERASE skip is left`,
    logs: NO_OVERWRITE_OR_CRYPTO_ERASE,
  },
  'Sanitize.Reservations': {
    reason:
      'runs (BLOCK ERASE conflicts with a reservation) but logs a skip for OVERWRITE (off by default) and CRYPTO ERASE; ' +
      `${IN_COMPANION}, where only the CRYPTO ERASE skip is left`,
    logs: NO_OVERWRITE_OR_CRYPTO_ERASE,
  },
  'Sanitize.Reset': {
    reason:
      'SANITIZE OVERWRITE is off by default. With it on, the test needs an OVERWRITE still running more than 4 s after it ' +
      'started (it checks for SANITIZE IN PROGRESS after 3 s, and again after resets and a reconnect a second later): a LUN ' +
      'of many GiB at the rate the companion run measures, where a 64 MiB LUN is overwritten in tens of milliseconds. That ' +
      'a sanitize survives ABORT TASK, resets and the loss of the nexus is unit-tested on a device held mid-pass',
    logs: NO_OVERWRITE,
  },
}

/** Further skips when the node cannot be given a removable LUN (config key `removable`). */
export const FIXED_MEDIUM_SKIPS: Record<string, ExplainedSkip> = Object.fromEntries(
  [
    'PreventAllow.Simple', 'PreventAllow.Eject', 'PreventAllow.ITNexusLoss', 'PreventAllow.Logout',
    'PreventAllow.WarmReset', 'PreventAllow.ColdReset', 'PreventAllow.LUNReset', 'PreventAllow.2ITNexuses',
    'StartStopUnit.Simple',
  ].map((t) => [t, { reason: 'runs only on removable media', logs: /^\[SKIPPED\] (?:LUN|Logical unit|Media) is not removable\./ }]),
)

/** The tests the companion run passes: the five LBPPB tests and the OVERWRITE ones but Sanitize.Reset. */
export const COMPANION_TESTS = [
  'CompareAndWrite.InvalidDataOutSize',
  'WriteSame10.UnmapUnaligned',
  'WriteSame16.UnmapUnaligned',
  'WriteSame10.InvalidDataOutSize',
  'WriteSame16.InvalidDataOutSize',
  'Sanitize.Overwrite',
  'Sanitize.Readonly',
  'Sanitize.Reservations',
]

/** Why a skipped test is not explained by `table`, or undefined when it is. */
export function unexplained(t: TestOutcome, table: Record<string, ExplainedSkip>): string | undefined {
  const e = Object.hasOwn(table, t.name) ? table[t.name] : undefined
  if (e === undefined) return 'no reason recorded'
  const other = t.skips.find((x) => !e.logs.test(x))
  return other === undefined ? undefined : `skips for another reason: ${other}`
}

/** Tests that log "[FAILED]" lines by design while passing, whatever the target does. */
export const INHERENT_FAILURE_LOGS: Record<string, string> = {
  'iSCSIdatasn.iSCSIDataSnInvalid': 'the WRITE10 helper logs every failed write; the test sends invalid DataSNs and expects the writes to fail',
  'PreventAllow.WarmReset': 'waits out the reset unit attention with `while (TEST UNIT READY expecting GOOD fails)`, logging each one',
  'PreventAllow.ColdReset': 'as PreventAllow.WarmReset',
  'PreventAllow.LUNReset': 'as PreventAllow.WarmReset',
}

export interface TestOutcome {
  name: string
  status: 'passed' | 'FAILED'
  skips: string[]
  failureLogs: string[]
  /** CUnit's list of failed assertions after a FAILED test, as "file.c:line - assertion". */
  asserts: string[]
}

export interface SuiteReport {
  tests: TestOutcome[]
  /** "[FAILED]" lines outside any test (suite set-up and clean-up). */
  strayFailureLogs: string[]
  summary?: { ran: number; passed: number; failed: number }
}

/** Parse `iscsi-test-cu -v` output: CUnit's "Suite:" / "  Test: X ..." lines and the log lines of each. */
export function parseVerbose(out: string): SuiteReport {
  const tests: TestOutcome[] = []
  const stray: string[] = []
  let suite = ''
  let current: TestOutcome | undefined
  let lastFailed: TestOutcome | undefined
  const takeLogs = (text: string): void => {
    for (const line of text.split('\n')) {
      if (current !== undefined) {
        if (line.includes('[SKIPPED]')) current.skips.push(line.trim())
        if (line.includes('[FAILED]')) current.failureLogs.push(line.trim())
      } else if (line.includes('[FAILED]')) {
        stray.push(line.trim())
      }
    }
  }
  for (const rawLine of out.split('\n')) {
    const suiteMatch = /^Suite: (\S+)/.exec(rawLine)
    if (suiteMatch) {
      current = undefined
      lastFailed = undefined
      suite = suiteMatch[1]
      continue
    }
    // "    1. file.c:97  - CU_ASSERT_EQUAL(_r,0)": the failed assertions follow the FAILED line.
    const assertMatch = current === undefined && lastFailed !== undefined ? /^\s+\d+\. (\S+:\d+)\s+- (.*)$/.exec(rawLine) : null
    if (assertMatch && lastFailed !== undefined) {
      lastFailed.asserts.push(`${assertMatch[1]} - ${assertMatch[2]}`)
      continue
    }
    let line = rawLine
    const testMatch = /^ {2}Test: (\S+) \.\.\./.exec(line)
    if (testMatch) {
      current = { name: `${suite}.${testMatch[1]}`, status: 'passed', skips: [], failureLogs: [], asserts: [] }
      lastFailed = undefined
      tests.push(current)
      line = line.slice(testMatch[0].length)
    }
    // The status word starts a line (or follows "..."); what follows it belongs to no test.
    const statusMatch = current !== undefined ? /^(passed|FAILED)(.*)$/.exec(line) : null
    if (statusMatch && current !== undefined) {
      current.status = statusMatch[1] as 'passed' | 'FAILED'
      lastFailed = current.status === 'FAILED' ? current : undefined
      current = undefined
      takeLogs(statusMatch[2])
      continue
    }
    takeLogs(line)
  }
  const m = /^\s+tests\s+(\d+)\s+(\d+)\s+(\d+|n\/a)\s+(\d+)\s+(\d+)/m.exec(out)
  return {
    tests,
    strayFailureLogs: stray,
    summary: m ? { ran: Number(m[2]), passed: Number(m[3]), failed: Number(m[4]) } : undefined,
  }
}

interface Node {
  url: string
  host: string
  port: number
  iqn: string
  removable: boolean
  stop(): Promise<void>
}

interface LunOptions {
  removable?: boolean
  readOnly?: boolean
  /** YAML `physical_block_size`. */
  physicalBlockSize?: number
  /** YAML `sanitize_overwrite`. */
  sanitizeOverwrite?: boolean
}

/** A node with one 64 MiB LUN (removable when the config accepts it, or read-only) and the options given. */
async function startConformanceNode(opts: LunOptions): Promise<Node> {
  const dir = await mkdtemp(join(tmpdir(), 'iscsi-ha-conf-'))
  const iqn = 'iqn.2026-11.io.iscsi-ha:conformance-all'
  if (opts.readOnly) {
    await writeFile(join(dir, 'lun0.img'), '')
    await truncate(join(dir, 'lun0.img'), 64 * 1024 * 1024)
  }
  const attempt = async (removable: boolean): Promise<Node | undefined> => {
    const port = await freePort()
    const admin = await freePort()
    const yaml = [
      'targets:',
      `  - iqn: ${iqn}`,
      '    luns:',
      '      - lun: 0',
      '        path: ./lun0.img',
      opts.readOnly ? '        read_only: true' : '        size: 64MiB',
      removable ? '        removable: true' : '',
      opts.physicalBlockSize !== undefined ? `        physical_block_size: ${opts.physicalBlockSize}` : '',
      opts.sanitizeOverwrite !== undefined ? `        sanitize_overwrite: ${opts.sanitizeOverwrite}` : '',
      'nodes:',
      '  a:',
      `    portal: 127.0.0.1:${port}`,
      `    admin: 127.0.0.1:${admin}`,
    ]
      .filter((line) => line !== '')
      .join('\n')
    await writeFile(join(dir, 'cluster.yaml'), yaml)
    const child: ResultPromise = execa('node', [cli, 'node', 'start', '--config', 'cluster.yaml', '--node', 'a'], {
      cwd: dir, reject: false, stdin: 'ignore', buffer: false,
    })
    let logs = ''
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 20_000)
      child.stderr!.on('data', (chunk: Buffer) => {
        logs += chunk.toString()
        if (logs.includes('"msg":"node ready"')) {
          clearTimeout(timer)
          resolve(true)
        }
      })
      void child.then(() => {
        clearTimeout(timer)
        resolve(false)
      })
    })
    child.stdout!.resume()
    if (!ready) {
      child.kill('SIGTERM')
      await child
      if (removable && /removable/.test(logs)) return undefined // the config does not know the key yet
      throw new Error(`node did not start:\n${logs}`)
    }
    return {
      url: `iscsi://127.0.0.1:${port}/${iqn}/0`,
      host: '127.0.0.1',
      port,
      iqn,
      removable,
      stop: async () => {
        child.kill('SIGTERM')
        await child
      },
    }
  }
  const node = (opts.removable ? await attempt(true) : undefined) ?? (await attempt(false))
  if (node === undefined) throw new Error('node did not start')
  return {
    ...node,
    stop: async () => {
      await node.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** A command as a host sends it: unit attentions (a new nexus, the suite's resets) are retried. */
async function command(conn: IscsiInitiatorConnection, cdb: Buffer, opts: ScsiCallOptions = {}): Promise<ScsiResult> {
  for (let attempt = 0; ; attempt++) {
    const r = await conn.scsi(cdb, opts)
    if (r.status === SCSI_CHECK_CONDITION && r.sense?.key === 0x06 && attempt < 8) continue
    return r
  }
}

function good(r: ScsiResult, what: string): ScsiResult {
  expect(r.status, `${what}: status ${r.status} sense ${r.sense?.raw.toString('hex')}`).toBe(SCSI_GOOD)
  return r
}

function senseOf(r: ScsiResult): { key: number; asc: number; ascq: number; fieldPointer?: number; bitPointer?: number } {
  const raw = r.sense!.raw
  const sksv = raw.length >= 18 && (raw[15]! & 0x80) !== 0
  return {
    key: r.sense!.key,
    asc: r.sense!.asc,
    ascq: r.sense!.ascq,
    ...(sksv ? { fieldPointer: raw.readUInt16BE(16) } : {}),
    ...(sksv && (raw[15]! & 0x08) !== 0 ? { bitPointer: raw[15]! & 0x07 } : {}),
  }
}

async function session(node: Node, initiator: string): Promise<IscsiInitiatorConnection> {
  const conn = new IscsiInitiatorConnection({ host: node.host, port: node.port, initiatorName: initiator, targetName: node.iqn })
  await conn.connect()
  await conn.login()
  return conn
}

/** REPORT SUPPORTED OPERATION CODES, one command (REPORTING OPTIONS 010b): its SUPPORT field. */
async function support(conn: IscsiInitiatorConnection, opcode: number, sa: number): Promise<number> {
  const c = Buffer.alloc(12)
  c[0] = 0xa3
  c[1] = 0x0c
  c[2] = 0x02
  c[3] = opcode
  c.writeUInt16BE(sa, 4)
  c.writeUInt32BE(64, 6)
  return good(await command(conn, c, { readLength: 64 }), 'REPORT SUPPORTED OPERATION CODES').data![1]! & 0x07
}

function overwriteCommand(blockSize: number, byte: number): { cdb: Buffer; dataOut: Buffer } {
  const dataOut = Buffer.alloc(4 + blockSize, byte)
  dataOut.writeUInt16BE(0x0100, 0) // OVERWRITE COUNT 1, reserved byte 0
  dataOut.writeUInt16BE(blockSize, 2) // INITIALIZATION PATTERN LENGTH
  const cdb = Buffer.alloc(10)
  cdb[0] = 0x48
  cdb[1] = 0x01 // SERVICE ACTION OVERWRITE, IMMED=0
  cdb.writeUInt16BE(dataOut.length, 7)
  return { cdb, dataOut }
}

/**
 * What the main run's skips say of the default LUN, asked of the target directly: physical
 * block = logical block, and SANITIZE OVERWRITE neither reported nor accepted (ILLEGAL REQUEST /
 * INVALID FIELD IN CDB on the SERVICE ACTION field, byte 1 bits 4..0), BLOCK ERASE reported.
 */
async function probeDefaults(node: Node): Promise<{ lbppb: number; overwriteSupport: number; blockEraseSupport: number; refusal: ReturnType<typeof senseOf> }> {
  const conn = await session(node, 'iqn.2026-11.io.iscsi-ha:conformance-probe')
  try {
    const cap = good(await command(conn, cdbReadCapacity16(32), { readLength: 32 }), 'READ CAPACITY(16)').data!
    const overwriteSupport = await support(conn, 0x48, 0x01)
    const blockEraseSupport = await support(conn, 0x48, 0x02)
    const { cdb, dataOut } = overwriteCommand(cap.readUInt32BE(8), 0x5a)
    const r = await command(conn, cdb, { dataOut })
    expect(r.status, 'SANITIZE OVERWRITE on the default LUN').toBe(SCSI_CHECK_CONDITION)
    return { lbppb: 1 << (cap[13]! & 0x0f), overwriteSupport, blockEraseSupport, refusal: senseOf(r) }
  } finally {
    await conn.close().catch(() => undefined)
  }
}

/**
 * On the companion LUN (run after its tests: it writes and sanitizes the LUN): it reports 8
 * logical blocks per physical block; GET LBA STATUS answers from the requested LBA in the state
 * GetLBAStatus.UnmapSingle builds, which is why that test fails a correct target with LBPPB > 1
 * and the default is LBPPB 1; and a SANITIZE OVERWRITE of the whole LUN, timed, is over long
 * before the 4 s Sanitize.Reset needs it to run.
 */
async function probeCompanion(node: Node): Promise<{ lbppb: number; overwriteMs: number; lunBytes: number }> {
  const conn = await session(node, 'iqn.2026-11.io.iscsi-ha:conformance-probe')
  try {
    const cap = good(await command(conn, cdbReadCapacity16(32), { readLength: 32 }), 'READ CAPACITY(16)').data!
    const lbppb = 1 << (cap[13]! & 0x0f)
    const blockSize = cap.readUInt32BE(8)
    const lunBytes = (Number(cap.readBigUInt64BE(0)) + 1) * blockSize
    // GetLBAStatus.UnmapSingle at i = LBPPB: blocks 0..i+255 written, 0..i-1 unmapped, status asked at i+1.
    good(await command(conn, cdbWrite16(0, lbppb + 256), { dataOut: Buffer.alloc((lbppb + 256) * blockSize, 0x41) }), 'WRITE(16)')
    const unmap = Buffer.alloc(24)
    unmap.writeUInt16BE(22, 0)
    unmap.writeUInt16BE(16, 2)
    unmap.writeUInt32BE(lbppb, 16) // LBA 0, one physical block
    const unmapCdb = Buffer.alloc(10)
    unmapCdb[0] = 0x42
    unmapCdb.writeUInt16BE(unmap.length, 7)
    good(await command(conn, unmapCdb, { dataOut: unmap }), 'UNMAP')
    const gls = Buffer.alloc(16)
    gls[0] = 0x9e
    gls[1] = 0x12
    gls.writeBigUInt64BE(BigInt(lbppb + 1), 2)
    gls.writeUInt32BE(24, 10)
    const st = good(await command(conn, gls, { readLength: 24 }), 'GET LBA STATUS').data!
    expect(Number(st.readBigUInt64BE(8)), 'first descriptor starts at the requested LBA (SBC-4)').toBe(lbppb + 1)
    expect(st[20]! & 0x0f, 'and is mapped').toBe(0)
    // Sanitize.Reset: one OVERWRITE pass (IMMED=0), timed.
    const { cdb, dataOut } = overwriteCommand(blockSize, 0x5a)
    const t0 = performance.now()
    good(await command(conn, cdb, { dataOut, timeoutMs: 60_000 }), 'SANITIZE OVERWRITE')
    const overwriteMs = performance.now() - t0
    const last = good(await command(conn, cdbRead16(cap.readBigUInt64BE(0), 1), { readLength: blockSize }), 'READ(16)').data!
    expect(last.every((x) => x === 0x5a), 'the last block holds the pattern').toBe(true)
    return { lbppb, overwriteMs, lunBytes }
  } finally {
    await conn.close().catch(() => undefined)
  }
}

interface SuiteRun {
  out: string
  report: SuiteReport
  seconds: string
  failed: TestOutcome[]
  skipped: TestOutcome[]
  clean: number
  /** Passing tests that logged "[FAILED]" lines. */
  logged: TestOutcome[]
}

async function runSuite(args: string[], timeoutMs: number): Promise<SuiteRun> {
  const t0 = Date.now()
  const r = await execa('iscsi-test-cu', args, { reject: false, all: true, timeout: timeoutMs })
  const out = r.all ?? ''
  const report = parseVerbose(out)
  const failed = report.tests.filter((t) => t.status !== 'passed')
  const skipped = report.tests.filter((t) => t.status === 'passed' && t.skips.length > 0)
  return {
    out,
    report,
    seconds: ((Date.now() - t0) / 1000).toFixed(0),
    failed,
    skipped,
    clean: report.tests.length - failed.length - skipped.length,
    logged: report.tests.filter((t) => t.failureLogs.length > 0 && t.status === 'passed'),
  }
}

/** A failed test as the assertion message shows it: its failed assertions and failure logs. */
function describeFailure(t: TestOutcome): string {
  return [t.name, ...t.asserts.map((a) => `  ${a}`), ...t.failureLogs.map((l) => `  ${l}`)].join('\n')
}

describe.skipIf(skip)('iscsi-test-cu -t ALL', () => {
  const nodes: Node[] = []
  afterAll(async () => {
    for (const n of nodes) await n.stop().catch(() => undefined)
  })

  it('passes every test; skips only for the reasons explained; logs failures only where the suite must', async () => {
    const node = await startConformanceNode({ removable: true })
    nodes.push(node)
    const run = await runSuite(['-d', '-S', '-v', '-t', 'ALL', node.url, node.url], 600_000)
    const { report, failed, skipped, logged } = run
    console.log(
      `iscsi-test-cu -t ALL (${node.removable ? 'removable' : 'fixed'} LUN, ${run.seconds} s): ` +
        `${report.tests.length} tests: ${run.clean} clean, ${skipped.length} skipped, ${failed.length} failed ` +
        `(${failed.map((t) => t.name).join(', ') || 'none'}); ` +
        `failures logged by passing tests in ${logged.length} (${logged.map((t) => t.name).join(', ')})\n` +
        skipped.map((t) => `  skipped ${t.name}: ${t.skips.join(' / ')}`).join('\n'),
    )
    expect(report.summary, run.out).toBeDefined()
    expect(report.tests.length).toBe(report.summary!.ran)
    // No failed test is excused.
    expect(failed.map(describeFailure), run.out).toEqual([])
    expect(report.summary!.failed, run.out).toBe(0)
    const explained = node.removable ? EXPLAINED_SKIPS : { ...EXPLAINED_SKIPS, ...FIXED_MEDIUM_SKIPS }
    expect(skipped.map((t) => [t.name, unexplained(t, explained)]).filter(([, why]) => why !== undefined)).toEqual([])
    // Every explained skip happens: a skip that went away must leave the table and the README.
    expect(skipped.map((t) => t.name).sort()).toEqual(Object.keys(explained).sort())
    if (node.removable) expect(skipped.length).toBeLessThanOrEqual(12)
    expect(logged.map((t) => t.name).filter((n) => INHERENT_FAILURE_LOGS[n] === undefined)).toEqual([])
    expect(report.strayFailureLogs).toEqual([])

    // The reasons hold for the target itself, not only for what the suite printed.
    const probe = await probeDefaults(node)
    console.log(`probe of the default LUN: ${probe.lbppb} logical block(s) per physical block; SANITIZE OVERWRITE ` +
      `SUPPORT ${probe.overwriteSupport}, refused with ${JSON.stringify(probe.refusal)}; BLOCK ERASE SUPPORT ${probe.blockEraseSupport}`)
    expect(probe.lbppb).toBe(1)
    expect(probe.overwriteSupport, 'REPORT SUPPORTED OPERATION CODES: OVERWRITE not supported').toBe(1)
    expect(probe.blockEraseSupport, 'BLOCK ERASE supported as the standard says').toBe(3)
    expect(probe.refusal).toEqual({ key: 0x05, asc: 0x24, ascq: 0x00, fieldPointer: 1, bitPointer: 4 })
  }, 660_000)

  it(`with ${COMPANION_CONFIG} the tests the main run skips for want of them pass`, async () => {
    const node = await startConformanceNode({ physicalBlockSize: 4096, sanitizeOverwrite: true })
    nodes.push(node)
    // -t takes a comma-separated list of FAMILY.SUITE.TEST patterns.
    const list = COMPANION_TESTS.map((t) => `ALL.${t}`).join(',')
    const run = await runSuite(['-d', '-S', '-v', '-t', list, node.url, node.url], 300_000)
    const { report } = run
    console.log(
      `iscsi-test-cu companion run (${COMPANION_CONFIG}, ${run.seconds} s): ${report.tests.length} tests: ` +
        `${run.clean} clean, ${run.skipped.length} skipped, ${run.failed.length} failed\n` +
        run.skipped.map((t) => `  skipped part of ${t.name}: ${t.skips.join(' / ')}`).join('\n'),
    )
    expect(report.summary, run.out).toEqual({ ran: COMPANION_TESTS.length, passed: COMPANION_TESTS.length, failed: 0 })
    expect(
      report.tests.map((t) => [t.name, t.status, t.failureLogs]).sort(),
      run.out,
    ).toEqual(COMPANION_TESTS.map((t) => [t, 'passed', []]).sort())
    // The only skip lines left are the CRYPTO ERASE parts of the two SANITIZE tests that check every action.
    expect(report.tests.flatMap((t) => t.skips.map((l) => [t.name, l])).filter(([, l]) => !NO_CRYPTO_ERASE.test(l!))).toEqual([])
    expect(run.skipped.map((t) => t.name).sort()).toEqual(['Sanitize.Readonly', 'Sanitize.Reservations'])
    expect(report.strayFailureLogs).toEqual([])

    const probe = await probeCompanion(node)
    const bytesPerMs = probe.lunBytes / probe.overwriteMs
    const resetNeedsGiB = (bytesPerMs * 4000) / 1024 ** 3
    console.log(
      `probe of the companion LUN: ${probe.lbppb} logical blocks per physical block, GET LBA STATUS starts at the requested LBA; ` +
        `SANITIZE OVERWRITE of ${probe.lunBytes / 1024 ** 2} MiB took ${probe.overwriteMs.toFixed(0)} ms, so Sanitize.Reset ` +
        `(an OVERWRITE still running after 4 s) would need a LUN of about ${resetNeedsGiB.toFixed(0)} GiB`,
    )
    expect(probe.lbppb).toBe(8)
    expect(probe.overwriteMs, 'Sanitize.Reset cannot be met by a LUN of this size').toBeLessThan(3000)
  }, 360_000)

  it('a read-only LUN passes ReadOnly (the one test the writable LUN skips for want of write protection)', async () => {
    const node = await startConformanceNode({ readOnly: true })
    nodes.push(node)
    const r = await execa('iscsi-test-cu', ['-d', '-v', '-t', 'ALL.ReadOnly', node.url], { reject: false, all: true, timeout: 120_000 })
    const report = parseVerbose(r.all ?? '')
    expect(report.tests.map((t) => [t.name, t.status, t.skips.length, t.failureLogs.length]), r.all).toEqual([
      ['ReadOnly.ReadOnlySBC', 'passed', 0, 0],
    ])
  }, 150_000)

  it('the parser attributes skips, failure logs and failed assertions to their test, and stray failures to none', () => {
    const out = [
      'Suite: Inquiry',
      '  Test: Standard ...passed',
      '  Test: BlockLimits ...    [SKIPPED] Logical unit is fully provisioned. Skipping test',
      'passed',
      '  Test: Other ...    [FAILED] READ10 failed',
      'FAILED',
      '    1. test.c:1  - CU_ASSERT',
      '    2. test.c:7  - CU_FAIL("x")',
      '  Test: Last ...passed    [FAILED] PRIN command: failed with sense.',
      'Run Summary:    Type  Total    Ran Passed Failed Inactive',
      '               tests      3      3      2      1        0',
    ].join('\n')
    const r = parseVerbose(out)
    expect(r.tests.map((t) => [t.name, t.status, t.skips.length, t.failureLogs.length, t.asserts])).toEqual([
      ['Inquiry.Standard', 'passed', 0, 0, []],
      ['Inquiry.BlockLimits', 'passed', 1, 0, []],
      ['Inquiry.Other', 'FAILED', 0, 1, ['test.c:1 - CU_ASSERT', 'test.c:7 - CU_FAIL("x")']],
      ['Inquiry.Last', 'passed', 0, 0, []],
    ])
    expect(r.strayFailureLogs).toEqual(['[FAILED] PRIN command: failed with sense.'])
    expect(r.summary).toEqual({ ran: 3, passed: 2, failed: 1 })
  })

  it('a skip is explained only by its recorded reason; the companion tests are the ones the main run sends there', () => {
    const outcome = (name: string, skips: string[]) => ({ name, status: 'passed' as const, skips, failureLogs: [], asserts: [] })
    const lbppb = '[SKIPPED] LBPPB < 2. Skipping test'
    const overwrite = '[SKIPPED] SANITIZE OVERWRITE is not implemented according to REPORT_SUPPORTED_OPCODES.'
    const crypto = '[SKIPPED] SANITIZE CRYPTO_ERASE is not implemented according to REPORT_SUPPORTED_OPCODES.'
    expect(unexplained(outcome('WriteSame10.UnmapUnaligned', [lbppb]), EXPLAINED_SKIPS)).toBeUndefined()
    expect(unexplained(outcome('WriteSame10.UnmapUnaligned', ['[SKIPPED] Logical unit is fully provisioned.']), EXPLAINED_SKIPS)).toMatch(/another reason/)
    expect(unexplained(outcome('Sanitize.Readonly', [overwrite, crypto]), EXPLAINED_SKIPS)).toBeUndefined()
    expect(unexplained(outcome('Sanitize.Overwrite', [crypto]), EXPLAINED_SKIPS)).toMatch(/another reason/)
    expect(unexplained(outcome('Sanitize.BlockErase', [overwrite]), EXPLAINED_SKIPS)).toBe('no reason recorded')
    expect(unexplained(outcome('toString', [overwrite]), EXPLAINED_SKIPS)).toBe('no reason recorded')
    for (const t of COMPANION_TESTS) expect(EXPLAINED_SKIPS[t]?.reason, t).toContain(`companion run with ${COMPANION_CONFIG}`)
    expect(Object.keys(EXPLAINED_SKIPS)).toHaveLength(11)
  })
})
