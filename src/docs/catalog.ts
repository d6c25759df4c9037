/** Catalog operations (parent-ERP side and the demo/provisioning path). */
import { CATALOG_SCHEMA, ProductInput, ReasonInput, SiteInput, type CatalogDoc } from '../schema/catalog.ts'
import { parseInput } from '../schema/errors.ts'
import { assertWritable } from '../schema/migrations.ts'
import { imm, str } from '../schema/strings.ts'

export function createCatalog(doc: CatalogDoc): void {
  doc.schema = CATALOG_SCHEMA
  doc.kind = imm('catalog')
  doc.products = {}
  doc.sites = {}
  doc.reasons = {}
}

/** Adds or updates a product. Only changed fields are written. */
export function upsertProduct(doc: CatalogDoc, input: unknown): void {
  assertWritable('catalog', doc)
  const p = parseInput(ProductInput, input)
  const existing = doc.products[p.sku]
  if (!existing) {
    doc.products[p.sku] = { name: imm(p.name), unit: imm(p.unit), active: p.active }
    return
  }
  if (str(existing.name) !== p.name) existing.name = imm(p.name)
  if (str(existing.unit) !== p.unit) existing.unit = imm(p.unit)
  if (existing.active !== p.active) existing.active = p.active
}

export function upsertSite(doc: CatalogDoc, input: unknown): void {
  assertWritable('catalog', doc)
  const s = parseInput(SiteInput, input)
  const existing = doc.sites[s.id]
  if (!existing) doc.sites[s.id] = { name: imm(s.name), type: imm(s.type) }
  else {
    if (str(existing.name) !== s.name) existing.name = imm(s.name)
    if (str(existing.type) !== s.type) existing.type = imm(s.type)
  }
}

export function upsertReason(doc: CatalogDoc, input: unknown): void {
  assertWritable('catalog', doc)
  const r = parseInput(ReasonInput, input)
  const existing = doc.reasons[r.code]
  if (!existing) doc.reasons[r.code] = { label: imm(r.label) }
  else if (str(existing.label) !== r.label) existing.label = imm(r.label)
}

/** Whether a SKU is in the catalog and active. */
export function isKnownSku(doc: CatalogDoc, sku: string): boolean {
  return doc.products?.[sku]?.active === true
}
