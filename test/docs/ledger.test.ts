import * as A from '@automerge/automerge'
import { describe, expect, it } from 'vitest'
import { checkLedger, journalPostings, journalTotal, journalTotals, totShard } from '../../src/docs/ledger.ts'
import { JOURNAL_LIMIT } from '../../src/schema/ledger.ts'
import { type CompensationInput, decideLedgerItem, ledgerReviewItems } from '../../src/docs/review.ts'
import { documentHistory } from '../../src/docs/history.ts'
import { ConflictError, InputError, ReadOnlyDocumentError, RuleError } from '../../src/schema/errors.ts'
import type { DeviceId, UserId } from '../../src/schema/ids.ts'
import { MemoryReplica, originLedger, SimulatedCrash } from '../helpers/memoryReplica.ts'
import { LedgerBook } from '../../src/docs/ledgerBook.ts'
import { createCatalog, isKnownSku, reasonCodes, upsertProduct, upsertReason } from '../../src/docs/catalog.ts'
import { BUILT_IN_REASONS, type CatalogDoc } from '../../src/schema/catalog.ts'
import { CLIENT_TIME_MAX_AHEAD_MS, CLIENT_TIME_MAX_BEHIND_MS } from '../../src/schema/clientTime.ts'

const SKUS = new Set(['AMOX-500', 'ORS-1L', 'GLOVE-M'])
const T0 = Date.parse('2026-11-16T09:00:00Z') // a Monday
const DAY = 86_400_000

function replica(index = 0, origin = originLedger('store-1')) {
  let now = T0
  const r = new MemoryReplica(index, `node-${index}`, origin, 'store-1', (s) => SKUS.has(s), () => now)
  return { r, setNow: (t: number) => (now = t) }
}

let ids = 0
const mv = (fields: Record<string, unknown>) => ({ id: `mv-${++ids}`, sku: 'AMOX-500', user: 'amina', ...fields })

const ctx = (user: string) => ({ user: user as UserId, device: 'tablet-1' as DeviceId, at: T0 })

const onHandOf = (r: MemoryReplica, sku: string) => r.book.onHand().get(sku) ?? 0

function snapshot(r: MemoryReplica) {
  return JSON.stringify([A.getHeads(r.ledger.current), [...r.journals.values()].map((j) => A.getHeads(j.current))])
}

