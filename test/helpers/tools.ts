// Real clients drive the integration tests. In CI (CI=true) a missing tool or privilege is a
// failure; on a developer's machine the suite is skipped with the reason printed.
import { execaSync } from 'execa'

export const inCI = process.env.CI === 'true'

export function hasTool(name: string): boolean {
  try {
    execaSync('sh', ['-c', `command -v ${name}`])
    return true
  } catch {
    return false
  }
}

/** Returns a skip reason, or undefined when everything is present. Throws in CI. */
export function missingTools(...names: string[]): string | undefined {
  const missing = names.filter((n) => !hasTool(n))
  if (missing.length === 0) return undefined
  const reason = `missing tools: ${missing.join(', ')} (npm test installs them when run as root)`
  if (inCI) throw new Error(reason)
  console.warn(`skipping: ${reason}`)
  return reason
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0
}
