import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base.js'
import { failWith } from '../../cli/failure.js'
import { renderTable } from '../../cli/table.js'
import { failoverEventLine, trialRow, TRIAL_HEADERS } from '../../bench/failover-format.js'
import { runFailover, type FailoverReport } from '../../bench/failover.js'
import { killLeftoverControllers } from '../../bench/controller-process.js'
import { removeLeftoverPairDirs } from '../../bench/pair.js'

export default class BenchFailover extends BaseCommand {
  static override summary = 'Kill the primary of a loopback pair under writes: the pause a host sees, and the writes it lost.'
  static override description = `Starts an HA pair on loopback (node a on 127.0.0.1, node b on 127.0.0.2, a sparse LUN file both share, the service address on --service-host) and writes through the service address with the project's verifying initiator: versioned, checksummed writes at queue depth, resent after a reconnect, every unit read back after each reconnect and at the end.

In each trial the primary is killed (SIGKILL, by pid) at a random instant between 25% and 60% of --duration; the secondary takes over. The trial reports the longest time no write completed (the pause the host saw), the survivor's own takeover record (pause, copies replayed from its journal), and the writes lost: acknowledged, then not read back (also torn and invented ones). Between trials the killed node is started again and rejoins as secondary, so the next trial kills the other.

--storage-delay-ms slows every storage write of the nodes (ISCSI_HA_FAULT_STORAGE_DELAY_MS): committed writes then wait in the two memories when the primary dies, and only the journal replay can complete them.`
  static override examples = [
    '<%= config.bin %> bench failover',
    '<%= config.bin %> bench failover --trials 10 --storage-delay-ms 40',
    '<%= config.bin %> bench failover --trials 1 --duration 3000 --json',
  ]
  static exitCodes = {
    0: 'no write was lost, torn or invented in any trial',
    1: 'a write was lost, torn or invented',
    2: 'bad flags',
    3: 'the pair did not start, or did not take over',
    130: 'interrupted (Ctrl-C); the pair was stopped',
  }
  static override flags = {
    trials: Flags.integer({ char: 't', description: 'primaries to kill', default: 3, min: 1 }),
    duration: Flags.integer({ char: 'd', description: 'milliseconds the host issues writes in each trial', default: 4000, min: 500 }),
    'queue-depth': Flags.integer({ char: 'q', description: 'writes in flight', default: 16, min: 1, max: 128 }),
    units: Flags.integer({ description: 'units the host writes and verifies per trial', default: 512, min: 1 }),
    'unit-blocks': Flags.integer({ description: '512-byte blocks per unit (one write)', default: 8, min: 1, max: 2048 }),
    'storage-delay-ms': Flags.integer({ description: "delay of every storage write on the nodes, ms (0: the disk's own speed)", default: 0, min: 0 }),
    'service-host': Flags.string({ description: 'loopback address hosts connect to (127.0.0.x)', default: '127.0.0.77' }),
  }

  public async run(): Promise<FailoverReport> {
    const { flags } = await this.parse(BenchFailover)
    if (!/^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$/.test(flags['service-host'])) this.userError('--service-host must be a loopback address 127.x.y.z')
    const json = this.jsonEnabled()
    // Ctrl-C: the nodes are ours to stop (by pid), whatever a trial is doing.
    const onSignal = (): void => {
      killLeftoverControllers()
      removeLeftoverPairDirs()
      process.stderr.write('interrupted: the pair was stopped\n')
      process.exit(130)
    }
    process.on('SIGINT', onSignal)
    let report: FailoverReport
    try {
      report = await runFailover({
        trials: flags.trials, durationMs: flags.duration, queueDepth: flags['queue-depth'], units: flags.units,
        unitBlocks: flags['unit-blocks'], storageDelayMs: flags['storage-delay-ms'], serviceHost: flags['service-host'],
        onEvent: (e) => {
          const line = failoverEventLine(e)
          if (line) process.stderr.write(`${line}\n`)
        },
      })
    } catch (err) {
      failWith(this, err)
    } finally {
      process.off('SIGINT', onSignal)
    }
    const s = report.summary
    if (!json) {
      this.log(renderTable(TRIAL_HEADERS, report.trials.map(trialRow)))
      this.log('')
      this.log(`pause seen by the host: median ${s.medianPauseMs} ms, max ${s.maxPauseMs} ms over ${report.trials.length} trial(s)`)
      this.log(s.ok ? 'no write lost, torn or invented' : `LOST ${s.lost}, torn ${s.torn}, invented ${s.invented} write(s)`)
    }
    if (!s.ok) process.exitCode = 1
    return report
  }
}
