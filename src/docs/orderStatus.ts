/**
 * The status of an order, derived from its append-only event list. Pure: every replica holding the
 * same events computes the same status, whatever order the events arrived in.
 */
import { ORDER_PRECEDENCE, ORDER_STATUSES, ORDER_TRANSITIONS, type OrderDoc, type OrderEvent, type OrderStatus } from '../schema/order.ts'
import { own } from '../schema/ownProperty.ts'
import { str } from '../schema/strings.ts'

/** An event with its position in `doc.events` (the last tie-breaker, and how a view points at it). */
export interface IndexedEvent {
  event: OrderEvent
  index: number
}

function isStatus(value: string): value is OrderStatus {
  return (ORDER_STATUSES as readonly string[]).includes(value)
}

/** True when `from → to` is a transition the rules allow (other events are kept but ignored). */
export function isOrderTransition(from: string, to: string): boolean {
  return isStatus(from) && isStatus(to) && ORDER_TRANSITIONS[from].includes(to)
}

/** The events that make an allowed transition, with their index. */
export function validOrderEvents(doc: OrderDoc): IndexedEvent[] {
  return Array.from(doc.events ?? []).flatMap((event, index) => (isOrderTransition(str(event.from), str(event.to)) ? [{ event, index }] : []))
}

function cmp(a: string | number, b: string | number): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * Orders events that leave the same status, winner first: by the precedence of their target
 * (`ORDER_PRECEDENCE`), then earliest `at`, then `by`, then `device`, then list position.
 */
export function compareOrderEvents(a: IndexedEvent, b: IndexedEvent): number {
  const rank = (e: OrderEvent) => ORDER_PRECEDENCE.indexOf(str(e.to) as OrderStatus)
  return (
    cmp(rank(a.event), rank(b.event)) ||
    cmp(a.event.at, b.event.at) ||
    cmp(str(a.event.by), str(b.event.by)) ||
    cmp(str(a.event.device), str(b.event.device)) ||
    cmp(a.index, b.index)
  )
}

/**
 * The transitions that count, in order: walk from `draft`; at each status, among the events whose
 * `from` is that status pick the winner by `compareOrderEvents` and move to its target. Events that
 * lost, or whose `from` is never reached, are kept in the document but do not count. The status
 * graph has no cycle, so the walk ends.
 */
export function orderPath(doc: OrderDoc): IndexedEvent[] {
  const events = validOrderEvents(doc)
  const path: IndexedEvent[] = []
  let status: string = 'draft'
  for (;;) {
    const leaving = events.filter((e) => str(e.event.from) === status).sort(compareOrderEvents)
    const winner = leaving[0]
    if (!winner) return path
    path.push(winner)
    status = str(winner.event.to)
  }
}

/**
 * The order's status, derived from `events` alone (docs/conflict-rules.md, "Orders"):
 * walk from `draft`; at each status, among the events whose `from` is that status, the winner is
 * the one whose target comes first in fulfilled > cancelled > rejected > approved > submitted
 * (a recorded fact beats an intention, otherwise the more conservative outcome wins), ties broken
 * by earliest `at`, then `by`, then `device`, then list position; move to its target and repeat.
 * Events that lost, whose `from` is never reached, or whose transition is not allowed are kept
 * and ignored. Every replica with the same events gets the same status.
 */
export function orderStatus(doc: OrderDoc): OrderStatus {
  const last = orderPath(doc).at(-1)
  return last ? (str(last.event.to) as OrderStatus) : 'draft'
}

export interface OrderLineView {
  sku: string
  requested: number
  /** Approved quantity once approved (by the approval that counts), otherwise null. */
  approved: number | null
  /** The lot asked for (products tracked by lot), when the line names one. */
  lot?: string
}

/**
 * The order's lines, by SKU: the draft lines while in draft (or cancelled from draft); after
 * submission, the lines carried by the submit event that counts, so a line edited offline while
 * another replica submitted does not change what was submitted.
 */
export function orderLines(doc: OrderDoc): OrderLineView[] {
  const path = orderPath(doc)
  const submitted = path.find((e) => str(e.event.to) === 'submitted')?.event.lines
  const approved = path.find((e) => str(e.event.to) === 'approved')?.event.approved
  const requested: Array<[string, number]> = submitted
    ? Object.entries(submitted)
    : Object.entries(doc.lines ?? {}).map(([sku, line]) => [sku, line.requested])
  return requested
    .sort(([a], [b]) => cmp(a, b))
    .map(([sku, quantity]) => {
      const lot = own(doc.lines, sku)?.lot
      return { sku, requested: quantity, approved: approved ? (own(approved, sku) ?? 0) : null, ...(lot !== undefined ? { lot: str(lot) } : {}) }
    })
}
