/**
 * Section 7: the LAN mesh (issue 10). Real `stockmesh site` processes, each on a host of its own
 * (network namespaces, test/helpers/netns.ts; needs root), all devices of one store, no relay:
 * - discovery: from the processes being ready to every pair linked (DNS-SD, proofs both ways);
 * - a partition: half the devices on one LAN segment, half on another, each records movements;
 *   then both halves are plugged into one LAN and the time until every device holds every movement
 *   is measured (convergence after a partition heals), with the bytes every host sent meanwhile
 *   (its interface's tx counter: sync, mDNS, TCP and websocket framing), per movement.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { runCli } from '../test/cli/cliHelpers.ts'
import { makeLan } from '../test/helpers/netns.ts'
import type { SiteProcess } from '../test/helpers/siteProcess.ts'
import { log } from './workload.ts'

export interface LanRow {
  nodes: number
  movements: number
  discoveryMs: number
  convergeMs: number
  /** Bytes all hosts sent while converging, per movement recorded during the partition. */
  bytesPerMovement: number
  /** …per copy delivered: each movement reaches the other half's devices. */
  bytesPerDelivery: number
}

export interface LanResult {
  rows: LanRow[]
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function cli(args: string[]): Promise<void> {
  const r = await runCli(args)
  if (r.status !== 0) throw new Error(`stockmesh ${args.join(' ')}: ${r.stderr}`)
}

async function scenario(nodes: number, movements: number): Promise<LanRow> {
  const stops: Array<() => Promise<unknown>> = []
  const root = mkdtempSync(path.join(os.tmpdir(), 'stockmesh-lanbench-'))
  try {
    // Segments 0 (where all meet), 1 and 2 (the two halves of the partition); everyone starts on 0.
    const lan = makeLan(nodes, Array.from({ length: nodes }, (_, i) => (i < 2 ? 1 + i : 0)), (remove) => stops.push(async () => remove()))
    for (let i = 0; i < nodes; i++) lan.attach(i, 0)
    const hub = path.join(root, 'hub')
    await cli(['deployment', 'init', '--data', hub, '--name', 'LanBench'])
    const csv = path.join(root, 'products.csv')
    writeFileSync(csv, 'sku,name,unit\nAMOX-500,Amoxicillin 500 mg capsules,pack of 100\n')
    await cli(['catalog', 'import', '--data', hub, csv])
    const sites: SiteProcess[] = []
    for (let i = 0; i < nodes; i++) await cli(['enrol', '--data', hub, '--site', 'store-a', '--device', `d${String(i).padStart(2, '0')}`, '--relay', 'ws://10.77.0.254:9', '--out', path.join(root, `d${i}.json`)])
    const started = await Promise.all(
      Array.from({ length: nodes }, async (_, i) => {
        const p = await lan.site(i, path.join(root, `site-${i}`), path.join(root, `d${i}.json`), 60_000)
        stops.push(() => p.kill('SIGTERM'))
        return p
      }),
    )
    sites.push(...started)
    const ready = performance.now()
    const linked = async (i: number) => ((await lan.api(i, sites[i]!.url, 'GET', '/api/sync')).body.lan?.peers ?? []).filter((p: { state: string }) => p.state === 'linked').length as number
    for (;;) {
      const counts = await Promise.all(sites.map((_, i) => linked(i)))
      if (counts.every((c) => c === nodes - 1)) break
      if (performance.now() - ready > 120_000) throw new Error(`discovery: links ${counts.join(',')} after 120 s`)
      await sleep(100)
    }
    const discoveryMs = performance.now() - ready

    // Partition: even hosts on segment 1, odd on segment 2; each device records its share.
    for (let i = 0; i < nodes; i++) lan.attach(i, 1 + (i % 2))
    await sleep(500)
    const per = Math.max(1, Math.round(movements / nodes))
    await Promise.all(
      sites.map((s, i) =>
        lan.api(i, s.url, 'POST', '/api/movements', { movements: Array.from({ length: per }, (_, k) => ({ id: `p-${i}-${k}`, kind: 'receipt', sku: 'AMOX-500', quantity: 1 + (k % 5), user: 'bench' })) }),
      ),
    )
    const total = per * nodes
    const count = async (i: number) => (await lan.api(i, sites[i]!.url, 'GET', '/api/movements?limit=1')).body.total as number
    const half = (parity: number) => sites.map((_, i) => i).filter((i) => i % 2 === parity)
    // Each half converges by itself first: what is measured is what crosses when it heals.
    for (;;) {
      const counts = await Promise.all(sites.map((_, i) => count(i)))
      const ok = [0, 1].every((parity) => half(parity).every((i) => counts[i] === per * half(parity).length))
      if (ok) break
      await sleep(200)
    }
    await sleep(1000)
    const tx = () => lan.hosts.reduce((sum, ns) => sum + Number(execFileSync('ip', ['netns', 'exec', ns, 'cat', '/sys/class/net/eth0/statistics/tx_bytes'], { encoding: 'utf8' }).trim()), 0)
    const before = tx()
    const healed = performance.now()
    for (let i = 0; i < nodes; i++) lan.attach(i, 0)
    for (;;) {
      const counts = await Promise.all(sites.map((_, i) => count(i)))
      if (counts.every((c) => c === total)) break
      if (performance.now() - healed > 300_000) throw new Error(`convergence: ${counts.join(',')} of ${total} after 300 s`)
      await sleep(100)
    }
    const convergeMs = performance.now() - healed
    const bytes = tx() - before
    // Every movement reaches the devices of the other half: ⌈n/2⌉ or ⌊n/2⌋ of them.
    const deliveries = half(0).length * per * half(1).length + half(1).length * per * half(0).length
    const row = { nodes, movements: total, discoveryMs, convergeMs, bytesPerMovement: bytes / total, bytesPerDelivery: bytes / deliveries }
    log(`lan: ${nodes} nodes: discovery ${discoveryMs.toFixed(0)} ms, converged ${convergeMs.toFixed(0)} ms after the partition healed, ${row.bytesPerMovement.toFixed(0)} B/movement, ${row.bytesPerDelivery.toFixed(0)} B/copy`)
    return row
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined)
    rmSync(root, { recursive: true, force: true })
  }
}

