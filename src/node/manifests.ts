/**
 * Manifest services of a site node: plan a manifest (registered in the site index), apply an
 * operation, deliver a stop, decide review items, and reconcile receipts.
 *
 * Delivering a stop of this site posts its receipt movements into this site's ledger
 * (ids `rcv:<manifest>:<stop>:<line>`, so a second posting of the same line is a duplicate the
 * ledger sees). The manifest change and the ledger posting are two durable steps: a crash between
 * them leaves a delivery whose receipts are not in the ledger. `reconcileReceipts` posts those;
 * the site node runs it at the end of its background load, and `deliverStop` after each posting.
 * It is idempotent: it posts only movement ids the ledger does not hold.
 */
import type { DocHandle } from '@automerge/automerge-repo'
import { isKnownSku, isLotTracked } from '../docs/catalog.ts'
import { checkManifestAgainstCatalog } from '../docs/catalogRules.ts'
import { decideManifestItem, deliverStop as deliverStopOp, findStop, manifestReviewItems, manifestStatus, planManifest as initManifest, receiptPostings, stopDeliveries } from '../docs/manifest.ts'
import type { Posting } from '../docs/ledger.ts'
import type { ChangeContext } from '../schema/changeContext.ts'
import { parseInput, RuleError } from '../schema/errors.ts'
import { type Delivery, DeliverStopInput, type ManifestDoc, PlanManifestInput } from '../schema/manifest.ts'
import type { ReviewItem } from '../schema/review.ts'
import { str } from '../schema/strings.ts'
import { changeIndexed, createIndexedDocument, findIndexed, noteFor } from './documents.ts'
import { ConflictError, NotFoundError } from '../schema/errors.ts'
import { recordMovements } from './ledger.ts'
import type { SiteNode } from './siteNode.ts'

/** A receipt movement that reached (or was already in) the ledger. */

/** The lot (and its expiry) a receipt of a manifest line posts into, when the line names one. */
function lotOf(m: { lot?: string; expiry?: string }): { lot?: string; expiry?: string } {
  return m.lot === undefined ? {} : { lot: m.lot, ...(m.expiry !== undefined ? { expiry: m.expiry } : {}) }
}

export interface ReceiptResult {
  manifest: string
  stop: string
  status: 'recorded' | 'duplicate'
  id: string
  sku: string
  quantity: number
  posting: string
}

function receiptResult(manifest: string, stop: string, r: { status: 'recorded' | 'duplicate'; posting: Posting }): ReceiptResult {
  return { manifest, stop, status: r.status, id: r.posting.id, sku: r.posting.sku, quantity: r.posting.delta, posting: `${r.posting.node}:${r.posting.seq}` }
}

/** The manifest `id` this node holds (after the background load); NotFoundError otherwise. */
export function findManifest(node: SiteNode, id: string): Promise<DocHandle<ManifestDoc>> {
  return findIndexed<ManifestDoc>(node, 'manifest', id)
}

/**
 * Posts the receipts of every delivery recorded for a stop of this site, in every manifest this
 * node holds, whose movement id the ledger does not hold yet (earliest delivery first, as
 * `receiptPostings` gives them). Idempotent. Does not wait for the background load (it runs at
 * its end): other callers await `node.fullyLoaded` first, so that every journal is indexed.
 * A stop whose receipts cannot be posted (e.g. a SKU missing from this site's catalog) is logged
 * and left for the next run; the others still post. Returns what was recorded.
 */
