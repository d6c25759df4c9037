/**
 * Delivery manifests over the site node's local API: plan, depart, deliver a stop, close, decide
 * review items, and read one manifest with its deliveries and history. The routes parse the
 * request, call the node services of src/node/manifests.ts (which post a delivered stop's
 * receipts into this site's ledger) and format the answer.
 */
import type { DocHandle } from '@automerge/automerge-repo'
import { close, depart, findStop, manifestReviewItems, manifestStatus, manifestStops, receiptPostings, stopDeliveries } from '../../docs/manifest.ts'
import { describeDelivery } from '../../docs/manifestReview.ts'
import { InputError } from '../../schema/errors.ts'
import type { Delivery, ManifestDoc } from '../../schema/manifest.ts'
import { str } from '../../schema/strings.ts'
import { changeManifest, decideManifestReview, deliverStop, findManifest, planManifest } from '../manifests.ts'
import type { SiteNode } from '../siteNode.ts'
import { historyOf, requestContext } from './documentRequests.ts'
import type { Route, RouteResult } from './routes.ts'

const ok = (body: unknown): RouteResult => ({ status: 200, body })

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

/** Applies `op` to manifest `id` as the body's user; answers the manifest as it now is. */
async function change(node: SiteNode, id: string, body: unknown, opName: string, op: Parameters<typeof changeManifest>[3]): Promise<RouteResult> {
  const { ctx, input } = requestContext(node, body)
  const handle = await changeManifest(node, id, opName, op, input, ctx)
  return ok(manifestDetail(node, id, handle as DocHandle<unknown>))
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
      const handle = await planManifest(node, input, ctx)
      return { status: 201, body: manifestDetail(node, str(handle.doc().id), handle as DocHandle<unknown>) }
    },
  },
  {
    method: 'GET',
    pattern: /^\/api\/manifests\/(?<id>[^/]+)$/,
    async handle({ node, params }) {
      const id = params.id!
      return ok(manifestDetail(node, id, (await findManifest(node, id)) as DocHandle<unknown>))
    },
  },
  {
    method: 'POST',
    pattern: /^\/api\/manifests\/(?<id>[^/]+)\/depart$/,
    handle: ({ node, params, body }) => change(node, params.id!, body, 'manifest.depart', depart),
  },
  {
    method: 'POST',
    pattern: /^\/api\/manifests\/(?<id>[^/]+)\/close$/,
    handle: ({ node, params, body }) => change(node, params.id!, body, 'manifest.close', close),
  },
  {
    method: 'POST',
    pattern: /^\/api\/manifests\/(?<id>[^/]+)\/stops\/(?<stop>[^/]+)\/delivery$/,
    async handle({ node, params, body }) {
      const { ctx, input } = requestContext(node, body)
      if (input.stop !== undefined && input.stop !== params.stop) throw new InputError('stop', 'is given by the path; leave it out of the body')
      const outcome = await deliverStop(node, params.id!, params.stop!, input, ctx)
      return { status: 201, body: { ...outcome, delivery: deliveryView(outcome.delivery) } }
    },
  },
  {
    method: 'POST',
    pattern: /^\/api\/manifests\/(?<id>[^/]+)\/review\/(?<itemId>[^/]+)\/decision$/,
    async handle({ node, params, body }) {
      const { ctx, input } = requestContext(node, body)
      return { status: 201, body: { item: await decideManifestReview(node, params.id!, params.itemId!, input, ctx) } }
    },
  },
]
