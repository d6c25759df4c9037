/**
 * Stock by lot (batch) and expiry: receipts create lots, issues are served first-expiry-first-out
 * (possibly over several lots), expired lots are written off rather than issued, two devices
 * issuing one lot while apart raise a review item on the lot, and the ledger check holds per lot.
 */
import * as A from '@automerge/automerge'
import { describe, expect, it } from 'vitest'
import { checkLedger, createJournal, journalPostings, writeJournal, type Posting } from '../../src/docs/ledger.ts'
import { ledgerReviewItems } from '../../src/docs/review.ts'
import { ReadOnlyDocumentError, RuleError } from '../../src/schema/errors.ts'
import { migrate, schemaState } from '../../src/schema/migrations.ts'
import { JOURNAL_SCHEMA, type JournalDoc } from '../../src/schema/ledger.ts'
import { MemoryReplica, originLedger } from '../helpers/memoryReplica.ts'

const SKUS = new Set(['AMOX-500', 'ORS-1L', 'RDT-MAL'])
const TRACKED = new Set(['AMOX-500', 'RDT-MAL'])
const T0 = Date.parse('2026-11-16T09:00:00Z') // a Monday
const DAY = 86_400_000

function replica(index = 0, origin = originLedger('clinic-1')) {
  let now = T0
  const r = new MemoryReplica(index, `node-${index}`, origin, 'clinic-1', (s) => SKUS.has(s), () => now)
  r.lotTracked = (sku) => TRACKED.has(sku)
  return { r, setNow: (t: number) => (now = t) }
}

let ids = 0
const mv = (fields: Record<string, unknown>) => ({ id: `mv-${++ids}`, sku: 'AMOX-500', user: 'amina', ...fields })

async function refusal(promise: Promise<unknown>): Promise<RuleError> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(RuleError)
  return error as RuleError
}

const lots = (r: MemoryReplica, sku = 'AMOX-500') => r.book.lotsOf(sku).map((l) => [l.lot, l.expiry, l.onHand])

