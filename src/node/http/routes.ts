/**
 * The endpoints of the site node's local API. Routes parse the request, call the node services
 * (src/node/ledger.ts, orders.ts, manifests.ts) and format the answer; no domain step lives here.
 */
import type { Posting } from '../../docs/ledger.ts'
import { z } from 'zod'
import { InputError, parseInput } from '../../schema/errors.ts'
import { Sku } from '../../schema/ids.ts'
import { own } from '../../schema/ownProperty.ts'
import { str } from '../../schema/strings.ts'
import { decideLedgerReview, ledgerCheck, ledgerHistory, postings, recordMovements, reviewItems } from '../ledger.ts'
import type { SiteNode } from '../siteNode.ts'
import { syncStatus } from '../syncStatus.ts'
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
    name: str(own(products, sku)?.name ?? ''),
    unit: str(own(products, sku)?.unit ?? ''),
    onHand: quantities.get(sku) ?? 0,
  }))
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
        index: node.index.url,
        ledger: node.store.ledger.url,
        catalog: node.catalog.url,
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
      const sku = parseInput(z.object({ sku: Sku }), { sku: params.sku }).sku
      const item = stockItems(node).find((i) => i.sku === sku)
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
      const results = await recordMovements(node, inputs)
      const view = results.map((r) => ({ status: r.status, ...movementView(r.posting) }))
      return { status: results.some((r) => r.status === 'recorded') ? 201 : 200, body: batch ? { results: view } : view[0] }
    },
  },
  {
    method: 'GET',
    pattern: /^\/api\/movements$/,
    async handle({ node, query }) {
      const raw = query.get('sku')
      const sku = raw === null ? null : parseInput(z.object({ sku: Sku }), { sku: raw }).sku
      const limit = limitFrom(query)
      const all = await postings(node, sku ?? undefined)
      return ok({ movements: all.slice(0, limit).map(movementView), total: all.length })
    },
  },
  {
    method: 'GET',
    pattern: /^\/api\/review$/,
    handle: async ({ node }) => ok({ items: await reviewItems(node) }),
  },
  {
    method: 'GET',
    pattern: /^\/api\/ledger\/check$/,
    async handle({ node }) {
      const mismatches = await ledgerCheck(node)
      return ok({ consistent: mismatches.length === 0, mismatches })
    },
  },
  {
    method: 'POST',
    pattern: /^\/api\/review\/(?<id>[^/]+)\/decision$/,
    async handle({ node, params, body }) {
      return { status: 201, body: { item: await decideLedgerReview(node, params.id!, body) } }
    },
  },
  {
    method: 'GET',
    pattern: /^\/api\/sync$/,
    handle: ({ node }) => ok(syncStatus(node)),
  },
  {
    method: 'GET',
    pattern: /^\/api\/history\/ledger$/,
    handle: async ({ node, query }) => ok({ entries: await ledgerHistory(node, limitFrom(query)) }),
  },
  ...orderRoutes, ...manifestRoutes,
]
