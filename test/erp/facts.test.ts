/**
 * Reading facts at the hub (src/erp/facts.ts) from real Automerge documents: every posting of
 * every journal once, also when a journal's last postings arrive after the device's next journal
 * did (the documents sync apart); order decisions once made, read again only when the order
 * changes; a delivery recorded by a device of another site is not the stop site's.
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

  it('takes a proof of delivery only from a device of the stop site, and an order decision once it is made', async () => {
    const repo = new Repo({ network: [] })
    const delivery = (device: string) => ({ by: 'otieno', device, at: 1, receivedAt: 1, receiver: 'Otieno', signature: 'Otieno', lines: { l1: { received: 9, rejected: 1 } } })
    const manifest = (id: string, device: string) =>
      repo.create({ schema: 2, kind: 'manifest', id, from: 'store-a', carrier: 'hub', createdBy: 'x', createdDevice: 'a1', createdAt: 0, events: [{ to: 'departed', by: 'x', device: 'a1', at: 1 }], stops: [{ id: 's1', site: 'store-b', lines: [{ id: 'l1', sku: 'AMOX-500', shipped: 10 }], deliveries: [delivery(device)] }] })
    const real = manifest('m-1', 'b1')
    const forged = manifest('m-2', 'a1')
    const order = repo.create({ schema: 2, kind: 'order', id: 'po-1', from: 'store-a', to: 'store-b', createdBy: 'x', createdDevice: 'a1', createdAt: 0, lines: { 'AMOX-500': { sku: 'AMOX-500', requested: 4 } }, events: [{ from: 'draft', to: 'submitted', by: 'x', device: 'a1', at: 1, lines: { 'AMOX-500': 4 } }] })
    const index = repo.create({ schema: 1, kind: 'index', site: 'store-a', catalog: '', ledger: '', orders: { 'po-1': order.url }, manifests: { 'm-1': real.url, 'm-2': forged.url } })
    const refused: string[] = []
    const reader = new FactReader(repo, { siteOfDevice: (device) => ({ a1: 'store-a', b1: 'store-b' })[device], onError: (_error, where) => refused.push(where) })
    // Submitted only: no decision yet. The delivery recorded by a device of store A at B's stop is not B's.
    expect((await reader.readDocuments('store-a', index.documentId)).map((f) => f.key)).toEqual(['store-b/delivery:m-1:s1'])
    expect(refused).toEqual(['store-b/delivery:m-2:s1'])
    order.change((d: any) => void d.events.push({ from: 'submitted', to: 'approved', by: 'y', device: 'b1', at: 2, approved: { 'AMOX-500': 3 } }))
    const decided = await reader.readDocuments('store-a', index.documentId)
    expect(decided).toEqual([expect.objectContaining({ type: 'order', key: 'store-a/order:po-1:approved', supplier: 'store-b', lines: [{ sku: 'AMOX-500', quantity: 3 }] })])
    await repo.shutdown()
  })
})
