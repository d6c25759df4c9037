import * as A from '@automerge/automerge'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  approve,
  cancel,
  createOrder,
  decideOrderItem,
  fulfil,
  orderLines,
  orderReviewItems,
  orderStatus,
  reject,
  removeLine,
  setLine,
  submit,
} from '../../src/docs/order.ts'
import type { ChangeContext } from '../../src/schema/changeContext.ts'
import type { DeviceId, UserId } from '../../src/schema/ids.ts'
import type { OrderDoc } from '../../src/schema/order.ts'
import { imm, str } from '../../src/schema/strings.ts'
import { expectRefused } from '../helpers/refusal.ts'
import { actorsArb, checkProperty } from '../helpers/seed.ts'
import { expectEveryDecisionKept } from '../helpers/decisions.ts'
import { mergeByPlan, mergePlanArb } from '../helpers/mergeOrders.ts'

function ctx(user = 'ana', device = 'tab-1', at = 1_700_000_000_000): ChangeContext {
  return { user: user as UserId, device: device as DeviceId, at }
}

function change(doc: A.Doc<OrderDoc>, op: (d: OrderDoc) => void): A.Doc<OrderDoc> {
  return A.change(doc, op)
}

/** A draft order CLINIC-1 → WH-1 with two lines. */
function makeOrder(lines = [{ sku: 'AMOX-500', requested: 10 }, { sku: 'ORS-1', requested: 4 }]): A.Doc<OrderDoc> {
  return change(A.init<OrderDoc>(), (d) => createOrder(d, { id: 'ord-1', from: 'CLINIC-1', to: 'WH-1', lines }, ctx()))
}

const submitted = () => change(makeOrder(), (d) => submit(d, {}, ctx('ana', 'tab-1', 1_700_000_001_000)))
const approved = () => change(submitted(), (d) => approve(d, {}, ctx('mgr', 'pc-1', 1_700_000_002_000)))

describe('createOrder()', () => {
  it('initialises an empty document as a draft order with its lines', () => {
    const doc = makeOrder()
    expect(orderStatus(doc)).toBe('draft')
    expect(str(doc.id)).toBe('ord-1')
    expect(str(doc.from)).toBe('CLINIC-1')
    expect(str(doc.to)).toBe('WH-1')
    expect(doc.events).toEqual([])
    expect(doc.decisions).toEqual({})
    expect(orderLines(doc)).toEqual([
      { sku: 'AMOX-500', requested: 10, approved: null },
      { sku: 'ORS-1', requested: 4, approved: null },
    ])
  })

  it('stores every string as an ImmutableString', () => {
    const doc = change(makeOrder(), (d) => submit(d, { reason: 'monthly' }, ctx()))
    for (const value of [doc.kind, doc.id, doc.from, doc.to, doc.createdBy, doc.lines['ORS-1']?.sku, doc.events[0]?.to, doc.events[0]?.reason]) {
      expect(value).toBeInstanceOf(A.ImmutableString)
    }
  })

  it('refuses the same site as requester and supplier', () => {
    expectRefused(A.init<OrderDoc>(), (d) => createOrder(d, { id: 'o', from: 'S', to: 'S' }, ctx()), { name: 'InputError', field: 'to' })
  })

  it('refuses a SKU listed twice', () => {
    const lines = [{ sku: 'A', requested: 1 }, { sku: 'A', requested: 2 }]
    expectRefused(A.init<OrderDoc>(), (d) => createOrder(d, { id: 'o', from: 'S', to: 'T', lines }, ctx()), { name: 'InputError', field: 'lines.1.sku' })
  })

  it('refuses a malformed order id', () => {
    expectRefused(A.init<OrderDoc>(), (d) => createOrder(d, { id: 'bad id', from: 'S', to: 'T' }, ctx()), { name: 'InputError', field: 'id' })
  })

  it('refuses a document that is already an order', () => {
    expectRefused(makeOrder(), (d) => createOrder(d, { id: 'ord-2', from: 'S', to: 'T' }, ctx()), { name: 'RuleError', code: 'already-created' })
  })

  it('refuses a malformed context', () => {
    expectRefused(A.init<OrderDoc>(), (d) => createOrder(d, { id: 'o', from: 'S', to: 'T' }, { ...ctx(), user: '' as UserId }), { name: 'InputError', field: 'ctx.user' })
  })
})