describe('record()', () => {
  it('adds receipts and subtracts issues from on hand', async () => {
    const { r } = replica()
    await r.book.record([mv({ kind: 'receipt', quantity: 100 }), mv({ kind: 'issue', quantity: 30 })])
    await r.book.record([mv({ kind: 'receipt', quantity: 5, sku: 'ORS-1L' })])
    expect(Object.fromEntries(r.book.onHand())).toEqual({ 'AMOX-500': 70, 'ORS-1L': 5 })
  })

  it('keeps who, which device, when, reason and reference on every movement', async () => {
    const { r } = replica()
    const at = T0 - 3_600_000
    await r.book.record([mv({ kind: 'adjustment', delta: -2, reason: 'damaged', reference: 'box 7', device: 'scanner-3', at })])
    const [p] = journalPostings(r.journalDocs()[0]!)
    expect(p).toMatchObject({ kind: 'adjustment', sku: 'AMOX-500', delta: -2, by: 'amina', device: 'scanner-3', at, reason: 'damaged', reference: 'box 7', node: 'node-0', seq: 1 })
    expect(journalTotal(r.journalDocs()[0]!, 'AMOX-500')).toBe(-2)
  })

  it('turns a stock count into the adjustment that brings on hand to the counted quantity', async () => {
    const { r } = replica()
    await r.book.record([mv({ kind: 'receipt', quantity: 40 })])
    const [res] = await r.book.record([mv({ kind: 'count', counted: 37, reason: 'cycle-count' })])
    expect(res!.posting).toMatchObject({ kind: 'count', counted: 37, delta: -3 })
    expect(onHandOf(r, 'AMOX-500')).toBe(37)
  })

  it('counts a batch in order: a count after a receipt in the same batch sees the receipt', async () => {
    const { r } = replica()
    await r.book.record([mv({ kind: 'receipt', quantity: 10 }), mv({ kind: 'count', counted: 12 })])
    expect(onHandOf(r, 'AMOX-500')).toBe(12)
  })

  it('records transfers out and in with the partner site as reference', async () => {
    const { r } = replica()
    const [inRes, outRes] = await r.book.record([mv({ kind: 'transferIn', quantity: 8, from: 'hub' }), mv({ kind: 'transferOut', quantity: 3, to: 'clinic-2' })])
    expect(inRes!.posting.reference).toBe('from:hub')
    expect(outRes!.posting.reference).toBe('to:clinic-2')
    expect(onHandOf(r, 'AMOX-500')).toBe(5)
  })

  it.each([
    ['an unknown SKU', { kind: 'receipt', quantity: 1, sku: 'NOPE' }, RuleError, 'sku'],
    ['a quantity of zero', { kind: 'receipt', quantity: 0 }, InputError, 'quantity'],
    ['a negative quantity', { kind: 'issue', quantity: -4 }, InputError, 'quantity'],
    ['a fractional quantity', { kind: 'receipt', quantity: 1.5 }, InputError, 'quantity'],
    ['a quantity given as text', { kind: 'receipt', quantity: '5' }, InputError, 'quantity'],
    ['an adjustment without a reason', { kind: 'adjustment', delta: 3 }, InputError, 'reason'],
    ['an adjustment of zero', { kind: 'adjustment', delta: 0, reason: 'x' }, InputError, 'delta'],
    ['a negative count', { kind: 'count', counted: -1 }, InputError, 'counted'],
    ['an unknown kind', { kind: 'gift', quantity: 1 }, InputError, 'kind'],
    ['an unexpected field', { kind: 'receipt', quantity: 1, price: 3 }, InputError, ''],
    ['a malformed movement id', { kind: 'receipt', quantity: 1, id: 'has space' }, InputError, 'id'],
    ['a transfer without its partner site', { kind: 'transferOut', quantity: 1 }, InputError, 'to'],
  ])('refuses %s with an error naming the field, changing nothing', async (_, fields, ErrorType, field) => {
    const { r } = replica()
    await r.book.record([mv({ kind: 'receipt', quantity: 1 })])
    const before = snapshot(r)
    const error = await r.book.record([mv(fields)]).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ErrorType)
    if (field) expect((error as InputError).field).toBe(field)
    expect(snapshot(r)).toBe(before)
  })

  it('refuses a whole batch when one movement is bad, naming which', async () => {
    const { r } = replica()
    const before = snapshot(r)
    await expect(r.book.record([mv({ kind: 'receipt', quantity: 1 }), mv({ kind: 'receipt', quantity: 0 })])).rejects.toThrow(/movement 2: quantity/)
    expect(snapshot(r)).toBe(before)
  })

  it('writes requests that arrive together in one change, accepting or refusing each on its own', async () => {
    const { r } = replica()
    await r.book.record([mv({ kind: 'receipt', quantity: 100 })])
    const journal = [...r.journals.values()][0]!
    const changesBefore = A.getAllChanges(journal.current).length
    const same = mv({ kind: 'issue', quantity: 1 })
    const requests = [
      ...Array.from({ length: 10 }, () => r.book.record([mv({ kind: 'issue', quantity: 2 })])),
      r.book.record([mv({ kind: 'issue', quantity: 0 })]),
      r.book.record([same]),
      r.book.record([same]),
    ]
    const settled = await Promise.allSettled(requests)
    expect(settled.map((s) => s.status)).toEqual([...Array(10).fill('fulfilled'), 'rejected', 'fulfilled', 'fulfilled'])
    const statuses = settled.slice(11).map((s) => (s as PromiseFulfilledResult<Awaited<ReturnType<typeof r.book.record>>>).value[0]!.status)
    expect(statuses).toEqual(['recorded', 'duplicate'])
    expect(A.getAllChanges(journal.current).length - changesBefore).toBe(1)
    expect(onHandOf(r, 'AMOX-500')).toBe(100 - 20 - 1)
    expect(checkLedger(r.journalDocs())).toEqual([])
  })

  it('answers a re-submitted movement id as a duplicate and changes nothing', async () => {
    const { r } = replica()
    const first = mv({ kind: 'receipt', quantity: 12 })
    await r.book.record([first])
    const before = snapshot(r)
    const [again] = await r.book.record([{ ...first, reference: 'sent again' }])
    expect(again!.status).toBe('duplicate')
    expect(again!.posting.delta).toBe(12)
    expect(snapshot(r)).toBe(before)
    expect(onHandOf(r, 'AMOX-500')).toBe(12)
  })

  it('opens the next journal each week, carrying the balance forward', async () => {
    const { r, setNow } = replica()
    await r.book.record([mv({ kind: 'receipt', quantity: 10 })])
    setNow(T0 + 8 * DAY)
    await r.book.record([mv({ kind: 'issue', quantity: 3 })])
    setNow(T0) // a clock set back does not reopen an old journal: order is by journal number
    await r.book.record([mv({ kind: 'issue', quantity: 1 })])
    expect(Object.keys(r.ledger.doc().journals).sort()).toEqual(['node-0/000001', 'node-0/000002', 'node-0/000003'])
    const [, second, third] = [...r.journalDocs()].sort((x, y) => x.n - y.n)
    expect(second!.open).toEqual({ 'AMOX-500': 10 })
    expect(third!.open).toEqual({ 'AMOX-500': 7 })
    expect(onHandOf(r, 'AMOX-500')).toBe(6)
    expect(checkLedger(r.journalDocs())).toEqual([])
  })

  it('opens the next journal when one is full', async () => {
    const { r } = replica()
    for (let i = 0; i < JOURNAL_LIMIT; i += 500) await r.book.record(Array.from({ length: 500 }, () => mv({ kind: 'receipt', quantity: 1 })))
    expect(r.journals.size).toBe(1)
    await r.book.record([mv({ kind: 'receipt', quantity: 1 })])
    expect(r.journals.size).toBe(2)
    expect(onHandOf(r, 'AMOX-500')).toBe(JOURNAL_LIMIT + 1)
    expect(checkLedger(r.journalDocs())).toEqual([])
  })

  it('opens the next journal when told to roll over (a long relay outage), carrying on hand', async () => {
    const { r } = replica()
    let roll = false
    const book = new LedgerBook(r, { node: r.node, site: 'store-1', knownSku: (s) => SKUS.has(s), now: () => T0, rollOver: () => roll })
    await book.record([mv({ kind: 'receipt', quantity: 10 })])
    roll = true
    // Asked only for a journal that has movements: this posting opens journal 2.
    await book.record([mv({ kind: 'issue', quantity: 3 })])
    roll = false
    await book.record([mv({ kind: 'issue', quantity: 1 })])
    expect(Object.keys(r.ledger.doc().journals).sort()).toEqual(['node-0/000001', 'node-0/000002'])
    expect(book.onHand().get('AMOX-500')).toBe(6)
    expect(checkLedger(r.journalDocs())).toEqual([])
  })

  it('refuses to write into a ledger made by a newer version of the app', async () => {
    const origin = A.change(originLedger('store-1'), (d) => {
      d.schema = 99
    })
    const { r } = replica(0, origin)
    await expect(r.book.record([mv({ kind: 'receipt', quantity: 1 })])).rejects.toBeInstanceOf(ReadOnlyDocumentError)
    expect(r.journals.size).toBe(0)
  })
})

