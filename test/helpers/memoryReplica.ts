/**
 * A site node's ledger in memory, for convergence tests: raw Automerge documents behind the same
 * LedgerBook the real site node uses, with a simulated disk. `durable()` copies documents to the
 * disk; `crashAndRestart()` throws away whatever was not durable and restarts the book. Sync sends what is on
 * disk only: the site node holds outgoing changes until they are durable (src/network/durableGate.ts).
 */
import * as A from '@automerge/automerge'
import { createLedger } from '../../src/docs/ledger.ts'
import { LedgerBook, type DocRef, type LedgerStore } from '../../src/docs/ledgerBook.ts'
import type { JournalDoc, LedgerDoc } from '../../src/schema/ledger.ts'

export class MemDoc<T> implements DocRef<T> {
  constructor(
    readonly url: string,
    public current: A.Doc<T>,
  ) {}
  doc(): T {
    return this.current as T
  }
  change(fn: (doc: T) => void, options?: { message?: string; time: number }): void {
    this.current = A.change(this.current, options ?? {}, fn as A.ChangeFn<T>)
  }
}

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0')

/** Thrown by a simulated crash inside `durable()`. */
export class SimulatedCrash extends Error {}

export class MemoryReplica implements LedgerStore {
  ledger: MemDoc<LedgerDoc>
  readonly journals = new Map<string, MemDoc<JournalDoc>>()
  /** What survives a crash: saved bytes per URL. */
  readonly disk = new Map<string, Uint8Array>()
  book: LedgerBook
  /** When set, the n-th next call of durable() throws SimulatedCrash (0 = the next). */
  crashAfterDurableCalls: number | undefined
  #created = 0
  #restarts = 0

  constructor(
    readonly index: number,
    readonly node: string,
    origin: A.Doc<LedgerDoc>,
    readonly site: string,
    readonly knownSku: (sku: string) => boolean,
    public clock: () => number,
  ) {
    this.ledger = new MemDoc('ledger', A.clone(origin, { actor: this.#actor() }))
    this.disk.set('ledger', A.save(this.ledger.current))
    this.book = this.#newBook()
  }

  #actor(): string {
    return hex(this.index + 1, 4) + hex(this.#restarts, 4) + hex(this.#created++, 8)
  }

  /** Which SKUs the catalog tracks by lot (none unless a test says so). */
  lotTracked: (sku: string) => boolean = () => false

  #newBook(): LedgerBook {
    return new LedgerBook(this, { node: this.node, site: this.site, knownSku: this.knownSku, lotTracked: (sku) => this.lotTracked(sku), now: () => this.clock() })
  }

  journal(url: string): MemDoc<JournalDoc> | undefined {
    return this.journals.get(url)
  }

  createJournal(init: (doc: JournalDoc) => void): MemDoc<JournalDoc> {
    const url = `journal-${this.node}-${this.#restarts}-${this.#created}`
    const doc = new MemDoc<JournalDoc>(url, A.change(A.init<JournalDoc>({ actor: this.#actor() }), init))
    this.journals.set(url, doc)
    return doc
  }

  async durable(refs: Array<DocRef<unknown>>): Promise<void> {
    if (this.crashAfterDurableCalls !== undefined) {
      if (this.crashAfterDurableCalls === 0) {
        this.crashAfterDurableCalls = undefined
        throw new SimulatedCrash(`${this.node} crashed`)
      }
      this.crashAfterDurableCalls--
    }
    for (const ref of refs) this.disk.set(ref.url, A.save((ref as MemDoc<unknown>).current))
  }

  /** A hard stop and restart: memory is lost, the disk is loaded, the book starts afresh. */
  async crashAndRestart(): Promise<void> {
    this.#restarts++
    this.ledger = new MemDoc('ledger', A.load<LedgerDoc>(this.disk.get('ledger')!, { actor: this.#actor() }))
    this.journals.clear()
    for (const [url, bytes] of this.disk) {
      if (url !== 'ledger') this.journals.set(url, new MemDoc(url, A.load<JournalDoc>(bytes, { actor: this.#actor() })))
    }
    this.book = this.#newBook()
    for (const ref of this.journals.values()) if (ref.doc().m) this.book.indexJournal(ref)
  }

  /** Receives `from`'s stored changes, optionally a shuffled, duplicated subset of them. */
  receiveFrom(from: MemoryReplica, pick: <T>(changes: T[]) => T[] = (c) => c): void {
    const incoming = (url: string) => A.getAllChanges(A.load(from.disk.get(url)!))
    this.ledger.current = A.applyChanges(this.ledger.current, pick(incoming('ledger')))[0]
    for (const url of from.disk.keys()) {
      if (url === 'ledger') continue
      let mine = this.journals.get(url)
      if (!mine) this.journals.set(url, (mine = new MemDoc(url, A.init<JournalDoc>({ actor: this.#actor() }))))
      mine.current = A.applyChanges(mine.current, pick(incoming(url)))[0]
      if (A.getHeads(mine.current).length > 0 && mine.current.m) this.book.indexJournal(mine)
    }
  }

  /** Received changes count as stored too (a real node saves what it receives). */
  storeEverything(): void {
    this.disk.set('ledger', A.save(this.ledger.current))
    for (const [url, doc] of this.journals) if (A.getHeads(doc.current).length > 0) this.disk.set(url, A.save(doc.current))
  }

  /** The journals the ledger names (as a site node loads them: a journal never registered stays unused). */
  journalDocs(): JournalDoc[] {
    const named = new Set(Object.values(this.ledger.doc().journals ?? {}).map(String))
    return [...this.journals.values()].filter((j) => named.has(j.url) && j.doc().m !== undefined).map((j) => j.doc())
  }
}

/** A fresh ledger document every replica of a test is cloned from. */
export function originLedger(site: string): A.Doc<LedgerDoc> {
  return A.change(A.init<LedgerDoc>({ actor: 'ff00' }), (d) => createLedger(d, site))
}
