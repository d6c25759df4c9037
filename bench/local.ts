/**
 * The local piece (issue 7, part 2): one site's stock movements through the local HTTP API of the
 * compiled CLI (`node bin/stockmesh.mjs site`), against the same movements PUT to a PouchDB server
 * (express-pouchdb 4.2 over pouchdb-core 9 on leveldb, every leveldb write forced to fsync:
 * bench/localPouchServer.ts), both as child processes on this machine, in one run:
 *
 *   scanners   1 and 8 concurrent scanners, each posting one movement at a time and waiting for the
 *              answer (stockmesh: POST /api/movements, 201 once durable; PouchDB: PUT /db/<id>, one
 *              document per movement). Rounds alternate which side goes first.
 *   import     20,000 movements in batches of 500 (POST /api/movements {movements} / POST /db/_bulk_docs)
 *   history    both topped up to each --local-history size through the batch APIs (1,000 a request)
 *   restart    at each history size, spawn → ready line (stockmesh) / listening (PouchDB) → first
 *              accepted write of a new movement (retried every 5 ms while refused or not yet 201),
 *              RSS of the process at that moment; --local-restarts per side, alternating sides
 *   disk       du of each data folder at each history size (after a clean stop)
 *
 * Both sides are measured with the same client code (node:http, keep-alive agent). Everything runs
 * in a temp folder removed at the end; the children are killed on exit.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { CATALOG_SIZE, Movements, log, median, percentile, skuOf, type Input } from './workload.ts'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.join(here, '..')
/** The project copy whose bin/stockmesh.mjs the stockmesh side runs (see LocalOptions.src). */
let cliRoot = root

/** The committed tree of this checkout, exported to `dir`, node_modules linked, compiled to dir/dist. */
function buildHead(dir: string): void {
  mkdirSync(dir, { recursive: true })
  execFileSync('sh', ['-c', 'git -C "$0" archive HEAD bin src scripts package.json tsconfig.json tsconfig.build.json | tar -x -C "$1"', root, dir])
  symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir')
  execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--noCheck'], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] })
  // As `npm run build:node` does: the CLI bundled into dist/stockmesh.mjs, which bin/stockmesh.mjs runs.
  execFileSync(process.execPath, ['scripts/bundleCli.mjs'], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] })
}

/** Which code the stockmesh side runs, and whether its dist/ is older than its src/. */
function describeCli(from: string): LocalResult['cli'] {
  let commit = 'unknown'
  try {
    commit = execFileSync('git', ['-C', from === 'head' ? root : cliRoot, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()
  } catch {
    // not a checkout
  }
  const built = statSync(path.join(cliRoot, 'dist', 'cli.js')).mtimeMs
  const newer: string[] = []
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (p.endsWith('.ts') && statSync(p).mtimeMs > built) newer.push(path.relative(cliRoot, p))
    }
  }
  walk(path.join(cliRoot, 'src'))
  return { from, commit: from === 'head' ? `${commit} (committed tree, exported and compiled by the run)` : commit, builtAt: new Date(built).toISOString(), srcNewerThanDist: newer.slice(0, 10) }
}

export interface LocalOptions {
  /** Concurrent scanners, one measurement each. */
  scanners: number[]
  /** Movements per side at each scanner count. */
  scanned: number
  /** Movements of the import, and per request. */
  importSize: number
  importBatch: number
  /** Total movements at which restarts and disk are measured. */
  histories: number[]
  /** Restarts per side at each history size. */
  restarts: number
  /**
   * Where the stockmesh CLI runs from: undefined = this checkout's bin/ and dist/ as built;
   * 'head' = the committed tree (git archive HEAD) exported into the temp folder and compiled there
   * (what to use while someone edits src/); a folder = another built copy of the project.
   */
  src?: string
}

export interface Side {
  /** stockmesh or pouchdb */
  name: 'stockmesh' | 'pouchdb'
}

