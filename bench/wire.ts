/**
 * Section 3: bytes on the wire. Two automerge-repo Repos (in memory), each with the project's
 * LedgerBook over a RepoLedgerStore, share one ledger; each node records movements one at a time
 * while disconnected, then they reconnect over a MessageChannel and sync. Every message either
 * side sends is counted (see src/network/MessagePortNetworkAdapter.ts).
 */
import { MessageChannel } from 'node:worker_threads'
import * as A from '@automerge/automerge'
import { gzipSync } from 'node:zlib'
import { Repo, generateAutomergeUrl, parseAutomergeUrl, type AutomergeUrl, type DocHandle, type PeerId } from '@automerge/automerge-repo'
import { checkLedger, createLedger, journalEntries } from '../src/docs/ledger.ts'
import { LedgerBook } from '../src/docs/ledgerBook.ts'
import { DurableGate } from '../src/network/durableGate.ts'
import { RepoLedgerStore } from '../src/node/repoLedgerStore.ts'
import type { JournalDoc, LedgerDoc } from '../src/schema/ledger.ts'
import { MessagePortNetworkAdapter, WireCount } from '../src/network/MessagePortNetworkAdapter.ts'
import { journalBytes, journalContents, ledgerBytes, type SiteContents } from './replay.ts'
import { SITE, extendHistory, memBook } from './site.ts'
import { BenchClock, CATALOG_SIZE, Movements, cpuMs, log, skuOf, type Input } from './workload.ts'

export interface WireResult {
  /** 0: recorded offline, then synced; otherwise connected throughout, a movement every liveGapMs per side. */
  liveGapMs?: number
  prior: number
  perSide: number
  movements: number
  /** How the offline movements were written: one change per movement, or batches. */
  batch: number
  messages: number
  dataBytes: number
  framedBytes: number
  byType: Record<string, number>
  /** Sync payload bytes of the ledger document and of the journals. */
  byDoc: { ledger: number; journals: number }
  /** Encoded size of the last one-movement journal change, and of its message. */
  oneMovement: { journal: { bytes: number; message: number } }
  json: number
  gzip: number
  syncMs: number
  syncCpuMs: number
  offlineCpuMsPerMovement: number
  converged: boolean
  onHandEqual: boolean
  mismatches: number
}

const skus = new Set(Array.from({ length: CATALOG_SIZE }, (_, i) => skuOf(i)))

class Side {
  readonly repo: Repo
  readonly count = new WireCount()
  adapter: MessagePortNetworkAdapter | undefined
  store!: RepoLedgerStore
  book!: LedgerBook
  readonly clock = new BenchClock()
  readonly found = new Map<string, Promise<DocHandle<JournalDoc>>>()
  constructor(readonly node: string) {
    this.repo = new Repo({ network: [], peerId: `site:${SITE}:${node}` as PeerId, sharePolicy: async () => true })
  }
  open(ledger: DocHandle<LedgerDoc>): void {
    this.store = new RepoLedgerStore(this.repo, ledger, new DurableGate())
    this.book = new LedgerBook(this.store, { node: this.node, site: SITE, knownSku: (s) => skus.has(s), now: this.clock.now })
  }
  get ledger(): DocHandle<LedgerDoc> {
    return this.store.ledger.handle
  }
  /** Asks the repo for every journal the ledger names and hands it to the book, as a site node does on each ledger change. */
  findJournals(): void {
    for (const { url } of journalEntries(this.ledger.doc())) {
      if (!this.found.has(url) && !this.store.journal(url)) {
        const p = this.repo.find<JournalDoc>(url as AutomergeUrl)
        p.then((handle) => this.book.indexJournal(this.store.addJournal(handle))).catch(() => this.found.delete(url))
        this.found.set(url, p)
      }
    }
  }
  handleOf(url: string): DocHandle<JournalDoc> | undefined {
    const h = this.repo.handles[url.slice('automerge:'.length) as never] as DocHandle<JournalDoc> | undefined
    return h?.isReady() ? h : undefined
  }
  journals(): JournalDoc[] {
    return journalEntries(this.ledger.doc()).map(({ url }) => this.handleOf(url)?.doc()).filter((d): d is JournalDoc => d !== undefined)
  }
}

