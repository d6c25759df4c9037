import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Child processes and sockets: keep files apart so one test's servers never meet another's.
    pool: 'forks',
  },
})
