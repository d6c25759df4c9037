/**
 * Section 8: forwarding to the parent ERP (`npm run bench -- --only=erp`; needs Debian's
 * tryton-server, as .ci/run installs). A real hub relay process with `--erp tryton://…` against a
 * real Tryton 6.0 on SQLite, real site processes.
 *
 * - Backlog: store A comes back after weeks offline with N movements (recorded with the relay's
 *   ERP link off, so they all wait); the relay starts forwarding; the time until Tryton holds all
 *   N is taken (batches of 100, 200 ms apart: the defaults), and the throughput.
 * - Fairness: while A's backlog drains, store B records a few movements; the time each takes to
 *   reach Tryton is taken.
 * - Anchor: Tryton's own ceiling on this machine: the same connector, called directly in one
 *   process with batches of 100 and nothing between them (no relay, no outbox, no rate limit).
 *   The ratio says what the bridge's safety costs; PouchDB has no counterpart here.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { TrytonConnector } from '../src/erp/tryton.ts'
import type { MovementFact } from '../src/erp/facts.ts'
import { runCli } from '../test/cli/cliHelpers.ts'
import { serverProcess, startSiteProcess, type RelayProcess, type SiteProcess } from '../test/helpers/siteProcess.ts'
import { quantitiesAt, seedErp, startTryton } from '../test/helpers/tryton.ts'
import { log } from './workload.ts'

export interface ErpResult {
  backlog: number
  drainS: number
  bridgePerS: number
  directPerS: number
  directFacts: number
  fairness: { movements: number; medianS: number; maxS: number }
  equal: boolean
}

const TOKEN = 'bench-erp'

async function cli(args: string[]): Promise<void> {
  const r = await runCli(args, 120_000)
  if (r.status !== 0) throw new Error(`stockmesh ${args.join(' ')}: ${r.stderr}`)
}

async function json(url: string, method = 'GET', body?: unknown, headers: Record<string, string> = {}): Promise<any> {
  const res = await fetch(url, { method, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  return res.json()
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms: number, every = 100): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await probe().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, every))
  }
}

export async function erpBench(options: { backlog: number; direct: number }): Promise<ErpResult> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'stockmesh-bench-erp-'))
  const stops: Array<() => Promise<unknown>> = []
  try {
    const erp = await startTryton((stop) => stops.push(stop), mkdtempSync(path.join(root, 'tryton-')))
    await seedErp(erp.rpc, { products: [{ sku: 'AMOX-500', name: 'Amoxicillin 500 mg' }], sites: [{ id: 'store-a', name: 'Store A' }, { id: 'store-b', name: 'Store B' }, { id: 'bench-direct', name: 'Direct' }] })

    // The anchor: the connector alone.
    const connector = new TrytonConnector({ url: erp.url, database: erp.database, user: erp.user, password: erp.password })
    const facts: MovementFact[] = Array.from({ length: options.direct }, (_, i) => ({ type: 'movement', key: `bench-direct/d${i}/n:${i}`, site: 'bench-direct', id: `d${i}`, kind: 'receipt', sku: 'AMOX-500', delta: 1, at: Date.now(), by: 'bench' }))
    const directStarted = performance.now()
    for (let i = 0; i < facts.length; i += 100) await connector.forward(facts.slice(i, i + 100))
    const directS = (performance.now() - directStarted) / 1000
    log(`  direct: ${options.direct} movements in ${directS.toFixed(1)} s`)

    const hub = path.join(root, 'hub')
    await cli(['deployment', 'init', '--data', hub, '--name', 'Bench'])
    const csv = path.join(root, 'products.csv')
    writeFileSync(csv, 'sku,name,unit\nAMOX-500,Amoxicillin 500 mg,pack\n')
    await cli(['catalog', 'import', '--data', hub, csv])
    const enrol = (device: string, site: string) => cli(['enrol', '--data', hub, '--site', site, '--device', device, '--relay', 'ws://127.0.0.1:18481', '--out', path.join(root, `${device}.json`)])
    await enrol('a1', 'store-a')
    await enrol('b1', 'store-b')
    const relayArgs = ['relay', '--data', hub, '--port', '18481', '--api-token', TOKEN, '--log-level', 'warn']
    let relay: RelayProcess = await serverProcess(relayArgs)
    stops.push(() => relay.kill('SIGTERM'))
    const site = async (device: string): Promise<SiteProcess> => {
      const p = await startSiteProcess(['site', '--data', mkdtempSync(path.join(root, 'site-')), '--enrol', path.join(root, `${device}.json`), '--port', '0', '--log-level', 'warn'], 60_000)
      stops.push(() => p.kill('SIGTERM'))
      return p
    }
    const [a1, b1] = await Promise.all([site('a1'), site('b1')])
    // A's weeks offline: the backlog is recorded and reaches the relay, with the ERP link off.
    for (let i = 0; i < options.backlog; i += 1000) {
      const movements = Array.from({ length: Math.min(1000, options.backlog - i) }, (_, j) => ({ id: `bk-${i + j}`, kind: (i + j) % 4 === 3 ? 'issue' : 'receipt', sku: 'AMOX-500', quantity: 1 + ((i + j) % 7), user: 'amina' }))
      await json(`${a1.url}/api/movements`, 'POST', { movements })
    }
    await until('the relay to hold all of A', async () => ((await json(`${a1.url}/api/sync`)).state === 'up-to-date' ? true : undefined), 600_000, 500)
    await relay.kill('SIGTERM')
    const passwordFile = path.join(root, 'erp-password')
    writeFileSync(passwordFile, erp.password, { mode: 0o600 })
    relay = await serverProcess([...relayArgs, '--erp', `tryton://${erp.user}@${new URL(erp.url).host}/${erp.database}`, '--erp-password-file', passwordFile])
    const started = performance.now()
    const status = async () => (await json(`${relay.url.replace(/^ws:/, 'http:')}/erp`, 'GET', undefined, { authorization: `Bearer ${TOKEN}` })) as { sites: Array<{ site: string; forwarded: number }> }
    const forwarded = async (s: string) => (await status()).sites.find((x) => x.site === s)?.forwarded ?? 0
    // B keeps working meanwhile: a movement every second for a while, each timed to Tryton.
    await until('forwarding to begin', async () => ((await forwarded('store-a')) > 0 ? true : undefined), 120_000)
    const latencies: number[] = []
    const bCount = 10
    for (let i = 0; i < bCount; i++) {
      const recorded = performance.now()
      await json(`${b1.url}/api/movements`, 'POST', { id: `b-${i}`, kind: 'receipt', sku: 'AMOX-500', quantity: 2, user: 'otieno' })
      await until('B movement at Tryton', async () => ((await forwarded('store-b')) >= i + 1 ? true : undefined), 120_000, 50)
      latencies.push((performance.now() - recorded) / 1000)
    }
    await until('the backlog to drain', async () => ((await forwarded('store-a')) >= options.backlog ? true : undefined), 1_800_000, 500)
    const drainS = (performance.now() - started) / 1000
    const ledger = await json(`${a1.url}/api/stock/AMOX-500`)
    const equal = (await quantitiesAt(erp.rpc, 'store-a')).get('AMOX-500') === ledger.onHand
    latencies.sort((x, y) => x - y)
    return {
      backlog: options.backlog,
      drainS,
      bridgePerS: options.backlog / drainS,
      directPerS: options.direct / directS,
      directFacts: options.direct,
      fairness: { movements: bCount, medianS: latencies[Math.floor(latencies.length / 2)]!, maxS: latencies.at(-1)! },
      equal,
    }
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined)
    rmSync(root, { recursive: true, force: true })
  }
}

const START = '<!-- erp:start -->'
const END = '<!-- erp:end -->'

export function renderErpSection(r: ErpResult, machine: { cpu: string; cores: number; date: string }, durationS: number): string {
  return `${START}
## 8. Forwarding to the parent ERP (Tryton 6.0)

Run ${machine.date} on ${machine.cpu} (${machine.cores} cores), ${durationS.toFixed(0)} s (\`npm run bench -- --only=erp\`; needs Debian's tryton-server).
A real hub relay process with \`--erp tryton://…\` (the defaults: batches of 100, 200 ms apart), a
real Tryton 6.0 on SQLite on the same machine, real site processes. *Backlog*: store A comes back
with ${r.backlog.toLocaleString('en')} movements the relay holds; the time from the relay's start with the ERP link
until Tryton holds all of them (one done internal shipment each). *Fairness*: meanwhile store B
records a movement at a time; the time until each is in Tryton. *Anchor*: the same connector
called directly, ${r.directFacts.toLocaleString('en')} movements in batches of 100 back to back (no relay, outbox, search
ahead or rate limit: Tryton's own ceiling here). PouchDB has no counterpart.

| | Movements | Time | Movements / s |
| --- | --- | --- | --- |
| Bridge: a ${r.backlog.toLocaleString('en')}-movement backlog drains | ${r.backlog.toLocaleString('en')} | ${r.drainS.toFixed(1)} s | ${r.bridgePerS.toFixed(0)} |
| Tryton's ceiling (the connector alone) | ${r.directFacts.toLocaleString('en')} | ${(r.directFacts / r.directPerS).toFixed(1)} s | ${r.directPerS.toFixed(0)} |
| Ratio bridge / ceiling | | | ${(r.bridgePerS / r.directPerS).toFixed(2)} |

Store B while A drained: ${r.fairness.movements} movements, each in Tryton after ${r.fairness.medianS.toFixed(1)} s (median), ${r.fairness.maxS.toFixed(1)} s at most.
Tryton's quantity at store A equals A's ledger after the drain: ${r.equal ? 'yes' : '**no**'}.

${r.bridgePerS / r.directPerS >= 0.8 ? `Reading: the bridge forwards at Tryton's own pace (${(r.bridgePerS / r.directPerS).toFixed(2)} of the ceiling): the search before every send, the outbox's fsync and the pause between batches cost little next to Tryton making and finishing a shipment (about ${(1000 / r.directPerS).toFixed(0)} ms a movement on SQLite here). A backlog drains at about ${Math.round(r.bridgePerS * 3600).toLocaleString('en')} movements an hour; another store's movement waits for at most the batch in flight and its own (${r.fairness.maxS.toFixed(0)} s), not for the backlog.` : `Reading: the bridge reaches ${(r.bridgePerS / r.directPerS).toFixed(2)} of Tryton's ceiling: its own work (search before every send, fsync, pauses) is a large part of the time.`}
${END}
`
}

export function mergeErpSection(markdown: string, section: string): string {
  const start = markdown.indexOf(START)
  const end = markdown.indexOf(END)
  const merged = start >= 0 && end > start ? markdown.slice(0, start) + section.trimEnd() + markdown.slice(end + END.length) : `${markdown.trimEnd()}\n\n${section}`
  return merged.endsWith('\n') ? merged : merged + '\n'
}
