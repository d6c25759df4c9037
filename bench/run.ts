/**
 * The stockmesh ledger benchmark. Writes BENCHMARKS.md (see bench/report.ts for how to read it).
 *
 *   npm run bench                                  everything (~10 min on 2 cores)
 *   npm run bench -- --only=commit --sizes=10000   one piece, one size (about a minute)
 *   npm run bench -- --only=relay                  the relay piece alone (~15 min): merged into BENCHMARKS.md
 *   npm run bench -- --only=local                  the local piece alone (stockmesh vs PouchDB, ~1 min): merged into BENCHMARKS.md
 *   npm run bench -- --only=lan                    the LAN mesh (3, 6, 12 devices in network namespaces; root): merged into BENCHMARKS.md
 *   npm run bench -- --only=erp                    forwarding to a real Tryton (--erp-backlog=10000 --erp-direct=2000): merged into BENCHMARKS.md
 *                                                  --lan-nodes=3,6,12 --lan-movements=600
 *   npm run bench -- --only=local --local-src=head --local-history=24000,100000   with the 100k restart (~4 min)
 *
 * Options: --only=commit,load,wire,shape,relay   --sizes=10000,100000   --runs=3 (restarts per size)
 *          --measured=1000 (single movements per size)   --wire-per-side=5000   --wire-prior=20000
 *          --wire-live=300 --wire-gap=200 (live scenario: movements per side, ms between them)
 *          --no-single-change (skip the one-change-per-movement restart variant)
 *          --wire-serial (run the two wire scenarios one after the other instead of in two processes at once)
 *          --out=FILE (default: BENCHMARKS.md for a full run, stdout only for a partial one)
 *          --from=FILE (re-render a saved results JSON, no measuring)
 *          --compare=FILE[:label] (add a table against an earlier run's results JSON; repeatable)
 *          --code=TEXT (what code is measured, when not a git checkout)
 *          relay (bench/relay.ts): --relay-sites=100 --relay-per-site=3 --relay-procs=2 (client processes)
 *          --relay-stages=30000,10000,3000,1000 (ms between one device's movements, one stage each)
 *          --relay-stage-ms=30000 --relay-per-side=5000 (week catch-up, movements per device) --no-pouch
 *          --relay-src=DIR (run the relay from another copy of the source, node_modules linked: A/B of a change)
 *          --relay-compare=FILE:label[,FILE:label] (results JSON of other relay runs: a comparison table in section 5)
 *          A run of the relay piece alone replaces section 5 of BENCHMARKS.md (or --out=FILE) and keeps the rest.
 *          local (bench/local.ts: the site's HTTP API against a durable PouchDB server; needs `npm run build:node`):
 *          --local-history=24000 (total movements at which restarts and disk are measured; 24000,100000 for the
 *          issue's 100k target, ~3 more minutes) --local-scanned=1000 (movements per side per scanner count)
 *          --local-scanners=1,8 --local-import=20000 --local-import-batch=500 --local-restarts=3
 *          --local-src=head (run the committed tree, exported and compiled in the temp folder: while src/ is being
 *          edited) or --local-src=DIR (another built copy); default: this checkout's bin/ and dist/ as built
 *          A run of the local piece alone replaces section 6 of BENCHMARKS.md (or --out=FILE) and keeps the rest.
 */
