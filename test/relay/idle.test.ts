/**
 * src/relay/idle.ts: idle documents leave the Repo's memory (flushed first, never overwritten by the
 * empty document of automerge-repo issue #435) and come back from disk on demand, on a plain Repo
 * and on a real relay with real authenticated clients. Time is a fake clock: no timing assertions.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Repo, type AutomergeUrl, type DocHandle, type DocumentId, type PeerId, type StorageAdapterInterface } from '@automerge/automerge-repo'
import pino from 'pino'
import { AuthenticatedWebSocketClientAdapter } from '../../src/network/AuthenticatedWebSocketClientAdapter.ts'
import { DurableFsStorageAdapter } from '../../src/node/storage/DurableFsStorageAdapter.ts'
import { IdleUnloader } from '../../src/relay/idle.ts'
import type { Relay } from '../../src/relay/server.ts'
import { quietLogger, testDeployment, testRelay, until, type TestDevice } from './helpers.ts'

const IDLE = 60_000

let cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.reverse()) await c()
  cleanups = []
})

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'stockmesh-idle-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A Repo on DurableFsStorageAdapter in `dir`, shut down after the test. */
function diskRepo(dir: string, options: { saveDebounceRate?: number; storage?: StorageAdapterInterface } = {}): Repo {
  const repo = new Repo({ storage: options.storage ?? new DurableFsStorageAdapter(dir), network: [], saveDebounceRate: options.saveDebounceRate })
  cleanups.push(() => repo.shutdown().catch(() => undefined))
  return repo
}

/** What a brand-new process would read from `dir`. */
async function fromDisk<T>(dir: string, url: AutomergeUrl): Promise<T> {
  const repo = diskRepo(dir)
  return (await repo.find<T>(url)).doc() as T
}

function fakeClock() {
  const clock = { t: 1_000_000, now: () => clock.t, advance: (ms: number) => (clock.t += ms) }
  return clock
}

