import { Flags } from '@oclif/core'
import { BaseCommand, EXIT } from '../cli/base.js'
import { DemoPair, demoLines, DEMO } from '../cli/demo-runner.js'
import { CommandFailure, failWith } from '../cli/failure.js'

export default class Demo extends BaseCommand {
  static override summary = 'Start an HA pair on loopback to try it out: two controllers, one URL.'
  static override description = `Writes a config into the data directory (a 1 GiB sparse LUN, a persisted journal, a generated peer secret) and starts both controllers of a pair as child processes (node start --node a and --node b) on loopback:

  service address  ${DEMO.service}  (hosts connect here; it moves on takeover)
  node a           portal ${DEMO.nodes.a.portal}  admin ${DEMO.nodes.a.admin}  peer ${DEMO.nodes.a.peer}
  node b           portal ${DEMO.nodes.b.portal}  admin ${DEMO.nodes.b.admin}  peer ${DEMO.nodes.b.peer}

When one is primary and the other secondary it prints the URL to use, the commands that fail over (a planned takeover, or kill -9 of the primary) and the status commands, then keeps running. Ctrl-C (or SIGTERM) stops both: SIGTERM to each by pid, SIGKILL after --stop-timeout. The controllers' logs are node-a.log and node-b.log in the data directory. Running it again reuses the LUN (its data stays).

With --json it prints the same facts as one JSON line ({"event":"ready",...}), then one line per event: {"event":"exited","node":...} when a controller stops, {"event":"stopped"} at the end.`
  static override examples = [
    '<%= config.bin %> demo',
    '<%= config.bin %> demo --data-dir /tmp/iscsi-ha-demo --json',
  ]
  static exitCodes = {
    0: 'stopped by Ctrl-C or SIGTERM',
    2: 'bad flags',
    3: 'the pair did not start (an address in use? the message quotes the logs), or both controllers stopped by themselves',
  }
  static override flags = {
    'data-dir': Flags.string({ char: 'd', description: 'where the config, the LUN file, the journal and the logs go', default: './iscsi-ha-demo' }),
    timeout: Flags.integer({ description: 'milliseconds to wait for the pair to settle', default: 30_000, min: 1 }),
    'stop-timeout': Flags.integer({ description: 'milliseconds a controller gets to stop after SIGTERM before SIGKILL', default: 5000, min: 1 }),
  }

  public async run(): Promise<void> {
    const { flags } = await this.parse(Demo)
    const json = this.jsonEnabled()
    // One JSON line per event (oclif's log is silent under --json, and its JSON is multi-line).
    const emit = (event: Record<string, unknown>, text: string): void => {
      if (json) process.stdout.write(`${JSON.stringify(event)}\n`)
      else this.log(text)
    }
    // Signals are ours from the start: the controllers run in their own process groups, so a
    // Ctrl-C reaches only this process, which stops them (also while they are still starting).
    const stopRequest = new AbortController()
    const onSignal = (sig: NodeJS.Signals): void => stopRequest.abort(sig)
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    let pair: DemoPair | undefined
    try {
      pair = await DemoPair.start({ dataDir: flags['data-dir'], timeoutMs: flags.timeout, signal: stopRequest.signal })
    } catch (err) {
      failWith(this, err)
    }
    if (!pair) {
      emit({ event: 'stopped', reason: String(stopRequest.signal.reason) }, `${String(stopRequest.signal.reason)}: stopped before the pair was ready`)
      return
    }
    const running = pair
    emit({ event: 'ready', ...running.facts }, demoLines(running.facts).join('\n'))
    const reason = await new Promise<string>((resolve) => {
      if (stopRequest.signal.aborted) resolve(String(stopRequest.signal.reason))
      stopRequest.signal.addEventListener('abort', () => resolve(String(stopRequest.signal.reason)))
      running.onExit((node, how) => {
        emit({ event: 'exited', node, how }, `node ${node} ${how}${running.running.length ? `; ${running.running.join(', ')} carries on` : ''}`)
        if (running.running.length === 0) resolve('both controllers stopped')
      })
    })
    if (!json) this.log(`\n${reason}: stopping ${pair.running.join(' and ') || 'nothing'}`)
    await pair.stop(flags['stop-timeout'])
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    emit({ event: 'stopped', reason }, 'stopped')
    if (reason === 'both controllers stopped') failWith(this, new CommandFailure(EXIT.environment, 'both controllers stopped by themselves; see their logs'))
    // Under --json oclif would print an exit as an error: just return.
    if (!json) this.exit(EXIT.ok)
  }
}