import { execFileSync, spawn } from 'node:child_process'
import { closeSync, existsSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { renderReport, type Machine, type Report } from './report.ts'
import { relayBench } from './relay.ts'
import { localBench, type LocalResult } from './local.ts'
import { lanBench, mergeLanSection, renderLanSection, type LanResult } from './lan.ts'
import { erpBench, mergeErpSection, renderErpSection, type ErpResult } from './erp.ts'
import { mergeLocalSection, renderLocalSection } from './localReport.ts'
import { mergeRelaySection, renderRelaySection, type RelayComparison } from './relayReport.ts'
import { shapeBench } from './shape.ts'
import { siteBench } from './siteBench.ts'
import { wireScenario, type WireResult } from './wire.ts'
import { log, median } from './workload.ts'

const PIECES = ['commit', 'load', 'wire', 'shape', 'relay', 'local', 'lan', 'erp'] as const
type Piece = (typeof PIECES)[number]

function parseArgs(argv: string[]) {
  const flags = new Map<string, string>()
  const compare: string[] = []
  for (const arg of argv) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg)
    if (!m) throw new Error(`unknown argument ${arg}; see the header of bench/run.ts`)
    if (m[1] === 'compare') compare.push(m[2] ?? '')
    else flags.set(m[1]!, m[2] ?? 'true')
  }
  const only = (flags.get('only')?.split(',') ?? [...PIECES]) as Piece[]
  for (const p of only) if (!PIECES.includes(p)) throw new Error(`--only: ${p} is not one of ${PIECES.join(', ')}`)
  const num = (name: string, dflt: number) => {
    const v = Number(flags.get(name) ?? dflt)
    if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be a whole number`)
    return v
  }
  for (const name of ['local-history', 'local-scanners']) {
    const list = flags.get(name)?.split(',').map(Number)
    if (list?.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--${name}: comma-separated whole numbers`)
  }
  const sizes = (flags.get('sizes') ?? '10000,100000').split(',').map(Number)
  if (sizes.some((n) => !Number.isInteger(n) || n < 1000)) throw new Error('--sizes: whole numbers of at least 1000')
  return {
    only,
    sizes,
    runs: Math.max(1, num('runs', 3)),
    measured: Math.max(10, num('measured', 1000)),
    wirePerSide: Math.max(10, num('wire-per-side', 5000)),
    wirePrior: num('wire-prior', 20000),
    wireLive: Math.max(10, num('wire-live', 300)),
    wireGap: Math.max(1, num('wire-gap', 200)),
    singleChange: !flags.has('no-single-change'),
    wireSerial: flags.has('wire-serial'),
    out: flags.get('out'),
    from: flags.get('from'),
    compare,
    code: flags.get('code'),
    relaySites: Math.max(1, num('relay-sites', 100)),
    relayPerSite: Math.max(2, num('relay-per-site', 3)),
    relayProcs: Math.max(1, num('relay-procs', 2)),
    relayStages: (flags.get('relay-stages') ?? '30000,10000,3000,1000').split(',').map(Number),
    relayStageMs: Math.max(1000, num('relay-stage-ms', 30000)),
    relayPerSide: Math.max(10, num('relay-per-side', 5000)),
    pouch: !flags.has('no-pouch'),
    relaySrc: flags.get('relay-src'),
    relayCompare: flags.get('relay-compare'),
    localHistory: (flags.get('local-history') ?? '24000').split(',').map(Number),
    lanNodes: (flags.get('lan-nodes') ?? '3,6,12').split(',').map(Number),
    lanMovements: Number(flags.get('lan-movements') ?? '600'),
    erpBacklog: Number(flags.get('erp-backlog') ?? '10000'),
    erpDirect: Number(flags.get('erp-direct') ?? '2000'),
    localScanned: Math.max(10, num('local-scanned', 1000)),
    localScanners: (flags.get('local-scanners') ?? '1,8').split(',').map(Number),
    localImport: Math.max(1, num('local-import', 20000)),
    localImportBatch: Math.max(1, num('local-import-batch', 500)),
    localRestarts: Math.max(1, num('local-restarts', 3)),
    localSrc: flags.get('local-src'),
    full: only.length === PIECES.length && sizes.includes(10000) && sizes.includes(100000),
  }
}