describe('setLine()', () => {
  it('adds a line and changes the requested quantity of an existing one', () => {
    let doc = change(makeOrder(), (d) => setLine(d, { sku: 'ZINC-20', requested: 3 }, ctx()))
    doc = change(doc, (d) => setLine(d, { sku: 'AMOX-500', requested: 12 }, ctx()))
    expect(orderLines(doc).map((l) => [l.sku, l.requested])).toEqual([['AMOX-500', 12], ['ORS-1', 4], ['ZINC-20', 3]])
  })

  it.each([0, -1, 1.5, '3'])('refuses a requested quantity of %j', (requested) => {
    expectRefused(makeOrder(), (d) => setLine(d, { sku: 'A', requested }, ctx()), { name: 'InputError', field: 'requested' })
  })

  it('refuses an unknown field', () => {
    expectRefused(makeOrder(), (d) => setLine(d, { sku: 'A', requested: 1, approved: 1 }, ctx()), { name: 'InputError' })
  })

  it('refuses an order that is no longer a draft', () => {
    expectRefused(submitted(), (d) => setLine(d, { sku: 'A', requested: 1 }, ctx()), { name: 'RuleError', code: 'not-draft' })
  })
})

describe('removeLine()', () => {
  it('removes a line', () => {
    const doc = change(makeOrder(), (d) => removeLine(d, { sku: 'ORS-1' }, ctx()))
    expect(orderLines(doc).map((l) => l.sku)).toEqual(['AMOX-500'])
  })

  it('refuses a SKU that is not on the order', () => {
    expectRefused(makeOrder(), (d) => removeLine(d, { sku: 'NOPE' }, ctx()), { name: 'RuleError', code: 'unknown-line', field: 'sku' })
  })

  it('refuses an order that is no longer a draft', () => {
    expectRefused(submitted(), (d) => removeLine(d, { sku: 'ORS-1' }, ctx()), { name: 'RuleError', code: 'not-draft' })
  })
})

describe('submit()', () => {
  it('moves a draft to submitted and records who, where and when', () => {
    const doc = submitted()
    expect(orderStatus(doc)).toBe('submitted')
    const [event] = doc.events
    expect([str(event?.from), str(event?.to), str(event?.by), str(event?.device), event?.at]).toEqual(['draft', 'submitted', 'ana', 'tab-1', 1_700_000_001_000])
    expect(event?.lines).toEqual({ 'AMOX-500': 10, 'ORS-1': 4 })
  })

  it('refuses an order with no lines', () => {
    expectRefused(A.change(A.init<OrderDoc>(), (d) => createOrder(d, { id: 'o', from: 'S', to: 'T' }, ctx())), (d) => submit(d, {}, ctx()), {
      name: 'RuleError',
      code: 'no-lines',
    })
  })

  it('refuses an order already submitted', () => {
    expectRefused(submitted(), (d) => submit(d, {}, ctx()), { name: 'RuleError', code: 'transition-not-allowed' })
  })

  it('refuses a document that is not an order', () => {
    expectRefused(A.from({ x: 1 }) as unknown as A.Doc<OrderDoc>, (d) => submit(d, {}, ctx()), { name: 'RuleError', code: 'not-an-order' })
  })
})

describe('approve()', () => {
  it('approves every line as requested by default', () => {
    const doc = approved()
    expect(orderStatus(doc)).toBe('approved')
    expect(orderLines(doc).map((l) => l.approved)).toEqual([10, 4])
  })

  it('approves less than requested, and 0 for a refused line', () => {
    const doc = change(submitted(), (d) => approve(d, { lines: [{ sku: 'AMOX-500', approved: 6 }, { sku: 'ORS-1', approved: 0 }] }, ctx('mgr')))
    expect(orderLines(doc)).toEqual([
      { sku: 'AMOX-500', requested: 10, approved: 6 },
      { sku: 'ORS-1', requested: 4, approved: 0 },
    ])
  })

  it('refuses more than requested', () => {
    expectRefused(submitted(), (d) => approve(d, { lines: [{ sku: 'ORS-1', approved: 5 }] }, ctx('mgr')), {
      name: 'RuleError',
      code: 'approved-exceeds-requested',
      field: 'lines.0.approved',
    })
  })

  it('refuses a SKU that is not on the order', () => {
    expectRefused(submitted(), (d) => approve(d, { lines: [{ sku: 'NOPE', approved: 1 }] }, ctx('mgr')), { name: 'RuleError', code: 'unknown-line', field: 'lines.0.sku' })
  })

  it.each([-1, 2.5])('refuses an approved quantity of %j', (quantity) => {
    expectRefused(submitted(), (d) => approve(d, { lines: [{ sku: 'ORS-1', approved: quantity }] }, ctx('mgr')), { name: 'InputError', field: 'lines.0.approved' })
  })

  it('refuses a draft', () => {
    expectRefused(makeOrder(), (d) => approve(d, {}, ctx('mgr')), { name: 'RuleError', code: 'transition-not-allowed' })
  })
})

