/**
 * A site's ledger as one node sees it: the ledger document, the journals loaded so far, and the
 * rules for posting into them. No I/O of its own: the caller supplies document references
 * (automerge-repo handles in the site node, plain Automerge docs in tests) and a `durable`
 * barrier that returns once the given documents are on disk.
 *
 * Posting, each step durable (fsync) before the next:
 *   a. when the node's journal is full or its week is over: create the next journal with the
 *      opening balance (durable), then register it in the ledger (durable);
 *   b. write the movements and their totals into the journal in one change (durable) — then
 *      acknowledge. A crash anywhere loses only what was not acknowledged, and nothing is half
 *      written: a journal created but not registered is simply never used.
 */
import { ConflictError } from '../schema/errors.ts'
import type { DeviceId, UserId } from '../schema/ids.ts'
import type { ReviewItem } from '../schema/review.ts'
import type { JournalDoc, LedgerDoc } from '../schema/ledger.ts'
import { JOURNAL_LIMIT } from '../schema/ledger.ts'
import { assertWritable, migrate } from '../schema/migrations.ts'
import { str } from '../schema/strings.ts'
import { changeOptions } from './history.ts'
import {
  createJournal,
  journalBalance,
  journalEntries,
  journalLotBalance,
  lotKey,
  lotsOnHand as lotsOnHandOf,
  onHand as onHandOf,
  journalPostings,
  journalSize,
  lastSeqOf,
  planMovement,
  postingKey,
  registerJournal,
  writeJournalAll,
  type Posting,
  describeMovement,
  sameMovement,
  checkJournalFacts,
  type CheckedJournal,
  journalFacts,
  type JournalFacts,
  type LedgerMismatch,
} from './ledger.ts'
import { periodOf } from './period.ts'
import { PostingList, PostingTable, RowList } from './postingTable.ts'
import { type CompensationInput, compensationsOf, countGroupKey, decideLedgerItem, type LedgerReviewFacts } from './review.ts'

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
  /** Whether the catalog knows a SKU (and it is active); a movement of another SKU is refused. */
  knownSku: (sku: string) => boolean
  /** Whether the catalog tracks a SKU by lot (omitted: none is). */
  lotTracked?: (sku: string) => boolean
  /**
   * The reason codes movements may name: the catalog's reasons. A site node passes
   * `knownReasons: () => reasonCodes(catalog.doc())` (src/docs/catalog.ts). Read once per group
   * commit; a movement naming another code, unless built in (`BUILT_IN_REASONS`), is refused with
   * RuleError 'unknown-reason'. Omitted: any well-formed reason code is accepted (tests, tools
   * that post without a catalog).
   */
  knownReasons?: () => Iterable<string>
  /** The node's clock, unix ms. Client times (`at`) must lie within a window around it. */
  now: () => number
  /**
   * Asked before posting into a journal that has movements already: true opens the next journal
   * now. A site node says true once per relay outage of some length, so that what is recorded
   * offline goes into a journal no peer holds yet, which travels whole (~37 B per movement) instead
   * of change by change (~200 B each) when the link is back.
   */
  rollOver?: () => boolean
}

/** A lot of a SKU as this node knows it. */
export interface LotStock {
  lot: string
  /** YYYY-MM-DD, as its receipt stated it (undefined: no movement stated one). */
  expiry: string | undefined
  onHand: number
}

/** Earliest expiry first (a lot without one last), then by lot. */
export function byExpiry(a: LotStock, b: LotStock): number {
  const x = a.expiry ?? '9999-99-99'
  const y = b.expiry ?? '9999-99-99'
  return x < y ? -1 : x > y ? 1 : a.lot < b.lot ? -1 : a.lot > b.lot ? 1 : 0
}

export interface RecordResult {
  /** 'recorded': posted now; 'duplicate': this movement id was already posted (nothing changed). */
  status: 'recorded' | 'duplicate'
  posting: Posting
}

