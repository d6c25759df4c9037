/**
 * Review items of an order: 'order-status-conflict' wherever events left the same status with
 * different outcomes (different targets, or approvals with different quantities). The status rule
 * has already settled which one counts; the item makes a person look at it and record a decision.
 */
import { z } from 'zod'
import { type ChangeContext, parseContext } from '../schema/changeContext.ts'
import { parseInput, RuleError } from '../schema/errors.ts'
import { assertWritable } from '../schema/migrations.ts'
import { ORDER_STATUSES, type OrderDoc } from '../schema/order.ts'
import { compareReviewItems, type ReviewItem } from '../schema/review.ts'
import { DecideOrderItemInput, ReviewItemId } from '../schema/reviewDecision.ts'
import { str } from '../schema/strings.ts'
import { compareOrderEvents, type IndexedEvent, orderPath, orderStatus, validOrderEvents } from './orderStatus.ts'
import { decidedButCleared, indexDecisions, recordDecision, withDecision } from './reviewDecision.ts'

/** What an event leads to: its target, and for an approval the quantities approved. */
function outcome({ event }: IndexedEvent): string {
  const approved = event.approved ? Object.entries(event.approved).sort(([a], [b]) => (a < b ? -1 : 1)) : []
  return `${str(event.to)} ${JSON.stringify(approved)}`
}

function describe({ event, index }: IndexedEvent): Record<string, unknown> {
  return {
    index,
    to: str(event.to),
    by: str(event.by),
    device: str(event.device),
    at: event.at,
    ...(event.reason !== undefined ? { reason: str(event.reason) } : {}),
    ...(event.approved ? { approved: { ...event.approved } } : {}),
  }
}

/** The id of the conflict item for events leaving `from`. */
export function orderConflictItemId(orderId: string, from: string): string {
  return `order-status-conflict:${orderId}:${from}`
}

/**
 * One 'order-status-conflict' item per status that events left with different outcomes, in
 * `compareReviewItems` order. `details.kept` is the event that counts (null when the order never
 * reached that status, so none of them counts); `details.events` lists them all, winner first.
 */
export function orderReviewItems(doc: OrderDoc): ReviewItem[] {
  if (str(doc.kind) !== 'order') return []
  const orderId = str(doc.id)
  const counted = new Set(orderPath(doc).map((e) => e.index))
  const status = orderStatus(doc)
  const events = validOrderEvents(doc)
  const decided = indexDecisions(doc.decisions)
  const items: ReviewItem[] = []
  for (const from of ORDER_STATUSES) {
    const leaving = events.filter((e) => str(e.event.from) === from).sort(compareOrderEvents)
    if (new Set(leaving.map(outcome)).size < 2) continue
    const kept = leaving.find((e) => counted.has(e.index))
    const id = orderConflictItemId(orderId, from)
    const who = leaving.map((e) => `${str(e.event.to)} by ${str(e.event.by)} on ${str(e.event.device)}`).join(', ')
    const rule = kept
      ? `the rule kept ${str(kept.event.to)} by ${str(kept.event.by)}`
      : `the order never reached ${from} on the path that counts, so none of them applies`
    items.push(withDecision({
      id,
      kind: 'order-status-conflict',
      doc: 'order',
      summary: `Order ${orderId}: conflicting changes while ${from} (${who}); ${rule}. The order is ${status}.`,
      details: {
        order: orderId,
        from,
        status,
        kept: kept ? describe(kept) : null,
        events: leaving.map(describe),
      },
    }, decided))
  }
  return [...items, ...decidedButCleared(decided, 'order', items)].sort(compareReviewItems)
}

/**
 * Records a decision `{note}` on an open review item of this order. Nothing else changes: to undo
 * what the rule kept, make a new transition (for example cancel). Refuses an unknown item and one
 * already decided.
 */
export function decideOrderItem(doc: OrderDoc, itemId: unknown, input: unknown, ctx: ChangeContext): void {
  assertWritable('order', doc)
  const c = parseContext(ctx)
  if (str(doc.kind) !== 'order') throw new RuleError('not-an-order', 'this document is not an order (createOrder first)')
  const { itemId: id } = parseInput(z.object({ itemId: ReviewItemId }), { itemId })
  const { note } = parseInput(DecideOrderItemInput, input)
  recordDecision(doc, orderReviewItems(doc), id, { note, movements: [] }, c)
}
