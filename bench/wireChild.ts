/**
 * Child process of the wire benchmark: runs one scenario and prints its result as one JSON line.
 * Usage: node --import tsx bench/wireChild.ts <priorMovements> <perSide> [liveGapMs]
 */
import { wireScenario } from './wire.ts'

const [prior, perSide, liveGapMs] = process.argv.slice(2).map(Number)
const result = await wireScenario(prior ?? 0, perSide ?? 5000, liveGapMs ?? 0)
process.stdout.write(JSON.stringify(result) + '\n')
process.exit(0)