/** Median of 30 fsyncs of a 4 KB file in the temp folder: the floor under every durable write. */
function fsyncProbe(): number {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stockmesh-fsync-'))
  try {
    const fd = openSync(path.join(dir, 'probe'), 'w')
    const v: number[] = []
    for (let i = 0; i < 30; i++) {
      writeSync(fd, Buffer.alloc(4096, i))
      const t = performance.now()
      fsyncSync(fd)
      v.push(performance.now() - t)
    }
    closeSync(fd)
    return median(v)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function wireChild(prior: number, perSide: number, gap: number): Promise<WireResult> {
  const here = path.dirname(fileURLToPath(import.meta.url))
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'wireChild.ts'), String(prior), String(perSide), String(gap)], { cwd: path.dirname(here), stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()))
    proc.stderr.on('data', (d: Buffer) => process.stderr.write(d.toString().replace(/^\[bench/gm, `[wire ${gap ? 'live' : prior ? 'history' : 'young'}`)))
    proc.on('error', reject)
    proc.on('exit', (code) => {
      const line = out.trim().split('\n').pop()
      if (code !== 0 || !line) reject(new Error(`wire child (prior ${prior}) exited ${code}`))
      else resolve(JSON.parse(line) as WireResult)
    })
  })
}

function machine(): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown'
  const mhz = /^cpu MHz\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim()
  let fs = ''
  try {
    fs = execFileSync('df', ['-T', os.tmpdir()], { encoding: 'utf8' }).trim().split('\n').pop()?.split(/\s+/)[1] ?? ''
  } catch {
    // not essential
  }
  return {
    cpu: mhz ? `${model} (${Math.round(Number(mhz))} MHz)` : model,
    cores: os.availableParallelism(),
    ramGiB: os.totalmem() / 2 ** 30,
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    date: new Date().toISOString(),
    loadStart: os.loadavg(),
    loadEnd: [],
    tmp: `${os.tmpdir()}${fs ? ` (${fs})` : ''}`,
    fsyncMs: fsyncProbe(),
    code: codeMeasured(),
  }
}

const args = parseArgs(process.argv.slice(2))
/** The results JSON: bench/report.ts's Report plus section 6 (bench/local.ts). */
type LocalReport = Report & { local?: LocalResult; localDurationS?: number; lan?: LanResult; lanDurationS?: number; erp?: ErpResult; erpDurationS?: number }
/** Section 6 (rendered by bench/localReport.ts) appended to a rendered report, when the run has it. */
function withLocal(markdown: string, r: LocalReport): string {
  const local = r.local ? mergeLocalSection(markdown, renderLocalSection(r.local, r.machine, r.localDurationS ?? r.durationS)) : markdown
  const withLan = r.lan ? mergeLanSection(local, renderLanSection(r.lan, r.machine, r.lanDurationS ?? r.durationS)) : local
  return r.erp ? mergeErpSection(withLan, renderErpSection(r.erp, r.machine, r.erpDurationS ?? r.durationS)) : withLan
}
const started = performance.now()
const saved = path.join(os.tmpdir(), 'stockmesh-bench-results.json')
/** Earlier runs to compare against: --compare=results.json[:label], repeatable. */
function previous(): Report['previous'] {
  if (args.compare.length === 0) return undefined
  return args.compare.map((spec) => {
    const [file, ...label] = spec.split(':')
    const prev = JSON.parse(readFileSync(file!, 'utf8')) as Report
    delete prev.previous
    return { label: label.join(':') || prev.machine.date, report: prev }
  })
}

/** bench/relayNotes.md: hand-written notes on the latest relay run, rendered into section 5. */
function relayNotes(): string | undefined {
  try {
    return readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'relayNotes.md'), 'utf8')
  } catch {
    return undefined
  }
}

/** Other relay runs to compare with: --relay-compare=results.json:label,… */
function relayComparisons(): RelayComparison[] {
  if (!args.relayCompare) return []
  return args.relayCompare.split(',').flatMap((spec) => {
    const [file, ...label] = spec.split(':')
    const prev = JSON.parse(readFileSync(file!, 'utf8')) as Report
    return prev.relay ? [{ label: label.join(':') || prev.machine.date, relay: prev.relay, machine: prev.machine }] : []
  })
}

