/**
 * A recorded decision on a review item (src/schema/review.ts), and the input a person sends to
 * record one. Orders and manifests keep them in `decisions`, keyed by review item id, never deleted.
 */
import { z } from 'zod'
import { MovementId } from './ids.ts'
import type { Decision } from './ledger.ts'
import type { Str } from './strings.ts'

/** The ledger's decision record, plus the device it was made on. */
export interface ReviewDecision extends Decision {
  device: Str
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
