/**
 * Old journals leave memory once indexed and come back when needed, and nothing is lost on the
 * way: while two devices of a store record movements at the same time over four weeks, the site
 * node unloads its quiet journals every 50 ms (flush, cache entry, `removeFromCache`, which in
 * automerge-repo 2.5.6 saves an empty document over the stored one unless the storage refuses it:
 * #435) and compacts documents between postings. A device that joins afterwards gets every journal
 * from the node (unloaded ones are loaded again on request), and the node reopened — with its
 * journal cache, and without it — holds every movement, the same on hand, a consistent ledger.
 */
import { rmSync } from 'node:fs'
import path from 'node:path'
import { MessageChannel } from 'node:worker_threads'
import { Repo, type AutomergeUrl, type PeerId } from '@automerge/automerge-repo'
import { describe, expect, it, onTestFinished } from 'vitest'
import { journalEntries, journalPostings, writeJournal } from '../../src/docs/ledger.ts'
import { LedgerBook } from '../../src/docs/ledgerBook.ts'
import { DurableGate } from '../../src/network/durableGate.ts'
import { MessagePortNetworkAdapter } from '../../src/network/MessagePortNetworkAdapter.ts'
import { JOURNAL_CACHE_FILE } from '../../src/node/journalCache.ts'
import { RepoLedgerStore } from '../../src/node/repoLedgerStore.ts'
import type { SiteNode } from '../../src/node/siteNode.ts'
import type { JournalDoc, LedgerDoc } from '../../src/schema/ledger.ts'
import { api } from '../helpers/api.ts'
import { startSite } from '../helpers/site.ts'
import { tempDir } from '../helpers/tempDir.ts'
import { until } from '../helpers/until.ts'

const WEEK = 7 * 24 * 60 * 60 * 1000
const START = Date.UTC(2026, 10, 2, 9) // a Monday
const SKUS = ['AMOX-500', 'ORS-1L', 'ZINC-20']

/** A device of the store with its own in-memory Repo, connected to the node over a MessageChannel. */
async function device(node: SiteNode, id: string, now: () => number) {
  const { port1, port2 } = new MessageChannel()
  const repo = new Repo({ network: [new MessagePortNetworkAdapter(port1)], peerId: id as PeerId, sharePolicy: async () => true })
  onTestFinished(() => {
    repo.networkSubsystem.disconnect()
    port1.close()
    port2.close()
  })
  const connected = new Promise((resolve) => repo.networkSubsystem.once('peer', resolve))
  node.connect(new MessagePortNetworkAdapter(port2))
  await connected
  const ledger = await repo.find<LedgerDoc>(node.store.ledger.url as AutomergeUrl)
  const book = new LedgerBook(new RepoLedgerStore(repo, ledger, new DurableGate()), { node: id, site: 'demo-store', knownSku: () => true, now })
  return { repo, ledger, book }
}

/** On hand per SKU from the movements alone. */
function sumOf(movements: Array<{ sku: string; delta: number }>): Record<string, number> {
  const sums: Record<string, number> = {}
  for (const m of movements) sums[m.sku] = (sums[m.sku] ?? 0) + m.delta
  return sums
}

async function stockOf(url: string): Promise<Record<string, number>> {
  const items = (await api(url, 'GET', '/api/stock')).body.items as Array<{ sku: string; onHand: number }>
  return Object.fromEntries(items.filter((i) => SKUS.includes(i.sku)).map((i) => [i.sku, i.onHand]))
}

