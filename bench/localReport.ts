/**
 * Renders the local section of BENCHMARKS.md (bench/local.ts results: stockmesh's local HTTP API
 * against a durable PouchDB server), and merges it into an existing BENCHMARKS.md so that a
 * local-only run keeps everything else in the file.
 */
import type { Machine } from './report.ts'
import { SETTLE_MS, type HistoryResult, type LocalResult, type RestartRun } from './local.ts'
import { fmt, fmtInt, median } from './workload.ts'

export const LOCAL_START = '<!-- local:start (bench/localReport.ts) -->'
export const LOCAL_END = '<!-- local:end -->'
/** Issue 7: a restarted site records within 1 s of process start at 100k movements. */
export const RESTART_TARGET_MS = 1000
/** Issue 7: a site with 100k movements, fully indexed, stays under this RSS. */
export const RSS_TARGET_MB = 150

function table(headers: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n')
}
const mib = (b: number) => `${fmt(b / 2 ** 20)} MB`
const ms = (v: number) => `${fmt(v, v < 10 ? 2 : v < 100 ? 1 : 0)} ms`
const ratio = (a: number, b: number) => `${fmt(a / b, 2)}x`
const ahead = (ok: boolean) => (ok ? 'yes' : '**no**')
const med = (runs: RestartRun[], f: (r: RestartRun) => number) => median(runs.map(f))
const k = (n: number) => (n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : fmtInt(n))

