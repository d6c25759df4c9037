/**
 * Ledger services of a site node: recording movements (announced to listeners once durable),
 * the review queue over every document the node holds, deciding a ledger review item with its
 * compensating movements, and the ledger's history as a person reads it.
 */
import { checkLedgerDecisionAgainstCatalog } from '../docs/catalogRules.ts'
import { checkLedger, journalPostings, type Posting } from '../docs/ledger.ts'
import type { RecordResult } from '../docs/ledgerBook.ts'
import { manifestReviewItems } from '../docs/manifest.ts'
import { orderReviewItems } from '../docs/order.ts'
import { ledgerReviewItems, reviewQueue } from '../docs/review.ts'
import { documentHistory, type HistoryEntry } from '../docs/history.ts'
import { InputError, parseInput } from '../schema/errors.ts'
import { LedgerDecisionInput } from '../schema/ledger.ts'
import type { ManifestDoc } from '../schema/manifest.ts'
import type { OrderDoc } from '../schema/order.ts'
import type { ReviewItem } from '../schema/review.ts'
import { ConflictError, NotFoundError } from './errors.ts'
import type { SiteNode } from './siteNode.ts'

/** Every journal this node holds, as documents. */
export function journalDocs(node: SiteNode) {
  return [...node.store.journals()].map((ref) => ref.doc())
}

/**
 * Records movements (validated by the ledger's rules; a batch is all or nothing) and returns once
 * they are durable; listeners then hear of the ones recorded. Waits for the background load: the
 * duplicate-id check needs every journal indexed.
 */
export async function recordMovements(node: SiteNode, inputs: unknown[]): Promise<RecordResult[]> {
  await node.fullyLoaded
  const results = await node.book.record(inputs)
  const postings = results.filter((r) => r.status === 'recorded').map((r) => r.posting)
  if (postings.length > 0) node.events.emit('movements', { postings, source: 'local' })
  return results
}

/** Every posting of this site's ledger, newest first (optionally of one SKU). */
export async function postings(node: SiteNode, sku?: string): Promise<Posting[]> {
  await node.fullyLoaded
  return journalDocs(node)
    .flatMap(journalPostings)
    .filter((p) => sku === undefined || p.sku === sku)
    .sort((a, b) => b.at - a.at || (a.node < b.node ? -1 : 1) || b.seq - a.seq)
}

/** On hand = Σ movements, journal by journal: the mismatches, none when consistent. */
export async function ledgerCheck(node: SiteNode) {
  await node.fullyLoaded
  return checkLedger(journalDocs(node))
}

/** The review queue of every document the node holds, the same on every replica holding them. */
export async function reviewItems(node: SiteNode): Promise<ReviewItem[]> {
  await node.fullyLoaded
  return reviewQueue(
    ledgerReviewItems(node.store.ledger.doc(), journalDocs(node)),
    ...[...node.orders.values()].map((h) => orderReviewItems(h.doc() as OrderDoc)),
    ...[...node.manifests.values()].map((h) => manifestReviewItems(h.doc() as ManifestDoc)),
  )
}

/**
 * Decides a ledger review item `{ user, note, adjustments }`: posts the compensating adjustments
 * (ids `fix:<item>:<n>`, so a retry after a crash posts nothing twice), then records the decision
 * naming them. Refuses an unknown item (NotFoundError), an order's or manifest's item (decided on
 * its document) and one already decided (ConflictError).
 */
export async function decideLedgerReview(node: SiteNode, itemId: string, body: unknown): Promise<ReviewItem> {
  const decision = parseInput(LedgerDecisionInput, body)
  checkLedgerDecisionAgainstCatalog(node.catalog.doc(), decision)
  const item = (await reviewItems(node)).find((i) => i.id === itemId)
  if (!item) throw new NotFoundError(`no review item ${itemId}`)
  if (item.doc !== 'ledger') throw new InputError('', `${item.id} is decided on its ${item.doc}, not here`)
  if (item.status === 'resolved') throw new ConflictError(`${item.id} was already decided by ${item.decision?.by}`)
  const adjustments = decision.adjustments.map((a, i) => ({ id: `fix:${item.id}:${i + 1}`, kind: 'adjustment', sku: a.sku, delta: a.delta, reason: a.reason, user: decision.user, reference: item.id }))
  // Recorded through the service so that listeners hear of the compensating movements too.
  if (adjustments.length > 0) await recordMovements(node, adjustments)
  await node.book.decide(item, decision, adjustments)
  node.events.emit('decision', { doc: 'ledger', id: node.store.ledger.url, item: item.id, by: decision.user })
  return (await reviewItems(node)).find((i) => i.id === item.id) ?? { ...item, status: 'resolved' }
}

/** One line of the ledger's history: a movement, or a change to the ledger itself. */
export interface LedgerHistoryEntry extends HistoryEntry {
  movement?: { id: string; kind: string; sku: string; delta: number; reason?: string; reference?: string }
}

/**
 * The ledger's history, newest first: every movement with the person, device and time it was
 * recorded with, and every change to the ledger document (journals opened, decisions).
 */
export async function ledgerHistory(node: SiteNode, limit: number): Promise<LedgerHistoryEntry[]> {
  const moves: LedgerHistoryEntry[] = (await postings(node)).slice(0, limit).map((p) => ({
    op: `ledger.${p.kind}`,
    user: p.by,
    ...(p.device !== undefined ? { device: p.device } : {}),
    ref: p.id,
    at: p.at,
    actor: p.node,
    hash: `${p.node}:${p.seq}`,
    movement: { id: p.id, kind: p.kind, sku: p.sku, delta: p.delta, ...(p.reason !== undefined ? { reason: p.reason } : {}), ...(p.reference !== undefined ? { reference: p.reference } : {}) },
  }))
  const changes = documentHistory(node.store.ledger.handle.doc() as never).reverse()
  return [...moves, ...changes].sort((a, b) => b.at - a.at).slice(0, limit)
}