describe('reject()', () => {
  it('rejects a submitted order with a reason', () => {
    const doc = change(submitted(), (d) => reject(d, { reason: 'budget' }, ctx('mgr')))
    expect(orderStatus(doc)).toBe('rejected')
    expect(str(doc.events.at(-1)?.reason)).toBe('budget')
  })

  it.each([{}, { reason: '  ' }])('refuses without a reason (%j)', (input) => {
    expectRefused(submitted(), (d) => reject(d, input, ctx('mgr')), { name: 'InputError', field: 'reason' })
  })

  it('refuses an approved order', () => {
    expectRefused(approved(), (d) => reject(d, { reason: 'late' }, ctx('mgr')), { name: 'RuleError', code: 'transition-not-allowed' })
  })
})

describe('fulfil()', () => {
  it('fulfils an approved order', () => {
    expect(orderStatus(change(approved(), (d) => fulfil(d, {}, ctx('wh'))))).toBe('fulfilled')
  })

  it('refuses a submitted order', () => {
    expectRefused(submitted(), (d) => fulfil(d, {}, ctx('wh')), { name: 'RuleError', code: 'transition-not-allowed' })
  })
})

describe('cancel()', () => {
  it.each([['draft', makeOrder], ['submitted', submitted], ['approved', approved]] as const)('cancels a %s order with a reason', (_status, make) => {
    expect(orderStatus(change(make(), (d) => cancel(d, { reason: 'not needed' }, ctx())))).toBe('cancelled')
  })

  it('refuses without a reason', () => {
    expectRefused(makeOrder(), (d) => cancel(d, {}, ctx()), { name: 'InputError', field: 'reason' })
  })

  it('refuses a fulfilled, rejected or cancelled order', () => {
    const fulfilled = change(approved(), (d) => fulfil(d, {}, ctx('wh')))
    const rejected = change(submitted(), (d) => reject(d, { reason: 'no' }, ctx('mgr')))
    const cancelled = change(makeOrder(), (d) => cancel(d, { reason: 'no' }, ctx()))
    for (const doc of [fulfilled, rejected, cancelled]) {
      expectRefused(doc, (d) => cancel(d, { reason: 'again' }, ctx()), { name: 'RuleError', code: 'transition-not-allowed' })
    }
  })
})

describe('a document newer than the code', () => {
  const newer = () => A.change(submitted(), (d) => { d.schema = 99 })
  const ops: Array<[string, (d: OrderDoc) => void]> = [
    ['createOrder', (d) => createOrder(d, { id: 'o', from: 'S', to: 'T' }, ctx())],
    ['setLine', (d) => setLine(d, { sku: 'A', requested: 1 }, ctx())],
    ['removeLine', (d) => removeLine(d, { sku: 'ORS-1' }, ctx())],
    ['submit', (d) => submit(d, {}, ctx())],
    ['approve', (d) => approve(d, {}, ctx())],
    ['reject', (d) => reject(d, { reason: 'r' }, ctx())],
    ['fulfil', (d) => fulfil(d, {}, ctx())],
    ['cancel', (d) => cancel(d, { reason: 'r' }, ctx())],
    ['decideOrderItem', (d) => decideOrderItem(d, 'order-status-conflict:ord-1:draft', { note: 'n' }, ctx())],
  ]
  it.each(ops)('is read-only for %s()', (_name, op) => {
    expectRefused(newer(), op, { name: 'ReadOnlyDocumentError' })
  })
})

/** Two replicas of `base`, changed apart, then merged both ways. */
function concurrently(base: A.Doc<OrderDoc>, left: (d: OrderDoc) => void, right: (d: OrderDoc) => void): [A.Doc<OrderDoc>, A.Doc<OrderDoc>] {
  const a = change(A.clone(base), left)
  const b = change(A.clone(base), right)
  return [A.merge(A.clone(a), b), A.merge(A.clone(b), a)]
}

