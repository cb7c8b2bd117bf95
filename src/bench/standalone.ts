// A standalone controller on loopback for benchmarks: one target, LUN 0 backed by a file (an
// existing one, e.g. prefilled, or a new sparse one of sizeMiB), ports picked free.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ControllerProcess } from './controller-process.js'
import { freePort } from './ports.js'

export const BENCH_IQN = 'iqn.2026-11.io.iscsi-ha:bench'

export interface StandaloneNode {
  dir: string
  url: string
  admin: string
  process: ControllerProcess
  cleanup(): Promise<void>
}

export async function startStandalone(opts: { lunPath?: string; sizeMiB?: number; host?: string; dir?: string; nodeArgs?: string[]; env?: Record<string, string> } = {}): Promise<StandaloneNode> {
  const ownDir = opts.dir === undefined
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'iscsi-ha-bench-node-')))
  const host = opts.host ?? '127.0.0.1'
  const port = await freePort(host)
  const adminPort = await freePort('127.0.0.1')
  const lunPath = opts.lunPath ?? join(dir, 'lun0.img')
  const size = existsSync(lunPath) ? '' : `\n        size: ${opts.sizeMiB ?? 1024}MiB`
  const yaml = `targets:
  - iqn: ${BENCH_IQN}
    luns:
      - lun: 0
        path: ${JSON.stringify(lunPath)}${size}
nodes:
  a:
    portal: ${host}:${port}
    admin: 127.0.0.1:${adminPort}
`
  const configPath = join(dir, 'standalone.yaml')
  await writeFile(configPath, yaml)
  const proc = new ControllerProcess('standalone', {
    configPath, node: 'a', cwd: dir, ...(opts.nodeArgs ? { nodeArgs: opts.nodeArgs } : {}), ...(opts.env ? { env: opts.env } : {}),
  })
  const cleanup = async (): Promise<void> => {
    await proc.stop()
    if (ownDir) await rm(dir, { recursive: true, force: true })
  }
  try {
    await proc.waitForLog('"msg":"node ready"', 20_000)
  } catch (err) {
    await cleanup()
    throw err
  }
  return { dir, url: `iscsi://${host}:${port}/${BENCH_IQN}/0`, admin: `127.0.0.1:${adminPort}`, process: proc, cleanup }
}
