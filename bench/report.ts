/** Renders BENCHMARKS.md from the results of bench/run.ts. */
import type { ShapeResult } from './shape.ts'
import type { CommitResult, LoadResult, SiteBenchResult } from './siteBench.ts'
import type { WireResult } from './wire.ts'
import { findings, method } from './reportText.ts'
import type { RelayResult } from './relay.ts'
import { renderRelaySection } from './relayReport.ts'
import { fmt, fmtInt, mb } from './workload.ts'

export interface Machine {
  cpu: string
  cores: number
  ramGiB: number
  node: string
  os: string
  date: string
  loadStart: number[]
  loadEnd: number[]
  tmp: string
  fsyncMs: number
  /** Commit (and uncommitted state) of the code measured. */
  code?: string
}

export interface Report {
  machine: Machine
  args: { only: string[]; sizes: number[]; runs: number; measured: number; wirePerSide: number; wirePrior: number; wireLive?: number; wireGap?: number; singleChange: boolean; wireSerial: boolean }
  durationS: number
  site?: SiteBenchResult
  wire?: WireResult[]
  shape?: ShapeResult
  /** Section 5: the relay (bench/relay.ts), and how long that piece took. */
  relay?: RelayResult
  relayDurationS?: number
  /** Earlier runs, for the comparison table. */
  previous?: Array<{ label: string; report: Report }>
}

export const TARGET = { p99: 8, p50: 2, usableMs: 1000, rssMB: 50, rssIndexedMB: 150, wire: 40, wireStretch: 20, flat: 1.5 }

export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n')
}

export const pass = (ok: boolean | undefined): string => (ok === undefined ? '–' : ok ? '**pass**' : '**FAIL**')
const k = (n: number) => (n >= 1000 ? `${n / 1000}k` : String(n))

export const commitAt = (r: Report, size: number): CommitResult | undefined => r.site?.commit.find((c) => c.size === size)
export const loadAt = (r: Report, size: number, variant: LoadResult['variant'] = 'batched'): LoadResult | undefined => r.site?.load.find((l) => l.size === size && l.variant === variant)
export const wireBytes = (w: WireResult): number => w.dataBytes / w.movements
export const wireLabel = (w: WireResult): string =>
  w.liveGapMs ? `live: connected, each side records a movement every ${w.liveGapMs} ms` : w.prior ? `offline, then sync; ${fmtInt(w.prior)} movements of shared history` : 'offline, then sync; young ledger'