/** Which code was measured: the commit, and whether src/ had uncommitted changes. */
function codeMeasured(): string {
  if (args.code) return args.code
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--short', '--', 'src'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).length
    return dirty ? `${head} + uncommitted changes in ${dirty} file${dirty === 1 ? '' : 's'} under src/` : head
  } catch {
    return 'unknown'
  }
}
if (args.from) {
  // Re-render a saved run (after changing the report's text) without measuring again.
  const report = JSON.parse(readFileSync(args.from, 'utf8')) as LocalReport
  if (args.compare.length) report.previous = previous()
  writeFileSync(args.from, JSON.stringify(report))
  const target = args.out ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'BENCHMARKS.md')
  if (report.local && !report.relay && !report.site && !report.wire && !report.shape) writeFileSync(target, mergeLocalSection(readFileSync(target, 'utf8'), renderLocalSection(report.local, report.machine, report.localDurationS ?? report.durationS)))
  else if (report.relay && !report.site && !report.wire && !report.shape) writeFileSync(target, mergeRelaySection(readFileSync(target, 'utf8'), renderRelaySection(report.relay, report.machine, report.relayDurationS ?? report.durationS, relayComparisons(), relayNotes())))
  else writeFileSync(target, withLocal(renderReport(report), report))
  process.exit(0)
}
const report: LocalReport = { machine: machine(), args: { ...args }, durationS: 0, previous: previous() }
log(`machine: ${report.machine.cpu}, ${report.machine.cores} cores, load ${report.machine.loadStart.map((l) => l.toFixed(2)).join(' ')}, fsync ${report.machine.fsyncMs.toFixed(2)} ms`)

const has = (p: Piece) => args.only.includes(p)
/** The results so far, written after each piece: a run that fails late keeps what it measured (re-render with --from). */
const checkpoint = () => writeFileSync(saved, JSON.stringify({ ...report, durationS: (performance.now() - started) / 1000 }))
if (has('commit') || has('load')) {
  log(`== sections 1-2: single movements and restarts at ${args.sizes.join(', ')} movements`)
  report.site = await siteBench(args.sizes, { commit: has('commit'), load: has('load'), singleChange: args.singleChange, runs: args.runs, measured: args.measured })
  checkpoint()
}
if (has('wire')) {
  const scenarios = [
    { prior: 0, perSide: args.wirePerSide, gap: 0 },
    { prior: args.wirePrior, perSide: args.wirePerSide, gap: 0 },
    { prior: 0, perSide: args.wireLive, gap: args.wireGap },
  ]
  if (args.wireSerial) {
    log(`== section 3: bytes on the wire`)
    report.wire = []
    for (const { prior, perSide, gap } of scenarios) {
      log(`wire: ${prior} movements of shared history${gap ? ', live' : ''}`)
      report.wire.push(await wireScenario(prior, perSide, gap))
    }
  } else {
    // One child process per scenario, all at once (the live one mostly waits): the bytes do not depend on it.
    log(`== section 3: bytes on the wire; scenarios in parallel child processes`)
    report.wire = await Promise.all(scenarios.map(({ prior, perSide, gap }) => wireChild(prior, perSide, gap)))
  }
  checkpoint()
}
if (has('shape')) {
  log('== section 4: shape experiments')
  report.shape = shapeBench()
  checkpoint()
}
if (has('relay')) {
  log('== section 5: relay')
  const relayStarted = performance.now()
  report.relay = await relayBench({ sites: args.relaySites, perSite: args.relayPerSite, clientProcesses: args.relayProcs, stages: args.relayStages, stageMs: args.relayStageMs, perSide: args.relayPerSide, pouch: args.pouch, ...(args.relaySrc ? { relaySrc: args.relaySrc } : {}) })
  report.relayDurationS = (performance.now() - relayStarted) / 1000
  checkpoint()
}
if (has('local')) {
  log('== section 6: local API against a durable PouchDB server')
  const localStarted = performance.now()
  report.local = await localBench({ scanners: args.localScanners, scanned: args.localScanned, importSize: args.localImport, importBatch: args.localImportBatch, histories: args.localHistory, restarts: args.localRestarts, ...(args.localSrc ? { src: args.localSrc } : {}) })
  report.localDurationS = (performance.now() - localStarted) / 1000
}
if (has('lan')) {
  log('== section 7: LAN mesh (network namespaces: needs root)')
  const lanStarted = performance.now()
  report.lan = await lanBench({ sizes: args.lanNodes, movements: args.lanMovements })
  report.lanDurationS = (performance.now() - lanStarted) / 1000
  checkpoint()
}
if (has('erp')) {
  log('== section 8: forwarding to the parent ERP (a real Tryton 6.0)')
  const erpStarted = performance.now()
  report.erp = await erpBench({ backlog: args.erpBacklog, direct: args.erpDirect })
  report.erpDurationS = (performance.now() - erpStarted) / 1000
  checkpoint()
}
report.machine.loadEnd = os.loadavg()
report.durationS = (performance.now() - started) / 1000