export async function reconcileReceipts(node: SiteNode): Promise<ReceiptResult[]> {
  if (node.readOnly.has(node.store.ledger.url)) return []
  const out: ReceiptResult[] = []
  for (const [manifestId, handle] of [...node.manifests]) {
    const doc = handle.doc() as ManifestDoc
    if (str(doc?.kind) !== 'manifest') continue
    for (const stop of Array.from(doc.stops ?? [])) {
      if (str(stop.site) !== node.identity.site || stop.deliveries.length === 0) continue
      const stopId = str(stop.id)
      const deliveries = stopDeliveries(stop)
      const seen = new Set<string>()
      const missing: unknown[] = []
      receiptPostings(doc, stopId).forEach((posting, i) => {
        const delivery = deliveries[i]!
        for (const m of posting.movements) {
          if (seen.has(m.id)) continue
          seen.add(m.id)
          if (node.book.postingsOf(m.id).length > 0) continue
          missing.push({ id: m.id, kind: 'receipt', sku: m.sku, quantity: m.quantity, reference: m.reference, ...lotOf(m), user: str(delivery.by), device: str(delivery.device) })
        }
      })
      if (missing.length === 0) continue
      try {
        // As the delivery itself posts them: facts from the hub (an expiry that differs is recorded, and reviewed).
        const results = await node.book.record(missing, 'node')
        const recorded = results.filter((r) => r.status === 'recorded')
        if (recorded.length > 0) node.events.emit('movements', { postings: recorded.map((r) => r.posting), source: 'local' })
        out.push(...recorded.map((r) => receiptResult(manifestId, stopId, r)))
      } catch (error) {
        node.log.warn({ err: error, manifest: manifestId, stop: stopId }, 'could not post the receipts of a delivered stop; will retry')
      }
    }
  }
  return out
}

/** Plans a manifest `{ id, from, carrier, stops }`. Validated before any document exists. */
export async function planManifest(node: SiteNode, input: unknown, ctx: ChangeContext): Promise<DocHandle<ManifestDoc>> {
  const plan = parseInput(PlanManifestInput, input)
  checkManifestAgainstCatalog(node.catalog.doc(), plan)
  return createIndexedDocument<ManifestDoc>(node, 'manifest', plan.id, (d) => initManifest(d, plan, ctx), noteFor('manifest.plan', ctx, plan.id))
}

/** Applies `op` (a document operation of src/docs/manifest.ts) to manifest `id`, durably. */
export function changeManifest(
  node: SiteNode,
  id: string,
  opName: string,
  op: (doc: ManifestDoc, input: Record<string, unknown>, ctx: ChangeContext) => void,
  input: Record<string, unknown>,
  ctx: ChangeContext,
): Promise<DocHandle<ManifestDoc>> {
  return changeIndexed<ManifestDoc>(node, 'manifest', id, opName, op, input, ctx)
}

/**
 * Refuses, before anything is written, a delivery of this site's stop whose receipts the ledger
 * could not take: the ledger is read-only here, or a received SKU is not in this site's catalog.
 */
function checkPostable(node: SiteNode, doc: ManifestDoc, given: DeliverStopInput): void {
  const readOnlyLedger = node.readOnly.get(node.store.ledger.url)
  if (readOnlyLedger) throw readOnlyLedger
  const stop = findStop(doc, given.stop)
  if (!stop) return // deliverStop refuses it
  const lineOf = new Map(Array.from(stop.lines).map((l) => [str(l.id), l]))
  given.lines.forEach((line, i) => {
    const shipped = lineOf.get(line.line)
    if (shipped === undefined || line.received <= 0) return
    const sku = str(shipped.sku)
    if (!isKnownSku(node.catalog.doc(), sku)) {
      throw new RuleError('unknown-sku', `SKU ${sku} of line ${line.line} is not in this site's catalog, so its receipt cannot be posted; update the catalog first`, `lines.${i}.line`)
    }
    // The hub's catalog and this site's may disagree on lot tracking (each site has its own copy
    // until it syncs): the receipt would be refused for ever, so the delivery is refused now.
    const tracked = isLotTracked(node.catalog.doc(), sku)
    if (tracked && shipped.lot === undefined) throw new RuleError('lot-required', `SKU ${sku} of line ${line.line} is tracked by lot in this site's catalog but the manifest names no lot: its receipt cannot be posted; the hub must name the lot shipped`, `lines.${i}.line`)
    if (!tracked && shipped.lot !== undefined) throw new RuleError('not-lot-tracked', `SKU ${sku} of line ${line.line} is not tracked by lot in this site's catalog but the manifest names lot ${str(shipped.lot)}: update this site's catalog first`, `lines.${i}.line`)
  })
}

