/**
 * Relays in a chain, in one process over real sockets: a hub relay and a district relay chained
 * under it (serving stores A and B), devices as automerge-repo Repos with the authenticated adapter.
 * What the district does not know it asks its upstream; the upstream's record of an owner holds
 * over the district's; a device of a site the district does not serve is refused at the upgrade.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import * as A from '@automerge/automerge'
import { Repo, type AutomergeUrl, type DocHandle, type PeerId } from '@automerge/automerge-repo'
import { afterEach, describe, expect, it } from 'vitest'
import { AuthenticatedWebSocketClientAdapter } from '../../src/network/AuthenticatedWebSocketClientAdapter.ts'
import { DurableFsStorageAdapter } from '../../src/node/storage/DurableFsStorageAdapter.ts'
import { SiteAccess } from '../../src/relay/access.ts'
import { startRelay, type Relay } from '../../src/relay/server.ts'
import { quietLogger, testDeployment, until, upgradeAs, type TestDeployment, type TestDevice } from './helpers.ts'

let cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.reverse()) await c()
  cleanups = []
})

const folder = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'stockmesh-chain-'))
  // (after a moment: automerge-repo may still save a peer's sync state just after shutdown)
  cleanups.push(async () => {
    await new Promise((resolve) => setTimeout(resolve, 300))
    rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

async function hubRelay(dep: TestDeployment, dir = folder()): Promise<Relay> {
  const relay = await startRelay({ storage: new DurableFsStorageAdapter(dir), deployment: dep.deployment, isRevoked: () => false, port: 0, logger: quietLogger(), idleMs: 0 })
  cleanups.push(() => relay.close())
  return relay
}

async function districtRelay(dep: TestDeployment, hub: Relay, serves: string[]): Promise<Relay> {
  const credential = dep.device('district', 'dist-1', { role: 'relay', serves })
  const relay = await startRelay({
    storage: new DurableFsStorageAdapter(folder()),
    deployment: dep.deployment,
    isRevoked: () => false,
    port: 0,
    logger: quietLogger(),
    idleMs: 0,
    access: new SiteAccess({}),
    serves,
    peerId: credential.peerId,
    upstream: { url: hub.url, credential: credential.credential, privateKey: credential.keys.privateKey },
  })
  cleanups.push(() => relay.close())
  await until(() => hub.adapter.isConnected(credential.peerId), 10_000, 'the district connected to the hub')
  return relay
}

function device(relay: Relay, who: TestDevice) {
  const adapter = new AuthenticatedWebSocketClientAdapter({ url: relay.url, credential: who.credential, privateKey: who.keys.privateKey, minRetryMs: 50 })
  const repo = new Repo({ network: [adapter], peerId: who.peerId as PeerId, sharePolicy: async () => true })
  cleanups.push(async () => {
    adapter.disconnect()
    await repo.shutdown().catch(() => undefined)
  })
  return { adapter, repo }
}

/** As a site node finds a document: a first `find` may say unavailable; the handle turns ready when a peer sends it. */
async function arrives<T>(repo: Repo, url: AutomergeUrl, timeoutMs = 15_000): Promise<DocHandle<T>> {
  const { handle } = repo.findWithProgress<T>(url)
  await Promise.race([handle.whenReady(['ready']), new Promise((_, reject) => setTimeout(() => reject(new Error(`${url} did not arrive`)), timeoutMs))])
  return handle
}

