import * as A from '@automerge/automerge'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  close,
  decideManifestItem,
  deliverStop,
  depart,
  manifestReviewItems,
  manifestStatus,
  manifestStops,
  planManifest,
  type ReceiptPosting,
  receiptPostings,
} from '../../src/docs/manifest.ts'
import type { ChangeContext } from '../../src/schema/changeContext.ts'
import type { DeviceId, UserId } from '../../src/schema/ids.ts'
import { MANIFEST_SCHEMA, MAX_SIGNATURE_BYTES, type ManifestDoc } from '../../src/schema/manifest.ts'
import { str } from '../../src/schema/strings.ts'
import { expectRefused } from '../helpers/refusal.ts'
import { actorFor, actorsArb, checkProperty } from '../helpers/seed.ts'
import { expectEveryDecisionKept } from '../helpers/decisions.ts'
import { mergeByPlan, mergePlanArb } from '../helpers/mergeOrders.ts'

function ctx(user = 'drv', device = 'truck-1', at = 1_700_000_000_000): ChangeContext {
  return { user: user as UserId, device: device as DeviceId, at }
}

function change(doc: A.Doc<ManifestDoc>, op: (d: ManifestDoc) => void): A.Doc<ManifestDoc> {
  return A.change(doc, op)
}

const PLAN = {
  id: 'mf-7',
  from: 'HUB-1',
  carrier: 'Kisumu Transport',
  stops: [
    { id: 's1', site: 'CLINIC-1', lines: [{ id: 'l1', sku: 'AMOX-500', shipped: 10 }, { id: 'l2', sku: 'ORS-1', shipped: 4 }] },
    { id: 's2', site: 'CLINIC-2', lines: [{ id: 'l1', sku: 'ORS-1', shipped: 6 }] },
  ],
}
const SIGNATURE = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='

const planned = () => change(A.init<ManifestDoc>(), (d) => planManifest(d, PLAN, ctx('hub', 'hub-pc')))
const departed = () => change(planned(), (d) => depart(d, {}, ctx()))

/** A delivery of stop s1 with every line received in full unless overridden. */
function delivery(overrides: Record<string, unknown> = {}) {
  return {
    stop: 's1',
    receiver: 'Nurse Achieng',
    signature: SIGNATURE,
    lines: [{ line: 'l1', received: 10, rejected: 0 }, { line: 'l2', received: 4 }],
    ...overrides,
  }
}

/** Runs deliverStop in a change and returns the new document and the posting it returned. */
function deliver(doc: A.Doc<ManifestDoc>, input: unknown, c = ctx()): [A.Doc<ManifestDoc>, ReceiptPosting] {
  let posting: ReceiptPosting | undefined
  const next = change(doc, (d) => {
    posting = deliverStop(d, input, c)
  })
  return [next, posting!]
}

describe('planManifest()', () => {
  it('initialises an empty document as a planned manifest with its stops', () => {
    const doc = planned()
    expect(manifestStatus(doc)).toBe('planned')
    expect([str(doc.id), str(doc.from), str(doc.carrier)]).toEqual(['mf-7', 'HUB-1', 'Kisumu Transport'])
    expect(manifestStops(doc)).toEqual([
      { id: 's1', site: 'CLINIC-1', status: 'pending', deliveries: 0, lines: PLAN.stops[0]!.lines },
      { id: 's2', site: 'CLINIC-2', status: 'pending', deliveries: 0, lines: PLAN.stops[1]!.lines },
    ])
  })

  it('stores every string as an ImmutableString', () => {
    const doc = planned()
    for (const value of [doc.kind, doc.id, doc.from, doc.carrier, doc.stops[0]?.id, doc.stops[0]?.site, doc.stops[0]?.lines[0]?.sku]) {
      expect(value).toBeInstanceOf(A.ImmutableString)
    }
  })

  it.each([
    ['no stops', { ...PLAN, stops: [] }, 'stops'],
    ['a stop listed twice', { ...PLAN, stops: [PLAN.stops[0], PLAN.stops[0]] }, 'stops.1.id'],
    ['a line listed twice on a stop', { ...PLAN, stops: [{ ...PLAN.stops[0], lines: [PLAN.stops[0]!.lines[0], PLAN.stops[0]!.lines[0]] }] }, 'stops.0.lines.1.id'],
    ['a stop at the hub itself', { ...PLAN, stops: [{ ...PLAN.stops[0], site: 'HUB-1' }] }, 'stops.0.site'],
    ['a shipped quantity of 0', { ...PLAN, stops: [{ ...PLAN.stops[0], lines: [{ id: 'l1', sku: 'A', shipped: 0 }] }] }, 'stops.0.lines.0.shipped'],
    ['ids too long for a movement id', { ...PLAN, id: 'm'.repeat(120) }, 'stops.0.lines.0.id'],
    ['an empty carrier', { ...PLAN, carrier: ' ' }, 'carrier'],
  ])('refuses %s', (_what, input, field) => {
    expectRefused(A.init<ManifestDoc>(), (d) => planManifest(d, input, ctx()), { name: 'InputError', field })
  })

  it('refuses a document already initialised', () => {
    expectRefused(planned(), (d) => planManifest(d, PLAN, ctx()), { name: 'RuleError', code: 'already-created' })
  })
})

