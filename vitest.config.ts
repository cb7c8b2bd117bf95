import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites start real nodes on fixed loopback ports: run files one at a time.
    fileParallelism: false,
    pool: 'forks',
  },
})
