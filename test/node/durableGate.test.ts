/**
 * No peer receives a posting before it is on the author's disk: a node that crashed between
 * syncing and saving could otherwise reuse the posting's sequence number for another movement.
 * Two repos over a real websocket; the author's storage is slowed so the window is wide.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Repo, type AutomergeUrl, type PeerId, type StorageAdapterInterface, type StorageKey } from '@automerge/automerge-repo'
import { WebSocketClientAdapter, WebSocketServerAdapter } from '@automerge/automerge-repo-network-websocket'
import { WebSocketServer } from 'ws'
import * as A from '@automerge/automerge'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createLedger, journalPostings } from '../../src/docs/ledger.ts'
import { LedgerBook } from '../../src/docs/ledgerBook.ts'
import type { JournalDoc, LedgerDoc } from '../../src/schema/ledger.ts'
import { DurableGate } from '../../src/network/durableGate.ts'
import { RepoLedgerStore } from '../../src/node/repoLedgerStore.ts'
import { DurableFsStorageAdapter } from '../../src/node/storage/DurableFsStorageAdapter.ts'
import { tempDir } from '../helpers/tempDir.ts'

/** Storage whose saves take `delayMs`; remembers when a movement first became durable. */
class SlowStorage implements StorageAdapterInterface {
  readonly #chunks = new Map<string, Uint8Array[]>()
  /** Movement id → time the document holding it was first saved with it. */
  readonly durableAt = new Map<string, number>()
  constructor(
    private readonly inner: StorageAdapterInterface,
    private readonly delayMs: number,
  ) {}
  load = (key: StorageKey) => this.inner.load(key)
  loadRange = (prefix: StorageKey) => this.inner.loadRange(prefix)
  remove = (key: StorageKey) => this.inner.remove(key)
  removeRange = (prefix: StorageKey) => this.inner.removeRange(prefix)
  /** Saves still running (the test waits for them before its folder goes). */
  readonly #running = new Set<Promise<unknown>>()
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running])
  }
  save(key: StorageKey, data: Uint8Array): Promise<void> {
    const run = this.#save(key, data)
    this.#running.add(run)
    void run.catch(() => undefined).finally(() => this.#running.delete(run))
    return run
  }
  async #save(key: StorageKey, data: Uint8Array) {
    await new Promise((resolve) => setTimeout(resolve, this.delayMs))
    await this.inner.save(key, data)
    if (key[1] !== 'snapshot' && key[1] !== 'incremental') return
    const chunks = [...(this.#chunks.get(key[0]!) ?? []), data]
    this.#chunks.set(key[0]!, chunks)
    const doc = A.load<JournalDoc>(Buffer.concat(chunks))
    if (doc.m === undefined) return
    for (const { id } of journalPostings(doc)) if (!this.durableAt.has(id)) this.durableAt.set(id, performance.now())
  }
}

async function peerPair(gated: boolean) {
  const http = createServer()
  const wss = new WebSocketServer({ server: http })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const peer = new Repo({ network: [new WebSocketServerAdapter(wss as never)], peerId: 'peer' as PeerId, sharePolicy: async () => true })
  const storage = new SlowStorage(new DurableFsStorageAdapter(tempDir()), 400)
  const gate = new DurableGate()
  const client = new WebSocketClientAdapter(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`, 200)
  const connected = new Promise((resolve) => peer.networkSubsystem.once('peer', resolve))
  const author = new Repo({ storage, network: [gated ? gate.wrap(client) : client], peerId: 'author' as PeerId, sharePolicy: async () => true })
  await connected
  onTestFinished(async () => {
    // Every save written before the test's folder is removed (a throttled save firing later then finds nothing new).
    await author.flush()
    await storage.idle()
    author.networkSubsystem.disconnect()
    peer.networkSubsystem.disconnect()
    wss.close()
    http.close()
  })
  const ledger = author.create<LedgerDoc>()
  ledger.change((d) => createLedger(d, 'store-1'))
  await author.flush()
  const seen = await peer.find<LedgerDoc>(ledger.url)
  const store = new RepoLedgerStore(author, ledger, gate)
  const book = new LedgerBook(store, { node: 'n1', site: 'store-1', knownSku: () => true, now: () => Date.parse('2026-11-20T10:00:00Z') })
  return { storage, book, seen, peer }
}

/** Resolves with the time the peer first holds a journal containing `movementId`. */
function whenPeerHas(peer: Repo, ledgerSeen: Awaited<ReturnType<typeof peerPair>>['seen'], movementId: string): Promise<number> {
  return new Promise((resolve) => {
    const check = async () => {
      for (const url of Object.values(ledgerSeen.doc().journals ?? {})) {
        const journal = await peer.find<JournalDoc>(String(url) as AutomergeUrl).catch(() => undefined)
        const has = journal && journal.doc().m !== undefined && journalPostings(journal.doc()).some((p) => p.id === movementId)
        if (has) return resolve(performance.now())
        journal?.on('change', check)
      }
    }
    ledgerSeen.on('change', check)
    void check()
  })
}

describe('DurableGate', () => {
  it('keeps a posting from any peer until it is on the author’s disk', async () => {
    const { storage, book, seen, peer } = await peerPair(true)
    const arrived = whenPeerHas(peer, seen, 'r-1')
    await book.record([{ id: 'r-1', kind: 'receipt', sku: 'AMOX-500', quantity: 5, user: 'u' }])
    const at = await arrived
    expect(storage.durableAt.get('r-1')).toBeLessThanOrEqual(at)
  })

  it('is what makes the difference: without it the peer sees the posting before it is saved', async () => {
    const { storage, book, seen, peer } = await peerPair(false)
    const arrived = whenPeerHas(peer, seen, 'r-1')
    const recorded = book.record([{ id: 'r-1', kind: 'receipt', sku: 'AMOX-500', quantity: 5, user: 'u' }])
    const at = await arrived
    const durableAt = storage.durableAt.get('r-1')
    expect(durableAt === undefined || durableAt > at).toBe(true)
    await recorded
  })

  it('opens only when every changed document is durable, not when another one is', async () => {
    const repo = new Repo({ storage: new DurableFsStorageAdapter(tempDir()), network: [] })
    const gate = new DurableGate()
    const sent: unknown[] = []
    const adapter = gate.wrap({ send: (m: unknown) => void sent.push(m) } as never) as unknown as { send(m: unknown): void }
    const store = new RepoLedgerStore(repo, repo.create<LedgerDoc>(), gate)
    const order = store.ref(repo.create<{ n?: number }>())
    store.ledger.change((d) => createLedger(d, 'store-1'))
    order.change((d) => {
      d.n = 1
    })
    await store.durable([store.ledger])
    adapter.send('held while the order is not on disk')
    expect(sent).toEqual([])
    await store.durable([order])
    expect(sent).toEqual(['held while the order is not on disk'])
  })
})