describe('lots', () => {
  it('are created by receipts and issued first-expiry-first-out, over several lots when one is not enough', async () => {
    const { r } = replica()
    await r.book.record([
      mv({ kind: 'receipt', quantity: 30, lot: 'B-LATE', expiry: '2027-09-30' }),
      mv({ kind: 'receipt', quantity: 10, lot: 'A-SOON', expiry: '2027-01-31' }),
    ])
    expect(lots(r)).toEqual([['A-SOON', '2027-01-31', 10], ['B-LATE', '2027-09-30', 30]])
    const [issued] = await r.book.record([mv({ kind: 'issue', quantity: 14 })])
    // The answer says which lots served it: all of the earliest, the rest from the next.
    expect(issued!.posting.lots).toEqual([{ lot: 'A-SOON', delta: -10 }, { lot: 'B-LATE', delta: -4 }])
    expect(issued!.posting.delta).toBe(-14)
    expect(lots(r)).toEqual([['A-SOON', '2027-01-31', 0], ['B-LATE', '2027-09-30', 26]])
    // On hand of the SKU = Σ of its lots = Σ of its movements.
    expect(r.book.onHand().get('AMOX-500')).toBe(26)
    expect(checkLedger(r.journalDocs())).toEqual([])
    // What a journal holds reads back with its lots (packed form).
    expect(journalPostings(r.journalDocs()[0]!).map((p) => p.lots)).toEqual([[{ lot: 'B-LATE', delta: 30 }], [{ lot: 'A-SOON', delta: 10 }], [{ lot: 'A-SOON', delta: -10 }, { lot: 'B-LATE', delta: -4 }]])
  })

  it('answers a re-sent first-expiry-first-out issue as a duplicate, with the lots it was served from', async () => {
    const { r } = replica()
    await r.book.record([mv({ kind: 'receipt', quantity: 5, lot: 'L1', expiry: '2027-03-01' })])
    const input = mv({ kind: 'issue', quantity: 5 })
    const [first] = await r.book.record([input])
    // The lot is empty now: planning it afresh would refuse; the re-sent one is the same movement.
    const [again] = await r.book.record([input])
    expect(again).toMatchObject({ status: 'duplicate', posting: { id: first!.posting.id, lots: [{ lot: 'L1', delta: -5 }] } })
    expect(r.book.onHand().get('AMOX-500')).toBe(0)
  })

  it('leaves expired lots out of first-expiry-first-out, refuses to issue one by name, and writes it off with the reason expired', async () => {
    const { r, setNow } = replica()
    await r.book.record([mv({ kind: 'receipt', quantity: 8, lot: 'OLD', expiry: '2026-11-20' }), mv({ kind: 'receipt', quantity: 20, lot: 'NEW', expiry: '2027-06-30' })])
    setNow(T0 + 7 * DAY) // 2026-11-23: OLD expired on the 20th
    const [issued] = await r.book.record([mv({ kind: 'issue', quantity: 3 })])
    expect(issued!.posting.lots).toEqual([{ lot: 'NEW', delta: -3 }])
    expect((await refusal(r.book.record([mv({ kind: 'issue', quantity: 1, lot: 'OLD' })]))).code).toBe('lot-expired')
    // The write-off needs no reason in the catalog: `expired` is built in.
    await r.book.record([mv({ kind: 'adjustment', delta: -8, lot: 'OLD', reason: 'expired' })])
    expect(lots(r)).toEqual([['OLD', '2026-11-20', 0], ['NEW', '2027-06-30', 17]])
    // Not enough in lots that have not expired: refused, nothing changed; a person names the lot.
    const before = r.book.onHand().get('AMOX-500')
    const short = await refusal(r.book.record([mv({ kind: 'issue', quantity: 18 })]))
    expect([short.code, short.field]).toEqual(['insufficient-lot-stock', 'quantity'])
    expect(short.message).toMatch(/17 in lots that have not expired \(NEW: 17\), not 18/)
    expect(r.book.onHand().get('AMOX-500')).toBe(before)
  })

  it('answers a re-sent issue of a lot that expired since as a duplicate, and judges expiry on the day a late movement happened', async () => {
    const { r, setNow } = replica()
    await r.book.record([mv({ kind: 'receipt', quantity: 10, lot: 'L1', expiry: '2026-11-17' })])
    const input = mv({ kind: 'issue', quantity: 2, lot: 'L1' })
    await r.book.record([input])
    setNow(T0 + 3 * DAY) // the 19th: L1 expired on the 17th
    // The scanner never got its answer and sends again: the same movement, not a refusal.
    expect((await r.book.record([input]))[0]!.status).toBe('duplicate')
    // Recorded offline on the 16th, arriving on the 19th: the lot was good that day.
    const [late] = await r.book.record([mv({ kind: 'issue', quantity: 1, lot: 'L1', at: T0 })])
    expect(late!.status).toBe('recorded')
    const [lateFefo] = await r.book.record([mv({ kind: 'issue', quantity: 1, at: T0 + 3_600_000 })])
    expect(lateFefo!.posting.lots).toEqual([{ lot: 'L1', delta: -1 }])
    // Today it is refused.
    expect((await refusal(r.book.record([mv({ kind: 'issue', quantity: 1, lot: 'L1' })]))).code).toBe('lot-expired')
    expect(lots(r)).toEqual([['L1', '2026-11-17', 6]])
  })

  it('refuses what the lot rules forbid, naming the field', async () => {
    const { r } = replica()
    await r.book.record([mv({ kind: 'receipt', quantity: 5, lot: 'L1', expiry: '2027-03-01' })])
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ sku: 'ORS-1L', kind: 'receipt', quantity: 1, lot: 'X' }, 'not-lot-tracked', 'lot'],
      [{ kind: 'receipt', quantity: 1 }, 'lot-required', 'lot'],
      [{ kind: 'receipt', quantity: 1, lot: 'L2' }, 'expiry-required', 'expiry'],
      [{ kind: 'receipt', quantity: 1, lot: 'L1', expiry: '2027-03-02' }, 'expiry-mismatch', 'expiry'],
      [{ kind: 'issue', quantity: 1, lot: 'NOPE' }, 'unknown-lot', 'lot'],
      [{ kind: 'adjustment', delta: -1, reason: 'expired' }, 'lot-required', 'lot'],
      [{ kind: 'count', counted: 3 }, 'lot-required', 'lot'],
    ]
    for (const [fields, code, field] of cases) {
      const error = await refusal(r.book.record([mv(fields)]))
      expect([error.code, error.field], JSON.stringify(fields)).toEqual([code, field])
    }
    await expect(r.book.record([mv({ kind: 'receipt', quantity: 1, lot: 'L3', expiry: '2027-02-30' })])).rejects.toThrow(/real calendar date/)
    expect(lots(r)).toEqual([['L1', '2027-03-01', 5]])
  })

  it('counts a lot on its own: the count sets that lot, and the SKU with it', async () => {
    const { r } = replica()
    await r.book.record([mv({ kind: 'receipt', quantity: 10, lot: 'L1', expiry: '2027-03-01' }), mv({ kind: 'receipt', quantity: 4, lot: 'L2', expiry: '2027-04-01' })])
    const [counted] = await r.book.record([mv({ kind: 'count', counted: 7, lot: 'L1' })])
    expect(counted!.posting).toMatchObject({ delta: -3, counted: 7, lots: [{ lot: 'L1', delta: -3 }] })
    expect(lots(r)).toEqual([['L1', '2027-03-01', 7], ['L2', '2027-04-01', 4]])
    expect(r.book.onHand().get('AMOX-500')).toBe(11)
  })

  it('carries lots into the next journal and checks them there: a tampered lot total is found', async () => {
    const { r, setNow } = replica()
    await r.book.record([mv({ kind: 'receipt', quantity: 10, lot: 'L1', expiry: '2027-03-01' })])
    setNow(T0 + 8 * DAY) // the next week: a new journal
    await r.book.record([mv({ kind: 'issue', quantity: 2, lot: 'L1' })])
    const [first, second] = [...r.journals.values()].sort((x, y) => x.doc().n - y.doc().n)
    expect(second!.doc().ol).toEqual({ 'AMOX-500|L1': 10 })
    expect(lots(r)).toEqual([['L1', '2027-03-01', 8]])
    expect(checkLedger(r.journalDocs())).toEqual([])
    first!.change((d) => {
      for (const shard of Object.values(d.lt!)) if (shard['AMOX-500|L1']) shard['AMOX-500|L1'].increment(1)
    })
    expect(checkLedger(r.journalDocs())).toEqual([
      { journal: 'node-0/000001', sku: 'AMOX-500', lot: 'L1', recorded: 11, expected: 10, what: 'total' },
      { journal: 'node-0/000002', sku: 'AMOX-500', lot: 'L1', recorded: 10, expected: 11, what: 'opening' },
    ])
  })

  it('raises a review item on a lot two devices issued below zero while apart, and both agree on it', async () => {
    const origin = originLedger('clinic-1')
    const { r: a } = replica(0, origin)
    const { r: b } = replica(1, origin)
    await a.book.record([mv({ kind: 'receipt', quantity: 6, lot: 'L1', expiry: '2027-03-01' })])
    a.storeEverything()
    b.receiveFrom(a)
    // Apart: each issues 4 of the same lot, which held 6.
    await a.book.record([mv({ kind: 'issue', quantity: 4 })])
    await b.book.record([mv({ kind: 'issue', quantity: 4, lot: 'L1' })])
    a.storeEverything()
    b.storeEverything()
    a.receiveFrom(b)
    b.receiveFrom(a)
    for (const r of [a, b]) {
      expect(lots(r)).toEqual([['L1', '2027-03-01', -2]])
      expect(r.book.onHand().get('AMOX-500')).toBe(-2)
      expect(checkLedger(r.journalDocs())).toEqual([])
      const items = ledgerReviewItems(r.ledger.doc(), r.journalDocs())
      expect(items.filter((i) => i.kind === 'negative-lot').map((i) => [i.id, i.details])).toEqual([['negative-lot:AMOX-500|L1', { sku: 'AMOX-500', lot: 'L1', onHand: -2 }]])
      // The book's maintained facts give the same queue as the documents.
      expect(r.book.reviewFacts().lotsOnHand?.get('AMOX-500|L1')).toBe(-2)
    }
  })
})