function targets(r: Report): string {
  const [lo, hi] = [Math.min(...r.args.sizes), Math.max(...r.args.sizes)]
  const cLo = commitAt(r, lo)
  const cHi = commitAt(r, hi)
  const rows: string[][] = []
  if (cLo || cHi) {
    rows.push(['Record one movement, CPU p99 (SiteNode: repo + fsync)', `≤ ${TARGET.p99} ms`, cLo ? `${fmt(cLo.site.cpu.p99)} ms` : '–', cHi ? `${fmt(cHi.site.cpu.p99)} ms` : '–', pass([cLo, cHi].every((c) => !c || c.site.cpu.p99 <= TARGET.p99))])
    rows.push(['Record one movement, CPU p50 (research target)', `≤ ${TARGET.p50} ms`, cLo ? `${fmt(cLo.site.cpu.p50)} ms` : '–', cHi ? `${fmt(cHi.site.cpu.p50)} ms` : '–', pass([cLo, cHi].every((c) => !c || c.site.cpu.p50 <= TARGET.p50))])
    if (cLo && cHi && cLo !== cHi) {
      const f50 = cHi.site.cpu.p50 / cLo.site.cpu.p50
      const f99 = cHi.site.cpu.p99 / cLo.site.cpu.p99
      rows.push([`Flat as history grows (${k(hi)} ÷ ${k(lo)}, p50 / p99)`, `≤ ${TARGET.flat}x`, '', `${fmt(f50, 2)}x / ${fmt(f99, 2)}x`, pass(f50 <= TARGET.flat && f99 <= TARGET.flat)])
    }
  }
  const lLo = loadAt(r, lo)
  const lHi = loadAt(r, hi)
  if (lLo || lHi) {
    rows.push(['Usable after restart: `SiteNode.open()` wall, median of ' + r.args.runs, `≤ ${TARGET.usableMs} ms at 100k`, lLo ? `${fmtInt(lLo.median.openMs)} ms` : '–', lHi ? `${fmtInt(lHi.median.openMs)} ms` : '–', pass(lHi ? lHi.median.openMs <= TARGET.usableMs : undefined)])
    const sLo = loadAt(r, lo, 'single-change')
    const sHi = loadAt(r, hi, 'single-change')
    if (sLo || sHi) rows.push(['… same, latest journal rebuilt as one snapshot (one change per movement)', `≤ ${TARGET.usableMs} ms at 100k`, sLo ? `${fmtInt(sLo.median.openMs)} ms` : '–', sHi ? `${fmtInt(sHi.median.openMs)} ms` : '–', pass(sHi ? sHi.median.openMs <= TARGET.usableMs : undefined)])
    rows.push(['RSS when usable (research target)', `≤ ${TARGET.rssMB} MB`, lLo ? `${mb(lLo.median.rssUsable)} MB` : '–', lHi ? `${mb(lHi.median.rssUsable)} MB` : '–', pass(lHi ? lHi.median.rssUsable <= TARGET.rssMB * 2 ** 20 : undefined)])
    rows.push(['RSS at the moment every movement is indexed (in-process, tsx loaded: the peak of a start; issue 7\'s "stays under" is measured settled in section 6)', `≤ ${TARGET.rssIndexedMB} MB at 100k`, lLo?.median.rssFull ? `${mb(lLo.median.rssFull)} MB` : '–', lHi?.median.rssFull ? `${mb(lHi.median.rssFull)} MB` : '–', pass(lHi?.median.rssFull ? lHi.median.rssFull <= TARGET.rssIndexedMB * 2 ** 20 : undefined)])
  }
  for (const w of r.wire ?? []) {
    const b = wireBytes(w)
    rows.push([`Sync bytes per movement, ${fmtInt(w.movements)} movements, ${wireLabel(w)}`, `≤ ${TARGET.wire} B (stretch ${TARGET.wireStretch})`, '', `${fmt(b)} B`, `${pass(b <= TARGET.wire)}${b <= TARGET.wireStretch ? ' (stretch met)' : ''}`])
  }
  rows.push(['A restarted site records within 1 s of process start (compiled CLI), stays under 150 MB RSS at 100k once settled, and the local figures against PouchDB', 'section 6', '', '', 'section 6'])
  return table(['Target', 'Goal', k(lo), k(hi), 'Result'], rows)
}

