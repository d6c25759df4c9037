/**
 * Recording and reading decisions on review items of orders and manifests. A decision is written
 * once under the item's id and never changed or deleted. Two people who decide the same item
 * offline both keep their decision: Automerge shows one of them at `decisions[id]` (the same one
 * on every replica) and keeps the other as a conflict, which `readDecision` lists.
 */
import { getConflicts } from '@automerge/automerge'
import type { ChangeContext } from '../schema/changeContext.ts'
import { RuleError } from '../schema/errors.ts'
import type { ReviewItem } from '../schema/review.ts'
import type { ReviewDecision } from '../schema/reviewDecision.ts'
import { imm, str } from '../schema/strings.ts'

export interface DecisionView {
  status: ReviewItem['status']
  decision?: NonNullable<ReviewItem['decision']>
  /** Every decision recorded concurrently for the item (only when there is more than one). */
  concurrent?: Array<{ by: string; device: string; at: number; note: string; movements: string[] }>
}

function plain(d: ReviewDecision) {
  return { by: str(d.by), device: str(d.device), at: d.at, note: str(d.note), movements: (d.movements ?? []).map((m) => str(m)) }
}

/** The decision on item `id`, if any, as a review item shows it. */
export function readDecision(decisions: Record<string, ReviewDecision> | undefined, id: string): DecisionView {
  const stored = decisions?.[id]
  if (!stored) return { status: 'open' }
  const { device: _device, ...decision } = plain(stored)
  const view: DecisionView = { status: 'resolved', decision }
  const conflicts = Object.values(getConflicts(decisions, id) ?? {}) as unknown as ReviewDecision[]
  if (conflicts.length > 1) {
    view.concurrent = conflicts
      .map(plain)
      .sort((a, b) => a.at - b.at || (a.by < b.by ? -1 : a.by > b.by ? 1 : 0) || (a.device < b.device ? -1 : a.device > b.device ? 1 : 0) || (a.note < b.note ? -1 : a.note > b.note ? 1 : 0))
  }
  return view
}

/**
 * Records a decision on `itemId`, one of `items` (the document's current review items). Refuses an
 * item that does not exist and one already decided here. Call only after the input is validated.
 */
export function recordDecision(
  decisions: Record<string, ReviewDecision>,
  items: ReviewItem[],
  itemId: string,
  input: { note: string; movements: string[] },
  ctx: ChangeContext,
): void {
  const item = items.find((i) => i.id === itemId)
  if (!item) throw new RuleError('unknown-review-item', `there is no review item ${itemId} on this document`, 'itemId')
  if (item.status === 'resolved') throw new RuleError('already-decided', `review item ${itemId} has already been decided`, 'itemId')
  decisions[itemId] = {
    by: imm(ctx.user),
    device: imm(ctx.device),
    at: ctx.at,
    note: imm(input.note),
    movements: input.movements.map((m) => imm(m)),
  }
}