describe('depart()', () => {
  it('moves a planned manifest to departed', () => {
    expect(manifestStatus(departed())).toBe('departed')
  })

  it('refuses a manifest already departed', () => {
    expectRefused(departed(), (d) => depart(d, {}, ctx()), { name: 'RuleError', code: 'already-departed' })
  })

  it('refuses a document that is not a manifest', () => {
    expectRefused(A.from({ x: 1 }) as unknown as A.Doc<ManifestDoc>, (d) => depart(d, {}, ctx()), { name: 'RuleError', code: 'not-a-manifest' })
  })
})

describe('deliverStop()', () => {
  it('records the delivery and returns receipt movements with ids derived from the manifest line', () => {
    const [doc, posting] = deliver(departed(), delivery({ lines: [{ line: 'l1', received: 8, rejected: 2 }, { line: 'l2', received: 4 }], receivedAt: 1_699_999_999_000 }))
    expect(posting).toEqual({
      site: 'CLINIC-1',
      movements: [
        { id: 'rcv:mf-7:s1:l1', sku: 'AMOX-500', quantity: 8, reference: 'manifest mf-7 stop s1 line l1' },
        { id: 'rcv:mf-7:s1:l2', sku: 'ORS-1', quantity: 4, reference: 'manifest mf-7 stop s1 line l2' },
      ],
    })
    const [stored] = doc.stops[0]!.deliveries
    expect([str(stored?.by), str(stored?.device), stored?.at, stored?.receivedAt, str(stored?.receiver)]).toEqual(['drv', 'truck-1', 1_700_000_000_000, 1_699_999_999_000, 'Nurse Achieng'])
    expect(stored?.signature).toBeInstanceOf(A.ImmutableString)
    expect(receiptPostings(doc, 's1')).toEqual([posting])
    expect(manifestStops(doc).map((s) => s.status)).toEqual(['delivered', 'pending'])
  })

  it('posts no movement for a line received 0', () => {
    const [, posting] = deliver(departed(), delivery({ lines: [{ line: 'l1', received: 0, rejected: 10 }, { line: 'l2', received: 4 }] }))
    expect(posting.movements.map((m) => m.id)).toEqual(['rcv:mf-7:s1:l2'])
  })

  it('accepts a typed name as signature', () => {
    const [doc] = deliver(departed(), delivery({ signature: 'A. Achieng' }))
    expect(str(doc.stops[0]?.deliveries[0]?.signature)).toBe('A. Achieng')
  })

  it('marks the manifest delivered once every stop is', () => {
    let [doc] = deliver(departed(), delivery())
    ;[doc] = deliver(doc, { stop: 's2', receiver: 'B', signature: 'B', lines: [{ line: 'l1', received: 6 }] })
    expect(manifestStatus(doc)).toBe('delivered')
  })

  it('refuses a manifest that has not departed', () => {
    expectRefused(planned(), (d) => deliverStop(d, delivery(), ctx()), { name: 'RuleError', code: 'not-departed' })
  })

  it('refuses a closed manifest', () => {
    const closed = change(departed(), (d) => close(d, { reason: 'road closed' }, ctx()))
    expectRefused(closed, (d) => deliverStop(d, delivery(), ctx()), { name: 'RuleError', code: 'manifest-closed' })
  })

  it('refuses a stop that is not on the manifest', () => {
    expectRefused(departed(), (d) => deliverStop(d, delivery({ stop: 's9' }), ctx()), { name: 'RuleError', code: 'unknown-stop', field: 'stop' })
  })

  it('refuses a line that is not on the stop', () => {
    const lines = [...delivery().lines, { line: 'l9', received: 1 }]
    expectRefused(departed(), (d) => deliverStop(d, delivery({ lines }), ctx()), { name: 'RuleError', code: 'unknown-line', field: 'lines.2.line' })
  })

  it('refuses a delivery that leaves out a line of the stop', () => {
    expectRefused(departed(), (d) => deliverStop(d, delivery({ lines: [{ line: 'l1', received: 10 }] }), ctx()), { name: 'RuleError', code: 'missing-line', field: 'lines' })
  })

  it('refuses a stop this replica already saw delivered', () => {
    const [doc] = deliver(departed(), delivery())
    expectRefused(doc, (d) => deliverStop(d, delivery(), ctx()), { name: 'RuleError', code: 'stop-already-delivered' })
  })

  it.each([
    ['a negative received quantity', { lines: [{ line: 'l1', received: -1 }, { line: 'l2', received: 4 }] }, 'lines.0.received'],
    ['a fractional received quantity', { lines: [{ line: 'l1', received: 1.5 }, { line: 'l2', received: 4 }] }, 'lines.0.received'],
    ['a negative rejected quantity', { lines: [{ line: 'l1', received: 1, rejected: -2 }, { line: 'l2', received: 4 }] }, 'lines.0.rejected'],
    ['a line listed twice', { lines: [{ line: 'l1', received: 1 }, { line: 'l1', received: 1 }] }, 'lines.1.line'],
    ['no receiver', { receiver: '' }, 'receiver'],
    ['a signature over 64 KB', { signature: `data:image/png;base64,iVBORw0KGgo${'A'.repeat(MAX_SIGNATURE_BYTES)}` }, 'signature'],
    ['a signature that is not a PNG', { signature: 'data:image/jpeg;base64,/9j/4AAQ' }, 'signature'],
    ['a typed signature over 200 characters', { signature: 'x'.repeat(201) }, 'signature'],
    ['an unknown field', { extra: 1 }, ''],
  ])('refuses %s', (_what, overrides, field) => {
    expectRefused(departed(), (d) => deliverStop(d, delivery(overrides), ctx()), { name: 'InputError', field })
  })
})

