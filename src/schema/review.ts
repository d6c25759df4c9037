/**
 * Review items: what the CRDT merged that a domain rule says a person must look at. They are
 * derived from the documents by pure functions (src/docs/review.ts), never stored, so every
 * replica holding the same documents shows the same queue in the same order.
 */
export type ReviewKind =
  | 'negative-stock'
  | 'negative-lot'
  | 'lot-expiry-conflict'
  | 'duplicate-movement'
  | 'stop-received-twice'
  | 'concurrent-counts'
  | 'order-status-conflict'
  | 'delivery-discrepancy'

export interface ReviewItem {
  /** Deterministic id, e.g. `negative-stock:SKU-1`; decisions are keyed by it. */
  id: string
  kind: ReviewKind
  /** The document the item is about and the one its decision is recorded in. */
  doc: 'ledger' | 'order' | 'manifest'
  /** A sentence for the person reviewing it. */
  summary: string
  /** Facts behind it, for the detail view (plain JSON). */
  details: Record<string, unknown>
  status: 'open' | 'resolved'
  decision?: { by: string; at: number; note: string; movements: string[] }
}

/** Stable order for display and comparison: open first, then by id. */
export function compareReviewItems(a: ReviewItem, b: ReviewItem): number {
  if (a.status !== b.status) return a.status === 'open' ? -1 : 1
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}
