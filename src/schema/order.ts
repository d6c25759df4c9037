/**
 * An order (requisition / purchase order) between two sites: lines with requested quantities, and
 * a status that is never stored. Transitions are appended to `events`; the status is the fold of
 * that list (src/docs/orderStatus.ts), so transitions made offline on two replicas merge to the
 * same status everywhere and none is lost. Rules: docs/conflict-rules.md, "Orders".
 */
import { z } from 'zod'
import { LotId, OrderId, SiteId, Sku } from './ids.ts'
import { decisionKeysMigration } from './migrations/decisions.ts'
import type { Migration } from './migrations/types.ts'
import type { StoredDecision } from './reviewDecision.ts'
import type { Str } from './strings.ts'

export const ORDER_SCHEMA = 2
/** Registered in src/schema/migrations.ts (this file must not import it: circular). */
export const orderSchema: { current: number; migrations: Migration[] } = { current: ORDER_SCHEMA, migrations: [decisionKeysMigration(2)] }

export const ORDER_STATUSES = ['draft', 'submitted', 'approved', 'rejected', 'fulfilled', 'cancelled'] as const
export type OrderStatus = (typeof ORDER_STATUSES)[number]

/** The transitions a person may make; every other (from, to) pair in `events` is ignored. */
export const ORDER_TRANSITIONS: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
  draft: ['submitted', 'cancelled'],
  submitted: ['approved', 'rejected', 'cancelled'],
  approved: ['fulfilled', 'cancelled'],
  rejected: [],
  fulfilled: [],
  cancelled: [],
}

/**
 * Which target wins when events leave the same status for different targets, first wins.
 * A recorded fact beats an intention (goods that were fulfilled cannot be un-shipped by a
 * concurrent cancel); otherwise the more conservative outcome wins.
 */
export const ORDER_PRECEDENCE: readonly OrderStatus[] = ['fulfilled', 'cancelled', 'rejected', 'approved', 'submitted']

export interface OrderLine {
  sku: Str
  requested: number
  /** A product tracked by lot: the lot asked for, when one is (a return, a recall); none: the supplier serves first-expiry-first-out. */
  lot?: Str
}

/** One transition, appended and never changed. */
export interface OrderEvent {
  from: Str
  to: Str
  by: Str
  device: Str
  /** unix ms, from the device that recorded it */
  at: number
  reason?: Str
  /** Submit only: the requested quantity of every line as submitted, by SKU. */
  lines?: Record<string, number>
  /** Approve only: the approved quantity of every submitted line, by SKU. */
  approved?: Record<string, number>
}

export interface OrderDoc {
  schema: number
  /** 'order' */
  kind: Str
  id: Str
  /** The requesting site. */
  from: Str
  /** The supplying site (warehouse, hub). */
  to: Str
  createdBy: Str
  createdDevice: Str
  createdAt: number
  /** Draft lines by SKU. Once submitted, the submit event's `lines` are the order's lines. */
  lines: Record<string, OrderLine>
  events: OrderEvent[]
  /** Decisions on review items, each under a key of its own (src/schema/reviewDecision.ts). Never deleted. */
  decisions: Record<string, StoredDecision>
}

// ---- outside input -------------------------------------------------------------------------

const MAX_LINES = 500

const quantity = z
  .number({ error: 'must be a number' })
  .int({ error: 'must be a whole number' })
  .positive({ error: 'must be at least 1' })
  .max(1_000_000_000, { error: 'must be at most 1,000,000,000' })

const approvedQuantity = z
  .number({ error: 'must be a number' })
  .int({ error: 'must be a whole number' })
  .min(0, { error: 'must not be negative' })
  .max(1_000_000_000, { error: 'must be at most 1,000,000,000' })

const reason = z
  .string({ error: 'must be a string' })
  .trim()
  .min(1, { error: 'must not be empty' })
  .max(500, { error: 'must be at most 500 characters' })

/** Adds an issue at `[key, i, 'sku']` for every SKU listed twice. */
function uniqueSkus(key: string) {
  return (lines: Array<{ sku: string }>, ctx: z.RefinementCtx) => {
    const seen = new Set<string>()
    lines.forEach((line, i) => {
      if (seen.has(line.sku)) ctx.addIssue({ code: 'custom', message: `SKU ${line.sku} is listed twice`, path: [key, i, 'sku'] })
      seen.add(line.sku)
    })
  }
}

export const OrderLineInput = z.strictObject({ sku: Sku, requested: quantity, lot: LotId.optional() })
export type OrderLineInput = z.infer<typeof OrderLineInput>

export const CreateOrderInput = z
  .strictObject({
    id: OrderId,
    from: SiteId,
    to: SiteId,
    lines: z.array(OrderLineInput).max(MAX_LINES, { error: `must have at most ${MAX_LINES} lines` }).default([]),
  })
  .superRefine((input, ctx) => {
    if (input.from === input.to) ctx.addIssue({ code: 'custom', message: 'must differ from the requesting site', path: ['to'] })
    uniqueSkus('lines')(input.lines, ctx)
  })
export type CreateOrderInput = z.infer<typeof CreateOrderInput>

export const SetLineInput = OrderLineInput
export type SetLineInput = OrderLineInput

export const RemoveLineInput = z.strictObject({ sku: Sku })
export type RemoveLineInput = z.infer<typeof RemoveLineInput>

/** submit and fulfil: an optional note, kept in the event's `reason`. */
export const PlainTransitionInput = z.strictObject({ reason: reason.optional() })
export type PlainTransitionInput = z.infer<typeof PlainTransitionInput>

/** reject and cancel: a reason is required. */
export const ReasonedTransitionInput = z.strictObject({ reason })
export type ReasonedTransitionInput = z.infer<typeof ReasonedTransitionInput>

/**
 * Approve: approved quantities for some lines; a line not listed is approved as requested.
 * 0 is allowed (the line is refused); more than requested is not (a rule, checked in the op).
 */
export const ApproveInput = z
  .strictObject({
    lines: z
      .array(z.strictObject({ sku: Sku, approved: approvedQuantity }))
      .max(MAX_LINES, { error: `must have at most ${MAX_LINES} lines` })
      .default([]),
    reason: reason.optional(),
  })
  .superRefine((input, ctx) => uniqueSkus('lines')(input.lines, ctx))
export type ApproveInput = z.infer<typeof ApproveInput>