export interface ScanResult {
  scanners: number
  movements: number
  /** movements per second (all scanners together), wall time of each side's rounds summed. */
  stockmesh: { perS: number; p50: number; p99: number; errors: number }
  pouchdb: { perS: number; p50: number; p99: number; errors: number; syncWritesPerMovement: number }
}

export interface ImportResult {
  movements: number
  batch: number
  stockmesh: { ms: number; perS: number; errors: number }
  pouchdb: { ms: number; perS: number; errors: number; syncWritesPerBatch: number }
}

export interface RestartRun {
  /** spawn → ready line (stockmesh) / listening line (PouchDB) */
  readyMs: number
  /** spawn → first 201 for a new movement */
  firstWriteMs: number
  /** VmRSS of the process when the first 201 arrived */
  rss: number
  /** answers other than 201 (and refused connections) before the first 201 */
  refused: number
  /** SIGTERM → exit, right after the first accepted write (a clean stop) */
  stopMs?: number
  /** VmRSS once settled: SETTLE_MS after the first accepted write, idle (last restart of the largest size only) */
  rssSettled?: number
}

/** How long a restarted server is left idle before its settled RSS is read (every movement indexed long before). */
export const SETTLE_MS = 30_000

export interface HistoryResult {
  movements: number
  /** time to top up from the previous size through the batch APIs (1,000 a request) */
  fill: { stockmesh: number; pouchdb: number }
  /** movements added by the top-up */
  filled?: { stockmesh: number; pouchdb: number }
  disk: { stockmesh: number; pouchdb: number }
  restarts: { stockmesh: RestartRun[]; pouchdb: RestartRun[] }
  pouchSyncWritesFirstPut: number
  /** SIGTERM → exit after the top-up (the server had been running since the scanners) */
  stopAfterFill?: { stockmesh: number; pouchdb: number }
}

export interface LocalResult {
  options: LocalOptions
  versions: Record<string, string>
  /** how fsync was forced on the PouchDB side, and the check at the start of the run */
  fsyncCheck: { method: string; strace?: string; syncWritesPerPut: number; stockmeshStrace?: string }
  scan: ScanResult[]
  import: ImportResult
  history: HistoryResult[]
  stockmeshStderr: string[]
  /** Start-up floors, median of 3 spawns to exit: \`node -e 0\`, and \`node bin/stockmesh.mjs --help\` (loading the CLI's modules). */
  floors?: { nodeMs: number; cliHelpMs: number }
  /** What the stockmesh side ran: the folder, its commit, and when its dist/cli.js was built. */
  cli: { from: string; commit: string; builtAt: string; srcNewerThanDist: string[] }
}

// ---- HTTP client, the same for both sides ------------------------------------------------------

interface Answer {
  status: number
  body: string
}

function request(agent: http.Agent, port: number, method: string, urlPath: string, body?: unknown): Promise<Answer> {
  const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, agent, headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {} }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(data)
  })
}

const newAgent = () => new http.Agent({ keepAlive: true, maxSockets: 64 })
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The write of one movement on each side. */
function writeOne(side: Side['name'], agent: http.Agent, port: number, m: Input): Promise<Answer> {
  return side === 'stockmesh' ? request(agent, port, 'POST', '/api/movements', m) : request(agent, port, 'PUT', `/bench/${m.id}`, m)
}

/** A batch on each side; counts what was not accepted. */
async function writeBatch(side: Side['name'], agent: http.Agent, port: number, ms: Input[]): Promise<number> {
  if (side === 'stockmesh') {
    const a = await request(agent, port, 'POST', '/api/movements', { movements: ms })
    if (a.status !== 201) return ms.length
    return (JSON.parse(a.body) as { results: Array<{ status: string }> }).results.filter((r) => r.status !== 'recorded').length
  }
  const a = await request(agent, port, 'POST', '/bench/_bulk_docs', { docs: ms.map((m) => ({ _id: m.id, ...m })) })
  if (a.status !== 201) return ms.length
  return (JSON.parse(a.body) as Array<{ ok?: boolean }>).filter((r) => !r.ok).length
}

