/**
 * Review items of a site's ledger, derived from the ledger and its journals alone, so every
 * replica holding the same documents shows the same items. Orders and manifests derive theirs in
 * src/docs/order.ts and src/docs/manifest.ts; `reviewQueue` puts them together.
 */
import type { ChangeContext } from '../schema/changeContext.ts'
import type { JournalDoc, LedgerDoc } from '../schema/ledger.ts'
import { compareReviewItems, type ReviewItem } from '../schema/review.ts'
import { assertWritable } from '../schema/migrations.ts'
import { str } from '../schema/strings.ts'
import { journalPostings, latestPerNode, lotsOnHand, onHand, postingKey, splitLotKey, statedExpiries, type Posting } from './ledger.ts'
import { decidedButCleared, indexDecisions, recordDecision, withDecision } from './reviewDecision.ts'

function postingFacts(p: Posting): Record<string, unknown> {
  return {
    posting: postingKey(p.node, p.seq),
    node: p.node,
    by: p.by,
    // The device the person used (a scanner, a tablet), when not the node itself; the lots moved; the reason given.
    ...(p.device !== undefined ? { device: p.device } : {}),
    at: p.at,
    delta: p.delta,
    ...(p.counted !== undefined ? { counted: p.counted } : {}),
    ...(p.lots ? { lots: p.lots.map((l) => ({ lot: l.lot, delta: l.delta })) } : {}),
    ...(p.reason !== undefined ? { reason: p.reason } : {}),
  }
}

/**
 * The id of the open negative-stock item of `sku`: `negative-stock:<sku>` the first time, then
 * `negative-stock:<sku>~<n>` once n − 1 of them were decided, so that stock going below zero again
 * after a decision is a new item, not hidden behind the old decision. (`~` cannot occur in a SKU.)
 */
function negativeStockItemId(sku: string, decided: ReturnType<typeof indexDecisions>, kind = 'negative-stock'): string {
  const base = `${kind}:${sku}`
  let episodes = 0
  for (const id of decided.keys()) if (id === base || id.startsWith(`${base}~`)) episodes++
  return episodes === 0 ? base : `${base}~${episodes + 1}`
}

/**
 * Review items of the ledger: negative stock, movements posted twice, concurrent stock counts, and
 * decided items whose cause has cleared since (listed as resolved).
 */
export function ledgerReviewItems(ledger: LedgerDoc, journals: Iterable<JournalDoc>): ReviewItem[] {
  const all = [...journals]
  const byId = new Map<string, Posting[]>()
  const counts = new Map<string, Posting[]>()
  for (const journal of all) {
    for (const p of journalPostings(journal)) {
      const same = byId.get(p.id)
      if (same) same.push(p)
      else byId.set(p.id, [p])
      if (p.kind === 'count') {
        const key = countGroupKey(p)
        const group = counts.get(key)
        if (group) group.push(p)
        else counts.set(key, [p])
      }
    }
  }
  return ledgerReviewItemsOf(ledger, {
    onHand: onHand(latestPerNode(all)),
    duplicates: [...byId.values()].filter((list) => list.length > 1),
    countGroups: [...counts.values()].filter((list) => list.length > 1),
    lotsOnHand: lotsOnHand(latestPerNode(all)),
    expiryConflicts: new Map([...statedExpiries(all.flatMap(journalPostings))].filter(([, dates]) => dates.length > 1)),
  })
}

/** Stock counts of one SKU (of one lot, for a lot-tracked product) that saw the same latest count (`prev`) belong together. */
export function countGroupKey(p: Posting): string {
  const lot = p.lots?.length === 1 ? `|${p.lots[0]!.lot}` : ''
  return `${p.sku}${lot}\u0000${p.prev ?? ''}`
}

/** What the ledger's review items are derived from (a site node keeps these as indexes: src/docs/ledgerBook.ts). */
export interface LedgerReviewFacts {
  onHand: ReadonlyMap<string, number>
  /** Postings sharing a movement id, each list of two or more. */
  duplicates: Iterable<readonly Posting[]>
  /** Stock counts of one SKU with the same `prev`, each list of two or more. */
  countGroups: Iterable<readonly Posting[]>
  /** On hand per lot (`sku|lot`) of lot-tracked products. */
  lotsOnHand?: ReadonlyMap<string, number>
  /** Lots whose movements stated different expiry dates (`sku|lot` → the dates). */
  expiryConflicts?: ReadonlyMap<string, readonly string[]>
}