describe('checkLedger()', () => {
  it('finds a total that does not match the movements, and an opening balance not carried', async () => {
    const { r, setNow } = replica()
    await r.book.record([mv({ kind: 'receipt', quantity: 10 })])
    setNow(T0 + 8 * DAY)
    await r.book.record([mv({ kind: 'receipt', quantity: 1 })])
    const [first, second] = [...r.journals.values()].sort((x, y) => x.doc().n - y.doc().n)
    first!.change((d) => d.tt![totShard('AMOX-500')]!['AMOX-500']!.increment(5))
    expect(checkLedger(r.journalDocs())).toEqual([
      { journal: 'node-0/000001', sku: 'AMOX-500', recorded: 15, expected: 10, what: 'total' },
      { journal: 'node-0/000002', sku: 'AMOX-500', recorded: 10, expected: 15, what: 'opening' },
    ])
    expect(second).toBeDefined()
  })
})

describe('a crash', () => {
  it('loses nothing acknowledged and leaves no half-written posting', async () => {
    const { r } = replica()
    await r.book.record([mv({ kind: 'receipt', quantity: 10 })])
    r.crashAfterDurableCalls = 0 // the next posting is written in memory, then the process dies
    await expect(r.book.record([mv({ kind: 'receipt', quantity: 5 }), mv({ kind: 'issue', quantity: 2 })])).rejects.toThrow(/crashed/)
    await r.crashAndRestart()
    expect(onHandOf(r, 'AMOX-500')).toBe(10)
    expect(checkLedger(r.journalDocs())).toEqual([])
    await r.book.record([mv({ kind: 'receipt', quantity: 1 })])
    expect(onHandOf(r, 'AMOX-500')).toBe(11)
  })

  it('between opening a journal and registering it leaves an unused journal and no harm', async () => {
    const { r, setNow } = replica()
    await r.book.record([mv({ kind: 'receipt', quantity: 10 })])
    setNow(T0 + 8 * DAY)
    r.crashAfterDurableCalls = 1 // the new journal is stored, its registration in the ledger is not
    await expect(r.book.record([mv({ kind: 'receipt', quantity: 5 })])).rejects.toThrow(/crashed/)
    await r.crashAndRestart()
    await r.book.record([mv({ kind: 'receipt', quantity: 5 })])
    expect(Object.keys(r.ledger.doc().journals).sort()).toEqual(['node-0/000001', 'node-0/000002'])
    expect(onHandOf(r, 'AMOX-500')).toBe(15)
  })
})

