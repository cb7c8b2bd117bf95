#!/usr/bin/env node
// Summarizes a V8 .cpuprofile (node --cpu-prof) by self time: the functions the CPU was in.
//
//   node scripts/cpuprofile-top.mjs PROFILE.cpuprofile [--top N] [--json] [--callers NAME]
//
// --callers NAME: instead, where the self time of the functions named NAME comes from: the
// heaviest call chains (6 frames up), with their share.
//
// Self time of a function = the sampled time with that function on top of the stack (summed
// over every call site); total = the sampled time with it anywhere on the stack (once per
// sample, so recursion is not counted twice). Percentages are of the busy time: (idle) is left
// out and shown apart. Locations in compiled files (dist/…) are mapped back to the TypeScript
// source through their .js.map when there is one.
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { relative, resolve, dirname } from 'node:path'

function usage(code) {
  process.stderr.write('usage: node scripts/cpuprofile-top.mjs PROFILE.cpuprofile [--top N] [--json] [--callers NAME]\n')
  process.exit(code)
}

const args = process.argv.slice(2)
let file
let top = 10
let json = false
let callers
for (let i = 0; i < args.length; i++) {
  const a = args[i]
  if (a === '--top') top = Number(args[++i])
  else if (a === '--json') json = true
  else if (a === '--callers') callers = args[++i]
  else if (a === '-h' || a === '--help') usage(0)
  else if (a.startsWith('-')) usage(2)
  else file = a
}
if (!file || !Number.isInteger(top) || top < 1) usage(2)

const profile = JSON.parse(readFileSync(file, 'utf8'))
const { nodes, samples, timeDeltas } = profile
const byId = new Map(nodes.map((n) => [n.id, n]))
const parent = new Map()
for (const n of nodes) for (const c of n.children ?? []) parent.set(c, n.id)

// ---- source maps: generated (line, column) → original, for files that have a .js.map ----------
const B64 = new Map([...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].map((c, i) => [c, i]))
function decodeVlq(segment) {
  const out = []
  let value = 0
  let shift = 0
  for (const ch of segment) {
    const d = B64.get(ch)
    value += (d & 31) << shift
    if (d & 32) shift += 5
    else {
      out.push(value & 1 ? -(value >>> 1) : value >>> 1)
      value = 0
      shift = 0
    }
  }
  return out
}
const maps = new Map()
function sourceMapOf(path) {
  if (maps.has(path)) return maps.get(path)
  let map
  try {
    const raw = JSON.parse(readFileSync(`${path}.map`, 'utf8'))
    const lines = []
    let src = 0
    let oLine = 0
    let oCol = 0
    for (const line of raw.mappings.split(';')) {
      const segs = []
      let gCol = 0
      for (const seg of line.split(',')) {
        if (!seg) continue
        const v = decodeVlq(seg)
        gCol += v[0]
        if (v.length >= 4) {
          src += v[1]
          oLine += v[2]
          oCol += v[3]
          segs.push([gCol, src, oLine, oCol])
        }
      }
      lines.push(segs)
    }
    map = { lines, sources: raw.sources.map((s) => resolve(dirname(path), raw.sourceRoot ?? '', s)) }
  } catch {
    map = undefined
  }
  maps.set(path, map)
  return map
}
function original(path, line, column) {
  const map = sourceMapOf(path)
  const segs = map?.lines[line]
  if (!segs || segs.length === 0) return undefined
  let best = segs[0]
  for (const s of segs) if (s[0] <= column) best = s
  return { path: map.sources[best[1]], line: best[2] }
}

