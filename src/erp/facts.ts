/**
 * The facts the hub forwards to the parent ERP, read from the documents its relay holds: each
 * site's stock movements (every posting of every journal its ledger names), the decisions on its
 * orders (approved, rejected, cancelled, fulfilled: the order's status path, src/docs/orderStatus.ts)
 * and the proofs of delivery at its stops (what was received and rejected, by whom).
 *
 * A fact's key is its idempotency key, starting with the site it belongs to:
 * - a movement: `site/movement-id/node:seq`. Derived from the movement id (what the storekeeper's
 *   device sent, and what a re-sent movement keeps), and unique per posting: two devices that
 *   recorded the same id offline both counted in the ledger, so both are forwarded (the ERP's
 *   quantities equal the ledger's);
 * - an order decision: `site/order:ID:status` (the requesting site's);
 * - a proof of delivery: `site/delivery:MANIFEST:STOP` (the stop site's; the first delivery
 *   recorded, as the manifest's rules count it: concurrent ones are review items).
 *
 * Reading is incremental: a journal whose device opened its next one is read to its end once and
 * never again; a device's current journal is read again only when its heads moved.
 */
import type { AutomergeUrl, Repo } from '@automerge/automerge-repo'
import { journalEntries, journalPostings, type Posting } from '../docs/ledger.ts'
import { stopDeliveries } from '../docs/manifestStatus.ts'
import { orderLines, orderPath } from '../docs/orderStatus.ts'
import type { JournalDoc, LedgerDoc, MovementKindName } from '../schema/ledger.ts'
import type { ManifestDoc } from '../schema/manifest.ts'
import type { OrderDoc } from '../schema/order.ts'
import type { SiteIndexDoc } from '../schema/siteIndex.ts'
import { own } from '../schema/ownProperty.ts'
import { str } from '../schema/strings.ts'

export type Fact = MovementFact | OrderFact | DeliveryFact

export interface OrderFact {
  type: 'order'
  key: string
  /** The requesting site. */
  site: string
  order: string
  supplier: string
  status: 'approved' | 'rejected' | 'cancelled' | 'fulfilled'
  /** Approved quantities (requested ones when it was never approved), by SKU. */
  lines: Array<{ sku: string; quantity: number; lot?: string }>
  at: number
  by: string
}

export interface DeliveryFact {
  type: 'delivery'
  key: string
  /** The stop site. */
  site: string
  manifest: string
  stop: string
  /** The carrier site (the manifest's `from`). */
  from: string
  receiver: string
  receivedAt: number
  by: string
  /** The device that recorded it. */
  device: string
  lines: Array<{ sku: string; lot?: string; shipped: number; received: number; rejected: number }>
  /** `data:image/png;base64,…` or a typed name. */
  signature: string
  note?: string
}

export interface MovementFact {
  type: 'movement'
  key: string
  site: string
  /** The movement id the device recorded. */
  id: string
  kind: MovementKindName
  sku: string
  /** Signed change to on hand at the site. */
  delta: number
  /** When it happened, unix ms. */
  at: number
  by: string
  reason?: string
  reference?: string
  /** Lot-tracked products: the lots moved, each with its part of `delta`. */
  lots?: Array<{ lot: string; delta: number; expiry?: string }>
}

export function factKey(site: string, p: Pick<Posting, 'id' | 'node' | 'seq'>): string {
  return `${site}/${p.id}/${p.node}:${p.seq}`
}

export function factOf(site: string, p: Posting): MovementFact {
  return {
    type: 'movement',
    key: factKey(site, p),
    site,
    id: p.id,
    kind: p.kind,
    sku: p.sku,
    delta: p.delta,
    at: p.at,
    by: p.by,
    ...(p.reason !== undefined ? { reason: p.reason } : {}),
    ...(p.reference !== undefined ? { reference: p.reference } : {}),
    ...(p.lots ? { lots: p.lots.map((part) => ({ lot: part.lot, delta: part.delta, ...(p.expiry !== undefined ? { expiry: p.expiry } : {}) })) } : {}),
  }
}