describe('a journal newer than this code', () => {
  it('is read, lots included, and never written: recording into it is refused', async () => {
    const { r } = replica()
    await r.book.record([mv({ kind: 'receipt', quantity: 5, lot: 'L1', expiry: '2027-03-01' })])
    const [own] = [...r.journals.values()]
    own!.change((d) => (d.schema = JOURNAL_SCHEMA + 1))
    await expect(r.book.record([mv({ kind: 'issue', quantity: 1 })])).rejects.toBeInstanceOf(ReadOnlyDocumentError)
    expect(lots(r)).toEqual([['L1', '2027-03-01', 5]])
    expect(own!.doc().schema).toBe(JOURNAL_SCHEMA + 1)
  })
})

describe('journal migration 4 (lot totals)', () => {
  it('upgrades a journal written before lots without rewriting a movement, and lot movements then post into it', () => {
    const p: Posting = { node: 'node-0', seq: 1, id: 'm-1', kind: 'receipt', sku: 'ORS-1L', delta: 5, at: T0, by: 'amina' }
    const old = A.change(A.init<JournalDoc>(), (d) => {
      createJournal(d, { site: 's', node: 'node-0', n: 1, week: '2026-W47', s0: 0, open: new Map(), t0: T0 })
      delete d.lt
      delete d.ol
      d.schema = 3
      writeJournal(d, p)
    })
    expect(schemaState('journal', old).state).toBe('outdated')
    const before = A.save(old)
    let ran: string[] = []
    const upgraded = A.change(A.clone(old), (d) => {
      ran = migrate('journal', d)
      writeJournal(d, { node: 'node-0', seq: 2, id: 'm-2', kind: 'receipt', sku: 'AMOX-500', delta: 3, at: T0 + 1, by: 'amina', lots: [{ lot: 'L1', delta: 3 }], expiry: '2027-01-01' })
    })
    expect(ran).toEqual(['journal v4: lot totals and opening balances per lot (none yet: every movement so far is without a lot)'])
    expect(upgraded.schema).toBe(4)
    expect(journalPostings(upgraded)[0]).toEqual(p)
    expect(checkLedger([upgraded])).toEqual([])
    // The first movement's stored bytes are untouched: the old document is a prefix of the new one's history.
    expect(A.getAllChanges(A.load(before)).every((c) => A.getAllChanges(upgraded).some((u) => Buffer.compare(Buffer.from(u), Buffer.from(c)) === 0))).toBe(true)
  })
})
