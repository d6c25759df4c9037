/**
 * The index a site node keeps of the documents it holds. automerge-repo syncs only documents that
 * are loaded, so at start a node loads everything its index names
 * (https://github.com/automerge/automerge-repo/issues/397).
 */
import type { Str } from './strings.ts'

export const SITE_INDEX_SCHEMA = 1

export interface SiteIndexDoc {
  schema: number
  kind: Str
  site: Str
  catalog: Str
  ledger: Str
  /**
   * The site's directory of documents other sites shared with it (src/schema/siteDirectory.ts);
   * made by the hub for an enrolled site, absent on a standalone site.
   */
  directory?: Str
  /** Order document URLs by order id. */
  orders: Record<string, Str>
  /** Manifest document URLs by manifest id. */
  manifests: Record<string, Str>
}