const cwd = process.cwd()
function where(cf) {
  if (!cf.url) return ''
  let path = cf.url
  if (path.startsWith('file://')) path = fileURLToPath(path)
  else if (!path.startsWith('/')) return `${cf.url}:${cf.lineNumber + 1}`
  const o = existsSync(`${path}.map`) ? original(path, cf.lineNumber, cf.columnNumber) : undefined
  const shown = (p) => (p.startsWith(cwd) ? relative(cwd, p) : p.replace(/^.*\/node_modules\//, 'node_modules/'))
  return o ? `${shown(o.path)}:${o.line + 1}` : `${shown(path)}:${cf.lineNumber + 1}`
}
function keyOf(n) {
  const cf = n.callFrame
  return `${cf.functionName || '(anonymous)'}\t${cf.url}\t${cf.lineNumber}\t${cf.columnNumber}`
}

// ---- self and total time per function -----------------------------------------------------------
const stats = new Map()
const stat = (n) => {
  const k = keyOf(n)
  let s = stats.get(k)
  if (!s) stats.set(k, (s = { name: n.callFrame.functionName || '(anonymous)', where: where(n.callFrame), selfUs: 0, totalUs: 0 }))
  return s
}
let allUs = 0
let idleUs = 0
for (let i = 0; i < samples.length; i++) {
  const dt = Math.max(0, timeDeltas[i] ?? 0)
  const leaf = byId.get(samples[i])
  if (!leaf) continue
  allUs += dt
  if (leaf.callFrame.functionName === '(idle)') {
    idleUs += dt
    continue
  }
  stat(leaf).selfUs += dt
  const seen = new Set()
  for (let id = leaf.id; id !== undefined; id = parent.get(id)) {
    const n = byId.get(id)
    const k = keyOf(n)
    if (seen.has(k) || n.callFrame.functionName === '(root)') continue
    seen.add(k)
    stat(n).totalUs += dt
  }
}
const busyUs = allUs - idleUs
if (callers !== undefined) {
  const chains = new Map()
  let sum = 0
  for (let i = 0; i < samples.length; i++) {
    const leaf = byId.get(samples[i])
    if (!leaf || (leaf.callFrame.functionName || '(anonymous)') !== callers) continue
    const dt = Math.max(0, timeDeltas[i] ?? 0)
    sum += dt
    const chain = []
    for (let id = parent.get(leaf.id); id !== undefined && chain.length < 6; id = parent.get(id)) {
      const n = byId.get(id)
      if (n.callFrame.functionName === '(root)') break
      chain.push(`${n.callFrame.functionName || '(anonymous)'} ${where(n.callFrame)}`)
    }
    const k = chain.join('\n      < ')
    chains.set(k, (chains.get(k) ?? 0) + dt)
  }
  process.stdout.write(`${callers}: ${(sum / 1000).toFixed(1)} ms self (${((100 * sum) / busyUs).toFixed(1)}% of busy)\n`)
  for (const [k, us] of [...chains].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`  ${((100 * us) / sum).toFixed(1).padStart(5)}%  < ${k}\n`)
  }
  process.exit(0)
}
const rows = [...stats.values()].filter((s) => s.selfUs > 0).sort((a, b) => b.selfUs - a.selfUs).slice(0, top)
if (json) {
  process.stdout.write(`${JSON.stringify({ profile: file, sampledMs: allUs / 1000, idleMs: idleUs / 1000, busyMs: busyUs / 1000, top: rows.map((r) => ({ ...r, selfMs: r.selfUs / 1000, totalMs: r.totalUs / 1000, selfPct: (100 * r.selfUs) / busyUs })) }, null, 2)}\n`)
} else {
  const pct = (us) => `${((100 * us) / busyUs).toFixed(1)}%`
  process.stdout.write(`${file}: ${(allUs / 1e6).toFixed(2)} s sampled, busy ${(busyUs / 1e6).toFixed(2)} s, idle ${(idleUs / 1e6).toFixed(2)} s\n`)
  const table = [['#', 'self ms', 'self', 'total', 'function', 'where'], ...rows.map((r, i) => [String(i + 1), (r.selfUs / 1000).toFixed(1), pct(r.selfUs), pct(r.totalUs), r.name, r.where])]
  const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)))
  for (const row of table) process.stdout.write(`${row.map((cell, c) => (c < 4 ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd()}\n`)
}
