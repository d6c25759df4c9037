/**
 * Recording and reading decisions on review items of ledgers, orders and manifests. A decision is
 * written once under a key of its own (src/schema/reviewDecision.ts) and never changed or deleted,
 * so every concurrent decision is kept and every replica lists the same ones in the same order.
 */
import { getActorId, getConflicts } from '@automerge/automerge'
import type { ChangeContext } from '../schema/changeContext.ts'
import { ConflictError, RuleError } from '../schema/errors.ts'
import type { ReviewItem, ReviewKind } from '../schema/review.ts'
import { decisionKey, type StoredDecision } from '../schema/reviewDecision.ts'
import { imm, str } from '../schema/strings.ts'

/** A decision as a review item shows it. */
export interface DecisionRecord {
  by: string
  device: string
  at: number
  note: string
  movements: string[]
}

/** Every decision in a document, by review item id, each list in a deterministic order. */
export type DecisionIndex = Map<string, { kind?: ReviewKind; summary?: string; decisions: DecisionRecord[] }>

function record(d: StoredDecision): DecisionRecord {
  return { by: str(d.by), device: d.device !== undefined ? str(d.device) : '', at: d.at, note: str(d.note), movements: Array.from(d.movements ?? []).map((m) => str(m)) }
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
function compareRecords(a: DecisionRecord, b: DecisionRecord): number {
  return a.at - b.at || cmp(a.by, b.by) || cmp(a.device, b.device) || cmp(a.note, b.note) || cmp(a.movements.join(), b.movements.join())
}

/**
 * Indexes a document's `decisions` map by item: one pass, for deriving all of its review items.
 * Everything it returns is independent of the order keys come in (a materialised document lists
 * them in the order its changes arrived, which differs between replicas): the decisions are
 * sorted, and an item's kind and summary are those of its earliest decision.
 */
export function indexDecisions(decisions: Record<string, StoredDecision> | undefined): DecisionIndex {
  const index: DecisionIndex = new Map()
  if (!decisions) return index
  const stored = new Map<DecisionRecord, StoredDecision>()
  const add = (item: string, d: StoredDecision) => {
    let entry = index.get(item)
    if (!entry) index.set(item, (entry = { decisions: [] }))
    const r = record(d)
    stored.set(r, d)
    entry.decisions.push(r)
  }
  for (const [key, stored] of Object.entries(decisions)) {
    if (stored.item !== undefined) {
      add(str(stored.item), stored)
      continue
    }
    // Before schema 2 the key was the item id and concurrent decisions were conflicts on it.
    const values = Object.values(getConflicts(decisions, key) ?? {}) as unknown as StoredDecision[]
    for (const d of values.length > 0 ? values : [stored]) add(key, d)
  }
  for (const entry of index.values()) {
    const summary = (r: DecisionRecord) => str(stored.get(r)!.summary ?? '')
    entry.decisions.sort((a, b) => compareRecords(a, b) || cmp(summary(a), summary(b)))
    const described = entry.decisions.map((r) => stored.get(r)!).find((d) => d.summary !== undefined)
    if (described) {
      entry.kind = str(described.kind) as ReviewKind
      entry.summary = str(described.summary)
    }
  }
  return index
}

/** What a review item shows of its decisions: resolved by the earliest, and all of them when several. */
export interface DecisionView {
  status: ReviewItem['status']
  decision?: NonNullable<ReviewItem['decision']>
  /** Every decision recorded for the item, when there is more than one (made while apart). */
  concurrent?: DecisionRecord[]
}

/** The decisions on item `id` from an index made by `indexDecisions`. */
export function decisionView(index: DecisionIndex, id: string): DecisionView {
  const all = index.get(id)?.decisions ?? []
  const first = all[0]
  if (!first) return { status: 'open' }
  const { device: _device, ...decision } = first
  return { status: 'resolved', decision, ...(all.length > 1 ? { concurrent: all } : {}) }
}

/** Applies the decision view to an item derived from the documents. */
export function withDecision(item: Omit<ReviewItem, 'status' | 'decision'>, index: DecisionIndex): ReviewItem {
  const view = decisionView(index, item.id)
  return {
    ...item,
    details: { ...item.details, ...(view.concurrent ? { decisions: view.concurrent } : {}) },
    status: view.status,
    ...(view.decision ? { decision: view.decision } : {}),
  }
}

/**
 * Items that were decided but whose cause has since cleared (a negative stock made good by its
 * compensating movement): still listed, as resolved, from what was stored with the decision.
 */
export function decidedButCleared(index: DecisionIndex, doc: ReviewItem['doc'], current: Iterable<ReviewItem>): ReviewItem[] {
  const listed = new Set([...current].map((i) => i.id))
  const out: ReviewItem[] = []
  for (const [id, entry] of index) {
    if (listed.has(id)) continue
    out.push(
      withDecision(
        {
          id,
          kind: entry.kind ?? (id.slice(0, id.indexOf(':')) as ReviewKind),
          doc,
          summary: entry.summary ?? `Decided review item ${id}; what raised it no longer applies.`,
          details: { cleared: true },
        },
        index,
      ),
    )
  }
  return out
}

/**
 * Records a decision on `itemId`, one of `items` (the document's current review items). Refuses an
 * item that does not exist and one already decided here. Call only after the input is validated,
 * inside the change of `doc` (the document root: its actor makes the key unique).
 */
export function recordDecision(
  doc: { decisions: Record<string, StoredDecision> },
  items: ReviewItem[],
  itemId: string,
  input: { note: string; movements: string[]; compensations?: Array<{ id: string; sku: string; delta: number; reason: string; lot?: string }> },
  ctx: ChangeContext,
): void {
  const item = items.find((i) => i.id === itemId)
  if (!item) throw new RuleError('unknown-review-item', `there is no review item ${itemId} on this document`, 'itemId')
  if (item.status === 'resolved') throw new ConflictError(`review item ${itemId} has already been decided by ${item.decision?.by}`, 'itemId')
  const decisions = doc.decisions
  const key = decisionKey(itemId, getActorId(doc), (k) => Object.hasOwn(decisions, k))
  decisions[key] = {
    item: imm(itemId),
    kind: imm(item.kind),
    summary: imm(item.summary),
    by: imm(ctx.user),
    device: imm(ctx.device),
    at: ctx.at,
    note: imm(input.note),
    movements: input.movements.map((m) => imm(m)),
    ...(input.compensations && input.compensations.length > 0
      ? { compensations: input.compensations.map((c) => ({ id: imm(c.id), sku: imm(c.sku), delta: c.delta, reason: imm(c.reason), ...(c.lot !== undefined ? { lot: imm(c.lot) } : {}) })) }
      : {}),
  }
}
