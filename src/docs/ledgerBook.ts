/**
 * A site's ledger as one node sees it: the ledger document, the journals loaded so far, and the
 * rules for posting across them. No I/O of its own: the caller supplies document references
 * (automerge-repo handles in the site node, plain Automerge docs in tests) and a `durable`
 * barrier that returns once the given documents are on disk.
 *
 * Posting order, each step durable before the next (see src/docs/ledger.ts):
 *   a. a new period: create the journal (durable), then register it in the ledger (durable)
 *   b. write the movements into the journal (durable)
 *   c. apply them to the counters and advance `posted[node]` (durable) — then acknowledge.
 * A crash after b leaves postings that `repair()` applies on restart; nothing acknowledged is lost.
 */
import type { JournalDoc, LedgerDoc } from '../schema/ledger.ts'
import { str } from '../schema/strings.ts'
import { changeOptions } from './history.ts'
import { decideLedgerItem } from './review.ts'
import {
  createJournal,
  journalPostings,
  journalUrls,
  lastSeqOf,
  pendingPostings,
  planMovement,
  postingKey,
  registerJournal,
  writeCounters,
  writeJournal,
  type Posting,
} from './ledger.ts'

/** The little a LedgerBook needs of a document: read it, change it. */
export interface DocRef<T> {
  readonly url: string
  doc(): T
  change(fn: (doc: T) => void, options?: { message?: string; time: number }): void
}

/** Where documents come from and how they are made durable. */
export interface LedgerStore {
  ledger: DocRef<LedgerDoc>
  /** A journal already loaded, by URL. */
  journal(url: string): DocRef<JournalDoc> | undefined
  /** Creates a new journal document initialised by `init`. */
  createJournal(init: (doc: JournalDoc) => void): DocRef<JournalDoc>
  /** Resolves once every listed document is durably stored. */
  durable(refs: Array<DocRef<unknown>>): Promise<void>
}

export interface LedgerBookOptions {
  node: string
  site: string
  knownSku: (sku: string) => boolean
  /** unix ms */
  now: () => number
}

export interface RecordResult {
  /** 'recorded': posted now; 'duplicate': this movement id was already posted (nothing changed). */
  status: 'recorded' | 'duplicate'
  posting: Posting
}

export class LedgerBook {
  /** Postings by movement id, across every journal indexed so far (all nodes). */
  readonly #byMovementId = new Map<string, Posting[]>()
  /** Per journal URL, the sequence numbers already indexed. */
  readonly #indexed = new Map<string, Set<number>>()
  #queue: Promise<unknown> = Promise.resolve()
  /** Highest sequence number this node has used; only this node writes its journals, so a cache is exact. */
  #seq: number | undefined

  constructor(
    readonly store: LedgerStore,
    readonly options: LedgerBookOptions,
  ) {}

  get ledger(): LedgerDoc {
    return this.store.ledger.doc()
  }

  /** Indexes a journal's movements not seen before (journals only grow). Returns how many were new. */
  indexJournal(ref: DocRef<JournalDoc>): number {
    const journal = ref.doc()
    const seen = this.#indexed.get(ref.url)
    let count = 0
    for (const entries of Object.values(journal.m ?? {})) count += Object.keys(entries).length
    if (seen && seen.size === count) return 0
    return this.indexPostings(ref.url, journalPostings(journal))
  }

  /** Indexes postings of the journal at `url` (known to be new, or checked here). Returns how many were new. */
  indexPostings(url: string, postings: Iterable<Posting>): number {
    let seen = this.#indexed.get(url)
    if (!seen) this.#indexed.set(url, (seen = new Set()))
    let added = 0
    for (const p of postings) {
      if (seen.has(p.seq)) continue
      seen.add(p.seq)
      const list = this.#byMovementId.get(p.id)
      if (list) list.push(p)
      else this.#byMovementId.set(p.id, [p])
      added++
    }
    return added
  }

  /** Postings already recorded under a movement id (any node). */
  postingsOf(movementId: string): Posting[] {
    return this.#byMovementId.get(movementId) ?? []
  }

