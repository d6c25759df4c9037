/**
 * Sections 1 and 2: one site grows to each size in turn. At each size: the cost of single
 * movements (real SiteNode, and the same book over plain Automerge copies of the same documents),
 * then a restart measured in fresh child processes (batched history as built, and a copy rebuilt
 * with one change per movement).
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as A from '@automerge/automerge'
import { journalEntries, journalSize, journalTotals, lastSeqOf, latestJournals } from '../src/docs/ledger.ts'
import type { SiteNode } from '../src/node/siteNode.ts'
import { logKey, readLog } from '../src/node/storage/documentStorage.ts'
import { DurableFsStorageAdapter } from '../src/node/storage/DurableFsStorageAdapter.ts'
import type { JournalDoc, LedgerDoc } from '../src/schema/ledger.ts'
import { siteContents, writeSingleChangeCopy } from './replay.ts'
import { NODE, extendHistory, measureSingles, memBook, nextInputs, openSite, ownJournal, watchCompactions, type Sample } from './site.ts'
import { BenchClock, Movements, STEP_MS, cpuMs, fmtInt, gc, log, lotInputs, median, percentile } from './workload.ts'

const here = path.dirname(fileURLToPath(import.meta.url))

/** Movements in a journal, whether `m` holds them directly or in buckets. */
export function movementsIn(journal: JournalDoc): number {
  let n = 0
  for (const v of Object.values((journal.m ?? {}) as Record<string, object>)) n += 'sku' in v ? 1 : Object.keys(v).length
  return n
}

export interface Dist {
  p50: number
  p99: number
  max: number
  mean: number
}
const dist = (v: number[]): Dist => ({ p50: percentile(v, 50), p99: percentile(v, 99), max: Math.max(...v), mean: v.reduce((a, b) => a + b, 0) / v.length })

export interface CommitResult {
  size: number
  measured: number
  historyMs: number
  historyCpuMs: number
  /** This node's latest journal: movements in it before and after the measured ones, and how many journals they opened. */
  journalFill: { before: number; after: number; opened: number }
  /** Whether the journal keeps its movements in buckets (`m[bucket][seq]`) rather than one flat map. */
  journalBucketed: boolean
  /** SKUs with stock on record. */
  skus: number
  /** Keys of the latest journal's `tot` (a counter per SKU moved in it) and `open` (opening balances) after the measured movements. */
  totKeys: number
  openKeys: number
  /** cpuNoCompaction / wallNoCompaction: movements that neither compacted a document nor opened a journal. */
  site: { cpu: Dist; wall: Dist; cpuNoCompaction: Dist; wallNoCompaction: Dist }
  compactions: Record<string, number>
  compactionSaveMs: number[]
  /** The slowest movements (by wall time). */
  spikes: Array<Pick<Sample, 'at' | 'cpu' | 'wall' | 'compacted' | 'opened'>>
  /** Same movements, same documents, plain Automerge, no repo, no storage. */
  memory: { book: Dist; automerge: Dist }
  /** Lot movements (receipts of a new lot, first-expiry-first-out issues), SiteNode CPU per movement. */
  lots?: { measured: number; receipt: Dist; issue: Dist }
}

export interface ChildResult {
  importMs: number
  openMs: number
  openCpuMs: number
  sinceProcessStartMs: number
  sinceProcessStartCpuMs: number
  rssUsable: number
  heapUsable: number
  /** null when the child stopped at usable. */
  fullMs: number | null
  fullCpuMs: number | null
  rssFull: number | null
  heapFull: number | null
  rssSettled: number | null
  heapSettled: number | null
  onHandTotal: number
  skus: number
  lastSeq: number
  ownLoaded: boolean
  journalsAtUsable: number
  journalsFull: number | null
}

export interface LoadResult {
  size: number
  variant: 'batched' | 'single-change'
  runs: ChildResult[]
  median: Record<keyof ChildResult, number>
  disk: { bytes: number; allocated: number; files: number }
  /** Journals rebuilt (single-change variant only). */
  rebuilt?: { journalBytes: number; changes: number; journals: number }
  /** Children saw the same on hand and posted mark as the writer. */
  consistent: boolean
  /** The documents open() reads, loaded in this process the way automerge-repo does and with A.load. */
  docs: DocLoad[]
}

