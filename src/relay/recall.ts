/**
 * A recall at the hub: every movement of one lot, at every site whose documents the relay holds
 * (`GET /lots/:lot` on the relay's port, behind its API token). A site answers the same for its
 * own movements (`GET /api/lots/:lot`); the hub answers across sites once they have synced.
 *
 * It reads each site's ledger and journals through the relay's Repo (loaded on demand; the idle
 * unloader takes them out of memory again), so its cost is reading every journal once: a recall
 * is rare and urgent, not a dashboard.
 */
import type { AutomergeUrl, DocHandle, Repo } from '@automerge/automerge-repo'
import { journalEntries, journalPostings, latestJournals, lotKey, lotsOnHand, statedExpiries } from '../docs/ledger.ts'
import type { JournalDoc, LedgerDoc } from '../schema/ledger.ts'
import { str } from '../schema/strings.ts'

export interface RecallAnswer {
  lot: string
  /** Sites with movements of the lot, and sites the relay could not read whole (their answer may be missing movements). */
  sites: Array<{
    site: string
    /** False when the relay does not hold the site's ledger or some of its journals (yet): movements may be missing. */
    complete: boolean
    /** Journals named by the site's ledger that the relay does not hold (yet). */
    missingJournals: number
    skus: Array<{ sku: string; onHand: number; expiry: string | null }>
    movements: Array<{ id: string; kind: string; sku: string; delta: number; at: number; user: string; device?: string; reference?: string; posting: string }>
  }>
}

/** Waits for a document until `deadline` (a document the relay never received). */
async function findBy<T>(repo: Repo, url: string, deadline: number): Promise<DocHandle<T> | undefined> {
  let timer: NodeJS.Timeout | undefined
  const gaveUp = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()))))
  try {
    return await Promise.race([repo.find<T>(url as AutomergeUrl).catch(() => undefined), gaveUp])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Every movement of `lot` at each site in `roots` (site → its root documents). Documents are read
 * in parallel, all within `waitMs`: a site whose ledger or journals the relay does not hold by
 * then is listed as incomplete rather than left out (a recall must not read "nowhere" for "not
 * known here yet").
 */
export async function recallLot(repo: Repo, roots: Iterable<[site: string, documents: string[]]>, lot: string, waitMs = 5_000): Promise<RecallAnswer> {
  const deadline = Date.now() + waitMs
  const perSite = await Promise.all(
    [...roots].map(async ([site, documents]): Promise<RecallAnswer['sites'][number] | undefined> => {
      const handles = await Promise.all(documents.map((id) => findBy<{ kind?: unknown }>(repo, `automerge:${id}`, deadline)))
      const ledgerHandle = handles.find((h) => h && str(h.doc()?.kind as never) === 'ledger')
      const ledger = ledgerHandle?.doc() as unknown as LedgerDoc | undefined
      if (!ledger) return { site, complete: false, missingJournals: 0, skus: [], movements: [] }
      const entries = journalEntries(ledger)
      const found = await Promise.all(entries.map(({ url }) => findBy<JournalDoc>(repo, url, deadline)))
      const journals = new Map<string, JournalDoc>()
      entries.forEach(({ url }, i) => {
        const doc = found[i]?.doc()
        if (doc?.m) journals.set(url, doc)
      })
      const missingJournals = entries.length - journals.size
      const movements = [...journals.values()].flatMap(journalPostings).filter((p) => p.lots?.some((part) => part.lot === lot))
      if (movements.length === 0 && missingJournals === 0) return undefined
      const expiry = statedExpiries(movements)
      // On hand of the lot at the site: each device's latest journal the relay holds.
      const onHand = lotsOnHand(latestJournals(ledger).flatMap(({ url }) => journals.get(url) ?? []))
      const skus = [...new Set(movements.map((m) => m.sku))].sort()
      movements.sort((a, b) => b.at - a.at || (a.node < b.node ? -1 : a.node > b.node ? 1 : b.seq - a.seq))
      return {
        site,
        complete: missingJournals === 0,
        missingJournals,
        skus: skus.map((sku) => ({ sku, onHand: onHand.get(lotKey(sku, lot)) ?? 0, expiry: expiry.get(lotKey(sku, lot))?.[0] ?? null })),
        movements: movements.map((p) => ({
          id: p.id,
          kind: p.kind,
          sku: p.sku,
          delta: p.lots!.filter((part) => part.lot === lot).reduce((sum, part) => sum + part.delta, 0),
          at: p.at,
          user: p.by,
          ...(p.device !== undefined ? { device: p.device } : {}),
          ...(p.reference !== undefined ? { reference: p.reference } : {}),
          posting: `${p.node}:${p.seq}`,
        })),
      }
    }),
  )
  const sites = perSite.filter((s): s is RecallAnswer['sites'][number] => s !== undefined)
  return { lot, sites: sites.sort((a, b) => (a.site < b.site ? -1 : 1)) }
}