describe('close()', () => {
  it('closes a manifest whose stops are all delivered', () => {
    let [doc] = deliver(departed(), delivery())
    ;[doc] = deliver(doc, { stop: 's2', receiver: 'B', signature: 'B', lines: [{ line: 'l1', received: 6 }] })
    expect(manifestStatus(change(doc, (d) => close(d, {}, ctx())))).toBe('closed')
  })

  it('closes with a reason while a stop has no delivery', () => {
    expect(manifestStatus(change(departed(), (d) => close(d, { reason: 'clinic closed' }, ctx())))).toBe('closed')
  })

  it('refuses without a reason while a stop has no delivery', () => {
    expectRefused(departed(), (d) => close(d, {}, ctx()), { name: 'RuleError', code: 'reason-required', field: 'reason' })
  })

  it('refuses a manifest that has not departed, and one already closed', () => {
    expectRefused(planned(), (d) => close(d, { reason: 'r' }, ctx()), { name: 'RuleError', code: 'not-departed' })
    const closed = change(departed(), (d) => close(d, { reason: 'r' }, ctx()))
    expectRefused(closed, (d) => close(d, { reason: 'r' }, ctx()), { name: 'RuleError', code: 'manifest-closed' })
  })
})

describe('a document newer than the code', () => {
  const newer = () => A.change(departed(), (d) => { d.schema = MANIFEST_SCHEMA + 1 })
  const ops: Array<[string, (d: ManifestDoc) => void]> = [
    ['planManifest', (d) => planManifest(d, PLAN, ctx())],
    ['depart', (d) => depart(d, {}, ctx())],
    ['deliverStop', (d) => deliverStop(d, delivery(), ctx())],
    ['close', (d) => close(d, { reason: 'r' }, ctx())],
    ['decideManifestItem', (d) => decideManifestItem(d, 'stop-received-twice:mf-7:s1', { note: 'n' }, ctx())],
  ]
  it.each(ops)('is read-only for %s()', (_name, op) => {
    expectRefused(newer(), op, { name: 'ReadOnlyDocumentError' })
  })
})

