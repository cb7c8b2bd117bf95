// The workloads of `iscsi-ha bench`: which client, which operation, block size and queue depth.
// Two independent, well-known clients drive them: QEMU's `qemu-img bench` (sequential, from
// offset 0, wrapping at the end of the LUN) and libiscsi's `iscsi-perf` (random 4K reads, and
// sequential 128K reads).

export type Client = 'qemu-img' | 'iscsi-perf'

export interface Workload {
  /** Stable name used by --workloads and in --json output, e.g. `4k-qd32-write`. */
  id: string
  client: Client
  op: 'read' | 'write'
  pattern: 'seq' | 'rand'
  blockSize: number
  queueDepth: number
  /** What a reader of the table needs to see, e.g. `4K QD32 seq write`. */
  title: string
}

function workload(client: Client, op: 'read' | 'write', blockSize: number, queueDepth: number, pattern: 'seq' | 'rand' = 'seq'): Workload {
  const kib = `${blockSize / 1024}K`
  const prefix = client === 'qemu-img' ? '' : pattern === 'rand' ? 'rand-' : 'perf-'
  const id = `${prefix}${kib.toLowerCase()}-qd${queueDepth}-${op}`
  return { id, client, op, pattern, blockSize, queueDepth, title: `${kib} QD${queueDepth} ${pattern} ${op}` }
}

/** Every workload, in the order they run and are printed. */
export const WORKLOADS: readonly Workload[] = [
  workload('qemu-img', 'read', 4096, 1),
  workload('qemu-img', 'write', 4096, 1),
  workload('qemu-img', 'read', 4096, 32),
  workload('qemu-img', 'write', 4096, 32),
  workload('qemu-img', 'read', 131072, 1),
  workload('qemu-img', 'write', 131072, 1),
  workload('qemu-img', 'read', 131072, 16),
  workload('qemu-img', 'read', 131072, 32),
  workload('qemu-img', 'write', 131072, 32),
  workload('iscsi-perf', 'read', 4096, 1, 'rand'),
  workload('iscsi-perf', 'read', 4096, 32, 'rand'),
  // The same 128K sequential reads through libiscsi alone: QEMU asks thin targets GET LBA STATUS
  // before large reads (see bench/README.md), iscsi-perf only reads.
  workload('iscsi-perf', 'read', 131072, 16, 'seq'),
]

/** The rows the project's targets are stated for (issue 5): the default of `bench --quick`. */
export const QUICK_WORKLOADS: readonly string[] = [
  '4k-qd1-read', '4k-qd1-write', '4k-qd32-read', '4k-qd32-write', '128k-qd16-read', 'rand-4k-qd32-read', 'perf-128k-qd16-read',
]

/** The workloads named (comma-separated ids, or `all`), in the canonical order; throws on an unknown id. */
export function selectWorkloads(spec: string | undefined, quick = false): Workload[] {
  if (!spec || spec === 'all') {
    return quick ? WORKLOADS.filter((w) => QUICK_WORKLOADS.includes(w.id)) : [...WORKLOADS]
  }
  const ids = spec.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '')
  const unknown = ids.filter((id) => !WORKLOADS.some((w) => w.id === id))
  if (unknown.length > 0) {
    throw new RangeError(`unknown workload ${unknown.map((u) => `"${u}"`).join(', ')}; known: ${WORKLOADS.map((w) => w.id).join(', ')}`)
  }
  return WORKLOADS.filter((w) => ids.includes(w.id))
}
