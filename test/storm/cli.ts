/**
 * `npm run storm -- --nodes N --minutes M [--carriers C] [--seed S]`: a longer sync storm than CI
 * runs (test/storm/storm.ts). Needs root (network namespaces) and a built CLI (`npm run build:node`).
 * Prints its seed; `--seed` (or STOCKMESH_SEED) replays one.
 */
import { parseArgs } from 'node:util'
import { runStorm } from './storm.ts'

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '6' }, minutes: { type: 'string', default: '2' }, carriers: { type: 'string', default: '2' }, seed: { type: 'string' } } })
const number = (name: string, raw: string | undefined, min: number) => {
  const n = Number(raw)
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number of at least ${min}, got ${raw}`)
  return n
}
const seed = values.seed !== undefined || process.env.STOCKMESH_SEED ? Math.trunc(number('seed', values.seed ?? process.env.STOCKMESH_SEED, 0)) : Math.floor(Math.random() * 2 ** 31)
console.log(`[seed] sync storm: STOCKMESH_SEED=${seed}`)
const stops: Array<() => Promise<unknown>> = []
try {
  const result = await runStorm(
    { seed, nodes: Math.trunc(number('nodes', values.nodes, 2)), carriers: Math.trunc(number('carriers', values.carriers, 0)), stormMs: number('minutes', values.minutes, 0.1) * 60_000, settleMs: 300_000, log: (line) => console.log(line) },
    (stop) => stops.push(stop),
  )
  console.log(`storm passed: ${JSON.stringify(result)}`)
} catch (error) {
  console.error(String((error as Error).message ?? error))
  process.exitCode = 1
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => undefined)
}