/** Stop s1 delivered offline on two devices, merged. */
function receivedTwice(): A.Doc<ManifestDoc> {
  const base = departed()
  const [a] = deliver(A.clone(base), delivery(), ctx('drv', 'truck-1', 10))
  const [b] = deliver(A.clone(base), delivery({ lines: [{ line: 'l1', received: 9 }, { line: 'l2', received: 4 }] }), ctx('nurse', 'clinic-tab', 11))
  return A.merge(a, b)
}

describe('manifestReviewItems()', () => {
  it('shows nothing for a stop received once as shipped', () => {
    expect(manifestReviewItems(deliver(departed(), delivery())[0])).toEqual([])
  })

  it('shows one discrepancy per line where received differs from shipped or goods were rejected', () => {
    const [doc] = deliver(departed(), delivery({ lines: [{ line: 'l1', received: 8, rejected: 2 }, { line: 'l2', received: 4, rejected: 1 }] }))
    const items = manifestReviewItems(doc)
    expect(items.map((i) => i.id)).toEqual(['delivery-discrepancy:mf-7:s1:l1', 'delivery-discrepancy:mf-7:s1:l2'])
    expect(items[0]).toMatchObject({ kind: 'delivery-discrepancy', doc: 'manifest', status: 'open', details: { sku: 'AMOX-500', shipped: 10, received: 8, rejected: 2 } })
  })

  it('flags over-receipt', () => {
    const [doc] = deliver(departed(), delivery({ lines: [{ line: 'l1', received: 12 }, { line: 'l2', received: 4 }] }))
    expect(manifestReviewItems(doc).map((i) => i.details.received)).toEqual([12])
  })

  it('keeps both deliveries of a stop received on two devices, with the same movement ids, and flags it', () => {
    const doc = receivedTwice()
    expect(doc.stops[0]?.deliveries).toHaveLength(2)
    const postings = receiptPostings(doc, 's1')
    expect(postings.map((p) => p.movements.map((m) => m.id))).toEqual([['rcv:mf-7:s1:l1', 'rcv:mf-7:s1:l2'], ['rcv:mf-7:s1:l1', 'rcv:mf-7:s1:l2']])
    const items = manifestReviewItems(doc)
    expect(items.map((i) => i.id)).toEqual(['delivery-discrepancy:mf-7:s1:l1', 'stop-received-twice:mf-7:s1'])
    expect(items[0]?.details).toMatchObject({ received: 10, deliveries: [{ by: 'drv', received: 10 }, { by: 'nurse', received: 9 }] })
  })
})

describe('decideManifestItem()', () => {
  const id = 'stop-received-twice:mf-7:s1'

  it('records a decision with its compensating movements and resolves the item', () => {
    const doc = change(receivedTwice(), (d) => decideManifestItem(d, id, { note: 'reversed the second receipt', movements: ['adj-1'] }, ctx('mgr', 'pc', 50)))
    const item = manifestReviewItems(doc).find((i) => i.id === id)
    expect(item).toMatchObject({ status: 'resolved', decision: { by: 'mgr', at: 50, note: 'reversed the second receipt', movements: ['adj-1'] } })
    expect(doc.stops[0]?.deliveries).toHaveLength(2)
  })

  it('refuses an item that does not exist', () => {
    expectRefused(receivedTwice(), (d) => decideManifestItem(d, 'stop-received-twice:mf-7:s2', { note: 'n' }, ctx()), { name: 'RuleError', code: 'unknown-review-item' })
  })

  it('refuses an item already decided', () => {
    const doc = change(receivedTwice(), (d) => decideManifestItem(d, id, { note: 'first' }, ctx()))
    expectRefused(doc, (d) => decideManifestItem(d, id, { note: 'again' }, ctx()), { name: 'ConflictError' })
  })

  it.each([{ note: '' }, { note: 'n', movements: ['bad id'] }])('refuses input %j', (input) => {
    expectRefused(receivedTwice(), (d) => decideManifestItem(d, id, input, ctx()), { name: 'InputError' })
  })
})