describe('unloading journals', () => {
  it('loses nothing while two devices record at once, a late device gets every journal, and a reopened node holds every movement', async () => {
    const dataDir = tempDir()
    let now = START
    const clock = () => now
    const site = await startSite(dataDir, { now: clock, unloadSweepMs: 50 })
    const tablet = await device(site.node, 'tablet-2', clock)
    const recorded: Array<{ id: string; sku: string; delta: number }> = []
    let unloadedSeen = 0

    for (let week = 0; week < 4; week++) {
      now = START + week * WEEK
      // Both devices record at the same time, in small requests, while the node sweeps every 50 ms.
      await Promise.all([
        (async () => {
          for (let i = 0; i < 15; i++) {
            const sku = SKUS[i % SKUS.length]!
            const res = await api(site.url, 'POST', '/api/movements', { id: `n-${week}-${i}`, kind: 'receipt', sku, quantity: 5 + i, user: 'amina' })
            expect(res.status, JSON.stringify(res.body)).toBe(201)
            recorded.push({ id: `n-${week}-${i}`, sku, delta: 5 + i })
            const loaded = [...site.node.store.journals()].length
            unloadedSeen = Math.max(unloadedSeen, journalEntries(site.node.store.ledger.doc()).length - loaded)
          }
        })(),
        (async () => {
          for (let i = 0; i < 15; i++) {
            const sku = SKUS[(i + 1) % SKUS.length]!
            await tablet.book.record([{ id: `t-${week}-${i}`, kind: 'issue', sku, quantity: 1, user: 'zanele' }])
            recorded.push({ id: `t-${week}-${i}`, sku, delta: -1 })
            await new Promise((resolve) => setTimeout(resolve, 5))
          }
        })(),
      ])
      // Let the week's journals go quiet, so that the sweep unloads the older ones.
      await until('the node to index the tablet’s week', () => (recorded.every((m) => site.node.book.postingsOf(m.id).length === 1) ? true : undefined))
      await new Promise((resolve) => setTimeout(resolve, 200))
      unloadedSeen = Math.max(unloadedSeen, journalEntries(site.node.store.ledger.doc()).length - [...site.node.store.journals()].length)
    }
    // Quiet, the node holds each device's current journal only; a ledger change (the node opens next
    // week's journal) loads no old journal back.
    await until('the old journals to leave memory', () => ([...site.node.store.journals()].length === 2 ? true : undefined))
    // Every document the node's storage reads from disk counts, and every movement announced as synced.
    const fromDisk: string[] = []
    const onLoaded = site.node.documents.onLoaded
    site.node.documents.onLoaded = (documentId) => {
      fromDisk.push(documentId)
      onLoaded?.(documentId)
    }
    const reannounced: string[] = []
    site.node.events.on('movements', ({ postings, source }) => source === 'sync' && reannounced.push(...postings.map((p) => p.id)))
    now = START + 4 * WEEK
    expect((await api(site.url, 'POST', '/api/movements', { id: 'n-4-0', kind: 'receipt', sku: 'AMOX-500', quantity: 1, user: 'amina' })).status).toBe(201)
    recorded.push({ id: 'n-4-0', sku: 'AMOX-500', delta: 1 })
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(fromDisk).toEqual([])
    expect(reannounced).toEqual([])
    site.node.documents.onLoaded = onLoaded
    const expected = sumOf(recorded)
    // 9 journals (4 weeks × 2 devices, and the node's fifth week); the older weeks of both devices left memory.
    expect(journalEntries(site.node.store.ledger.doc())).toHaveLength(9)
    expect(unloadedSeen).toBeGreaterThanOrEqual(4)
    expect(await stockOf(site.url)).toEqual(expected)
    expect((await api(site.url, 'GET', '/api/ledger/check')).body).toMatchObject({ consistent: true })

    // A change to a journal the node unloaded reaches it late (a slow link): the Repo loads the
    // journal from disk to apply it, and the node indexes the movement as it arrives. (Delta 0 keeps
    // the later journals' opening balances right: a closed journal never changes stock in practice.)
    const oldest = journalEntries(site.node.store.ledger.doc()).find((e) => e.node === 'tablet-2')!
    await until('the tablet’s first journal to leave the node’s memory', () => (site.node.store.journal(oldest.url) ? undefined : true))
    const announced: string[] = []
    site.node.events.on('movements', ({ postings, source }) => source === 'sync' && announced.push(...postings.map((p) => p.id)))
    const old = await tablet.repo.find<JournalDoc>(oldest.url as AutomergeUrl)
    const first = journalPostings(old.doc())[0]!
    old.change((d) => writeJournal(d, { ...first, seq: 900, id: 'late-1', kind: 'adjustment', delta: 0, reason: 'damaged' }))
    await until('the node to index the late movement', () => (site.node.book.postingsOf('late-1').length === 1 ? true : undefined))
    expect(announced).toEqual(['late-1'])
    recorded.push({ id: 'late-1', sku: first.sku, delta: 0 })

    // A device that joins now gets every journal from the node, unloaded ones loaded again on request.
    const late = await device(site.node, 'late-3', clock)
    const urls = journalEntries(site.node.store.ledger.doc()).map((e) => e.url)
    const journals = await Promise.all(urls.map((url) => late.repo.find<JournalDoc>(url as AutomergeUrl)))
    const ids = journals.flatMap((h) => journalPostings(h.doc()).map((p) => p.id)).sort()
    expect(ids).toEqual(recorded.map((m) => m.id).sort())
    await site.close()

    // Reopened with the journal cache, then without it: every movement, the same stock, consistent.
    for (const withCache of [true, false]) {
      if (!withCache) rmSync(path.join(dataDir, JOURNAL_CACHE_FILE))
      const again = await startSite(dataDir, { now: clock })
      await again.node.indexed
      expect([...again.node.book.postings()].map((p) => p.id).sort()).toEqual(recorded.map((m) => m.id).sort())
      expect(await stockOf(again.url)).toEqual(expected)
      expect((await api(again.url, 'GET', '/api/ledger/check')).body).toMatchObject({ consistent: true })
      await again.close()
    }
  })
})
