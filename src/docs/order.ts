/**
 * Order operations. Each runs inside `handle.change` / `A.change` as `(doc, input, ctx) => void`:
 * it checks the document is writable, validates the input (from `unknown`) and the rules, and only
 * then writes. A refused call throws `InputError` / `RuleError` / `ReadOnlyDocumentError` and has
 * written nothing. No I/O, clock or randomness: who and when come in `ctx`.
 *
 * The status is never written: each transition appends an event and `orderStatus` folds them
 * (src/docs/orderStatus.ts; rules in docs/conflict-rules.md, "Orders").
 */
import { type ChangeContext, parseContext } from '../schema/changeContext.ts'
import { parseInput, RuleError } from '../schema/errors.ts'
import { assertWritable } from '../schema/migrations.ts'
import { hasOwnKey, own } from '../schema/ownProperty.ts'
import {
  ApproveInput,
  CreateOrderInput,
  ORDER_SCHEMA,
  ORDER_TRANSITIONS,
  type OrderDoc,
  type OrderEvent,
  type OrderStatus,
  PlainTransitionInput,
  ReasonedTransitionInput,
  RemoveLineInput,
  SetLineInput,
} from '../schema/order.ts'
import { imm, str } from '../schema/strings.ts'
import { isOrderTransition, orderLines, orderStatus } from './orderStatus.ts'

export { orderLines, orderPath, orderStatus, isOrderTransition, type OrderLineView } from './orderStatus.ts'
export { decideOrderItem, orderReviewItems } from './orderReview.ts'

const MAX_LINES = 500

/** The writable, created order's checked context. */
function begin(doc: OrderDoc, ctx: ChangeContext): ChangeContext {
  assertWritable('order', doc)
  const checked = parseContext(ctx)
  if (str(doc.kind) !== 'order') throw new RuleError('not-an-order', 'this document is not an order (createOrder first)')
  return checked
}

function requireDraft(doc: OrderDoc, what: string): void {
  const status = orderStatus(doc)
  if (status !== 'draft') throw new RuleError('not-draft', `cannot ${what} an order that is ${status}; lines change only in draft`)
}

/** Throws unless `to` may follow the current status; returns the current status. */
function requireTransition(doc: OrderDoc, to: OrderStatus, verb: string): OrderStatus {
  const from = orderStatus(doc)
  if (!isOrderTransition(from, to)) {
    const allowed = Object.entries(ORDER_TRANSITIONS)
      .filter(([, targets]) => targets.includes(to))
      .map(([status]) => status)
      .join(' or ')
    throw new RuleError('transition-not-allowed', `cannot ${verb} an order that is ${from} (only one that is ${allowed})`)
  }
  return from
}

function appendEvent(doc: OrderDoc, from: OrderStatus, to: OrderStatus, ctx: ChangeContext, extra: Partial<OrderEvent> & { note?: string }): void {
  const { note, ...rest } = extra
  const event: OrderEvent = { from: imm(from), to: imm(to), by: imm(ctx.user), device: imm(ctx.device), at: ctx.at, ...rest }
  if (note !== undefined) event.reason = imm(note)
  doc.events.push(event)
}

/**
 * Initialises an empty document as a draft order `{id, from, to, lines?}`: `from` is the
 * requesting site, `to` the supplying one. Refuses a document that is already an order.
 */
export function createOrder(doc: OrderDoc, input: unknown, ctx: ChangeContext): void {
  assertWritable('order', doc)
  const c = parseContext(ctx)
  const order = parseInput(CreateOrderInput, input)
  if (doc.kind !== undefined || doc.id !== undefined) throw new RuleError('already-created', 'this document is already initialised')
  doc.schema = ORDER_SCHEMA
  doc.kind = imm('order')
  doc.id = imm(order.id)
  doc.from = imm(order.from)
  doc.to = imm(order.to)
  doc.createdBy = imm(c.user)
  doc.createdDevice = imm(c.device)
  doc.createdAt = c.at
  doc.lines = Object.fromEntries(order.lines.map((l) => [l.sku, { sku: imm(l.sku), requested: l.requested, ...(l.lot !== undefined ? { lot: imm(l.lot) } : {}) }]))
  doc.events = []
  doc.decisions = {}
}

