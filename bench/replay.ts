/**
 * The benchmark builds its history in batches of 500 movements per change, so a journal of 2,000
 * movements holds ~4 changes. A site that records movements one by one has one change per movement,
 * each with its own hash, dependencies, actor/seq and time. To show what that costs at restart and
 * on the wire, this rebuilds journals change by change, with the same contents and change metadata
 * as `LedgerBook.record([one])` writes (movement packed in `m[bucket][seq]`, new dictionary words in `d`, its delta on `tot[sku]`,
 * one change, no message), using Automerge's low-level API (no JS materialisation, so it is fast).
 */
import { cpSync } from 'node:fs'
import path from 'node:path'
import * as A from '@automerge/automerge'
import type { AutomergeUrl } from '@automerge/automerge-repo'
import { changeOptions } from '../src/docs/history.ts'
import { bucketOf, createJournal, createLedger, journalBalance, journalEntries, journalPostings, registerJournal, totShard, type Posting } from '../src/docs/ledger.ts'
import type { SiteNode } from '../src/node/siteNode.ts'
import { DurableFsStorageAdapter } from '../src/node/storage/DurableFsStorageAdapter.ts'
import type { JournalDoc, LedgerDoc } from '../src/schema/ledger.ts'
import { packMovement } from '../src/docs/movementCodec.ts'
import { str } from '../src/schema/strings.ts'

export interface JournalContents {
  url: string
  n: number
  week: string
  s0: number
  open: Map<string, number>
  /** Schema 2 journals: the time packed movements count from. */
  t0: number | undefined
  postings: Posting[]
}

export interface SiteContents {
  site: string
  node: string
  journals: JournalContents[]
}

/** A journal's contents as a single-change rebuild needs them. */
export function journalContents(url: string, doc: JournalDoc): JournalContents {
  return { url, n: doc.n, week: str(doc.week), s0: doc.s0, open: new Map(Object.entries(doc.open ?? {})), t0: doc.t0, postings: journalPostings(doc) }
}

/** This node's journals, oldest first (ones the node unloaded are read through its Repo). */
export async function siteContents(node: SiteNode): Promise<SiteContents> {
  const journals: JournalContents[] = []
  for (const { url } of journalEntries(node.book.ledger).filter((e) => e.node === node.identity.node)) {
    const doc = node.store.journal(url)?.doc() ?? (await node.repo.find<JournalDoc>(url as AutomergeUrl)).doc()
    journals.push(journalContents(url, doc))
  }
  return { site: node.identity.site, node: node.identity.node, journals }
}

/** One journal, one change per movement. */
export function journalBytes(c: SiteContents, j: JournalContents): Uint8Array {
  const start = A.change(A.init<JournalDoc>(), (d) => createJournal(d, { site: c.site, node: c.node, n: j.n, week: j.week, s0: j.s0, open: j.open, t0: j.t0 ?? j.postings[0]?.at ?? 0 }))
  const m = A.getObjectId(start.m)!
  const tt = A.getObjectId(start.tt!)!
  const shards = new Map<string, string>()
  const dict = A.getObjectId(start.d!)!
  const codes = new Map<string, string>()
  const t0 = start.t0!
  let last: Posting | undefined
  const am = A.getBackend(A.clone(start))
  const buckets = new Map<string, string>()
  const counters = new Set<string>()
  for (const p of j.postings) {
    // As writeJournal: the movement in m[bucketOf(seq)][seq] and its delta on its SKU's total, one change.
    const b = bucketOf(p.seq)
    let bucket = buckets.get(b)
    if (bucket === undefined) buckets.set(b, (bucket = am.putObject(m, b, {})))
    // Packed as writeJournal packs it (schema 2): one string, repeated strings in the dictionary.
    const base = last && last.seq === p.seq - 1 && bucketOf(last.seq) === b ? last.at : t0
    const code = (value: string) => {
      let k = codes.get(value)
      if (k === undefined) {
        k = codes.size.toString(36)
        codes.set(value, k)
        am.put(dict, k, value, 'str')
      }
      return k
    }
    am.put(bucket, String(p.seq), packMovement(p, { node: c.node, base, code }), 'str')
    last = p
    // Totals in shards (schema 3): tt[totShard(sku)][sku].
    const shardKey = totShard(p.sku)
    let shard = shards.get(shardKey)
    if (shard === undefined) shards.set(shardKey, (shard = am.putObject(tt, shardKey, {})))
    if (!counters.has(p.sku)) {
      am.put(shard, p.sku, 0, 'counter')
      counters.add(p.sku)
    }
    if (p.delta !== 0) am.increment(shard, p.sku, p.delta)
    // LedgerBook.#post: no change message, time = the node's clock in seconds.
    am.commit(null, Math.floor(p.at / 1000))
  }
  return am.save()
}

/** The ledger naming `c.journals` (with their URLs), registered one change per journal as LedgerBook does. */
export function ledgerBytes(c: SiteContents): Uint8Array {
  let doc = A.change(A.init<LedgerDoc>(), (d) => createLedger(d, c.site))
  for (const j of c.journals) {
    const at = j.postings[0]?.at ?? 0
    doc = A.change(doc, changeOptions({ op: 'ledger.journal', user: c.node, ref: `${c.node}/${j.n}` }, at), (d) => registerJournal(d, c.node, j.n, j.url))
  }
  return A.save(doc)
}

const docId = (url: string) => url.slice('automerge:'.length)

/**
 * Copies `fromDir` to `toDir` and replaces the journals numbered from `fromN` on (all by default)
 * with single-change rebuilds. Throws if a rebuilt journal's balance differs from the original.
 */
export async function writeSingleChangeCopy(c: SiteContents, fromDir: string, toDir: string, fromN = 0): Promise<{ journalBytes: number; changes: number; journals: number }> {
  cpSync(fromDir, toDir, { recursive: true })
  const storage = new DurableFsStorageAdapter(path.join(toDir, 'automerge'))
  let bytesTotal = 0
  let changes = 0
  let journals = 0
  for (const j of c.journals) {
    if (j.n < fromN) continue
    const bytes = journalBytes(c, j)
    const rebuilt = journalBalance(A.load<JournalDoc>(bytes))
    const expected = new Map(j.open)
    for (const p of j.postings) expected.set(p.sku, (expected.get(p.sku) ?? 0) + p.delta)
    for (const [sku, n] of expected) if ((rebuilt.get(sku) ?? 0) !== n) throw new Error(`single-change rebuild of journal ${j.n}: ${sku} is ${rebuilt.get(sku)}, expected ${n}`)
    await storage.removeRange([docId(j.url), 'snapshot'])
    await storage.removeRange([docId(j.url), 'incremental'])
    await storage.removeRange([docId(j.url), 'log'])
    await storage.save([docId(j.url), 'snapshot', 'single-change-rebuild'], bytes)
    bytesTotal += bytes.length
    changes += j.postings.length + 1
    journals++
  }
  return { journalBytes: bytesTotal, changes, journals }
}
