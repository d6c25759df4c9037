/**
 * A carrier between sites that never meet: real processes on hosts in network namespaces, three
 * LAN segments (the hub's, store A's, store B's) and a vehicle moved between them. The carrier
 * leaves the hub, meets A, then B, then the hub again, then A: A's stock reaches the relay, A's
 * order reaches B, B's approval reaches the relay and A, and GET /route says what the relay holds.
 * Then two carriers whose routes differ meet at a depot with no relay: an order from A to C goes
 * from A's van to C's van and on to C, C's approval comes back the same way, and neither van takes
 * what its route may not see; a revoked carrier at the depot gets nothing.
 */
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { ok, running, serverProcess } from '../helpers/deployment.ts'
import { makeLan, type Lan } from '../helpers/netns.ts'
import type { SiteProcess } from '../helpers/siteProcess.ts'
import { tempDir } from '../helpers/tempDir.ts'
import { until } from '../helpers/until.ts'

const TOKEN = 'route-token'
const HUB = 0
const A = 1
const B = 2

async function siteOn(lan: Lan, i: number, enrolment: string): Promise<SiteProcess> {
  const p = await lan.site(i, tempDir('site-'), enrolment)
  running.push(() => p.kill('SIGTERM'))
  return p
}

/** A hub folder with one product, its relay to listen on host 0 of `lan`, and enrolment files made on demand. */
async function pilotHub(lan: Lan) {
  const hub = path.join(tempDir('hub-'), 'hub')
  await ok(['deployment', 'init', '--data', hub, '--name', 'Pilot'])
  const csv = path.join(tempDir('csv-'), 'products.csv')
  writeFileSync(csv, 'sku,name,unit\nAMOX-500,Amoxicillin 500 mg capsules,pack of 100\n')
  await ok(['catalog', 'import', '--data', hub, csv])
  const files = tempDir('enrol-')
  const file = (device: string) => path.join(files, `${device}.json`)
  const enrol = (device: string, site: string, extra: string[] = []) => ok(['enrol', '--data', hub, '--site', site, '--device', device, '--relay', `ws://${lan.address(0)}:8480`, '--out', file(device), ...extra])
  /** The hub relay on host 0. */
  const relay = () => serverProcess(['relay', '--data', hub, '--port', '8480', '--host', lan.address(0), '--log-level', 'warn'], ['ip', 'netns', 'exec', lan.hosts[0]!])
  return { hub, enrol, file, relay }
}

interface CarrierSync {
  upstream: { connected: boolean } | null
  documents: RouteDoc[]
  held: number
  total: number
  carriers: Array<{ peerId: string; state: string; reason?: string; direction: string }>
}

/** `stockmesh carrier` on host `i` (LAN on its address); `sync()` is its driver's GET /api/sync. */
async function carrierOn(lan: Lan, i: number, enrolment: string): Promise<{ sync(): Promise<CarrierSync>; route(): Promise<CarrierSync> }> {
  const p = await serverProcess(['carrier', '--data', tempDir('carrier-'), '--enrol', enrolment, '--host', lan.address(i), '--mdns-interface', lan.address(i), '--api-token', TOKEN, '--log-level', 'warn'], ['ip', 'netns', 'exec', lan.hosts[i]!])
  const http = p.url.replace(/^ws:/, 'http:')
  const get = async (path: string) => (await lan.api(i, http, 'GET', path, undefined, { authorization: `Bearer ${TOKEN}` })).body as CarrierSync
  return { sync: () => get('/api/sync'), route: () => get('/route') }
}

/** The site on host `i` raises order `id` to `to` and submits it. */
async function submitOrder(lan: Lan, i: number, site: SiteProcess, id: string, from: string, to: string, requested: number): Promise<void> {
  expect((await lan.api(i, site.url, 'POST', '/api/orders', { id, from, to, lines: [{ sku: 'AMOX-500', requested }], user: 'amina' })).status).toBe(201)
  expect((await lan.api(i, site.url, 'POST', '/api/orders/' + id + '/submit', { user: 'amina' })).status).toBe(200)
}