export interface DocLoad {
  doc: string
  bytes: number
  chunks: number
  changes: number
  /** automerge-repo 2.5.6: A.loadIncremental(A.init(), chunks) in StorageSubsystem.loadDoc, then A.diff from [] in DocHandle. */
  repoMs: number
  diffMs: number
  /** A.load of the same bytes. */
  loadMs: number
}

/** Loads each document the way automerge-repo does, and with A.load, timing CPU (run in a fresh process: see docLoads). */
export async function measureDocLoads(dataDir: string, docs: Array<{ doc: string; url: string }>): Promise<DocLoad[]> {
  const storage = new DurableFsStorageAdapter(path.join(dataDir, 'automerge'))
  const once = async (): Promise<DocLoad[]> => {
    const out: DocLoad[] = []
    for (const { doc, url } of docs) {
      const id = url.slice('automerge:'.length)
      // Snapshots, incremental chunks and the change log's records (src/node/storage/documentStorage.ts).
      const log = await storage.load(logKey(id))
      const chunks = [...(await storage.loadRange([id, 'snapshot'])), ...(await storage.loadRange([id, 'incremental'])), ...(log ? readLog(log).payloads.map((data) => ({ data })) : [])]
      const bytes = new Uint8Array(Buffer.concat(chunks.map((c) => c.data!)))
      gc()
      let c0 = process.cpuUsage()
      const viaRepo = A.loadIncremental(A.init<unknown>(), bytes)
      const repoMs = cpuMs(c0)
      c0 = process.cpuUsage()
      A.diff(viaRepo, [], A.getHeads(viaRepo))
      const diffMs = cpuMs(c0)
      gc()
      c0 = process.cpuUsage()
      const loaded = A.load<Record<string, unknown>>(bytes)
      void Object.keys(loaded)
      const loadMs = cpuMs(c0)
      out.push({ doc, bytes: bytes.length, chunks: chunks.length, changes: A.getAllChanges(loaded).length, repoMs, diffMs, loadMs })
    }
    return out
  }
  // Two passes, the second reported: the first pays for compiling the wasm and JS code paths.
  await once()
  return once()
}

/** measureDocLoads in a fresh child process, so that the benchmark's own large heap does not slow it down. */
function docLoads(dataDir: string, docs: Array<{ doc: string; url: string }>): Promise<DocLoad[]> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(here, 'loadChild.ts'), dataDir, '0', 'docs', JSON.stringify(docs)], { cwd: path.dirname(here), stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()))
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()))
    proc.on('error', reject)
    proc.on('exit', (code) => {
      const line = out.trim().split('\n').pop()
      if (code !== 0 || !line) reject(new Error(`doc-load child exited ${code}: ${err.slice(-2000)}`))
      else resolve(JSON.parse(line) as DocLoad[])
    })
  })
}

export interface SiteBenchResult {
  commit: CommitResult[]
  load: LoadResult[]
}

function diskUsage(dir: string): LoadResult['disk'] {
  let bytes = 0
  let allocated = 0
  let files = 0
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const st = statSync(path.join(entry.parentPath, entry.name))
    bytes += st.size
    allocated += st.blocks * 512
    files++
  }
  return { bytes, allocated, files }
}

function child(dataDir: string, now: number, usableOnly: boolean): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(here, 'loadChild.ts'), dataDir, String(now), ...(usableOnly ? ['usable-only'] : [])], { cwd: path.dirname(here), stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()))
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()))
    proc.on('error', reject)
    proc.on('exit', (code) => {
      const line = out.trim().split('\n').pop()
      if (code !== 0 || !line) reject(new Error(`load child exited ${code}: ${err.slice(-2000)}`))
      else resolve(JSON.parse(line) as ChildResult)
    })
  })
}

