/**
 * A restarted site records at once: movement ids of journals whose content has not changed since
 * the last run come from the journal cache (src/node/journalCache.ts), without loading them; a
 * journal changed meanwhile, or a damaged cache, is loaded instead. The background load is held
 * back (`backgroundLoadAfter`) so that what is checked cannot have come from it.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { Repo, type AutomergeUrl } from '@automerge/automerge-repo'
import { describe, expect, it, onTestFinished } from 'vitest'
import { journalEntries, journalPostings, writeJournal } from '../../src/docs/ledger.ts'
import { JOURNAL_CACHE_FILE } from '../../src/node/journalCache.ts'
import { DurableFsStorageAdapter } from '../../src/node/storage/DurableFsStorageAdapter.ts'
import { DocumentStorage } from '../../src/node/storage/documentStorage.ts'
import type { JournalDoc, LedgerDoc } from '../../src/schema/ledger.ts'
import { api } from '../helpers/api.ts'
import { startSite } from '../helpers/site.ts'
import { tempDir } from '../helpers/tempDir.ts'

const WEEK = 7 * 24 * 60 * 60 * 1000
const START = Date.UTC(2026, 10, 2, 9) // a Monday

/** A site with movements in three weeks (three journals of this node), closed. */
async function siteWithThreeWeeks(dataDir: string) {
  let now = START
  const site = await startSite(dataDir, { now: () => now })
  for (let week = 0; week < 3; week++) {
    now = START + week * WEEK
    const res = await api(site.url, 'POST', '/api/movements', { movements: [{ id: `w${week}-r`, kind: 'receipt', sku: 'AMOX-500', quantity: 10, user: 'amina' }] })
    expect(res.status).toBe(201)
  }
  const journals = journalEntries(site.node.store.ledger.doc())
  expect(journals).toHaveLength(3)
  await site.close()
  return { journals, now: () => now }
}

/** Reopened with the background load held; `release` lets it run. */
async function reopened(dataDir: string, now: () => number) {
  let release!: () => void
  const held = new Promise<void>((resolve) => (release = resolve))
  const site = await startSite(dataDir, { now, backgroundLoadAfter: held })
  return { ...site, release }
}