describe('deliverStop() receivedAt', () => {
  const NOW = ctx().at
  const DAY = 86_400_000
  const iso = (ms: number) => new Date(ms).toISOString()

  it.each([NOW + DAY, NOW - 400 * DAY, NOW - 3 * DAY])('accepts a receivedAt within 400 days before and 24 hours after the node clock (%d)', (receivedAt) => {
    const [doc] = deliver(departed(), delivery({ receivedAt }))
    expect(doc.stops[0]?.deliveries[0]?.receivedAt).toBe(receivedAt)
  })

  it.each([
    ['9e15', 9e15],
    ['24 hours and a millisecond ahead', NOW + DAY + 1],
    ['400 days and a millisecond back', NOW - 400 * DAY - 1],
  ])('refuses a receivedAt %s, naming the field and saying the window', (_what, receivedAt) => {
    const error = expectRefused(departed(), (d) => deliverStop(d, delivery({ receivedAt }), ctx()), { name: 'InputError', field: 'receivedAt' })
    expect(error.message).toMatch(/^receivedAt: must be no more than 400 days before and 24 hours after this site's clock/)
    expect(error.message).toContain(`from ${iso(NOW - 400 * DAY)} to ${iso(NOW + DAY)}`)
  })
})

describe('ids named like Object.prototype members', () => {
  const NAMES = ['constructor', 'toString', 'hasOwnProperty', 'valueOf'] as const

  it.each(NAMES)('plans, delivers and reviews a manifest, stop, line and SKU called %s', (name) => {
    const other = NAMES.find((n) => n !== name)!
    const plan = {
      id: name,
      from: 'HUB-1',
      carrier: 'Truck',
      stops: [
        { id: name, site: 'CLINIC-1', lines: [{ id: name, sku: name, shipped: 5 }, { id: 'other', sku: 'ORS-1', shipped: 1 }] },
        { id: 'other', site: 'CLINIC-2', lines: [{ id: name, sku: 'ORS-1', shipped: 2 }] },
      ],
    }
    const base = change(change(A.init<ManifestDoc>(), (d) => planManifest(d, plan, ctx('hub', 'hub-pc'))), (d) => depart(d, {}, ctx()))
    const input = { stop: name, receiver: 'R', signature: 'R', lines: [{ line: name, received: 4, rejected: 1 }, { line: 'other', received: 1 }] }
    const [a, posting] = deliver(A.clone(base), input, ctx('drv', 'truck-1', 10))
    expect(posting.movements).toEqual([
      { id: `rcv:${name}:${name}:${name}`, sku: name, quantity: 4, reference: `manifest ${name} stop ${name} line ${name}` },
      { id: `rcv:${name}:${name}:other`, sku: 'ORS-1', quantity: 1, reference: `manifest ${name} stop ${name} line other` },
    ])
    const [b] = deliver(A.clone(base), { ...input, lines: [{ line: name, received: 5 }, { line: 'other', received: 1 }] }, ctx('nurse', 'tab', 11))
    const merged = A.merge(a, b)
    expect(receiptPostings(merged, name)).toHaveLength(2)
    expect(receiptPostings(merged, other)).toEqual([])
    expect(manifestReviewItems(merged).map((i) => i.id)).toEqual([`delivery-discrepancy:${name}:${name}:${name}`, `stop-received-twice:${name}:${name}`])
    expect(manifestReviewItems(merged)[0]?.details).toMatchObject({ received: 4, rejected: 1, deliveries: [{ received: 4, rejected: 1 }, { received: 5, rejected: 0 }] })
    // A stop or line of that name that the manifest does not have is refused as unknown, not found on Object.prototype.
    expectRefused(base, (d) => deliverStop(d, { ...input, stop: other }, ctx()), { name: 'RuleError', code: 'unknown-stop' })
    expectRefused(base, (d) => deliverStop(d, { ...input, lines: [...input.lines, { line: other, received: 1 }] }, ctx()), { name: 'RuleError', code: 'unknown-line', field: 'lines.2.line' })
  })

  it.each([
    ['manifest id', { ...PLAN, id: '__proto__' }, 'id'],
    ['stop id', { ...PLAN, stops: [{ ...PLAN.stops[0]!, id: '__proto__' }] }, 'stops.0.id'],
    ['line id', { ...PLAN, stops: [{ ...PLAN.stops[0]!, lines: [{ id: '__proto__', sku: 'A', shipped: 1 }] }] }, 'stops.0.lines.0.id'],
    ['SKU', { ...PLAN, stops: [{ ...PLAN.stops[0]!, lines: [{ id: 'l1', sku: '__proto__', shipped: 1 }] }] }, 'stops.0.lines.0.sku'],
    ['site', { ...PLAN, stops: [{ ...PLAN.stops[0]!, site: '__proto__' }] }, 'stops.0.site'],
  ])('refuses __proto__ as a %s: not a valid id', (_what, input, field) => {
    expectRefused(A.init<ManifestDoc>(), (d) => planManifest(d, input, ctx()), { name: 'InputError', field })
  })
})

// ---- convergence -----------------------------------------------------------------------------

type Action =
  | { op: 'deliver'; stop: 's1' | 's2' | 's9'; received: number; rejected: number }
  | { op: 'close'; reason: boolean }
  | { op: 'decide' }
type Step = { kind: 'act'; replica: number; at: number; action: Action } | { kind: 'sync'; into: number; from: number }

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('deliver' as const), stop: fc.constantFrom('s1' as const, 's2' as const, 's9' as const), received: fc.integer({ min: -1, max: 7 }), rejected: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('close' as const), reason: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('decide' as const) }) },
)

