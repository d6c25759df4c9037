/**
 * Convergence of a site's ledger across 3–5 devices: each records random movements offline
 * (some invalid, some re-using a movement id, some crashing half-way), syncs partially with the
 * others in random order with duplicated and reordered changes, and after a full sync every device
 * holds identical documents, on hand equals the sum of movements, no acknowledged movement is lost
 * and every device shows the same review items. Replay a failure with STOCKMESH_SEED=<seed>.
 */
import * as A from '@automerge/automerge'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { checkLedger, journalPostings, postingKey, type Posting } from '../../src/docs/ledger.ts'
import { ledgerReviewItems } from '../../src/docs/review.ts'
import { ConflictError, InputError, RuleError } from '../../src/schema/errors.ts'
import { MemoryReplica, SimulatedCrash, originLedger } from '../helpers/memoryReplica.ts'
import { checkProperty, prng } from '../helpers/seed.ts'
import { indexDecisions } from '../../src/docs/reviewDecision.ts'
import { compensationId } from '../../src/node/ledger.ts'

const SKUS = ['AMOX-500', 'ORS-1L', 'GLOVE-M', 'RDT-MAL']
/** Tracked by lot: receipts name a lot and its expiry, issues name one or are served first-expiry-first-out. */
const TRACKED = 'RDT-MAL'
const EXPIRY: Record<string, string> = { L1: '2026-12-01', L2: '2027-01-15', L3: '2026-11-25' }
const known = new Set(SKUS)
const T0 = Date.parse('2026-11-20T09:00:00Z')

const movementArb = fc.record({
  kind: fc.constantFrom('receipt', 'issue', 'adjustment', 'count', 'transferOut', 'transferIn'),
  sku: fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...SKUS) }, { weight: 1, arbitrary: fc.constant('UNKNOWN') }),
  quantity: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 1, max: 50 }) }, { weight: 1, arbitrary: fc.constantFrom(0, -3, 2.5) }),
  /** Re-use one of a few shared ids now and then: the same movement sent to two devices. */
  sharedId: fc.option(fc.integer({ min: 0, max: 3 }), { freq: 8 }),
  /** Of the tracked product: the lot named (none: an issue served first-expiry-first-out), and now and then a wrong expiry. */
  lot: fc.option(fc.constantFrom('L1', 'L2', 'L3'), { freq: 4 }),
  wrongExpiry: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
})

const stepArb = (replicas: number) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.record({ t: fc.constant('record' as const), r: fc.nat(replicas - 1), items: fc.array(movementArb, { minLength: 1, maxLength: 3 }), crashAt: fc.option(fc.nat(2), { freq: 6 }) }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('sync' as const), from: fc.nat(replicas - 1), to: fc.nat(replicas - 1), seed: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('clock' as const), r: fc.nat(replicas - 1), days: fc.integer({ min: -10, max: 10 }) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('restart' as const), r: fc.nat(replicas - 1) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('decide' as const), r: fc.nat(replicas - 1) }) },
  )

const scenarioArb = fc.integer({ min: 3, max: 5 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    steps: fc.array(stepArb(n), { minLength: 5, maxLength: 40 }),
    // Replicas that catch up with some others, then decide the first open item while apart.
    deciders: fc.array(fc.record({ r: fc.nat(n - 1), from: fc.subarray([...Array(n).keys()]) }), { maxLength: n }),
  }),
)

type MovementStep = typeof movementArb extends fc.Arbitrary<infer T> ? T : never
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never

function toInput(m: MovementStep, id: string) {
  const lot = m.sku === TRACKED && m.lot !== null ? { lot: m.lot, expiry: m.wrongExpiry ? '2030-01-01' : EXPIRY[m.lot]! } : {}
  const base = { id, sku: m.sku, user: 'u1', ...lot }
  switch (m.kind) {
    case 'adjustment':
      return { ...base, kind: m.kind, delta: m.quantity % 2 ? m.quantity : -m.quantity, reason: 'damaged' }
    case 'count':
      return { ...base, kind: m.kind, counted: m.quantity }
    case 'transferOut':
      return { ...base, kind: m.kind, quantity: m.quantity, to: 'clinic-2' }
    case 'transferIn':
      return { ...base, kind: m.kind, quantity: m.quantity, from: 'hub' }
    default:
      return { ...base, kind: m.kind, quantity: m.quantity }
  }
}

/** A shuffled subset of changes with some delivered twice. */
function lossyDelivery(seed: number) {
  const rand = prng(seed)
  return <T>(changes: T[]): T[] => {
    const out = changes.filter(() => rand() < 0.7)
    for (const c of changes) if (rand() < 0.2) out.push(c)
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1))
      ;[out[i], out[j]] = [out[j]!, out[i]!]
    }
    return out
  }
}