describe('ledgerReviewItems()', () => {
  async function twoReplicasMerged(act: (a: MemoryReplica, b: MemoryReplica) => Promise<void>) {
    const origin = originLedger('store-1')
    const a = replica(0, origin).r
    const b = replica(1, origin).r
    await act(a, b)
    a.receiveFrom(b)
    b.receiveFrom(a)
    return { a, b }
  }

  it('shows stock below zero after two devices issued the same stock offline', async () => {
    const { a, b } = await twoReplicasMerged(async (a, b) => {
      await a.book.record([mv({ kind: 'receipt', quantity: 10 })])
      b.receiveFrom(a)
      await a.book.record([mv({ kind: 'issue', quantity: 8 })])
      await b.book.record([mv({ kind: 'issue', quantity: 7 })])
    })
    const items = ledgerReviewItems(a.ledger.doc(), a.journalDocs())
    expect(items).toEqual(ledgerReviewItems(b.ledger.doc(), b.journalDocs()))
    expect(items).toMatchObject([{ id: 'negative-stock:AMOX-500', kind: 'negative-stock', status: 'open', details: { onHand: -5 } }])
  })

  it('shows a movement id posted on two devices, and a delivery line received twice', async () => {
    const { a, b } = await twoReplicasMerged(async (a, b) => {
      const same = mv({ kind: 'receipt', quantity: 6 })
      await a.book.record([same])
      await b.book.record([same])
      const line = mv({ kind: 'receipt', quantity: 20, id: 'rcv:m1:s1:l1', sku: 'ORS-1L' })
      await a.book.record([line])
      await b.book.record([line])
    })
    const items = ledgerReviewItems(a.ledger.doc(), a.journalDocs())
    expect(items.map((i) => [i.kind, i.details.excess])).toEqual([
      ['duplicate-movement', 6],
      ['duplicate-movement', 20],
    ])
    expect(items).toEqual(ledgerReviewItems(b.ledger.doc(), b.journalDocs()))
    // Nothing is lost: on hand still equals the sum of every posting.
    expect(Object.fromEntries(a.book.onHand())).toEqual({ 'AMOX-500': 12, 'ORS-1L': 40 })
  })

  it('shows two stock counts of one SKU made without seeing each other', async () => {
    const { a } = await twoReplicasMerged(async (a, b) => {
      await a.book.record([mv({ kind: 'receipt', quantity: 50 })])
      b.receiveFrom(a)
      await a.book.record([mv({ kind: 'count', counted: 45 })])
      await b.book.record([mv({ kind: 'count', counted: 47 })])
    })
    const [item] = ledgerReviewItems(a.ledger.doc(), a.journalDocs())
    expect(item).toMatchObject({ kind: 'concurrent-counts', status: 'open', details: { sku: 'AMOX-500' } })
    expect(onHandOf(a, 'AMOX-500')).toBe(42) // both corrections applied: -5 and -3
  })

  it('marks an item resolved once a decision with its compensating movement is recorded', async () => {
    const { a } = await twoReplicasMerged(async (a, b) => {
      const same = mv({ kind: 'receipt', quantity: 6 })
      await a.book.record([same])
      await b.book.record([same])
    })
    const [item] = ledgerReviewItems(a.ledger.doc(), a.journalDocs())
    const [fix] = await a.book.record([mv({ id: `fix:${item!.id}`, kind: 'adjustment', delta: -6, reason: 'duplicate', reference: item!.id })])
    a.ledger.change((d) => decideLedgerItem(d, item!, { note: 'scanned twice', movements: [fix!.posting.id] }, ctx('manager')))
    const [after] = ledgerReviewItems(a.ledger.doc(), a.journalDocs())
    expect(after).toMatchObject({ id: item!.id, status: 'resolved', decision: { by: 'manager', note: 'scanned twice', movements: [fix!.posting.id] } })
    expect(onHandOf(a, 'AMOX-500')).toBe(6)
    expect(() => a.ledger.change((d) => decideLedgerItem(d, item!, { note: 'again', movements: [] }, ctx('x')))).toThrow(ConflictError)
  })

  it('keeps a decided item listed as resolved once its cause has cleared', async () => {
    const { r } = replica()
    await r.book.record([mv({ kind: 'receipt', quantity: 2 }), mv({ kind: 'issue', quantity: 5 })])
    const [item] = ledgerReviewItems(r.ledger.doc(), r.journalDocs())
    expect(item).toMatchObject({ id: 'negative-stock:AMOX-500', status: 'open' })
    await r.book.decide(item!, { user: 'bongani', note: 'recounted: 3 were not entered' }, [mv({ id: 'fix-1', kind: 'adjustment', delta: 3, reason: 'count' }) as CompensationInput])
    expect(onHandOf(r, 'AMOX-500')).toBe(0)
    const items = ledgerReviewItems(r.ledger.doc(), r.journalDocs())
    expect(items).toHaveLength(1)
    expect(items[0]).toMatchObject({ id: item!.id, kind: 'negative-stock', status: 'resolved', summary: item!.summary, decision: { by: 'bongani', movements: ['fix-1'] } })
    expect(() => r.ledger.change((d) => decideLedgerItem(d, item!, { note: 'again', movements: [] }, ctx('x')))).toThrow(/already been decided by bongani/)
  })

  it('opens a new item when stock goes below zero again after a decision', async () => {
    const { r } = replica()
    await r.book.record([mv({ kind: 'issue', quantity: 2 })])
    const [first] = ledgerReviewItems(r.ledger.doc(), r.journalDocs())
    await r.book.decide(first!, { user: 'bongani', note: 'found 2' }, [mv({ id: 'fix-1', kind: 'adjustment', delta: 2, reason: 'found' }) as CompensationInput])
    await r.book.record([mv({ kind: 'issue', quantity: 5 })])
    const items = ledgerReviewItems(r.ledger.doc(), r.journalDocs())
    expect(items.map((i) => [i.id, i.status])).toEqual([
      ['negative-stock:AMOX-500~2', 'open'],
      ['negative-stock:AMOX-500', 'resolved'],
    ])
  })

  it('posts the compensations of a decision that a crash left unposted, once, at the next start', async () => {
    const { r } = replica()
    await r.book.record([mv({ kind: 'issue', quantity: 4 })])
    const [item] = ledgerReviewItems(r.ledger.doc(), r.journalDocs())
    // The decision is durable (first durable call); the crash comes before the adjustment's posting.
    r.crashAfterDurableCalls = 1
    await expect(r.book.decide(item!, { user: 'bongani', note: 'found 4' }, [mv({ id: 'fix-9', kind: 'adjustment', delta: 4, reason: 'found' }) as CompensationInput])).rejects.toBeInstanceOf(SimulatedCrash)
    r.crashAfterDurableCalls = undefined
    await r.crashAndRestart()
    expect(onHandOf(r, 'AMOX-500')).toBe(-4)
    expect(ledgerReviewItems(r.ledger.doc(), r.journalDocs()).find((i) => i.id === item!.id)).toMatchObject({ status: 'resolved', decision: { movements: ['fix-9'] } })
    expect((await r.book.reconcileDecisions()).map((x) => x.posting.id)).toEqual(['fix-9'])
    expect(await r.book.reconcileDecisions()).toEqual([])
    expect(onHandOf(r, 'AMOX-500')).toBe(0)
    expect(ledgerReviewItems(r.ledger.doc(), r.journalDocs()).map((i) => [i.id, i.status])).toEqual([[item!.id, 'resolved']])
  })
})

