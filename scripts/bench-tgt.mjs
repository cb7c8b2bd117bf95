#!/usr/bin/env node
// Side by side with tgt on this machine, same client, one run (issue 5). Run through
// scripts/bench-tgt.sh, which installs the tools and builds first.
//
//   node scripts/bench-tgt.mjs [--quick] [--seconds N] [--rounds N] [--size-mib N]
//                              [--workloads IDS] [--json FILE] [--profile | --profile-pair] [--profile-seconds N]
//
// Starts, in a fresh directory under $TMPDIR (one file system for all LUNs):
//   tgt    tgtd -f on 127.0.0.1:<free port>, its own management port, LUN 1 on tgt.img
//   node   a standalone iscsi-ha node on 127.0.0.1:<free port>, LUN 0 on node.img
//   pair   an iscsi-ha loopback pair, hosts on the service address, LUN 0 on pair.img (shared)
// with byte-identical LUN files of --size-mib filled with random data, then runs
//   iscsi-ha bench <node> <pair> --vs <tgt> --label node --label pair --label tgt --pid …
// (interleaved: node, pair, tgt for each workload and round), prints the table with ratios to
// tgt, the issue's goals, and peak resident memory; stops everything by pid and removes the
// directory (also on Ctrl-C).
//
// --profile instead runs only the node under `node --cpu-prof`, drives 4K QD32 writes at it
// for --profile-seconds, stops it cleanly (the profile is written at exit) and prints the top
// 10 functions by self time (scripts/cpuprofile-top.mjs); the profile is kept.
// --profile-pair does the same for both controllers of a loopback pair (writes mirrored).
import { execa } from 'execa'
import { mkdtemp, readdir, rm, copyFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startStandalone } from '../dist/bench/standalone.js'
import { startPair } from '../dist/bench/pair.js'
import { startTgt } from '../dist/bench/tgt.js'
import { freePort } from '../dist/bench/ports.js'
import { copyLunFile, writeFilledFile } from '../dist/bench/lun-file.js'
import { benchNotes, benchTable } from '../dist/bench/table.js'
import { checkGoals, goalLines } from '../dist/bench/goals.js'
import { rssLines } from '../dist/bench/command-support.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const CLI = join(ROOT, 'bin/run.js')

function parseArgs(argv) {
  const o = { quick: false, seconds: undefined, rounds: undefined, sizeMiB: undefined, workloads: undefined, json: undefined, profile: false, profilePair: false, profileSeconds: 15 }
  const num = (i) => {
    const v = Number(argv[i])
    if (!Number.isInteger(v) || v < 1) fail(`${argv[i - 1]} needs a positive integer`, 2)
    return v
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--quick') o.quick = true
    else if (a === '--seconds') o.seconds = num(++i)
    else if (a === '--rounds') o.rounds = num(++i)
    else if (a === '--size-mib') o.sizeMiB = num(++i)
    else if (a === '--workloads') o.workloads = argv[++i]
    else if (a === '--json') o.json = argv[++i]
    else if (a === '--profile') o.profile = true
    else if (a === '--profile-pair') { o.profile = true; o.profilePair = true }
    else if (a === '--profile-seconds') o.profileSeconds = num(++i)
    else if (a === '-h' || a === '--help') {
      process.stdout.write(readUsage())
      process.exit(0)
    } else fail(`unknown argument ${a}`, 2)
  }
  // Default: every workload, 2 rounds of 2 s (about 3 minutes); quick: the headline rows, 1 round.
  o.seconds ??= o.quick ? 1 : 2
  o.rounds ??= o.quick ? 1 : 2
  o.sizeMiB ??= o.quick ? 256 : 1024
  return o
}

function readUsage() {
  return 'usage: scripts/bench-tgt.sh [--quick] [--seconds N] [--rounds N] [--size-mib N] [--workloads IDS] [--json FILE] [--profile | --profile-pair] [--profile-seconds N]\n'
}

function fail(message, code = 3) {
  process.stderr.write(`bench-tgt: ${message}\n`)
  process.exit(code)
}

const say = (line) => process.stderr.write(`bench-tgt: ${line}\n`)

const opts = parseArgs(process.argv.slice(2))
const dir = await mkdtemp(join(tmpdir(), 'iscsi-ha-bench-tgt-'))
const cleanups = []
let cleaning
async function cleanup() {
  cleaning ??= (async () => {
    for (const c of cleanups.reverse()) await c().catch((err) => say(`cleanup: ${err.message}`))
    await rm(dir, { recursive: true, force: true })
  })()
  return cleaning
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    say(`${sig}: stopping everything`)
    void cleanup().then(() => process.exit(130))
  })
}

