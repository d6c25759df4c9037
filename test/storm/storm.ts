/**
 * The sync storm (issue 10): several site nodes of two stores and a carrier, each a real process on
 * a host of its own (network namespaces, test/helpers/netns.ts), the hub relay at the hub's LAN
 * segment. A seeded schedule moves hosts between LAN segments (partitions, links dropped), kills
 * site processes with SIGKILL and restarts them, while storekeepers record movements. Then it heals:
 * everyone on one LAN in the field. It checks that every device of a store converges on the same
 * movements, that no acknowledged movement is lost, that on hand equals the sum of the movements
 * on every device, and that each ledger checks out. It heals on a LAN segment without the relay,
 * so what converges there converged over the LAN (and the carrier).
 *
 * Used by test/storm/storm.test.ts (a size CI fits) and `npm run storm -- --nodes N --minutes M`.
 */
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { runCli } from '../cli/cliHelpers.ts'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { makeLan, type Lan } from '../helpers/netns.ts'
import { prng } from '../helpers/seed.ts'
import { serverProcess, type RelayProcess, type SiteProcess } from '../helpers/siteProcess.ts'

export interface StormOptions {
  seed: number
  /** Site devices (split over two stores; at least 2). */
  nodes: number
  /** Carriers (route: both stores). */
  carriers: number
  /** How long the storm blows before it heals, ms. */
  stormMs: number
  /** How long convergence may take after it heals, ms. */
  settleMs: number
  log?: (line: string) => void
}

export interface StormResult {
  steps: number
  recorded: number
  kills: number
  moves: number
  convergedMs: number
}

const SEGMENTS = 3 // 0: the hub (relay), 1 and 2: LANs in the field
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function ok(args: string[]): Promise<void> {
  const result = await runCli(args)
  if (result.status !== 0) throw new Error(`stockmesh ${args.join(' ')} failed:\n${result.stderr}`)
}

interface Device {
  host: number
  name: string
  store: string
  dir: string
  process: SiteProcess | undefined
}

