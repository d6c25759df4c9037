/**
 * Renders the relay section of BENCHMARKS.md (bench/relay.ts results), and merges it into an
 * existing BENCHMARKS.md so that a relay-only run keeps the ledger figures above it.
 */
import type { Machine } from './report.ts'
import type { RelayResult, RelayStage } from './relay.ts'
import type { CatchupRun } from './relayCatchup.ts'
import { fmt, fmtInt } from './workload.ts'

export const RELAY_START = '<!-- relay:start (bench/relayReport.ts) -->'
export const RELAY_END = '<!-- relay:end -->'

export const RELAY_TARGET = {
  /** Movements per second the relay must carry with every device connected (see the method). */
  throughputPerS: 30,
  latencyP50Ms: 500,
  latencyP99Ms: 2000,
  /** ≥ 100k warm small documents per GB (shared/research/automerge-performance.md). */
  bytesPerDoc: 2 ** 30 / 100_000,
  /** ≥ 10k idle devices per GB (proposed here). */
  bytesPerConnection: 100 * 1024,
  /** A day's 5,000 movements over 64 kbit/s in ≤ 15 s (research target). */
  catchupS: 15,
  /** Bytes per movement per link crossing: the ledger's wire target. */
  wireB: 40,
}

function table(headers: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n')
}
const pass = (ok: boolean | undefined): string => (ok === undefined ? '–' : ok ? '**pass**' : '**FAIL**')
const mib = (b: number) => `${fmt(b / 2 ** 20)} MB`
const kib = (b: number) => `${fmt(b / 1024)} KB`
const s = (ms: number) => `${fmt(ms / 1000)} s`

/** A stage kept up: delivered ≥ 95% of the offered rate inside the window, the rest within 5 s, nothing lost or refused. */
export const keptUp = (st: RelayStage): boolean => st.arrivals >= st.expected && st.failed === 0 && st.deliveredPerS >= 0.95 * st.offeredPerS && st.drainMs <= 5000 && st.load.p50 <= 5000
/** Bytes per movement per link crossing: each movement goes up one device's link and down the other's. */
export const perCrossing = (c: CatchupRun): number => (c.up + c.down) / (2 * c.movements)
/** Time scaled to 5,000 movements each way per device (each device sent movements/2 and received as many). */
export const per5000 = (c: CatchupRun): number => (c.ms * 5000) / (c.movements / 2)

export function relayDerived(r: RelayResult) {
  const { start, connected, afterLoad, disconnected } = r.mem
  const docs = disconnected.handles - start.handles
  const peers = afterLoad.peers
  return {
    docs,
    peers,
    perDocRss: (disconnected.rss - start.rss) / docs,
    perDocHeap: (disconnected.heapUsed + disconnected.external - start.heapUsed - start.external) / docs,
    perConnRss: (afterLoad.rss - disconnected.rss) / peers,
    perConnHeap: (afterLoad.heapUsed + afterLoad.external - disconnected.heapUsed - disconnected.external) / peers,
    connectedRss: connected.rss,
  }
}

/** The stage the throughput and latency targets are judged at: the first offering ≥ the target rate. */
export function targetStage(r: RelayResult): RelayStage | undefined {
  return [...r.stages].sort((a, b) => a.offeredPerS - b.offeredPerS).find((st) => st.offeredPerS >= RELAY_TARGET.throughputPerS * 0.99)
}

export interface RelayComparison {
  label: string
  relay: RelayResult
  machine: Machine
}

