// tgt (the Linux SCSI target framework's userspace daemon) as the comparison target of
// scripts/bench-tgt.sh: tgtd in the foreground on a loopback portal and a management port of its
// own (so a system tgtd is not touched), one target with a file-backed LUN 1 (LUN 0 is tgt's
// controller), open to every initiator; stopped by its pid.
import { execa, type ResultPromise } from 'execa'

export const TGT_IQN = 'iqn.2026-11.io.iscsi-ha:bench-tgt'

export interface TgtTarget {
  pid: number
  url: string
  controlPort: number
  logs: string[]
  stop(): Promise<void>
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function tgtadm(controlPort: number, args: string[], lld = true): Promise<{ ok: boolean; output: string }> {
  const r = await execa('tgtadm', ['-C', String(controlPort), ...(lld ? ['--lld', 'iscsi'] : []), ...args], { reject: false, timeout: 10_000 })
  return { ok: r.exitCode === 0, output: `${String(r.stdout)}${String(r.stderr)}`.trim() }
}

export async function startTgt(opts: { lunPath: string; port: number; host?: string; controlPort?: number }): Promise<TgtTarget> {
  const host = opts.host ?? '127.0.0.1'
  // tgtd's management socket is named after this number; pick one a system tgtd (0) won't use.
  const controlPort = opts.controlPort ?? 100 + Math.floor(Math.random() * 900)
  const child: ResultPromise = execa('tgtd', ['-f', '-C', String(controlPort), '--iscsi', `portal=${host}:${opts.port}`], {
    reject: false, stdin: 'ignore', buffer: false, cleanup: true,
  })
  const pid = child.pid
  if (pid === undefined) throw new Error('cannot start tgtd (is tgt installed? apt-get install tgt)')
  const logs: string[] = []
  const keep = (d: Buffer): void => {
    logs.push(...d.toString().split('\n').filter((l) => l !== ''))
    if (logs.length > 200) logs.splice(0, logs.length - 200)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  let running = true
  const exited = child.then(() => {
    running = false
  })
  // tgtd ignores SIGTERM while it has targets: shut it down the way its service does (offline,
  // targets deleted, system deleted), then make sure by pid.
  const stop = async (): Promise<void> => {
    if (!running) return
    await tgtadm(controlPort, ['--mode', 'sys', '--op', 'update', '--name', 'State', '-v', 'offline'], false).catch(() => undefined)
    await tgtadm(controlPort, ['--mode', 'target', '--op', 'delete', '--force', '--tid', '1']).catch(() => undefined)
    await tgtadm(controlPort, ['--mode', 'system', '--op', 'delete'], false).catch(() => undefined)
    const timer = setTimeout(() => {
      try {
        if (running) process.kill(pid, 'SIGKILL')
      } catch {
        // gone
      }
    }, 3000)
    await exited
    clearTimeout(timer)
  }
  const fail = async (what: string): Promise<never> => {
    await stop()
    throw new Error(`tgt: ${what}${logs.length ? `; tgtd said:\n  ${logs.slice(-5).join('\n  ')}` : ''}`)
  }
  for (let i = 0; ; i++) {
    if (!running) return fail('tgtd exited while starting')
    if ((await tgtadm(controlPort, ['--mode', 'target', '--op', 'show'])).ok) break
    if (i > 100) return fail('tgtadm could not reach tgtd in 10 s')
    await sleep(100)
  }
  for (const step of [
    ['--mode', 'target', '--op', 'new', '--tid', '1', '--targetname', TGT_IQN],
    ['--mode', 'logicalunit', '--op', 'new', '--tid', '1', '--lun', '1', '--backing-store', opts.lunPath],
    ['--mode', 'target', '--op', 'bind', '--tid', '1', '--initiator-address', 'ALL'],
  ]) {
    const r = await tgtadm(controlPort, step)
    if (!r.ok) return fail(`tgtadm ${step.join(' ')}: ${r.output}`)
  }
  return { pid, url: `iscsi://${host}:${opts.port}/${TGT_IQN}/1`, controlPort, logs, stop }
}