/** What delivering a stop did: the delivery as recorded and, for this site's stop, its receipts. */
export interface DeliveryOutcome {
  manifest: string
  stop: string
  site: string
  status: string
  delivery: Delivery
  receipts: { posted: true; results: ReceiptResult[] } | { posted: false; reason: string; movements: unknown[] }
  reconciled?: ReceiptResult[]
}

/**
 * Records the delivery of stop `stopId` of manifest `id` (`input` as DeliverStopInput without the
 * stop) and, for a stop of this site, posts its receipts into this site's ledger.
 */
export async function deliverStop(node: SiteNode, id: string, stopId: string, input: Record<string, unknown>, ctx: ChangeContext): Promise<DeliveryOutcome> {
  const handle = await findManifest(node, id)
  const given = parseInput(DeliverStopInput, { ...input, stop: stopId })
  const stop = findStop(handle.doc(), stopId)
  const ours = stop !== undefined && str(stop.site) === node.identity.site
  if (ours) checkPostable(node, handle.doc(), given)

  // 1. the delivery, durably in the manifest
  const posting = await node.commit(handle, (d) => deliverStopOp(d, given, ctx), noteFor('manifest.deliver', ctx, id))
  const delivery = findStop(handle.doc(), stopId)!.deliveries.at(-1)!
  const answer = { manifest: id, stop: stopId, site: posting.site, status: manifestStatus(handle.doc()), delivery }
  const unposted = (reason: string): DeliveryOutcome => ({ ...answer, receipts: { posted: false, reason, movements: posting.movements } })
  if (posting.site !== node.identity.site) {
    return unposted(`stop ${stopId} is for site ${posting.site}, not this site (${node.identity.site}): the delivery is recorded in the manifest only; site ${posting.site} posts the receipts when the manifest reaches it`)
  }
  // 2. its receipts, durably in this site's ledger (a crash before this: reconcileReceipts)
  try {
    const results = posting.movements.length === 0
      ? []
      : await recordMovements(node, posting.movements.map((m) => ({ id: m.id, kind: 'receipt', sku: m.sku, quantity: m.quantity, reference: m.reference, ...lotOf(m), user: ctx.user, device: ctx.device })), 'node')
    const reconciled = await reconcileReceipts(node)
    return { ...answer, receipts: { posted: true, results: results.map((r) => receiptResult(id, stopId, r)) }, reconciled }
  } catch (error) {
    node.log.error({ err: error, manifest: id, stop: stopId }, 'delivery recorded but its receipts were not posted')
    return unposted(`the delivery is recorded, but its receipts could not be posted to the ledger (${(error as Error).message}); they are posted at the next start of the site`)
  }
}

/** Decides review item `itemId` of manifest `id` `{ note, movements? }`. NotFoundError / ConflictError as the item is unknown / decided. */
export async function decideManifestReview(node: SiteNode, id: string, itemId: string, input: unknown, ctx: ChangeContext): Promise<ReviewItem> {
  const handle = await findManifest(node, id)
  const item = manifestReviewItems(handle.doc()).find((i) => i.id === itemId)
  if (!item) throw new NotFoundError(`no review item ${itemId} on manifest ${id}`)
  if (item.status === 'resolved') throw new ConflictError(`${itemId} was already decided by ${item.decision?.by}`)
  await node.commit(handle, (d) => decideManifestItem(d, itemId, input, ctx), noteFor('manifest.decide', ctx, id))
  node.events.emit('decision', { doc: 'manifest', id, item: itemId, by: ctx.user })
  return manifestReviewItems(handle.doc()).find((i) => i.id === itemId)!
}
