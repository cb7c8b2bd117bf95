// Reading a config file from disk, plus the checks that need the file system.
import { readFile, stat } from 'node:fs/promises'
import { ConfigError, type ConfigProblem } from './errors.js'
import { parseConfigDetailed } from './parse.js'
import { formatSize } from './size.js'
import type { ClusterConfig } from './types.js'

function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined
}

/**
 * Reads, parses and validates `file`, then checks each LUN's backing path: an existing path must
 * be a regular file or a block device; a missing one needs `size` (the storage layer creates it
 * sparse). Throws ConfigError (code CONFIG_INVALID) listing every problem.
 */
export async function loadConfig(file: string): Promise<ClusterConfig> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    const code = errnoCode(e)
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : String(e)
    throw new ConfigError([{ file, line: 0, column: 0, field: '', message: `cannot read the config file: ${why}` }])
  }
  const { config, luns } = parseConfigDetailed(text, file)

  const problems: ConfigProblem[] = []
  for (const target of config.targets) {
    for (const lun of target.luns) {
      const src = luns.get(lun)
      const field = src?.field ?? 'luns'
      const line = src?.pathPos.line ?? 0
      const column = src?.pathPos.column ?? 0
      try {
        const st = await stat(lun.path)
        if (st.isDirectory()) problems.push({ file, line, column, field: `${field}.path`, message: `${lun.path} is a directory` })
        else if (!st.isFile() && !st.isBlockDevice())
          problems.push({ file, line, column, field: `${field}.path`, message: `${lun.path} is not a regular file or a block device` })
      } catch (e) {
        const code = errnoCode(e)
        if (code === 'ENOENT') {
          if (lun.sizeBytes === undefined) {
            problems.push({
              file,
              line: src?.pos.line ?? 0,
              column: src?.pos.column ?? 0,
              field: `${field}.size`,
              message: `is required because ${lun.path} does not exist yet (e.g. size: ${formatSize(1024 ** 3)})`,
            })
          }
        } else {
          problems.push({ file, line, column, field: `${field}.path`, message: `cannot check ${lun.path}: ${code ?? String(e)}` })
        }
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return config
}