describe('a movement id sent again', () => {
  it('is a duplicate when it is the same movement, and refused when its content differs', async () => {
    const { r } = replica()
    await r.book.record([mv({ id: 'r-1', kind: 'receipt', quantity: 40 })])
    expect((await r.book.record([mv({ id: 'r-1', kind: 'receipt', quantity: 40 })]))[0]!.status).toBe('duplicate')
    const before = snapshot(r)
    await expect(r.book.record([mv({ id: 'r-1', kind: 'receipt', quantity: 4 })])).rejects.toMatchObject({ name: 'ConflictError', field: 'id', message: expect.stringContaining('another quantity (receipt of 40 AMOX-500)') })
    await expect(r.book.record([mv({ id: 'x-2', kind: 'issue', quantity: 1 }), mv({ id: 'r-1', kind: 'issue', quantity: 40 })])).rejects.toMatchObject({ name: 'ConflictError', field: '1.id' })
    expect(snapshot(r)).toBe(before)
  })
})

describe('documentHistory()', () => {
  it('lists who decided what and when, oldest first, and leaves postings to the movements themselves', async () => {
    const { r } = replica()
    await r.book.record([mv({ kind: 'receipt', quantity: 1, id: 'first' })])
    await r.book.decide({ id: 'negative-stock:AMOX-500', kind: 'negative-stock', doc: 'ledger', summary: 'AMOX-500 is -1 on hand', details: {}, status: 'open' }, { user: 'bongani', note: 'checked' }, [])
    const entries = documentHistory(r.ledger.current)
    expect(entries.map((e) => [e.op, e.user, e.ref])).toEqual([
      ['ledger.journal', 'node-0', 'node-0/1'],
      ['ledger.decide', 'bongani', 'negative-stock:AMOX-500'],
    ])
    expect(entries[1]!.at).toBe(T0)
    const [posting] = journalPostings(r.journalDocs()[0]!)
    expect(posting).toMatchObject({ id: 'first', by: 'amina', at: T0, node: 'node-0' })
  })
})

