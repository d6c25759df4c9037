/**
 * Runs the relay benchmark alone and prints its result as one JSON line (bench/run.ts calls
 * `relayBench` in-process; this is for trying sizes by hand).
 * Usage: node --import tsx bench/relayChild.ts SITES PER_SITE PROCESSES STAGE_MS PER_SIDE EVERY_MS,...
 */
import { relayBench } from './relay.ts'

const [sites, perSite, procs, stageMs, perSide] = process.argv.slice(2, 7).map(Number)
const stages = (process.argv[7] ?? '10000').split(',').map(Number)
const result = await relayBench({ sites: sites ?? 4, perSite: perSite ?? 3, clientProcesses: procs ?? 2, stageMs: stageMs ?? 10000, perSide: perSide ?? 200, stages, pouch: true })
process.stdout.write(JSON.stringify(result) + '\n')
process.exit(0)
