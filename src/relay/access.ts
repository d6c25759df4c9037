/**
 * Which documents a peer may read and write through the relay (v1). Pure and in memory: automerge-repo
 * asks `access(peerId, documentId)` for every message and every loaded document on each connect.
 *
 * ## The rule
 * A peer `<role>/<S>/<device>` (authenticated at the upgrade, so S is its credential's site) may
 * access a document when:
 * 1. it is the deployment catalog (every site reads it); or
 * 2. it is one of S's roots: the documents the hub's register gives S at enrolment (its index and
 *    ledger). The register is written by the hub only, so S cannot forge this; or
 * 3. the relay recorded S as its owner: the first authenticated site that brought the document to
 *    this relay (its first `sync` message for a document the relay had no record of) owns it. The
 *    record is kept durably by the relay (src/relay/owners.ts), never taken from a document's content.
 *
 * A document with no record (not the catalog, nobody's root, no owner) may be claimed by the first
 * site that sends content for it ({@link SiteAccess.claimable}); until then any request for it is
 * refused, so a peer asking for an id the relay does not know gets "unavailable" and the relay does
 * not go and ask other sites for it on the requester's behalf.
 *
 * ## What a site can and cannot do
 * - Naming another site's document in its own index or ledger grants nothing: content is never read.
 * - It cannot take over a document that has a record (root, owner or catalog): claims only apply to
 *   documents with no record.
 * - Limit: a site that learns a document id before its owner first syncs it (the ids are 128-bit
 *   random, so only by being told) can claim it first; the owner then gets "unavailable" for its own
 *   document and an operator has to move the record. The relay logs every claim with the device.
 * - Limit: documents shared between sites (an order from A to supplier B, a manifest with stops at
 *   A and B and carrier C) are only their owner's in v1: B does not get A's order. Party membership
 *   read from a document's first change is the next step (issue 6), not done here.
 * - Limit: the catalog is readable and also writable by every site (automerge-repo's access is
 *   read and write together); the node services only ever read it.
 * - Peers with role `relay` or `carrier` are treated like devices of their credential's site.
 */
import { parsePeerId } from '../network/peerId.ts'

export class SiteAccess {
  #catalog: string | undefined
  /** document → site whose root it is */
  readonly #roots = new Map<string, string>()
  /** document → owning site (first bringer) */
  readonly #owners = new Map<string, string>()

  constructor(options: { catalog?: string; roots?: Iterable<[site: string, documents: Iterable<string>]>; owners?: Iterable<[document: string, site: string]> } = {}) {
    this.#catalog = options.catalog
    for (const [site, documents] of options.roots ?? []) this.setRoots(site, documents)
    for (const [document, site] of options.owners ?? []) this.#owners.set(document, site)
  }

  setCatalog(documentId: string | undefined): void {
    this.#catalog = documentId
  }

  /** Records the documents the hub gave `site` at enrolment. */
  setRoots(site: string, documents: Iterable<string>): void {
    for (const document of documents) this.#roots.set(document, site)
  }

  /** The site that owns (or has as a root) the document, if any. */
  siteOf(documentId: string): string | undefined {
    return this.#roots.get(documentId) ?? this.#owners.get(documentId)
  }

  /** True when nobody has a record of the document: the first site to bring it may claim it. */
  claimable(documentId: string): boolean {
    return documentId !== this.#catalog && !this.#roots.has(documentId) && !this.#owners.has(documentId)
  }

  /** Records `site` as the owner of a claimable document; false (nothing changes) otherwise. */
  claim(documentId: string, site: string): boolean {
    if (!this.claimable(documentId)) return false
    this.#owners.set(documentId, site)
    return true
  }

  /** The `access` of automerge-repo's shareConfig. */
  mayAccess(peerId: string, documentId: string): boolean {
    if (documentId === this.#catalog) return parsePeerId(peerId) !== undefined
    const peer = parsePeerId(peerId)
    if (!peer) return false
    return this.siteOf(documentId) === peer.site
  }

  get ownerCount(): number {
    return this.#owners.size
  }
}
