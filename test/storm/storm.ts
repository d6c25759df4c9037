/**
 * The sync storm (issue 10): several site nodes of two stores and carriers, each a real process on
 * a host of its own (network namespaces, test/helpers/netns.ts), the hub relay at the hub's LAN
 * segment. A seeded schedule moves hosts between LAN segments (partitions, links dropped), kills
 * site and carrier processes with SIGKILL and restarts them, while storekeepers record movements
 * and stores order from each other and approve. Then it heals: everyone on one LAN in the field.
 * It checks that every device of a store converges on the same movements, that no acknowledged
 * movement is lost and none invented, that on hand equals the sum of the movements on every
 * device, that each ledger checks out, that every acknowledged order is on every device of both
 * stores with one status (approved where an approval was acknowledged), and that every carrier
 * holds the latest of every document it carries (by remote heads, GET /route). It heals on a LAN
 * segment without the relay, so what converges there converged over the LAN and the carriers.
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
  orders: number
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

interface Carrier {
  host: number
  name: string
  dir: string
  process: RelayProcess | undefined
}

interface RouteDoc {
  documentId: string
  owner: string | null
  peers: Array<{ peer: string; latest: boolean }>
}

const TOKEN = 'storm-route'
const OTHER: Record<string, string> = { 'store-a': 'store-b', 'store-b': 'store-a' }

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
  const lan: Lan = makeLan(hostCount, startSegments, (remove) => cleanup(async () => remove()), SEGMENTS)
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
  const carriers: Carrier[] = []
  const startCarrier = async (c: Carrier, first: boolean) => {
    c.process = await serverProcess(['carrier', '--data', c.dir, ...(first ? ['--enrol', path.join(files, `${c.name}.json`)] : []), '--host', lan.address(c.host), '--mdns-interface', lan.address(c.host), '--api-token', TOKEN, '--log-level', 'warn'], ['ip', 'netns', 'exec', lan.hosts[c.host]!])
    const p = c.process
    cleanup(() => p.kill('SIGTERM'))
  }
  for (let c = 0; c < options.carriers; c++) {
    const carrier = { host: 1 + nodes + c, name: `van-${c}`, dir: tempDir('storm-van-'), process: undefined }
    await enrol(carrier.name, 'hub', ['--role', 'carrier', '--serves', 'store-a,store-b'])
    await startCarrier(carrier, true)
    carriers.push(carrier)
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
  /** Orders acknowledged (created and submitted), and whether an approval of each was acknowledged. */
  const orders = new Map<string, { from: string; approved: boolean }>()
  const down: Array<{ device?: Device; carrier?: Carrier; after: number }> = []
  let steps = 0
  let recorded = 0
  let kills = 0
  // (the carriers are hosts too: moved like devices)
  let moves = 0
  const until = Date.now() + options.stormMs

  while (Date.now() < until) {
    steps++
    // Restart the devices whose time has come.
    for (const entry of down.filter((e) => e.after <= steps)) {
      down.splice(down.indexOf(entry), 1)
      if (entry.device) await start(entry.device, false)
      if (entry.carrier) await startCarrier(entry.carrier, false)
      log(`step ${steps}: ${(entry.device ?? entry.carrier)!.name} restarted`)
    }
    const roll = random()
    const up = devices.filter((d) => d.process)
    if (roll < 0.1 && up.length > 0) {
      // Orders between the stores: a new one, submitted; or an approval by the supplier of one it sees.
      const d = pick(up)
      const theirs = [...orders].filter(([, o]) => o.from === OTHER[d.store])
      try {
        if (random() < 0.5 || theirs.length === 0) {
          const id = `po${options.seed}-${steps}`
          const created = await api(d, 'POST', '/api/orders', { id, from: d.store, to: OTHER[d.store], lines: [{ sku: 'AMOX-500', requested: 1 + Math.floor(random() * 9) }], user: `keeper-${d.name}` })
          const submitted = created.status === 201 ? await api(d, 'POST', `/api/orders/${id}/submit`, { user: `keeper-${d.name}` }) : undefined
          if (submitted?.status === 200) orders.set(id, { from: d.store, approved: false })
          log(`step ${steps}: ${d.name} orders ${id} (${created.status}, ${submitted?.status ?? '-'})`)
        } else {
          const [id, order] = pick(theirs)
          const res = await api(d, 'POST', `/api/orders/${id}/approve`, { user: `keeper-${d.name}` })
          // 404: not here yet; 409: approved already (here or by a device it synced with).
          if (res.status === 200) order.approved = true
          log(`step ${steps}: ${d.name} approves ${id} (${res.status})`)
        }
      } catch {
        // its answer never came (killed meanwhile): not counted
      }
    } else if (roll < 0.55 && up.length > 0) {
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
      const vans = carriers.filter((c) => c.process)
      if (vans.length > 0 && random() < 0.25) {
        // A carrier dies on the road: what it took (on its disk) must still reach everyone.
        const c = pick(vans)
        await c.process!.kill('SIGKILL')
        c.process = undefined
        down.push({ carrier: c, after: steps + 1 + Math.floor(random() * 4) })
        log(`step ${steps}: ${c.name} killed`)
      } else {
        const d = pick(up)
        // Killed while its storekeepers may be recording: what it acknowledged must survive.
        await d.process!.kill('SIGKILL')
        d.process = undefined
        down.push({ device: d, after: steps + 1 + Math.floor(random() * 4) })
        log(`step ${steps}: ${d.name} killed`)
      }
      kills++
    } else {
      await sleep(200 + Math.floor(random() * 600))
    }
  }

  // Heal: everyone up, on one LAN in the field, away from the hub: the devices must converge over
  // the LAN alone (and the carrier), not through the relay.
  for (const entry of down.splice(0)) {
    if (entry.device) await start(entry.device, false)
    if (entry.carrier) await startCarrier(entry.carrier, false)
  }
  for (let host = 1; host < hostCount; host++) lan.attach(host, 1)
  log(`healed after ${steps} steps: ${recorded} movements and ${orders.size} orders (${[...orders.values()].filter((o) => o.approved).length} approved) acknowledged, ${kills} kills, ${moves} moves`)
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
    // Every acknowledged order on every device of both stores, with one status.
    for (const [id, order] of orders) {
      const statuses = await Promise.all(devices.map(async (d) => [d.name, (await api(d, 'GET', `/api/orders/${id}`)).body.status as string | undefined] as const))
      const missing = statuses.filter(([, status]) => status === undefined)
      if (missing.length > 0) found.push(`order ${id} (from ${order.from}) missing on ${missing.map(([name]) => name).join(', ')}`)
      const distinct = new Set(statuses.map(([, status]) => status))
      if (distinct.size > 1) found.push(`order ${id}: statuses differ: ${statuses.map(([name, status]) => `${name} ${status}`).join(', ')}`)
      if (order.approved && !distinct.has('approved')) found.push(`order ${id}: its approval was acknowledged, the devices say ${[...distinct].join(', ')}`)
    }
    // Every carrier holds the latest of each document it carries: a device of its owner holds the same heads.
    for (const c of carriers) {
      const route = (await lan.api(c.host, c.process!.url.replace(/^ws:/, 'http:'), 'GET', '/route', undefined, { authorization: `Bearer ${TOKEN}` })).body as { documents: RouteDoc[] }
      const stale = route.documents.filter((doc) => doc.owner !== null && !doc.peers.some((p) => p.latest && p.peer.startsWith(`site/${doc.owner}/`)))
      if (stale.length > 0) found.push(`${c.name} holds ${stale.length} of ${route.documents.length} documents not as their site's devices do (${stale.slice(0, 2).map((d) => d.documentId).join(', ')}…)`)
      const ordersHeld = route.documents.filter((doc) => doc.owner !== null).length
      if (orders.size > 0 && ordersHeld === 0) found.push(`${c.name} holds no document of the stores`)
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
    if (Date.now() - healed > options.settleMs) {
      // What each device's LAN looked like: who it is linked with, who it is not, and why.
      const links = await Promise.all(
        devices.map(async (d) => {
          const sync = (await api(d, 'GET', '/api/sync').catch(() => ({ body: {} }))).body as { lan?: { peers: Array<{ peerId: string; state: string; address: string; reason?: string }> }; state?: string }
          const orderDocs = ((sync as { documents?: Array<{ kind: string; id: string; missing?: boolean; pending: number }> }).documents ?? []).filter((x) => x.kind === 'order').map((x) => `${x.id}${x.missing ? ' missing' : ''}`)
          const listed = ((await api(d, 'GET', '/api/orders').catch(() => ({ body: {} }))).body as { orders?: Array<{ id: string }> }).orders?.map((o) => o.id) ?? []
          const notes = (d.process?.output() ?? '').split('\n').filter((l) => /storage id|not available|unavailable/.test(l)).slice(-5).map((l) => `  log: ${l.slice(0, 300)}`)
          return `${d.name} (${sync.state ?? '?'}): ${(sync.lan?.peers ?? []).map((p) => `${p.peerId} ${p.state}${p.reason ? ` (${p.reason.slice(0, 80)})` : ''} ${p.address}`).join('; ')}\n  orders listed: ${listed.join(', ')}\n  order documents: ${orderDocs.join(', ')}${notes.length ? `\n${notes.join('\n')}` : ''}`
        }),
      )
      throw new Error(`the storm (STOCKMESH_SEED=${options.seed}) did not converge within ${options.settleMs} ms:\n${last.join('\n')}\nLAN links at the end:\n${links.join('\n')}`)
    }
    await sleep(1000)
  }
  const convergedMs = Date.now() - healed
  log(`converged ${convergedMs} ms after healing`)
  return { steps, recorded, orders: orders.size, kills, moves, convergedMs }
}
