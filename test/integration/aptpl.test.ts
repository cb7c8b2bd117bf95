// APTPL (SPC-4 §5.14.5): a persistent reservation registered with "activate persist through
// power loss" survives a restart of the controller, whether it stopped cleanly (SIGTERM) or was
// killed (SIGKILL) at once after the RESERVE completed: the state is on disk before GOOD.
import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { startNode, type RunningNode } from '../helpers/node-process.js'
import { restartNode, type RestartedNode } from '../helpers/restart-node.js'
import {
  IscsiInitiatorConnection,
  PrInServiceAction,
  PrOutServiceAction,
  PrReservationType,
  SCSI_CHECK_CONDITION,
  SCSI_GOOD,
  SCSI_RESERVATION_CONFLICT,
  cdbPersistentReserveIn,
  cdbPersistentReserveOut,
  cdbRead16,
  cdbWrite16,
  parsePrReadKeys,
  parsePrReadReservation,
  prOutParameters,
  type ScsiCallOptions,
  type ScsiResult,
} from '../../src/initiator/index.js'

const HOLDER = 'iqn.2026-11.io.iscsi-ha:aptpl-holder'
const OTHER = 'iqn.2026-11.io.iscsi-ha:aptpl-other'
const HOLDER_ISID = '400000a0b0c1'
const KEY = 0x1234_5678_9abc_def0n

const open: IscsiInitiatorConnection[] = []
let node: RunningNode | undefined
let again: RestartedNode | undefined

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)))
  await again?.stop('SIGKILL').catch(() => undefined)
  again = undefined
  await node?.cleanup()
  node = undefined
})

function hostPort(portal: string): { host: string; port: number } {
  const i = portal.lastIndexOf(':')
  return { host: portal.slice(0, i), port: Number(portal.slice(i + 1)) }
}

async function connect(n: RunningNode, initiatorName: string, isid?: string): Promise<IscsiInitiatorConnection> {
  const conn = new IscsiInitiatorConnection({ ...hostPort(n.portal), initiatorName, targetName: n.iqn, ...(isid ? { isid } : {}) })
  open.push(conn)
  await conn.connect()
  await conn.login()
  return conn
}

/** A command as a host sends it: a unit attention (the new nexus's power-on) is retried. */
async function command(conn: IscsiInitiatorConnection, cdb: Buffer, opts: ScsiCallOptions = {}): Promise<ScsiResult> {
  for (let attempt = 0; ; attempt++) {
    const r = await conn.scsi(cdb, opts)
    if (r.status === SCSI_CHECK_CONDITION && r.sense?.key === 0x06 && attempt < 4) continue
    return r
  }
}

async function prOut(conn: IscsiInitiatorConnection, action: number, type: number, params: Parameters<typeof prOutParameters>[0]): Promise<ScsiResult> {
  return command(conn, cdbPersistentReserveOut(action, type), { dataOut: prOutParameters(params) })
}

async function prIn(conn: IscsiInitiatorConnection, action: number): Promise<Buffer> {
  const r = await command(conn, cdbPersistentReserveIn(action, 1024), { readLength: 1024 })
  expect(r.status).toBe(SCSI_GOOD)
  return r.data ?? Buffer.alloc(0)
}

describe('APTPL: persistent reservations survive a restart of the controller', () => {
  it.each(['SIGTERM', 'SIGKILL'] as const)('registered with APTPL=1 and reserved, then %s and start again', async (signal) => {
    node = await startNode({ sizeMiB: 16, iqn: 'iqn.2026-11.io.iscsi-ha:aptpl' })
    const holder = await connect(node, HOLDER, HOLDER_ISID)
    expect((await prOut(holder, PrOutServiceAction.Register, 0, { serviceActionKey: KEY, aptpl: true })).status).toBe(SCSI_GOOD)
    expect((await prOut(holder, PrOutServiceAction.Reserve, PrReservationType.WriteExclusive, { key: KEY })).status).toBe(SCSI_GOOD)
    // GOOD was returned: from here on the state must already be on disk.
    const exitCode = await node.stop(signal)
    if (signal === 'SIGTERM') expect(exitCode).toBe(0)
    await access(join(node.dir, 'lun0.img.pr.json'))
    open.splice(0).forEach((c) => c.destroy())

    again = await restartNode(node)
    const other = await connect(node, OTHER)
    const keys = parsePrReadKeys(await prIn(other, PrInServiceAction.ReadKeys))
    expect(keys.keys).toEqual([KEY])
    const res = parsePrReadReservation(await prIn(other, PrInServiceAction.ReadReservation))
    expect(res.reservation).toEqual({ key: KEY, scope: 0, type: PrReservationType.WriteExclusive })
    expect(res.generation).toBe(keys.generation)

    // Write Exclusive: another initiator still reads, but its writes conflict.
    const block = Buffer.alloc(512, 0xab)
    expect((await command(other, cdbWrite16(0, 1), { dataOut: block })).status).toBe(SCSI_RESERVATION_CONFLICT)
    expect((await command(other, cdbRead16(0, 1), { readLength: 512 })).status).toBe(SCSI_GOOD)

    // The holder, on the same initiator port, writes as before the restart.
    const back = await connect(node, HOLDER, HOLDER_ISID)
    expect((await command(back, cdbWrite16(0, 1), { dataOut: block })).status).toBe(SCSI_GOOD)
    const read = await command(other, cdbRead16(0, 1), { readLength: 512 })
    expect(read.data).toEqual(block)
  }, 60_000)

  it('without APTPL the same reservation ends with the controller (the restart is real)', async () => {
    node = await startNode({ sizeMiB: 16, iqn: 'iqn.2026-11.io.iscsi-ha:aptpl' })
    const holder = await connect(node, HOLDER, HOLDER_ISID)
    expect((await prOut(holder, PrOutServiceAction.Register, 0, { serviceActionKey: KEY })).status).toBe(SCSI_GOOD)
    expect((await prOut(holder, PrOutServiceAction.Reserve, PrReservationType.WriteExclusive, { key: KEY })).status).toBe(SCSI_GOOD)
    await node.stop('SIGKILL')
    open.splice(0).forEach((c) => c.destroy())

    again = await restartNode(node)
    const other = await connect(node, OTHER)
    expect(parsePrReadKeys(await prIn(other, PrInServiceAction.ReadKeys)).keys).toEqual([])
    expect(parsePrReadReservation(await prIn(other, PrInServiceAction.ReadReservation)).reservation).toBeUndefined()
    expect((await command(other, cdbWrite16(0, 1), { dataOut: Buffer.alloc(512) })).status).toBe(SCSI_GOOD)
  }, 60_000)
})