function commitSection(r: Report): string {
  const cs = r.site?.commit ?? []
  if (cs.length === 0) return ''
  const col = (f: (c: CommitResult) => string) => cs.map(f)
  const d = (x: { p50: number; p99: number; max?: number }, max = true) => `${fmt(x.p50)} / ${fmt(x.p99)}${max && x.max !== undefined ? ` / ${fmt(x.max, 0)}` : ''}`
  const rows: string[][] = [
    ['History before the measured movements (batches of 500, 5,000 a week)', ...col((c) => `${fmtInt(c.size - c.measured)} movements over ${Math.ceil((c.size - c.measured) / 5000)} weeks`)],
    ['… time to build it (wall, CPU per movement)', ...col((c) => `${fmt(c.historyMs / 1000)} s, ${fmt(c.historyCpuMs / (c.size - c.measured), 2)} ms`)],
    ['Movements measured (one `book.record([m])` each)', ...col((c) => `${c.measured}`)],
    ['Node\'s latest journal before → after them (journals opened)', ...col((c) => `${fmtInt(c.journalFill.before)} → ${fmtInt(c.journalFill.after)} movements (${c.journalFill.opened})`)],
    ['SKUs with stock on record', ...col((c) => fmtInt(c.skus))],
    ['**SiteNode CPU ms p50 / p99 / max**', ...col((c) => `**${d(c.site.cpu)}**`)],
    ['SiteNode wall ms p50 / p99 / max', ...col((c) => d(c.site.wall))],
    ['… movements without a compaction or a new journal: CPU p50 / p99', ...col((c) => d(c.site.cpuNoCompaction, false))],
    ['… same: wall p50 / p99', ...col((c) => d(c.site.wallNoCompaction, false))],
    ['Compactions during the measured movements (doc: count)', ...col((c) => Object.entries(c.compactions).map(([n, v]) => `${n}: ${v}`).join(', ') || 'none')],
    ['… `A.save` inside those compactions, ms', ...col((c) => c.compactionSaveMs.map((v) => fmt(v, 0)).join(', ') || '–')],
    ['LedgerBook on plain Automerge copies, CPU p50 / p99', ...col((c) => d(c.memory.book, false))],
    ['**Automerge alone (`A.change` journal + ledger), CPU p50 / p99**', ...col((c) => `**${d(c.memory.automerge, false)}**`)],
    ['Lot movements (after the plain ones; products tracked by lot): receipt of a new lot, SiteNode CPU p50 / p99 / max', ...col((c) => (c.lots ? d(c.lots.receipt) : '–'))],
    ['… issue naming no lot, served first-expiry-first-out, SiteNode CPU p50 / p99 / max', ...col((c) => (c.lots ? d(c.lots.issue) : '–'))],
    ['Split of the p50: Automerge / LedgerBook bookkeeping / repo + storage', ...col((c) => `${fmt(c.memory.automerge.p50)} / ${fmt(c.memory.book.p50 - c.memory.automerge.p50)} / ${fmt(c.site.cpu.p50 - c.memory.book.p50)} ms`)],
  ]
  const spikes = cs.map((c) => `At ${k(c.size)}: ` + c.spikes.slice(0, 6).map((s) => `${fmt(s.wall, 0)} ms wall / ${fmt(s.cpu, 0)} ms CPU${s.compacted.length || s.opened ? ` (${[s.opened ? 'opened a journal' : '', s.compacted.length ? `${s.compacted.join('+')} compaction` : ''].filter(Boolean).join(', ')})` : ''}`).join('; ')).join('\n\n')
  return `## 1. Recording one movement

Through a real \`SiteNode\` (automerge-repo 2.5.6 on the fsync'd \`DurableFsStorageAdapter\`, temp dir), one
\`book.record([input])\` per movement, \`process.cpuUsage()\` (user + system, all threads) and wall time around each.
Then the same ${cs[0]!.measured} inputs on plain Automerge copies of the same ledger and journal (no repo, no storage).

${table(['', ...cs.map((c) => `at ${k(c.size)}`)], rows)}

Slowest movements (wall), with what happened during them (a new journal: create + register, three durable saves;
a compaction: automerge-repo rewrote a document's snapshot):

${spikes}
`
}