async function connect(a: Side, b: Side): Promise<void> {
  const { port1, port2 } = new MessageChannel()
  a.adapter = new MessagePortNetworkAdapter(port1, { count: a.count })
  b.adapter = new MessagePortNetworkAdapter(port2, { count: b.count })
  a.repo.networkSubsystem.addNetworkAdapter(a.adapter)
  b.repo.networkSubsystem.addNetworkAdapter(b.adapter)
  while (a.repo.peers.length === 0 || b.repo.peers.length === 0) await new Promise((r) => setTimeout(r, 5))
}

function disconnect(a: Side, b: Side): void {
  for (const s of [a, b]) {
    if (s.adapter) s.repo.networkSubsystem.removeNetworkAdapter(s.adapter)
    s.adapter?.close() // disconnect() keeps the port open for a reconnect; this channel is done with
    s.adapter = undefined
  }
}

const heads = (h: DocHandle<unknown> | undefined) => (h ? [...h.heads()].sort().join(',') : 'missing')

/** Same ledger heads, every journal present on both sides with the same heads, and 300 ms of quiet. */
function inSync(a: Side, b: Side): boolean {
  if (heads(a.ledger) !== heads(b.ledger)) return false
  for (const { url } of journalEntries(a.ledger.doc())) if (heads(a.handleOf(url)) !== heads(b.handleOf(url))) return false
  const quiet = Math.min(performance.now() - (a.adapter?.lastActivity ?? 0), performance.now() - (b.adapter?.lastActivity ?? 0))
  return quiet > 300
}

