/**
 * Ledger services of a site node: recording movements (announced to listeners once durable),
 * the review queue over every document the node holds, deciding a ledger review item with its
 * compensating movements, and the ledger's history as a person reads it.
 */
import { createHash } from 'node:crypto'
import { checkLedgerDecisionAgainstCatalog } from '../docs/catalogRules.ts'
import { checkLedger, type Posting } from '../docs/ledger.ts'
import type { RecordResult } from '../docs/ledgerBook.ts'
import type { PostingList } from '../docs/postingTable.ts'
import { manifestReviewItems } from '../docs/manifest.ts'
import { orderReviewItems } from '../docs/order.ts'
import { ledgerReviewItemsOf, reviewQueue } from '../docs/review.ts'
import { documentHistory, type HistoryEntry } from '../docs/history.ts'
import { ConflictError, InputError, NotFoundError, parseInput } from '../schema/errors.ts'
import { isId } from '../schema/ids.ts'
import { LedgerDecisionInput } from '../schema/ledger.ts'
import type { ManifestDoc } from '../schema/manifest.ts'
import type { OrderDoc } from '../schema/order.ts'
import type { ReviewItem } from '../schema/review.ts'
import type { SiteNode } from './siteNode.ts'

/** Every journal this node holds, as documents. */
export function journalDocs(node: SiteNode) {
  return [...node.store.journals()].map((ref) => ref.doc())
}

/**
 * Movement ids the node makes itself: receipts of a delivered stop (`rcv:`) and compensating
 * adjustments of a decision (`fix:`). A client may not use them, or a receipt or a compensation
 * would be answered as a duplicate of whatever the client posted under that id.
 */
const RESERVED_PREFIXES = ['rcv:', 'fix:']

function refuseReservedIds(inputs: unknown[]): void {
  inputs.forEach((input, i) => {
    const id = input !== null && typeof input === 'object' ? (input as { id?: unknown }).id : undefined
    if (typeof id !== 'string') return
    const prefix = RESERVED_PREFIXES.find((p) => id.startsWith(p))
    if (prefix) throw new InputError(inputs.length > 1 ? `movements.${i}.id` : 'id', `ids starting with ${prefix} are made by the site node itself (${RESERVED_PREFIXES.join(' and ')}); choose another id`)
  })
}

/**
 * Records movements (validated by the ledger's rules; a batch is all or nothing) and returns once
 * they are durable; listeners then hear of the ones recorded. Waits until every movement id is
 * indexed (from the journal cache after a restart: src/node/journalCache.ts), not for the whole
 * background load. Movements from outside (`origin: 'client'`, the default) may not use the ids
 * the node makes itself.
 */
export async function recordMovements(node: SiteNode, inputs: unknown[], origin: 'client' | 'node' = 'client'): Promise<RecordResult[]> {
  if (origin === 'client') refuseReservedIds(inputs)
  await node.indexed
  // A count sets on hand to what was counted: it waits until every receipt a crash left unposted
  // (a delivered stop) is posted, or the count would absorb it and the receipt count twice.
  if (inputs.some((i) => i !== null && typeof i === 'object' && (i as { kind?: unknown }).kind === 'count')) await node.fullyLoaded
  const results = await node.book.record(inputs, origin)
  announce(node, results)
  return results
}

/** Tells listeners of the movements a result list recorded (once they are durable). */
function announce(node: SiteNode, results: RecordResult[]): void {
  const postings = results.filter((r) => r.status === 'recorded').map((r) => r.posting)
  if (postings.length > 0) node.events.emit('movements', { postings, source: 'local' })
}

/**
 * Every posting of this site's ledger, newest first (optionally of one SKU), from the ledger
 * book's maintained index: answered as soon as the movement ids are indexed after a start.
 */
export async function postings(node: SiteNode, sku?: string): Promise<PostingList> {
  await node.indexed
  return node.book.postings(sku)
}

/** On hand = Σ movements, journal by journal: the mismatches, none when consistent. */
export async function ledgerCheck(node: SiteNode) {
  await node.indexed
  return node.book.check()
}

/** The review queue of every document the node holds, the same on every replica holding them. */
export async function reviewItems(node: SiteNode): Promise<ReviewItem[]> {
  await node.fullyLoaded
  return reviewQueue(
    ledgerReviewItemsOf(node.store.ledger.doc(), node.book.reviewFacts()),
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
export function decideLedgerReview(node: SiteNode, itemId: string, body: unknown): Promise<ReviewItem> {
  const decision = parseInput(LedgerDecisionInput, body)
  checkLedgerDecisionAgainstCatalog(node.catalog.doc(), decision)
  // One decision at a time on a node: the item is looked up, decided and compensated with no
  // other decision in between, so a second person deciding the same item is told it is decided
  // (409) and posts nothing.
  return serialDecision(node, async () => {
    const item = (await reviewItems(node)).find((i) => i.id === itemId)
    if (!item) throw new NotFoundError(`no review item ${itemId}`)
    if (item.doc !== 'ledger') throw new InputError('', `${item.id} is decided on its ${item.doc}, not here`)
    if (item.status === 'resolved') throw new ConflictError(`${item.id} was already decided by ${item.decision?.by}`)
    const adjustments = decision.adjustments.map((a, i) => ({ id: compensationId(item.id, node.identity.node, i + 1), kind: 'adjustment' as const, sku: a.sku, delta: a.delta, reason: a.reason, ...(a.lot !== undefined ? { lot: a.lot } : {}), user: decision.user, reference: item.id }))
    announce(node, await node.book.decide(item, decision, adjustments))
    node.events.emit('decision', { doc: 'ledger', id: node.store.ledger.url, item: item.id, by: decision.user })
    return (await reviewItems(node)).find((i) => i.id === item.id) ?? { ...item, status: 'resolved' }
  })
}

/**
 * The movement id of the n-th compensating adjustment of `device`'s decision on `itemId`:
 * `fix:<item>:<device>:<n>`, the same on every retry on that device, and never the same as
 * another device's (two people deciding one item apart each post their own compensation, both
 * kept and shown). An id that cannot be a movement id (too long, or a `~` episode suffix) is
 * replaced by a digest; the movement's reference still names the item.
 */
export function compensationId(itemId: string, device: string, n: number): string {
  const readable = `fix:${itemId}:${device}:${n}`
  return isId(readable) ? readable : `fix:${createHash('sha256').update(`${itemId}\u0000${device}`).digest('hex').slice(0, 32)}:${n}`
}

const deciding = new WeakMap<SiteNode, Promise<unknown>>()

function serialDecision<T>(node: SiteNode, task: () => Promise<T>): Promise<T> {
  const run = (deciding.get(node) ?? Promise.resolve()).then(task, task)
  deciding.set(node, run.catch(() => undefined))
  return run
}

/**
 * Posts the compensating adjustments of this node's ledger decisions that a crash left unposted
 * (the decision is recorded first). Idempotent; run at the end of the background load.
 */
export async function reconcileDecisions(node: SiteNode): Promise<RecordResult[]> {
  if (node.readOnly.has(node.store.ledger.url)) return []
  const recorded = await node.book.reconcileDecisions()
  announce(node, recorded)
  return recorded
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
