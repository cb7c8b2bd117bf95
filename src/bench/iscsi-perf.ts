// libiscsi's `iscsi-perf` as a client: arguments and the parser of its output.
//
// iscsi-perf keeps `-m` requests of `-b` blocks in flight (random LBAs with -r) and, without
// `-t`, runs until interrupted. With `-t N` it stops after N seconds and prints, after a
// carriage-return progress line per second:
//   iops average 29168 (113 MB/s)
//   finished.
// (its MB are MiB). No latency is printed: the mean is derived from Little's law (QD / IOPS).
// The caller still bounds it in time and stops it by pid (see bounded.ts).
import { ClientError } from './errors.js'

export function iscsiPerfArgs(url: string, w: { blockSize: number; queueDepth: number; pattern: 'seq' | 'rand' }, lunBlockSize: number, seconds: number): string[] {
  const blocks = Math.max(1, Math.round(w.blockSize / lunBlockSize))
  return [
    '-m', String(w.queueDepth), '-b', String(blocks), '-t', String(Math.max(1, Math.ceil(seconds))),
    ...(w.pattern === 'rand' ? ['-r'] : []),
    url,
  ]
}

export interface IscsiPerfResult {
  iops: number
  /** Bytes per request, as iscsi-perf reports its transfer size. */
  transferBytes?: number
  /** Whole-run seconds iscsi-perf was asked for (its average covers them). */
  finished: boolean
}

/** The final average; throws ClientError when the run did not finish with one. */
export function parseIscsiPerf(output: string): IscsiPerfResult {
  const text = output.replace(/\r/g, '\n')
  const transfer = /transfer size of [0-9]+ blocks \(([0-9]+) byte\)/.exec(text)
  const finished = /^finished\.\s*$/m.test(text)
  // The summary line is "iops average N (M MB/s)" alone on its line (progress lines carry more).
  const summaries = [...text.matchAll(/^\s*iops average ([0-9]+) \(/gm)]
  const last = summaries[summaries.length - 1]
  if (!finished || !last) throw new ClientError('iscsi-perf', 'the run did not finish with an average', output)
  return { iops: Number(last[1]), finished, ...(transfer ? { transferBytes: Number(transfer[1]) } : {}) }
}

/** "capacity is 524288 blocks or 268435456 byte" → block size, when printed. */
export function parseIscsiPerfCapacity(output: string): { blocks: number; bytes: number } | undefined {
  const m = /capacity is ([0-9]+) blocks or ([0-9]+) byte/.exec(output)
  return m ? { blocks: Number(m[1]), bytes: Number(m[2]) } : undefined
}