interface WaitingRecord {
  inputs: unknown[]
  /** 'node': movements the node derives from another document (a delivered stop's receipts): facts, not a person's entry. */
  origin: 'client' | 'node'
  resolve: (results: RecordResult[]) => void
  reject: (error: unknown) => void
}

/** What requests planned earlier in the same group commit have claimed, and what the group reads once. */
interface PlanState {
  /** The catalog's reason codes when the group was planned (undefined: not checked). */
  knownReasons: ReadonlySet<string> | undefined
  lastSeq: number
  onHand: Map<string, number>
  counts: Map<string, string>
  /** Per lot (`sku|lot`): what the requests planned so far in the group moved. */
  lotMoves: Map<string, number>
  fresh: Posting[]
}

interface OwnJournal {
  ref: DocRef<JournalDoc>
  size: number
  lastSeq: number
}

export class LedgerBook {
  /** Postings by movement id, across every journal indexed so far (all nodes). */
  readonly #byMovementId = new Map<string, number | number[]>()
  /** The postings themselves, in columns (src/docs/postingTable.ts). */
  readonly #table = new PostingTable()
  /** Per journal URL, the sequence numbers already indexed, and their rows. */
  readonly #indexed = new Map<string, Set<number>>()
  readonly #rowsOf = new Map<string, RowList>()
  /** Every posting indexed, and per SKU: sorted newest first when asked for (`#order`), lazily. */
  readonly #all = new RowList()
  readonly #bySku = new Map<string, RowList>()
  /** Lists with postings added since they were last sorted ('' for `#all`). */
  readonly #unsorted = new Set<string>()
  /** Latest stock count per SKU among the postings indexed. */
  readonly #lastCount = new Map<string, Pick<Posting, 'at' | 'node' | 'seq'>>()
  /** Per journal URL, the sum of its indexed movements per SKU (the ledger check). */
  readonly #sums = new Map<string, Map<string, number>>()
  /** Movement ids posted more than once (review: duplicate-movement). */
  readonly #duplicateIds = new Set<string>()
  /** Stock counts by SKU and `prev`; the keys of groups of two or more (review: concurrent-counts). */
  readonly #countGroups = new Map<string, number[]>()
  readonly #concurrentCounts = new Set<string>()
  /** Stored balances of journals known only from the journal cache (not loaded). */
  readonly #factsOf = new Map<string, JournalFacts>()
  #queue: Promise<unknown> = Promise.resolve()
  /** Requests waiting for the next group commit. */
  #waiting: WaitingRecord[] = []
  /** This node's current journal; only this node writes it, so the cached size and sequence are exact. */
  #own: OwnJournal | undefined
  /** On hand as last computed; kept up to date by own postings, dropped when another journal changes. */
  #onHand: Map<string, number> | undefined
  /** The ledger document `#onHand` was computed from. */
  #onHandLedger: LedgerDoc | undefined

  constructor(
    readonly store: LedgerStore,
    readonly options: LedgerBookOptions,
  ) {}

  get ledger(): LedgerDoc {
    return this.store.ledger.doc()
  }

