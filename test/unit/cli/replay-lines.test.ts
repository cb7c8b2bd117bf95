import { describe, expect, it } from 'vitest'
import { replayLines } from '../../../src/cli/replay-run.js'

describe('replay summary line', () => {
  it('names the data written and, when there were UNMAPs, the bytes deallocated', () => {
    const base = { mode: 'node' as const, from: '127.0.0.1:7361', replayed: 3, bytes: 8192, discardedBytes: 0 }
    expect(replayLines(base)).toEqual(['replayed 3 copies (8 KiB) on the node at 127.0.0.1:7361'])
    expect(replayLines({ ...base, discardedBytes: 1048576 })[0]).toContain('(8 KiB, 1 MiB deallocated)')
    expect(replayLines({ ...base, mode: 'offline', from: '/j', dropped: 2 })[0]).toMatch(/^dropped 2 copies from \/j/)
  })
})
