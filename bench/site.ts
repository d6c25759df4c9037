/**
 * Building a benchmark site: a real SiteNode on a temp data dir, or the same LedgerBook over
 * plain in-memory Automerge documents (no automerge-repo, no storage) to isolate Automerge's share.
 */
import * as A from '@automerge/automerge'
import pino from 'pino'
import { createLedger, journalEntries, journalSize } from '../src/docs/ledger.ts'
import { LedgerBook, type DocRef, type LedgerStore } from '../src/docs/ledgerBook.ts'
import { SiteNode } from '../src/node/siteNode.ts'
import type { JournalDoc, LedgerDoc } from '../src/schema/ledger.ts'
import { BATCH, CATALOG_SIZE, STEP_MS, BenchClock, Movements, benchCatalog, cpuMs, skuOf, type Input } from './workload.ts'

export const SITE = 'bench-store'
export const NODE = 'node-a'

export function openSite(dataDir: string, clock: BenchClock, node = NODE): Promise<SiteNode> {
  return SiteNode.open({ dataDir, site: SITE, node, logger: pino({ level: 'silent' }), now: clock.now, provisionCatalog: benchCatalog })
}

/** Records movements in batches of 500 until the history holds `upto` movements. */
export async function extendHistory(book: LedgerBook, gen: Movements, clock: BenchClock, upto: number, progress?: (n: number) => void): Promise<void> {
  while (clock.count < upto) {
    const n = Math.min(BATCH, upto - clock.count)
    const inputs = []
    for (let i = 0; i < n; i++) inputs.push(gen.next(clock.now() + i * STEP_MS))
    await book.record(inputs)
    clock.count += n
    if (progress && clock.count % 10_000 === 0) progress(clock.count)
  }
}

export interface Sample {
  cpu: number
  wall: number
  /** CPU inside A.change (in-memory store only). */
  automerge: number
  /** Documents automerge-repo compacted (rewrote as one snapshot) during this movement. */
  compacted: string[]
  /** This movement made the node open a new journal. */
  opened: boolean
  /** The history length before the movement. */
  at: number
}

/** The next `n` movements of the history, timed as the clock will be when each is recorded. */
export function nextInputs(gen: Movements, clock: BenchClock, n: number): Input[] {
  return Array.from({ length: n }, (_, i) => gen.next(clock.start + (clock.count + i) * STEP_MS))
}

/** This node's latest journal and its size. */
export function ownJournal(book: LedgerBook): { url: string; size: number } {
  const entry = journalEntries(book.ledger).filter((e) => e.node === book.options.node).at(-1)
  const ref = entry ? book.store.journal(entry.url) : undefined
  return { url: entry?.url ?? '', size: ref ? journalSize(ref.doc()) : 0 }
}

/** Records the inputs one at a time (one `book.record([input])` each), measuring each. */
export async function measureSingles(book: LedgerBook, inputs: Input[], clock: BenchClock, compactions?: { take(): string[] }): Promise<Sample[]> {
  const samples: Sample[] = []
  for (const input of inputs) {
    const journalBefore = ownJournal(book).url
    compactions?.take()
    const a0 = automergeCpu.ms
    const c0 = process.cpuUsage()
    const w0 = performance.now()
    await book.record([input])
    const wall = performance.now() - w0
    const cpu = cpuMs(c0)
    samples.push({ cpu, wall, automerge: automergeCpu.ms - a0, compacted: compactions?.take() ?? [], opened: ownJournal(book).url !== journalBefore, at: clock.count })
    clock.count++
  }
  return samples
}

/** Listens to automerge-repo's storage events: which documents were compacted since the last take(). */
export function watchCompactions(node: SiteNode): { take(): string[]; stop(): void; total: Map<string, number>; saveMs: number[] } {
  const ledgerId = node.store.ledger.handle.documentId
  let pending: string[] = []
  const total = new Map<string, number>()
  const saveMs: number[] = []
  const listener = ({ documentId, durationMillis }: { documentId: string; durationMillis: number }) => {
    const name = documentId === ledgerId ? 'ledger' : 'journal'
    pending.push(name)
    saveMs.push(durationMillis)
    total.set(name, (total.get(name) ?? 0) + 1)
  }
  node.repo.storageSubsystem?.on('doc-compacted', listener)
  return {
    stop: () => void node.repo.storageSubsystem?.off('doc-compacted', listener),
    take() {
      const out = pending
      pending = []
      return out
    },
    total,
    saveMs,
  }
}

// ---- the same book over plain Automerge documents ------------------------------------------------

/** Accumulates CPU spent inside A.change (the Automerge part of a posting). */
export const automergeCpu = { ms: 0 }

class MemRef<T> implements DocRef<T> {
  constructor(
    readonly url: string,
    public current: A.Doc<T>,
  ) {}
  doc(): T {
    return this.current as T
  }
  change(fn: (doc: T) => void, options?: { message: string; time: number }): void {
    const c0 = process.cpuUsage()
    this.current = A.change(this.current, options ?? {}, fn as A.ChangeFn<T>)
    automergeCpu.ms += cpuMs(c0)
  }
}

/** A LedgerStore of raw Automerge documents; `durable` does nothing. */
export class MemStore implements LedgerStore {
  readonly ledger: MemRef<LedgerDoc>
  readonly journals = new Map<string, MemRef<JournalDoc>>()
  #n = 0
  /** A fresh ledger, or copies of existing documents (journals by URL). */
  constructor(site: string, from?: { ledger: A.Doc<LedgerDoc>; journals: Map<string, A.Doc<JournalDoc>> }) {
    this.ledger = new MemRef('ledger', from ? A.clone(from.ledger) : A.change(A.init<LedgerDoc>(), (d) => createLedger(d, site)))
    for (const [url, doc] of from?.journals ?? []) this.journals.set(url, new MemRef(url, A.clone(doc)))
  }
  journal(url: string): MemRef<JournalDoc> | undefined {
    return this.journals.get(url)
  }
  createJournal(init: (doc: JournalDoc) => void): MemRef<JournalDoc> {
    const ref = new MemRef(`journal-${this.#n++}`, A.change(A.init<JournalDoc>(), init))
    this.journals.set(ref.url, ref)
    return ref
  }
  async durable(): Promise<void> {}
}

const catalogSkus = new Set(Array.from({ length: CATALOG_SIZE }, (_, i) => skuOf(i)))

export function memBook(clock: BenchClock, from?: ConstructorParameters<typeof MemStore>[1], node = NODE): { book: LedgerBook; store: MemStore } {
  const store = new MemStore(SITE, from)
  const book = new LedgerBook(store, { node, site: SITE, knownSku: (sku) => catalogSkus.has(sku), now: clock.now })
  return { book, store }
}
