/**
 * The relay over real sockets: authentication refusals with their status and reason, the peer id
 * bound to the device, per-site access, hostile frames, metrics.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Repo, type AutomergeUrl, type PeerId, type StorageAdapterInterface } from '@automerge/automerge-repo'
import { cbor } from '@automerge/automerge-repo'
import { AuthenticatedWebSocketClientAdapter } from '../../src/network/AuthenticatedWebSocketClientAdapter.ts'
import { generateKeyPair, proveKey } from '../../src/network/credential.ts'
import { relayHttpUrl } from '../../src/network/authProtocol.ts'
import type { Relay } from '../../src/relay/server.ts'
import { challenge, testDeployment, testRelay, until, upgrade, upgradeAs, type TestDeployment, type TestDevice } from './helpers.ts'

let cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.reverse()) await c()
  cleanups = []
})

async function relayFor(dep: TestDeployment, options = {}): Promise<Relay> {
  const { relay, cleanup } = await testRelay(dep, options)
  cleanups.push(cleanup)
  return relay
}

function siteRepo(relay: Relay, device: TestDevice, options: { minRetryMs?: number; refusedRetryMs?: number } = {}) {
  const adapter = new AuthenticatedWebSocketClientAdapter({ url: relay.url, credential: device.credential, privateKey: device.keys.privateKey, minRetryMs: 50, ...options })
  const repo = new Repo({ network: [adapter], peerId: device.peerId as PeerId, sharePolicy: async () => true })
  cleanups.push(async () => {
    adapter.disconnect()
    await repo.shutdown().catch(() => undefined)
  })
  return { adapter, repo }
}

const connected = (relay: Relay, peerId: string) => until(() => relay.adapter.isConnected(peerId), 10_000, `${peerId} connected`)

describe('relay authentication', () => {
  it('accepts an enrolled device that proves its key', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep)
    const result = await upgradeAs(relay.url, dep.device('A', 'a1'))
    expect(result.status).toBe(101)
    result.socket?.close()
  })

  it('refuses each bad upgrade before the websocket, with its status and a reason', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep)
    const good = dep.device('A', 'a1')
    const other = dep.device('A', 'a2')
    const expired = dep.device('A', 'old', { issuedAt: Date.now() - 100 * 86_400_000, expiresAt: Date.now() - 1000 })
    const forged = dep.device('A', 'a3', { signWith: generateKeyPair().privateKey })
    dep.revoked.add('gone')
    const revoked = dep.device('A', 'gone')

    const cases: Array<[string, Promise<Awaited<ReturnType<typeof upgradeAs>>>, number, string, RegExp?]> = [
      ['expired', upgradeAs(relay.url, expired), 401, 'expired', /enrol the device again/],
      ['revoked', upgradeAs(relay.url, revoked), 403, 'revoked', /revoked/],
      ['forged', upgradeAs(relay.url, forged), 401, 'bad-signature', /not signed by this deployment/],
      ['missing credential', upgradeAs(relay.url, good, { credential: '' }), 401, 'missing-credential'],
      ['garbage credential', upgradeAs(relay.url, good, { credential: 'x.y' }), 401, 'bad-signature'],
      ['proof by another key', upgradeAs(relay.url, good, { key: other.keys.privateKey }), 401, 'bad-proof'],
      ['no proof', upgradeAs(relay.url, good, { proof: '' }), 401, 'bad-proof'],
      ['challenge never issued', upgradeAs(relay.url, good, { challenge: 'made-up' }), 401, 'unknown-challenge'],
      ['stolen peer id', upgradeAs(relay.url, good, { peer: other.peerId }), 401, 'wrong-peer-id'],
      ['role not in the credential', upgradeAs(relay.url, good, { peer: `relay/A/a1` }), 401, 'wrong-peer-id'],
    ]
    for (const [name, promise, status, error, reason] of cases) {
      const result = await promise
      expect(result.status, name).toBe(status)
            expect(result.body!.error, name).toBe(error)
      expect(result.body!.reason.length, name).toBeGreaterThan(10)
      if (reason) expect(result.body!.reason, name).toMatch(reason)
    }
  })

  it('refuses a proof replayed for a used challenge, and a proof made for another challenge', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep)
    const device = dep.device('A', 'a1')
    const nonce = await challenge(relay.url)
    const params = { peer: device.peerId, credential: device.credential, challenge: nonce, proof: proveKey(nonce, device.peerId, device.keys.privateKey) }
    const first = await upgrade(relay.url, params)
    expect(first.status).toBe(101)
    first.socket?.close()
    const replay = await upgrade(relay.url, params)
    expect(replay.status).toBe(401)
    expect(replay.body!.error).toBe('unknown-challenge')
    const fresh = await challenge(relay.url)
    const otherChallenge = await upgrade(relay.url, { ...params, challenge: fresh })
    expect(otherChallenge.status).toBe(401)
    expect(otherChallenge.body!.error).toBe('bad-proof')
  })

  it('refuses an expired challenge', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep, { challengeTtlMs: 50 })
    const device = dep.device('A', 'a1')
    const nonce = await challenge(relay.url)
    await new Promise((r) => setTimeout(r, 80))
    const result = await upgradeAs(relay.url, device, { challenge: nonce })
    expect(result.status).toBe(401)
    if (result.status !== 101) expect(result.body!.error).toBe('unknown-challenge')
  })

  it('bounds outstanding challenges (503 when full)', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep, { maxChallenges: 3 })
    const statuses = []
    for (let i = 0; i < 5; i++) statuses.push((await fetch(relayHttpUrl(relay.url, '/auth/challenge'))).status)
    expect(statuses).toEqual([200, 200, 200, 503, 503])
  })

  it('refuses a second connection with a connected peer id, and does not push the first off', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep)
    const device = dep.device('A', 'a1')
    const first = await upgradeAs(relay.url, device)
    expect(first.status).toBe(101)
    first.socket!.send(cbor.encode({ type: 'join', senderId: device.peerId, peerMetadata: {}, supportedProtocolVersions: ['1'] }))
    await connected(relay, device.peerId)
    const second = await upgradeAs(relay.url, device)
    expect(second.status).toBe(409)
    expect(second.body!.error).toBe('peer-already-connected')
    expect(relay.adapter.isConnected(device.peerId)).toBe(true)
    first.socket!.close()
  })

  it('closes a socket whose join claims another peer id', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep)
    const x = dep.device('A', 'x')
    const y = dep.device('A', 'y')
    const result = await upgradeAs(relay.url, x)
    if (!result.socket) throw new Error('not accepted')
    const closed = new Promise<number>((resolve) => result.socket!.on('close', (code) => resolve(code)))
    const reason = new Promise<string>((resolve) => result.socket!.on('close', (_code, text) => resolve(text.toString())))
    result.socket!.send(cbor.encode({ type: 'join', senderId: y.peerId, peerMetadata: {}, supportedProtocolVersions: ['1'] }))
    expect(await closed).toBe(1008)
    expect(await reason).toMatch(/^wrong-peer-id: /)
    expect(relay.adapter.isConnected(y.peerId)).toBe(false)
  })

  it('the client adapter records a refusal, logs it and retries slowly', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep)
    dep.revoked.add('gone')
    const { adapter } = siteRepo(relay, dep.device('A', 'gone'), { refusedRetryMs: 60_000 })
    await until(() => adapter.lastRefusal !== undefined, 10_000, 'a refusal')
    expect(adapter.lastRefusal).toMatchObject({ status: 403, error: 'revoked' })
    const before = await relay.metrics.getSingleMetricAsString('stockmesh_relay_auth_failures_total')
    await new Promise((r) => setTimeout(r, 300))
    expect(await relay.metrics.getSingleMetricAsString('stockmesh_relay_auth_failures_total')).toBe(before) // no hammering

    const expired = siteRepo(relay, dep.device('A', 'old', { issuedAt: Date.now() - 10_000, expiresAt: Date.now() - 1 }))
    await until(() => expired.adapter.lastRefusal !== undefined, 10_000, 'a refusal')
    expect(expired.adapter.lastRefusal).toMatchObject({ status: 401, error: 'expired' })
    expect(expired.adapter.lastRefusal?.reason).toMatch(/enrol the device again/)
  })
})

describe('client adapter reconnection', () => {
  it('keeps trying while the relay is down and reconnects when it is back on the same port', async () => {
    const dep = testDeployment()
    const { relay, dir } = await testRelay(dep)
    const port = relay.port
    const device = dep.device('A', 'a1')
    const { adapter, repo } = siteRepo(relay, device, { minRetryMs: 50 })
    await connected(relay, device.peerId)
    const handle = repo.create({ n: 1 })
    await until(() => relay.access.siteOf(handle.documentId) === 'A')
    const lost = new Promise((resolve) => adapter.once('peer-disconnected', resolve))
    await relay.close()
    await lost
    await new Promise((r) => setTimeout(r, 300)) // a few refused attempts
    expect(adapter.lastError).toBeDefined()
    expect(adapter.lastRefusal).toBeUndefined()
    const { DurableFsStorageAdapter } = await import('../../src/node/storage/DurableFsStorageAdapter.ts')
    const { startRelay } = await import('../../src/relay/server.ts')
    const { quietLogger } = await import('./helpers.ts')
    const again = await startRelay({ storage: new DurableFsStorageAdapter(dir), deployment: dep.deployment, isRevoked: () => false, port, logger: quietLogger() })
    cleanups.push(() => again.close())
    await connected(again, device.peerId)
    await until(() => adapter.remotePeerId !== undefined, 10_000, 'the peer at the client')
    expect(adapter.lastError).toBeUndefined()
  })
})

describe('relay revalidation', () => {
  it('disconnects a connected device once it is revoked; the device reads why', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep)
    const device = dep.device('A', 'soon-gone')
    const { adapter } = siteRepo(relay, device, { refusedRetryMs: 60_000 })
    await connected(relay, device.peerId)
    expect(relay.revalidate()).toEqual([])
    dep.revoked.add('soon-gone')
    expect(relay.revalidate()).toEqual([device.peerId])
    await until(() => adapter.lastRefusal !== undefined, 10_000, 'the refusal')
    expect(adapter.lastRefusal).toMatchObject({ status: 403, error: 'revoked' })
    expect(adapter.lastRefusal?.reason).toMatch(/revoked/)
  })
})

describe('relay sync and access', () => {
  it('syncs a document between two devices of site A; B gets it as unavailable', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep)
    const a1 = dep.device('A', 'a1')
    const a2 = dep.device('A', 'a2')
    const b1 = dep.device('B', 'b1')
    const first = siteRepo(relay, a1)
    await connected(relay, a1.peerId)
    const handle = first.repo.create<{ count: number }>({ count: 1 })
    await until(() => relay.access.siteOf(handle.documentId) === 'A', 10_000, 'the relay to record A as owner')
    const second = siteRepo(relay, a2)
    await connected(relay, a2.peerId)
    const found = await second.repo.find<{ count: number }>(handle.url)
    expect(found.doc().count).toBe(1)
    found.change((d) => (d.count = 2))
    await until(() => handle.doc().count === 2, 10_000, 'the change back at a1')

    const b = siteRepo(relay, b1)
    await connected(relay, b1.peerId)
    await expect(b.repo.find(handle.url as AutomergeUrl)).rejects.toThrow(/unavailable/)
    const metrics = await relay.metrics.metrics()
    expect(metrics).toMatch(/stockmesh_relay_access_denials_total [1-9]/)
  })

  it('unloads idle documents by itself and still syncs them after (idleMs)', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep, { idleMs: 1000 })
    const a1 = dep.device('A', 'a1')
    const first = siteRepo(relay, a1)
    await connected(relay, a1.peerId)
    const handles = Array.from({ length: 20 }, (_, i) => first.repo.create<{ n: number }>({ n: i }))
    await until(() => handles.every((h) => relay.access.siteOf(h.documentId) === 'A' && relay.repo.handles[h.documentId]?.isReady()), 10_000, 'the relay to hold all 20')
    await until(() => handles.every((h) => !relay.repo.handles[h.documentId]), 20_000, 'the relay to unload them')
    expect(await relay.metrics.metrics()).toMatch(/stockmesh_relay_documents_unloaded_total (1\d|[2-9]\d)/)
    handles[3]!.change((d) => (d.n = 333))
    const a2 = siteRepo(relay, dep.device('A', 'a2'))
    await connected(relay, `site/A/a2`)
    const found = await a2.repo.find<{ n: number }>(handles[3]!.url)
    await until(() => found.doc().n === 333, 10_000, 'the change made after the unload at a2')
    expect((await a2.repo.find<{ n: number }>(handles[17]!.url)).doc().n).toBe(17)
  })

  it('shares an order with its supplier and a manifest with its carrier and stops, nobody else', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep)
    const repos = Object.fromEntries(['A', 'B', 'C', 'W'].map((site) => [site, siteRepo(relay, dep.device(site, `${site.toLowerCase()}1`))]))
    for (const site of ['A', 'B', 'C', 'W']) await connected(relay, `site/${site}/${site.toLowerCase()}1`)
    const order = repos.A!.repo.create<{ kind: string; from: string; to: string; decision?: string }>({ kind: 'order', from: 'A', to: 'B' })
    await until(() => relay.access.hasParties(order.documentId), 10_000, 'the parties of the order')
    const atB = await repos.B!.repo.find<{ decision?: string }>(order.url)
    atB.change((d) => (d.decision = 'approved'))
    await until(() => order.doc().decision === 'approved', 10_000, "B's decision at A")
    await expect(repos.C!.repo.find(order.url)).rejects.toThrow(/unavailable/)

    const manifest = repos.W!.repo.create({ kind: 'manifest', from: 'W', carrier: 'C', stops: [{ site: 'A' }] })
    await until(() => relay.access.hasParties(manifest.documentId), 10_000, 'the parties of the manifest')
    expect((await repos.C!.repo.find(manifest.url)).doc()).toMatchObject({ carrier: 'C' })
    expect((await repos.A!.repo.find(manifest.url)).doc()).toMatchObject({ from: 'W' })
    await expect(repos.B!.repo.find(manifest.url)).rejects.toThrow(/unavailable/)

    // Naming another site's document as one's own grants nothing: B's order "from A" names nobody.
    const forged = repos.B!.repo.create({ kind: 'order', from: 'A', to: 'C' })
    await until(() => relay.access.hasParties(forged.documentId))
    await expect(repos.C!.repo.find(forged.url)).rejects.toThrow(/unavailable/)
  })

  it('keeps the owner record across a restart (durable)', async () => {
    const dep = testDeployment()
    const { relay, dir } = await testRelay(dep)
    const a1 = dep.device('A', 'a1')
    const first = siteRepo(relay, a1)
    await connected(relay, a1.peerId)
    const handle = first.repo.create({ n: 1 })
    await until(() => relay.access.siteOf(handle.documentId) === 'A')
    await first.repo.flush()
    first.adapter.disconnect()
    await new Promise((r) => setTimeout(r, 200))
    await relay.close()
    const { DurableFsStorageAdapter } = await import('../../src/node/storage/DurableFsStorageAdapter.ts')
    const { startRelay } = await import('../../src/relay/server.ts')
    const { quietLogger } = await import('./helpers.ts')
    const again = await startRelay({ storage: new DurableFsStorageAdapter(dir), deployment: dep.deployment, isRevoked: () => false, port: 0, logger: quietLogger() })
    cleanups.push(() => again.close())
    expect(again.access.siteOf(handle.documentId)).toBe('A')
    const b = siteRepo(again, dep.device('B', 'b1'))
    await connected(again, 'site/B/b1')
    await expect(b.repo.find(handle.url)).rejects.toThrow(/unavailable/)
    const a2 = siteRepo(again, dep.device('A', 'a2'))
    await connected(again, 'site/A/a2')
    expect((await a2.repo.find<{ n: number }>(handle.url)).doc().n).toBe(1)
  })

  it('tells nobody it has a change before the change is on its disk', async () => {
    const dep = testDeployment()
    const { mkdtempSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const path = await import('node:path')
    const { DurableFsStorageAdapter } = await import('../../src/node/storage/DurableFsStorageAdapter.ts')
    const inner = new DurableFsStorageAdapter(mkdtempSync(path.join(tmpdir(), 'stockmesh-relay-')))
    /** When each document's incremental/snapshot saves finished. */
    const savedAt = new Map<string, number[]>()
    const slow: StorageAdapterInterface = {
      load: (key) => inner.load(key),
      loadRange: (key) => inner.loadRange(key),
      remove: (key) => inner.remove(key),
      removeRange: (key) => inner.removeRange(key),
      save: async (key, data) => {
        await new Promise((r) => setTimeout(r, 300))
        await inner.save(key, data)
        if (key[1] === 'incremental' || key[1] === 'snapshot') savedAt.set(key[0]!, [...(savedAt.get(key[0]!) ?? []), Date.now()])
      },
    }
    const relay = await relayFor(dep, { storage: slow })
    const a1 = siteRepo(relay, dep.device('A', 'a1'))
    const a2 = siteRepo(relay, dep.device('A', 'a2'))
    await connected(relay, 'site/A/a1')
    await connected(relay, 'site/A/a2')
    const handle = a1.repo.create<{ n: number }>({ n: 1 })
    await until(() => relay.access.siteOf(handle.documentId) === 'A')
    const found = await a2.repo.find<{ n: number }>(handle.url)
    const firstSeen = Date.now()
    expect(found.doc().n).toBe(1)
    expect(savedAt.get(handle.documentId)?.[0]).toBeLessThanOrEqual(firstSeen)
    handle.change((d) => (d.n = 2))
    const before = savedAt.get(handle.documentId)!.length
    await until(() => found.doc().n === 2, 10_000, 'the change at a2')
    expect(savedAt.get(handle.documentId)!.length).toBeGreaterThan(before)
  })

  it('records no storage id for a peer that claims another connected peer\'s (what it holds would be taken for what the other holds on its disk)', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep)
    // Two repos whose storage says the same id: a copied data folder, or a peer lying.
    const sameId = (): StorageAdapterInterface => {
      const data = new Map<string, Uint8Array>([['storage-adapter-id', new TextEncoder().encode('shared-storage-id')]])
      return {
        load: async (key) => data.get(key.join('/')),
        save: async (key, value) => void data.set(key.join('/'), value),
        remove: async (key) => void data.delete(key.join('/')),
        loadRange: async () => [],
        removeRange: async () => undefined,
      }
    }
    const repoWith = (device: TestDevice) => {
      const adapter = new AuthenticatedWebSocketClientAdapter({ url: relay.url, credential: device.credential, privateKey: device.keys.privateKey, minRetryMs: 50 })
      const repo = new Repo({ network: [adapter], peerId: device.peerId as PeerId, storage: sameId(), sharePolicy: async () => true })
      cleanups.push(async () => {
        adapter.disconnect()
        await repo.shutdown().catch(() => undefined)
      })
      return repo
    }
    const first = repoWith(dep.device('A', 'a1'))
    expect(await first.storageId()).toBe('shared-storage-id')
    await connected(relay, 'site/A/a1')
    await until(() => relay.repo.getStorageIdOfPeer('site/A/a1' as PeerId) === 'shared-storage-id', 10_000, 'a1 storage id')
    repoWith(dep.device('A', 'a2'))
    await connected(relay, 'site/A/a2')
    await until(() => relay.repo.peers.includes('site/A/a2' as PeerId), 10_000, 'a2 a peer of the repo')
    expect(relay.repo.getStorageIdOfPeer('site/A/a2' as PeerId)).toBeUndefined()
    expect(relay.repo.getStorageIdOfPeer('site/A/a1' as PeerId)).toBe('shared-storage-id')
  })

  it('gives every site the catalog and each site its enrolment roots', async () => {
    const dep = testDeployment()
    const seed = new Repo({ network: [] })
    const catalog = seed.create({ products: ['soap'] })
    const ledgerB = seed.create({ site: 'B' })
    const { DurableFsStorageAdapter } = await import('../../src/node/storage/DurableFsStorageAdapter.ts')
    const { mkdtempSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const path = await import('node:path')
    const { startRelay } = await import('../../src/relay/server.ts')
    const { quietLogger } = await import('./helpers.ts')
    const dir = mkdtempSync(path.join(tmpdir(), 'stockmesh-relay-'))
    const storage = new DurableFsStorageAdapter(dir)
    const catalogBytes = (await seed.export(catalog.documentId))!
    const ledgerBytes = (await seed.export(ledgerB.documentId))!
    const relay = await startRelay({
      storage,
      deployment: dep.deployment,
      isRevoked: () => false,
      port: 0,
      logger: quietLogger(),
      catalog: catalog.documentId,
      roots: [['B', [ledgerB.documentId]]],
      openRepo: (config) => {
        const repo = new Repo({ ...config, storage })
        repo.import(catalogBytes, { docId: catalog.documentId })
        repo.import(ledgerBytes, { docId: ledgerB.documentId })
        return repo
      },
    })
    cleanups.push(() => relay.close())
    const a = siteRepo(relay, dep.device('A', 'a1'))
    const b = siteRepo(relay, dep.device('B', 'b1'))
    await connected(relay, 'site/A/a1')
    await connected(relay, 'site/B/b1')
    expect((await a.repo.find<{ products: string[] }>(catalog.url)).doc().products).toEqual(['soap'])
    expect((await b.repo.find<{ site: string }>(ledgerB.url)).doc().site).toBe('B')
    await expect(a.repo.find(ledgerB.url)).rejects.toThrow(/unavailable/)
  })
})