describe('orderStatus()', () => {
  it('lets a concurrent cancel win over an approval', () => {
    const [a, b] = concurrently(submitted(), (d) => approve(d, {}, ctx('mgr', 'pc-1', 5)), (d) => cancel(d, { reason: 'dup' }, ctx('ana', 'tab-1', 9)))
    expect([orderStatus(a), orderStatus(b)]).toEqual(['cancelled', 'cancelled'])
    expect(a.events).toHaveLength(3)
  })

  it('lets a rejection win over a concurrent approval', () => {
    const [a, b] = concurrently(submitted(), (d) => approve(d, {}, ctx('m1', 'pc-1', 5)), (d) => reject(d, { reason: 'no' }, ctx('m2', 'pc-2', 9)))
    expect([orderStatus(a), orderStatus(b)]).toEqual(['rejected', 'rejected'])
  })

  it('lets a recorded fulfilment win over a concurrent cancel', () => {
    const [a, b] = concurrently(approved(), (d) => cancel(d, { reason: 'late' }, ctx('ana', 'tab-1', 5)), (d) => fulfil(d, {}, ctx('wh', 'wh-1', 9)))
    expect([orderStatus(a), orderStatus(b)]).toEqual(['fulfilled', 'fulfilled'])
  })

  it('ignores events that left a status the order never reached on the path that counts', () => {
    const [a, b] = concurrently(
      makeOrder(),
      (d) => {
        submit(d, {}, ctx('ana', 'tab-1', 5))
        approve(d, {}, ctx('mgr', 'pc-1', 6))
      },
      (d) => cancel(d, { reason: 'wrong site' }, ctx('ben', 'tab-2', 9)),
    )
    expect([orderStatus(a), orderStatus(b)]).toEqual(['cancelled', 'cancelled'])
    expect(a.events).toHaveLength(3)
  })

  it('takes the earliest of two concurrent approvals, with its quantities', () => {
    const [a, b] = concurrently(
      submitted(),
      (d) => approve(d, { lines: [{ sku: 'ORS-1', approved: 1 }] }, ctx('m2', 'pc-2', 7)),
      (d) => approve(d, { lines: [{ sku: 'ORS-1', approved: 2 }] }, ctx('m1', 'pc-1', 7)),
    )
    // Same time: 'm1' sorts before 'm2'.
    expect(orderLines(a)).toEqual(orderLines(b))
    expect(orderLines(a).find((l) => l.sku === 'ORS-1')?.approved).toBe(2)
  })

  it('keeps the submitted lines when a line was edited offline during submission', () => {
    const [a, b] = concurrently(makeOrder(), (d) => submit(d, {}, ctx('ana', 'tab-1', 5)), (d) => setLine(d, { sku: 'ORS-1', requested: 99 }, ctx('ben', 'tab-2', 6)))
    expect(orderLines(a)).toEqual(orderLines(b))
    expect(orderLines(a).find((l) => l.sku === 'ORS-1')?.requested).toBe(4)
  })

  it('ignores an event with a transition the rules do not allow', () => {
    const doc = A.change(makeOrder(), (d) => {
      d.events.push({ from: imm('draft'), to: imm('fulfilled'), by: imm('x'), device: imm('y'), at: 1 })
    })
    expect(orderStatus(doc)).toBe('draft')
    expect(orderReviewItems(doc)).toEqual([])
  })
})

describe('orderReviewItems()', () => {
  it('shows nothing for an order changed on one replica', () => {
    expect(orderReviewItems(change(approved(), (d) => fulfil(d, {}, ctx('wh'))))).toEqual([])
  })

  it('shows nothing when two replicas made the same transition', () => {
    const [a] = concurrently(makeOrder(), (d) => submit(d, {}, ctx('ana', 'tab-1', 5)), (d) => submit(d, {}, ctx('ben', 'tab-2', 6)))
    expect(orderStatus(a)).toBe('submitted')
    expect(orderReviewItems(a)).toEqual([])
  })

  it('shows a conflict when two events left the same status for different targets', () => {
    const [a, b] = concurrently(submitted(), (d) => approve(d, {}, ctx('mgr', 'pc-1', 5)), (d) => cancel(d, { reason: 'dup' }, ctx('ana', 'tab-1', 9)))
    const items = orderReviewItems(a)
    expect(items).toEqual(orderReviewItems(b))
    expect(items).toHaveLength(1)
    const [item] = items
    expect(item).toMatchObject({ id: 'order-status-conflict:ord-1:submitted', kind: 'order-status-conflict', doc: 'order', status: 'open' })
    expect(item?.details).toMatchObject({ from: 'submitted', status: 'cancelled', kept: { to: 'cancelled', by: 'ana', reason: 'dup' } })
    expect((item?.details.events as unknown[]).length).toBe(2)
  })

  it('shows a conflict when concurrent approvals differ in quantities', () => {
    const [a] = concurrently(
      submitted(),
      (d) => approve(d, { lines: [{ sku: 'ORS-1', approved: 1 }] }, ctx('m1', 'pc-1', 5)),
      (d) => approve(d, {}, ctx('m2', 'pc-2', 6)),
    )
    expect(orderReviewItems(a).map((i) => i.id)).toEqual(['order-status-conflict:ord-1:submitted'])
  })
})

