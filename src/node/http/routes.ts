/** The endpoints of the site node's local API. Each reads documents or posts through the LedgerBook. */
import { InputError, parseInput } from '../../schema/errors.ts'
import { LedgerDecisionInput } from '../../schema/ledger.ts'
import type { ManifestDoc } from '../../schema/manifest.ts'
import type { OrderDoc } from '../../schema/order.ts'
import { str } from '../../schema/strings.ts'
import { historyOf } from './documentRequests.ts'
import { checkLedger, journalPostings, type Posting } from '../../docs/ledger.ts'
import { manifestReviewItems } from '../../docs/manifest.ts'
import { orderReviewItems } from '../../docs/order.ts'
import { ledgerReviewItems, reviewQueue } from '../../docs/review.ts'
import type { SiteNode } from '../siteNode.ts'
import { manifestRoutes } from './manifestRoutes.ts'
import { orderRoutes } from './orderRoutes.ts'

export interface RouteContext {
  node: SiteNode
  params: Record<string, string>
  query: URLSearchParams
  body: unknown
}
export interface RouteResult {
  status: number
  body: unknown
}
export interface Route {
  method: 'GET' | 'POST'
  pattern: RegExp
  handle(ctx: RouteContext): Promise<RouteResult> | RouteResult
}

const ok = (body: unknown): RouteResult => ({ status: 200, body })

function journals(node: SiteNode) {
  return [...node.store.journals()].map((ref) => ref.doc())
}

function movementView(p: Posting) {
  return { id: p.id, kind: p.kind, sku: p.sku, delta: p.delta, ...(p.counted !== undefined ? { counted: p.counted } : {}), at: p.at, user: p.by, device: p.device, reason: p.reason, reference: p.reference, posting: `${p.node}:${p.seq}` }
}

function limitFrom(query: URLSearchParams): number {
  const raw = query.get('limit')
  if (raw === null) return 100
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new InputError('limit', 'must be a whole number from 1 to 10000')
  return n
}

function stockItems(node: SiteNode) {
  const products = node.catalog.doc().products ?? {}
  const quantities = node.book.onHand()
  const skus = new Set([...Object.keys(products), ...quantities.keys()])
  return [...skus].sort().map((sku) => ({
    sku,
    name: products[sku] ? str(products[sku].name) : '',
    unit: products[sku] ? str(products[sku].unit) : '',
    onHand: quantities.get(sku) ?? 0,
  }))
}

function allReviewItems(node: SiteNode) {
  return reviewQueue(
    ledgerReviewItems(node.store.ledger.doc(), journals(node)),
    ...[...node.orders.values()].map((h) => orderReviewItems(h.doc() as OrderDoc)),
    ...[...node.manifests.values()].map((h) => manifestReviewItems(h.doc() as ManifestDoc)),
  )
}

export const routes: Route[] = [
  {
    method: 'GET',
    pattern: /^\/api\/health$/,
    handle: ({ node }) =>
      ok({
        status: 'ok',
        site: node.identity.site,
        node: node.identity.node,
        journals: [...node.store.journals()].length,
        documents: Object.keys(node.repo.handles).length,
        readOnly: [...node.readOnly.keys()],
      }),
  },
  {
    method: 'GET',
    pattern: /^\/api\/stock$/,
    handle: ({ node }) => ok({ items: stockItems(node) }),
  },
  {
    method: 'GET',
    pattern: /^\/api\/stock\/(?<sku>[^/]+)$/,
    handle: ({ node, params }) => {
      const item = stockItems(node).find((i) => i.sku === params.sku)
      if (!item) return { status: 404, body: { error: `no product ${params.sku} in the catalog or the ledger` } }
      return ok(item)
    },
  },
  {
    method: 'POST',
    pattern: /^\/api\/movements$/,
    async handle({ node, body }) {
      const batch = body !== null && typeof body === 'object' && 'movements' in body
      const inputs = batch ? (body as { movements: unknown }).movements : [body]
      if (!Array.isArray(inputs) || inputs.length === 0) throw new InputError('movements', 'must be a non-empty list of movements')
      if (inputs.length > 1000) throw new InputError('movements', 'at most 1000 movements per request')
      // The duplicate-id check needs every journal indexed; only the first seconds after a start wait here.
      await node.fullyLoaded
      const results = await node.book.record(inputs)
      const view = results.map((r) => ({ status: r.status, ...movementView(r.posting) }))
      return { status: results.some((r) => r.status === 'recorded') ? 201 : 200, body: batch ? { results: view } : view[0] }
    },
  },
  {
    method: 'GET',
    pattern: /^\/api\/movements$/,
    async handle({ node, query }) {
      const sku = query.get('sku')
      const limit = limitFrom(query)
      await node.fullyLoaded
      const all = journals(node)
        .flatMap(journalPostings)
        .filter((p) => sku === null || p.sku === sku)
        .sort((a, b) => b.at - a.at || (a.node < b.node ? -1 : 1) || b.seq - a.seq)
      return ok({ movements: all.slice(0, limit).map(movementView), total: all.length })
    },
  },
  {
    method: 'GET',
    pattern: /^\/api\/review$/,
    handle: async ({ node }) => {
      await node.fullyLoaded
      return ok({ items: allReviewItems(node) })
    },
  },
  {
    method: 'GET',
    pattern: /^\/api\/ledger\/check$/,
    async handle({ node }) {
      await node.fullyLoaded
      const mismatches = checkLedger(journals(node))
      return ok({ consistent: mismatches.length === 0, mismatches })
    },
  },
  {
    method: 'POST',
    pattern: /^\/api\/review\/(?<id>[^/]+)\/decision$/,
    async handle({ node, params, body }) {
      const decision = parseInput(LedgerDecisionInput, body)
      await node.fullyLoaded
      const item = allReviewItems(node).find((i) => i.id === params.id)
      if (!item) return { status: 404, body: { error: `no review item ${params.id}` } }
      if (item.doc !== 'ledger') throw new InputError('', `${item.id} is decided on its ${item.doc}, not here`)
      if (item.status === 'resolved') return { status: 409, body: { error: `${item.id} was already decided by ${item.decision?.by}` } }
      await node.book.decide(
        item,
        decision,
        decision.adjustments.map((a, i) => ({ id: `fix:${item.id}:${i + 1}`, kind: 'adjustment', sku: a.sku, delta: a.delta, reason: a.reason, user: decision.user, reference: item.id })),
      )
      return { status: 201, body: { item: allReviewItems(node).find((i) => i.id === item.id) ?? { ...item, status: 'resolved' } } }
    },
  },
  {
    method: 'GET',
    pattern: /^\/api\/history\/ledger$/,
    handle: ({ node, query }) => {
      const entries = historyOf(node.store.ledger.handle)
      return ok({ entries: entries.slice(-limitFrom(query)).reverse() })
    },
  },
  ...orderRoutes, ...manifestRoutes,
]
