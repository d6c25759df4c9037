/** Catalog operations (parent-ERP side, the CSV import and the demo/provisioning path). */
import {
  CATALOG_SCHEMA,
  ProductImport,
  ProductInput,
  ReasonInput,
  SiteInput,
  type CatalogDoc,
  type CatalogImport,
} from '../schema/catalog.ts'
import { InputError, parseInput } from '../schema/errors.ts'
import { isId } from '../schema/ids.ts'
import { assertWritable } from '../schema/migrations.ts'
import { hasOwnKey, own } from '../schema/ownProperty.ts'
import { imm, str } from '../schema/strings.ts'

export function createCatalog(doc: CatalogDoc): void {
  doc.schema = CATALOG_SCHEMA
  doc.kind = imm('catalog')
  doc.products = {}
  doc.sites = {}
  doc.reasons = {}
}

/** What an upsert did: `renamed` when the name (label) changed, `updated` when only other fields did. */
export type UpsertOutcome = 'added' | 'renamed' | 'updated' | 'unchanged'

/** Adds or updates a product. Only changed fields are written. */
export function upsertProduct(doc: CatalogDoc, input: unknown): UpsertOutcome {
  assertWritable('catalog', doc)
  return writeProduct(doc, parseInput(ProductInput, input))
}

/** `active` undefined: a new product is active, an existing one keeps its status. */
function writeProduct(doc: CatalogDoc, p: ProductImport): UpsertOutcome {
  const existing = own(doc.products, p.sku)
  if (!existing) {
    doc.products[p.sku] = { name: imm(p.name), unit: imm(p.unit), active: p.active ?? true }
    if (p.lots) doc.products[p.sku]!.lots = true
    return 'added'
  }
  const renamed = str(existing.name) !== p.name
  const unitChanged = str(existing.unit) !== p.unit
  const activeChanged = p.active !== undefined && existing.active !== p.active
  const lotsChanged = p.lots !== undefined && (existing.lots ?? false) !== p.lots
  if (renamed) existing.name = imm(p.name)
  if (unitChanged) existing.unit = imm(p.unit)
  if (activeChanged) existing.active = p.active!
  if (lotsChanged) existing.lots = p.lots!
  return renamed ? 'renamed' : unitChanged || activeChanged || lotsChanged ? 'updated' : 'unchanged'
}

/** Adds or updates a site. Only changed fields are written. */
export function upsertSite(doc: CatalogDoc, input: unknown): UpsertOutcome {
  assertWritable('catalog', doc)
  const s = parseInput(SiteInput, input)
  const existing = own(doc.sites, s.id)
  if (!existing) {
    doc.sites[s.id] = { name: imm(s.name), type: imm(s.type) }
    return 'added'
  }
  const renamed = str(existing.name) !== s.name
  const retyped = str(existing.type) !== s.type
  if (renamed) existing.name = imm(s.name)
  if (retyped) existing.type = imm(s.type)
  return renamed ? 'renamed' : retyped ? 'updated' : 'unchanged'
}

/** Adds or relabels an adjustment reason. */
export function upsertReason(doc: CatalogDoc, input: unknown): UpsertOutcome {
  assertWritable('catalog', doc)
  const r = parseInput(ReasonInput, input)
  const existing = own(doc.reasons, r.code)
  if (!existing) {
    doc.reasons[r.code] = { label: imm(r.label) }
    return 'added'
  }
  if (str(existing.label) === r.label) return 'unchanged'
  existing.label = imm(r.label)
  return 'renamed'
}

export type ImportCounts = Record<UpsertOutcome, number>
export type CatalogImportCounts = Record<keyof CatalogImport, ImportCounts>

/**
 * Adds and updates every product, reason and site of an import; what the import does not name is
 * kept (a product is never deleted from under a ledger that has movements of it). Throws
 * `InputError` before writing anything if a row is invalid or an id is listed twice, so a refused
 * import inside `SiteNode.commit` changes nothing. Returns what it did, per kind.
 */
export function importCatalog(doc: CatalogDoc, parsed: CatalogImport): CatalogImportCounts {
  assertWritable('catalog', doc)
  const products = parsed.products.map((row) => parseInput(ProductImport, row))
  const reasons = parsed.reasons.map((row) => parseInput(ReasonInput, row))
  const sites = parsed.sites.map((row) => parseInput(SiteInput, row))
  // The same id twice would count twice and leave whichever came last: a mistake in the file.
  for (const [what, ids] of [['sku', products.map((p) => p.sku)], ['code', reasons.map((r) => r.code)], ['id', sites.map((s) => s.id)]] as const) {
    const seen = new Set<string>()
    for (const id of ids) {
      if (seen.has(id)) throw new InputError(what, `${id} is listed twice`)
      seen.add(id)
    }
  }
  const counts = (): ImportCounts => ({ added: 0, renamed: 0, updated: 0, unchanged: 0 })
  const result: CatalogImportCounts = { products: counts(), reasons: counts(), sites: counts() }
  for (const p of products) result.products[writeProduct(doc, p)]++
  for (const r of reasons) result.reasons[upsertReason(doc, r)]++
  for (const s of sites) result.sites[upsertSite(doc, s)]++
  return result
}

/** Whether a SKU is in the catalog and active. */
export function isKnownSku(doc: CatalogDoc, sku: string): boolean {
  return own(doc.products, sku)?.active === true
}

/** Whether the catalog tracks a SKU by lot and expiry. */
export function isLotTracked(doc: CatalogDoc, sku: string): boolean {
  return own(doc.products, sku)?.lots === true
}

/** Whether the catalog lists a reason code (built-in reasons are not listed: see `BUILT_IN_REASONS`). */
export function isKnownReason(doc: CatalogDoc, code: string): boolean {
  return own(doc.reasons, code) !== undefined
}

/**
 * The reason codes the catalog lists, sorted. What a site node gives its LedgerBook as
 * `knownReasons: () => reasonCodes(catalog.doc())`.
 */
export function reasonCodes(doc: CatalogDoc): string[] {
  return Object.keys(doc.reasons ?? {}).sort()
}

/** The site ids the catalog lists, sorted (none: a standalone site's catalog, see `isKnownSite`). */
export function siteIds(doc: CatalogDoc): string[] {
  return Object.keys(doc.sites ?? {}).sort()
}

/**
 * Whether an order or manifest may name `site`. A catalog that lists no sites at all (a
 * standalone site, provisioned without a site list) accepts any well-formed site id: there is
 * nothing to check against, and refusing every order and manifest would stop such a site
 * working. A catalog that lists sites is the deployment's list of sites, and any other id is
 * refused. Rules: docs/conflict-rules.md, "Input rules".
 */
export function isKnownSite(doc: CatalogDoc, site: string): boolean {
  if (!isId(site)) return false
  const sites = doc.sites ?? {}
  return Object.keys(sites).length === 0 || hasOwnKey(sites, site)
}
