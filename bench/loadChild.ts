/**
 * Child process of the restart benchmark: opens a site on an existing data folder and reports,
 * as one JSON line on stdout, the time and memory until `SiteNode.open()` resolves (usable) and
 * until `fullyLoaded` resolves (unless `usable-only`).
 * Usage: node --expose-gc --import tsx bench/loadChild.ts <dataDir> <nowMs> [usable-only]
 *        node --expose-gc --import tsx bench/loadChild.ts <dataDir> 0 docs '<json [{doc, url}]>'
 */
const [dataDir, nowArg, mode, docsArg] = process.argv.slice(2)
if (!dataDir) throw new Error('usage: loadChild.ts <dataDir> <nowMs>')
const now = Number(nowArg ?? Date.now())
const cpuTotal = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}
if (mode === 'docs') {
  // Per-document load costs (bench/siteBench.ts measureDocLoads), measured in this fresh process.
  const { measureDocLoads } = await import('./siteBench.ts')
  process.stdout.write(JSON.stringify(await measureDocLoads(dataDir, JSON.parse(docsArg!) as Array<{ doc: string; url: string }>)) + '\n')
  process.exit(0)
}
// performance.now() counts from process start, process.cpuUsage() from process start too.
const importStart = { wall: performance.now(), cpu: cpuTotal() }
const [{ SiteNode }, { default: pino }, { journalEntries, lastSeqOf }] = await Promise.all([
  import('../src/node/siteNode.ts'),
  import('pino'),
  import('../src/docs/ledger.ts'),
])
const before = { wall: performance.now(), cpu: cpuTotal() }
const node = await SiteNode.open({ dataDir, logger: pino({ level: 'silent' }), now: () => now })
const usable = { wall: performance.now(), cpu: cpuTotal() }
const memUsable = process.memoryUsage()
// What "usable" promises: on hand readable, this node's current journal loaded.
const totals = node.book.onHand()
const own = journalEntries(node.book.ledger).filter((e) => e.node === node.identity.node).at(-1)
const ownRef = own ? node.store.journal(own.url) : undefined
const ownLoaded = ownRef !== undefined
const lastSeq = ownRef ? lastSeqOf(ownRef.doc()) : 0
const journalsAtUsable = [...node.store.journals()].length
if (mode === 'usable-only') {
  const nulls = { fullMs: null, fullCpuMs: null, rssFull: null, heapFull: null, rssSettled: null, heapSettled: null, journalsFull: null }
  const usableResult = {
    importMs: before.wall - importStart.wall,
    importCpuMs: before.cpu - importStart.cpu,
    openMs: usable.wall - before.wall,
    openCpuMs: usable.cpu - before.cpu,
    sinceProcessStartMs: usable.wall,
    sinceProcessStartCpuMs: usable.cpu,
    rssUsable: memUsable.rss,
    heapUsable: memUsable.heapUsed,
    onHandTotal: [...totals.values()].reduce((a, b) => a + b, 0),
    skus: totals.size,
    lastSeq,
    ownLoaded,
    journalsAtUsable,
    ...nulls,
  }
  process.stdout.write(JSON.stringify(usableResult) + '\n')
  process.exit(0)
}
await node.fullyLoaded
const full = { wall: performance.now(), cpu: cpuTotal() }
const memFull = process.memoryUsage()
;(globalThis as { gc?: () => void }).gc?.()
const memSettled = process.memoryUsage()
const result = {
  importMs: before.wall - importStart.wall,
  importCpuMs: before.cpu - importStart.cpu,
  openMs: usable.wall - before.wall,
  openCpuMs: usable.cpu - before.cpu,
  sinceProcessStartMs: usable.wall,
  sinceProcessStartCpuMs: usable.cpu,
  rssUsable: memUsable.rss,
  heapUsable: memUsable.heapUsed,
  fullMs: full.wall - before.wall,
  fullCpuMs: full.cpu - before.cpu,
  rssFull: memFull.rss,
  heapFull: memFull.heapUsed,
  rssSettled: memSettled.rss,
  heapSettled: memSettled.heapUsed,
  onHandTotal: [...totals.values()].reduce((a, b) => a + b, 0),
  skus: totals.size,
  lastSeq,
  ownLoaded,
  journalsAtUsable,
  journalsFull: [...node.store.journals()].length,
}
process.stdout.write(JSON.stringify(result) + '\n')
process.exit(0)
export {}