function loadSection(r: Report): string {
  const ls = r.site?.load ?? []
  if (ls.length === 0) return ''
  const rows = ls.map((l) => [
    k(l.size),
    l.variant === 'batched' ? 'as the node left it' : 'latest journal rebuilt',
    `**${fmtInt(l.median.openMs)}**`,
    fmtInt(l.median.openCpuMs),
    fmtInt(l.median.sinceProcessStartMs),
    `${mb(l.median.rssUsable)} / ${mb(l.median.heapUsable)}`,
    fmtInt(l.median.fullMs),
    `${mb(l.median.rssFull)} / ${mb(l.median.heapSettled)}`,
    `${fmtInt(l.disk.bytes)} (${fmt(l.disk.bytes / l.size)} B/mv, ${l.disk.files} files, ${mb(l.disk.allocated)} MB allocated)`,
    l.consistent ? 'yes' : '**NO**',
  ])
  const runs = ls.map((l) => `${k(l.size)} ${l.variant}: usable ${l.runs.map((x) => fmtInt(x.openMs)).join(', ')} ms${l.runs[0]?.fullMs === null ? '' : `; fully loaded ${l.runs.map((x) => fmtInt(x.fullMs ?? NaN)).join(', ')} ms`}`).join('\n- ')
  const rebuilt = ls.filter((l) => l.rebuilt).map((l) => `at ${k(l.size)}: ${l.rebuilt!.journals} journal${l.rebuilt!.journals === 1 ? '' : 's'}, ${fmtInt(l.rebuilt!.journalBytes)} B, ${fmtInt(l.rebuilt!.changes)} changes`).join('; ')
  const docRows = ls.flatMap((l) =>
    l.docs.map((d) => [k(l.size), l.variant, d.doc, `${fmtInt(d.bytes)} in ${d.chunks} chunk${d.chunks === 1 ? '' : 's'}`, fmtInt(d.changes), fmtInt(d.repoMs), fmtInt(d.diffMs), fmtInt(d.loadMs)]),
  )
  return `## 2. Restart: time and memory until usable

The node is closed, then a fresh \`node --import tsx bench/loadChild.ts\` process opens the same data dir.
"Usable" = \`SiteNode.open()\` resolved: identity, index, catalog and ledger loaded and the latest journal of every
device loaded (the child checks that on hand is readable and this node's latest journal is loaded).
"Fully loaded" = \`fullyLoaded\` resolved (every journal loaded and indexed). Times from the \`open()\` call;
"from process start" adds node start-up, the tsx loader and module imports. Median of ${r.args.runs} runs, each variant
interleaved. Memory in MB as RSS / JS heap used (heap after fully loaded is after a forced GC).

${table(['Movements', 'History written', 'Usable ms', 'CPU ms', 'From process start ms', 'MB at usable (RSS / heap)', 'Fully loaded ms', 'MB fully loaded (RSS / heap)', 'On disk, bytes', 'Same on hand as writer'], rows)}

Every run:
- ${runs}

Where the time goes: the documents \`open()\` reads, loaded from the same files in a fresh process (second of two passes), CPU ms.
automerge-repo 2.5.6 loads a document with \`A.loadIncremental(A.init(), all chunks)\` (StorageSubsystem.loadDoc) and
the DocHandle then computes \`A.diff\` from the empty document to emit its change event; \`A.load\` is the alternative.

${table(['Movements', 'History written', 'Document', 'Bytes on disk', 'Changes', 'repo: loadIncremental', '+ diff', 'A.load'], docRows)}
${rebuilt ? `\n"As the node left it": history in batches, except the latest journal, which (when section 1 runs) holds the movements measured there, recorded one by one, stored as automerge-repo left it (a snapshot plus one incremental chunk per save since its last compaction). "Latest journal rebuilt": a copy in which that journal was rebuilt change by change with the same contents and change metadata (bench/replay.ts) and saved as one snapshot — the same changes, compacted. Older journals are left as built, so only "usable" is measured on the copies: ${rebuilt}.\n` : ''}`
}