function medians(runs: ChildResult[]): LoadResult['median'] {
  const out = {} as Record<string, number>
  for (const key of Object.keys(runs[0]!) as Array<keyof ChildResult>) out[key] = runs.some((r) => r[key] === null) ? NaN : median(runs.map((r) => Number(r[key])))
  return out as LoadResult['median']
}

/** How many lot movements are measured beside `measured` plain ones. */
const lotMeasured = (measured: number) => Math.min(measured, 500)

async function measureCommit(node: SiteNode, gen: Movements, clock: BenchClock, measured: number, history: { ms: number; cpu: number }): Promise<CommitResult> {
  const inputs = nextInputs(gen, clock, measured)
  // The Automerge part alone: copies of the ledger and the latest journals, same inputs.
  const journals = new Map<string, A.Doc<JournalDoc>>()
  for (const { url } of latestJournals(node.book.ledger)) journals.set(url, node.store.journal(url)!.handle.doc() as A.Doc<JournalDoc>)
  const memClock = new BenchClock()
  memClock.count = clock.count
  const { book, store } = memBook(memClock, { ledger: node.store.ledger.handle.doc() as A.Doc<LedgerDoc>, journals })
  for (const ref of store.journals.values()) book.indexJournal(ref)
  const before = ownJournal(node.book).size
  gc()
  log(`  ${measured} single movements, in-memory Automerge copy`)
  const mem = await measureSingles(book, inputs, memClock)
  gc()
  log(`  ${measured} single movements through the SiteNode (repo + fsync)`)
  const watch = watchCompactions(node)
  const site = await measureSingles(node.book, inputs, clock, watch)
  watch.stop()
  const calm = site.filter((s) => s.compacted.length === 0 && !s.opened)
  // Lot movements beside the plain ones: receipts of a new lot, and issues served first-expiry-first-out.
  const lotCount = lotMeasured(measured)
  log(`  ${lotCount} lot movements through the SiteNode (receipt by lot / first-expiry-first-out issue)`)
  gc()
  const lotSamples = await measureSingles(node.book, lotInputs(lotCount, (i) => clock.start + (clock.count + i) * STEP_MS, clock.count), clock)
  const latest = node.store.journal(ownJournal(node.book).url)!.doc()
  return {
    size: clock.count,
    measured,
    historyMs: history.ms,
    historyCpuMs: history.cpu,
    journalFill: { before, after: ownJournal(node.book).size, opened: site.filter((s) => s.opened).length },
    journalBucketed: Object.values((latest.m ?? {}) as Record<string, object>).some((v) => !('sku' in v)),
    skus: node.book.onHand().size,
    totKeys: [...journalTotals(latest)].length,
    openKeys: Object.keys(latest.open ?? {}).length,
    site: { cpu: dist(site.map((s) => s.cpu)), wall: dist(site.map((s) => s.wall)), cpuNoCompaction: dist(calm.map((s) => s.cpu)), wallNoCompaction: dist(calm.map((s) => s.wall)) },
    compactions: Object.fromEntries(watch.total),
    compactionSaveMs: watch.saveMs,
    spikes: [...site].sort((a, b) => b.wall - a.wall).slice(0, 8).map(({ at, cpu, wall, compacted, opened }) => ({ at, cpu, wall, compacted, opened })),
    memory: { book: dist(mem.map((s) => s.cpu)), automerge: dist(mem.map((s) => s.automerge)) },
    lots: { measured: lotCount, receipt: dist(lotSamples.filter((_, i) => i % 2 === 0).map((s) => s.cpu)), issue: dist(lotSamples.filter((_, i) => i % 2 === 1).map((s) => s.cpu)) },
  }
}