// ---- child processes ---------------------------------------------------------------------------

const children = new Set<ChildProcess>()
/** Temp folders of this run: removed at the end, and on exit whatever happened. */
const temps = new Set<string>()
function killChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
}
process.on('exit', () => {
  killChildren()
  for (const t of temps) rmSync(t, { recursive: true, force: true })
})

interface Running {
  proc: ChildProcess
  port: number
  /** spawn → ready/listening line, ms */
  readyMs: number
  t0: number
  stderr: string[]
}

/** bench/localPouchServer.ts as plain JavaScript: node runs it with no TypeScript loader. */
let pouchCode: string | undefined
function pouchServerCode(): string {
  pouchCode ??= ts.transpileModule(readFileSync(path.join(here, 'localPouchServer.ts'), 'utf8'), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false } }).outputText
  return pouchCode
}

function start(side: Side['name'], dir: string, extra: string[] = [], port = 0): Promise<Running> {
  const argv = side === 'stockmesh' ? [path.join(cliRoot, 'bin', 'stockmesh.mjs'), 'site', '--data', dir, '--port', String(port), '--log-level', 'warn', ...extra] : ['--input-type=module', '-e', pouchServerCode(), dir, 'sync', String(port)]
  const t0 = performance.now()
  const proc = spawn(process.execPath, argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(proc)
  const stderr: string[] = []
  proc.stderr!.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n')) if (line.trim() && stderr.length < 200) stderr.push(line)
  })
  return new Promise((resolve, reject) => {
    let out = ''
    const onData = (d: Buffer) => {
      out += d.toString()
      const m = side === 'stockmesh' ? /ready at http:\/\/127\.0\.0\.1:(\d+)\//.exec(out) : /\{"port":(\d+)\}/.exec(out)
      if (m) {
        proc.stdout!.off('data', onData)
        proc.stdout!.resume()
        resolve({ proc, port: Number(m[1]), readyMs: performance.now() - t0, t0, stderr })
      }
    }
    proc.stdout!.on('data', onData)
    proc.on('error', reject)
    proc.on('exit', (code) => reject(new Error(`${side} exited ${code} before it was ready: ${stderr.slice(-5).join(' | ')}`)))
  })
}

/** A free loopback port (bound, read, released). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

/**
 * Spawns the server on a port chosen beforehand and posts a new movement from the moment of the
 * spawn until one is accepted (201), retrying every 5 ms while the connection is refused or the
 * answer is not yet a 201: it does not wait for the ready line.
 */
async function restart(side: Side['name'], dir: string, m: Input): Promise<RestartRun & { running: Running }> {
  const port = await freePort()
  const t0 = performance.now()
  let failed: unknown
  const ready = start(side, dir, [], port)
  ready.catch((e: unknown) => (failed = e))
  const agent = new http.Agent({ keepAlive: false })
  let refused = 0
  for (;;) {
    if (failed) throw failed
    try {
      const a = await writeOne(side, agent, port, { ...m, at: Date.now() })
      if (a.status === 201) {
        const firstWriteMs = performance.now() - t0
        const running = await ready
        const rss = vmRss(running.proc.pid!)
        agent.destroy()
        return { readyMs: running.readyMs, firstWriteMs, rss, refused, running }
      }
      refused++
      if (refused > 20000) throw new Error(`${side}: no 201 after ${refused} tries: ${a.status} ${a.body.slice(0, 200)}`)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code !== 'ECONNREFUSED' && code !== 'ECONNRESET') throw error
      refused++
    }
    await sleep(5)
  }
}

function vmRss(pid: number): number {
  const m = /^VmRSS:\s*(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) * 1024 : NaN
}