describe('client times', () => {
  const iso = (ms: number) => new Date(ms).toISOString()

  it.each([
    ['24 hours after the node clock', T0 + CLIENT_TIME_MAX_AHEAD_MS],
    ['400 days before it', T0 - CLIENT_TIME_MAX_BEHIND_MS],
    ['a minute before it', T0 - 60_000],
  ])('accepts a movement dated %s', async (_what, at) => {
    const { r } = replica()
    const [res] = await r.book.record([mv({ kind: 'receipt', quantity: 1, at })])
    expect(res!.posting.at).toBe(at)
  })

  it.each([
    ['9e15, thousands of years ahead', 9e15, '9000000000000000 ms, not a date is after'],
    ['a millisecond more than 24 hours ahead', T0 + CLIENT_TIME_MAX_AHEAD_MS + 1, `${iso(T0 + CLIENT_TIME_MAX_AHEAD_MS + 1)} is after`],
    ['a millisecond more than 400 days back', T0 - CLIENT_TIME_MAX_BEHIND_MS - 1, `${iso(T0 - CLIENT_TIME_MAX_BEHIND_MS - 1)} is before`],
    ['1970', 1_000, '1970-01-01T00:00:01.000Z is before'],
  ])('refuses a movement dated %s, saying the window, changing nothing', async (_what, at, got) => {
    const { r } = replica()
    await r.book.record([mv({ kind: 'receipt', quantity: 1 })])
    const before = snapshot(r)
    const error = await r.book.record([mv({ kind: 'receipt', quantity: 1, at })]).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).field).toBe('at')
    expect((error as InputError).message).toBe(
      `at: must be no more than 400 days before and 24 hours after this site's clock (${iso(T0)}): ` +
        `from ${iso(T0 - 400 * DAY)} to ${iso(T0 + DAY)}; ${got} that. Check the device's date and time`,
    )
    expect(snapshot(r)).toBe(before)
  })

  it('names the movement of a batch whose time is out of the window, and posts none of the batch', async () => {
    const { r } = replica()
    const before = snapshot(r)
    const error = await r.book.record([mv({ kind: 'receipt', quantity: 1 }), mv({ kind: 'receipt', quantity: 1, at: T0 + 2 * DAY })]).catch((e: unknown) => e)
    expect((error as InputError).field).toBe('at')
    expect((error as InputError).message).toMatch(/^movement 2: at: must be no more than 400 days before and 24 hours after/)
    expect(snapshot(r)).toBe(before)
  })

  it('moves the window with the node clock', async () => {
    const { r, setNow } = replica()
    setNow(T0 + 30 * DAY)
    await expect(r.book.record([mv({ kind: 'receipt', quantity: 1, at: T0 + 30 * DAY + 3_600_000 })])).resolves.toHaveLength(1)
    setNow(T0)
    await expect(r.book.record([mv({ kind: 'receipt', quantity: 1, at: T0 + 30 * DAY + 3_600_000 })])).rejects.toThrow(/^at: /)
  })

  it.each([-5, 0, 1.5, '2026-11-16'])('refuses a time that is not whole positive milliseconds (%j) as bad input', async (at) => {
    const { r } = replica()
    const error = await r.book.record([mv({ kind: 'receipt', quantity: 1, at })]).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).field).toBe('at')
  })
})

