/**
 * A recorded decision on a review item (src/schema/review.ts), and the input a person sends to
 * record one. Ledgers, orders and manifests keep them in `decisions`, never changed or deleted.
 *
 * Each decision is written under a key of its own (`decisionKey`), never under the item's id: two
 * people who decide the same item while apart write two different keys, and both survive every
 * merge as plain map entries. Schema versions before 2 (ledger 3) keyed decisions by item id, so
 * concurrent decisions were Automerge conflicts on one key; Automerge 3.5.0 can drop a conflicting
 * value from a document merged incrementally (three concurrent writes, merged in some orders,
 * showed two until the document was saved and loaded again). `decisionsFor` still reads those.
 */
import { z } from 'zod'
import { MovementId } from './ids.ts'
import type { Str } from './strings.ts'

/** A decision as stored. */
export interface StoredDecision {
  /** The review item decided (absent in decisions stored before schema 2: the key is the item). */
  item?: Str
  /** The item's kind and summary when it was decided, so a decided item stays listed after its cause clears. */
  kind?: Str
  summary?: Str
  by: Str
  /** The device it was recorded on (absent in old ledger decisions). */
  device?: Str
  /** unix ms */
  at: number
  note: Str
  /** Movement ids posted as the compensating movements of this decision. */
  movements?: Str[]
  /**
   * Ledger decisions: the compensating adjustments themselves, recorded before they are posted so
   * that a crash in between loses nothing (the deciding device posts what is missing at its next start).
   */
  /** `lot`: the lot an adjustment of a product tracked by lot moves. */
  compensations?: Array<{ id: Str; sku: Str; delta: number; reason: Str; lot?: Str }>
}

/**
 * The key of a new decision on `itemId`: unique to the writer (its Automerge actor) and to the
 * writer's own decisions, so no two writers ever write the same key.
 */
export function decisionKey(itemId: string, actor: string, taken: (key: string) => boolean): string {
  for (let n = 1; ; n++) {
    const key = `${itemId}#${actor}#${n}`
    if (!taken(key)) return key
  }
}

/** A review item id as a client sends it back. */
export const ReviewItemId = z
  .string({ error: 'must be a string' })
  .min(1, { error: 'must not be empty' })
  .max(400, { error: 'must be at most 400 characters' })

const note = z
  .string({ error: 'must be a string' })
  .trim()
  .min(1, { error: 'must not be empty' })
  .max(2000, { error: 'must be at most 2000 characters' })

/** Deciding an order item: what was decided, in words. */
export const DecideOrderItemInput = z.strictObject({ note })
export type DecideOrderItemInput = z.infer<typeof DecideOrderItemInput>

/**
 * Deciding a manifest item: what was decided, and the ids of the compensating movements posted to
 * the site's ledger for it, if any (for example a return of rejected goods).
 */
export const DecideManifestItemInput = z.strictObject({
  note,
  movements: z.array(MovementId).max(100, { error: 'must list at most 100 movements' }).default([]),
})
export type DecideManifestItemInput = z.infer<typeof DecideManifestItemInput>
