// The verifying host as a process of its own, so it can run inside a host's network namespace.
// argv[2]: JSON VerifyingHostOptions (without callbacks). Events on stderr, the report on stdout.
import { VerifyingHost } from '../../dist/initiator/index.js'

const opts = JSON.parse(process.argv[2])
const host = new VerifyingHost({ ...opts, onEvent: (e) => process.stderr.write(JSON.stringify(e) + '\n') })
try {
  const report = await host.run()
  process.stdout.write(JSON.stringify(report) + '\n')
} catch (err) {
  process.stdout.write(JSON.stringify({ error: String(err) }) + '\n')
  process.exitCode = 1
}
