#!/usr/bin/env node
// Generates roff man pages for the iscsi-ha CLI from its oclif commands.
//
//   node scripts/gen-man.mjs            write man/iscsi-ha.1 and man/iscsi-ha-<command>.1
//   node scripts/gen-man.mjs --check    exit 1 listing pages that are missing, out of date or stale
//   options: --root DIR (the oclif project, default: this repository), --out DIR (default ROOT/man)
//
// The CLI must be built first (`npm run build`): commands are loaded from package.json's
// oclif.commands (./dist/commands) through @oclif/core's Config.load, exactly as the CLI sees them.
//
// What a command can give the page, besides oclif's summary/description/flags/args/examples:
//   static exitCodes = { 0: 'stopped cleanly', 2: 'the configuration is invalid' }
//     (or an array of { code, description }) → an EXIT STATUS section. Without it, a paragraph in
//     the description headed "Exit status:" (or "Exit codes:") whose lines read "<code> <meaning>"
//     is moved into EXIT STATUS.
// Pages carry no date so that regenerating them is reproducible and --check is stable.
import { existsSync } from 'node:fs'
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Config } from '@oclif/core'

const HERE = dirname(fileURLToPath(import.meta.url))

function parseArgs(argv) {
  const opts = { check: false, root: resolve(HERE, '..'), out: undefined }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--check') opts.check = true
    else if (a === '--root') opts.root = resolve(argv[++i] ?? '')
    else if (a === '--out') opts.out = resolve(argv[++i] ?? '')
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: node scripts/gen-man.mjs [--check] [--root DIR] [--out DIR]\n')
      process.exit(0)
    } else {
      process.stderr.write(`gen-man: unknown argument ${a}\n`)
      process.exit(2)
    }
  }
  opts.out ??= join(opts.root, 'man')
  return opts
}

// ---------------------------------------------------------------------------------------------
// roff escaping