describe('reasons', () => {
  /** A book over replica `r`'s documents that checks reasons against `catalog`, as the site node wires it. */
  function bookWithCatalog(r: MemoryReplica, catalog: () => CatalogDoc) {
    return new LedgerBook(r, { node: r.node, site: r.site, knownSku: (sku) => isKnownSku(catalog(), sku), knownReasons: () => reasonCodes(catalog()), now: () => T0 })
  }
  function catalogWith(reasons: string[]): A.Doc<CatalogDoc> {
    return A.change(A.init<CatalogDoc>(), (d) => {
      createCatalog(d)
      for (const sku of SKUS) upsertProduct(d, { sku, name: sku, unit: 'each' })
      for (const code of reasons) upsertReason(d, { code, label: code })
    })
  }

  it('accepts the reasons of the catalog on adjustments, counts and any other movement', async () => {
    const { r } = replica()
    const book = bookWithCatalog(r, () => catalogWith(['damaged', 'cycle-count', 'expired']))
    const results = await book.record([
      mv({ kind: 'adjustment', delta: -1, reason: 'damaged' }),
      mv({ kind: 'count', counted: 4, reason: 'cycle-count' }),
      mv({ kind: 'issue', quantity: 1, reason: 'expired' }),
    ])
    expect(results.map((x) => x.posting.reason)).toEqual(['damaged', 'cycle-count', 'expired'])
  })

  it.each([
    ['an adjustment', { kind: 'adjustment', delta: -1, reason: 'stolen' }],
    ['a count', { kind: 'count', counted: 3, reason: 'stolen' }],
    ['an issue', { kind: 'issue', quantity: 1, reason: 'stolen' }],
  ])('refuses %s whose reason the catalog does not list, naming it and the known ones, changing nothing', async (_what, fields) => {
    const { r } = replica()
    const book = bookWithCatalog(r, () => catalogWith(['damaged', 'expired', 'found', 'cycle-count', 'correction', 'returned']))
    const before = snapshot(r)
    const error = await book.record([mv(fields)]).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(RuleError)
    expect(error).toMatchObject({ code: 'unknown-reason', field: 'reason' })
    expect((error as RuleError).message).toBe("reason: stolen is not a reason in this site's catalog. Known reasons: correction, cycle-count, damaged, expired, found and 1 more.")
    expect(snapshot(r)).toBe(before)
  })

  it('names the movement of a batch, and reads the catalog as it is when the movements are planned', async () => {
    const { r } = replica()
    let catalog = catalogWith(['damaged'])
    const book = bookWithCatalog(r, () => catalog)
    await expect(book.record([mv({ kind: 'adjustment', delta: 1, reason: 'damaged' }), mv({ kind: 'adjustment', delta: 1, reason: 'found' })])).rejects.toThrow(/^movement 2: reason: found is not a reason/)
    catalog = A.change(catalog, (d) => void upsertReason(d, { code: 'found', label: 'Found' }))
    await expect(book.record([mv({ kind: 'adjustment', delta: 1, reason: 'found' })])).resolves.toHaveLength(1)
  })

  it('refuses every reason but the built-in ones while the catalog lists none', async () => {
    const { r } = replica()
    const book = bookWithCatalog(r, () => catalogWith([]))
    await expect(book.record([mv({ kind: 'adjustment', delta: 1, reason: 'damaged' })])).rejects.toThrow(/lists no reasons yet/)
    for (const code of BUILT_IN_REASONS) await expect(book.record([mv({ kind: 'adjustment', delta: 1, reason: code })])).resolves.toHaveLength(1)
  })

  it('accepts any well-formed reason when the book is given no catalog reasons', async () => {
    const { r } = replica()
    await expect(r.book.record([mv({ kind: 'adjustment', delta: 1, reason: 'anything-at-all' })])).resolves.toHaveLength(1)
  })

  it('refuses a review decision whose compensating adjustment names an unknown reason: nothing posted, nothing decided', async () => {
    const { r } = replica()
    const book = bookWithCatalog(r, () => catalogWith(['correction']))
    await book.record([mv({ kind: 'receipt', quantity: 2 }), mv({ kind: 'issue', quantity: 5 })])
    const [item] = ledgerReviewItems(r.ledger.doc(), r.journalDocs())
    const before = snapshot(r)
    const adjustments = [mv({ id: 'fix-a', kind: 'adjustment', delta: 1, reason: 'correction' }), mv({ id: 'fix-b', kind: 'adjustment', delta: 2, reason: 'recount' })] as CompensationInput[]
    await expect(book.decide(item!, { user: 'bongani', note: 'recounted' }, adjustments)).rejects.toMatchObject({ code: 'unknown-reason', message: expect.stringMatching(/^movement 2: reason: recount is not a reason/) })
    expect(snapshot(r)).toBe(before)
    expect(ledgerReviewItems(r.ledger.doc(), r.journalDocs())[0]).toMatchObject({ id: item!.id, status: 'open' })
  })
})