/** Runs an action; returns the receipt posting of a delivery. */
function run(d: ManifestDoc, a: Action, c: ChangeContext): ReceiptPosting | undefined {
  switch (a.op) {
    case 'deliver': {
      const lines = a.stop === 's1' ? [{ line: 'l1', received: a.received, rejected: a.rejected }, { line: 'l2', received: 4 }] : [{ line: 'l1', received: a.received, rejected: a.rejected }]
      return deliverStop(d, { stop: a.stop, receiver: 'R', signature: 'R', lines }, c)
    }
    case 'close':
      close(d, a.reason ? { reason: 'back at hub' } : {}, c)
      return undefined
    case 'decide':
      decideManifestItem(d, manifestReviewItems(d).find((i) => i.status === 'open')?.id ?? 'none', { note: 'seen' }, c)
      return undefined
  }
}

/**
 * The scenario that once lost a decision (STOCKMESH_SEED=1080454315 before the generators changed):
 * two devices deliver stop s1 apart, a third catches up with one of them, all three decide the same
 * item apart, then everyone merges. Kept as an example in every actor order, so it runs first on
 * every seed whatever the generators become.
 */
const FIRST_LOSS = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]].map((rank) => ({
  n: 3,
  steps: [
    { kind: 'act', replica: 1, at: 1, action: { op: 'deliver', stop: 's1', received: 0, rejected: 0 } },
    { kind: 'act', replica: 0, at: 1, action: { op: 'deliver', stop: 's1', received: 0, rejected: 0 } },
    { kind: 'sync', into: 2, from: 0 },
    { kind: 'act', replica: 0, at: 1, action: { op: 'decide' } },
    { kind: 'act', replica: 1, at: 1, action: { op: 'decide' } },
    { kind: 'act', replica: 2, at: 1, action: { op: 'decide' } },
    { kind: 'sync', into: 1, from: 0 },
  ] as Step[],
  plan: { final: [[[0, 2, 1], []], [[1, 2, 0], []], [[2, 0, 1], []]] as Array<[number[], number[]]>, targets: [0, 1, 2] },
  actors: rank.map((r) => actorFor(r, new Uint8Array(15))),
  deciders: [] as Array<{ replica: number; from: number[] }>,
}))