export async function runStorm(options: StormOptions, cleanup: (stop: () => Promise<unknown>) => void): Promise<StormResult> {
  const log = options.log ?? (() => {})
  const random = prng(options.seed)
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!
  const nodes = Math.max(2, options.nodes)
  // Hosts: 0 the relay, 1..nodes the devices, then the carriers.
  const hostCount = 1 + nodes + options.carriers
  const startSegments = [0, ...Array.from({ length: nodes }, () => 1 + Math.floor(random() * (SEGMENTS - 1))), ...Array.from({ length: options.carriers }, () => 0)]
  // Its own temporary folders (the storm also runs outside vitest: npm run storm), removed at the end.
  const root = mkdtempSync(path.join(os.tmpdir(), 'stockmesh-storm-'))
  let made = 0
  const tempDir = (prefix: string) => mkdtempSync(path.join(root, `${prefix}${made++}-`))
  const lan: Lan = makeLan(hostCount, startSegments, (remove) => cleanup(async () => remove()))
  cleanup(async () => rmSync(root, { recursive: true, force: true }))
  const segmentOf = [...startSegments]

  const hub = path.join(tempDir('storm-hub-'), 'hub')
  await ok(['deployment', 'init', '--data', hub, '--name', 'Storm'])
  const csv = path.join(tempDir('storm-csv-'), 'products.csv')
  writeFileSync(csv, 'sku,name,unit\nAMOX-500,Amoxicillin 500 mg capsules,pack of 100\n')
  await ok(['catalog', 'import', '--data', hub, csv])
  const relayUrl = `ws://${lan.address(0)}:8480`
  const files = tempDir('storm-enrol-')
  const enrol = (device: string, site: string, extra: string[] = []) => ok(['enrol', '--data', hub, '--site', site, '--device', device, '--relay', relayUrl, '--out', path.join(files, `${device}.json`), ...extra])
  const devices: Device[] = []
  for (let i = 0; i < nodes; i++) {
    const store = i % 2 === 0 ? 'store-a' : 'store-b'
    const name = `d${i}`
    await enrol(name, store)
    devices.push({ host: 1 + i, name, store, dir: path.join(tempDir('storm-site-'), name), process: undefined })
  }
  const relay: RelayProcess = await serverProcess(['relay', '--data', hub, '--port', '8480', '--host', lan.address(0), '--log-level', 'warn'], ['ip', 'netns', 'exec', lan.hosts[0]!])
  cleanup(() => relay.kill('SIGTERM'))
  for (let c = 0; c < options.carriers; c++) {
    const host = 1 + nodes + c
    await enrol(`van-${c}`, 'hub', ['--role', 'carrier', '--serves', 'store-a,store-b'])
    const van = await serverProcess(['carrier', '--data', tempDir('storm-van-'), '--enrol', path.join(files, `van-${c}.json`), '--host', lan.address(host), '--mdns-interface', lan.address(host), '--log-level', 'warn'], ['ip', 'netns', 'exec', lan.hosts[host]!])
    cleanup(() => van.kill('SIGTERM'))
  }

  const start = async (d: Device, first: boolean) => {
    d.process = await lan.site(d.host, d.dir, first ? path.join(files, `${d.name}.json`) : undefined)
    const p = d.process
    cleanup(() => p.kill('SIGTERM'))
  }
  await Promise.all(devices.map((d) => start(d, true)))

  const api = (d: Device, method: string, p: string, body?: unknown) => lan.api(d.host, d.process!.url, method, p, body)
  /** Movements each store's devices acknowledged (on disk, so never lost), and those whose answer never came. */
  const acked = new Map<string, Map<string, number>>([['store-a', new Map()], ['store-b', new Map()]])
  const maybe = new Set<string>()
  const down: Array<{ device: Device; after: number }> = []
  let steps = 0
  let recorded = 0
  let kills = 0
  let moves = 0
  const until = Date.now() + options.stormMs

  while (Date.now() < until) {
    steps++
    // Restart the devices whose time has come.
    for (const entry of down.filter((e) => e.after <= steps)) {
      down.splice(down.indexOf(entry), 1)
      await start(entry.device, false)
      log(`step ${steps}: ${entry.device.name} restarted`)
    }
    const roll = random()
    const up = devices.filter((d) => d.process)
    if (roll < 0.55 && up.length > 0) {
      const d = pick(up)
      const id = `s${options.seed}-${steps}`
      const quantity = 1 + Math.floor(random() * 20)
      const kind = random() < 0.6 ? 'receipt' : 'issue'
      try {
        const res = await api(d, 'POST', '/api/movements', { id, kind, sku: 'AMOX-500', quantity, user: `keeper-${d.name}` })
        if (res.status === 201) {
          acked.get(d.store)!.set(id, kind === 'receipt' ? quantity : -quantity)
          recorded++
        } else maybe.add(id)
      } catch {
        maybe.add(id)
      }
    } else if (roll < 0.85) {
      const host = 1 + Math.floor(random() * (hostCount - 1))
      const segment = Math.floor(random() * SEGMENTS)
      lan.attach(host, segment)
      segmentOf[host] = segment
      moves++
      log(`step ${steps}: host ${host} to segment ${segment}`)
    } else if (roll < 0.95 && up.length > 1) {
      const d = pick(up)
      // Killed while its storekeepers may be recording: what it acknowledged must survive.
      await d.process!.kill('SIGKILL')
      d.process = undefined
      down.push({ device: d, after: steps + 1 + Math.floor(random() * 4) })
      kills++
      log(`step ${steps}: ${d.name} killed`)
    } else {
      await sleep(200 + Math.floor(random() * 600))
    }
  }

  // Heal: everyone up, on one LAN in the field, away from the hub: the devices must converge over
  // the LAN alone (and the carrier), not through the relay.
  for (const entry of down.splice(0)) await start(entry.device, false)
  for (let host = 1; host < hostCount; host++) lan.attach(host, 1)
  log(`healed after ${steps} steps: ${recorded} movements acknowledged, ${kills} kills, ${moves} moves`)
  const healed = Date.now()
  const problems = async (): Promise<string[]> => {
    const found: string[] = []
    for (const store of ['store-a', 'store-b']) {
      const mine = devices.filter((d) => d.store === store)
      const views = await Promise.all(mine.map(async (d) => {
        const list = (await api(d, 'GET', '/api/movements?limit=10000')).body.movements as Array<{ id: string; delta: number }>
        const onHand = (await api(d, 'GET', '/api/stock/AMOX-500')).body.onHand as number
        const check = (await api(d, 'GET', '/api/ledger/check')).body as { consistent: boolean }
        return { d, ids: list.map((m) => m.id).sort(), sum: list.reduce((n, m) => n + m.delta, 0), onHand, consistent: check.consistent }
      }))
      const first = views[0]!
      for (const v of views) {
        const lost = [...acked.get(store)!.keys()].filter((id) => !v.ids.includes(id))
        if (lost.length > 0) found.push(`${v.d.name} lacks ${lost.length} acknowledged movements (${lost.slice(0, 3).join(', ')}…)`)
        const unknown = v.ids.filter((id) => !acked.get(store)!.has(id) && !maybe.has(id))
        if (unknown.length > 0) found.push(`${v.d.name} holds movements nobody recorded: ${unknown.slice(0, 3).join(', ')}`)
        if (v.onHand !== v.sum) found.push(`${v.d.name}: on hand ${v.onHand} ≠ the sum of its movements ${v.sum}`)
        if (!v.consistent) found.push(`${v.d.name}: the ledger check fails`)
        if (v.ids.join() !== first.ids.join()) found.push(`${v.d.name} and ${first.d.name} differ (${v.ids.length} vs ${first.ids.length} movements)`)
        if (v.onHand !== first.onHand) found.push(`${v.d.name} on hand ${v.onHand}, ${first.d.name} ${first.onHand}`)
      }
    }
    return found
  }
  let last: string[] = []
  for (;;) {
    try {
      last = await problems()
    } catch (error) {
      last = [`a device did not answer: ${(error as Error).message}`]
    }
    if (last.length === 0) break
    if (Date.now() - healed > options.settleMs) throw new Error(`the storm (STOCKMESH_SEED=${options.seed}) did not converge within ${options.settleMs} ms:\n${last.join('\n')}`)
    await sleep(1000)
  }
  const convergedMs = Date.now() - healed
  log(`converged ${convergedMs} ms after healing`)
  return { steps, recorded, kills, moves, convergedMs }
}
