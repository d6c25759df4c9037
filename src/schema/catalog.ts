/**
 * The catalog: products, sites and reason codes. Written on the parent-ERP side, read by sites.
 */
import { z } from 'zod'
import { ReasonCode, SiteId, Sku } from './ids.ts'
import type { Str } from './strings.ts'

export const CATALOG_SCHEMA = 1

export interface CatalogProduct {
  name: Str
  unit: Str
  active: boolean
  /** Tracked by lot (batch) and expiry: its movements name a lot (absent: not tracked). */
  lots?: boolean
}
export interface CatalogSite {
  name: Str
  /** 'store' | 'clinic' | 'warehouse' | 'hub' */
  type: Str
}
export interface CatalogReason {
  label: Str
}
export interface CatalogDoc {
  schema: number
  kind: Str
  products: Record<string, CatalogProduct>
  sites: Record<string, CatalogSite>
  reasons: Record<string, CatalogReason>
}

/**
 * Reason codes the system itself writes into movements: accepted whatever the site's catalog lists,
 * so a catalog without them never stops the system's own postings. The one place to add such a
 * code (and document it in docs/conflict-rules.md, "Input rules").
 *
 * `expired`: the reason of an expiry write-off (an adjustment of a lot that has expired, as
 * `GET /api/expiring` proposes it), so that writing off expired stock never waits for the catalog.
 * The system writes no other reason of its own: a stock count is posted as a `count` movement
 * with the counter's reason (or none), receipts of a manifest delivery carry none, and the
 * compensating adjustments of a review decision carry the reasons the person gave.
 */
export const BUILT_IN_REASONS: ReadonlySet<string> = new Set<string>(['expired'])

const name = z.string().trim().min(1, { error: 'must not be empty' }).max(200, { error: 'must be at most 200 characters' })

export const ProductInput = z.strictObject({
  sku: Sku,
  name,
  unit: z.string().trim().min(1, { error: 'must not be empty' }).max(32),
  active: z.boolean().default(true),
  /** Left out: a new product is not tracked by lot, an existing one keeps what it is. */
  lots: z.boolean().optional(),
})
export type ProductInput = z.infer<typeof ProductInput>

export const SiteInput = z.strictObject({
  id: SiteId,
  name,
  type: z.enum(['store', 'clinic', 'warehouse', 'hub'], { error: 'must be store, clinic, warehouse or hub' }),
})
export type SiteInput = z.infer<typeof SiteInput>

export const ReasonInput = z.strictObject({ code: ReasonCode, label: name })
export type ReasonInput = z.infer<typeof ReasonInput>

/**
 * A product row of a catalog import. `active` left out keeps an existing product's status (a new
 * one is active): a file without the column says nothing about it, and an import changes only
 * what its file says.
 */
export const ProductImport = ProductInput.extend({ active: z.boolean().optional(), lots: z.boolean().optional() })
export type ProductImport = z.infer<typeof ProductImport>

/** Every row of a catalog import, validated; each kind keyed by its id at most once. */
export interface CatalogImport {
  products: ProductImport[]
  reasons: ReasonInput[]
  sites: SiteInput[]
}