describe('decideOrderItem()', () => {
  const conflicted = () => concurrently(submitted(), (d) => approve(d, {}, ctx('mgr', 'pc-1', 5)), (d) => cancel(d, { reason: 'dup' }, ctx('ana', 'tab-1', 9)))[0]
  const id = 'order-status-conflict:ord-1:submitted'

  it('records a decision and resolves the item, keeping every event', () => {
    const doc = change(conflicted(), (d) => decideOrderItem(d, id, { note: 'cancel stands; reorder next month' }, ctx('boss', 'pc-9', 20)))
    const [item] = orderReviewItems(doc)
    expect(item?.status).toBe('resolved')
    expect(item?.decision).toEqual({ by: 'boss', at: 20, note: 'cancel stands; reorder next month', movements: [] })
    expect(doc.events).toHaveLength(3)
    expect(orderStatus(doc)).toBe('cancelled')
  })

  it('refuses an item that does not exist', () => {
    expectRefused(conflicted(), (d) => decideOrderItem(d, 'order-status-conflict:ord-1:draft', { note: 'n' }, ctx()), { name: 'RuleError', code: 'unknown-review-item', field: 'itemId' })
  })

  it('refuses an item already decided', () => {
    const doc = change(conflicted(), (d) => decideOrderItem(d, id, { note: 'first' }, ctx()))
    expectRefused(doc, (d) => decideOrderItem(d, id, { note: 'second' }, ctx()), { name: 'ConflictError' })
  })

  it.each([{}, { note: '' }, { note: 'x', movements: [] }])('refuses input %j', (input) => {
    expectRefused(conflicted(), (d) => decideOrderItem(d, id, input, ctx()), { name: 'InputError' })
  })

  it('keeps both decisions made offline on two replicas', () => {
    const [a, b] = concurrently(conflicted(), (d) => decideOrderItem(d, id, { note: 'A' }, ctx('u1', 'd1', 30)), (d) => decideOrderItem(d, id, { note: 'B' }, ctx('u2', 'd2', 31)))
    expect(orderReviewItems(a)).toEqual(orderReviewItems(b))
    const [item] = orderReviewItems(a)
    expect(item?.status).toBe('resolved')
    expect((item?.details.decisions as Array<{ note: string }>).map((d) => d.note)).toEqual(['A', 'B'])
  })
})

// ---- convergence -----------------------------------------------------------------------------

type Action =
  | { op: 'submit' | 'fulfil' }
  | { op: 'approve'; ors: number }
  | { op: 'reject' | 'cancel'; reason: string }
  | { op: 'setLine'; sku: string; requested: number }
  | { op: 'removeLine'; sku: string }
  | { op: 'decide' }
type Step = { kind: 'act'; replica: number; user: number; at: number; action: Action } | { kind: 'sync'; into: number; from: number }

const sku = fc.constantFrom('AMOX-500', 'ORS-1', 'ZINC-20')
// Weighted towards transitions so that most runs leave draft and many conflict.
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('submit' as const) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('approve' as const), ors: fc.integer({ min: -1, max: 5 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('fulfil' as const) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constantFrom('reject' as const, 'cancel' as const), reason: fc.constantFrom('', 'stock out', 'duplicate') }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('setLine' as const), sku, requested: fc.integer({ min: -1, max: 9 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('removeLine' as const), sku }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('decide' as const) }) },
)

