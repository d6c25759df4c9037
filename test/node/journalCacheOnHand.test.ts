/**
 * On hand right after a restart, while the background load is held: another device's newest
 * journal is named by the ledger but not here yet, and its previous one is in the journal cache.
 * That device counts with its previous journal (loaded, never taken from the cache), and a count
 * recorded then sets on hand to what was counted (found by a review of the journal cache: it was
 * off by the other device's stock, and stayed off after the full load).
 */
import path from 'node:path'
import { Repo, generateAutomergeUrl, type AutomergeUrl } from '@automerge/automerge-repo'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createJournal, registerJournal, writeJournal, journalEntries } from '../../src/docs/ledger.ts'
import { DurableFsStorageAdapter } from '../../src/node/storage/DurableFsStorageAdapter.ts'
import type { JournalDoc, LedgerDoc } from '../../src/schema/ledger.ts'
import { periodOf } from '../../src/docs/period.ts'
import { api } from '../helpers/api.ts'
import { startSite } from '../helpers/site.ts'
import { tempDir } from '../helpers/tempDir.ts'

const START = Date.UTC(2026, 10, 2, 9)

async function offline(dataDir: string, fn: (repo: Repo, ledger: any) => Promise<void>) {
  const repo = new Repo({ storage: new DurableFsStorageAdapter(path.join(dataDir, 'automerge')), network: [] })
  const ledger = await repo.find<LedgerDoc>(ledgerUrlHolder.url as AutomergeUrl)
  await fn(repo, ledger)
  await repo.flush()
  await repo.shutdown()
}
const ledgerUrlHolder = { url: '' }
let dev_b1 = ''

describe('on hand after a restart, with another device’s previous journal in the journal cache', () => {
  it('counts device B when its newest journal is named but not on disk', async () => {
    const dataDir = tempDir()
    const now = () => START
    let site = await startSite(dataDir, { now })
    expect((await api(site.url, 'POST', '/api/movements', { id: 'a-1', kind: 'receipt', sku: 'AMOX-500', quantity: 10, user: 'amina' })).status).toBe(201)
    ledgerUrlHolder.url = site.node.store.ledger.url
    await site.close()
    // Device B's journal 1 arrives (as by sync) with a receipt of 50.
    await offline(dataDir, async (repo, ledger) => {
      const j = repo.create<JournalDoc>()
      j.change((d) => createJournal(d, { site: 'demo-store', node: 'dev-b', n: 1, week: periodOf(START), s0: 0, open: new Map(), t0: START }))
      j.change((d) => writeJournal(d, { node: 'dev-b', seq: 1, id: 'b-1', kind: 'receipt', sku: 'AMOX-500', delta: 50, at: START, by: 'bob' }))
      ledger.change((d: LedgerDoc) => registerJournal(d, 'dev-b', 1, j.url))
      dev_b1 = j.url
    })
    site = await startSite(dataDir, { now })
    await site.node.fullyLoaded
    expect((await api(site.url, 'GET', '/api/stock/AMOX-500')).body.onHand).toBe(60)
    await site.close() // cache now holds dev-b/1
    // The ledger change naming dev-b/2 arrives, the journal itself not yet.
    await offline(dataDir, async (_repo, ledger) => {
      ledger.change((d: LedgerDoc) => registerJournal(d, 'dev-b', 2, generateAutomergeUrl()))
    })
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    const s2 = await startSite(dataDir, { now, backgroundLoadAfter: held })
    onTestFinished(() => release())
    await s2.node.indexed
    // B counts with dev-b/1 (loaded, not taken from the cache) while dev-b/2 is not here.
    expect((await api(s2.url, 'GET', '/api/stock/AMOX-500')).body.onHand).toBe(60)
    expect(s2.node.store.journal(dev_b1)).toBeDefined()
    // A count waits for the background load (receipts a crash left unposted come first), then sets 60: delta 0.
    const count = api(s2.url, 'POST', '/api/movements', { id: 'c-1', kind: 'count', sku: 'AMOX-500', counted: 60, user: 'amina' })
    release()
    expect((await count).body).toMatchObject({ status: 'recorded', delta: 0 })
    await s2.node.fullyLoaded
    expect((await api(s2.url, 'GET', '/api/stock/AMOX-500')).body.onHand).toBe(60)
    expect(s2.node.book.onHand().get('AMOX-500')).toBe(60)
  })
})
