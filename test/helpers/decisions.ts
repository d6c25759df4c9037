import { expect } from 'vitest'
import { indexDecisions } from '../../src/docs/reviewDecision.ts'
import type { ReviewItem } from '../../src/schema/review.ts'
import type { StoredDecision } from '../../src/schema/reviewDecision.ts'

/**
 * Every decision made on any replica is kept in `decisions`, and each decided item is shown
 * resolved, listing all its decisions when there are several. `decided`: item id → decisions made.
 */
export function expectEveryDecisionKept(decisions: Record<string, StoredDecision>, items: ReviewItem[], decided: Map<string, number>): void {
  const index = indexDecisions(decisions)
  for (const [id, count] of decided) {
    expect(index.get(id)?.decisions.length, `decisions on ${id}`).toBe(count)
    const shown = items.find((i) => i.id === id)
    expect(shown?.status, `status of ${id}`).toBe('resolved')
    if (count > 1) expect((shown?.details.decisions as unknown[]).length, `decisions shown on ${id}`).toBe(count)
  }
}