export async function lanBench(options: { sizes: number[]; movements: number }): Promise<LanResult> {
  const rows: LanRow[] = []
  for (const nodes of options.sizes) rows.push(await scenario(nodes, options.movements))
  return { rows }
}

export const LAN_START = '<!-- lan:start (bench/lan.ts) -->'
export const LAN_END = '<!-- lan:end -->'

export function renderLanSection(result: LanResult, machine: { cpu: string; cores: number; date: string }, durationS: number): string {
  const rows = result.rows.map((r) => `| ${r.nodes} | ${r.movements} | ${(r.discoveryMs / 1000).toFixed(2)} s | ${(r.convergeMs / 1000).toFixed(2)} s | ${r.bytesPerMovement.toFixed(0)} B | ${r.bytesPerDelivery.toFixed(0)} B |`)
  return `${LAN_START}
## 7. LAN mesh: discovery, convergence after a partition heals, bytes between LAN peers

Run ${machine.date} on ${machine.cpu} (${machine.cores} cores), ${durationS.toFixed(0)} s (\`npm run bench -- --only=lan\`; needs root).
Every device a real \`stockmesh site\` process on a host of its own (a network namespace, bridged
LAN segments), all devices of one store, no relay. *Discovery*: from the processes ready to every
pair linked (DNS-SD, proofs both ways). *Converge*: half the devices on one segment and half on
another each record their share of the movements (one batch a device) and converge within their
half; then all are plugged into one LAN, and the time until every device holds every movement is
taken (reconnection, a link per pair, sync of every device's journal). *Bytes*: what all hosts
sent meanwhile (interface tx counters: sync messages, mDNS, TCP/IP and websocket framing), per
movement recorded, and per copy delivered (each movement reaches every device of the other half).
No PouchDB row: a mesh of PouchDB peers replicating pairwise was not built for this run.

| Devices | Movements | Discovery | Converge after heal | Bytes / movement | Bytes / copy delivered |
| --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

${reading(result.rows)}
${LAN_END}
`
}

/** What the rows say, in words. */
function reading(rows: LanRow[]): string {
  if (rows.length < 2) return ''
  const [small, large] = [rows[0]!, rows[rows.length - 1]!]
  return [
    `Reading: from ${small.nodes} to ${large.nodes} devices, discovery went from ${(small.discoveryMs / 1000).toFixed(1)} to ${(large.discoveryMs / 1000).toFixed(1)} s and convergence after the heal from ${(small.convergeMs / 1000).toFixed(1)} to ${(large.convergeMs / 1000).toFixed(1)} s;`,
    `the bytes per copy delivered grew ${(large.bytesPerDelivery / small.bytesPerDelivery).toFixed(1)}x. Every device links to every other (a full mesh) and`,
    'syncs each journal with each linked peer, so the same changes cross several links on their way: a LAN of many',
    'devices would want fewer links (a spanning set) rather than every pair.',
  ].join('\n')
}

export function mergeLanSection(markdown: string, section: string): string {
  const start = markdown.indexOf(LAN_START)
  const end = markdown.indexOf(LAN_END)
  const merged = start >= 0 && end > start ? markdown.slice(0, start) + section.trimEnd() + markdown.slice(end + LAN_END.length) : `${markdown.trimEnd()}\n\n${section}`
  return merged.endsWith('\n') ? merged : merged + '\n'
}