describe('relay hostile input and operations', () => {
  it('closes a connection that sends a malformed frame and keeps serving others', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep)
    const bad = dep.device('A', 'bad')
    const result = await upgradeAs(relay.url, bad)
    if (!result.socket) throw new Error('not accepted')
    const closed = new Promise<number>((resolve) => result.socket!.on('close', (code) => resolve(code)))
    result.socket!.send(Buffer.from([0xff, 0xfe, 0x00, 0x13]))
    expect(await closed).toBe(1007)

    // CBOR that is not a message, then a message with a non-string document id.
    for (const frame of [cbor.encode(null), cbor.encode(42), cbor.encode({ type: 'sync', senderId: bad.peerId, targetId: 'x', documentId: 7 })]) {
      const again = await upgradeAs(relay.url, bad)
      if (!again.socket) throw new Error('not accepted')
      const done = new Promise<number>((resolve) => again.socket!.on('close', (code) => resolve(code)))
      again.socket!.send(cbor.encode({ type: 'join', senderId: bad.peerId, peerMetadata: {}, supportedProtocolVersions: ['1'] }))
      again.socket!.send(frame)
      expect([1007, 1008]).toContain(await done)
    }

    const a1 = dep.device('A', 'a1')
    const a2 = dep.device('A', 'a2')
    const one = siteRepo(relay, a1)
    const two = siteRepo(relay, a2)
    await connected(relay, a1.peerId)
    await connected(relay, a2.peerId)
    const handle = one.repo.create({ ok: true })
    await until(() => relay.access.siteOf(handle.documentId) === 'A')
    expect((await two.repo.find<{ ok: boolean }>(handle.url)).doc().ok).toBe(true)
  })

  it('closes a connection that sends an unknown message type', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep)
    const device = dep.device('A', 'odd')
    const result = await upgradeAs(relay.url, device)
    const closed = new Promise<[number, string]>((resolve) => result.socket!.on('close', (code, reason) => resolve([code, reason.toString()])))
    result.socket!.send(cbor.encode({ type: 'join', senderId: device.peerId, peerMetadata: {}, supportedProtocolVersions: ['1'] }))
    result.socket!.send(cbor.encode({ type: 'shout', senderId: device.peerId, targetId: relay.repo.peerId }))
    const [code, reason] = await closed
    expect(code).toBe(1007)
    expect(reason).toMatch(/^unknown-message: /)
  })

  it('disconnects a peer that floods the relay with requests for documents it may not access', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep, { maxDenialsPerMinute: 5 })
    const device = dep.device('A', 'flood')
    const result = await upgradeAs(relay.url, device)
    const closed = new Promise<[number, string]>((resolve) => result.socket!.on('close', (code, reason) => resolve([code, reason.toString()])))
    result.socket!.send(cbor.encode({ type: 'join', senderId: device.peerId, peerMetadata: {}, supportedProtocolVersions: ['1'] }))
    await connected(relay, device.peerId)
    const { generateAutomergeUrl, parseAutomergeUrl } = await import('@automerge/automerge-repo')
    for (let i = 0; i < 10; i++) {
      const documentId = parseAutomergeUrl(generateAutomergeUrl()).documentId
      result.socket!.send(cbor.encode({ type: 'request', senderId: device.peerId, targetId: relay.repo.peerId, documentId, data: new Uint8Array([0x42, 0, 0]) }))
    }
    const [code, reason] = await closed
    expect(code).toBe(1008)
    expect(reason).toMatch(/^too-many-denials: /)
    expect(await relay.metrics.getSingleMetricAsString('stockmesh_relay_access_denials_total')).toMatch(/ [6-9]|10$/)
  })

  it('closes a connection whose message exceeds the size limit', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep, { maxPayload: 1024 })
    const result = await upgradeAs(relay.url, dep.device('A', 'big'))
    if (!result.socket) throw new Error('not accepted')
    const closed = new Promise<number>((resolve) => result.socket!.on('close', (code) => resolve(code)))
    result.socket!.on('error', () => {})
    result.socket!.send(Buffer.alloc(4096))
    expect(await closed).toBe(1009)
    const health = await fetch(relayHttpUrl(relay.url, '/healthz'))
    expect(health.status).toBe(200)
  })

  it('answers /healthz in JSON and /metrics in Prometheus text with the auth failures counted', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep)
    await upgradeAs(relay.url, dep.device('A', 'x'), { credential: '' })
    const health = await (await fetch(relayHttpUrl(relay.url, '/healthz'))).json()
    expect(health).toMatchObject({ ok: true, deployment: dep.deployment.id })
    const response = await fetch(relayHttpUrl(relay.url, '/metrics'))
    expect(response.headers.get('content-type')).toMatch(/text\/plain/)
    const text = await response.text()
    expect(text).toMatch(/# TYPE stockmesh_relay_auth_failures_total counter/)
    expect(text).toMatch(/stockmesh_relay_auth_failures_total\{reason="missing-credential"\} 1/)
    for (const name of ['connected_devices', 'documents_loaded', 'access_denials_total', 'messages_in_total', 'bytes_out_total']) expect(text).toContain(`stockmesh_relay_${name}`)
  })
})