describe('SKUs and movement ids named like Object.prototype members', () => {
  const NAMES = ['constructor', 'toString', 'hasOwnProperty', 'valueOf']
  const catalog = A.change(A.init<CatalogDoc>(), (d) => {
    createCatalog(d)
    for (const sku of NAMES) upsertProduct(d, { sku, name: sku, unit: 'each' })
  })
  function namedReplica(index = 0, origin = originLedger('store-1')) {
    let now = T0
    const r = new MemoryReplica(index, `node-${index}`, origin, 'store-1', (sku) => isKnownSku(catalog, sku), () => now)
    return { r, setNow: (t: number) => (now = t) }
  }

  it('records, totals and carries them like any SKU, across journals', async () => {
    const { r, setNow } = namedReplica()
    await r.book.record(NAMES.flatMap((sku) => [mv({ sku, kind: 'receipt', quantity: 5 }), mv({ sku, kind: 'issue', quantity: sku === 'valueOf' ? 2 : 5 })]))
    setNow(T0 + 8 * DAY) // the next journal opens with constructor, toString, hasOwnProperty at 0 (not written)
    await r.book.record(NAMES.map((sku) => mv({ sku, kind: 'receipt', quantity: 1 })))
    expect(Object.fromEntries(r.book.onHand())).toEqual({ constructor: 1, toString: 1, hasOwnProperty: 1, valueOf: 4 })
    expect(checkLedger(r.journalDocs())).toEqual([])
    const second = r.journalDocs().find((j) => j.n === 2)!
    expect(Object.keys(second.open)).toEqual(['valueOf'])
    expect([...journalTotals(second)].map(([sku]) => sku).sort()).toEqual([...NAMES].sort())
  })

  it('refuses them as unknown SKUs where the catalog does not list them', async () => {
    const { r } = replica()
    for (const sku of NAMES) await expect(r.book.record([mv({ sku, kind: 'receipt', quantity: 1 })])).rejects.toMatchObject({ code: 'unknown-sku', field: 'sku' })
    expect(r.journals.size).toBe(0)
  })

  it('refuses __proto__ as a SKU or movement id: it is not a valid id', async () => {
    const { r } = namedReplica()
    await expect(r.book.record([mv({ sku: '__proto__', kind: 'receipt', quantity: 1 })])).rejects.toMatchObject({ name: 'InputError', field: 'sku' })
    await expect(r.book.record([mv({ id: '__proto__', sku: 'valueOf', kind: 'receipt', quantity: 1 })])).rejects.toMatchObject({ name: 'InputError', field: 'id' })
  })

  it('treats a movement id constructor as new once, then as a duplicate', async () => {
    const { r } = namedReplica()
    for (const id of NAMES) {
      const [first] = await r.book.record([mv({ id, sku: 'valueOf', kind: 'receipt', quantity: 1 })])
      const [again] = await r.book.record([mv({ id, sku: 'valueOf', kind: 'receipt', quantity: 1 })])
      expect([first!.status, again!.status]).toEqual(['recorded', 'duplicate'])
    }
    expect(r.book.onHand().get('valueOf')).toBe(NAMES.length)
  })

  it('shows them in review items on every replica alike', async () => {
    const origin = originLedger('store-1')
    const a = namedReplica(0, origin).r
    const b = namedReplica(1, origin).r
    await a.book.record([mv({ sku: 'toString', kind: 'receipt', quantity: 3 })])
    b.receiveFrom(a)
    await a.book.record([mv({ sku: 'toString', kind: 'issue', quantity: 2 })])
    await b.book.record([mv({ sku: 'toString', kind: 'issue', quantity: 2 })])
    a.receiveFrom(b)
    b.receiveFrom(a)
    const items = ledgerReviewItems(a.ledger.doc(), a.journalDocs())
    expect(items).toMatchObject([{ id: 'negative-stock:toString', details: { sku: 'toString', onHand: -1 } }])
    expect(items).toEqual(ledgerReviewItems(b.ledger.doc(), b.journalDocs()))
  })
})