/** An unloader on a fake clock; `idle()` sweeps once to note every document, then once `IDLE` later. */
function unloaderFor(repo: Repo, options: { pinned?: (id: string) => boolean; logger?: pino.Logger } = {}) {
  const clock = fakeClock()
  const unloaded: string[] = []
  const unloader = new IdleUnloader({ repo, idleMs: IDLE, logger: options.logger ?? quietLogger(), now: clock.now, pinned: options.pinned, onUnloaded: (id) => unloaded.push(id) })
  cleanups.push(() => unloader.stop())
  const idle = async () => {
    await unloader.sweep()
    clock.advance(IDLE)
    return unloader.sweep()
  }
  return { unloader, clock, unloaded, idle }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

type Items = { items: string[] }

describe('IdleUnloader on a Repo', () => {
  it('unloads an idle document and reloads it intact from disk, changes not yet saved included', async () => {
    const dir = tempDir()
    const storage = new DurableFsStorageAdapter(dir)
    // Saves throttled for a minute: nothing reaches the disk unless the unloader flushes it.
    const repo = diskRepo(dir, { storage, saveDebounceRate: 60_000 })
    const handle = repo.create<Items>({ items: [] })
    for (let i = 0; i < 20; i++) handle.change((d) => void d.items.push(`line ${i}`))
    const { unloader, unloaded, idle } = unloaderFor(repo)
    await unloader.sweep() // notes it
    handle.change((d) => void d.items.push('last, just before the sweep'))
    await unloader.sweep() // its heads moved: active again
    expect(handle.documentId in repo.handles).toBe(true)
    expect(await storage.loadRange([handle.documentId])).toEqual([]) // still only in memory

    expect(await idle()).toEqual([handle.documentId])
    expect(handle.documentId in repo.handles).toBe(false)
    expect(unloaded).toEqual([handle.documentId])
    expect(unloader.unloadedTotal).toBe(1)
    const expected = [...Array.from({ length: 20 }, (_, i) => `line ${i}`), 'last, just before the sweep']
    expect((await fromDisk<Items>(dir, handle.url)).items).toEqual(expected)
    const again = await repo.find<Items>(handle.url)
    expect(again).not.toBe(handle)
    expect(again.doc().items).toEqual(expected)
    again.change((d) => void d.items.push('after the reload'))
    await repo.flush([again.documentId])
    expect((await fromDisk<Items>(dir, handle.url)).items).toEqual([...expected, 'after the reload'])
  })

  it('never lets the unload save the empty document over the stored one (automerge-repo #435)', async () => {
    const dir = tempDir()
    const repo = diskRepo(dir) // the default 100 ms save throttle, as on the relay
    const handle = repo.create<Items>({ items: ['a'] })
    for (const item of ['b', 'c', 'd']) {
      handle.change((d) => void d.items.push(item))
      await sleep(150) // each save lands: a small snapshot plus incrementals, the losing case
    }
    const { idle } = unloaderFor(repo)
    expect(await idle()).toEqual([handle.documentId])
    await sleep(300) // any save the unload scheduled has run by now
    expect((await fromDisk<Items>(dir, handle.url)).items).toEqual(['a', 'b', 'c', 'd'])
  })

  it('automerge-repo 2.5.6 itself: flush then removeFromCache empties a small document (why idle.ts mutes the save)', async () => {
    // When this fails, automerge-repo fixed #435 and the guard in idle.ts can be reconsidered.
    const dir = tempDir()
    const repo = diskRepo(dir)
    const handle = repo.create<Items>({ items: ['a', 'b'] })
    await repo.flush([handle.documentId])
    await repo.removeFromCache(handle.documentId)
    await sleep(300)
    expect(await fromDisk<Partial<Items>>(dir, handle.url)).toEqual({})
  })

  it('keeps a document touched within idleMs, a pinned one, and one touched or changed while it was being saved', async () => {
    const dir = tempDir()
    const inner = new DurableFsStorageAdapter(dir)
    /** Runs when a save of that document starts (the unloader's flush). */
    const onSave = new Map<string, () => void>()
    const storage: StorageAdapterInterface = {
      load: (k) => inner.load(k),
      loadRange: (k) => inner.loadRange(k),
      remove: (k) => inner.remove(k),
      removeRange: (k) => inner.removeRange(k),
      save: async (k, data) => {
        const hook = onSave.get(k[0]!)
        onSave.delete(k[0]!)
        hook?.()
        await inner.save(k, data)
      },
    }
    const repo = diskRepo(dir, { storage, saveDebounceRate: 60_000 })
    const [idleDoc, touched, pinned, touchedInFlush, changedInFlush] = ['idle', 'touched', 'pinned', 'touched in flush', 'changed in flush'].map((name) => repo.create<Items>({ items: [name] })) as [DocHandle<Items>, DocHandle<Items>, DocHandle<Items>, DocHandle<Items>, DocHandle<Items>]
    const { unloader, clock } = unloaderFor(repo, { pinned: (id) => id === pinned.documentId })
    await unloader.sweep()
    clock.advance(IDLE - 1)
    unloader.touch(touched.documentId)
    clock.advance(1)
    onSave.set(touchedInFlush.documentId, () => unloader.touch(touchedInFlush.documentId))
    onSave.set(changedInFlush.documentId, () => changedInFlush.change((d) => void d.items.push('during the flush')))
    expect(await unloader.sweep()).toEqual([idleDoc.documentId])
    expect(Object.keys(repo.handles).sort()).toEqual([touched, pinned, touchedInFlush, changedInFlush].map((h) => h.documentId).sort())
    expect(changedInFlush.doc().items).toEqual(['changed in flush', 'during the flush'])

    // Left alone for idleMs, the unpinned ones go too, and the change made during the flush is on disk.
    clock.advance(IDLE)
    const later = await unloader.sweep() // the touched ones go; the heads that moved are noted
    expect(later.sort()).toEqual([touched, touchedInFlush].map((h) => h.documentId).sort())
    clock.advance(IDLE)
    expect(await unloader.sweep()).toEqual([changedInFlush.documentId])
    expect(Object.keys(repo.handles)).toEqual([pinned.documentId])
    expect((await fromDisk<Items>(dir, changedInFlush.url)).items).toEqual(['changed in flush', 'during the flush'])
    expect((await fromDisk<Items>(dir, idleDoc.url)).items).toEqual(['idle'])
  })

  it('logs a failed save and keeps the document; one sweep at a time; never throws', async () => {
    const dir = tempDir()
    const inner = new DurableFsStorageAdapter(dir)
    let failing = false
    const storage: StorageAdapterInterface = {
      load: (k) => inner.load(k),
      loadRange: (k) => inner.loadRange(k),
      remove: (k) => inner.remove(k),
      removeRange: (k) => inner.removeRange(k),
      save: async (k, data) => {
        if (failing) throw new Error('disk full')
        await inner.save(k, data)
      },
    }
    const lines: string[] = []
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) })
    const repo = diskRepo(dir, { storage, saveDebounceRate: 60_000 })
    const handle = repo.create<Items>({ items: ['kept'] })
    const { unloader, clock } = unloaderFor(repo, { logger })
    await unloader.sweep()
    clock.advance(IDLE)
    failing = true
    const first = unloader.sweep()
    expect(unloader.sweep()).toBe(first)
    expect(await first).toEqual([])
    failing = false
    expect(handle.documentId in repo.handles).toBe(true)
    expect(lines.some((l) => /could not unload an idle document/.test(l) && /disk full/.test(l))).toBe(true)
    expect(await unloader.sweep()).toEqual([handle.documentId])
    expect((await fromDisk<Items>(dir, handle.url)).items).toEqual(['kept'])
  })

  it('refuses an idleMs below the save throttle margin', () => {
    expect(() => new IdleUnloader({ repo: new Repo({ network: [] }), idleMs: 50, logger: quietLogger() })).toThrow(RangeError)
  })
})

