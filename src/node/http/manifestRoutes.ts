/**
 * Delivery manifests over the site node's local API: plan, depart, deliver a stop, close, decide
 * review items, and read one manifest with its deliveries and history. Every write goes through
 * `node.commit` with a change note `{op, user, device, ref: manifestId}`.
 *
 * Delivering a stop of this site posts its receipt movements into this site's ledger
 * (ids `rcv:<manifest>:<stop>:<line>`, so a second posting of the same line is a duplicate the
 * ledger sees). The manifest change and the ledger posting are two durable steps: a crash between
 * them leaves a delivery whose receipts are not in the ledger. `reconcileReceipts` posts those;
 * the site node runs it at the end of its background load, and the delivery endpoint after each
 * posting. It is idempotent: it posts only movement ids the ledger does not hold.
 */
import type { DocHandle } from '@automerge/automerge-repo'
import { isKnownSku } from '../../docs/catalog.ts'
import {
  close,
  decideManifestItem,
  deliverStop,
  depart,
  findStop,
  manifestReviewItems,
  manifestStatus,
  manifestStops,
  planManifest,
  receiptPostings,
  stopDeliveries,
} from '../../docs/manifest.ts'
import { describeDelivery } from '../../docs/manifestReview.ts'
import type { Posting } from '../../docs/ledger.ts'
import { addManifest } from '../../docs/siteIndex.ts'
import type { ChangeContext } from '../../schema/changeContext.ts'
import { InputError, parseInput, RuleError } from '../../schema/errors.ts'
import { type Delivery, DeliverStopInput, type ManifestDoc, PlanManifestInput } from '../../schema/manifest.ts'
import { str } from '../../schema/strings.ts'
import type { SiteNode } from '../siteNode.ts'
import { createDocument, historyOf, notFound, noteFor, requestContext, serialCreate } from './documentRequests.ts'
import type { Route, RouteResult } from './routes.ts'

const ok = (body: unknown): RouteResult => ({ status: 200, body })

/** A receipt movement that reached (or was already in) the ledger. */
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

/**
 * Posts the receipts of every delivery recorded for a stop of this site, in every manifest this
 * node holds, whose movement id the ledger does not hold yet (earliest delivery first, as
 * `receiptPostings` gives them). Idempotent. Does not wait for the background load: a caller other
 * than the load itself awaits `node.fullyLoaded` first, so that every journal is indexed.
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
          missing.push({ id: m.id, kind: 'receipt', sku: m.sku, quantity: m.quantity, reference: m.reference, user: str(delivery.by), device: str(delivery.device) })
        }
      })
      if (missing.length === 0) continue
      try {
        const results = await node.book.record(missing)
        out.push(...results.filter((r) => r.status === 'recorded').map((r) => receiptResult(manifestId, stopId, r)))
      } catch (error) {
        node.log.warn({ err: error, manifest: manifestId, stop: stopId }, 'could not post the receipts of a delivered stop; will retry')
      }
    }
  }
  return out
}

function deliveryView(d: Delivery) {
  return { ...describeDelivery(d), signature: str(d.signature) }
}

function manifestView(id: string, doc: ManifestDoc) {
  return { id, status: manifestStatus(doc), from: str(doc.from), carrier: str(doc.carrier), stops: manifestStops(doc) }
}

function manifestDetail(node: SiteNode, id: string, handle: DocHandle<unknown>) {
  const doc = handle.doc() as ManifestDoc
  const view = manifestView(id, doc)
  return {
    ...view,
    createdBy: str(doc.createdBy),
    createdAt: doc.createdAt,
    events: Array.from(doc.events ?? []).map((e) => ({ to: str(e.to), by: str(e.by), device: str(e.device), at: e.at, ...(e.reason !== undefined ? { reason: str(e.reason) } : {}) })),
    stops: view.stops.map((s) => {
      const stop = findStop(doc, s.id)!
      const ours = s.site === node.identity.site
      return {
        ...s,
        recorded: stopDeliveries(stop).map(deliveryView),
        // For this site's stops: the receipt movements and whether the ledger holds them.
        ...(ours
          ? {
              receipts: [...new Map(receiptPostings(doc, s.id).flatMap((p) => p.movements.map((m) => [m.id, m] as const))).values()].map((m) => ({
                id: m.id,
                sku: m.sku,
                quantity: m.quantity,
                inLedger: node.book.postingsOf(m.id).length > 0,
              })),
            }
          : {}),
      }
    }),
    review: manifestReviewItems(doc),
    history: historyOf(handle),
  }
}

/** The loaded manifest `id` (after the background load), or undefined. */
async function findManifest(node: SiteNode, id: string): Promise<DocHandle<ManifestDoc> | undefined> {
  await node.fullyLoaded
  return node.manifests.get(id) as DocHandle<ManifestDoc> | undefined
}

