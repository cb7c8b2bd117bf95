// libiscsi's conformance suite, iscsi-test-cu, family by family against a node.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execa } from 'execa'
import { missingTools } from '../helpers/tools.js'
import { startNode, type RunningNode } from '../helpers/node-process.js'

const skip = missingTools('iscsi-test-cu')

/** The families the engine must pass with no failure (issue: the engine). */
const FAMILIES = [
  'SCSI.Mandatory', 'SCSI.Inquiry', 'SCSI.TestUnitReady', 'SCSI.ReadCapacity10', 'SCSI.ReadCapacity16',
  'SCSI.Read6', 'SCSI.Read10', 'SCSI.Read12', 'SCSI.Read16', 'SCSI.Write10', 'SCSI.Write12', 'SCSI.Write16',
  'SCSI.Verify10', 'SCSI.Verify16', 'SCSI.WriteVerify10', 'SCSI.WriteVerify16', 'SCSI.ModeSense6',
  'iSCSI.iSCSIcmdsn', 'iSCSI.iSCSIdatasn', 'iSCSI.iSCSIResiduals', 'iSCSI.iSCSITMF',
]

interface Summary {
  ran: number
  passed: number
  failed: number
}

/** CUnit's "Run Summary" tests row: Total Ran Passed Failed Inactive. */
export function parseCunitSummary(output: string): Summary | undefined {
  const m = /^\s+tests\s+(\d+)\s+(\d+)\s+(\d+|n\/a)\s+(\d+)\s+(\d+)/m.exec(output)
  if (!m) return undefined
  return { ran: Number(m[2]), passed: Number(m[3]), failed: Number(m[4]) }
}

describe.skipIf(skip)('iscsi-test-cu', () => {
  let node: RunningNode
  const totals: Summary = { ran: 0, passed: 0, failed: 0 }
  beforeAll(async () => {
    node = await startNode({ sizeMiB: 64, iqn: 'iqn.2026-11.io.iscsi-ha:conformance' })
  })
  afterAll(async () => {
    console.log(`iscsi-test-cu: ${totals.ran} ran, ${totals.passed} passed, ${totals.failed} failed`)
    await node?.cleanup()
  })

  it.each(FAMILIES)('%s passes with no failure', async (family) => {
    const r = await execa('iscsi-test-cu', ['-d', '-n', '-t', family, node.url()], { reject: false, all: true, timeout: 120_000 })
    const summary = parseCunitSummary(r.all ?? '')
    expect(summary, r.all).toBeDefined()
    totals.ran += summary!.ran
    totals.passed += summary!.passed
    totals.failed += summary!.failed
    expect(summary!.ran, r.all).toBeGreaterThan(0)
    expect(summary!.failed, r.all).toBe(0)
    expect(summary!.passed, r.all).toBe(summary!.ran)
  }, 130_000)

  it('the summary parser sees a failure when there is one', () => {
    const failing = 'Run Summary:    Type  Total    Ran Passed Failed Inactive\n              suites      1      1    n/a      0        0\n               tests     10     10      4      6        0\n'
    expect(parseCunitSummary(failing)).toEqual({ ran: 10, passed: 4, failed: 6 })
  })
})