writeFileSync(saved, JSON.stringify(report))
log(`raw results in ${saved} (re-render with --from=${saved})`)
const markdown = renderReport(report)
const here = path.dirname(fileURLToPath(import.meta.url))
const relayOnly = args.only.length === 1 && args.only[0] === 'relay'
const localOnly = args.only.length === 1 && args.only[0] === 'local'
const lanOnly = args.only.length === 1 && args.only[0] === 'lan'
const erpOnly = args.only.length === 1 && args.only[0] === 'erp'
const out = args.out ?? (args.full || relayOnly || localOnly || lanOnly || erpOnly ? path.join(here, '..', 'BENCHMARKS.md') : undefined)
if (out && erpOnly && report.erp) {
  writeFileSync(out, mergeErpSection(existsSync(out) ? readFileSync(out, 'utf8') : '', renderErpSection(report.erp, report.machine, report.erpDurationS ?? report.durationS)))
  log(`merged the ERP section into ${out} in ${report.durationS.toFixed(0)} s`)
} else if (out && lanOnly && report.lan) {
  // The LAN piece alone: its section replaces the one in the file; the rest stays.
  writeFileSync(out, mergeLanSection(readFileSync(out, 'utf8'), renderLanSection(report.lan, report.machine, report.lanDurationS ?? report.durationS)))
  log(`merged the LAN section into ${out} in ${report.durationS.toFixed(0)} s`)
} else if (out && localOnly && report.local) {
  // The local piece alone: its section replaces the one in the file; the rest stays.
  let existing = ''
  try {
    existing = readFileSync(out, 'utf8')
  } catch {
    existing = '# Benchmarks\n'
  }
  writeFileSync(out, mergeLocalSection(existing, renderLocalSection(report.local, report.machine, report.localDurationS ?? report.durationS)))
  log(`merged the local section into ${out} in ${report.durationS.toFixed(0)} s`)
} else if (out && relayOnly && report.relay) {
  // The relay piece alone: its section replaces the one in the file; the ledger figures stay.
  let existing = ''
  try {
    existing = readFileSync(out, 'utf8')
  } catch {
    existing = '# Benchmarks\n'
  }
  writeFileSync(out, mergeRelaySection(existing, renderRelaySection(report.relay, report.machine, report.relayDurationS ?? report.durationS, relayComparisons(), relayNotes())))
  log(`merged the relay section into ${out} in ${report.durationS.toFixed(0)} s`)
} else if (out) {
  writeFileSync(out, withLocal(markdown, report))
  log(`wrote ${out} in ${report.durationS.toFixed(0)} s`)
} else {
  process.stdout.write(withLocal(markdown, report))
  log(`partial run (${report.durationS.toFixed(0)} s): printed above; BENCHMARKS.md left as it was (pass --out=FILE to write)`)
}