/** The ledger's review items from maintained facts, without reading any journal. */
export function ledgerReviewItemsOf(ledger: LedgerDoc, facts: LedgerReviewFacts): ReviewItem[] {
  const decided = indexDecisions(ledger.decisions)
  const items: ReviewItem[] = []
  for (const [sku, quantity] of [...facts.onHand].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (quantity >= 0) continue
    const id = negativeStockItemId(sku, decided)
    items.push(
      withDecision(
        { id, kind: 'negative-stock', doc: 'ledger', summary: `${sku} is ${quantity} on hand: more was issued than received. Count it and record the count.`, details: { sku, onHand: quantity } },
        decided,
      ),
    )
  }

  for (const [key, quantity] of [...(facts.lotsOnHand ?? [])].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (quantity >= 0) continue
    const { sku, lot } = splitLotKey(key)
    const id = negativeStockItemId(key, decided, 'negative-lot')
    items.push(
      withDecision(
        { id, kind: 'negative-lot', doc: 'ledger', summary: `Lot ${lot} of ${sku} is ${quantity} on hand: more was issued from it than received (two devices issuing it while apart?). Count the lot and record the count.`, details: { sku, lot, onHand: quantity } },
        decided,
      ),
    )
  }
  for (const [key, dates] of [...(facts.expiryConflicts ?? [])].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const { sku, lot } = splitLotKey(key)
    const id = `lot-expiry-conflict:${key}`
    items.push(
      withDecision(
        { id, kind: 'lot-expiry-conflict', doc: 'ledger', summary: `Lot ${lot} of ${sku} was received with different expiry dates (${dates.join(', ')}); the earliest is used. Check the packs and note which is right.`, details: { sku, lot, expiries: [...dates] } },
        decided,
      ),
    )
  }

  const byPosting = (a: Posting, b: Posting) => (postingKey(a.node, a.seq) < postingKey(b.node, b.seq) ? -1 : 1)

  for (const list of facts.duplicates) {
    if (list.length < 2) continue
    const postings = [...list].sort(byPosting)
    const movementId = postings[0]!.id
    // A delivery line received on two devices shows here for its stock effect; the manifest's own
    // 'stop-received-twice' item shows the deliveries themselves.
    const receivedTwice = movementId.startsWith('rcv:')
    const kind = 'duplicate-movement'
    const id = `${kind}:${movementId}`
    const extra = postings.slice(1).reduce((sum, p) => sum + p.delta, 0)
    items.push(withDecision({
      id,
      kind,
      doc: 'ledger',
      summary: receivedTwice
        ? `Delivery line ${movementId.slice(4)} was posted ${postings.length} times from different devices; on hand counts ${extra} too many of ${postings[0]!.sku}.`
        : `Movement ${movementId} was recorded ${postings.length} times on different devices; on hand is off by ${extra} for ${postings[0]!.sku}.`,
      details: { movementId, sku: postings[0]!.sku, postings: postings.map(postingFacts), excess: extra },
    }, decided))
  }

  for (const list of facts.countGroups) {
    if (list.length < 2) continue
    const group = [...list].sort(byPosting)
    const first = group[0]!
    const id = `concurrent-counts:${first.sku}:${first.prev || 'first'}`
    items.push(withDecision({
      id,
      kind: 'concurrent-counts',
      doc: 'ledger',
      summary: `${group.length} stock counts of ${first.sku} were made at the same time without seeing each other (${group.map((p) => p.counted).join(' and ')}); both corrections were applied.`,
      details: { sku: first.sku, counts: group.map(postingFacts) },
    }, decided))
  }
  return [...items, ...decidedButCleared(decided, 'ledger', items)].sort(compareReviewItems)
}

/**
 * Records a decision on `item`, a ledger review item as derived from the ledger and its journals
 * (the ledger document alone cannot derive it). The compensating movements (if any) must already
 * be posted; their ids are kept with the decision. Refuses an item this ledger already holds a
 * decision for. A decision is never overwritten or deleted.
 */
export function decideLedgerItem(ledger: LedgerDoc, item: ReviewItem, decision: Parameters<typeof recordDecision>[3], ctx: ChangeContext): void {
  assertWritable('ledger', ledger)
  const current = withDecision(item, indexDecisions(ledger.decisions))
  recordDecision(ledger, [current], item.id, decision, ctx)
}

/** A compensating adjustment as the ledger book posts it. */
export interface CompensationInput {
  id: string
  kind: 'adjustment'
  sku: string
  delta: number
  reason: string
  user: string
  reference: string
  lot?: string
}

/** The compensating adjustments that `node`'s decisions on this ledger recorded, as movement inputs. */
export function compensationsOf(ledger: LedgerDoc, node: string): CompensationInput[] {
  const out: CompensationInput[] = []
  for (const d of Object.values(ledger.decisions ?? {})) {
    if (d.device === undefined || str(d.device) !== node || d.item === undefined) continue
    for (const c of Array.from(d.compensations ?? [])) {
      out.push({ id: str(c.id), kind: 'adjustment', sku: str(c.sku), delta: c.delta, reason: str(c.reason), user: str(d.by), reference: str(d.item), ...(c.lot !== undefined ? { lot: str(c.lot) } : {}) })
    }
  }
  return out
}

/** All review items of a site, open first, each group in id order: the same on every replica. */
export function reviewQueue(...groups: ReviewItem[][]): ReviewItem[] {
  return groups.flat().sort(compareReviewItems)
}