/** SIGTERM, and waits for the exit (SIGKILL after 60 s); the ms it took. */
async function stop(r: Running): Promise<number> {
  if (r.proc.exitCode !== null || r.proc.signalCode !== null) return 0
  const t0 = performance.now()
  r.proc.removeAllListeners('exit')
  const exited = new Promise<void>((resolve) =>
    r.proc.once('exit', () => {
      children.delete(r.proc)
      resolve()
    }),
  )
  r.proc.kill('SIGTERM')
  const timer = setTimeout(() => r.proc.kill('SIGKILL'), 60_000)
  await exited
  clearTimeout(timer)
  return performance.now() - t0
}

/** Median ms of 3 spawns of node with these arguments, to exit. */
function spawnMs(argv: string[]): number {
  const v: number[] = []
  for (let i = 0; i < 3; i++) {
    const t = performance.now()
    execFileSync(process.execPath, argv, { cwd: cliRoot, stdio: 'ignore' })
    v.push(performance.now() - t)
  }
  return median(v)
}

function du(dir: string): number {
  return Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split(/\s+/)[0])
}

async function pouchWrites(agent: http.Agent, port: number): Promise<{ writes: number; syncWrites: number }> {
  return JSON.parse((await request(agent, port, 'GET', '/_bench/writes')).body) as { writes: number; syncWrites: number }
}

// ---- the piece ---------------------------------------------------------------------------------

function version(pkg: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(root, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return '?'
  }
}

/** strace on the PouchDB server while it takes 20 PUTs: fdatasync calls counted (if strace is here). */
async function straceCheck(side: Side['name'], pid: number, port: number, gen: () => Input): Promise<string | undefined> {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' })
  } catch {
    return undefined
  }
  const outFile = path.join(os.tmpdir(), `stockmesh-local-strace-${process.pid}.txt`)
  const tracer = spawn('strace', ['-f', '-p', String(pid), '-e', 'trace=fsync,fdatasync', '-o', outFile], { stdio: ['ignore', 'ignore', 'pipe'] })
  children.add(tracer)
  let attached = ''
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 3000)
    tracer.stderr!.on('data', (d: Buffer) => {
      attached += d.toString()
      if (/attached/.test(attached)) {
        clearTimeout(t)
        setTimeout(resolve, 300)
      }
    })
  })
  try {
    if (!/attached/.test(attached)) return `strace could not attach (${attached.trim().split('\n')[0] ?? 'no output'})`
    const agent = newAgent()
    for (let i = 0; i < 20; i++) await writeOne(side, agent, port, gen())
    agent.destroy()
    await sleep(300)
    tracer.kill('SIGINT')
    await new Promise((r) => tracer.once('exit', r))
    const lines = readFileSync(outFile, 'utf8').split('\n')
    const fdatasync = lines.filter((l) => /fdatasync\(/.test(l)).length
    const fsync = lines.filter((l) => /\bfsync\(/.test(l)).length
    return `strace -f -e trace=fsync,fdatasync on the server during 20 ${side === 'pouchdb' ? 'PUTs' : 'single POSTs'}: ${fdatasync} fdatasync, ${fsync} fsync`
  } finally {
    if (tracer.exitCode === null) tracer.kill('SIGKILL')
    children.delete(tracer)
    rmSync(outFile, { force: true })
  }
}

async function scanRound(side: Side['name'], port: number, movements: Input[], scanners: number): Promise<{ ms: number; latencies: number[]; errors: number; firstError?: string }> {
  const agent = newAgent()
  const latencies: number[] = []
  let errors = 0
  let firstError: string | undefined
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: scanners }, async (_, k) => {
      for (let i = k; i < movements.length; i += scanners) {
        const t = performance.now()
        const a = await writeOne(side, agent, port, movements[i]!)
        latencies.push(performance.now() - t)
        if (a.status !== 201) {
          errors++
          firstError ??= `${a.status} ${a.body.slice(0, 200)}`
        }
      }
    }),
  )
  const ms = performance.now() - t0
  agent.destroy()
  return { ms, latencies, errors, ...(firstError ? { firstError } : {}) }
}