/** Key figures of this run next to other runs of the relay piece (--relay-compare=FILE:label). */
function comparisonSection(r: RelayResult, m: Machine, others: RelayComparison[]): string {
  if (others.length === 0) return ''
  const runs = [{ label: `this run (${m.code ?? '?'}${r.relaySrc ? `, relay from ${r.relaySrc}` : ''})`, relay: r, machine: m }, ...others]
  const rows: string[][] = [
    ['Date', ...runs.map((x) => x.machine.date)],
    ['Devices connected', ...runs.map((x) => `${x.relay.connect.connected} of ${x.relay.devices}`)],
    ['Probe arrivals', ...runs.map((x) => `${fmtInt(x.relay.probe.arrivals)} of ${fmtInt(x.relay.probe.expected)} in ${s(x.relay.probe.ms)}`)],
  ]
  const rates = [...new Set(runs.flatMap((x) => x.relay.stages.map((st) => Math.round(st.offeredPerS))))].sort((a, b) => a - b)
  for (const rate of rates) {
    const at = (x: RelayResult) => x.stages.find((st) => Math.round(st.offeredPerS) === rate)
    rows.push([`${rate}/s: delivered /s in the stage, kept up`, ...runs.map((x) => (at(x.relay) ? `${fmt(at(x.relay)!.deliveredPerS)}, ${keptUp(at(x.relay)!) ? 'yes' : 'no'}` : '–'))])
    rows.push([`${rate}/s: measured pair p50 / p99 ms`, ...runs.map((x) => (at(x.relay) ? `${fmtInt(at(x.relay)!.pair.p50)} / ${fmtInt(at(x.relay)!.pair.p99)}` : '–'))])
    rows.push([`${rate}/s: relay CPU`, ...runs.map((x) => (at(x.relay) ? `${fmt(at(x.relay)!.relayCpuPct, 0)}%` : '–'))])
  }
  rows.push(['Relay RSS per loaded document / per idle connection', ...runs.map((x) => `${kib(relayDerived(x.relay).perDocRss)} / ${kib(relayDerived(x.relay).perConnRss)}`)])
  return `### Against other runs of this section

${table(['', ...runs.map((x) => x.label)], rows)}

`
}

/**
 * `notes`: bench/relayNotes.md when present — what the numbers alone do not say about the latest
 * run (a diagnosis, an A/B), written by hand; update or delete it when rerunning.
 */
/** "A week apart" when each device recorded a week's 5,000 movements; otherwise how far apart they were. */
const apartOf = (r: RelayResult) => (r.catchupPerSide >= 5000 ? 'A week apart' : `${fmtInt(r.catchupPerSide)} movements apart (${fmt((r.catchupPerSide / 5000) * 7)} days at 5,000 a week)`)

