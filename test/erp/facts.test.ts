/**
 * Reading facts at the hub (src/erp/facts.ts) from real Automerge documents: every posting of
 * every journal once, also when a journal's last postings arrive after the device's next journal
 * did (the documents sync apart); orders and deliveries only when they change; a delivery recorded
 * by a device of another site is not the stop site's.
 */
import { Repo, type DocHandle } from '@automerge/automerge-repo'
import { describe, expect, it } from 'vitest'
import { createJournal, createLedger, registerJournal, writeJournal, type Posting } from '../../src/docs/ledger.ts'
import { FactReader } from '../../src/erp/facts.ts'
import type { JournalDoc, LedgerDoc } from '../../src/schema/ledger.ts'

const posting = (seq: number): Posting => ({ node: 'd1', seq, id: `m${seq}`, kind: 'receipt', sku: 'AMOX-500', delta: seq, at: Date.UTC(2026, 10, 30), by: 'amina' })

describe('reading facts at the hub', () => {
  it('reads every posting once, also one that arrives after the next journal was opened', async () => {
    const repo = new Repo({ network: [] })
    const ledger: DocHandle<LedgerDoc> = repo.create<LedgerDoc>()
    ledger.change((d) => createLedger(d, 'store-a'))
    const journal = (n: number, s0: number) => {
      const h = repo.create<JournalDoc>()
      h.change((d) => createJournal(d, { site: 'store-a', node: 'd1', n, week: '2026-W48', s0, open: new Map(), t0: 0 }))
      ledger.change((d) => registerJournal(d, 'd1', n, h.url))
      return h
    }
    const j1 = journal(1, 0)
    j1.change((d) => {
      writeJournal(d, posting(1))
      writeJournal(d, posting(2))
    })
    const reader = new FactReader(repo)
    expect((await reader.read('store-a', ledger.documentId)).map((f) => f.key)).toEqual(['store-a/m1/d1:1', 'store-a/m2/d1:2'])
    // The device wrote seq 3 in journal 1 and opened journal 2 (s0 = 3); journal 2 reaches the hub first.
    const j2 = journal(2, 3)
    expect(await reader.read('store-a', ledger.documentId)).toEqual([])
    j1.change((d) => writeJournal(d, posting(3)))
    j2.change((d) => writeJournal(d, { ...posting(4) }))
    expect((await reader.read('store-a', ledger.documentId)).map((f) => f.key).sort()).toEqual(['store-a/m3/d1:3', 'store-a/m4/d1:4'])
    // Nothing twice.
    expect(await reader.read('store-a', ledger.documentId)).toEqual([])
    j2.change((d) => writeJournal(d, posting(5)))
    expect((await reader.read('store-a', ledger.documentId)).map((f) => f.key)).toEqual(['store-a/m5/d1:5'])
    await repo.shutdown()
  })
})