describe('relays in a chain: control messages', () => {
  const join = (device: TestDevice) => cbor.encode({ type: 'join', senderId: device.peerId, peerMetadata: {}, supportedProtocolVersions: ['1'] })
  const control = (device: TestDevice, relay: Relay, body: unknown) => cbor.encode({ type: 'stockmesh-control', senderId: device.peerId, targetId: relay.repo.peerId, control: body })
  const docId = '2UXkX5k72xnBCnTg6RXPErMAv11y'

  it('closes a device (not a relay) that sends a control message', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep)
    const device = dep.device('A', 'a1')
    const result = await upgradeAs(relay.url, device)
    const closed = new Promise<[number, string]>((resolve) => result.socket!.on('close', (code, reason) => resolve([code, reason.toString()])))
    result.socket!.send(join(device))
    result.socket!.send(control(device, relay, { kind: 'owner', documentId: docId, owner: 'A' }))
    const [code, reason] = await closed
    expect(code).toBe(1007)
    expect(reason).toMatch(/^unknown-message: /)
    expect(relay.access.ownerOf(docId)).toBeUndefined()
  })

  it('tells a relay below the sites’ roots and revocations; takes its owner statements only for sites it serves; closes it on a malformed one', async () => {
    const dep = testDeployment()
    const relay = await relayFor(dep, { roots: [['A', ['A-index-0000000000000000000']]], registerStatement: () => ({ kind: 'register', roots: [['A' as never, ['2j8YfT6KqvHfLjbLZmYUqS3W5LsN']]], revocations: 'aaa.bbb' }) })
    const district = dep.device('district', 'r1', { role: 'relay', serves: ['A'] })
    const result = await upgradeAs(relay.url, district)
    if (!result.socket) throw new Error('not accepted')
    const frames: unknown[] = []
    result.socket.on('message', (data: Buffer) => frames.push(cbor.decode(new Uint8Array(data))))
    result.socket.send(join(district))
    await until(() => frames.some((f) => (f as { type?: string }).type === 'stockmesh-control'), 5000, 'the register statement')
    expect(frames.find((f) => (f as { type?: string }).type === 'stockmesh-control')).toMatchObject({ control: { kind: 'register', roots: [['A', ['2j8YfT6KqvHfLjbLZmYUqS3W5LsN']]], revocations: 'aaa.bbb' } })

    result.socket.send(control(district, relay, { kind: 'owner', documentId: docId, owner: 'B' }))
    result.socket.send(control(district, relay, { kind: 'owner', documentId: '3khAGFFP8eh28q7VstmPzYBGk1yk', owner: 'A' }))
    await until(() => relay.access.ownerOf('3khAGFFP8eh28q7VstmPzYBGk1yk') === 'A', 5000, 'the statement for a served site')
    expect(relay.access.ownerOf(docId)).toBeUndefined()
    expect(relay.access.mayAccess(district.peerId, '3khAGFFP8eh28q7VstmPzYBGk1yk')).toBe(true)
    expect(relay.access.mayAccess('site/B/b1', '3khAGFFP8eh28q7VstmPzYBGk1yk')).toBe(false)

    const closed = new Promise<number>((resolve) => result.socket!.on('close', (code) => resolve(code)))
    result.socket.send(control(district, relay, { kind: 'owner', documentId: 'not a document id', owner: 'A' }))
    expect(await closed).toBe(1007)
  })
})
