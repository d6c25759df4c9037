/**
 * What a site node knows of its journals' movements, kept between runs so that a restarted node
 * can check movement ids (and so record) without loading every journal first.
 *
 * `DIR/journal-index.json` holds, per journal URL, its postings and a token: a digest of the names
 * of the journal's chunks in storage (DurableFsStorageAdapter.listKeys) and of its change log's size. Chunk names are hashes of
 * the changes or heads they hold, so any change to the journal's content (a change synced from
 * another device while this node was down, a compaction) changes the token. At start a journal
 * whose token still matches is indexed from here without being loaded; any other is loaded as
 * before. The file is a cache: a missing, damaged or older one costs only the time to load.
 *
 * When an entry is written: when a journal is unloaded (after indexing it, or when it went quiet),
 * after the background load, and at close. The journal is flushed, then
 * the token read, then the postings taken from memory, so the postings hold at least what the
 * token names. This node's own current journal is never cached (it is always loaded to write).
 */
import { createHash } from 'node:crypto'
import path from 'node:path'
import { parseAutomergeUrl, type AutomergeUrl } from '@automerge/automerge-repo'
import type { Logger } from 'pino'
import { z } from 'zod'
import type { JournalFacts, Posting } from '../docs/ledger.ts'
import { decodeLots, encodeLots } from '../docs/movementCodec.ts'
import { MovementKind, movementKindName, type MovementKindCode } from '../schema/ledger.ts'
import { readJsonFile, writeFileDurably } from '../hub/durableFile.ts'
import type { DurableFsStorageAdapter } from './storage/DurableFsStorageAdapter.ts'

export const JOURNAL_CACHE_FILE = 'journal-index.json'

/**
 * The file's version: bump it whenever `Posting` or how a journal is read into postings
 * (src/docs/ledger.ts fromStored) changes, so that an older file is not served.
 */
const CACHE_VERSION = 5

/**
 * One posting as a row, in this order; absent optional fields are null, trailing nulls dropped
 * (the node is the journal's). Rows parse several times faster than objects and take a third of the space.
 */
type Row = [seq: number, id: string, kind: number, sku: string, delta: number, at: number, by: string, device?: string | null, reason?: string | null, reference?: string | null, counted?: number | null, prev?: string | null, lots?: string | null, expiry?: string | null]

interface CacheEntry {
  token: string
  /** The journal's heads the postings were read at (joined). */
  heads: string
  facts: JournalFacts
  rows: Row[]
}

/**
 * An entry in memory. Once read, its rows are dropped (27 MB of the heap at 100k movements): the
 * node's index holds the same postings, and `save` writes them from there (`count` is how many).
 */
type HeldEntry = Omit<CacheEntry, 'rows'> & ({ rows: Row[] } | { rows: undefined; count: number })

/** What the node has indexed of a journal: how many postings, and the postings (any order). */
export interface IndexedPostings {
  count(url: string): number
  postings(url: string): readonly Posting[] | undefined
}

const balances = z.custom<Record<string, number>>((value) => typeof value === 'object' && value !== null && !Array.isArray(value), 'balances must be a map of SKU to quantity')

const CacheFile = z.object({
  v: z.literal(CACHE_VERSION),
  // The entries are this node's own writing (crash-safe, whole file): checked for shape only.
  journals: z.record(
    z.string(),
    z.object({
      token: z.string(),
      heads: z.string(),
      // A balance per SKU, twice per journal (2,000 SKUs x 20 journals): checked as maps only.
      facts: z.object({ node: z.string(), n: z.number(), open: balances, tot: balances, lotOpen: balances.optional(), lotTot: balances.optional() }),
      // 100k rows: checked as a list only (validating each row took longer than parsing the file).
      rows: z.custom<unknown[]>((value) => Array.isArray(value), 'rows must be a list'),
    }),
  ),
})
type CacheFile = { v: typeof CACHE_VERSION; journals: Record<string, CacheEntry> }
type HeldEntries = Record<string, HeldEntry>

function toRow(p: Posting): Row {
  const row: Row = [p.seq, p.id, MovementKind[p.kind], p.sku, p.delta, p.at, p.by, p.device ?? null, p.reason ?? null, p.reference ?? null, p.counted ?? null, p.prev ?? null, p.lots && p.lots.length > 0 ? encodeLots(p) : null, p.expiry ?? null]
  while (row.length > 7 && row[row.length - 1] === null) row.pop()
  return row
}

/**
 * The postings of `rows`, read one after the other into the same object (100k postings made at
 * start were 100k objects to collect): each is valid until the next is read.
 */
function* postingsOf(node: string, rows: readonly Row[]): Generator<Posting> {
  const p: Posting = { node, seq: 0, id: '', kind: 'receipt', sku: '', delta: 0, at: 0, by: '' }
  for (const [seq, id, kind, sku, delta, at, by, device, reason, reference, counted, prev, lots, expiry] of rows) {
    p.seq = seq
    p.id = id
    p.kind = movementKindName[kind as MovementKindCode]
    p.sku = sku
    p.delta = delta
    p.at = at
    p.by = by
    p.device = device ?? undefined
    p.reason = reason ?? undefined
    p.reference = reference ?? undefined
    p.counted = counted ?? undefined
    p.prev = prev ?? undefined
    p.lots = lots == null ? undefined : decodeLots(lots, delta)
    p.expiry = expiry ?? undefined
    yield p
  }
}

