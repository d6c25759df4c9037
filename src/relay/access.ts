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
 * 4. S is a party of a document owned by another site: when the relay first holds a document a site
 *    claimed, it reads the parties once from the document as brought ({@link partiesOf}): an order
 *    `from` its owner names its supplier `to`; a manifest `from` its owner names its `carrier` and
 *    the `site` of each stop. The record is kept durably and never re-read, so later edits (by the
 *    owner or by a party) add or remove nobody.
 *
 * - Parties only ever grant access to the owner's own document: a site can expose its own order to
 *   any site it names (that is what an order is), never another site's document.
 * - A party learns of the document from its directory (a root the hub made at enrolment): the
 *   relay that records the parties lists the document there (src/relay/directory.ts), and the
 *   party's nodes list it beside their own.
 * - Limit: parties can write too (an order's supplier records its decision in it); a party could
 *   also write junk into it. Per-field write rules are not enforced by the relay.
 * - Limit: the catalog is readable and also writable by every site (automerge-repo's access is
 *   read and write together); the node services only ever read it.
 * - A carrier enrolled with a route (`serves`) is a relay that travels: below the relays it
 *   reaches, it acts for the sites of its route. One without a route is a device of its site.
 * - Two carriers that meet on a LAN are neither above the other (`setLateral`): a document crosses
 *   when a site of each route may see it, and each takes the other's owner and parties statements
 *   for documents it has no record of, for an owner on the stating carrier's route only.
 *
 * ## Relays in a chain (site gateway → district → national)
 * - A relay connected below this one acts for the sites its credential `serves` (signed by the
 *   hub): it may access what any of them may. It never claims a document by bringing it: it states
 *   the owner it recorded (a control message before the document's first sync message), and the
 *   statement is taken only for a site it serves and a document with no record here.
 * - The relay this one is chained under (its upstream) may access everything this one holds, and
 *   its statements of owners and parties, and of the sites' roots and the revocation list, are
 *   taken as given (the revocation list is signed by the deployment and checked; the rest is
 *   trusted as the upstream's word: connect to an upstream over a network you trust, or wss).
 */
import { ImmutableString } from '@automerge/automerge'
import { parsePeerId } from '../network/peerId.ts'
import { isId } from '../schema/ids.ts'

const MAX_PARTIES = 200

/**
 * The other sites party to a document as its owner brought it: an order's supplier (`to`), a
 * manifest's carrier and stop sites. Nothing when the document does not say it is from `owner`.
 */
export function partiesOf(doc: unknown, owner: string): string[] {
  if (!doc || typeof doc !== 'object') return []
  const d = doc as { kind?: unknown; from?: unknown; to?: unknown; carrier?: unknown; stops?: unknown }
  if (text(d.from) !== owner) return []
  const kind = text(d.kind)
  const named: unknown[] = []
  if (kind === 'order') named.push(d.to)
  else if (kind === 'manifest') {
    named.push(d.carrier)
    if (Array.isArray(d.stops)) for (const stop of d.stops.slice(0, MAX_PARTIES)) named.push((stop as { site?: unknown } | null)?.site)
  } else return []
  const parties = new Set<string>()
  for (const value of named) {
    const site = text(value)
    if (isId(site) && site !== owner) parties.add(site)
  }
  return [...parties].slice(0, MAX_PARTIES)
}

/** A string field as documents store it (an Automerge ImmutableString, or a plain string). */
export function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value
  if (value instanceof ImmutableString) return value.val
  // an ImmutableString of another copy of the automerge package
  const val = value !== null && typeof value === 'object' ? (value as { val?: unknown }).val : undefined
  return typeof val === 'string' ? val : undefined
}

export class SiteAccess {
  #catalog: string | undefined
  /** document → site whose root it is */
  readonly #roots = new Map<string, string>()
  /** document → owning site (first bringer) */
  readonly #owners = new Map<string, string>()
  /** document → other sites party to it (rule 4) */
  readonly #parties = new Map<string, Set<string>>()
  /** site → its directory document (one of its roots), where relays list what is shared with it */
  readonly #directories = new Map<string, string>()
  /** relay peer → the sites it serves */
  readonly #serves = new Map<string, readonly string[]>()
  /** the relays this one is chained under */
  readonly #upstream = new Set<string>()
  /** sites the register gave roots */
  readonly #sites = new Set<string>()
  /** carriers met on a LAN by this carrier (neither above the other) */
  readonly #lateral = new Set<string>()
  /** the sites this relay serves (a carrier: its route), for lateral links */
  #own: readonly string[] = []

  constructor(
    options: {
      catalog?: string
      roots?: Iterable<[site: string, documents: Iterable<string>, directory?: string]>
      owners?: Iterable<[document: string, site: string]>
      parties?: Iterable<[document: string, sites: Iterable<string>]>
    } = {},
  ) {
    this.#catalog = options.catalog
    for (const [site, documents, directory] of options.roots ?? []) this.setRoots(site, documents, directory)
    for (const [document, site] of options.owners ?? []) this.#owners.set(document, site)
    for (const [document, sites] of options.parties ?? []) this.#parties.set(document, new Set(sites))
  }

  /**
   * Records the parties of an owned document, once (false when it has a record already, or no
   * owner); `override`: the upstream's record replaces this one (a carrier met on a LAN may have
   * stated other parties first).
   */
  setParties(documentId: string, sites: Iterable<string>, options: { override?: boolean } = {}): boolean {
    if (!this.#owners.has(documentId)) return false
    const next = new Set(sites)
    const before = this.#parties.get(documentId)
    if (before && (!options.override || (before.size === next.size && [...next].every((s) => before.has(s))))) return false
    this.#parties.set(documentId, next)
    return true
  }

  hasParties(documentId: string): boolean {
    return this.#parties.has(documentId)
  }

  setCatalog(documentId: string | undefined): void {
    this.#catalog = documentId
  }

  /** Records the documents the hub gave `site` at enrolment, its directory among them. */
  setRoots(site: string, documents: Iterable<string>, directory?: string): void {
    this.#sites.add(site)
    for (const document of documents) this.#roots.set(document, site)
    if (directory !== undefined) {
      this.#roots.set(directory, site)
      this.#directories.set(site, directory)
    }
  }

  /** True when the register gave `site` its roots. */
  knowsSite(site: string): boolean {
    return this.#sites.has(site)
  }

  /** The directory document of `site`, when the hub made one. */
  directoryOf(site: string): string | undefined {
    return this.#directories.get(site)
  }

  /** The sites party to a document (rule 4), as recorded. */
  partiesOf(documentId: string): string[] {
    return [...(this.#parties.get(documentId) ?? [])]
  }

  /** The site that owns (or has as a root) the document, if any. */
  siteOf(documentId: string): string | undefined {
    return this.#roots.get(documentId) ?? this.#owners.get(documentId)
  }

  /** True when nobody has a record of the document: the first site to bring it may claim it. */
  claimable(documentId: string): boolean {
    return documentId !== this.#catalog && !this.#roots.has(documentId) && !this.#owners.has(documentId)
  }

  /** Sets the owner of a document as an upstream stated it, over a record made here; true when it changed. */
  setOwner(documentId: string, site: string): boolean {
    if (this.#roots.has(documentId) || documentId === this.#catalog || this.#owners.get(documentId) === site) return false
    this.#owners.set(documentId, site)
    this.#parties.delete(documentId)
    return true
  }

  /** Records `site` as the owner of a claimable document; false (nothing changes) otherwise. */
  claim(documentId: string, site: string): boolean {
    if (!this.claimable(documentId)) return false
    this.#owners.set(documentId, site)
    return true
  }

  /** The `access` of automerge-repo's shareConfig. */
  mayAccess(peerId: string, documentId: string): boolean {
    if (this.#upstream.has(peerId)) return true
    const peer = parsePeerId(peerId)
    if (!peer) return false
    if (documentId === this.#catalog) return true
    const theirs = this.sitesOf(peerId).some((site) => this.siteMayAccess(site, documentId))
    // Between two carriers a document crosses when both routes have a site that may see it: each
    // holds only what its own route may (an order from A to C goes from A's carrier to C's).
    return theirs && (!this.#lateral.has(peerId) || this.#own.some((site) => this.siteMayAccess(site, documentId)))
  }

  /** A carrier met by this carrier on a LAN (`sites`: its route), or gone (undefined). */
  setLateral(peerId: string, sites: readonly string[] | undefined, own: readonly string[]): void {
    this.#own = own
    this.setServes(peerId, sites)
    if (sites) this.#lateral.add(peerId)
    else this.#lateral.delete(peerId)
  }

  isLateral(peerId: string): boolean {
    return this.#lateral.has(peerId)
  }

  /** Whether `site` may read and write `documentId` (rules 2 to 4; the catalog is everyone's). */
  siteMayAccess(site: string, documentId: string): boolean {
    return documentId === this.#catalog || this.siteOf(documentId) === site || (this.#parties.get(documentId)?.has(site) ?? false)
  }

  /** The sites a peer acts for: its credential's site, or the sites a relay serves. */
  sitesOf(peerId: string): readonly string[] {
    const served = this.#serves.get(peerId)
    if (served) return served
    const peer = parsePeerId(peerId)
    return peer ? [peer.site] : []
  }

  /** A relay connected below this one carries the documents of `sites` (from its credential). */
  setServes(peerId: string, sites: readonly string[] | undefined): void {
    if (sites) this.#serves.set(peerId, sites)
    else this.#serves.delete(peerId)
  }

  /** The relay this one syncs to (chained under it): it may hold everything this relay holds. */
  setUpstream(peerId: string, upstream: boolean): void {
    if (upstream) this.#upstream.add(peerId)
    else this.#upstream.delete(peerId)
  }

  /** The site recorded as the owner (first bringer) of a document, if any (not roots). */
  ownerOf(documentId: string): string | undefined {
    return this.#owners.get(documentId)
  }

  /** Every site's roots, as the register gave them: [site, documents, directory]. */
  roots(): Array<[site: string, documents: string[], directory: string | undefined]> {
    const bySite = new Map<string, string[]>()
    for (const [document, site] of this.#roots) {
      if (this.#directories.get(site) === document) continue
      bySite.set(site, [...(bySite.get(site) ?? []), document])
    }
    for (const site of this.#sites) if (!bySite.has(site)) bySite.set(site, [])
    return [...bySite].map(([site, documents]) => [site, documents, this.#directories.get(site)])
  }

  get ownerCount(): number {
    return this.#owners.size
  }
}
