/**
 * The sync storm at a size CI fits (test/storm/storm.ts): 4 site devices of two stores and two
 * carriers, 30 s of partitions, moves and SIGKILLs (devices and carriers) while movements are
 * recorded and the stores order from each other, then it heals.
 * Seeded: the seed is printed and `STOCKMESH_SEED=<seed>` replays it; every seed that ever failed
 * runs too (test/helpers/seed.ts). A longer one: `npm run storm -- --nodes 8 --minutes 5`.
 */
import { describe, expect, it } from 'vitest'
import { running } from '../helpers/deployment.ts'
import { chaosSeeds } from '../helpers/seed.ts'
import { runStorm } from './storm.ts'

describe('the sync storm', () => {
  it.each(chaosSeeds('sync storm'))('converges with nothing acknowledged lost (seed %i)', async (seed) => {
    const result = await runStorm({ seed, nodes: 4, carriers: 2, stormMs: 30_000, settleMs: 150_000, log: (line) => console.log(`[storm ${seed}] ${line}`) }, (stop) => running.push(stop))
    expect(result.recorded).toBeGreaterThan(0)
    expect(result.steps).toBeGreaterThan(10)
  }, 300_000)
})