describe('relays in a chain', () => {
  it('a device at the district gets an order it is party to that only the hub holds (on disk, not in memory)', async () => {
    const dep = testDeployment()
    const hubDir = folder()
    let hub = await hubRelay(dep, hubDir)
    const b1 = device(hub, dep.device('B', 'b1'))
    const order = b1.repo.create<Record<string, string>>({ kind: 'order', id: 'po-1', from: 'B', to: 'A' })
    await until(() => hub.access.partiesOf(order.documentId).includes('A'), 10_000, 'the hub to record A as a party')
    b1.adapter.disconnect()
    await hub.close()
    hub = await hubRelay(dep, hubDir)
    expect(hub.repo.handles[order.documentId]).toBeUndefined()

    const district = await districtRelay(dep, hub, ['A', 'B'])
    expect(district.access.siteOf(order.documentId)).toBeUndefined()
    const a1 = device(district, dep.device('A', 'a1'))
    const got = await arrives<Record<string, string>>(a1.repo, order.url)
    expect(got.doc()).toMatchObject({ kind: 'order', from: 'B', to: 'A' })
    expect(district.access.siteOf(order.documentId)).toBe('B')
    expect(district.access.partiesOf(order.documentId)).toEqual(['A'])
  })

  it('the owner the hub recorded holds over a claim a device made first at the district', async () => {
    const dep = testDeployment()
    const hub = await hubRelay(dep)
    const b1 = device(hub, dep.device('B', 'b1'))
    const order = b1.repo.create<Record<string, string>>({ kind: 'order', id: 'po-1', from: 'B', to: 'A' })
    await until(() => hub.access.partiesOf(order.documentId).includes('A'), 10_000, 'the hub to record the order')

    // A learnt the id (it is a party) and brings a forged document under it to a district that never heard of it.
    const district = await districtRelay(dep, hub, ['A', 'B'])
    const a2 = device(district, dep.device('A', 'a2'))
    a2.repo.import(A.save(A.from({ kind: 'order', id: 'po-1', from: 'A', to: 'C' })), { docId: order.documentId } as never)
    await until(() => district.access.siteOf(order.documentId) === 'B', 15_000, 'the district to take the hub’s owner')
    expect(hub.access.siteOf(order.documentId)).toBe('B')
    // The owner's device at the district reaches its order; C (named by the forgery) gets nothing.
    const b2 = device(district, dep.device('B', 'b2'))
    const mine = await arrives<Record<string, string>>(b2.repo, order.url)
    expect(mine.doc().from).toBeDefined()
    expect(district.access.mayAccess('site/B/b3', order.documentId)).toBe(true)
    expect(district.access.mayAccess('site/C/c1', order.documentId)).toBe(false)
  })

  it('refuses a device of a site it does not serve (403 not-served), and a relay serving more than it does', async () => {
    const dep = testDeployment()
    const hub = await hubRelay(dep)
    const district = await districtRelay(dep, hub, ['A'])
    const refusedDevice = await upgradeAs(district.url, dep.device('C', 'c1'))
    expect(refusedDevice.status).toBe(403)
    expect(refusedDevice.body).toMatchObject({ error: 'not-served' })
    expect(refusedDevice.body?.reason).toMatch(/carries the documents of A, not of C/)
    const refusedRelay = await upgradeAs(district.url, dep.device('gateway', 'g1', { role: 'relay', serves: ['A', 'B'] }))
    expect(refusedRelay.status).toBe(403)
    const accepted = await upgradeAs(district.url, dep.device('A', 'a1'))
    expect(accepted.socket).toBeDefined()
    accepted.socket?.terminate()
  })

  it('does not cut a relay below off for the denials it forwards', async () => {
    const dep = testDeployment()
    const hub = await startRelay({ storage: new DurableFsStorageAdapter(folder()), deployment: dep.deployment, isRevoked: () => false, port: 0, logger: quietLogger(), idleMs: 0, maxDenialsPerMinute: 5 })
    cleanups.push(() => hub.close())
    // B's documents at the hub, shared with nobody.
    const b1 = device(hub, dep.device('B', 'b1'))
    const theirs = Array.from({ length: 20 }, (_, i) => b1.repo.create({ n: i }))
    await until(() => theirs.every((h) => hub.access.siteOf(h.documentId) === 'B'), 10_000, 'the hub to record B’s documents')
    // A device at a district serving A brings forged documents under those ids: the district carries
    // them up, the hub refuses every one (more than its limit a minute), and keeps the district.
    const district = await districtRelay(dep, hub, ['A'])
    const a1 = device(district, dep.device('A', 'a1'))
    for (const h of theirs) a1.repo.import(A.save(A.from({ forged: true })), { docId: h.documentId } as never)
    await until(async () => /stockmesh_relay_access_denials_total ([6-9]|\d\d)/.test(await hub.metrics.getSingleMetricAsString('stockmesh_relay_access_denials_total')), 15_000, 'the hub to deny more than 5')
    expect(await hub.metrics.getSingleMetricAsString('stockmesh_relay_connections_closed_total')).not.toMatch(/too-many-denials/)
    expect(hub.adapter.isConnected('relay/district/dist-1')).toBe(true)
    // and B's documents stay B's: the district took the hub's word
    await until(() => theirs.every((h) => district.access.siteOf(h.documentId) !== 'A'), 15_000, 'the district to drop A’s claims')
    expect(b1.repo.handles[theirs[0]!.documentId]!.doc()).toEqual({ n: 0 })
  })
})