async function settle(a: Side, b: Side, timeoutMs = 300_000): Promise<boolean> {
  const t0 = performance.now()
  while (performance.now() - t0 < timeoutMs) {
    a.findJournals()
    b.findJournals()
    if (inSync(a, b)) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return false
}

async function offline(side: Side, inputs: Input[], batch: number): Promise<void> {
  for (let i = 0; i < inputs.length; i += batch) {
    await side.book.record(inputs.slice(i, i + batch))
    side.clock.count += Math.min(batch, inputs.length - i)
  }
}

const generateDocId = () => parseAutomergeUrl(generateAutomergeUrl()).documentId

/**
 * `n` movements of node-a as a site that recorded them one by one would hold them: planned by the
 * real LedgerBook (in memory, batches of 500), then rebuilt one change per movement (bench/replay.ts).
 * Batched history would not do here: with few changes in the ledger, the sync protocol sends the
 * whole document instead of the new changes.
 */
async function singleChangeHistory(n: number): Promise<{ ledger: Uint8Array; journals: Array<{ docId: string; bytes: Uint8Array }>; handles: Array<DocHandle<JournalDoc>> }> {
  const clock = new BenchClock()
  const { book, store } = memBook(clock)
  await extendHistory(book, new Movements(7, 'h'), clock, n)
  const journals = journalEntries(store.ledger.doc()).map(({ url }) => journalContents(generateAutomergeUrl(), store.journal(url)!.doc()))
  const contents: SiteContents = { site: SITE, node: 'node-a', journals }
  return {
    ledger: ledgerBytes(contents),
    journals: journals.map((j) => ({ docId: j.url.slice('automerge:'.length), bytes: journalBytes(contents, j) })),
    handles: [],
  }
}

/** One scenario: `prior` movements of shared history (recorded by node-a, synced), then `perSide` movements on each side offline. */
export async function wireScenario(prior: number, perSide: number, liveGapMs = 0): Promise<WireResult> {
  const batch = 1
  const a = new Side('node-a')
  const b = new Side('node-b')
  if (prior > 0) {
    log(`  shared history: ${prior} movements on node-a, one change per movement`)
    const history = await singleChangeHistory(prior)
    for (const { docId, bytes } of history.journals) history.handles.push(a.repo.import<JournalDoc>(bytes, { docId: docId as never }))
    a.open(a.repo.import<LedgerDoc>(history.ledger, { docId: generateDocId() as never }))
    for (const h of history.handles) a.store.addJournal(h)
    a.clock.count = prior
  } else {
    const ledger = a.repo.create<LedgerDoc>()
    ledger.change((d) => createLedger(d, SITE))
    a.open(ledger)
  }
  const ledger = a.ledger
  await connect(a, b)
  b.open(await b.repo.find<LedgerDoc>(ledger.url))
  if (!(await settle(a, b))) throw new Error('initial sync did not settle')
  if (!liveGapMs) disconnect(a, b)
  b.clock.count = a.clock.count
  const genA = new Movements(11, 'a')
  const genB = new Movements(12, 'b')
  const inputsA = Array.from({ length: perSide }, (_, i) => genA.next(a.clock.now() + i * 60_000))
  const inputsB = Array.from({ length: perSide }, (_, i) => genB.next(b.clock.now() + i * 60_000 + 30_000))
  let offlineCpuMsPerMovement = NaN
  if (liveGapMs) {
    // Connected: each side records a movement every `liveGapMs`, and automerge-repo syncs as it goes.
    log(`  live: ${perSide} movements on each side, one every ${liveGapMs} ms, while connected`)
    a.count.reset()
    b.count.reset()
  } else {
    log(`  offline: ${perSide} movements on each side, ${batch === 1 ? 'one change each' : `${batch} per change`}`)
    const c0 = process.cpuUsage()
    await offline(a, inputsA, batch)
    await offline(b, inputsB, batch)
    offlineCpuMsPerMovement = cpuMs(c0) / (2 * perSide)
  }
  const liveStart = { wall: performance.now(), cpu: process.cpuUsage() }
  if (liveGapMs) {
    for (let i = 0; i < perSide; i++) {
      await offline(a, [inputsA[i]!], 1)
      await new Promise((r) => setTimeout(r, liveGapMs / 2))
      await offline(b, [inputsB[i]!], 1)
      await new Promise((r) => setTimeout(r, liveGapMs / 2))
    }
  }
  const lastChange = (doc: unknown) => {
    const change = A.getLastLocalChange(doc as A.Doc<unknown>)!
    return { bytes: change.byteLength, message: Buffer.byteLength(A.decodeChange(change).message ?? '') }
  }
  const ownJournal = journalEntries(a.ledger.doc()).filter((e) => e.node === 'node-a').pop()!
  const oneMovement = { journal: lastChange(a.handleOf(ownJournal.url)!.doc()) }
  if (!liveGapMs) {
    a.count.reset()
    b.count.reset()
    log(`  reconnect and sync`)
  }
  const w0 = liveGapMs ? liveStart.wall : performance.now()
  const c1 = liveGapMs ? liveStart.cpu : process.cpuUsage()
  if (!liveGapMs) await connect(a, b)
  const converged = await settle(a, b)
  const syncMs = performance.now() - w0 - 300 // the quiet period that ends the wait is not sync time
  const syncCpuMs = cpuMs(c1)
  disconnect(a, b)
  a.findJournals()
  b.findJournals()
  await Promise.all([...a.found.values(), ...b.found.values()])
  const onA = a.book.onHand()
  const onB = b.book.onHand()
  const onHandEqual = onA.size > 0 && onA.size === onB.size && [...onA].every(([sku, n]) => onB.get(sku) === n)
  const checks = [checkLedger(a.journals()), checkLedger(b.journals())]
  const all = [...inputsA, ...inputsB]
  const json = Buffer.byteLength(JSON.stringify(all))
  const ledgerId = a.ledger.documentId
  const byDoc = { ledger: 0, journals: 0 }
  for (const s of [a, b]) for (const [doc, n] of s.count.byDoc) byDoc[doc === ledgerId ? 'ledger' : 'journals'] += n
  const byType: Record<string, number> = {}
  for (const s of [a, b]) for (const [t, n] of s.count.byType) byType[t] = (byType[t] ?? 0) + n
  await Promise.all([a.repo.shutdown(), b.repo.shutdown()])
  return {
    liveGapMs,
    prior,
    perSide,
    movements: 2 * perSide,
    batch,
    messages: a.count.messages + b.count.messages,
    dataBytes: a.count.dataBytes + b.count.dataBytes,
    framedBytes: a.count.framedBytes + b.count.framedBytes,
    byType,
    byDoc,
    oneMovement,
    json,
    gzip: gzipSync(JSON.stringify(all)).byteLength,
    syncMs,
    syncCpuMs,
    offlineCpuMsPerMovement,
    converged,
    onHandEqual,
    mismatches: checks.reduce((n, c) => n + c.length, 0),
  }
}