try {
  if (opts.profile) await profile()
  else await compare()
} catch (err) {
  await cleanup()
  fail(err instanceof Error ? err.message : String(err))
}
await cleanup()

async function compare() {
  const bytes = opts.sizeMiB * 1024 * 1024
  say(`LUN files of ${opts.sizeMiB} MiB (random data, identical) in ${dir}`)
  const base = join(dir, 'tgt.img')
  await writeFilledFile(base, bytes)
  await copyLunFile(base, join(dir, 'node.img'))
  await copyLunFile(base, join(dir, 'pair.img'))

  const tgt = await startTgt({ lunPath: base, port: await freePort('127.0.0.1') })
  cleanups.push(() => tgt.stop())
  say(`tgt: ${tgt.url} (tgtd pid ${tgt.pid})`)
  const node = await startStandalone({ lunPath: join(dir, 'node.img'), dir: await mkdtemp(join(dir, 'node-')) })
  cleanups.push(() => node.cleanup())
  say(`node: ${node.url} (pid ${node.process.pid})`)
  const serviceHost = `127.0.0.${100 + Math.floor(Math.random() * 100)}`
  const pair = await startPair({ serviceHost, lunPath: join(dir, 'pair.img') })
  cleanups.push(() => pair.cleanup())
  const roles = await pair.waitMirrored()
  const primary = pair.nodes[roles.primary].process
  const secondary = pair.nodes[roles.secondary].process
  say(`pair: ${pair.url} (primary ${roles.primary} pid ${primary.pid}, secondary ${roles.secondary} pid ${secondary.pid}, writes mirrored)`)

  const args = [
    CLI, 'bench', node.url, pair.url, '--vs', tgt.url, '--label', 'node', '--label', 'pair', '--label', 'tgt',
    // The pair's memory: "pair" is the node that is primary at the start, "pair-2" the other.
    '--pid', `node=${node.process.pid}`, '--pid', `pair=${primary.pid}`, '--pid', `pair-2=${secondary.pid}`, '--pid', `tgt=${tgt.pid}`,
    '--seconds', String(opts.seconds), '--rounds', String(opts.rounds), '--timeout', '90000', '--json',
    ...(opts.workloads ? ['--workloads', opts.workloads] : opts.quick ? ['--quick'] : []),
  ]
  say(`iscsi-ha bench: ${opts.quick ? 'quick' : 'all'} workloads, ${opts.rounds} round(s) of ${opts.seconds} s, interleaved node, pair, tgt`)
  const r = await execa(process.execPath, args, { reject: false, stdin: 'ignore', stderr: 'inherit', cleanup: true })
  let report
  try {
    report = JSON.parse(String(r.stdout))
  } catch {
    throw new Error(`iscsi-ha bench exited with ${r.exitCode} and no JSON report: ${String(r.stdout).slice(0, 500)}`)
  }
  if (report.error) throw new Error(`iscsi-ha bench: ${report.error.message}`)
  if (opts.json) {
    const { writeFile } = await import('node:fs/promises')
    await writeFile(opts.json, `${JSON.stringify(report, null, 2)}\n`)
  }
  const machine = await describeMachine()
  process.stdout.write(`\niscsi-ha vs tgt ${machine}\n`)
  process.stdout.write(`node = standalone controller; pair = loopback HA pair through the service address (writes mirrored); tgt = tgtd ${await tgtVersion()}\n\n`)
  process.stdout.write(`${benchTable(report)}\n\n`)
  for (const line of benchNotes(report)) process.stdout.write(`${line}\n`)
  for (const line of rssLines(report.rss ?? [])) process.stdout.write(`${line}\n`)
  process.stdout.write('\ngoals (issue 5):\n')
  for (const line of goalLines(checkGoals(report, { node: 'node', pair: 'pair', tgt: 'tgt' }, report.rss ?? []))) process.stdout.write(`  ${line}\n`)
  // A takeover during the run (e.g. a primary that fenced itself) changes what "pair" measured.
  const after = await Promise.all([pair.nodes.a.status().catch(() => undefined), pair.nodes.b.status().catch(() => undefined)])
  const now = after.find((s) => s?.role === 'primary' && s.serving)
  const takeovers = after.map((s) => s?.lastTakeover).filter((t) => t && t.epoch > 1)
  process.stdout.write(`\npair at the start: primary ${roles.primary} (pid ${primary.pid}, "pair"), secondary ${roles.secondary} (pid ${secondary.pid}, "pair-2"); ` +
    `after the run: ${now ? `primary ${now.node}, epoch ${now.epoch}, ${now.mirrored ? 'mirrored' : 'NOT mirrored'}` : 'no primary serving'}` +
    `${takeovers.length ? `; takeovers during the run: ${takeovers.map((t) => `${t.kind} at ${t.at} (epoch ${t.epoch})`).join(', ')}` : ''}\n`)
  if (opts.json) process.stdout.write(`\nJSON report: ${opts.json}\n`)
  if (r.exitCode !== 0) process.exitCode = r.exitCode ?? 3
}