async function changeManifest(
  node: SiteNode,
  id: string,
  body: unknown,
  opName: string,
  op: (doc: ManifestDoc, input: Record<string, unknown>, ctx: ChangeContext) => void,
): Promise<RouteResult> {
  const handle = await findManifest(node, id)
  if (!handle) return notFound('manifest', id)
  const { ctx, input } = requestContext(node, body)
  await node.commit(handle, (d) => op(d, input, ctx), noteFor(opName, ctx, id))
  return ok(manifestDetail(node, id, handle as DocHandle<unknown>))
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
  const skuOf = new Map(Array.from(stop.lines).map((l) => [str(l.id), str(l.sku)]))
  given.lines.forEach((line, i) => {
    const sku = skuOf.get(line.line)
    if (sku !== undefined && line.received > 0 && !isKnownSku(node.catalog.doc(), sku)) {
      throw new RuleError('unknown-sku', `SKU ${sku} of line ${line.line} is not in this site's catalog, so its receipt cannot be posted; update the catalog first`, `lines.${i}.line`)
    }
  })
}

export const manifestRoutes: Route[] = [
  {
    method: 'GET',
    pattern: /^\/api\/manifests$/,
    async handle({ node }) {
      await node.fullyLoaded
      return ok({ manifests: [...node.manifests].map(([id, h]) => manifestView(id, h.doc() as ManifestDoc)) })
    },
  },
  {
    method: 'POST',
    pattern: /^\/api\/manifests$/,
    async handle({ node, body }) {
      const { ctx, input } = requestContext(node, body)
      // Validate before any document exists: a refused request leaves nothing behind.
      const plan = parseInput(PlanManifestInput, input)
      const readOnlyIndex = node.readOnly.get(node.index.url)
      if (readOnlyIndex) throw readOnlyIndex
      return serialCreate(node, async () => {
        if (node.index.doc().manifests?.[plan.id] !== undefined || node.manifests.has(plan.id)) {
          return { status: 409, body: { error: `manifest ${plan.id} already exists`, field: 'id' } }
        }
        const handle = await createDocument<ManifestDoc>(node, (d) => planManifest(d, plan, ctx), noteFor('manifest.plan', ctx, plan.id))
        await node.commit(node.index, (d) => addManifest(d, plan.id, handle.url), noteFor('siteIndex.addManifest', ctx, plan.id))
        node.manifests.set(plan.id, handle as DocHandle<unknown>)
        return { status: 201, body: manifestDetail(node, plan.id, handle as DocHandle<unknown>) }
      })
    },
  },
  {
    method: 'GET',
    pattern: /^\/api\/manifests\/(?<id>[^/]+)$/,
    async handle({ node, params }) {
      const id = params.id!
      const handle = await findManifest(node, id)
      if (!handle) return notFound('manifest', id)
      return ok(manifestDetail(node, id, handle as DocHandle<unknown>))
    },
  },
  {
    method: 'POST',
    pattern: /^\/api\/manifests\/(?<id>[^/]+)\/depart$/,
    handle: ({ node, params, body }) => changeManifest(node, params.id!, body, 'manifest.depart', depart),
  },
  {
    method: 'POST',
    pattern: /^\/api\/manifests\/(?<id>[^/]+)\/close$/,
    handle: ({ node, params, body }) => changeManifest(node, params.id!, body, 'manifest.close', close),
  },
  {
    method: 'POST',
    pattern: /^\/api\/manifests\/(?<id>[^/]+)\/stops\/(?<stop>[^/]+)\/delivery$/,
    async handle({ node, params, body }) {
      const id = params.id!
      const stopId = params.stop!
      const handle = await findManifest(node, id)
      if (!handle) return notFound('manifest', id)
      const { ctx, input } = requestContext(node, body)
      if (input.stop !== undefined && input.stop !== stopId) throw new InputError('stop', 'is given by the path; leave it out of the body')
      const given = parseInput(DeliverStopInput, { ...input, stop: stopId })
      const stop = findStop(handle.doc(), stopId)
      const ours = stop !== undefined && str(stop.site) === node.identity.site
      if (ours) checkPostable(node, handle.doc(), given)

      // 1. the delivery, durably in the manifest
      const posting = await node.commit(handle, (d) => deliverStop(d, given, ctx), noteFor('manifest.deliver', ctx, id))
      const recorded = findStop(handle.doc(), stopId)!.deliveries.at(-1)!
      const answer = { manifest: id, stop: stopId, site: posting.site, status: manifestStatus(handle.doc()), delivery: deliveryView(recorded) }
      const unposted = (reason: string): RouteResult => ({ status: 201, body: { ...answer, receipts: { posted: false, reason, movements: posting.movements } } })
      if (posting.site !== node.identity.site) {
        return unposted(`stop ${stopId} is for site ${posting.site}, not this site (${node.identity.site}): the delivery is recorded in the manifest only; site ${posting.site} posts the receipts when the manifest reaches it`)
      }
      // 2. its receipts, durably in this site's ledger (a crash before this: reconcileReceipts)
      try {
        const results = posting.movements.length === 0
          ? []
          : await node.book.record(posting.movements.map((m) => ({ id: m.id, kind: 'receipt', sku: m.sku, quantity: m.quantity, reference: m.reference, user: ctx.user, device: ctx.device })))
        const reconciled = await reconcileReceipts(node)
        return { status: 201, body: { ...answer, receipts: { posted: true, results: results.map((r) => receiptResult(id, stopId, r)) }, reconciled } }
      } catch (error) {
        node.log.error({ err: error, manifest: id, stop: stopId }, 'delivery recorded but its receipts were not posted')
        return unposted(`the delivery is recorded, but its receipts could not be posted to the ledger (${(error as Error).message}); they are posted at the next start of the site`)
      }
    },
  },
  {
    method: 'POST',
    pattern: /^\/api\/manifests\/(?<id>[^/]+)\/review\/(?<itemId>[^/]+)\/decision$/,
    async handle({ node, params, body }) {
      const id = params.id!
      const itemId = params.itemId!
      const handle = await findManifest(node, id)
      if (!handle) return notFound('manifest', id)
      const { ctx, input } = requestContext(node, body)
      const item = manifestReviewItems(handle.doc()).find((i) => i.id === itemId)
      if (!item) return { status: 404, body: { error: `no review item ${itemId} on manifest ${id}` } }
      if (item.status === 'resolved') return { status: 409, body: { error: `${itemId} was already decided by ${item.decision?.by}` } }
      await node.commit(handle, (d) => decideManifestItem(d, itemId, input, ctx), noteFor('manifest.decide', ctx, id))
      return { status: 201, body: { item: manifestReviewItems(handle.doc()).find((i) => i.id === itemId) } }
    },
  },
]