  /** Indexes a journal's movements not seen before (journals only grow). Returns the new ones. */
  indexJournal(ref: DocRef<JournalDoc>): Posting[] {
    // A journal newly here may change which journal of its node counts for on hand, even when its
    // movements were indexed before (from the journal cache).
    if (ref.url !== this.#own?.ref.url) this.#onHand = this.#lotsOnHand = undefined
    const journal = ref.doc()
    const seen = this.#indexed.get(ref.url)
    if (seen && seen.size === journalSize(journal)) return []
    return this.indexPostings(ref.url, journalPostings(journal))
  }

  /**
   * Indexes postings of the journal at `url`; ones already indexed are skipped. Returns the new
   * ones, unless `collect` is false: then each posting is only read, never kept, so a reader may
   * hand the same object over again with other values (the journal cache does, at start).
   */
  indexPostings(url: string, postings: Iterable<Posting>, collect = true): Posting[] {
    if (url !== this.#own?.ref.url) this.#onHand = this.#lotsOnHand = undefined
    let seen = this.#indexed.get(url)
    if (!seen) this.#indexed.set(url, (seen = new Set()))
    let rowsOf = this.#rowsOf.get(url)
    if (!rowsOf) this.#rowsOf.set(url, (rowsOf = new RowList()))
    const added: Posting[] = []
    for (const p of postings) {
      if (seen.has(p.seq)) continue
      seen.add(p.seq)
      const row = this.#table.add(p)
      rowsOf.push(row)
      const earlier = this.#byMovementId.get(p.id)
      if (earlier === undefined) this.#byMovementId.set(p.id, row)
      else {
        this.#byMovementId.set(p.id, typeof earlier === 'number' ? [earlier, row] : [...earlier, row])
        this.#duplicateIds.add(p.id)
      }
      let sums = this.#sums.get(url)
      if (!sums) this.#sums.set(url, (sums = new Map()))
      sums.set(p.sku, (sums.get(p.sku) ?? 0) + p.delta)
      if (p.lots) this.#indexLots(url, p, row)
      this.#all.push(row)
      let ofSku = this.#bySku.get(p.sku)
      if (!ofSku) this.#bySku.set(p.sku, (ofSku = new RowList()))
      ofSku.push(row)
      this.#unsorted.add('').add(p.sku)
      if (p.kind === 'count') {
        const key = countGroupKey(p)
        const group = this.#countGroups.get(key)
        if (group) {
          group.push(row)
          this.#concurrentCounts.add(key)
        } else this.#countGroups.set(key, [row])
        // A lot-tracked product is counted lot by lot: the latest count is per lot.
        const countOf = p.lots?.length === 1 ? lotKey(p.sku, p.lots[0]!.lot) : p.sku
        const last = this.#lastCount.get(countOf)
        if (!last || p.at > last.at || (p.at === last.at && postingKey(p.node, p.seq) > postingKey(last.node, last.seq))) this.#lastCount.set(countOf, { at: p.at, node: p.node, seq: p.seq })
      }
      if (collect) added.push(p)
    }
    return added
  }

  /** Per journal URL, the sum of its indexed movements per lot (`sku|lot`). */
  readonly #lotSums = new Map<string, Map<string, number>>()
  /** Lots named by any movement, per SKU; the expiry stated for each (`sku|lot`), and lots stated with two. */
  readonly #lotsBySku = new Map<string, Set<string>>()
  readonly #expiryOf = new Map<string, string>()
  readonly #expiryConflicts = new Map<string, string[]>()
  /** Rows of the movements of each lot (recall: `sku|lot`), and the SKUs a lot id names. */
  readonly #lotRows = new Map<string, RowList>()
  readonly #skusOfLot = new Map<string, Set<string>>()

  #indexLots(url: string, p: Posting, row: number): void {
    let lotSums = this.#lotSums.get(url)
    if (!lotSums) this.#lotSums.set(url, (lotSums = new Map()))
    for (const part of p.lots!) {
      const key = lotKey(p.sku, part.lot)
      lotSums.set(key, (lotSums.get(key) ?? 0) + part.delta)
      let lots = this.#lotsBySku.get(p.sku)
      if (!lots) this.#lotsBySku.set(p.sku, (lots = new Set()))
      lots.add(part.lot)
      let rows = this.#lotRows.get(key)
      if (!rows) this.#lotRows.set(key, (rows = new RowList()))
      rows.push(row)
      let skus = this.#skusOfLot.get(part.lot)
      if (!skus) this.#skusOfLot.set(part.lot, (skus = new Set()))
      skus.add(p.sku)
    }
    if (p.expiry !== undefined && p.lots!.length === 1) {
      const key = lotKey(p.sku, p.lots![0]!.lot)
      const known = this.#expiryOf.get(key)
      if (known === undefined) this.#expiryOf.set(key, p.expiry)
      else if (known !== p.expiry) {
        const dates = this.#expiryConflicts.get(key) ?? [known]
        if (!dates.includes(p.expiry)) dates.push(p.expiry)
        this.#expiryConflicts.set(key, dates.sort())
        // The earliest date stated is the one served by: never later than any label says.
        if (p.expiry < known) this.#expiryOf.set(key, p.expiry)
      }
    }
  }

  /** Every movement of a lot id (of any SKU that has such a lot), newest first. */
  movementsOfLot(lot: string): Posting[] {
    const out: Posting[] = []
    for (const sku of this.#skusOfLot.get(lot) ?? []) {
      const rows = this.#lotRows.get(lotKey(sku, lot))!
      for (let i = 0; i < rows.length; i++) out.push(this.#table.get(rows.get(i)))
    }
    return out.sort((a, b) => b.at - a.at || (a.node < b.node ? -1 : a.node > b.node ? 1 : b.seq - a.seq))
  }

  /** How many postings of the journal at `url` are indexed. */
  countOfJournal(url: string): number {
    return this.#rowsOf.get(url)?.length ?? 0
  }

  /** The postings indexed of the journal at `url`, in the order they were indexed; undefined when none. */
  postingsOfJournal(url: string): Posting[] | undefined {
    const rows = this.#rowsOf.get(url)
    if (!rows) return undefined
    const out: Posting[] = []
    for (let i = 0; i < rows.length; i++) out.push(this.#table.get(rows.get(i)))
    return out
  }

  /**
   * Every posting indexed (of one SKU when given), newest first: by time, then node, then the
   * node's sequence, newest first. Kept, not rebuilt per call: a list is sorted again only after
   * postings were added to it. Do not change the array returned.
   */
  postings(sku?: string): PostingList {
    const key = sku ?? ''
    const list = sku === undefined ? this.#all : this.#bySku.get(sku)
    if (list && this.#unsorted.has(key)) {
      list.sort(this.#table.newestFirst)
      this.#unsorted.delete(key)
    }
    return new PostingList(this.#table, list)
  }

  /**
   * Indexes a journal known from the journal cache without loading it: its postings and its
   * stored balances (for the ledger check). Once the journal is loaded its document is read instead.
   */
  indexFacts(url: string, facts: JournalFacts, postings: Iterable<Posting>): void {
    this.#factsOf.set(url, facts)
    this.indexPostings(url, postings, false)
  }

  /** Whether any posting of the journal at `url` is indexed. */
  isIndexed(url: string): boolean {
    return this.#indexed.has(url)
  }

  /** The URL of the journal this node writes now (undefined before its first posting). */
  get ownJournalUrl(): string | undefined {
    return this.#own?.ref.url
  }

  /** The journal at `url` leaves memory: its movements stay indexed, its stored balances are kept for the check. */
  forgetDocument(url: string, facts: JournalFacts): void {
    this.#factsOf.set(url, facts)
  }

  /** The ledger check over every journal indexed: loaded ones read from their document, others from their stored facts. */
  check(): LedgerMismatch[] {
    const journals: CheckedJournal[] = []
    for (const { url } of journalEntries(this.ledger)) {
      const ref = this.store.journal(url)
      const facts = ref ? journalFacts(ref.doc()) : this.#factsOf.get(url)
      if (facts) journals.push({ ...facts, sums: this.#sums.get(url) ?? new Map(), lotSums: this.#lotSums.get(url) ?? new Map() })
    }
    return checkJournalFacts(journals)
  }

  /** What the ledger's review items derive from, as maintained here (src/docs/review.ts ledgerReviewItemsOf). */
  reviewFacts(): LedgerReviewFacts {
    return {
      onHand: this.onHand(),
      duplicates: [...this.#duplicateIds].map((id) => this.postingsOf(id)),
      countGroups: [...this.#concurrentCounts].map((key) => this.#countGroups.get(key)!.map((row) => this.#table.get(row))),
      lotsOnHand: this.lotsOnHand(),
      expiryConflicts: this.expiryConflicts(),
    }
  }

  /** Postings already recorded under a movement id (any node). */
  postingsOf(movementId: string): Posting[] {
    const rows = this.#byMovementId.get(movementId)
    if (rows === undefined) return []
    return typeof rows === 'number' ? [this.#table.get(rows)] : rows.map((row) => this.#table.get(row))
  }

  /** The latest loaded journal of every node (a node's newest may not have arrived yet). */
  latestJournals(): JournalDoc[] {
    const latest = new Map<string, JournalDoc>()
    for (const { node, url } of journalEntries(this.ledger)) {
      const ref = this.store.journal(url)
      if (ref) latest.set(node, ref.doc())
    }
    return [...latest.values()]
  }

  /**
   * On hand per lot (`sku|lot`) as this node sees it, from each device's latest journal (a copy).
   * Lots at 0 are left out.
   */
  lotsOnHand(): Map<string, number> {
    if (!this.#lotsOnHand || this.#lotsOnHandLedger !== this.ledger) {
      this.#lotsOnHandLedger = this.ledger
      this.#lotsOnHand = lotsOnHandOf(this.latestJournals())
    }
    return new Map([...this.#lotsOnHand].filter(([, quantity]) => quantity !== 0))
  }
  #lotsOnHand: Map<string, number> | undefined
  #lotsOnHandLedger: LedgerDoc | undefined

  /** The lots of a SKU this node knows of (every lot any movement named), with their expiry and on hand, earliest expiry first. */
  lotsOf(sku: string): LotStock[] {
    const onHand = this.lotsOnHand()
    const out: LotStock[] = []
    for (const lot of this.#lotsBySku.get(sku) ?? []) {
      const key = lotKey(sku, lot)
      out.push({ lot, expiry: this.#expiryOf.get(key), onHand: onHand.get(key) ?? 0 })
    }
    return out.sort(byExpiry)
  }

  /** The expiry this node knows for a lot (from the movements that stated it), or undefined. */
  expiryOf(sku: string, lot: string): string | undefined {
    return this.#expiryOf.get(lotKey(sku, lot))
  }

  /** Lots whose movements stated two different expiry dates: `sku|lot` → the dates. */
  expiryConflicts(): Map<string, string[]> {
    return new Map(this.#expiryConflicts)
  }

  /** Every SKU with at least one lot. */
  skusWithLots(): string[] {
    return [...this.#lotsBySku.keys()]
  }

  /** On hand per SKU as this node sees it (a copy: change it freely). */
  onHand(): Map<string, number> {
    // Which journals count depends on the ledger too: a change to it (another device's journal
    // named, possibly after the journal itself arrived and was indexed) makes the cache stale.
    if (!this.#onHand || this.#onHandLedger !== this.ledger) {
      this.#onHandLedger = this.ledger
      this.#onHand = onHandOf(this.latestJournals())
    }
    return new Map(this.#onHand)
  }


  /** This node's latest registered journal, loaded by the caller before posting starts. */
  #ownJournal(): OwnJournal | undefined {
    if (this.#own) return this.#own
    const mine = journalEntries(this.ledger).filter((e) => e.node === this.options.node)
    const latest = mine[mine.length - 1]
    if (!latest) return undefined
    const ref = this.store.journal(latest.url)
    if (!ref) throw new Error(`this node's journal ${latest.node}/${latest.n} is registered but not loaded`)
    const doc = ref.doc()
    this.#own = { ref, size: journalSize(doc), lastSeq: lastSeqOf(doc) }
    return this.#own
  }

  /** Resolves once no posting is queued or being written (background work waits for it: recording comes first). */
  async settled(): Promise<void> {
    while (this.#waiting.length > 0 || this.#busy > 0) await this.#queue
  }
  #busy = 0

  /** Runs `task` after every task queued before it: postings of one node are strictly ordered. */
  #serial<T>(task: () => Promise<T>): Promise<T> {
    this.#busy++
    const run = this.#queue.then(task, task).finally(() => this.#busy--)
    this.#queue = run.catch(() => undefined)
    return run
  }

  /**
   * Validates and posts movements (one or a scanner's batch). All are validated first (input,
   * client time `at` against `options.now()`, SKU, reason: `planMovement`): one bad movement
   * refuses the whole batch, its error naming the field and, in a batch, the movement
   * (`movement 2: at: …`), and changes nothing. Movement ids already posted are
   * answered as duplicates and change nothing. Resolves once everything is durable.
   *
   * Group commit: requests that arrive while a posting is being written wait for it, then are
   * written together in one change and one fsync (each still accepted or refused on its own).
   */
  record(inputs: unknown[], origin: 'client' | 'node' = 'client'): Promise<RecordResult[]> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ inputs, origin, resolve, reject })
      if (this.#waiting.length === 1) void this.#serial(() => this.#recordWaiting())
    })
  }

  /** Plans every waiting request in arrival order, then writes the accepted ones in one change. */
  async #recordWaiting(): Promise<void> {
    const group = this.#waiting.splice(0)
    try {
      assertWritable('ledger', this.ledger)
      const own = this.#ownJournal()
      if (own) assertWritable('journal', own.ref.doc())
      const time = this.options.now()
      const state = this.#planState()
      const accepted: Array<{ request: WaitingRecord; results: RecordResult[] }> = []
      for (const request of group) {
        try {
          accepted.push({ request, results: this.#plan(request.inputs, time, state, request.origin) })
        } catch (error) {
          request.reject(error)
        }
      }
      if (state.fresh.length > 0) await this.#post(state.fresh, time)
      for (const { request, results } of accepted) request.resolve(results)
    } catch (error) {
      // Settled promises ignore this: it reaches only the requests still waiting for the write.
      for (const request of group) request.reject(error)
    }
  }

  /** A fresh planning state: what the node holds now. */
  #planState(): PlanState {
    const reasons = this.options.knownReasons?.()
    return { knownReasons: reasons && new Set(reasons), lastSeq: this.#ownJournal()?.lastSeq ?? 0, onHand: this.onHand(), counts: new Map(), lotMoves: new Map(), fresh: [] }
  }

  /** Lots of `sku` that movements planned in this group (not yet indexed) bring, as lots on hand. */
  #lotsNewIn(sku: string, state: PlanState, fresh: readonly Posting[]): LotStock[] {
    const out = new Map<string, LotStock>()
    for (const p of [...state.fresh, ...fresh]) {
      if (p.sku !== sku || !p.lots || p.lots.length !== 1) continue
      const lot = p.lots[0]!.lot
      if (this.#lotsBySku.get(sku)?.has(lot) || out.has(lot)) continue
      out.set(lot, { lot, expiry: p.expiry, onHand: (state.lotMoves.get(lotKey(sku, lot)) ?? 0) })
    }
    for (const p of fresh) {
      if (p.sku !== sku || !p.lots) continue
      for (const part of p.lots) {
        const l = out.get(part.lot)
        if (l) l.onHand += part.delta
      }
    }
    return [...out.values()]
  }

  /** Plans one request against `state`; on refusal `state` is left as it was. */
  #plan(inputs: unknown[], time: number, state: PlanState, origin: 'client' | 'node' = 'client'): RecordResult[] {
    const { node, knownSku, lotTracked } = this.options
    let lastSeq = state.lastSeq
    const onHand = new Map<string, number>()
    // Per lot (`sku|lot`): what earlier requests of the group and earlier movements of this one moved.
    const lotMoves = new Map<string, number>()
    const lotsOf = (sku: string) =>
      this.lotsOf(sku).map((l) => {
        const key = lotKey(sku, l.lot)
        return { ...l, onHand: l.onHand + (state.lotMoves.get(key) ?? 0) + (lotMoves.get(key) ?? 0) }
      }).concat(this.#lotsNewIn(sku, state, fresh)).sort(byExpiry)
    const counts = new Map<string, string>()
    const fresh: Posting[] = []
    const results: RecordResult[] = []
    for (const [i, input] of inputs.entries()) {
      let posting: Posting
      try {
        posting = planMovement(input, {
          node,
          now: time,
          knownSku,
          lotTracked,
          lotsOf,
          // A delivery's receipt states the expiry the hub shipped: recorded, and a differing one raises a review item.
          acceptExpiryMismatch: origin === 'node',
          recorded: (id) => this.postingsOf(id)[0] ?? state.fresh.find((p) => p.id === id) ?? fresh.find((p) => p.id === id),
          knownReasons: state.knownReasons,
          lastSeq,
          onHand: (sku) => onHand.get(sku) ?? state.onHand.get(sku) ?? 0,
          lastCount: (sku) => {
            const last = this.#lastCount.get(sku)
            return counts.get(sku) ?? state.counts.get(sku) ?? (last ? postingKey(last.node, last.seq) : '')
          },
        })
      } catch (error) {
        if (inputs.length > 1 && error instanceof Error) error.message = `movement ${i + 1}: ${error.message}`
        throw error
      }
      const earlier = this.postingsOf(posting.id)[0] ?? state.fresh.find((p) => p.id === posting.id) ?? fresh.find((p) => p.id === posting.id)
      if (earlier) {
        // A re-sent movement is the same movement; the same id with other content is another one.
        const differs = sameMovement(posting, earlier)
        if (differs) {
          const where = inputs.length > 1 ? `movement ${i + 1}: ` : ''
          throw new ConflictError(`${where}movement id ${posting.id} was already recorded with another ${differs} (${describeMovement(earlier)}); use a new id for a new movement`, inputs.length > 1 ? `${i}.id` : 'id')
        }
        results.push({ status: 'duplicate', posting: earlier })
        continue
      }
      lastSeq = posting.seq
      onHand.set(posting.sku, (onHand.get(posting.sku) ?? state.onHand.get(posting.sku) ?? 0) + posting.delta)
      for (const part of posting.lots ?? []) lotMoves.set(lotKey(posting.sku, part.lot), (lotMoves.get(lotKey(posting.sku, part.lot)) ?? 0) + part.delta)
      if (posting.kind === 'count') counts.set(posting.lots ? lotKey(posting.sku, posting.lots[0]!.lot) : posting.sku, postingKey(node, posting.seq))
      fresh.push(posting)
      results.push({ status: 'recorded', posting })
    }
    // The whole request is accepted: fold it into the group's state.
    state.lastSeq = lastSeq
    for (const [sku, quantity] of onHand) state.onHand.set(sku, quantity)
    for (const [sku, key] of counts) state.counts.set(sku, key)
    for (const [key, delta] of lotMoves) state.lotMoves.set(key, (state.lotMoves.get(key) ?? 0) + delta)
    state.fresh.push(...fresh)
    return results
  }

  async #post(postings: Posting[], time: number): Promise<void> {
    const own = await this.#journalFor(time)
    // Claimed before the write: a failed write must not let the next posting reuse a number
    // that may already be in the journal.
    own.lastSeq = postings[postings.length - 1]!.seq
    // No change message: the movement itself says who, where and when, and a message would add
    // ~80 bytes to every posting on disk and on the wire (BENCHMARKS.md).
    this.#writing = own.ref.url
    try {
      own.ref.change((d) => {
        // This node's own journal, written by no one else: brought to the current schema (lot
        // totals) in the change of its first posting since the upgrade.
        migrate('journal', d)
        writeJournalAll(d, postings)
      }, { time: Math.floor(time / 1000) })
      if (this.#lotsOnHand) for (const p of postings) for (const part of p.lots ?? []) this.#lotsOnHand.set(lotKey(p.sku, part.lot), (this.#lotsOnHand.get(lotKey(p.sku, part.lot)) ?? 0) + part.delta)
    } finally {
      this.#writing = undefined
    }
    own.size += postings.length
    if (this.#onHand) for (const p of postings) this.#onHand.set(p.sku, (this.#onHand.get(p.sku) ?? 0) + p.delta)
    // Indexed as soon as they are in the document (a posting whose save fails is still there, and
    // travels with the next save: its id must stay taken).
    this.indexPostings(own.ref.url, postings)
    await this.store.durable([own.ref])
  }

  #writing: string | undefined

  /**
   * The URL of the journal this book is changing right now (synchronously, inside `change`):
   * a listener on that journal's changes can skip them, the book indexes its own postings.
   */
  get writing(): string | undefined {
    return this.#writing
  }

  /** The node's journal to post into now: the current one, or the next one opened (durably). */
  async #journalFor(time: number): Promise<OwnJournal> {
    const { node, site } = this.options
    const week = periodOf(time)
    const current = this.#ownJournal()
    if (current && current.size < JOURNAL_LIMIT && str(current.ref.doc().week) === week && !(current.size > 0 && this.options.rollOver?.())) return current
    const n = (current?.ref.doc().n ?? 0) + 1
    const open = current ? journalBalance(current.ref.doc()) : new Map<string, number>()
    const openLots = current ? journalLotBalance(current.ref.doc()) : new Map<string, number>()
    const s0 = current?.lastSeq ?? 0
    const ref = this.store.createJournal((d) => createJournal(d, { site, node, n, week, s0, open, openLots, t0: time }))
    await this.store.durable([ref])
    this.store.ledger.change((d) => registerJournal(d, node, n, ref.url), changeOptions({ op: 'ledger.journal', user: node, ref: `${node}/${n}` }, time))
    await this.store.durable([this.store.ledger])
    this.#own = { ref, size: 0, lastSeq: s0 }
    return this.#own
  }

  /**
   * Resolves a ledger review item with compensating adjustments (ids derived from the item, so
   * nothing is ever posted twice). In this order: the adjustments are checked as a posting would
   * check them (nothing written if one is refused); the decision is recorded durably, naming them
   * and holding what they are; then they are posted. A crash between the last two leaves a
   * decision whose adjustments are not in the ledger yet: `reconcileDecisions` posts them.
   * Returns what posting them did.
   */
  async decide(item: ReviewItem, decision: { user: string; note: string }, adjustments: CompensationInput[]): Promise<RecordResult[]> {
    await this.#serial(async () => {
      const at = this.options.now()
      this.#plan(adjustments, at, this.#planState())
      const ctx = { user: decision.user as UserId, device: this.options.node as DeviceId, at }
      const compensations = adjustments.map(({ id, sku, delta, reason, lot }) => ({ id, sku, delta, reason, ...(lot !== undefined ? { lot } : {}) }))
      this.store.ledger.change(
        (d) => decideLedgerItem(d, item, { note: decision.note, movements: adjustments.map((a) => a.id), compensations }, ctx),
        changeOptions({ op: 'ledger.decide', user: decision.user, device: this.options.node, ref: item.id }, at),
      )
      await this.store.durable([this.store.ledger])
    })
    return adjustments.length > 0 ? this.record(adjustments) : []
  }

  /**
   * Posts the compensating adjustments of this node's decisions that are not in the ledger yet (a
   * crash between recording a decision and posting them). Idempotent; returns what it recorded.
   */
  async reconcileDecisions(): Promise<RecordResult[]> {
    const missing = compensationsOf(this.ledger, this.options.node).filter((c) => this.postingsOf(c.id).length === 0)
    if (missing.length === 0) return []
    const results = await this.record(missing)
    return results.filter((r) => r.status === 'recorded')
  }
}
