// QEMU's `qemu-img bench` as a client: arguments and the parser of its output.
//
// qemu-img bench sends `count` requests of one size, `depth` at a time, sequentially from offset
// 0 (wrapping at the end of the image), and prints only the elapsed time:
//   Sending 20000 read requests, 4096 bytes each, 32 in parallel (starting at offset 0, step size 4096)
//   Run completed in 0.882 seconds.
// It gives no latency: the mean is derived from Little's law (QD / IOPS).
import { ClientError } from './errors.js'

/** Written by write workloads: not zeros, so a thin target keeps the blocks mapped. */
export const WRITE_PATTERN = 0x5a

export function qemuImgArgs(url: string, w: { op: 'read' | 'write'; blockSize: number; queueDepth: number }, count: number): string[] {
  return [
    'bench', '-f', 'raw', '-t', 'none', '-n',
    '-c', String(count), '-d', String(w.queueDepth), '-s', String(w.blockSize),
    ...(w.op === 'write' ? ['-w', `--pattern=${WRITE_PATTERN}`] : []),
    url,
  ]
}

/** Seconds from "Run completed in X seconds."; throws ClientError when absent. */
export function parseQemuImgBench(output: string): { seconds: number; requests?: number } {
  const done = /Run completed in ([0-9]+(?:\.[0-9]+)?) seconds/.exec(output)
  if (!done) throw new ClientError('qemu-img', 'no "Run completed in" line in its output', output)
  const sending = /Sending ([0-9]+) (?:read|write) requests/.exec(output)
  const seconds = Number(done[1])
  return { seconds, ...(sending ? { requests: Number(sending[1]) } : {}) }
}