function wireSection(r: Report): string {
  const ws = r.wire ?? []
  if (ws.length === 0) return ''
  const rows = ws.map((w) => [
    `${wireLabel(w)} (${fmtInt(w.movements)} movements)`,
    `${w.messages} (${Object.entries(w.byType).map(([t, n]) => `${t} ${n}`).join(', ')})`,
    `${fmtInt(w.dataBytes)} (ledger ${fmtInt(w.byDoc.ledger)}, journals ${fmtInt(w.byDoc.journals)})`,
    `**${fmt(wireBytes(w))}**`,
    `${fmt(w.framedBytes / w.movements)}`,
    `${fmt(w.json / w.movements)}`,
    `${fmt(w.gzip / w.movements)}`,
    `${fmt(w.syncMs / 1000, 2)} s / ${fmt(w.syncCpuMs / 1000, 2)} s`,
    w.liveGapMs ? '–' : `${fmt(w.offlineCpuMsPerMovement, 1)} ms`,
    w.converged && w.onHandEqual && w.mismatches === 0 ? 'yes' : `**NO** (converged ${w.converged}, on hand equal ${w.onHandEqual}, ${w.mismatches} mismatches)`,
  ])
  return `## 3. Bytes on the wire

Two automerge-repo \`Repo\`s in one process, each running the project's \`LedgerBook\` over a \`RepoLedgerStore\` (no
storage), share one ledger. Offline scenarios: each records ${ws[0]!.perSide} movements one at a time (\`book.record([m])\`,
node-a and node-b, each into its own journals) while disconnected; then they reconnect over a \`MessageChannel\` and
sync. Live scenario: they stay connected and each records a movement every few hundred ms, as scanners would, and
automerge-repo syncs as it goes ("Sync wall / CPU" is then the whole period, recording included). Measured at the
**automerge-repo level**: a small network adapter (src/network/MessagePortNetworkAdapter.ts, same handshake as
automerge-repo-network-messagechannel, which is not installed) counts every message either side sends: the bytes
of its \`data\` (the Automerge sync message) and of the whole message CBOR-encoded as the WebSocket adapter frames it.
Shared history, when present, is node-a's movements as a site that recorded them one by one holds them (planned by
the real \`LedgerBook\`, rebuilt one change per movement by bench/replay.ts, imported into node-a's repo), fully
synced to node-b before the offline period. (Batched history would mislead: a document with few changes makes the
sync protocol send the whole document rather than the new changes.)
"Converged" = same heads for the ledger and every journal on both sides, the same on hand (\`LedgerBook.onHand()\`)
for every SKU, and \`checkLedger\` over all journals finds no mismatch on either side.

${table(['Scenario', 'Messages', 'Sync payload bytes', 'B / movement', 'Framed B / mv', 'JSON B / mv', 'gzip JSON B / mv', 'Sync wall / CPU', 'Offline CPU / mv', 'Converged'], rows)}

${r.args.wireSerial ? '' : 'The scenarios ran at the same time in child processes (2 cores), so their wall times include some contention; CPU is per process.\n\n'}JSON = \`JSON.stringify\` of the ${ws[0]!.movements} movement inputs as submitted (ULID ids, user, device, reference); gzip = \`zlib.gzipSync\` of that.

One movement recorded alone is one journal change of ${ws[0]!.oneMovement.journal.bytes} B (change message
${ws[0]!.oneMovement.journal.message} B), as encoded by \`A.getLastLocalChange\`. The sync protocol ships changes one by one like
this unless it decides to send the whole document (when the changes to send exceed about a third of the document's).
`
}

function shapeSection(r: Report): string {
  const s = r.shape
  if (!s) return ''
  return `## 4. Diagnosis: raw Automerge experiments behind the findings

CPU ms, medians; plain \`@automerge/automerge\` 3.5.0, no repo, no storage (bench/shape.ts).

${table(
    ['Experiment', 'A', 'B', 'A ÷ B'],
    [
      ...s.journalAppend.map((j) => [`One \`A.change\` appending one movement to a map of ${fmtInt(j.entries)} movements`, `${fmt(j.flat, 2)} ms (flat \`m[seq]\`)`, `${fmt(j.bucketed, 2)} ms (\`m[bucket][seq]\`, 100 per bucket)`, `${fmt(j.flat / j.bucketed)}x`]),
      ['One `A.change`: increment one counter among 2,000 and set one other field', `${fmt(s.counterChange.flat, 2)} ms (one flat map)`, `${fmt(s.counterChange.bucketed, 2)} ms (~100 buckets)`, `${fmt(s.counterChange.flat / s.counterChange.bucketed)}x`],
      ...s.hotCounter.map((h) => [`One increment + commit (low-level) on a counter with ${fmtInt(h.prior)} earlier increments`, `${fmt(h.ms, 3)} ms`, `${fmt(h.coldMs, 3)} ms on a fresh counter`, `${fmt(h.ms / h.coldMs)}x`]),
      [`Open a 5,000-movement journal (${fmtInt(s.openJournal.bytes)} B): automerge-repo's \`loadIncremental(init())\` + the \`diff\` DocHandle runs`, `${fmtInt(s.openJournal.loadIncremental)} + ${fmtInt(s.openJournal.diff)} ms`, `${fmtInt(s.openJournal.load)} ms (\`A.load\`)`, `${fmt((s.openJournal.loadIncremental + s.openJournal.diff) / s.openJournal.load)}x`],
    ],
  )}
