/**
 * What a site node knows of its journals' movements, kept between runs so that a restarted node
 * can check movement ids (and so record) without loading every journal first.
 *
 * `DIR/journal-index.json` holds, per journal URL, its postings and a token: a digest of the names
 * of the journal's chunks in storage (DurableFsStorageAdapter.listKeys). Chunk names are hashes of
 * the changes or heads they hold, so any change to the journal's content (a change synced from
 * another device while this node was down, a compaction) changes the token. At start a journal
 * whose token still matches is indexed from here without being loaded; any other is loaded as
 * before. The file is a cache: a missing, damaged or older one costs only the time to load.
 *
 * When an entry is written: after the background load, and at close. The journal is flushed, then
 * the token read, then the postings taken from memory, so the postings hold at least what the
 * token names. This node's own current journal is never cached (it is always loaded to write).
 */
import { createHash } from 'node:crypto'
import path from 'node:path'
import { parseAutomergeUrl, type AutomergeUrl } from '@automerge/automerge-repo'
import type { Logger } from 'pino'
import { z } from 'zod'
import type { Posting } from '../docs/ledger.ts'
import { readJsonFile, writeFileDurably } from '../hub/durableFile.ts'
import type { DurableFsStorageAdapter } from './storage/DurableFsStorageAdapter.ts'

export const JOURNAL_CACHE_FILE = 'journal-index.json'

/**
 * The file's version: bump it whenever `Posting` or how a journal is read into postings
 * (src/docs/ledger.ts fromStored) changes, so that an older file is not served.
 */
const CACHE_VERSION = 2

interface CacheEntry {
  token: string
  /** The journal's heads the postings were read at (joined). */
  heads: string
  postings: Posting[]
}

const CacheFile = z.object({
  v: z.literal(CACHE_VERSION),
  // The entries are this node's own writing (crash-safe, whole file): checked for shape only.
  journals: z.record(z.string(), z.object({ token: z.string(), heads: z.string(), postings: z.array(z.looseObject({ id: z.string(), seq: z.number() })) })),
})
type CacheFile = { v: typeof CACHE_VERSION; journals: Record<string, CacheEntry> }

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

  /** The token of the journal at `url` as stored now. */
  async token(url: string): Promise<string> {
    const documentId = parseAutomergeUrl(url as AutomergeUrl).documentId
    const keys = await this.storage.listKeys([documentId])
    const names = keys.filter((k) => k[1] === 'snapshot' || k[1] === 'incremental').map((k) => k.join('/')).sort()
    return createHash('sha256').update(names.join('\n')).digest('base64url')
  }

  /** The cached postings of the journal at `url`, when its content has not changed since; else undefined. */
  async postings(url: string): Promise<Posting[] | undefined> {
    const entry = Object.hasOwn(this.#entries, url) ? this.#entries[url] : undefined
    if (!entry) return undefined
    if ((await this.token(url)) !== entry.token) return undefined
    return entry.postings as Posting[]
  }

  /** True when the cache holds the journal at `url` as read at `heads`. */
  has(url: string, heads: string): boolean {
    return Object.hasOwn(this.#entries, url) && this.#entries[url]!.heads === heads
  }

  /** Records `postings`, read at `heads`, as the content of the journal whose storage `token` names. */
  put(url: string, token: string, heads: string, postings: Posting[]): void {
    this.#entries[url] = { token, heads, postings }
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