describe('IdleUnloader on a relay', () => {
  function siteRepo(relay: Relay, device: TestDevice) {
    const adapter = new AuthenticatedWebSocketClientAdapter({ url: relay.url, credential: device.credential, privateKey: device.keys.privateKey, minRetryMs: 50 })
    const repo = new Repo({ network: [adapter], peerId: device.peerId as PeerId, sharePolicy: async () => true })
    cleanups.push(async () => {
      adapter.disconnect()
      await repo.shutdown().catch(() => undefined)
    })
    return repo
  }
  const connected = (relay: Relay, peerId: string) => until(() => relay.adapter.isConnected(peerId), 10_000, `${peerId} connected`)

  /** A relay, devices a1 and a2 of site A connected to it (`second: false`: a1 only). */
  async function relayWithSite({ second = true } = {}) {
    const dep = testDeployment()
    const { relay, dir, cleanup } = await testRelay(dep)
    cleanups.push(cleanup)
    const a1 = dep.device('A', 'a1')
    const a2 = dep.device('A', 'a2')
    const repoA = siteRepo(relay, a1)
    await connected(relay, a1.peerId)
    const repoB = second ? siteRepo(relay, a2) : undefined
    if (repoB) await connected(relay, a2.peerId)
    return { dep, relay, dir, repoA, repoB }
  }

  /** Resolves once no message has gone in or out of the relay for 300 ms (sync rounds finished). */
  async function quiet(relay: Relay) {
    const count = async () => (await relay.metrics.getSingleMetricAsString('stockmesh_relay_messages_in_total')) + (await relay.metrics.getSingleMetricAsString('stockmesh_relay_messages_out_total'))
    let last = await count()
    await until(async () => {
      await sleep(300)
      const now = await count()
      const still = now === last
      last = now
      return still
    }, 20_000, 'the relay to go quiet')
  }

  /** True once the relay holds document `id` loaded with `count` items. */
  const relayHolds = (relay: Relay, id: DocumentId, count: number) => {
    const h = relay.repo.handles[id]
    return !!h && h.isReady() && (h.doc() as Partial<Items>).items?.length === count
  }

  it('after the relay unloaded a document, a change from one device still reaches the other, and a new device fetches it', async () => {
    const { dep, relay, dir, repoA, repoB } = await relayWithSite()
    if (!repoB) throw new Error('no second device')
    const atA = repoA.create<Items>({ items: ['one'] })
    await until(() => relay.access.siteOf(atA.documentId) === 'A', 10_000, 'the relay to record A as owner')
    const atB = await repoB.find<Items>(atA.url)
    expect(atB.doc().items).toEqual(['one'])
    atB.change((d) => void d.items.push('two, just before the sweep'))
    await until(() => relayHolds(relay, atA.documentId, 2) && atA.doc().items.length === 2, 10_000, 'the change at the relay and at A')

    await quiet(relay)
    const { idle } = unloaderFor(relay.repo)
    expect(await idle()).toContain(atA.documentId)
    expect(atA.documentId in relay.repo.handles).toBe(false)
    await sleep(300) // a save scheduled by the unload (#435) would have run
    expect((await fromDisk<Items>(dir, atA.url)).items).toEqual(['one', 'two, just before the sweep'])

    atA.change((d) => void d.items.push('three, after the unload'))
    await until(() => atB.doc().items.length === 3, 10_000, "A's change at B through the relay")
    expect(atB.doc().items).toEqual(['one', 'two, just before the sweep', 'three, after the unload'])
    expect(relayHolds(relay, atA.documentId, 3)).toBe(true) // loaded again on demand

    // Unloaded again; a device that never had it asks the relay for it.
    await quiet(relay)
    expect(await idle()).toContain(atA.documentId)
    expect(atA.documentId in relay.repo.handles).toBe(false)
    const a3 = dep.device('A', 'a3')
    const repoC = siteRepo(relay, a3)
    await connected(relay, a3.peerId)
    expect((await repoC.find<Items>(atA.url)).doc().items).toEqual(['one', 'two, just before the sweep', 'three, after the unload'])
  })

  it('200 documents loaded then idle: the relay holds none in memory and all reload intact', async () => {
    const { dep, relay, dir, repoA } = await relayWithSite({ second: false })
    const handles = Array.from({ length: 200 }, (_, i) => repoA.create<Items>({ items: [`doc ${i}`, `payload ${'x'.repeat(i)}`] }))
    await until(() => handles.every((h) => relayHolds(relay, h.documentId, 2)), 60_000, 'all 200 at the relay')
    expect(Object.keys(relay.repo.handles).length).toBeGreaterThanOrEqual(200)
    await quiet(relay)

    const { unloader, idle } = unloaderFor(relay.repo)
    const unloaded = await idle()
    expect(unloaded.length).toBeGreaterThanOrEqual(200)
    expect(handles.filter((h) => h.documentId in relay.repo.handles)).toEqual([])
    expect(Object.keys(relay.repo.handles)).toEqual([])
    expect(unloader.unloadedTotal).toBe(unloaded.length)

    const disk = diskRepo(dir)
    for (const [i, h] of handles.entries()) expect((await disk.find<Items>(h.url)).doc().items).toEqual([`doc ${i}`, `payload ${'x'.repeat(i)}`])
    // And through the relay, which loads each one again from its disk for a device that never had them.
    const a3 = dep.device('A', 'a3')
    const repoC = siteRepo(relay, a3)
    await connected(relay, a3.peerId)
    const found = await Promise.all(handles.slice(0, 50).map((h) => repoC.find<Items>(h.url)))
    found.forEach((h, i) => expect(h.doc().items).toEqual([`doc ${i}`, `payload ${'x'.repeat(i)}`]))
  }, 120_000)
})
