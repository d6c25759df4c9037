/** The document index a site node keeps, and loads at start. */
import { SITE_INDEX_SCHEMA, type SiteIndexDoc } from '../schema/siteIndex.ts'
import { hasOwnKey, own } from '../schema/ownProperty.ts'
import { imm, str } from '../schema/strings.ts'

export function createSiteIndex(doc: SiteIndexDoc, site: string, catalogUrl: string, ledgerUrl: string, directoryUrl?: string): void {
  doc.schema = SITE_INDEX_SCHEMA
  doc.kind = imm('siteIndex')
  doc.site = imm(site)
  doc.catalog = imm(catalogUrl)
  doc.ledger = imm(ledgerUrl)
  if (directoryUrl !== undefined) doc.directory = imm(directoryUrl)
  doc.orders = {}
  doc.manifests = {}
}

/** Registers an order's document URL under its id; an id already registered keeps its URL. */
export function addOrder(doc: SiteIndexDoc, orderId: string, url: string): void {
  if (!hasOwnKey(doc.orders, orderId)) doc.orders[orderId] = imm(url)
}

/** Registers a manifest's document URL under its id; an id already registered keeps its URL. */
export function addManifest(doc: SiteIndexDoc, manifestId: string, url: string): void {
  if (!hasOwnKey(doc.manifests, manifestId)) doc.manifests[manifestId] = imm(url)
}

/**
 * The document URL the index holds for order `orderId`, or undefined. Use this, not
 * `doc.orders[id]`: an order id `constructor` or `toString` must not find Object's.
 */
export function indexedOrderUrl(doc: SiteIndexDoc, orderId: string): string | undefined {
  const url = own(doc.orders, orderId)
  return url === undefined ? undefined : str(url)
}

/** The document URL the index holds for manifest `manifestId`, or undefined (see `indexedOrderUrl`). */
export function indexedManifestUrl(doc: SiteIndexDoc, manifestId: string): string | undefined {
  const url = own(doc.manifests, manifestId)
  return url === undefined ? undefined : str(url)
}