export async function localBench(o: LocalOptions): Promise<LocalResult> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'stockmesh-local-'))
  temps.add(tmp)
  const smDir = path.join(tmp, 'site')
  const pdDir = path.join(tmp, 'pouch', 'dbs')
  mkdirSync(pdDir, { recursive: true })
  const onSignal = () => {
    killChildren()
    rmSync(tmp, { recursive: true, force: true })
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const running: Partial<Record<Side['name'], Running>> = {}
  try {
    if (o.src === 'head') {
      log('local: exporting the committed tree (git archive HEAD) and compiling it')
      cliRoot = path.join(tmp, 'head')
      buildHead(cliRoot)
    } else if (o.src) cliRoot = path.resolve(o.src)
    const cli = describeCli(o.src ?? 'checkout')
    if (cli.srcNewerThanDist.length) log(`local: warning: ${cliRoot}/dist is older than ${cli.srcNewerThanDist.join(', ')}`)
    // stockmesh: provision the site, stop it, import the bench catalog (as a user would).
    log('local: provisioning the stockmesh site and importing the 2,000-SKU catalog and 4 reason codes')
    const first = await start('stockmesh', smDir, ['--site', 'BENCH'])
    await stop(first)
    const csv = path.join(tmp, 'catalog.csv')
    writeFileSync(csv, 'sku,name,unit\n' + Array.from({ length: CATALOG_SIZE }, (_, i) => `${skuOf(i)},Product ${i},each\n`).join(''))
    // The reason codes the workload's adjustments and counts name (bench/workload.ts).
    const reasons = path.join(tmp, 'reasons.csv')
    writeFileSync(reasons, 'code,label\ndamaged,Damaged\nexpired,Expired\nfound,Found\ncycle-count,Cycle count\n')
    execFileSync(process.execPath, [path.join(cliRoot, 'bin', 'stockmesh.mjs'), 'catalog', 'import', '--data', smDir, csv, reasons], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] })

    running.stockmesh = await start('stockmesh', smDir)
    running.pouchdb = await start('pouchdb', pdDir)
    const sm = running.stockmesh
    const pd = running.pouchdb
    const ctl = newAgent()
    if ((await request(ctl, pd.port, 'PUT', '/bench')).status !== 201) throw new Error('pouchdb: could not create the database')

    const gen = new Movements(7, 'local')
    const fresh = () => gen.next(Date.now())
    // The fsync check: leveldb writes per PUT from the wrapper's counter, and strace if it is here.
    const w0 = await pouchWrites(ctl, pd.port)
    for (let i = 0; i < 20; i++) await writeOne('pouchdb', ctl, pd.port, fresh())
    const w1 = await pouchWrites(ctl, pd.port)
    const strace = await straceCheck('pouchdb', pd.proc.pid!, pd.port, fresh)
    const stockmeshStrace = await straceCheck('stockmesh', sm.proc.pid!, sm.port, fresh)
    const fsyncCheck = {
      method: 'leveldown wrapped so that put, del, batch and chained batch pass {sync:true} (leveldb fdatasyncs its log before answering)',
      ...(strace ? { strace } : {}),
      syncWritesPerPut: (w1.syncWrites - w0.syncWrites) / 20,
      ...(stockmeshStrace ? { stockmeshStrace } : {}),
    }
    log(`local: pouchdb fsync check: ${fsyncCheck.syncWritesPerPut} synced leveldb writes per PUT; ${strace ?? 'no strace'}`)
    if (stockmeshStrace) log(`local: stockmesh: ${stockmeshStrace}`)
    const count = { stockmesh: stockmeshStrace ? 20 : 0, pouchdb: 20 + (strace ? 20 : 0) }

    // Scanners.
    const scan: ScanResult[] = []
    for (const scanners of o.scanners) {
      const rounds = 2
      const per = Math.ceil(o.scanned / rounds)
      const acc = { stockmesh: { ms: 0, lat: [] as number[], errors: 0 }, pouchdb: { ms: 0, lat: [] as number[], errors: 0 } }
      const pw0 = await pouchWrites(ctl, pd.port)
      for (let r = 0; r < rounds; r++) {
        const movements = Array.from({ length: per }, fresh)
        const order: Array<Side['name']> = r % 2 === 0 ? ['stockmesh', 'pouchdb'] : ['pouchdb', 'stockmesh']
        for (const side of order) {
          const res = await scanRound(side, running[side]!.port, movements, scanners)
          acc[side].ms += res.ms
          acc[side].lat.push(...res.latencies)
          acc[side].errors += res.errors
          count[side] += per - res.errors
          if (res.firstError) log(`local: ${side}: ${res.errors} errors, first: ${res.firstError}`)
        }
      }
      const pw1 = await pouchWrites(ctl, pd.port)
      const n = per * rounds
      const stat = (a: { ms: number; lat: number[]; errors: number }) => ({ perS: (n / a.ms) * 1000, p50: percentile(a.lat, 50), p99: percentile(a.lat, 99), errors: a.errors })
      const row: ScanResult = { scanners, movements: n, stockmesh: stat(acc.stockmesh), pouchdb: { ...stat(acc.pouchdb), syncWritesPerMovement: (pw1.syncWrites - pw0.syncWrites) / n } }
      scan.push(row)
      log(`local: ${scanners} scanner(s), ${n} movements a side: stockmesh ${row.stockmesh.perS.toFixed(0)}/s p50 ${row.stockmesh.p50.toFixed(1)} p99 ${row.stockmesh.p99.toFixed(1)} ms; pouchdb ${row.pouchdb.perS.toFixed(0)}/s p50 ${row.pouchdb.p50.toFixed(1)} p99 ${row.pouchdb.p99.toFixed(1)} ms`)
    }

    // The import: the same movements on both sides, one after the other, in batches.
    const importMovements = Array.from({ length: o.importSize }, fresh)
    const imp = {} as ImportResult
    imp.movements = o.importSize
    imp.batch = o.importBatch
    const pi0 = await pouchWrites(ctl, pd.port)
    for (const side of ['stockmesh', 'pouchdb'] as const) {
      const agent = newAgent()
      const t0 = performance.now()
      let errors = 0
      for (let i = 0; i < importMovements.length; i += o.importBatch) errors += await writeBatch(side, agent, running[side]!.port, importMovements.slice(i, i + o.importBatch))
      const ms = performance.now() - t0
      agent.destroy()
      count[side] += o.importSize - errors
      ;(imp as unknown as Record<string, unknown>)[side] = { ms, perS: (o.importSize / ms) * 1000, errors }
    }
    const pi1 = await pouchWrites(ctl, pd.port)
    imp.pouchdb.syncWritesPerBatch = (pi1.syncWrites - pi0.syncWrites) / Math.ceil(o.importSize / o.importBatch)
    log(`local: import of ${o.importSize} in batches of ${o.importBatch}: stockmesh ${(imp.stockmesh.ms / 1000).toFixed(2)} s (${imp.stockmesh.errors} refused), pouchdb ${(imp.pouchdb.ms / 1000).toFixed(2)} s (${imp.pouchdb.errors} refused)`)

    // History sizes: top up, stop, du, restarts.
    const history: HistoryResult[] = []
    for (const size of [...o.histories].sort((a, b) => a - b)) {
      const fill = { stockmesh: 0, pouchdb: 0 }
      const filled = { stockmesh: 0, pouchdb: 0 }
      for (const side of ['stockmesh', 'pouchdb'] as const) {
        const r = running[side] ?? (running[side] = await start(side, side === 'stockmesh' ? smDir : pdDir))
        const agent = newAgent()
        filled[side] = Math.max(0, size - count[side])
        const t0 = performance.now()
        while (count[side] < size) {
          const n = Math.min(1000, size - count[side])
          const errors = await writeBatch(side, agent, r.port, Array.from({ length: n }, fresh))
          if (errors === n) throw new Error(`${side}: a batch of ${n} was refused while building history`)
          count[side] += n - errors
        }
        fill[side] = performance.now() - t0
        agent.destroy()
      }
      log(`local: history ${size}: filled in ${(fill.stockmesh / 1000).toFixed(1)} s (stockmesh), ${(fill.pouchdb / 1000).toFixed(1)} s (pouchdb)`)
      const stopAfterFill = { stockmesh: 0, pouchdb: 0 }
      for (const side of ['stockmesh', 'pouchdb'] as const) {
        stopAfterFill[side] = await stop(running[side]!)
        delete running[side]
      }
      const disk = { stockmesh: du(smDir), pouchdb: du(pdDir) }
      const restarts: HistoryResult['restarts'] = { stockmesh: [], pouchdb: [] }
      let pouchSyncWritesFirstPut = NaN
      for (let k = 0; k < o.restarts; k++) {
        const order: Array<Side['name']> = k % 2 === 0 ? ['stockmesh', 'pouchdb'] : ['pouchdb', 'stockmesh']
        for (const side of order) {
          await sleep(300)
          const { running: r, ...run } = await restart(side, side === 'stockmesh' ? smDir : pdDir, fresh())
          count[side]++
          if (side === 'pouchdb') pouchSyncWritesFirstPut = (await pouchWrites(ctl, r.port)).syncWrites
          if (side === 'stockmesh') for (const line of r.stderr) stderrSeen.add(line.slice(0, 300))
          // The memory a site keeps (issue 7: under 150 MB at 100k, fully indexed), not the peak of its start.
          let rssSettled: number | undefined
          if (k === o.restarts - 1 && size === Math.max(...o.histories)) {
            await sleep(SETTLE_MS)
            rssSettled = vmRss(r.proc.pid!)
            log(`local: ${side} at ${size}: RSS ${(rssSettled / 2 ** 20).toFixed(0)} MB after ${SETTLE_MS / 1000} s idle`)
          }
          const stopMs = await stop(r)
          restarts[side].push({ ...run, stopMs, rssSettled })
          log(`local: restart at ${size} (${side}): ready ${run.readyMs.toFixed(0)} ms, first write ${run.firstWriteMs.toFixed(0)} ms, RSS ${(run.rss / 2 ** 20).toFixed(0)} MB, ${run.refused} tries before the 201; clean stop right after took ${stopMs.toFixed(0)} ms`)
        }
      }
      history.push({ movements: size, fill, filled, disk, restarts, pouchSyncWritesFirstPut, stopAfterFill })
    }
    ctl.destroy()
    for (const r of Object.values(running)) if (r) await stop(r)
    const floors = { nodeMs: spawnMs(['-e', '0']), cliHelpMs: spawnMs([path.join(cliRoot, 'bin', 'stockmesh.mjs'), '--help']) }
    log(`local: start-up floors: node -e 0 ${floors.nodeMs.toFixed(0)} ms, stockmesh --help ${floors.cliHelpMs.toFixed(0)} ms`)
    return {
      options: o,
      versions: { 'express-pouchdb': version('express-pouchdb'), 'pouchdb-core': version('pouchdb-core'), 'pouchdb-adapter-leveldb': version('pouchdb-adapter-leveldb'), leveldown: version('leveldown') },
      fsyncCheck,
      scan,
      import: imp,
      history,
      stockmeshStderr: [...new Set([...sm.stderr, ...stderrSeen])].slice(0, 30),
      cli,
      floors,
    }
  } finally {
    for (const r of Object.values(running)) if (r) await stop(r).catch(() => undefined)
    killChildren()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    rmSync(tmp, { recursive: true, force: true })
  }
}

const stderrSeen = new Set<string>()