const DECISIONS = new Set(['approved', 'rejected', 'cancelled', 'fulfilled'])
const SIGNATURE_MAX = 64 * 1024
const cap = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max)}…`)

/** The decisions on an order so far, in the order its status path took them. */
export function orderFacts(site: string, doc: OrderDoc): OrderFact[] {
  if (str(doc.from) !== site) return []
  const path = orderPath(doc)
  const lines = orderLines(doc)
  return path
    .filter((e) => DECISIONS.has(str(e.event.to)))
    .map((e) => {
      const status = str(e.event.to) as OrderFact['status']
      return {
        type: 'order' as const,
        key: `${site}/order:${str(doc.id)}:${status}`,
        site,
        order: str(doc.id),
        supplier: str(doc.to),
        status,
        lines: lines.map((l) => ({ sku: l.sku, quantity: l.approved ?? l.requested, ...(l.lot !== undefined ? { lot: l.lot } : {}) })).filter((l) => l.quantity > 0),
        at: e.event.at,
        by: str(e.event.by),
      }
    })
}

/** The proofs of delivery at `site`'s stops of a manifest. */
export function deliveryFacts(site: string, doc: ManifestDoc): DeliveryFact[] {
  const out: DeliveryFact[] = []
  for (const stop of doc.stops ?? []) {
    if (str(stop.site) !== site) continue
    const first = Array.isArray(stop.deliveries) ? stopDeliveries(stop)[0] : undefined
    if (!first) continue
    out.push({
      type: 'delivery',
      key: `${site}/delivery:${str(doc.id)}:${str(stop.id)}`,
      site,
      manifest: str(doc.id),
      stop: str(stop.id),
      from: str(doc.from),
      receiver: cap(str(first.receiver), 200),
      receivedAt: first.receivedAt,
      by: cap(str(first.by), 200),
      device: str(first.device),
      // (the API caps what a device sends; a document written otherwise is capped here)
      signature: str(first.signature).length <= SIGNATURE_MAX ? str(first.signature) : `[signature of ${str(first.signature).length} characters left out: over ${SIGNATURE_MAX}]`,
      ...(first.note !== undefined ? { note: cap(str(first.note), 2000) } : {}),
      lines: stop.lines.map((l) => {
        const got = own(first.lines, str(l.id))
        return { sku: str(l.sku), ...(l.lot !== undefined ? { lot: str(l.lot) } : {}), shipped: l.shipped, received: got?.received ?? 0, rejected: got?.rejected ?? 0 }
      }),
    })
  }
  return out
}

interface JournalCursor {
  /** Postings read (the highest seq read; postings are appended in seq order by their one writer). */
  lastSeq: number
  heads: string
  /** The device opened its next journal and this one was read to its end. */
  complete: boolean
}

/** Reads new movement facts from the documents the hub holds, site by site. */
export class FactReader {
  readonly #repo: Repo
  readonly #cursors = new Map<string, JournalCursor>()
  /** order or manifest url → its heads when last read */
  readonly #docHeads = new Map<string, string>()

  readonly #onError: ((error: unknown, url: string) => void) | undefined
  readonly #siteOfDevice: ((device: string) => string | undefined) | undefined

  /**
   * `siteOfDevice`: the site a device is enrolled at (the hub's register): a proof of delivery is
   * taken only when recorded by a device of the stop's site. `onError`: a document that could not
   * be read (it is tried again at the next scan).
   */
  constructor(repo: Repo, options: { siteOfDevice?: (device: string) => string | undefined; onError?: (error: unknown, url: string) => void } = {}) {
    this.#repo = repo
    this.#siteOfDevice = options.siteOfDevice
    this.#onError = options.onError
  }

  #loaded(url: string): boolean {
    const id = url.startsWith('automerge:') ? url.slice('automerge:'.length) : url
    return this.#repo.handles[id as never] !== undefined
  }

  #deviceOf(f: DeliveryFact, stopSite: string): boolean {
    if (!this.#siteOfDevice) return true
    const site = this.#siteOfDevice(f.device)
    if (site === stopSite) return true
    this.#onError?.(new Error(`a delivery at ${stopSite} recorded by device ${f.device}, which is ${site ? `of ${site}` : 'not enrolled'}: not forwarded`), f.key)
    return false
  }

  /**
   * Every fact of `site` not read before (its ledger is `ledgerId`). Documents the hub does not
   * hold yet are skipped (read when they arrive).
   */
  async read(site: string, ledgerId: string): Promise<MovementFact[]> {
    const ledgerHandle = await this.#find<LedgerDoc>(ledgerId)
    const ledger = ledgerHandle?.doc()
    if (!ledger) return []
    const entries = journalEntries(ledger)
    const out: MovementFact[] = []
    // A journal is complete when the same device has a later one and we read up to its first seq.
    const byNode = new Map<string, Array<{ n: number; url: string }>>()
    for (const e of entries) byNode.set(e.node, [...(byNode.get(e.node) ?? []), { n: e.n, url: e.url }])
    for (const [, journals] of byNode) {
      journals.sort((a, b) => a.n - b.n)
      for (let i = 0; i < journals.length; i++) {
        const { url } = journals[i]!
        const before = this.#cursors.get(url) ?? { lastSeq: -1, heads: '', complete: false }
        if (before.complete) continue
        // Read so far and unloaded since (the idle unloader): it has not changed, or it would be loaded.
        if (before.heads && !this.#loaded(url)) continue
        // A journal that cannot be read (damaged content) is skipped, not the site: its cursor stays.
        try {
          const handle = await this.#find<JournalDoc>(url)
          const journal = handle?.doc()
          if (!handle || !journal?.m) continue
          const cursor = { ...before }
          const heads = handle.heads().join(',')
          const read: MovementFact[] = []
          if (heads !== cursor.heads) {
            for (const p of journalPostings(journal)) {
              if (p.seq <= cursor.lastSeq) continue
              read.push(factOf(site, p))
              cursor.lastSeq = Math.max(cursor.lastSeq, p.seq)
            }
            cursor.heads = heads
          }
          // Complete once the device's next journal exists and what was read here reaches its s0
          // (the last seq of the journal before it).
          const next = journals[i + 1]
          if (next) {
            const nextDoc = (await this.#find<JournalDoc>(next.url))?.doc()
            if (nextDoc && typeof nextDoc.s0 === 'number' && cursor.lastSeq >= nextDoc.s0) cursor.complete = true
          }
          out.push(...read)
          this.#cursors.set(url, cursor)
        } catch (error) {
          this.#onError?.(error, url)
        }
      }
    }
    return out
  }

  /**
   * The decisions on `site`'s orders and the proofs of delivery on its manifests (at every stop),
   * from the documents its index names (`indexId`); each read again only when its heads moved.
   * The same facts come again when a document changes: the caller drops the keys it has.
   */
  async readDocuments(site: string, indexId: string): Promise<Array<OrderFact | DeliveryFact>> {
    const index = (await this.#find<SiteIndexDoc>(indexId))?.doc()
    if (!index) return []
    const out: Array<OrderFact | DeliveryFact> = []
    const urls = [...Object.values(index.orders ?? {}).map((u) => ['order', str(u)] as const), ...Object.values(index.manifests ?? {}).map((u) => ['manifest', str(u)] as const)]
    for (const [kind, url] of urls) {
      // Read before and unloaded since: unchanged (a change would have loaded it).
      if (this.#docHeads.has(url) && !this.#loaded(url)) continue
      try {
        const handle = await this.#find<OrderDoc | ManifestDoc>(url)
        const doc = handle?.doc()
        if (!handle || !doc) continue
        const heads = handle.heads().join(',')
        if (this.#docHeads.get(url) === heads) continue
        const facts: Array<OrderFact | DeliveryFact> = []
        if (kind === 'order') facts.push(...orderFacts(site, doc as OrderDoc))
        // The manifests a site made hold the deliveries at every stop: each is the stop site's fact,
        // taken only when recorded by a device of that site (by the hub's register).
        else for (const stopSite of new Set(((doc as ManifestDoc).stops ?? []).map((stop) => str(stop.site)))) facts.push(...deliveryFacts(stopSite, doc as ManifestDoc).filter((f) => this.#deviceOf(f, stopSite)))
        out.push(...facts)
        this.#docHeads.set(url, heads)
      } catch (error) {
        this.#onError?.(error, url)
      }
    }
    return out
  }

  async #find<T>(id: string) {
    const url = (id.startsWith('automerge:') ? id : `automerge:${id}`) as AutomergeUrl
    try {
      return await this.#repo.find<T>(url)
    } catch {
      return undefined
    }
  }
}