function run(d: OrderDoc, a: Action, c: ChangeContext): void {
  switch (a.op) {
    case 'submit': return submit(d, {}, c)
    case 'fulfil': return fulfil(d, {}, c)
    case 'approve': return approve(d, { lines: [{ sku: 'ORS-1', approved: a.ors }] }, c)
    case 'reject': return reject(d, { reason: a.reason }, c)
    case 'cancel': return cancel(d, { reason: a.reason }, c)
    case 'setLine': return setLine(d, { sku: a.sku, requested: a.requested }, c)
    case 'removeLine': return removeLine(d, { sku: a.sku }, c)
    case 'decide': return decideOrderItem(d, orderReviewItems(d).find((i) => i.status === 'open')?.id ?? 'none', { note: 'seen' }, c)
  }
}

const act = (n: number): fc.Arbitrary<Step> =>
  fc.record({ kind: fc.constant('act' as const), replica: fc.nat(n - 1), user: fc.nat(2), at: fc.integer({ min: 1, max: 6 }), action })
const sync = (n: number): fc.Arbitrary<Step> => fc.record({ kind: fc.constant('sync' as const), into: fc.nat(n - 1), from: fc.nat(n - 1) })

const eventKey = (e: OrderDoc['events'][number]) => `${str(e.from)}>${str(e.to)} ${str(e.by)} ${str(e.device)} ${e.at}`

describe('orders edited offline on several replicas', () => {
  it('converge to the same heads, status and review items, losing no event or decision', async () => {
    const scenario = fc.integer({ min: 3, max: 5 }).chain((n) =>
      fc.record({
        n: fc.constant(n),
        start: fc.constantFrom(makeOrder, submitted, approved),
        // First every replica works offline (concurrent transitions), then acts and syncs interleave.
        steps: fc
          .tuple(
            fc.array(act(n), { maxLength: 8 }),
            fc.array(fc.oneof({ weight: 3, arbitrary: act(n) }, { weight: 1, arbitrary: sync(n) }), { maxLength: 14 }),
          )
          .map(([offline, mixed]): Step[] => [...offline, ...mixed]),
        // Final delivery: each replica receives every replica's state in its own order, some twice.
        plan: mergePlanArb(n),
        // Replicas that catch up with everyone, then decide the first open item offline.
        deciders: fc.subarray([...Array(n).keys()], { minLength: 2 }),
        // Which actor wins an Automerge conflict depends on actor ids: part of the sample, so a seed replays exactly.
        actors: actorsArb(n),
      }),
    )
    await checkProperty(
      'order convergence',
      fc.property(scenario, ({ n, start, steps, plan, deciders, actors }) => {
        const base = start()
        let replicas = Array.from({ length: n }, (_, i) => A.clone(base, { actor: actors[i]! }))
        const recorded = base.events.map(eventKey)
        const decided = new Map<string, number>()
        const decide: Step[] = deciders.map((replica) => ({ kind: 'act', replica, user: replica % 3, at: 7, action: { op: 'decide' } }))
        const catchUp: Step[] = deciders.flatMap((into) => replicas.map((_, from): Step => ({ kind: 'sync', into, from })))
        for (const step of [...steps, ...catchUp, ...decide]) {
          if (step.kind === 'sync') {
            // Merging a document object into itself panics in Automerge; a peer never does that.
            if (step.into !== step.from) replicas[step.into] = A.merge(replicas[step.into]!, replicas[step.from]!)
            continue
          }
          const before = replicas[step.replica]!
          const c = ctx(['ana', 'ben', 'mgr'][step.user], `dev-${step.replica}`, step.at)
          let refused = false
          let decidedId: string | undefined
          const after = A.change(before, (d) => {
            try {
              if (step.action.op === 'decide') decidedId = orderReviewItems(d).find((i) => i.status === 'open')?.id
              run(d, step.action, c)
            } catch {
              refused = true
            }
          })
          if (refused) expect(A.getHeads(after)).toEqual(A.getHeads(before))
          else if (step.action.op === 'decide') decided.set(decidedId!, (decided.get(decidedId!) ?? 0) + 1)
          else if (after.events.length > before.events.length) recorded.push(eventKey(after.events.at(-1)!))
          replicas[step.replica] = after
        }
        replicas = mergeByPlan(replicas, plan)
        const [first, ...rest] = replicas
        for (const r of rest) {
          expect(A.getHeads(r)).toEqual(A.getHeads(first!))
          expect(orderStatus(r)).toBe(orderStatus(first!))
          expect(orderLines(r)).toEqual(orderLines(first!))
          expect(orderReviewItems(r)).toEqual(orderReviewItems(first!))
        }
        for (const r of replicas) {
          expect(r.events.map(eventKey).sort()).toEqual([...recorded].sort())
          expectEveryDecisionKept(r.decisions, orderReviewItems(r), decided)
        }
      }),
      { numRuns: 150 },
    )
  }, 300_000)
})