async function measureLoad(dir: string, size: number, now: number, runs: number, expected: { total: number; seq: number }, urls: Array<{ doc: string; url: string }>, singleChange?: { dir: string; rebuilt: LoadResult['rebuilt'] }): Promise<LoadResult[]> {
  const variants: Array<{ variant: LoadResult['variant']; dir: string; runs: ChildResult[] }> = [{ variant: 'batched', dir, runs: [] }]
  if (singleChange) variants.push({ variant: 'single-change', dir: singleChange.dir, runs: [] })
  // Interleaved, so that a noisy minute does not fall on one variant only.
  for (let i = 0; i < runs; i++) {
    for (const v of variants) {
      const r = await child(v.dir, now, v.variant === 'single-change')
      log(`  restart ${v.variant} #${i + 1}: usable in ${r.openMs.toFixed(0)} ms (${r.openCpuMs.toFixed(0)} ms CPU), RSS ${(r.rssUsable / 1048576).toFixed(0)} MB${r.fullMs === null ? '' : `; fully loaded in ${r.fullMs.toFixed(0)} ms`}`)
      v.runs.push(r)
    }
  }
  const docs = new Map<string, DocLoad[]>()
  for (const v of variants) docs.set(v.variant, await docLoads(v.dir, urls))
  return variants.map((v) => ({
    size,
    variant: v.variant,
    runs: v.runs,
    median: medians(v.runs),
    disk: diskUsage(v.dir),
    ...(v.variant === 'single-change' ? { rebuilt: singleChange!.rebuilt } : {}),
    consistent: v.runs.every((r) => r.onHandTotal === expected.total && r.lastSeq === expected.seq && r.ownLoaded),
    docs: docs.get(v.variant)!,
  }))
}

export async function siteBench(sizes: number[], opts: { commit: boolean; load: boolean; singleChange: boolean; runs: number; measured: number }): Promise<SiteBenchResult> {
  const result: SiteBenchResult = { commit: [], load: [] }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stockmesh-bench-'))
  const clock = new BenchClock()
  const gen = new Movements(1, 'a')
  try {
    log(`site in ${dir}: provisioning 2,000 products`)
    let node = await openSite(dir, clock)
    const ordered = [...sizes].sort((a, b) => a - b)
    for (const size of ordered) {
      const measured = opts.commit ? Math.min(opts.measured, Math.floor(size / 10)) : 0
      // The lot movements measured after the plain ones count towards the size too.
      const measuredLots = opts.commit ? lotMeasured(measured) : 0
      log(`history to ${size - measured - measuredLots} movements in batches of 500`)
      const w0 = performance.now()
      const c0 = process.cpuUsage()
      await extendHistory(node.book, gen, clock, size - measured - measuredLots, (n) => log(`  ${n} movements`))
      const history = { ms: performance.now() - w0, cpu: cpuMs(c0) }
      if (opts.commit) result.commit.push(await measureCommit(node, gen, clock, measured, history))
      if (opts.load) {
        await node.fullyLoaded
        const totals = node.book.onHand()
        const own = journalEntries(node.book.ledger).filter((e) => e.node === NODE).at(-1)!
        const expected = { total: [...totals.values()].reduce((a, b) => a + b, 0), seq: lastSeqOf(node.store.journal(own.url)!.doc()) }
        const contents = opts.singleChange ? await siteContents(node) : undefined
        const urls = [
          { doc: 'catalog', url: node.catalog.url },
          { doc: 'ledger', url: node.store.ledger.url },
          { doc: `latest journal (n=${own.n}, ${fmtInt(journalSize(node.store.journal(own.url)!.doc()))} movements)`, url: own.url },
        ]
        await node.close()
        let singleChange: { dir: string; rebuilt: LoadResult['rebuilt'] } | undefined
        if (contents) {
          log(`  rebuilding a copy with one change per movement`)
          const copy = `${dir}-single`
          // What open() reads of the journals: the latest. Older journals stay as built: only
          // `fullyLoaded` reads them, and that is not measured on this copy.
          singleChange = { dir: copy, rebuilt: await writeSingleChangeCopy(contents, dir, copy, own.n) }
        }
        try {
          result.load.push(...(await measureLoad(dir, clock.count, clock.now(), opts.runs, expected, urls, singleChange)))
        } finally {
          if (singleChange) rmSync(singleChange.dir, { recursive: true, force: true })
        }
        if (size === ordered.at(-1)) return result
        node = await openSite(dir, clock)
        await node.fullyLoaded
      }
    }
    await node.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return result
}