async function run({ n, steps, deciders }: Scenario) {
  const origin = originLedger('store-1')
  const clocks = Array.from({ length: n }, () => T0)
  const replicas = Array.from({ length: n }, (_, i) => new MemoryReplica(i, `node-${i}`, origin, 'store-1', (s) => known.has(s), () => clocks[i]!))
  for (const r of replicas) r.lotTracked = (sku) => sku === TRACKED
  const acked = new Map<string, Posting>()
  const decided = new Map<string, number>()
  let nextId = 0
  const catchUp = deciders.flatMap(({ r, from }) => from.map((f) => ({ t: 'sync' as const, from: f, to: r, seed: f })))
  const decide = deciders.map(({ r }) => ({ t: 'decide' as const, r }))

  for (const step of [...steps, ...catchUp, ...decide]) {
    if (step.t === 'decide') {
      const r = replicas[step.r]!
      const item = ledgerReviewItems(r.ledger.doc(), r.journalDocs()).find((i) => i.status === 'open')
      if (!item) continue
      // A compensating adjustment: back to zero for negative stock (of a lot: that lot), a small
      // correction otherwise; of the tracked product, into a lot (the item's, or the first known).
      const sku = String(item.details.sku)
      const lot = sku === TRACKED ? (item.details.lot !== undefined ? String(item.details.lot) : r.book.lotsOf(sku)[0]?.lot) : undefined
      const onHandNow = item.kind === 'negative-lot' ? (r.book.lotsOnHand().get(`${sku}|${lot}`) ?? 0) : (r.book.onHand().get(sku) ?? 0)
      const delta = item.kind === 'negative-stock' || item.kind === 'negative-lot' ? -onHandNow : 1
      const adjustments = delta === 0 || (sku === TRACKED && lot === undefined) ? [] : [{ id: compensationId(item.id, r.node, 1), kind: 'adjustment' as const, sku, delta, reason: 'correction', user: `u${step.r}`, reference: item.id, ...(lot !== undefined ? { lot } : {}) }]
      for (const res of await r.book.decide(item, { user: `u${step.r}`, note: 'seen' }, adjustments)) {
        if (res.status === 'recorded') acked.set(postingKey(res.posting.node, res.posting.seq), res.posting)
      }
      decided.set(item.id, (decided.get(item.id) ?? 0) + 1)
    } else if (step.t === 'record') {
      const r = replicas[step.r]!
      const inputs = step.items.map((m) => toInput(m, m.sharedId === null ? `m-${nextId++}` : `shared-${m.sharedId}`))
      if (step.crashAt !== null) r.crashAfterDurableCalls = step.crashAt
      try {
        for (const res of await r.book.record(inputs)) if (res.status === 'recorded') acked.set(postingKey(res.posting.node, res.posting.seq), res.posting)
      } catch (error) {
        if (error instanceof SimulatedCrash) await r.crashAndRestart()
        else if (!(error instanceof InputError || error instanceof RuleError || error instanceof ConflictError)) throw error
      }
      r.crashAfterDurableCalls = undefined
    } else if (step.t === 'sync') {
      if (step.from === step.to) continue
      replicas[step.to]!.receiveFrom(replicas[step.from]!, lossyDelivery(step.seed))
      replicas[step.to]!.storeEverything()
    } else if (step.t === 'clock') {
      clocks[step.r] = clocks[step.r]! + step.days * 86_400_000
    } else {
      await replicas[step.r]!.crashAndRestart()
    }
  }

  // Everyone meets everyone, twice over: full delivery.
  for (let round = 0; round < 2; round++) {
    for (const to of replicas) for (const from of replicas) if (to !== from) (to.receiveFrom(from), to.storeEverything())
  }

  const heads = (r: MemoryReplica) => JSON.stringify([A.getHeads(r.ledger.current).sort(), [...r.journals.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([url, j]) => [url, A.getHeads(j.current).sort()])])
  const first = replicas[0]!
  const journals = first.journalDocs()
  const all = journals.flatMap(journalPostings)
  const expectedOnHand = new Map<string, number>()
  for (const p of all) expectedOnHand.set(p.sku, (expectedOnHand.get(p.sku) ?? 0) + p.delta)

  for (const r of replicas) {
    expect(heads(r)).toBe(heads(first))
    expect(A.toJS(r.ledger.current)).toEqual(A.toJS(first.ledger.current))
    expect(checkLedger(r.journalDocs())).toEqual([])
    expect(r.book.onHand()).toEqual(first.book.onHand())
    expect(ledgerReviewItems(r.ledger.doc(), r.journalDocs())).toEqual(ledgerReviewItems(first.ledger.doc(), journals))
    // Every decision made on any device is kept and shown, however the devices met.
    const index = indexDecisions(r.ledger.doc().decisions)
    for (const [id, count] of decided) {
      expect(index.get(id)?.decisions.length, `decisions on ${id}`).toBe(count)
      expect(ledgerReviewItems(r.ledger.doc(), r.journalDocs()).find((i) => i.id === id)?.status).toBe('resolved')
    }
  }
  // Per lot too: the same on every replica, and Σ of the lot parts of every movement.
  const expectedLots = new Map<string, number>()
  for (const p of all) for (const part of p.lots ?? []) expectedLots.set(`${p.sku}|${part.lot}`, (expectedLots.get(`${p.sku}|${part.lot}`) ?? 0) + part.delta)
  for (const r of replicas) expect(r.book.lotsOnHand()).toEqual(first.book.lotsOnHand())
  expect(first.book.lotsOnHand()).toEqual(new Map([...expectedLots].filter(([, q]) => q !== 0)))
  for (const [sku, quantity] of first.book.onHand()) expect(quantity).toBe(expectedOnHand.get(sku) ?? 0)
  for (const [sku, quantity] of expectedOnHand) expect(first.book.onHand().get(sku) ?? 0).toBe(quantity)
  const present = new Map(all.map((p) => [postingKey(p.node, p.seq), p]))
  for (const [key, posting] of acked) expect(present.get(key), `acknowledged posting ${key} lost`).toEqual(posting)
}

describe('a ledger shared by 3–5 devices', () => {
  it('converges to identical documents with on hand = Σ movements and nothing acknowledged lost', async () => {
    await checkProperty('ledger convergence', fc.asyncProperty(scenarioArb, run), { numRuns: Number(process.env.STOCKMESH_RUNS ?? 40) })
  }, 300_000)
})