/** Escapes backslashes; protects a leading '.' or "'" (control characters) with \&. */
function escLine(line) {
  const s = line.replace(/\\/g, '\\e')
  return /^[.']/.test(s) ? `\\&${s}` : s
}

/** Literal text that a reader may type (flags, commands, paths): every '-' is a minus \-. */
function lit(text) {
  return text.replace(/\\/g, '\\e').replace(/-/g, '\\-')
}

/** Prose: escape, and turn hyphens into \- inside option-like words (--config, -c). */
function prose(line) {
  const s = escLine(line)
  return s.replace(/(^|[\s(\[`'"=,])(--?[A-Za-z0-9][\w-]*)/g, (_m, pre, flag) => pre + flag.replace(/-/g, '\\-'))
}

const bold = (text) => `\\fB${text}\\fR`
const ital = (text) => `\\fI${text}\\fR`

/**
 * Turns free text (oclif descriptions) into roff: blank lines separate paragraphs, "- " or "* "
 * lines are bullets (unindented lines right after one continue it), and lines indented by two or
 * more spaces are shown as typed (commands, config snippets).
 */
function textBlock(text) {
  const out = []
  let mode = null // null at the start, then 'text' | 'bullet' | 'pre'
  let gap = false // a blank line since the last content line
  const closePre = () => {
    if (mode === 'pre') out.push('.fi', '.RE')
  }
  for (const raw of String(text).replace(/\r\n/g, '\n').split('\n')) {
    const line = raw.trimEnd()
    if (line === '') {
      gap = true
      continue
    }
    // bullets start in column 0 or 1; deeper "- x" lines are part of an indented block (YAML, say)
    const bullet = /^ ?[-*] (.*)$/.exec(line)
    if (bullet) {
      closePre()
      out.push('.IP \\(bu 2', prose(bullet[1]))
      mode = 'bullet'
      gap = false
      continue
    }
    if (/^\s{2,}\S/.test(line) && !(mode === 'bullet' && !gap)) {
      if (mode === 'pre') {
        if (gap) out.push('.sp')
      } else {
        if (mode !== null) out.push('.PP')
        out.push('.RS 4', '.nf')
      }
      out.push(escLine(line.replace(/^\s{2}/, '')).replace(/-/g, '\\-'))
      mode = 'pre'
      gap = false
      continue
    }
    if (mode === 'bullet' && !gap) {
      out.push(prose(line.trim()))
      continue
    }
    closePre()
    if (mode !== null && (gap || mode !== 'text')) out.push('.PP')
    out.push(prose(line))
    mode = 'text'
    gap = false
  }
  closePre()
  return out
}

// ---------------------------------------------------------------------------------------------
// command model

function displayId(config, id) {
  const sep = config.topicSeparator ?? ':'
  return id.split(':').join(sep === ' ' ? ' ' : sep)
}

function pageName(config, id) {
  return `${config.bin}-${id.split(/[: ]/).join('-')}`
}

function template(text, config, cmd) {
  if (text === undefined || text === null) return ''
  return String(text)
    .replace(/<%=\s*config\.bin\s*%>/g, config.bin)
    .replace(/<%=\s*command\.id\s*%>/g, cmd ? displayId(config, cmd.id) : '')
}

/** Exit codes from `static exitCodes` (object or array), or from an "Exit status:" paragraph. */
function exitCodesOf(cmd, description) {
  const list = []
  const ec = cmd.exitCodes
  if (Array.isArray(ec)) {
    for (const e of ec) {
      if (Array.isArray(e)) list.push({ code: String(e[0]), text: String(e[1] ?? '') })
      else if (e && typeof e === 'object') list.push({ code: String(e.code), text: String(e.description ?? e.text ?? '') })
    }
  } else if (ec && typeof ec === 'object') {
    for (const [code, text] of Object.entries(ec)) list.push({ code, text: String(text) })
  }
  if (list.length > 0) return { codes: list, description }

  const lines = description.split('\n')
  // one line: "Exit status: 0 the node answered; 3 it could not be reached; 2 bad flags."
  const inline = lines.findIndex((l) => /^\s*exit (status|codes?)\s*:\s*\d/i.test(l))
  if (inline >= 0) {
    const items = lines[inline].replace(/^\s*exit (status|codes?)\s*:\s*/i, '').split(/;\s*/)
    const codes = []
    for (const item of items) {
      const m = /^(\d+(?:\s*[-–]\s*\d+)?|>\s*\d+)\s*[:\-–]?\s+(.*?)\.?\s*$/.exec(item.trim())
      if (!m) return { codes: [], description }
      codes.push({ code: m[1].replace(/\s+/g, ''), text: m[2] })
    }
    const rest = [...lines.slice(0, inline), ...lines.slice(inline + 1)].join('\n').replace(/\n{3,}/g, '\n\n').trim()
    return { codes, description: rest }
  }
  const start = lines.findIndex((l) => /^\s*exit (status|codes?)\s*:?\s*$/i.test(l))
  if (start < 0) return { codes: [], description }
  let end = start + 1
  const codes = []
  for (; end < lines.length; end++) {
    const m = /^\s*(\d+(?:\s*[-–]\s*\d+)?|>\s*\d+)\s*[:\-–]?\s+(.*)$/.exec(lines[end])
    if (!m) break
    codes.push({ code: m[1].replace(/\s+/g, ''), text: m[2] })
  }
  if (codes.length === 0) return { codes: [], description }
  const rest = [...lines.slice(0, start), ...lines.slice(end)].join('\n').replace(/\n{3,}/g, '\n\n').trim()
  return { codes, description: rest }
}

function valueName(name, flag) {
  if (Array.isArray(flag.helpValue)) return flag.helpValue.join('|')
  return flag.helpValue ?? (flag.options ? flag.options.join('|') : name.toUpperCase())
}

function flagLabel(name, flag) {
  const long = flag.type === 'boolean' && flag.allowNo ? `--[no-]${name}` : `--${name}`
  const parts = []
  if (flag.char) parts.push(bold(lit(`-${flag.char}`)))
  let label = bold(lit(long))
  if (flag.type === 'option') label += `=${ital(lit(valueName(name, flag)))}`
  parts.push(label)
  return parts.join(', ')
}

function synopsisFlag(name, flag) {
  let s = flag.char ? bold(lit(`-${flag.char}`)) : bold(lit(`--${name}`))
  // "\ " is a space the line is never broken at, keeping a flag next to its value
  if (flag.type === 'option') s += `\\ ${ital(lit(valueName(name, flag)))}`
  return flag.required ? s : `[${s}]`
}

function visibleFlags(cmd) {
  return Object.entries(cmd.flags ?? {}).filter(([, f]) => !f.hidden)
}

function visibleArgs(cmd) {
  return Object.entries(cmd.args ?? {}).filter(([, a]) => !a.hidden)
}

function header(title, config) {
  const version = `${config.name} ${config.version}`
  return [
    `.\\" Generated by scripts/gen-man.mjs from the oclif commands. Do not edit: run node scripts/gen-man.mjs.`,
    // groff re-enables hyphenation at each paragraph unless the HY register is 0
    '.nr HY 0',
    `.TH "${title.toUpperCase().replace(/-/g, '\\-')}" 1 "" "${lit(version)}" "${lit(config.name)} manual"`,
    // no hyphenation, ragged right: commands and page names stay whole and copyable
    '.nh',
    '.ad l',
  ]
}

function commandPage(config, cmd, all) {
  const id = displayId(config, cmd.id)
  const name = pageName(config, cmd.id)
  const rawDescription = template(cmd.description, config, cmd).trim()
  const summary = template(cmd.summary, config, cmd).trim() || rawDescription.split('\n')[0] || ''
  const { codes, description } = exitCodesOf(cmd, rawDescription)
  const out = [...header(name, config)]

  out.push('.SH NAME', `${lit(name)} \\- ${escLine(summary.replace(/\.$/, ''))}`)

  out.push('.SH SYNOPSIS')
  const usages = cmd.usage ? (Array.isArray(cmd.usage) ? cmd.usage : [cmd.usage]) : undefined
  if (usages) {
    out.push('.nf')
    for (const u of usages) out.push(`${bold(lit(`${config.bin} ${id}`))} ${lit(template(u, config, cmd).replace(new RegExp(`^(${config.bin} )?${id} ?`), ''))}`.trimEnd())
    out.push('.fi')
  } else {
    const flags = visibleFlags(cmd)
    const words = []
    if (flags.length > 6) {
      words.push(...flags.filter(([, f]) => f.required).map(([n, f]) => synopsisFlag(n, f)))
      words.push(`[${ital('OPTIONS')}]`)
    } else words.push(...flags.map(([n, f]) => synopsisFlag(n, f)))
    for (const [n, a] of visibleArgs(cmd)) {
      const w = ital(lit(n.toUpperCase())) + (a.multiple ? '\\ .\\|.\\|.' : '')
      words.push(a.required ? w : `[${w}]`)
    }
    out.push(`.SY "${lit(`${config.bin} ${id}`)}"`)
    out.push(...words)
    out.push('.YS')
  }

  out.push('.SH DESCRIPTION')
  const body = description || summary
  out.push(...textBlock(body))
  if (cmd.state === 'deprecated' || cmd.state === 'beta') out.push('.PP', `This command is ${cmd.state}.`)
  const aliases = (cmd.aliases ?? []).filter((a) => !(cmd.hiddenAliases ?? []).includes(a))
  if (aliases.length > 0) out.push('.PP', `Also available as ${aliases.map((a) => bold(lit(`${config.bin} ${displayId(config, a)}`))).join(', ')}.`)

  const args = visibleArgs(cmd)
  if (args.length > 0) {
    out.push('.SH ARGUMENTS')
    for (const [n, a] of args) {
      out.push('.TP', ital(lit(n.toUpperCase())))
      const bits = []
      if (a.description) bits.push(...textBlock(template(a.description, config, cmd)))
      const extra = []
      if (a.required) extra.push('Required.')
      if (a.options) extra.push(`One of: ${a.options.map((o) => bold(lit(String(o)))).join(', ')}.`)
      if (a.default !== undefined) extra.push(`Default: ${bold(lit(String(a.default)))}.`)
      if (extra.length) bits.push(extra.join(' '))
      out.push(...(bits.length ? bits : ['\\&']))
    }
  }

  const flags = visibleFlags(cmd)
  if (flags.length > 0) {
    out.push('.SH OPTIONS')
    for (const [n, f] of flags) {
      out.push('.TP', flagLabel(n, f))
      const text = template(f.description ?? f.summary ?? '', config, cmd).trim()
      const lines = text ? textBlock(text) : []
      if (f.summary && f.description && f.summary !== f.description) lines.unshift(prose(template(f.summary, config, cmd)), '.br')
      const extra = []
      if (f.required) extra.push('Required.')
      if (f.options && f.type === 'option') extra.push(`One of: ${f.options.map((o) => bold(lit(String(o)))).join(', ')}.`)
      if (f.multiple) extra.push('May be given more than once.')
      if (f.type === 'boolean') {
        if (f.default === true) extra.push(f.allowNo ? `On by default; ${bold(lit(`--no-${n}`))} turns it off.` : 'On by default.')
      } else if (f.default !== undefined && !(Array.isArray(f.default) && f.default.length === 0))
        extra.push(`Default: ${bold(lit(Array.isArray(f.default) ? f.default.join(', ') : String(f.default)))}.`)
      const env = Array.isArray(f.env) ? f.env : f.env ? [f.env] : []
      if (env.length) extra.push(`Environment: ${env.map((e) => bold(lit(e))).join(', ')}.`)
      if (f.dependsOn?.length) extra.push(`Needs ${f.dependsOn.map((d) => bold(lit(`--${d}`))).join(', ')}.`)
      if (f.exclusive?.length) extra.push(`Cannot be used with ${f.exclusive.map((d) => bold(lit(`--${d}`))).join(', ')}.`)
      if (extra.length) {
        const last = lines.length - 1
        if (last >= 0 && !lines[last].startsWith('.') && !/[.!?:;]$/.test(lines[last])) lines[last] += '.'
        lines.push(extra.join(' '))
      }
      out.push(...(lines.length ? lines : ['\\&']))
    }
  }

  if (codes.every((c) => /^\d+$/.test(c.code))) codes.sort((a, b) => Number(a.code) - Number(b.code))
  if (codes.length > 0) {
    out.push('.SH EXIT STATUS')
    for (const c of codes) out.push('.TP', bold(lit(c.code)), ...textBlock(template(c.text, config, cmd)))
  }

  const examples = cmd.examples ?? []
  if (examples.length > 0) {
    out.push('.SH EXAMPLES')
    for (const ex of examples) {
      if (typeof ex === 'string') {
        const lines = template(ex, config, cmd).split('\n')
        const isCmd = (l) => l.startsWith(`${config.bin} `) || l.startsWith('$ ')
        let pendingProse = lines.filter((l) => !isCmd(l) && l.trim() !== '')
        const cmds = lines.filter(isCmd)
        if (cmds.length === 0) {
          // no command line in it: show it verbatim
          out.push('.PP', '.RS 4', '.nf', ...lines.map((l) => lit(l)).map(escLine), '.fi', '.RE')
          continue
        }
        out.push('.PP')
        if (pendingProse.length) out.push(...pendingProse.map(prose))
        out.push('.RS 4', '.nf', ...cmds.map((c) => lit(c.startsWith('$ ') ? c : `$ ${c}`)), '.fi', '.RE')
        pendingProse = []
      } else if (ex && typeof ex === 'object') {
        out.push('.PP', ...textBlock(template(ex.description, config, cmd)))
        const cmdLines = template(ex.command, config, cmd).split('\n')
        out.push('.RS 4', '.nf', ...cmdLines.map((c) => lit(c.startsWith('$ ') ? c : `$ ${c}`)), '.fi', '.RE')
      }
    }
  }

  out.push('.SH SEE ALSO')
  const topic = cmd.id.includes(':') ? cmd.id.split(':')[0] : undefined
  const related = all.filter((c) => c.id !== cmd.id && topic !== undefined && c.id.startsWith(`${topic}:`)).map((c) => pageName(config, c.id))
  out.push([config.bin, ...related].map((p) => `${bold(lit(p))}(1)`).join(',\n'))

  return out.join('\n') + '\n'
}

function indexPage(config, commands) {
  const bin = config.bin
  const out = [...header(bin, config)]
  const description = (config.pjson.description ?? '').trim()
  out.push('.SH NAME', `${lit(bin)} \\- ${escLine(description.replace(/\.$/, '') || 'command-line interface')}`)
  out.push('.SH SYNOPSIS', `.SY ${lit(bin)}`, ital('COMMAND'), `[${ital('OPTIONS')}]`, '.YS')
  out.push(`.SY ${lit(bin)}`, bold(lit('--help')), '.YS')
  out.push('.SH DESCRIPTION')
  if (description) out.push(...textBlock(/[.!?]$/.test(description) ? description : `${description}.`), '.PP')
  out.push(
    `Each command below has its own manual page, named after the command with dashes: for example ${bold(lit(`${bin} ${commands[0] ? displayId(config, commands[0].id) : 'COMMAND'}`))} is described in ${bold(lit(commands[0] ? pageName(config, commands[0].id) : `${bin}-COMMAND`))}(1).`,
  )
  out.push('.SH COMMANDS')
  const topics = new Map((config.topics ?? []).filter((t) => !t.hidden).map((t) => [t.name, t]))
  const groups = new Map()
  for (const c of commands) {
    const topic = c.id.includes(':') ? c.id.split(':')[0] : ''
    if (!groups.has(topic)) groups.set(topic, [])
    groups.get(topic).push(c)
  }
  for (const [topic, cmds] of [...groups.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    if (topic) {
      const t = topics.get(topic)
      out.push(`.SS ${lit(`${bin} ${topic}`)}${t?.description ? ` \\(em ${template(t.description, config).replace(/\\/g, '\\e')}` : ''}`)
    }
    for (const c of cmds) {
      const summary = template(c.summary, config, c).trim() || template(c.description, config, c).trim().split('\n')[0] || ''
      out.push('.TP', bold(lit(`${bin} ${displayId(config, c.id)}`)), `${escLine(summary)}${summary ? ' ' : ''}See ${bold(lit(pageName(config, c.id)))}(1).`)
    }
  }
  out.push('.SH SEE ALSO', commands.map((c) => `${bold(lit(pageName(config, c.id)))}(1)`).join(',\n') || '\\&')
  return out.join('\n') + '\n'
}

/**
 * The cached command (config.commands) drops boolean flag defaults; the class has them. Also
 * picks up static exitCodes if the cache did not carry it.
 */
async function complete(cached) {
  let cls
  try {
    cls = await cached.load()
  } catch (e) {
    throw new Error(`cannot load command ${cached.id}: ${e instanceof Error ? e.message : String(e)}`)
  }
  const flags = { ...cached.flags }
  const classFlags = { ...(cls.baseFlags ?? {}), ...(cls.flags ?? {}) }
  for (const [name, f] of Object.entries(flags)) {
    const def = classFlags[name]?.default
    if (f.type === 'boolean' && f.default === undefined && typeof def === 'boolean') flags[name] = { ...f, default: def }
  }
  return { ...cached, flags, exitCodes: cached.exitCodes ?? cls.exitCodes }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  const config = await Config.load(opts.root)
  const commandsDir = config.pjson.oclif?.commands
  if (typeof commandsDir === 'string' && !existsSync(resolve(opts.root, commandsDir))) {
    process.stderr.write(`gen-man: ${relative(process.cwd(), resolve(opts.root, commandsDir)) || commandsDir} does not exist: build the CLI first (npm run build)\n`)
    process.exit(2)
  }
  const commands = await Promise.all(config.commands.filter((c) => !c.hidden).sort((a, b) => a.id.localeCompare(b.id)).map(complete))

  const pages = new Map()
  pages.set(`${config.bin}.1`, indexPage(config, commands))
  for (const cmd of commands) pages.set(`${pageName(config, cmd.id)}.1`, commandPage(config, cmd, commands))

  const existing = existsSync(opts.out) ? (await readdir(opts.out)).filter((f) => f.endsWith('.1') && (f === `${config.bin}.1` || f.startsWith(`${config.bin}-`))) : []
  const stale = existing.filter((f) => !pages.has(f))
  const shown = (f) => relative(process.cwd(), join(opts.out, f)) || f

  if (opts.check) {
    const bad = []
    for (const [file, text] of pages) {
      const path = join(opts.out, file)
      if (!existsSync(path)) bad.push(`${shown(file)}: missing`)
      else if ((await readFile(path, 'utf8')) !== text) bad.push(`${shown(file)}: out of date`)
    }
    for (const f of stale) bad.push(`${shown(f)}: stale (no such command)`)
    if (bad.length > 0) {
      process.stderr.write(`man pages need regenerating (node scripts/gen-man.mjs):\n${bad.map((b) => `  ${b}`).join('\n')}\n`)
      process.exit(1)
    }
    process.stdout.write(`man pages up to date (${pages.size})\n`)
    return
  }

  await mkdir(opts.out, { recursive: true })
  let written = 0
  for (const [file, text] of pages) {
    const path = join(opts.out, file)
    if (existsSync(path) && (await readFile(path, 'utf8')) === text) continue
    await writeFile(path, text)
    written++
  }
  for (const f of stale) await rm(join(opts.out, f))
  process.stdout.write(`man: ${pages.size} pages (${written} written, ${stale.length} removed) in ${relative(process.cwd(), opts.out) || '.'}\n`)
}

main().catch((e) => {
  process.stderr.write(`gen-man: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`)
  process.exit(2)
})
