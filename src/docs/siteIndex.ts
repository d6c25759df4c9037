/** The document index a site node keeps, and loads at start. */
import { SITE_INDEX_SCHEMA, type SiteIndexDoc } from '../schema/siteIndex.ts'
import { imm } from '../schema/strings.ts'

export function createSiteIndex(doc: SiteIndexDoc, site: string, catalogUrl: string, ledgerUrl: string): void {
  doc.schema = SITE_INDEX_SCHEMA
  doc.kind = imm('siteIndex')
  doc.site = imm(site)
  doc.catalog = imm(catalogUrl)
  doc.ledger = imm(ledgerUrl)
  doc.orders = {}
  doc.manifests = {}
}

export function addOrder(doc: SiteIndexDoc, orderId: string, url: string): void {
  if (doc.orders[orderId] === undefined) doc.orders[orderId] = imm(url)
}

export function addManifest(doc: SiteIndexDoc, manifestId: string, url: string): void {
  if (doc.manifests[manifestId] === undefined) doc.manifests[manifestId] = imm(url)
}