/** Adds a line `{sku, requested}` or changes its requested quantity. Draft only. */
export function setLine(doc: OrderDoc, input: unknown, ctx: ChangeContext): void {
  begin(doc, ctx)
  const line = parseInput(SetLineInput, input)
  requireDraft(doc, 'change the lines of')
  const existing = own(doc.lines, line.sku)
  if (existing) {
    existing.requested = line.requested
    if (line.lot !== undefined && (existing.lot === undefined || str(existing.lot) !== line.lot)) existing.lot = imm(line.lot)
    else if (line.lot === undefined && existing.lot !== undefined) delete existing.lot
    return
  }
  if (Object.keys(doc.lines).length >= MAX_LINES) throw new RuleError('too-many-lines', `an order has at most ${MAX_LINES} lines`, 'sku')
  doc.lines[line.sku] = { sku: imm(line.sku), requested: line.requested, ...(line.lot !== undefined ? { lot: imm(line.lot) } : {}) }
}

/** Removes the line of `{sku}`. Draft only; refuses a SKU that is not on the order. */
export function removeLine(doc: OrderDoc, input: unknown, ctx: ChangeContext): void {
  begin(doc, ctx)
  const { sku } = parseInput(RemoveLineInput, input)
  requireDraft(doc, 'change the lines of')
  if (!hasOwnKey(doc.lines, sku)) throw new RuleError('unknown-line', `SKU ${sku} is not on this order`, 'sku')
  delete doc.lines[sku]
}

/** draft → submitted `{reason?}`. Refuses an order with no lines. The event carries the lines. */
export function submit(doc: OrderDoc, input: unknown, ctx: ChangeContext): void {
  const c = begin(doc, ctx)
  const { reason } = parseInput(PlainTransitionInput, input)
  const from = requireTransition(doc, 'submitted', 'submit')
  const lines = orderLines(doc)
  if (lines.length === 0) throw new RuleError('no-lines', 'cannot submit an order with no lines')
  appendEvent(doc, from, 'submitted', c, { note: reason, lines: Object.fromEntries(lines.map((l) => [l.sku, l.requested])) })
}

/**
 * submitted → approved `{lines?: [{sku, approved}], reason?}`. A line not listed is approved as
 * requested; 0 refuses the line; more than requested is refused (`approved-exceeds-requested`):
 * an approver can cut a request but not raise it, a bigger need is a new order.
 */
export function approve(doc: OrderDoc, input: unknown, ctx: ChangeContext): void {
  const c = begin(doc, ctx)
  const { lines, reason } = parseInput(ApproveInput, input)
  const from = requireTransition(doc, 'approved', 'approve')
  const requested = new Map(orderLines(doc).map((l) => [l.sku, l.requested]))
  const approved = new Map(requested)
  lines.forEach((line, i) => {
    const wanted = requested.get(line.sku)
    if (wanted === undefined) throw new RuleError('unknown-line', `SKU ${line.sku} is not on this order`, `lines.${i}.sku`)
    if (line.approved > wanted) {
      throw new RuleError('approved-exceeds-requested', `cannot approve ${line.approved} of SKU ${line.sku}: ${wanted} were requested`, `lines.${i}.approved`)
    }
    approved.set(line.sku, line.approved)
  })
  appendEvent(doc, from, 'approved', c, { note: reason, approved: Object.fromEntries(approved) })
}

/** submitted → rejected `{reason}` (required). */
export function reject(doc: OrderDoc, input: unknown, ctx: ChangeContext): void {
  const c = begin(doc, ctx)
  const { reason } = parseInput(ReasonedTransitionInput, input)
  appendEvent(doc, requireTransition(doc, 'rejected', 'reject'), 'rejected', c, { note: reason })
}

/** approved → fulfilled `{reason?}`. */
export function fulfil(doc: OrderDoc, input: unknown, ctx: ChangeContext): void {
  const c = begin(doc, ctx)
  const { reason } = parseInput(PlainTransitionInput, input)
  appendEvent(doc, requireTransition(doc, 'fulfilled', 'fulfil'), 'fulfilled', c, { note: reason })
}

/** draft | submitted | approved → cancelled `{reason}` (required). */
export function cancel(doc: OrderDoc, input: unknown, ctx: ChangeContext): void {
  const c = begin(doc, ctx)
  const { reason } = parseInput(ReasonedTransitionInput, input)
  appendEvent(doc, requireTransition(doc, 'cancelled', 'cancel'), 'cancelled', c, { note: reason })
}
