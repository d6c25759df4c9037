/**
 * The endpoints of the site node's local API. Routes parse the request, call the node services
 * (src/node/ledger.ts, orders.ts, manifests.ts) and format the answer; no domain step lives here.
 */
import { dateOf, type Posting } from '../../docs/ledger.ts'
import { z } from 'zod'
import { InputError, parseInput } from '../../schema/errors.ts'
import { LotId, Sku } from '../../schema/ids.ts'
import { own } from '../../schema/ownProperty.ts'
import { str } from '../../schema/strings.ts'
import { BUILT_IN_REASONS } from '../../schema/catalog.ts'
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

export function movementView(p: Posting, node?: SiteNode) {
  return {
    id: p.id,
    kind: p.kind,
    sku: p.sku,
    delta: p.delta,
    ...(p.counted !== undefined ? { counted: p.counted } : {}),
    // Lot-tracked products: the lots moved (an issue served first-expiry-first-out may use several).
    ...(p.lots ? { lots: p.lots.map((part) => ({ lot: part.lot, delta: part.delta, expiry: p.lots!.length === 1 && p.expiry !== undefined ? p.expiry : node?.book.expiryOf(p.sku, part.lot) })) } : {}),
    at: p.at,
    user: p.by,
    device: p.device,
    reason: p.reason,
    reference: p.reference,
    posting: `${p.node}:${p.seq}`,
  }
}

const DAY_MS = 86_400_000

/** The lots of a lot-tracked SKU with stock (earliest expiry first), and what of its stock is in no lot (from before it was tracked). */
function lotsView(node: SiteNode, sku: string, onHand: number) {
  const lots = node.book.lotsOf(sku).filter((l) => l.onHand !== 0)
  const inLots = lots.reduce((sum, l) => sum + l.onHand, 0)
  return { lots: lots.map((l) => ({ lot: l.lot, expiry: l.expiry ?? null, onHand: l.onHand })), ...(onHand !== inLots ? { notInLots: onHand - inLots } : {}) }
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
    lotTracked: own(products, sku)?.lots === true,
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
    handle: async ({ node, params }) => {
      const sku = parseInput(z.object({ sku: Sku }), { sku: params.sku }).sku
      const item = stockItems(node).find((i) => i.sku === sku)
      if (!item) return { status: 404, body: { error: `no product ${params.sku} in the catalog or the ledger` } }
      // Lots come from the index of every movement (their expiry is in the receipts).
      await node.indexed
      return ok(item.lotTracked || node.book.lotsOf(sku).length > 0 ? { ...item, ...lotsView(node, sku, item.onHand) } : item)
    },
  },
  {
    method: 'GET',
    pattern: /^\/api\/catalog$/,
    handle: ({ node }) => {
      // What forms offer: products, the adjustment reasons this site may use, and the sites of the deployment.
      const doc = node.catalog.doc()
      const reasons = new Map(Object.entries(doc.reasons ?? {}).map(([code, r]) => [code, str(r?.label ?? code)]))
      for (const code of BUILT_IN_REASONS) if (!reasons.has(code)) reasons.set(code, code)
      return ok({
        products: Object.entries(doc.products ?? {}).map(([sku, p]) => ({ sku, name: str(p?.name ?? ''), unit: str(p?.unit ?? ''), lotTracked: p?.lots === true, active: p?.active === true })).sort((a, b) => (a.sku < b.sku ? -1 : 1)),
        reasons: [...reasons].map(([code, label]) => ({ code, label })).sort((a, b) => (a.code < b.code ? -1 : 1)),
        sites: Object.entries(doc.sites ?? {}).map(([id, s]) => ({ id, name: str(s?.name ?? ''), type: str(s?.type ?? '') })).sort((a, b) => (a.id < b.id ? -1 : 1)),
      })
    },
  },
  {
    method: 'GET',
    pattern: /^\/api\/expiring$/,
    async handle({ node, query }) {
      const raw = query.get('days') ?? '30'
      const days = /^\d{1,4}$/.test(raw) ? Number(raw) : Number.NaN
      if (!(days <= 3650)) throw new InputError('days', 'must be a whole number of days from 0 to 3650')
      await node.indexed
      const today = dateOf(node.now())
      const until = dateOf(node.now() + days * DAY_MS)
      const products = node.catalog.doc().products ?? {}
      const items = node.book
        .skusWithLots()
        .flatMap((sku) => node.book.lotsOf(sku).filter((l) => l.onHand > 0 && l.expiry !== undefined && l.expiry <= until).map((l) => ({ sku, ...l })))
        .sort((a, b) => (a.expiry! < b.expiry! ? -1 : a.expiry! > b.expiry! ? 1 : a.sku < b.sku ? -1 : 1))
        .map((l) => ({
          sku: l.sku,
          name: str(own(products, l.sku)?.name ?? ''),
          lot: l.lot,
          expiry: l.expiry!,
          onHand: l.onHand,
          expired: l.expiry! < today,
          daysLeft: Math.round((Date.parse(`${l.expiry}T00:00:00Z`) - Date.parse(`${today}T00:00:00Z`)) / DAY_MS),
          // What writes it off once expired: an adjustment of the lot with the built-in reason.
          ...(l.expiry! < today ? { writeOff: { kind: 'adjustment', sku: l.sku, lot: l.lot, delta: -l.onHand, reason: 'expired' } } : {}),
        }))
      return ok({ today, until, days, items })
    },
  },
  {
    method: 'GET',
    pattern: /^\/api\/lots\/(?<lot>[^/]+)$/,
    async handle({ node, params }) {
      const lot = parseInput(z.object({ lot: LotId }), { lot: params.lot }).lot
      await node.indexed
      const movements = node.book.movementsOfLot(lot)
      if (movements.length === 0) return { status: 404, body: { error: `no movement of lot ${lot} at this site` } }
      const skus = [...new Set(movements.map((m) => m.sku))].sort()
      return ok({
        lot,
        site: node.identity.site,
        skus: skus.map((sku) => ({ sku, expiry: node.book.expiryOf(sku, lot) ?? null, onHand: node.book.lotsOnHand().get(`${sku}|${lot}`) ?? 0 })),
        movements: movements.map((m) => movementView(m, node)),
      })
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
      const view = results.map((r) => ({ status: r.status, ...movementView(r.posting, node) }))
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
      return ok({ movements: all.slice(0, limit).map((p) => movementView(p, node)), total: all.length })
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
