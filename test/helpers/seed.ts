/**
 * The seed of a randomised test: taken from STOCKMESH_SEED to replay a failure, otherwise fresh.
 * Printed so that a failing run in CI can be replayed exactly.
 */
export function testSeed(name: string): number {
  const fromEnv = process.env.STOCKMESH_SEED
  const seed = fromEnv !== undefined ? Number(fromEnv) : Math.floor(Math.random() * 2 ** 31)
  if (!Number.isInteger(seed)) throw new Error(`STOCKMESH_SEED must be an integer, got ${fromEnv}`)
  console.log(`[seed] ${name}: STOCKMESH_SEED=${seed}`)
  return seed
}

/** Small deterministic PRNG (mulberry32) for tests that need randomness outside fast-check. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