async function profile() {
  if (opts.profilePair) return profilePair()
  const profDir = join(dir, 'prof')
  const node = await startStandalone({
    sizeMiB: opts.sizeMiB, dir: await mkdtemp(join(dir, 'node-')), nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir],
  })
  cleanups.push(() => node.cleanup())
  say(`node under --cpu-prof: ${node.url} (pid ${node.process.pid}); 4K QD32 writes for ${opts.profileSeconds} s`)
  const r = await execa(process.execPath, [CLI, 'bench', node.url, '--workloads', '4k-qd32-write', '--seconds', String(opts.profileSeconds), '--pid', `node=${node.process.pid}`], {
    reject: false, stdin: 'ignore', stdout: 'inherit', stderr: 'inherit',
  })
  if (r.exitCode !== 0) throw new Error(`iscsi-ha bench exited with ${r.exitCode}`)
  await node.process.stop(10_000)
  const files = (await readdir(profDir).catch(() => [])).filter((f) => f.endsWith('.cpuprofile'))
  if (files.length === 0) throw new Error(`no profile written (node exited with ${node.process.exitSignal ?? node.process.exitCode})`)
  const kept = join(tmpdir(), `iscsi-ha-4k-qd32-write-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`)
  await copyFile(join(profDir, files[0]), kept)
  process.stdout.write('\n')
  await execa(process.execPath, [join(ROOT, 'scripts/cpuprofile-top.mjs'), kept, '--top', '10'], { stdout: 'inherit', stderr: 'inherit', cwd: ROOT })
  process.stdout.write(`\nprofile kept: ${kept} (open in Chrome DevTools > Performance, or VS Code)\n`)
}

/** Both controllers of a loopback pair under --cpu-prof, 4K QD32 writes through the service address. */
async function profilePair() {
  const profDir = join(dir, 'prof')
  const serviceHost = `127.0.0.${100 + Math.floor(Math.random() * 100)}`
  const pair = await startPair({ serviceHost, sizeMiB: opts.sizeMiB, nodeArgs: (name) => ['--cpu-prof', '--cpu-prof-dir', join(profDir, name)] })
  cleanups.push(() => pair.cleanup())
  const roles = await pair.waitMirrored()
  say(`pair under --cpu-prof: ${pair.url} (primary ${roles.primary}, secondary ${roles.secondary}); 4K QD32 writes for ${opts.profileSeconds} s`)
  const r = await execa(process.execPath, [CLI, 'bench', pair.url, '--workloads', '4k-qd32-write', '--seconds', String(opts.profileSeconds)], {
    reject: false, stdin: 'ignore', stdout: 'inherit', stderr: 'inherit',
  })
  if (r.exitCode !== 0) throw new Error(`iscsi-ha bench exited with ${r.exitCode}`)
  // The secondary first: the primary then drains to write-through before it stops.
  await pair.nodes[roles.secondary].process.stop(10_000)
  await pair.nodes[roles.primary].process.stop(10_000)
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  for (const [role, name] of [['primary', roles.primary], ['secondary', roles.secondary]]) {
    const files = (await readdir(join(profDir, name)).catch(() => [])).filter((f) => f.endsWith('.cpuprofile'))
    if (files.length === 0) throw new Error(`no profile written by the ${role} (${name})`)
    const kept = join(tmpdir(), `iscsi-ha-pair-${role}-4k-qd32-write-${stamp}.cpuprofile`)
    await copyFile(join(profDir, name, files[0]), kept)
    process.stdout.write(`\n${role} (${name}):\n`)
    await execa(process.execPath, [join(ROOT, 'scripts/cpuprofile-top.mjs'), kept, '--top', '10'], { stdout: 'inherit', stderr: 'inherit', cwd: ROOT })
    process.stdout.write(`profile kept: ${kept}\n`)
  }
}

async function describeMachine() {
  const os = await import('node:os')
  const cpus = os.cpus()
  return `on ${cpus.length} x ${cpus[0]?.model?.trim() ?? 'CPU'}, Linux ${os.release()}, Node ${process.versions.node}`
}

async function tgtVersion() {
  const r = await execa('tgtd', ['-V'], { reject: false })
  return String(r.stdout).trim() || '?'
}