/** Once the carrier holds, as `peer` holds them, at least `least` documents of `site`: those documents. */
const holdsAllOf = (carrier: { sync(): Promise<CarrierSync> }, site: string, peer: string, least: number) =>
  until(`the carrier to hold all of ${site} as ${peer} does`, async () => {
    const docs = (await carrier.sync()).documents.filter((d) => d.owner === site)
    return docs.length >= least && docs.every((d) => d.peers.some((p) => p.peer === peer && p.latest)) ? docs : undefined
  }, 60_000)

interface RouteDoc {
  documentId: string
  owner: string | null
  upstream: boolean
  peers: Array<{ peer: string; latest: boolean; lastSyncAt: string | null }>
}

describe('a carrier', () => {
  it('carries between two sites that never meet and the relay: meets A, then B, then the relay, and all end with the same documents', async () => {
    // Hosts: 0 the hub relay, 1 store A's device, 2 store B's device, 3 the carrier, 4 a new device of A at the hub.
    const lan = makeLan(5, [HUB, A, B, HUB, HUB])
    const { enrol, file, relay } = await pilotHub(lan)
    await enrol('a1', 'store-a')
    await enrol('a9', 'store-a')
    await enrol('b1', 'store-b')
    await enrol('van-3', 'hub', ['--role', 'carrier', '--serves', 'store-a,store-b'])

    await relay()
    const carrier = await carrierOn(lan, 3, file('van-3'))
    const route = () => carrier.route()
    await until('the carrier to reach the relay at the hub', async () => ((await route()).upstream?.connected ? true : undefined), 30_000)

    const [a1, b1] = await Promise.all([siteOn(lan, 1, file('a1')), siteOn(lan, 2, file('b1'))])
    // Store A works offline: a receipt, and an order to store B.
    expect((await lan.api(1, a1.url, 'POST', '/api/movements', { id: 'a-rcv', kind: 'receipt', sku: 'AMOX-500', quantity: 40, user: 'amina' })).status).toBe(201)
    await submitOrder(lan, 1, a1, 'po-route', 'store-a', 'store-b', 10)

    // The van drives to store A: A's device finds it, and the van takes A's documents.
    lan.attach(3, A)
    await holdsAllOf(carrier, 'store-a', 'site/store-a/a1', 4)
    expect((await lan.api(1, a1.url, 'GET', '/api/sync')).body.lan.peers).toContainEqual(expect.objectContaining({ peerId: 'carrier/hub/van-3', state: 'linked' }))

    // Then to store B: B gets A's order (and nothing else of A's), approves it and receives stock.
    lan.attach(3, B)
    await until('B to see the order', async () => ((await lan.api(2, b1.url, 'GET', '/api/orders/po-route')).body.status === 'submitted' ? true : undefined), 60_000)
    expect((await lan.api(2, b1.url, 'POST', '/api/orders/po-route/approve', { user: 'otieno' })).status).toBe(200)
    expect((await lan.api(2, b1.url, 'POST', '/api/movements', { id: 'b-rcv', kind: 'receipt', sku: 'AMOX-500', quantity: 5, user: 'otieno' })).status).toBe(201)
    expect((await lan.api(2, b1.url, 'GET', '/api/movements')).body.movements.map((m: { id: string }) => m.id)).toEqual(['b-rcv'])
    await holdsAllOf(carrier, 'store-b', 'site/store-b/b1', 3)

    // Back at the hub: the relay comes to hold every document the van carries.
    lan.attach(3, HUB)
    const held = await until('the relay to hold everything the van carries', async () => {
      const r = await route()
      return r.upstream?.connected && r.documents.length > 0 && r.documents.every((d) => d.upstream) ? r : undefined
    }, 60_000)
    expect(held.documents.filter((d) => d.owner === 'store-a').length).toBeGreaterThanOrEqual(4)
    expect(held.documents.filter((d) => d.owner === 'store-b').length).toBeGreaterThanOrEqual(3)
    // The driver's question, at the carrier's GET /api/sync: B's receipts (B's documents) are on the hub's disk.
    const driver = await carrier.sync()
    const ofB = driver.documents.filter((d) => d.owner === 'store-b')
    expect(ofB.length).toBeGreaterThanOrEqual(3)
    expect(ofB.every((d) => d.upstream)).toBe(true)
    expect(driver.held).toBe(driver.total)
    // A new device of store A at the hub gets A's stock and B's approval from the relay.
    const a9 = await siteOn(lan, 4, file('a9'))
    await until('a9 to get store A from the relay', async () => ((await lan.api(4, a9.url, 'GET', '/api/stock/AMOX-500')).body.onHand === 40 ? true : undefined), 60_000)
    await until('a9 to see B\'s approval', async () => ((await lan.api(4, a9.url, 'GET', '/api/orders/po-route')).body.status === 'approved' ? true : undefined), 60_000)

    // And back to store A: A learns of B's approval, though A and B never met.
    lan.attach(3, A)
    await until('A to see B\'s approval', async () => ((await lan.api(1, a1.url, 'GET', '/api/orders/po-route')).body.status === 'approved' ? true : undefined), 60_000)
    expect((await lan.api(1, a1.url, 'GET', '/api/stock/AMOX-500')).body.onHand).toBe(40)
  }, 300_000)

  it('meets another carrier at a depot with no relay: an order from A reaches C and its approval comes back, a revoked carrier gets nothing', async () => {
    // Hosts: 0 the hub relay, 1 store A's device, 2 store C's device, 3 van X (A, B), 4 van Y (B, C), 5 van Z (revoked).
    const DEPOT = 3
    const C = 2
    const lan = makeLan(6, [HUB, A, C, HUB, HUB, DEPOT])
    const { hub, enrol, file, relay } = await pilotHub(lan)
    await enrol('a1', 'store-a')
    await enrol('b1', 'store-b')
    await enrol('c1', 'store-c')
    await enrol('van-x', 'hub', ['--role', 'carrier', '--serves', 'store-a,store-b'])
    await enrol('van-y', 'hub', ['--role', 'carrier', '--serves', 'store-b,store-c'])
    await enrol('van-z', 'hub', ['--role', 'carrier', '--serves', 'store-a,store-c'])
    await ok(['revoke', '--data', hub, '--device', 'van-z'])

    await relay()
    const [x, y, z] = await Promise.all([carrierOn(lan, 3, file('van-x')), carrierOn(lan, 4, file('van-y')), carrierOn(lan, 5, file('van-z'))])
    // X and Y start at the hub: the relay tells them the roots of their route's sites and the revocation list.
    for (const v of [x, y]) await until('a van to reach the relay', async () => ((await v.sync()).upstream?.connected ? true : undefined), 30_000)

    const [a1, c1] = await Promise.all([siteOn(lan, 1, file('a1')), siteOn(lan, 2, file('c1'))])
    expect((await lan.api(1, a1.url, 'POST', '/api/movements', { id: 'a-rcv', kind: 'receipt', sku: 'AMOX-500', quantity: 40, user: 'amina' })).status).toBe(201)
    await submitOrder(lan, 1, a1, 'po-ac', 'store-a', 'store-c', 6)

    // X visits A and takes A's documents, the order among them.
    lan.attach(3, A)
    const ofA = await holdsAllOf(x, 'store-a', 'site/store-a/a1', 4)

    // X and Y meet at the depot, where the revoked van Z waits.
    lan.attach(3, DEPOT)
    lan.attach(4, DEPOT)
    const linked = await until('X and Y to link', async () => {
      const carriers = (await x.sync()).carriers
      return carriers.some((c) => c.peerId === 'carrier/hub/van-y' && c.state === 'linked') ? carriers : undefined
    }, 60_000)
    // Y takes A's order (C is on its route), and nothing else of A's: not A's ledger, index or journals.
    const yOfA = await until('van Y to hold the order from A', async () => {
      const docs = (await y.sync()).documents.filter((d) => d.owner === 'store-a')
      return docs.length >= 1 && docs.every((d) => d.peers.some((p) => p.peer === 'carrier/hub/van-x' && p.latest)) ? docs : undefined
    }, 60_000)
    expect(yOfA).toHaveLength(1)
    const order = yOfA[0]!.documentId
    // Of everything X holds of A (ledger, index, journals, directory, the order), Y holds the order alone.
    const idsOfA = ofA.map((d) => d.documentId)
    expect(idsOfA).toContain(order)
    expect((await y.sync()).documents.map((d) => d.documentId).filter((id) => idsOfA.includes(id))).toEqual([order])
    expect(linked.find((c) => c.peerId === 'carrier/hub/van-y')).toMatchObject({ direction: 'out' })
    // Z was revoked after it was enrolled: X and Y refuse it (their lists, from the hub, name it).
    for (const [v, name] of [[x, 'X'], [y, 'Y']] as const) {
      const refusedZ = await until(`${name} to refuse van Z`, async () => (await v.sync()).carriers.find((c) => c.peerId === 'carrier/hub/van-z' && c.state === 'refused'), 60_000)
      expect(refusedZ.reason).toMatch(/revoked/)
    }

    // Y drives on to C: C sees the order and approves it, and orders from A in turn.
    lan.attach(4, C)
    await until('C to see the order', async () => ((await lan.api(2, c1.url, 'GET', '/api/orders/po-ac')).body.status === 'submitted' ? true : undefined), 60_000)
    const allOfC = async () => (await y.sync()).documents.filter((d) => d.owner === 'store-c' && d.peers.some((p) => p.peer === 'site/store-c/c1' && p.latest))
    const before = (await holdsAllOf(y, 'store-c', 'site/store-c/c1', 3)).length
    await submitOrder(lan, 2, c1, 'po-ca', 'store-c', 'store-a', 2)
    const approved = new Date().toISOString()
    expect((await lan.api(2, c1.url, 'POST', '/api/orders/po-ac/approve', { user: 'chiku' })).status).toBe(200)
    await until('Y to hold the approval and C\'s order', async () => {
      const docs = (await y.sync()).documents
      const ac = docs.find((d) => d.documentId === order)
      return ac?.peers.some((p) => p.peer === 'site/store-c/c1' && p.latest && p.lastSyncAt! > approved) && (await allOfC()).length === before + 1 ? true : undefined
    }, 60_000)

    // Y back at the depot, X there: X takes the approval and brings it to A, with no relay anywhere on the way.
    const back = new Date().toISOString()
    lan.attach(4, DEPOT)
    await until('X to hold the approval', async () => {
      const held = (await x.sync()).documents.find((d) => d.documentId === order)
      return held?.peers.some((p) => p.peer === 'carrier/hub/van-y' && p.latest && p.lastSyncAt! > back) ? true : undefined
    }, 90_000)
    // X (the one that dials) takes C's order to A from Y, and nothing else of C's.
    const xOfC = await until("X to hold C's order", async () => {
      const docs = (await x.sync()).documents.filter((d) => d.owner === 'store-c')
      return docs.length >= 1 && docs.every((d) => d.peers.some((p) => p.peer === 'carrier/hub/van-y' && p.latest)) ? docs : undefined
    }, 60_000)
    expect(xOfC).toHaveLength(1)
    lan.attach(3, A)
    await until("A to see C's approval", async () => ((await lan.api(1, a1.url, 'GET', '/api/orders/po-ac')).body.status === 'approved' ? true : undefined), 60_000)
    await until("A to list C's order", async () => ((await lan.api(1, a1.url, 'GET', '/api/orders/po-ca')).body.status === 'submitted' ? true : undefined), 60_000)
    // Y never held A's stock, X never held C's; Z holds nothing either carried.
    const [xIds, yIds] = await Promise.all([x.sync(), y.sync()]).then((both) => both.map((r) => r.documents.map((d) => d.documentId)))
    expect(yIds!.filter((id) => idsOfA.includes(id))).toEqual([order])
    expect((await z.sync()).documents.map((d) => d.documentId).filter((id) => xIds!.includes(id) || yIds!.includes(id))).toEqual([])
  }, 300_000)
})
