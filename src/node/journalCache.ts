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
import { MovementKind, movementKindName, type MovementKindCode } from '../schema/ledger.ts'
import { readJsonFile, writeFileDurably } from '../hub/durableFile.ts'
import type { DurableFsStorageAdapter } from './storage/DurableFsStorageAdapter.ts'

export const JOURNAL_CACHE_FILE = 'journal-index.json'

/**
 * The file's version: bump it whenever `Posting` or how a journal is read into postings
 * (src/docs/ledger.ts fromStored) changes, so that an older file is not served.
 */
const CACHE_VERSION = 4

/**
 * One posting as a row, in this order; absent optional fields are null, trailing nulls dropped
 * (the node is the journal's). Rows parse several times faster than objects and take a third of the space.
 */
type Row = [seq: number, id: string, kind: number, sku: string, delta: number, at: number, by: string, device?: string | null, reason?: string | null, reference?: string | null, counted?: number | null, prev?: string | null]

interface CacheEntry {
  token: string
  /** The journal's heads the postings were read at (joined). */
  heads: string
  facts: JournalFacts
  rows: Row[]
}

const CacheFile = z.object({
  v: z.literal(CACHE_VERSION),
  // The entries are this node's own writing (crash-safe, whole file): checked for shape only.
  journals: z.record(
    z.string(),
    z.object({
      token: z.string(),
      heads: z.string(),
      facts: z.object({ node: z.string(), n: z.number(), open: z.record(z.string(), z.number()), tot: z.record(z.string(), z.number()) }),
      // 100k rows: checked as a list only (validating each row took longer than parsing the file).
      rows: z.custom<unknown[]>((value) => Array.isArray(value), 'rows must be a list'),
    }),
  ),
})
type CacheFile = { v: typeof CACHE_VERSION; journals: Record<string, CacheEntry> }

function toRow(p: Posting): Row {
  const row: Row = [p.seq, p.id, MovementKind[p.kind], p.sku, p.delta, p.at, p.by, p.device ?? null, p.reason ?? null, p.reference ?? null, p.counted ?? null, p.prev ?? null]
  while (row.length > 7 && row[row.length - 1] === null) row.pop()
  return row
}

function fromRow(node: string, row: Row): Posting {
  const [seq, id, kind, sku, delta, at, by, device, reason, reference, counted, prev] = row
  const p: Posting = { node, seq, id, kind: movementKindName[kind as MovementKindCode], sku, delta, at, by }
  if (device != null) p.device = device
  if (reason != null) p.reason = reason
  if (reference != null) p.reference = reference
  if (counted != null) p.counted = counted
  if (prev != null) p.prev = prev
  return p
}

export class JournalCache {
  readonly #file: string
  #entries: CacheFile['journals']
  #dirty = false

  private constructor(
    dataDir: string,
    readonly storage: DurableFsStorageAdapter,
    entries: CacheFile['journals'],
  ) {
    this.#file = path.join(dataDir, JOURNAL_CACHE_FILE)
    this.#entries = entries
  }

  /** The cache of `dataDir`; empty when there is none or it cannot be read (logged). */
  static async open(dataDir: string, storage: DurableFsStorageAdapter, logger: Logger): Promise<JournalCache> {
    const file = path.join(dataDir, JOURNAL_CACHE_FILE)
    const read = await readJsonFile(file, CacheFile).catch((error: unknown) => {
      logger.warn({ err: error, file }, 'the journal index cannot be read: journals are loaded instead')
      return { state: 'missing' as const }
    })
    if (read.state === 'damaged') logger.warn({ file, why: read.why }, 'the journal index is damaged or of another version: journals are loaded instead (it is made again)')
    if (read.state !== 'ok') return new JournalCache(dataDir, storage, {})
    return new JournalCache(dataDir, storage, read.value.journals as unknown as CacheFile['journals'])
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
  async read(url: string): Promise<{ postings: Posting[]; facts: JournalFacts; heads: string } | undefined> {
    const entry = Object.hasOwn(this.#entries, url) ? this.#entries[url] : undefined
    if (!entry) return undefined
    if ((await this.token(url)) !== entry.token) return undefined
    return { postings: entry.rows.map((row) => fromRow(entry.facts.node, row)), facts: entry.facts, heads: entry.heads }
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
    await writeFileDurably(this.#file, JSON.stringify({ v: CACHE_VERSION, journals: this.#entries } satisfies CacheFile))
  }
}
