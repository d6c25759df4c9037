/**
 * The facts the hub forwards to the parent ERP, read from the documents its relay holds: each
 * site's stock movements (every posting of every journal its ledger names).
 *
 * A fact's key is its idempotency key: `site/movement-id/node:seq`. Derived from the movement id
 * (what the storekeeper's device sent, and what a re-sent movement keeps), and unique per posting:
 * two devices that recorded the same id offline both counted in the ledger, so both are forwarded
 * (the ERP's quantities equal the ledger's).
 *
 * Reading is incremental: a journal whose device opened its next one is read to its end once and
 * never again; a device's current journal is read again only when its heads moved.
 */
import type { AutomergeUrl, Repo } from '@automerge/automerge-repo'
import { journalEntries, journalPostings, type Posting } from '../docs/ledger.ts'
import type { JournalDoc, LedgerDoc, MovementKindName } from '../schema/ledger.ts'

export interface MovementFact {
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
  readonly #ledgerHeads = new Map<string, string>()

  constructor(repo: Repo) {
    this.#repo = repo
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
        const cursor = this.#cursors.get(url) ?? { lastSeq: -1, heads: '', complete: false }
        if (cursor.complete) continue
        const handle = await this.#find<JournalDoc>(url)
        const journal = handle?.doc()
        if (!handle || !journal?.m) continue
        const heads = handle.heads().join(',')
        if (heads !== cursor.heads) {
          let last = cursor.lastSeq
          for (const p of journalPostings(journal)) {
            if (p.seq <= cursor.lastSeq) continue
            out.push(factOf(site, p))
            last = Math.max(last, p.seq)
          }
          cursor.lastSeq = last
          cursor.heads = heads
        }
        // Complete once the device's next journal exists and starts after what was read here.
        const next = journals[i + 1]
        if (next) {
          const nextDoc = (await this.#find<JournalDoc>(next.url))?.doc()
          if (nextDoc && typeof nextDoc.s0 === 'number' && cursor.lastSeq >= nextDoc.s0 - 1) cursor.complete = true
        }
        this.#cursors.set(url, cursor)
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