describe('a manifest delivered offline on several devices', () => {
  it('converges on every replica with every delivery and decision kept and each double receipt flagged', async () => {
    const scenario = fc.integer({ min: 3, max: 5 }).chain((n) =>
      fc.record({
        n: fc.constant(n),
        // Offline first (so devices deliver the same stop concurrently), then acts and syncs interleave.
        steps: fc
          .tuple(
            fc.array(fc.record({ kind: fc.constant('act' as const), replica: fc.nat(n - 1), at: fc.integer({ min: 1, max: 5 }), action }), { minLength: 2, maxLength: 6 }),
            fc.array(
              fc.oneof(
                { weight: 2, arbitrary: fc.record({ kind: fc.constant('act' as const), replica: fc.nat(n - 1), at: fc.integer({ min: 1, max: 5 }), action }) },
                { weight: 1, arbitrary: fc.record({ kind: fc.constant('sync' as const), into: fc.nat(n - 1), from: fc.nat(n - 1) }) },
              ),
              { maxLength: 10 },
            ),
          )
          .map(([offline, mixed]): Step[] => [...offline, ...mixed]),
        plan: mergePlanArb(n),
        // Which actor wins an Automerge conflict depends on actor ids: part of the sample, so a seed replays exactly.
        actors: actorsArb(n),
        // Replicas that catch up with some others, then decide the first open item while apart:
        // several concurrent decisions on one item, the case that once lost one.
        deciders: fc.array(fc.record({ replica: fc.nat(n - 1), from: fc.subarray([...Array(n).keys()]) }), { maxLength: n }),
      }),
    )
    await checkProperty(
      'manifest convergence',
      fc.property(scenario, ({ n, steps, plan, actors, deciders }) => {
        const base = departed()
        let replicas = Array.from({ length: n }, (_, i) => A.clone(base, { actor: actors[i]! }))
        const delivered: string[] = []
        const posted: string[][] = []
        const decided = new Map<string, number>()
        const catchUp: Step[] = deciders.flatMap(({ replica, from }) => from.map((f): Step => ({ kind: 'sync', into: replica, from: f })))
        const decide: Step[] = deciders.map(({ replica }) => ({ kind: 'act', replica, at: 6, action: { op: 'decide' } }))
        for (const step of [...steps, ...catchUp, ...decide]) {
          if (step.kind === 'sync') {
            // Merging a document object into itself panics in Automerge; a peer never does that.
            if (step.into !== step.from) replicas[step.into] = A.merge(replicas[step.into]!, replicas[step.from]!)
            continue
          }
          const before = replicas[step.replica]!
          let refused = false
          let posting: ReceiptPosting | undefined
          let decidedId: string | undefined
          const after = A.change(before, (d) => {
            try {
              if (step.action.op === 'decide') decidedId = manifestReviewItems(d).find((i) => i.status === 'open')?.id
              posting = run(d, step.action, ctx('drv', `dev-${step.replica}`, step.at))
            } catch {
              refused = true
            }
          })
          if (refused) expect(A.getHeads(after)).toEqual(A.getHeads(before))
          else if (step.action.op === 'deliver') {
            delivered.push(`${step.action.stop} dev-${step.replica} ${step.at}`)
            posted.push(posting!.movements.map((m) => m.id))
          } else if (step.action.op === 'decide') decided.set(decidedId!, (decided.get(decidedId!) ?? 0) + 1)
          replicas[step.replica] = after
        }
        replicas = mergeByPlan(replicas, plan)
        const [first, ...rest] = replicas
        for (const r of rest) {
          expect(A.getHeads(r)).toEqual(A.getHeads(first!))
          expect(manifestStatus(r)).toBe(manifestStatus(first!))
          expect(manifestStops(r)).toEqual(manifestStops(first!))
          expect(manifestReviewItems(r)).toEqual(manifestReviewItems(first!))
        }
        for (const r of replicas) {
          const stored = r.stops.flatMap((s) => s.deliveries.map((d) => `${str(s.id)} ${str(d.device)} ${d.at}`))
          expect(stored.sort()).toEqual([...delivered].sort())
          const ids = r.stops.flatMap((s) => receiptPostings(r, str(s.id)).map((p) => p.movements.map((m) => m.id)))
          expect(ids.map(String).sort()).toEqual(posted.map(String).sort())
          const twice = r.stops.filter((s) => s.deliveries.length > 1).map((s) => `stop-received-twice:mf-7:${str(s.id)}`)
          expect(manifestReviewItems(r).filter((i) => i.kind === 'stop-received-twice').map((i) => i.id).sort()).toEqual(twice.sort())
          expectEveryDecisionKept(r.decisions, manifestReviewItems(r), decided)
        }
      }),
      { numRuns: 150, examples: FIRST_LOSS.map((example) => [example] as [typeof example]) },
    )
  }, 300_000)
})