  /** Loaded journals of this node from `fromPeriod` on. */
  #ownJournals(fromPeriod?: string): JournalDoc[] {
    const out: JournalDoc[] = []
    for (const { url } of journalUrls(this.ledger, { node: this.options.node, ...(fromPeriod ? { fromPeriod } : {}) })) {
      const ref = this.store.journal(url)
      if (ref) out.push(ref.doc())
    }
    return out
  }

  #lastSeq(): number {
    if (this.#seq === undefined) {
      const mark = this.ledger.posted?.[this.options.node]
      this.#seq = lastSeqOf(this.ledger, this.options.node, this.#ownJournals(mark ? str(mark.period) : undefined))
    }
    return this.#seq
  }

  /** Runs `task` after every task queued before it: postings of one node are strictly ordered. */
  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task)
    this.#queue = run.catch(() => undefined)
    return run
  }

  /**
   * Validates and posts movements (one or a scanner's batch). All are validated first: one bad
   * movement refuses the whole batch and changes nothing. Movement ids already posted are
   * answered as duplicates and change nothing. Resolves once everything is durable.
   */
  record(inputs: unknown[], user?: { device?: string }): Promise<RecordResult[]> {
    return this.#serial(async () => {
      const { node, site, knownSku, now } = this.options
      const time = now()
      let lastSeq = this.#lastSeq()
      const results: RecordResult[] = []
      const fresh: Posting[] = []
      const batchIds = new Set<string>()
      const batch = { deltas: new Map<string, number>(), counts: new Map<string, string>() }
      for (const [i, input] of inputs.entries()) {
        let posting: Posting
        try {
          posting = planMovement(input, { node, now: time, ledger: this.ledger, knownSku, lastSeq, batch })
        } catch (error) {
          if (inputs.length > 1 && error instanceof Error) error.message = `movement ${i + 1}: ${error.message}`
          throw error
        }
        const earlier = this.postingsOf(posting.id)[0]
        if (earlier || batchIds.has(posting.id)) {
          results.push({ status: 'duplicate', posting: earlier ?? fresh.find((p) => p.id === posting.id)! })
          continue
        }
        if (user?.device && posting.device === undefined) posting.device = user.device
        lastSeq = posting.seq
        batchIds.add(posting.id)
        batch.deltas.set(posting.sku, (batch.deltas.get(posting.sku) ?? 0) + posting.delta)
        if (posting.kind === 'count') batch.counts.set(posting.sku, postingKey(node, posting.seq))
        fresh.push(posting)
        results.push({ status: 'recorded', posting })
      }
      if (fresh.length > 0) {
        // Claimed before the writes: a failed write must not let the next posting reuse a number
        // that may already be in the journal.
        this.#seq = lastSeq
        await this.#post(fresh, site)
      }
      return results
    })
  }

  async #post(postings: Posting[], site: string): Promise<void> {
    const period = postings[0]!.period
    const journal = await this.#journalFor(period, site)
    // No change message: the movement itself says who, where and when, and a message would add
    // ~80 bytes to every posting on disk and on the wire (BENCHMARKS.md).
    const time = { time: Math.floor(this.options.now() / 1000) }
    journal.change((d) => {
      for (const p of postings) writeJournal(d, p)
    }, time)
    await this.store.durable([journal])
    this.indexPostings(journal.url, postings)
    this.store.ledger.change((d) => {
      for (const p of postings) writeCounters(d, p)
    }, time)
    await this.store.durable([this.store.ledger])
  }

  /** The node's journal for `period`, created and registered (durably) if it does not exist. */
  async #journalFor(period: string, site: string): Promise<DocRef<JournalDoc>> {
    const { node } = this.options
    const existing = this.ledger.journals?.[`${period}/${node}`]
    if (existing) {
      const ref = this.store.journal(str(existing))
      if (!ref) throw new Error(`journal ${period}/${node} is registered but not loaded`)
      return ref
    }
    const ref = this.store.createJournal((d) => createJournal(d, site, node, period))
    await this.store.durable([ref])
    this.store.ledger.change((d) => registerJournal(d, node, period, ref.url), changeOptions({ op: 'ledger.journal', user: node, ref: period }, this.options.now()))
    await this.store.durable([this.store.ledger])
    return ref
  }

  /**
   * Resolves a ledger review item: posts the compensating movements (ids derived from the item,
   * so a retry after a crash posts nothing twice), then records the decision naming them.
   */
  async decide(itemId: string, decision: { user: string; note: string }, adjustments: unknown[]): Promise<string[]> {
    const results = adjustments.length > 0 ? await this.record(adjustments) : []
    const movements = results.map((r) => r.posting.id)
    return this.#serial(async () => {
      const at = this.options.now()
      this.store.ledger.change((d) => decideLedgerItem(d, itemId, { note: decision.note, movements }, { user: decision.user, at }), changeOptions({ op: 'ledger.decide', user: decision.user, ref: itemId }, at))
      await this.store.durable([this.store.ledger])
      return movements
    })
  }

  /**
   * Applies this node's journal postings that never reached the counters (the node stopped
   * between the two steps). Run at start, after the node's journals are loaded. Returns them.
   */
  repair(): Promise<Posting[]> {
    return this.#serial(async () => {
      const { node } = this.options
      const mark = this.ledger.posted?.[node]
      const pending = pendingPostings(this.ledger, node, this.#ownJournals(mark ? str(mark.period) : undefined))
      if (pending.length === 0) return []
      this.store.ledger.change((d) => {
        for (const p of pending) writeCounters(d, p)
      }, changeOptions({ op: 'ledger.repair', user: node, ref: pending.map((p) => postingKey(p.node, p.seq)).join(',').slice(0, 200) }, this.options.now()))
      await this.store.durable([this.store.ledger])
      return pending
    })
  }
}