`
}

function compareSection(r: Report): string {
  const prev = r.previous ?? []
  if (prev.length === 0) return ''
  const runs = [...prev.map((p) => p.report), r]
  const rows: string[][] = []
  const row = (label: string, f: (x: Report) => string | undefined) => {
    const cells = runs.map((x) => f(x) ?? '–')
    if (cells.some((c) => c !== '–')) rows.push([label, ...cells])
  }
  for (const size of r.args.sizes) {
    row(`Record one movement at ${k(size)}: CPU p50 / p99 ms`, (x) => {
      const c = commitAt(x, size)
      return c && `${fmt(c.site.cpu.p50)} / ${fmt(c.site.cpu.p99)}`
    })
    row(`… Automerge alone / LedgerBook's own work, p50 ms`, (x) => {
      const c = commitAt(x, size)
      return c && `${fmt(c.memory.automerge.p50)} / ${fmt(c.memory.book.p50 - c.memory.automerge.p50)}`
    })
    row(`Restart at ${k(size)}: usable wall / CPU ms`, (x) => {
      const l = loadAt(x, size)
      return l && `${fmtInt(l.median.openMs)} / ${fmtInt(l.median.openCpuMs)}`
    })
    row(`… with what open() reads rebuilt one change per movement, one snapshot each: usable wall / CPU ms`, (x) => {
      const l = loadAt(x, size, 'single-change')
      return l && `${fmtInt(l.median.openMs)} / ${fmtInt(l.median.openCpuMs)}`
    })
    row(`… fully loaded ms, RSS`, (x) => {
      const l = loadAt(x, size)
      return l && `${fmtInt(l.median.fullMs ?? NaN)}, ${mb(l.median.rssFull ?? NaN)} MB`
    })
  }
  for (const prior of [0, r.args.wirePrior]) {
    row(`Wire B/movement, offline then sync, ${prior ? `${k(prior)} prior history` : 'young ledger'}`, (x) => {
      const w = x.wire?.find((y) => !y.liveGapMs && (prior ? y.prior > 0 : y.prior === 0))
      return w && fmt(wireBytes(w))
    })
  }
  row('Wire B/movement, live', (x) => {
    const w = x.wire?.find((y) => y.liveGapMs)
    return w && fmt(wireBytes(w))
  })
  if (rows.length === 0) return ''
  const labels = prev.map((p) => `${p.label} (${p.report.machine.date.slice(0, 16).replace('T', ' ')}, load ${p.report.machine.loadStart[0]!.toFixed(1)})`)
  return `## Against earlier runs of this benchmark

Same benchmark and machine, earlier shapes of the ledger (wall times depend on the load average shown; compare CPU): ${labels.map((l, i) => `**${String.fromCharCode(65 + i)}** = ${l}`).join('; ')}.

${table(['', ...prev.map((_, i) => String.fromCharCode(65 + i)), 'now'], rows)}
`
}

export function renderReport(r: Report): string {
  const m = r.machine
  return `# Benchmarks: the stockmesh ledger (chosen shape)

Generated by \`npm run bench\` (bench/run.ts) — rerun it rather than editing this file. Run took ${fmt(r.durationS / 60)} min
(sizes ${r.args.sizes.map(k).join(', ')}; pieces ${r.args.only.join(', ')}).

${table(
    ['Machine', ''],
    [
      ['CPU', m.cpu],
      ['Cores', String(m.cores)],
      ['RAM', `${fmt(m.ramGiB)} GiB`],
      ['Node', m.node],
      ['OS', m.os],
      ['Date', m.date],
      ['Load average at start (1/5/15 min)', m.loadStart.map((l) => l.toFixed(2)).join(' ')],
      ['Load average at end', m.loadEnd.map((l) => l.toFixed(2)).join(' ')],
      ['Data in', m.tmp],
      ['fsync of a 4 KB write (median of 30)', `${fmt(m.fsyncMs, 2)} ms`],
      ['Code measured', m.code ?? 'unknown'],
    ],
  )}

## Targets

${targets(r)}
${r.relay ? '\nRelay targets (hundreds of devices, a week apart over 64 kbit/s, PouchDB alongside): section 5.\n' : ''}
${method(r)}

${findings(r)}

${compareSection(r)}
${commitSection(r)}
${loadSection(r)}
${wireSection(r)}
${shapeSection(r)}
${r.relay ? `\n${renderRelaySection(r.relay, r.machine, r.relayDurationS ?? r.durationS)}` : ''}`
}