export function renderRelaySection(relay: RelayResult, m: Machine, durationS: number, others: RelayComparison[] = [], notes?: string): string {
  const r = relay
  const apart = apartOf(r)
  const d = relayDerived(r)
  const T = RELAY_TARGET
  const judged = targetStage(r)
  const best = [...r.stages].filter(keptUp).sort((a, b) => b.offeredPerS - a.offeredPerS)[0]
  const am = (link: string) => r.catchup.find((c) => c.system === 'stockmesh' && c.link === link)
  const pd = (link: string) => r.catchup.find((c) => c.system === 'pouchdb' && c.link === link)
  const slow = am('64kbit')
  const fast = am('loopback')
  const rows: string[][] = [
    [`Connections held: every device authenticated and connected at once`, `${r.devices} of ${r.devices}`, `${r.connect.connected} of ${r.devices} in ${s(r.connect.ms)}; measured pair ${r.connect.pairConnected ? 'connected' : 'NOT connected'}`, pass(r.connect.connected === r.devices && r.connect.pairConnected)],
    [`… and syncing: one movement from every device reached every other device of its site`, '100%', `${fmtInt(r.probe.arrivals)} of ${fmtInt(r.probe.expected)} in ${s(r.probe.ms)}`, pass(r.probe.arrivals >= r.probe.expected && r.probe.expected > 0)],
    [`Throughput with all connected: keeps up (≥ 95% of the offered rate delivered within the stage, the rest within 5 s, median latency ≤ 5 s)`, `≥ ${T.throughputPerS} movements/s`, best ? `kept up at ${fmt(best.offeredPerS, 0)}/s${r.stages.some((st) => !keptUp(st)) ? `; not at ${r.stages.filter((st) => !keptUp(st)).map((st) => `${fmt(st.offeredPerS, 0)}/s`).join(', ')}` : ''}` : 'no stage kept up', pass(!!best && best.offeredPerS >= T.throughputPerS * 0.99)],
    [`Latency SiteNode → relay → SiteNode of the same site, p50 / p99, at ${judged ? `${fmt(judged.offeredPerS, 0)}` : '–'} movements/s`, `≤ ${T.latencyP50Ms} / ${fmtInt(T.latencyP99Ms)} ms`, judged ? `${fmtInt(judged.pair.p50)} / ${fmtInt(judged.pair.p99)} ms (n=${judged.pair.n})` : '–', pass(judged ? judged.pair.p50 <= T.latencyP50Ms && judged.pair.p99 <= T.latencyP99Ms && judged.pair.missing === 0 : undefined)],
    [`Relay memory per loaded document (RSS; research target ≥ 100k warm documents per GB)`, `≤ ${kib(T.bytesPerDoc)}`, `${kib(d.perDocRss)} (${fmtInt(d.docs)} documents)`, pass(d.perDocRss <= T.bytesPerDoc)],
    [`Relay memory per idle connection (RSS; proposed: ≥ 10k devices per GB)`, `≤ ${kib(T.bytesPerConnection)}`, `${kib(d.perConnRss)}`, pass(d.perConnRss <= T.bytesPerConnection)],
  ]
  if (slow) {
    rows.push([`${apart}, 64 kbit/s each way: time per 5,000 movements each way (research target: a day's 5,000 over 64 kbit/s)`, `≤ ${T.catchupS} s`, `${fmt(per5000(slow) / 1000)} s (${fmtInt(slow.movements)} movements in ${s(slow.ms)})`, pass(slow.converged && per5000(slow) <= T.catchupS * 1000)])
    rows.push([`${apart}: bytes per movement per link crossing (the ledger's wire target)`, `≤ ${T.wireB} B`, `${fmt(perCrossing(slow))} B`, pass(perCrossing(slow) <= T.wireB)])
  }
  for (const link of ['loopback', '64kbit']) {
    const a = am(link)
    const p = pd(link)
    if (a && p) rows.push([`${apart}, ${link === '64kbit' ? '64 kbit/s' : 'loopback'}: bytes and time at most PouchDB's (the field's anchor)`, '≤ 1x PouchDB', `${fmt((a.up + a.down) / (p.up + p.down), 2)}x bytes, ${fmt(a.ms / p.ms, 2)}x time`, pass(a.converged && a.up + a.down <= p.up + p.down && a.ms <= p.ms)])
  }

  const stageRows = r.stages.map((st) => [
    `every ${fmt(st.perDeviceEveryMs / 1000, 0)} s`,
    fmt(st.offeredPerS, 0),
    fmtInt(st.sent) + (st.failed ? ` (${st.failed} refused)` : ''),
    fmt(st.deliveredPerS),
    `${fmtInt(st.arrivals)} / ${fmtInt(st.expected)}`,
    s(st.drainMs),
    `${fmtInt(st.load.p50)} / ${fmtInt(st.load.p99)} / ${fmtInt(st.load.max)}`,
    `${fmtInt(st.pair.p50)} / ${fmtInt(st.pair.p99)} / ${fmtInt(st.pair.max)} (n=${st.pair.n}${st.pair.missing ? `, ${st.pair.missing} missing` : ''})`,
    `${fmt(st.relayCpuPct, 0)}%`,
    mib(st.relayRss),
    pass(keptUp(st)),
  ])
  const memRow = (label: string, x: RelayResult['mem']['start']) => [label, mib(x.rss), mib(x.heapUsed), mib(x.external), fmtInt(x.handles), fmtInt(x.peers)]
  const catchRows = r.catchup.map((c) => [
    c.system === 'stockmesh' ? 'stockmesh (relay)' : 'PouchDB (express-pouchdb)',
    c.link === '64kbit' ? '64 kbit/s, 100 ms RTT' : 'loopback',
    fmtInt(c.movements),
    s(c.ms),
    `${fmtInt(c.up)} / ${fmtInt(c.down)}`,
    fmt(perCrossing(c)),
    fmt(c.recordCpuMsPerMovement, 2),
    `${c.converged ? 'yes' : '**no**'}${c.note ? ` (${c.note}${c.drops ? `; relay connection lost ${c.drops} times` : ''})` : ''}`,
  ])
  const ratioRows = (['loopback', '64kbit'] as const).flatMap((link) => {
    const a = am(link)
    const p = pd(link)
    return a && p ? [[link === '64kbit' ? '64 kbit/s, 100 ms RTT' : 'loopback', `${fmt((p.up + p.down) / (a.up + a.down), 2)}x`, `${fmt(p.ms / a.ms, 2)}x`, `${fmt(p.recordCpuMsPerMovement / a.recordCpuMsPerMovement, 2)}x`]] : []
  })
  const lastStage = r.stages.at(-1)

  return `${RELAY_START}
## 5. Relay: ${r.devices} devices on one relay, catching up over 64 kbit/s, PouchDB alongside

Generated by \`npm run bench -- --only=relay\` (bench/relay.ts) — rerun it rather than editing this section; a relay-only
run replaces this section and leaves the ledger figures above as they were. Run took ${fmt(durationS / 60)} min.

${table(
    ['Machine (this section)', ''],
    [
      ['CPU', `${m.cpu}, ${m.cores} cores, ${fmt(m.ramGiB)} GiB RAM`],
      ['Node / OS', `${m.node} / ${m.os}`],
      ['Date', m.date],
      ['Load average at start / end (1/5/15 min)', `${m.loadStart.map((l) => l.toFixed(2)).join(' ')} / ${m.loadEnd.map((l) => l.toFixed(2)).join(' ')}`],
      ['Data in', `${m.tmp}; fsync of a 4 KB write ${fmt(m.fsyncMs, 2)} ms`],
      ['Code measured', `${m.code ?? 'unknown'}${r.relaySrc ? `; the relay from ${r.relaySrc}` : ''}`],
    ],
  )}

### Relay targets

${table(['Target', 'Goal', 'Measured', 'Result'], rows)}

Where the goals come from: the memory per document and the 64 kbit/s time are the research targets
(shared/research/automerge-performance.md: ≥ 100k warm small documents per GB; a day's 5,000 movements over
64 kbit/s in ≤ 15 s), the bytes per movement is the ledger's wire target above. The rest are proposed here, as
the issue gives no numbers: ${T.throughputPerS} movements/s is 36 times the average of 100 sites at 5,000 movements a
week (0.83/s), so a morning rush on every site at once; ${T.latencyP50Ms} ms / ${T.latencyP99Ms / 1000} s is "the other
storekeeper sees it before they look up"; 100 KB per idle connection is 10,000 devices per GB.

### Method

- **Deployment**: \`stockmesh deployment init\` and \`stockmesh catalog import\` (the built CLI) with the benchmark's
  2,000 products and 4 reason codes; then ${r.sites} sites × ${r.perSite} devices, a measured pair (\`site-pair\`) and the
  catch-up sites, each device enrolled by \`enrolDevice\` (src/hub/enrol.ts, what \`stockmesh enrol\` runs; in-process
  because ${r.devices} CLI start-ups would take minutes): each device has its own Ed25519 key and signed credential.
  Setup took ${fmt(r.setupS, 0)} s (not measured further).
- **Relay**: \`runRelay\` (src/relay/run.ts, what \`stockmesh relay\` runs) on the hub folder, alone in a child process
  (bench/relayServer.ts) with \`--expose-gc\`: its memory is read after two forced GCs, its CPU from
  \`process.cpuUsage()\`. Crash-safe storage (DurableFsStorageAdapter, fsync) in ${m.tmp.split(' ')[0]}.
- **Load devices**: ${r.devices} devices in ${r.clientProcesses} child processes (bench/relayClients.ts; whole sites per process),
  each with its own automerge-repo \`Repo\` (in memory), its own \`AuthenticatedWebSocketClientAdapter\` (challenge,
  signed proof, websocket), the site's index, ledger and catalog imported from its enrolment file as a site node does,
  and the project's \`LedgerBook\` over a \`RepoLedgerStore\`, recording real movements (bench/workload.ts) into its
  own journals. A device loads every journal its ledger names and counts the movements of the other devices of its
  site as they arrive; sender and receivers share a process, so latency is read on one clock.
- **Measured pair**: two real \`SiteNode\`s of \`site-pair\`, provisioned from their enrolment files, connected with
  \`connectRelay\` (crash-safe storage, durability gate), in the orchestrating process. During each load stage
  \`pair-a\` records one movement a second (\`recordMovements\`); latency is from the call until \`pair-b\` emits it
  (\`events\` 'movements', source sync). It includes pair-a's fsync'd commit, the relay's fsync before it forwards,
  and pair-b applying the change.
- **Connect**: every load device connects at once (a reconnect storm), then each records one movement (the probe),
  which must reach both other devices of its site. **Load stages**: each device records one movement every N s,
  staggered evenly, for ${fmt((lastStage?.durationMs ?? 0) / 1000, 0)} s; "delivered" counts arrivals at every other device of
  the sender's site inside the stage window (÷ ${r.perSite - 1}); then the bench waits up to 60 s for the rest ("drain").
  Relay CPU % is relay-process CPU over the stage's wall time (100% = one core of ${m.cores}).
- **Memory**: relay at start (catalog and hub documents loaded), with everything connected and idle after the probe,
  after the load stages (3 s idle), and after every device disconnected (automerge-repo keeps every document it loaded).
  Per loaded document = (disconnected − start) ÷ documents added; per idle connection = (after load − disconnected) ÷
  connections: what a connection holds once its documents are loaded (socket, sync states of its documents).
- **${apart}** (bench/relayCatchup.ts): two devices of one site (a fresh site per link), real \`SiteNode\`s
  provisioned from their enrolment files, each record ${fmtInt(r.catchupPerSide)} movements one at a time offline (a clock that
  puts 5,000 movements in a week), then both \`connectRelay\` at once, each through its own TCP proxy
  (bench/relayProxy.ts) standing for its link: loopback (counting only), or 8,000 bytes/s each way (64 kbit/s) with
  50 ms each way (100 ms round trip): each direction sends one chunk after another across all the device's
  connections, and a connection that closes loses what it still had queued (as TCP does). Done when each
  holds all ${fmtInt(2 * r.catchupPerSide)} movements (same on hand, \`checkLedger\` clean on both). Bytes are TCP payload at the
  proxies (HTTP, websocket framing, challenge request included; TCP/IP headers not). "Per link crossing": every
  movement goes up its device's link and down the other's, so the bytes are divided by 2 × movements — comparable
  with section 3's direct device-to-device figure. Time per 5,000 = time × 5,000 ÷ movements per device.
- **PouchDB** (the field's anchor; pouchdb-core 9 with the memory and http adapters and replication,
  express-pouchdb 4.2 over in-memory PouchDB as the server, in a child process): the same ${fmtInt(r.catchupPerSide)}
  movements per device as JSON documents (\`_id\` = movement id, one \`put\` each), then both devices run a one-shot
  \`sync\` with the server database at once through the same kind of proxy, rounds until each holds all of them (a
  second round brings each the documents the other pushed after its first pull). PouchDB's server keeps nothing on disk
  (memory adapter) while the relay fsyncs: that favours PouchDB.
- The machine is shared and has 2 cores: the relay, ${r.clientProcesses} client processes and the orchestrator share them, so the
  load figures are for the whole system on 2 cores, and client-side work (${r.devices} Repos applying changes) competes
  with the relay.

### Connections and memory

${table(
    ['Relay process', 'RSS', 'JS heap', 'External (wasm, buffers)', 'Documents loaded', 'Connected devices'],
    [memRow('Start', r.mem.start), memRow('All connected, idle (after the probe)', r.mem.connected), memRow('After the load stages, idle', r.mem.afterLoad), memRow('All disconnected', r.mem.disconnected)],
  )}

- ${fmtInt(r.connect.connected)} of ${fmtInt(r.devices)} devices connected (authenticated) in ${s(r.connect.ms)} from ${r.clientProcesses} processes at once; the probe's
  ${fmtInt(r.probe.expected)} expected arrivals: ${fmtInt(r.probe.arrivals)} in ${s(r.probe.ms)}.
- Per loaded document: ${kib(d.perDocRss)} RSS, ${kib(d.perDocHeap)} heap + external (${fmtInt(d.docs)} documents: every site's index and ledger,
  and the journals the stages opened). Per idle connection: ${kib(d.perConnRss)} RSS, ${kib(d.perConnHeap)} heap + external (${fmtInt(d.peers)} connections).
- Client processes (${r.devices} devices): ${r.clientMem.map((c) => `${mib(c.rss)} RSS / ${mib(c.heapUsed)} heap`).join('; ')}.

### Load stages (all ${fmtInt(r.devices)} devices and the measured pair connected)

${table(['Each device records', 'Offered /s', 'Sent', 'Delivered /s in the stage', 'Arrivals / expected', 'Drain after', 'Load devices latency p50 / p99 / max ms', 'Measured pair (SiteNodes) p50 / p99 / max ms', 'Relay CPU', 'Relay RSS', 'Kept up'], stageRows)}

### ${apart}: catch-up through the relay, and PouchDB

${table(['System', 'Link', 'Movements', 'Until both hold all', 'Bytes up / down (both devices)', 'B per movement per link crossing', 'CPU ms per movement recorded', 'Converged'], catchRows)}

PouchDB ÷ stockmesh (same movements, same link, same run):

${table(['Link', 'Bytes', 'Time to catch up', 'CPU to record a movement'], ratioRows)}

${comparisonSection(r, m, others)}### Findings

${relayFindings(r)}
${notes ? `\n### Notes on this run (written by hand: bench/relayNotes.md)\n\n${notes.trim()}\n` : ''}
${RELAY_END}
`
}

function relayFindings(r: RelayResult): string {
  const d = relayDerived(r)
  const out: string[] = []
  const judged = targetStage(r)
  const best = [...r.stages].filter(keptUp).sort((a, b) => b.offeredPerS - a.offeredPerS)[0]
  const failedStages = r.stages.filter((st) => !keptUp(st))
  out.push(
    `- **Connections**: ${r.connect.connected === r.devices ? `all ${r.devices} devices` : `${r.connect.connected} of ${r.devices} devices`} connected and authenticated at once in ${s(r.connect.ms)}${r.probe.arrivals >= r.probe.expected ? ', and every one was syncing (its probe reached both other devices of its site)' : `; only ${fmtInt(r.probe.arrivals)} of ${fmtInt(r.probe.expected)} probe arrivals happened`}.`,
  )
  if (best) out.push(`- **Throughput**: with every device connected the relay kept up at ${fmt(best.offeredPerS, 0)} movements/s (each carried to ${r.perSite - 1} other devices: ${fmt(best.offeredPerS * (r.perSite - 1), 0)} deliveries/s) using ${fmt(best.relayCpuPct, 0)}% of a core.${failedStages.length ? ` At ${failedStages.map((st) => `${fmt(st.offeredPerS, 0)}/s`).join(', ')} it did not: ${failedStages.map((st) => `${fmt(st.deliveredPerS)}/s delivered in the stage, ${st.arrivals >= st.expected ? `the rest ${s(st.drainMs)} after it` : `${fmtInt(st.expected - st.arrivals)} arrivals still missing after 60 s`}, relay at ${fmt(st.relayCpuPct, 0)}% of a core`).join('; ')}.` : ''}`)
  else out.push(`- **Throughput**: no stage kept up: ${r.stages.map((st) => `${fmt(st.offeredPerS, 0)}/s offered, ${fmt(st.deliveredPerS)}/s delivered`).join('; ')}.`)
  if (judged) out.push(`- **Latency** between two SiteNodes of one site at ${fmt(judged.offeredPerS, 0)} movements/s: p50 ${fmtInt(judged.pair.p50)} ms, p99 ${fmtInt(judged.pair.p99)} ms; the load devices saw p50 ${fmtInt(judged.load.p50)} ms, p99 ${fmtInt(judged.load.p99)} ms over ${fmtInt(judged.load.n)} arrivals.`)
  out.push(`- **Memory**: ${kib(d.perDocRss)} RSS per loaded document (${fmt(2 ** 30 / d.perDocRss / 1000, 0)}k documents per GB) and ${kib(d.perConnRss)} per idle connection. automerge-repo never releases a handle (section 2), so the relay's memory grows with every document any device ever synced, not with the devices connected now.`)
  const a = r.catchup.find((c) => c.system === 'stockmesh' && c.link === '64kbit')
  const p = r.catchup.find((c) => c.system === 'pouchdb' && c.link === '64kbit')
  const al = r.catchup.find((c) => c.system === 'stockmesh' && c.link === 'loopback')
  if (a) out.push(`- **${apartOf(r)}, over 64 kbit/s**: ${fmtInt(a.movements)} movements in ${s(a.ms)} (${fmt(per5000(a) / 1000)} s per 5,000 each way), ${fmt(perCrossing(a))} B per movement per link crossing${al ? `; on loopback ${s(al.ms)} and ${fmt(perCrossing(al))} B` : ''}. At 8,000 B/s the bytes alone need ${fmt((Math.max(a.up, a.down) / 2 / 8000))} s per device link, so the link, not the relay, decides the time.`)
  const un = r.mem.disconnected.unhandled ?? 0
  if (un) out.push(`- **Unhandled rejections in the relay**: ${un} during the load part (the CLI logs them and carries on; without that handler they would end the process). The first: \`${r.mem.disconnected.firstUnhandled ?? '?'}\`.`)
  const dropped = r.catchup.filter((c) => c.drops)
  if (dropped.length) out.push(`- **Dropped connections on the slow link**: ${dropped.map((c) => `${c.link}: the devices lost their relay connection ${c.drops} times`).join('; ')}. automerge-repo's server adapter (which the relay's adapter extends) pings every 5 s and terminates a socket that has not answered the previous ping; on 64 kbit/s the device's pong waits behind the journal it is uploading (10 s of backlog is only 80 KB), so the relay drops the device mid-upload and the sync starts over after the reconnect. The keep-alive should tolerate a busy slow link (count any frame received as alive, or a longer timeout).`)
  if (a && p) out.push(`- **Against PouchDB**: PouchDB moved ${fmt((p.up + p.down) / (a.up + a.down), 1)}x the bytes and took ${fmt(p.ms / a.ms, 1)}x the time over 64 kbit/s (${fmt(perCrossing(p))} vs ${fmt(perCrossing(a))} B per movement per crossing): one JSON document per movement with its revision tree, checkpoints and per-batch round trips (\`_revs_diff\`, \`_bulk_get\`, \`_bulk_docs\`), against Automerge's columnar journals sent whole.`)
  return out.join('\n')
}

/** Replaces the relay section of `markdown` (or appends it), and points the top Targets section at it. */
export function mergeRelaySection(markdown: string, section: string): string {
  const start = markdown.indexOf(RELAY_START)
  const end = markdown.indexOf(RELAY_END)
  let merged = start >= 0 && end > start ? markdown.slice(0, start) + section.trimEnd() + markdown.slice(end + RELAY_END.length) : `${markdown.trimEnd()}\n\n${section}`
  const pointer = 'Relay targets (hundreds of devices, a week apart over 64 kbit/s, PouchDB alongside): section 5.'
  if (!merged.includes(pointer)) merged = merged.replace('\n## How to read / method', `\n${pointer}\n\n## How to read / method`)
  return merged.endsWith('\n') ? merged : merged + '\n'
}
