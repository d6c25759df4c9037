/**
 * The LAN mesh over real multicast: each node a real `stockmesh site` process in a network
 * namespace of its own, on a bridged LAN that the test makes (test/helpers/netns.ts), with no relay
 * running. They find each other by DNS-SD, link proven both ways, and converge; a node of another
 * deployment and a revoked device on the same LAN get nothing.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { hubDeployment, ok, running } from '../helpers/deployment.ts'
import { makeLan, type Lan } from '../helpers/netns.ts'
import type { SiteProcess } from '../helpers/siteProcess.ts'
import { tempDir } from '../helpers/tempDir.ts'
import { until } from '../helpers/until.ts'

interface LanPeerView {
  peerId: string
  state: string
  reason?: string
  schemas?: { state: string; detail?: string }
}

async function siteOn(lan: Lan, i: number, enrolment: string): Promise<SiteProcess> {
  const p = await lan.site(i, tempDir('site-'), enrolment)
  running.push(() => p.kill('SIGTERM'))
  return p
}

const lanPeers = async (lan: Lan, i: number, site: SiteProcess): Promise<LanPeerView[]> => ((await lan.api(i, site.url, 'GET', '/api/sync')).body.lan?.peers ?? []) as LanPeerView[]
const linked = async (lan: Lan, i: number, site: SiteProcess): Promise<string[]> => (await lanPeers(lan, i, site)).filter((p) => p.state === 'linked').map((p) => p.peerId).sort()
const stock = async (lan: Lan, i: number, site: SiteProcess): Promise<number> => (await lan.api(i, site.url, 'GET', '/api/stock/AMOX-500')).body.onHand as number

describe('the LAN mesh over multicast, in namespaces', () => {
  it('three nodes with no relay find each other, link, and converge: two devices of a store on its stock, the other store on an order between them', async () => {
    const { enrol, file } = await hubDeployment()
    await enrol('a1', 'store-a')
    await enrol('a2', 'store-a')
    await enrol('b1', 'store-b')
    const lan = makeLan(3)
    const [a1, a2, b1] = await Promise.all([siteOn(lan, 0, file('a1')), siteOn(lan, 1, file('a2')), siteOn(lan, 2, file('b1'))])
    const ids = { a1: 'site/store-a/a1', a2: 'site/store-a/a2', b1: 'site/store-b/b1' }
    const started = Date.now()
    await until('every pair linked', async () => {
      const [l0, l1, l2] = await Promise.all([linked(lan, 0, a1), linked(lan, 1, a2), linked(lan, 2, b1)])
      return l0.join() === [ids.a2, ids.b1].join() && l1.join() === [ids.a1, ids.b1].join() && l2.join() === [ids.a1, ids.a2].join() ? true : undefined
    }, 30_000)
    console.log(`[lan] three nodes found each other and linked in ${Date.now() - started} ms`)

    // Two storekeepers of store A, each on a device: both see both movements.
    expect((await lan.api(0, a1.url, 'POST', '/api/movements', { id: 'lan-r1', kind: 'receipt', sku: 'AMOX-500', quantity: 40, user: 'amina' })).status).toBe(201)
    expect((await lan.api(1, a2.url, 'POST', '/api/movements', { id: 'lan-i1', kind: 'issue', sku: 'AMOX-500', quantity: 15, user: 'bako' })).status).toBe(201)
    await until('both devices of store A at 25', async () => ((await stock(lan, 0, a1)) === 25 && (await stock(lan, 1, a2)) === 25 ? true : undefined), 20_000)

    // Store A orders from store B: B's device lists it with no relay, approves it, and A's devices see that.
    expect((await lan.api(0, a1.url, 'POST', '/api/orders', { id: 'po-lan', from: 'store-a', to: 'store-b', lines: [{ sku: 'AMOX-500', requested: 20 }], user: 'amina' })).status).toBe(201)
    expect((await lan.api(0, a1.url, 'POST', '/api/orders/po-lan/submit', { user: 'amina' })).status).toBe(200)
    await until('B to see the order submitted', async () => ((await lan.api(2, b1.url, 'GET', '/api/orders/po-lan')).body.status === 'submitted' ? true : undefined), 20_000)
    expect((await lan.api(2, b1.url, 'POST', '/api/orders/po-lan/approve', { user: 'otieno' })).status).toBe(200)
    for (const [i, site] of [[0, a1], [1, a2]] as const) {
      await until(`store A device ${i} to see the approval`, async () => ((await lan.api(i, site.url, 'GET', '/api/orders/po-lan')).body.status === 'approved' ? true : undefined), 20_000)
    }
    // B holds nothing of A's stock.
    expect((await lan.api(2, b1.url, 'GET', '/api/movements')).body.movements).toEqual([])
  }, 120_000)

  it('a node of another deployment and revoked devices on the same LAN get nothing, either way, and are told why', async () => {
    const { hub, enrol, file } = await hubDeployment()
    // Peer ids sort site/store-a/a0 < a1 < a2 < az: a0 dials the others, az is dialled by them.
    await enrol('a0', 'store-a')
    await enrol('az', 'store-a')
    await ok(['revoke', '--data', hub, '--device', 'a0'])
    await ok(['revoke', '--data', hub, '--device', 'az'])
    await enrol('a1', 'store-a') // both hold the list naming a0 and az
    await enrol('a2', 'store-a')
    const other = await hubDeployment()
    await other.enrol('ab', 'store-a')
    const lan = makeLan(5)
    const [a1, a2, a0, az, stranger] = await Promise.all([siteOn(lan, 0, file('a1')), siteOn(lan, 1, file('a2')), siteOn(lan, 2, file('a0')), siteOn(lan, 3, file('az')), siteOn(lan, 4, other.file('ab'))])
    expect((await lan.api(0, a1.url, 'POST', '/api/movements', { id: 'secret', kind: 'receipt', sku: 'AMOX-500', quantity: 7, user: 'amina' })).status).toBe(201)
    await until('a2 to get the receipt', async () => ((await stock(lan, 1, a2)) === 7 ? true : undefined), 30_000)
    // a0 dialled a1 and a2: each refused it, saying why.
    const refusedBy = await until('a0 refused by a1 and a2', async () => {
      const seen = await lanPeers(lan, 2, a0)
      return ['site/store-a/a1', 'site/store-a/a2'].every((id) => seen.find((p) => p.peerId === id)?.state === 'refused') ? seen : undefined
    }, 30_000)
    for (const p of refusedBy.filter((p) => p.peerId !== 'site/store-a/az')) expect(p.reason).toMatch(/revoked/)
    // a1 and a2 dialled az: each refused it once it answered with its credential.
    for (const [i, site] of [[0, a1], [1, a2]] as const) {
      await until(`device ${i} to refuse az`, async () => ((await lanPeers(lan, i, site)).find((p) => p.peerId === 'site/store-a/az')?.state === 'refused' ? true : undefined), 30_000)
      expect((await lanPeers(lan, i, site)).find((p) => p.peerId === 'site/store-a/az')?.reason).toMatch(/revoked/)
      // The other deployment's node is not even dialled.
      expect((await lanPeers(lan, i, site)).some((p) => p.peerId.endsWith('/ab'))).toBe(false)
    }
    expect(await linked(lan, 4, stranger)).toEqual([])
    // None of the three holds a thing of store A.
    for (const [i, site] of [[2, a0], [3, az], [4, stranger]] as const) {
      expect(await stock(lan, i, site)).toBe(0)
      expect((await lan.api(i, site.url, 'GET', '/api/movements')).body.movements).toEqual([])
    }
  }, 120_000)

  it('says so, in GET /api/sync and its log, when a node of the deployment speaks another LAN protocol or writes newer document schemas; a wrong protocol at the door is refused', async () => {
    const { enrol, file } = await hubDeployment()
    await enrol('a1', 'store-a')
    const deployment = (JSON.parse(readFileSync(file('a1'), 'utf8')) as { deployment: { id: string } }).deployment.id
    const lan = makeLan(2)
    const a1 = await siteOn(lan, 0, file('a1'))
    // A newer node of the same deployment (protocol 3) advertises itself on host 1.
    const script = `import { Bonjour } from ${JSON.stringify(path.resolve('node_modules/bonjour-service/dist/index.js'))}; const b = new Bonjour({ interface: '${lan.address(1)}', bind: '0.0.0.0' }); b.publish({ name: 'stockmesh future a9', type: 'stockmesh', port: 4999, host: 'a9.local', txt: { dep: '${deployment}', site: 'store-a', dev: 'a9', role: 'device', pv: '3' }, disableIPv6: true }); setTimeout(() => process.exit(0), 20000)`
    // Beside it: a service with ids that are not ids, and a node of this protocol writing journals of a newer schema (9).
    const more = "b.publish({ name: 'not a node', type: 'stockmesh', port: 4998, host: 'bad.local', txt: { dep: '" + deployment + "', site: 'x y', dev: '../..', role: 'device', pv: '2' }, disableIPv6: true }); b.publish({ name: 'stockmesh newer b7', type: 'stockmesh', port: 4997, host: 'b7.local', txt: { dep: '" + deployment + "', site: 'store-b', dev: 'b7', role: 'device', pv: '2', sv: 'c1.i1.d1.l3.j9.o2.m2' }, disableIPv6: true }); setTimeout"
    const future = spawn('ip', ['netns', 'exec', lan.hosts[1]!, process.execPath, '--input-type=module', '-e', script.replace('setTimeout', more)], { stdio: 'ignore' })
    onTestFinished(() => void future.kill())
    const seen = await until('a1 to see the newer node', async () => (await lanPeers(lan, 0, a1)).find((p) => p.peerId === 'site/store-a/a9'), 20_000)
    expect(seen).toMatchObject({ state: 'incompatible' })
    expect(seen.reason).toMatch(/LAN protocol 3, this node 2/)
    expect(a1.output()).toMatch(/another protocol version/)
    // A service with ids that are not ids (advertised beside it) is ignored; the node lives on.
    expect((await lan.api(0, a1.url, 'GET', '/api/health')).status).toBe(200)
    // The node with newer journals is reported, with what differs (it would be linked: documents of a newer schema are read-only here).
    const newer = await until('a1 to see the node with newer schemas', async () => (await lanPeers(lan, 0, a1)).find((p) => p.peerId === 'site/store-b/b7'), 20_000)
    expect(newer.schemas).toMatchObject({ state: 'newer' })
    expect(newer.schemas?.detail).toMatch(/journal 9 \(this node: 4\)/)
    expect(a1.output()).toMatch(/other document schemas/)
    expect((await lanPeers(lan, 0, a1)).map((p) => p.peerId)).toEqual(['site/store-a/a9', 'site/store-b/b7'])
    // A dialler speaking protocol 3 is refused at a1's door with the reason, before anything else.
    const port = (await lan.api(0, a1.url, 'GET', '/api/sync')).body.lan.port as number
    const door = await lan.api(0, `http://${lan.address(0)}:${port}`, 'GET', '/sync?proto=3&nonce=x', undefined, { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' })
    expect(door.status).toBe(426)
    expect(door.body).toMatchObject({ error: 'incompatible-protocol' })
  }, 60_000)
})