export function renderLocalSection(r: LocalResult, m: Machine, durationS: number): string {
  const fsyncRow = (perWrite: number, what: string) => (perWrite >= 1 ? `yes: ${fmt(perWrite, 2)} synced leveldb writes per ${what}` : `**no** (${fmt(perWrite, 2)} per ${what})`)
  const rows: Array<Array<string | number>> = []
  for (const s of r.scan) {
    const label = `${s.scanners} scanner${s.scanners === 1 ? '' : 's'}`
    const fs = fsyncRow(s.pouchdb.syncWritesPerMovement, 'PUT')
    rows.push([`${label}: throughput (movements/s)`, fmt(s.stockmesh.perS, 0), fmt(s.pouchdb.perS, 0), `${ratio(s.stockmesh.perS, s.pouchdb.perS)} (>1: stockmesh faster)`, fs, ahead(s.stockmesh.perS > s.pouchdb.perS)])
    rows.push([`${label}: latency p50`, ms(s.stockmesh.p50), ms(s.pouchdb.p50), `${ratio(s.stockmesh.p50, s.pouchdb.p50)} (<1: stockmesh faster)`, fs, ahead(s.stockmesh.p50 < s.pouchdb.p50)])
    rows.push([`${label}: latency p99`, ms(s.stockmesh.p99), ms(s.pouchdb.p99), `${ratio(s.stockmesh.p99, s.pouchdb.p99)} (<1: stockmesh faster)`, fs, ahead(s.stockmesh.p99 < s.pouchdb.p99)])
  }
  const imp = r.import
  rows.push([`Import of ${fmtInt(imp.movements)} movements, batches of ${imp.batch}`, `${fmt(imp.stockmesh.ms / 1000, 2)} s (${fmtInt(imp.stockmesh.perS)}/s)`, `${fmt(imp.pouchdb.ms / 1000, 2)} s (${fmtInt(imp.pouchdb.perS)}/s)`, `${ratio(imp.stockmesh.ms, imp.pouchdb.ms)} time (<1: stockmesh faster)`, fsyncRow(imp.pouchdb.syncWritesPerBatch, 'batch'), ahead(imp.stockmesh.ms < imp.pouchdb.ms)])
  for (const h of r.history) {
    const smFirst = med(h.restarts.stockmesh, (x) => x.firstWriteMs)
    const pdFirst = med(h.restarts.pouchdb, (x) => x.firstWriteMs)
    const fs = h.pouchSyncWritesFirstPut >= 1 ? `yes: ${fmtInt(h.pouchSyncWritesFirstPut)} synced leveldb writes up to the first 201 (opening the database included)` : '**no**'
    rows.push([`Restart at ${k(h.movements)} movements: spawn → first accepted write (median of ${h.restarts.stockmesh.length})`, ms(smFirst), ms(pdFirst), `${ratio(smFirst, pdFirst)} (<1: stockmesh faster)`, fs, ahead(smFirst < pdFirst)])
    const smReady = med(h.restarts.stockmesh, (x) => x.readyMs)
    const pdReady = med(h.restarts.pouchdb, (x) => x.readyMs)
    rows.push([`Restart at ${k(h.movements)}: spawn → ready line / listening`, ms(smReady), ms(pdReady), `${ratio(smReady, pdReady)} (<1: stockmesh faster)`, '–', ahead(smReady < pdReady)])
    const smRss = med(h.restarts.stockmesh, (x) => x.rss)
    const pdRss = med(h.restarts.pouchdb, (x) => x.rss)
    rows.push([`Restart at ${k(h.movements)}: RSS at the first accepted write`, mib(smRss), mib(pdRss), `${ratio(smRss, pdRss)} (<1: stockmesh smaller)`, '–', ahead(smRss < pdRss)])
    const smSettled = h.restarts.stockmesh.find((x) => x.rssSettled !== undefined)?.rssSettled
    const pdSettled = h.restarts.pouchdb.find((x) => x.rssSettled !== undefined)?.rssSettled
    if (smSettled !== undefined && pdSettled !== undefined) {
      rows.push([`Restart at ${k(h.movements)}: RSS ${SETTLE_MS / 1000} s later, idle, every movement indexed`, mib(smSettled), mib(pdSettled), `${ratio(smSettled, pdSettled)} (<1: stockmesh smaller)`, '–', ahead(smSettled < pdSettled)])
    }
    rows.push([`Data on disk at ${k(h.movements)} movements`, `${mib(h.disk.stockmesh)} (${fmtInt(h.disk.stockmesh / h.movements)} B/movement)`, `${mib(h.disk.pouchdb)} (${fmtInt(h.disk.pouchdb / h.movements)} B/movement)`, `${ratio(h.disk.stockmesh, h.disk.pouchdb)} (<1: stockmesh smaller)`, '–', ahead(h.disk.stockmesh < h.disk.pouchdb)])
  }
  const behind = rows.filter((row) => row[5] === '**no**').map((row) => String(row[0]))

  const restartRows = r.history.flatMap((h: HistoryResult) =>
    (['stockmesh', 'pouchdb'] as const).map((side) => [
      k(h.movements),
      side,
      h.restarts[side].map((x) => fmtInt(x.readyMs)).join(' / '),
      h.restarts[side].map((x) => fmtInt(x.firstWriteMs)).join(' / '),
      h.restarts[side].map((x) => fmt(x.rss / 2 ** 20, 0)).join(' / '),
      h.restarts[side].map((x) => x.refused).join(' / '),
      h.restarts[side].map((x) => (x.stopMs === undefined ? '–' : fmtInt(x.stopMs))).join(' / '),
      `${fmt(h.fill[side] / 1000, 1)} s${h.stopAfterFill ? `; stop ${fmtInt(h.stopAfterFill[side])} ms` : ''}`,
    ]),
  )
  const at100k = r.history.find((h) => h.movements >= 100_000)
  const target = at100k
    ? `Issue 7's target, a restarted site records within ${RESTART_TARGET_MS / 1000} s of process start at 100k movements: ${fmtInt(med(at100k.restarts.stockmesh, (x) => x.firstWriteMs))} ms at ${k(at100k.movements)} (median; worst ${fmtInt(Math.max(...at100k.restarts.stockmesh.map((x) => x.firstWriteMs)))} ms): ${med(at100k.restarts.stockmesh, (x) => x.firstWriteMs) <= RESTART_TARGET_MS ? '**pass**' : '**FAIL**'}.`
    : `Issue 7's target (records within ${RESTART_TARGET_MS / 1000} s of process start at 100k movements) is not measured in this run: add 100000 to --local-history.`
  const settled = at100k?.restarts.stockmesh.find((x) => x.rssSettled !== undefined)?.rssSettled
  const memoryTarget =
    settled !== undefined
      ? `Issue 7's memory target, a site with 100k movements, fully indexed, stays under ${RSS_TARGET_MB} MB RSS (the compiled site as a user runs it, ${SETTLE_MS / 1000} s after its restart, idle): ${fmt(settled / 2 ** 20, 1)} MB: ${settled <= RSS_TARGET_MB * 2 ** 20 ? '**pass**' : '**FAIL**'}.`
      : ''

  return `${LOCAL_START}
## 6. Local: one site's API against a durable PouchDB server

Generated by \`npm run bench -- --only=local\` (bench/local.ts) — rerun it rather than editing this section; a local-only
run replaces this section and leaves the rest of the file as it was. Run took ${fmt(durationS / 60)} min
(\`--local-history=${r.options.histories.join(',')} --local-scanned=${r.options.scanned} --local-restarts=${r.options.restarts}\`).

${table(
    ['Machine (this section)', ''],
    [
      ['CPU', `${m.cpu}, ${m.cores} cores, ${fmt(m.ramGiB)} GiB RAM`],
      ['Node / OS', `${m.node} / ${m.os}`],
      ['Date', m.date],
      ['Load average at start / end (1/5/15 min)', `${m.loadStart.map((l) => l.toFixed(2)).join(' ')} / ${m.loadEnd.map((l) => l.toFixed(2)).join(' ')}`],
      ['Data in', `${m.tmp}; fsync of a 4 KB write ${fmt(m.fsyncMs, 2)} ms`],
      ['Code measured', r.cli.from === 'head' ? r.cli.commit : `${m.code ?? 'unknown'}; stockmesh run from ${r.cli.from === 'checkout' ? 'this checkout' : r.cli.from}: bin/stockmesh.mjs over dist/ compiled at ${r.cli.builtAt}${r.cli.srcNewerThanDist.length ? ` (**older than** ${r.cli.srcNewerThanDist.join(', ')})` : ''}`],
      ['PouchDB', `express-pouchdb ${r.versions['express-pouchdb']} (pouchdb-server's HTTP layer) over pouchdb-core ${r.versions['pouchdb-core']}, pouchdb-adapter-leveldb ${r.versions['pouchdb-adapter-leveldb']}, leveldown ${r.versions.leveldown}`],
    ],
  )}