export class JournalCache {
  readonly #file: string
  #entries: HeldEntries
  #dirty = false

  private constructor(
    dataDir: string,
    readonly storage: DurableFsStorageAdapter,
    entries: HeldEntries,
    readonly indexed: IndexedPostings,
  ) {
    this.#file = path.join(dataDir, JOURNAL_CACHE_FILE)
    this.#entries = entries
  }

  /**
   * The cache of `dataDir`; empty when there is none or it cannot be read (logged). `indexed`
   * gives the postings the node indexed of a journal, to write the entries whose rows were read.
   */
  static async open(dataDir: string, storage: DurableFsStorageAdapter, logger: Logger, indexed: IndexedPostings): Promise<JournalCache> {
    const file = path.join(dataDir, JOURNAL_CACHE_FILE)
    const read = await readJsonFile(file, CacheFile).catch((error: unknown) => {
      logger.warn({ err: error, file }, 'the journal index cannot be read: journals are loaded instead')
      return { state: 'missing' as const }
    })
    if (read.state === 'damaged') logger.warn({ file, why: read.why }, 'the journal index is damaged or of another version: journals are loaded instead (it is made again)')
    if (read.state !== 'ok') return new JournalCache(dataDir, storage, {}, indexed)
    return new JournalCache(dataDir, storage, read.value.journals as unknown as HeldEntries, indexed)
  }

  /**
   * The token of the journal at `url` as stored now: its chunk names, and the size of its change
   * log (appended to in place: src/node/storage/documentStorage.ts).
   */
  async token(url: string): Promise<string> {
    const documentId = parseAutomergeUrl(url as AutomergeUrl).documentId
    const keys = await this.storage.listKeys([documentId])
    const names = await Promise.all(
      keys
        .filter((k) => k[1] === 'snapshot' || k[1] === 'incremental' || k[1] === 'log')
        .map(async (k) => (k[1] === 'log' ? `${k.join('/')}:${await this.storage.sizeOf(k)}` : k.join('/'))),
    )
    return createHash('sha256').update(names.sort().join('\n')).digest('base64url')
  }

  /**
   * What the cache holds of the journal at `url` (its postings, stored balances and heads), when
   * its content has not changed since; else undefined.
   */
  async read(url: string): Promise<{ postings: Iterable<Posting>; facts: JournalFacts; heads: string } | undefined> {
    const entry = Object.hasOwn(this.#entries, url) ? this.#entries[url] : undefined
    if (!entry) return undefined
    if (!entry.rows || (await this.token(url)) !== entry.token) return undefined
    const rows = entry.rows
    this.#entries[url] = { token: entry.token, heads: entry.heads, facts: entry.facts, rows: undefined, count: rows.length }
    // Read once, posting after posting into one object: copy what is kept (LedgerBook.indexFacts does).
    return { postings: postingsOf(entry.facts.node, rows), facts: entry.facts, heads: entry.heads }
  }

  /** True when the cache holds the journal at `url` as read at `heads`. */
  has(url: string, heads: string): boolean {
    return Object.hasOwn(this.#entries, url) && this.#entries[url]!.heads === heads
  }

  /** Records `postings` and `facts`, read at `heads`, as the content of the journal whose storage `token` names. */
  put(url: string, token: string, heads: string, facts: JournalFacts, postings: Posting[]): void {
    this.#entries[url] = { token, heads, facts, rows: postings.map(toRow) }
    this.#dirty = true
  }

  /** Journals no longer named are dropped; writes the file crash-safely when anything changed. */
  async save(keep: ReadonlySet<string>): Promise<void> {
    for (const url of Object.keys(this.#entries)) {
      if (!keep.has(url)) {
        delete this.#entries[url]
        this.#dirty = true
      }
    }
    if (!this.#dirty) return
    this.#dirty = false
    const journals: Record<string, CacheEntry> = {}
    for (const [url, entry] of Object.entries(this.#entries)) {
      if (entry.rows) {
        journals[url] = entry
        continue
      }
      // Rows read at start: the node's index holds them, and more only if the journal was loaded
      // since and grew (then its entry is put again when it is unloaded; until then it is left out).
      const postings = this.indexed.count(url) === entry.count ? this.indexed.postings(url) : undefined
      if (!postings) continue
      journals[url] = { token: entry.token, heads: entry.heads, facts: entry.facts, rows: [...postings].sort((a, b) => a.seq - b.seq).map(toRow) }
    }
    await writeFileDurably(this.#file, JSON.stringify({ v: CACHE_VERSION, journals } satisfies CacheFile))
    // Written: rows the node's index holds as well leave memory.
    for (const [url, entry] of Object.entries(this.#entries)) {
      if (entry.rows && this.indexed.count(url) === entry.rows.length) this.#entries[url] = { token: entry.token, heads: entry.heads, facts: entry.facts, rows: undefined, count: entry.rows.length }
    }
  }
}