describe('the journal cache', () => {
  it('answers a re-sent movement of an old week as a duplicate before any old journal is loaded, and records new ones', async () => {
    const dataDir = tempDir()
    const { journals, now } = await siteWithThreeWeeks(dataDir)
    const site = await reopened(dataDir, now)
    onTestFinished(site.release)
    await site.node.indexed
    // Only this node's current journal is loaded: the two older weeks came from the cache.
    expect(journals.filter((j) => site.node.store.journal(j.url)).map((j) => j.n)).toEqual([3])

    const again = await api(site.url, 'POST', '/api/movements', { id: 'w0-r', kind: 'receipt', sku: 'AMOX-500', quantity: 10, user: 'amina' })
    expect(again).toMatchObject({ status: 200, body: { status: 'duplicate' } })
    const clash = await api(site.url, 'POST', '/api/movements', { id: 'w1-r', kind: 'issue', sku: 'AMOX-500', quantity: 1, user: 'amina' })
    expect(clash.status).toBe(409)
    expect((await api(site.url, 'POST', '/api/movements', { id: 'new-1', kind: 'issue', sku: 'AMOX-500', quantity: 4, user: 'amina' })).status).toBe(201)
    expect((await api(site.url, 'GET', '/api/stock/AMOX-500')).body.onHand).toBe(26)
    // The movement list (every week, and of one SKU) comes from the maintained index: no old journal loads for it.
    const listed = (await api(site.url, 'GET', '/api/movements?sku=AMOX-500')).body as { movements: Array<{ id: string }>; total: number }
    expect(listed.movements.map((m) => m.id)).toEqual(['new-1', 'w2-r', 'w1-r', 'w0-r'])
    expect(journals.filter((j) => site.node.store.journal(j.url)).map((j) => j.n)).toEqual([3])

    site.release()
    await site.node.fullyLoaded
    expect((await api(site.url, 'GET', '/api/ledger/check')).body.consistent).toBe(true)
    const ids = ((await api(site.url, 'GET', '/api/movements')).body.movements as Array<{ id: string }>).map((m) => m.id).sort()
    expect(ids).toEqual(['new-1', 'w0-r', 'w1-r', 'w2-r'])
  })

  it('loads a journal whose content changed since the cache was written (a change it does not list)', async () => {
    const dataDir = tempDir()
    const { journals, now } = await siteWithThreeWeeks(dataDir)
    // While the node is down its oldest journal changes on disk (as a synced change would): a movement added.
    // (A site's folder is read through the node's own document storage: its changes are in a change log.)
    const storage = new DurableFsStorageAdapter(path.join(dataDir, 'automerge'))
    const repo = new Repo({ storage, network: [] })
    new DocumentStorage(storage).install(repo)
    const oldest = await repo.find<JournalDoc>(journals[0]!.url as AutomergeUrl)
    const first = journalPostings(oldest.doc())[0]!
    oldest.change((d) => writeJournal(d, { ...first, seq: 500, id: 'late-arrival' }))
    await repo.flush()
    await repo.shutdown()

    const site = await reopened(dataDir, now)
    try {
      await site.node.indexed
      // Read from the document (the cache did not list it), indexed, written into the cache, and
      // unloaded again: an old journal does not stay in memory.
      expect(site.node.book.postingsOf('late-arrival')).toHaveLength(1)
      const cached = JSON.parse(readFileSync(path.join(dataDir, JOURNAL_CACHE_FILE), 'utf8')).journals[journals[0]!.url]
      expect(cached.rows.map((r: unknown[]) => r[1])).toContain('late-arrival')
      expect(journals.filter((j) => site.node.store.journal(j.url)).map((j) => j.n)).toEqual([3])
      expect((await api(site.url, 'POST', '/api/movements', { id: 'late-arrival', kind: 'receipt', sku: 'AMOX-500', quantity: 10, user: 'amina' })).body.status).toBe('duplicate')
    } finally {
      site.release()
    }
  })

  it('writes the entries it started from again, unchanged, from its index (their rows leave memory once read)', async () => {
    const dataDir = tempDir()
    const { journals } = await siteWithThreeWeeks(dataDir)
    const file = path.join(dataDir, JOURNAL_CACHE_FILE)
    const before = JSON.parse(readFileSync(file, 'utf8')).journals
    let now = START + 3 * WEEK
    const second = await reopened(dataDir, () => now)
    second.release()
    await second.node.fullyLoaded
    // A fourth week: the third week's journal is no longer current, so the cache is written again at close.
    expect((await api(second.url, 'POST', '/api/movements', { id: 'w3-r', kind: 'receipt', sku: 'AMOX-500', quantity: 10, user: 'amina' })).status).toBe(201)
    await second.close()
    const after = JSON.parse(readFileSync(file, 'utf8')).journals
    expect(after[journals[0]!.url]).toEqual(before[journals[0]!.url])
    expect(after[journals[1]!.url]).toEqual(before[journals[1]!.url])
    expect(after[journals[2]!.url].rows.map((r: unknown[]) => r[1])).toEqual(['w2-r'])

    now += 1000
    const third = await reopened(dataDir, () => now)
    onTestFinished(third.release)
    await third.node.indexed
    expect(journals.filter((j) => third.node.store.journal(j.url))).toEqual([])
    for (const id of ['w0-r', 'w1-r', 'w2-r']) expect((await api(third.url, 'POST', '/api/movements', { id, kind: 'receipt', sku: 'AMOX-500', quantity: 10, user: 'amina' })).body.status).toBe('duplicate')
    expect((await api(third.url, 'GET', '/api/stock/AMOX-500')).body.onHand).toBe(40)
  })

  it('starts from the journals when the cache file is damaged, and writes it again', async () => {
    const dataDir = tempDir()
    const { journals, now } = await siteWithThreeWeeks(dataDir)
    const file = path.join(dataDir, JOURNAL_CACHE_FILE)
    expect(Object.keys(JSON.parse(readFileSync(file, 'utf8')).journals).sort()).toEqual([journals[0]!.url, journals[1]!.url].sort())
    writeFileSync(file, '{"v":1,"journals":{"x":')
    const site = await reopened(dataDir, now)
    onTestFinished(site.release)
    await site.node.indexed
    // Every journal was read from its document; the older ones were unloaded once indexed and the cache written again.
    expect(journals.filter((j) => site.node.store.journal(j.url)).map((j) => j.n)).toEqual([3])
    expect(Object.keys(JSON.parse(readFileSync(file, 'utf8')).journals).sort()).toEqual([journals[0]!.url, journals[1]!.url].sort())
    expect((await api(site.url, 'POST', '/api/movements', { id: 'w0-r', kind: 'receipt', sku: 'AMOX-500', quantity: 10, user: 'amina' })).body.status).toBe('duplicate')
    site.release()
    await site.node.fullyLoaded
    expect((await api(site.url, 'GET', '/api/ledger/check')).body.consistent).toBe(true)
  })
})