### stockmesh ÷ PouchDB (durable)

${table(['Figure', 'stockmesh', 'PouchDB (leveldb, fsync forced)', 'Ratio stockmesh ÷ PouchDB', 'PouchDB fsyncs in this row?', 'stockmesh ahead?'], rows)}

${behind.length === 0 ? 'stockmesh is ahead of durable PouchDB on every local figure of this run.' : `Goal (ahead of durable PouchDB on every local figure): **not met** on ${behind.length} of ${rows.length}: ${behind.join('; ')}.`}
${target}
${memoryTarget}

Errors: stockmesh refused ${r.scan.reduce((a, s) => a + s.stockmesh.errors, 0) + r.import.stockmesh.errors} movements, PouchDB ${r.scan.reduce((a, s) => a + s.pouchdb.errors, 0) + r.import.pouchdb.errors} (scanners and import).

### Observations (computed from this run)

${observations(r)}

### Restarts, every run (ms from spawn; RSS in MB at the first accepted write)

${table(['Movements', 'Side', 'Ready line / listening', 'First accepted write', 'RSS', 'Tries before the 201', 'Clean stop right after (SIGTERM → exit)', 'Topping up to this size (batch API); clean stop after it'], restartRows)}

### Method

- **stockmesh** as a user runs it: compiled (${r.cli.from === 'head' ? 'the committed tree exported with \`git archive HEAD\` and compiled with tsconfig.build.json, as \`npm run build:node\` does, in the temp folder of the run' : '\`npm run build:node\`'}), then
  \`node bin/stockmesh.mjs site --data DIR --port N --log-level warn\` (a first start with \`--site BENCH\` provisions the
  folder; it is stopped and \`stockmesh catalog import\` loads the benchmark's ${fmtInt(2000)} products and 4 reason codes
  from CSV). Movements go to \`POST /api/movements\` (201 once durable); the import and the history top-up go as
  \`{movements: [...]}\` batches.${r.fsyncCheck.stockmeshStrace ? ` Checked in this run: ${r.fsyncCheck.stockmeshStrace}.` : ''}
- **PouchDB**: bench/localPouchServer.ts in its own process, run as plain JavaScript (transpiled at the start of the
  run, no TypeScript loader in its start-up): express-pouchdb with \`mode: 'minimumForPouchDB'\` over PouchDB on the
  leveldb adapter, one document per movement (\`PUT /bench/<movement id>\` with the movement's fields), the import as
  \`POST /bench/_bulk_docs\`. **Durability**: ${r.fsyncCheck.method}. Checked in this run: ${fmt(r.fsyncCheck.syncWritesPerPut, 2)} synced
  leveldb writes per PUT (the wrapper's counter)${r.fsyncCheck.strace ? `; ${r.fsyncCheck.strace}` : ''}. Every PouchDB row above is durable;
  PouchDB as it ships (leveldb's default) never fsyncs.
- **Client**: one node:http client (keep-alive agent) for both sides, in the orchestrating process. Scanners: each
  posts one movement and waits for the answer before the next; latency is request to answer as the scanner sees it;
  throughput is movements ÷ wall time. ${fmtInt(r.options.scanned)} movements a side per scanner count, in 2 rounds of the same
  movements (generated with \`at\` = now: bench/workload.ts \`Movements\`), the side going first alternating.
- **Restart**: the server is stopped (SIGTERM, clean stop), its folder measured (\`du -sb\`), then spawned again on a
  free port chosen beforehand, and a new movement posted every 5 ms from the spawn on (refused connections and
  answers other than 201 retried) until one is accepted. First accepted write = spawn → that 201; ready = spawn → the
  ready line (\`stockmesh site … ready at …\`, PouchDB's \`{"port":…}\`); RSS = VmRSS of the server process right then;
  then it is stopped again (SIGTERM → exit, timed). ${r.options.restarts} restarts per side per size, alternating sides.
  History is built through the batch APIs, 1,000 movements a request.
- Both servers and the client share ${m.cores} cores of a shared machine; see the load average above.
${r.stockmeshStderr.length ? `\nstockmesh wrote to stderr (log level warn) during the run, first lines:\n\n\`\`\`\n${r.stockmeshStderr.slice(0, 10).join('\n')}\n\`\`\`\n` : ''}
${LOCAL_END}
`
}

/** Plain statements the figures support, so that a reader need not work them out from the tables. */
function observations(r: LocalResult): string {
  const out: string[] = []
  const fsyncs = (t: string | undefined) => {
    const m = t ? /(\d+) fdatasync, (\d+) fsync/.exec(t) : null
    return m ? (Number(m[1]) + Number(m[2])) / 20 : undefined
  }
  const sm = fsyncs(r.fsyncCheck.stockmeshStrace)
  const pd = fsyncs(r.fsyncCheck.strace)
  if (sm !== undefined && pd !== undefined) out.push(`- Syncs per single write (strace): stockmesh ${fmt(sm, 2)} (fsync) per movement, PouchDB ${fmt(pd, 2)} (fdatasync) per PUT.`)
  if (r.floors) out.push(`- Start-up floors (median of 3 spawns to exit): \`node -e 0\` ${fmtInt(r.floors.nodeMs)} ms; \`node bin/stockmesh.mjs --help\` (loading the CLI's modules, nothing opened) ${fmtInt(r.floors.cliHelpMs)} ms.`)
  for (const h of r.history) {
    const runs = h.restarts.stockmesh
    if (runs.length > 1) {
      const rest = median(runs.slice(1).map((x) => x.firstWriteMs))
      if (runs[0]!.firstWriteMs > 1.5 * rest) out.push(`- At ${k(h.movements)}, stockmesh's first restart after the history was built took ${fmtInt(runs[0]!.firstWriteMs)} ms to its first accepted write, the later ones ${fmtInt(rest)} ms (median).`)
    }
    const slow = runs.filter((x) => (x.stopMs ?? 0) > 5000)
    if (slow.length) out.push(`- At ${k(h.movements)}, a clean stop (SIGTERM) of stockmesh right after its first accepted write took ${slow.map((x) => `${fmt(x.stopMs! / 1000, 1)} s`).join(', ')} (PouchDB: ${h.restarts.pouchdb.map((x) => fmtInt(x.stopMs ?? NaN)).join(', ')} ms).`)
    const gap = median(runs.map((x) => x.firstWriteMs - x.readyMs))
    out.push(`- At ${k(h.movements)}: stockmesh's first accepted write came ${fmtInt(gap)} ms (median) after its ready line; PouchDB's ${fmtInt(median(h.restarts.pouchdb.map((x) => x.firstWriteMs - x.readyMs)))} ms.`)
    if (h.filled && h.filled.stockmesh >= 10_000) out.push(`- Topping up ${fmtInt(h.filled.stockmesh)} movements to ${k(h.movements)} through the batch API (1,000 a request): stockmesh ${fmtInt((h.filled.stockmesh / h.fill.stockmesh) * 1000)} movements/s, PouchDB (\`_bulk_docs\`) ${fmtInt((h.filled.pouchdb / h.fill.pouchdb) * 1000)}/s.`)
  }
  return out.join('\n') || '- –'
}

export function mergeLocalSection(markdown: string, section: string): string {
  const start = markdown.indexOf(LOCAL_START)
  const end = markdown.indexOf(LOCAL_END)
  let merged = start >= 0 && end > start ? markdown.slice(0, start) + section.trimEnd() + markdown.slice(end + LOCAL_END.length) : `${markdown.trimEnd()}\n\n${section}`
  const pointer = 'Local targets (the site API against a durable PouchDB server: scanners, import, restart, disk): section 6.'
  if (!merged.includes(pointer)) merged = merged.replace('\n## How to read / method', `\n${pointer}\n\n## How to read / method`)
  return merged.endsWith('\n') ? merged : merged + '\n'
}