describe('SKUs named like Object.prototype members', () => {
  const NAMES = ['constructor', 'toString', 'hasOwnProperty', 'valueOf'] as const

  it.each(NAMES)('creates, changes, removes, submits and approves a line %s', (name) => {
    let doc = change(A.init<OrderDoc>(), (d) => createOrder(d, { id: name, from: 'CLINIC-1', to: 'WH-1', lines: [{ sku: name, requested: 3 }] }, ctx()))
    expect(str(doc.id)).toBe(name)
    expect(orderLines(doc)).toEqual([{ sku: name, requested: 3, approved: null }])
    const other = NAMES.find((n) => n !== name)!
    // A line the order does not have is not found on Object.prototype.
    expectRefused(doc, (d) => removeLine(d, { sku: other }, ctx()), { name: 'RuleError', code: 'unknown-line', field: 'sku' })
    doc = change(doc, (d) => setLine(d, { sku: name, requested: 7 }, ctx()))
    doc = change(doc, (d) => setLine(d, { sku: other, requested: 2 }, ctx()))
    expect(orderLines(doc)).toEqual([{ sku: name, requested: 7, approved: null }, { sku: other, requested: 2, approved: null }].sort((a, b) => (a.sku < b.sku ? -1 : 1)))
    doc = change(doc, (d) => removeLine(d, { sku: other }, ctx()))
    doc = change(doc, (d) => submit(d, {}, ctx()))
    expectRefused(doc, (d) => approve(d, { lines: [{ sku: other, approved: 1 }] }, ctx('mgr')), { name: 'RuleError', code: 'unknown-line', field: 'lines.0.sku' })
    doc = change(doc, (d) => approve(d, { lines: [{ sku: name, approved: 5 }] }, ctx('mgr')))
    expect(orderLines(doc)).toEqual([{ sku: name, requested: 7, approved: 5 }])
  })

  it.each(NAMES)('reads an approval that does not list line %s as 0 approved, not as a member of Object.prototype', (name) => {
    // Two submissions made apart: the earlier (with line `name`) counts, the approval was made
    // on the replica that saw the other one, so it lists other lines only.
    const [a, b] = concurrently(
      makeOrder([{ sku: 'AMOX-500', requested: 1 }]),
      (d) => {
        submit(d, {}, ctx('ana', 'tab-1', 5))
        approve(d, {}, ctx('mgr', 'pc-1', 6))
      },
      (d) => {
        setLine(d, { sku: name, requested: 4 }, ctx('ben', 'tab-2', 1))
        submit(d, {}, ctx('ben', 'tab-2', 2))
      },
    )
    expect(orderStatus(a)).toBe('approved')
    expect(orderLines(a)).toEqual(orderLines(b))
    expect(orderLines(a).find((l) => l.sku === name)).toEqual({ sku: name, requested: 4, approved: 0 })
  })

  it.each([
    ['an order id', (d: OrderDoc) => createOrder(d, { id: '__proto__', from: 'CLINIC-1', to: 'WH-1' }, ctx()), 'id'],
    ['a line SKU', (d: OrderDoc) => createOrder(d, { id: 'o', from: 'CLINIC-1', to: 'WH-1', lines: [{ sku: '__proto__', requested: 1 }] }, ctx()), 'lines.0.sku'],
    ['a site', (d: OrderDoc) => createOrder(d, { id: 'o', from: '__proto__', to: 'WH-1' }, ctx()), 'from'],
  ])('refuses __proto__ as %s: not a valid id', (_what, op, field) => {
    expectRefused(A.init<OrderDoc>(), op, { name: 'InputError', field })
  })

  it('refuses __proto__ as the SKU of a line set or removed: not a valid id', () => {
    expectRefused(makeOrder(), (d) => setLine(d, { sku: '__proto__', requested: 1 }, ctx()), { name: 'InputError', field: 'sku' })
    expectRefused(makeOrder(), (d) => removeLine(d, { sku: '__proto__' }, ctx()), { name: 'InputError', field: 'sku' })
  })
})
