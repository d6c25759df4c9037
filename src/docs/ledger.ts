/**
 * Stock ledger operations. Pure: each function either plans (reads documents, validates, returns
 * a value) or writes one document inside `handle.change`. Recording a movement touches two
 * documents, in this order, each in its own change:
 *
 *   1. `writeJournal(journal, posting)`  the movement, in the node's journal for the period
 *   2. `writeCounters(ledger, posting)`  on hand, plus `posted[node]` advanced to the posting
 *
 * If a node stops between the two, `pendingPostings` finds the journal entries beyond
 * `posted[node]` and the node applies them with `writeCounters` on restart. Only the node that
 * wrote a journal ever writes its counters and its `posted` mark, so the repair is exact and no
 * two replicas ever repair the same posting.
 */
import { Counter } from '@automerge/automerge'
import { RuleError, parseInput } from '../schema/errors.ts'
import {
  JOURNAL_BUCKET,
  JOURNAL_SCHEMA,
  LEDGER_SCHEMA,
  MovementInput,
  MovementKind,
  movementKindName,
  type JournalDoc,
  type LedgerDoc,
  type MovementKindName,
  type StoredMovement,
} from '../schema/ledger.ts'
import { assertWritable } from '../schema/migrations.ts'
import { imm, str } from '../schema/strings.ts'
import { periodOf } from './period.ts'

/** A movement ready to post: plain values, the node's sequence number and journal period. */
export interface Posting {
  node: string
  seq: number
  period: string
  id: string
  kind: MovementKindName
  sku: string
  /** Signed change to on hand. */
  delta: number
  /** Counted quantity (counts only). */
  counted?: number
  at: number
  by: string
  device?: string
  reason?: string
  reference?: string
  /** Counts: the posting key of the latest count of the SKU seen when counting ('' if none). */
  prev?: string
}

/** Who records, where, and what the ledger needs to know to validate a movement. */
export interface PlanContext {
  /** The node posting (owner of the journal). */
  node: string
  /** Node clock, unix ms. */
  now: number
  /** The site's ledger as it stands. */
  ledger: LedgerDoc
  /** Whether the catalog knows the SKU. */
  knownSku: (sku: string) => boolean
  /** Highest sequence number this node has used so far (journal or counters). */
  lastSeq: number
  /** Movements planned earlier in the same batch, not yet in the ledger: their deltas and counts by SKU. */
  batch?: { deltas: Map<string, number>; counts: Map<string, string> }
}

/** `${node}:${seq}` names a posting uniquely across all replicas. */
export function postingKey(node: string, seq: number): string {
  return `${node}:${seq}`
}

/** Key of a (SKU, node) counter in `LedgerDoc.q`. Ids never contain '@'. */
export function counterKey(sku: string, node: string): string {
  return `${sku}@${node}`
}

/** Initialises an empty ledger for a site. */
export function createLedger(doc: LedgerDoc, site: string): void {
  doc.schema = LEDGER_SCHEMA
  doc.kind = 'ledger'
  doc.site = imm(site)
  doc.q = {}
  doc.posted = {}
  doc.journals = {}
  doc.lastCount = {}
  doc.decisions = {}
}

/** Initialises an empty journal of one node for one period. */
export function createJournal(doc: JournalDoc, site: string, node: string, period: string): void {
  doc.schema = JOURNAL_SCHEMA
  doc.kind = 'journal'
  doc.site = imm(site)
  doc.node = imm(node)
  doc.period = imm(period)
  doc.m = {}
}

/** Quantity on hand of every SKU with any movement: the sum of its per-node counters. */
export function onHand(ledger: LedgerDoc): Map<string, number> {
  const totals = new Map<string, number>()
  for (const [key, counter] of Object.entries(ledger.q ?? {})) {
    const sku = key.slice(0, key.lastIndexOf('@'))
    totals.set(sku, (totals.get(sku) ?? 0) + Number(counter))
  }
  return totals
}

/** Quantity on hand of one SKU (0 if it never moved). */
export function onHandOf(ledger: LedgerDoc, sku: string): number {
  let total = 0
  const suffixless = `${sku}@`
  for (const [key, counter] of Object.entries(ledger.q ?? {})) {
    if (key.startsWith(suffixless) && key.lastIndexOf('@') === sku.length) total += Number(counter)
  }
  return total
}

/**
 * The journal period a node posts into now: the week of its clock, but never earlier than the
 * period of its last posting, so that a clock set back cannot hide a posting from the repair scan.
 */
export function postingPeriod(ledger: LedgerDoc, node: string, now: number): string {
  const current = periodOf(now)
  const last = ledger.posted?.[node] ? str(ledger.posted[node].period) : ''
  return last > current ? last : current
}

/**
 * Validates a movement from outside (HTTP, IPC, a scanner) against the input schema, the catalog
 * and the ledger, and returns the posting to write. Throws InputError / RuleError; reads only.
 */
export function planMovement(input: unknown, ctx: PlanContext): Posting {
  assertWritable('ledger', ctx.ledger)
  const mv = parseInput(MovementInput, input)
  if (!ctx.knownSku(mv.sku)) throw new RuleError('unknown-sku', `sku: ${mv.sku} is not in the catalog`, 'sku')
  let delta: number
  let counted: number | undefined
  let prev: string | undefined
  let reference = mv.reference
  switch (mv.kind) {
    case 'receipt':
      delta = mv.quantity
      break
    case 'issue':
      delta = -mv.quantity
      break
    case 'adjustment':
      delta = mv.delta
      break
    case 'count':
      counted = mv.counted
      delta = mv.counted - onHandOf(ctx.ledger, mv.sku) - (ctx.batch?.deltas.get(mv.sku) ?? 0)
      prev = ctx.batch?.counts.get(mv.sku) ?? (ctx.ledger.lastCount?.[mv.sku] ? str(ctx.ledger.lastCount[mv.sku]) : '')
      break
    case 'transferOut':
      delta = -mv.quantity
      reference ??= `to:${mv.to}`
      break
    case 'transferIn':
      delta = mv.quantity
      reference ??= `from:${mv.from}`
      break
  }
  const posting: Posting = {
    node: ctx.node,
    seq: ctx.lastSeq + 1,
    period: postingPeriod(ctx.ledger, ctx.node, ctx.now),
    id: mv.id,
    kind: mv.kind,
    sku: mv.sku,
    delta,
    at: mv.at ?? ctx.now,
    by: mv.user,
  }
  if (counted !== undefined) posting.counted = counted
  if (prev !== undefined) posting.prev = prev
  if (mv.device !== undefined) posting.device = mv.device
  if (mv.reason !== undefined) posting.reason = mv.reason
  if (reference !== undefined) posting.reference = reference
  return posting
}

function toStored(p: Posting): StoredMovement {
  const m: StoredMovement = { id: imm(p.id), k: MovementKind[p.kind], sku: imm(p.sku), q: p.delta, t: p.at, by: imm(p.by) }
  if (p.counted !== undefined) m.n = p.counted
  if (p.device !== undefined) m.dev = imm(p.device)
  if (p.reason !== undefined) m.why = imm(p.reason)
  if (p.reference !== undefined) m.ref = imm(p.reference)
  if (p.prev !== undefined) m.prev = imm(p.prev)
  return m
}

/** Reads a stored movement back as a posting of `journal`'s node. */
export function fromStored(journal: JournalDoc, seq: number, m: StoredMovement): Posting {
  const p: Posting = {
    node: str(journal.node),
    seq,
    period: str(journal.period),
    id: str(m.id),
    kind: movementKindName[m.k],
    sku: str(m.sku),
    delta: m.q,
    at: m.t,
    by: str(m.by),
  }
  if (m.n !== undefined) p.counted = m.n
  if (m.dev !== undefined) p.device = str(m.dev)
  if (m.why !== undefined) p.reason = str(m.why)
  if (m.ref !== undefined) p.reference = str(m.ref)
  if (m.prev !== undefined) p.prev = str(m.prev)
  return p
}

/** Step 1 of a posting: appends the movement to its journal. Writing the same posting again is a no-op. */
export function writeJournal(journal: JournalDoc, p: Posting): void {
  if (str(journal.node) !== p.node || str(journal.period) !== p.period) {
    throw new Error(`internal: posting ${postingKey(p.node, p.seq)} for ${p.period} written to journal ${str(journal.node)}/${str(journal.period)}`)
  }
  const bucket = bucketOf(p.seq)
  if (journal.m[bucket] === undefined) journal.m[bucket] = {}
  const entries = journal.m[bucket]!
  if (entries[p.seq] === undefined) entries[p.seq] = toStored(p)
}

/** The journal bucket of a posting sequence number. */
export function bucketOf(seq: number): string {
  return String(Math.floor(seq / JOURNAL_BUCKET))
}

/** One posting of a journal, if present. */
export function journalPosting(journal: JournalDoc, seq: number): Posting | undefined {
  const m = journal.m?.[bucketOf(seq)]?.[seq]
  return m === undefined ? undefined : fromStored(journal, seq, m)
}

/**
 * Step 2 of a posting: adds the delta to the node's counter of the SKU and advances
 * `posted[node]`. Postings at or below the mark are skipped, so a repair can never apply one twice.
 */
export function writeCounters(ledger: LedgerDoc, p: Posting): void {
  assertWritable('ledger', ledger)
  const mark = ledger.posted[p.node]
  if (mark && mark.seq >= p.seq) return
  const key = counterKey(p.sku, p.node)
  // Only this node ever creates this key, so the counter is never created twice concurrently.
  if (ledger.q[key] === undefined) ledger.q[key] = new Counter(0)
  if (p.delta !== 0) ledger.q[key]!.increment(p.delta)
  if (p.kind === 'count') ledger.lastCount[p.sku] = imm(postingKey(p.node, p.seq))
  if (mark) {
    mark.seq = p.seq
    if (str(mark.period) !== p.period) mark.period = imm(p.period)
  } else {
    ledger.posted[p.node] = { seq: p.seq, period: imm(p.period) }
  }
}

/** Registers a journal document's URL in the ledger (`${period}/${node}`). */
export function registerJournal(ledger: LedgerDoc, node: string, period: string, url: string): void {
  const key = `${period}/${node}`
  if (ledger.journals[key] === undefined) ledger.journals[key] = imm(url)
}

/** Journal URLs of one node from `period` on (or all nodes when node is undefined), oldest first. */
export function journalUrls(ledger: LedgerDoc, filter: { node?: string; fromPeriod?: string } = {}): Array<{ period: string; node: string; url: string }> {
  const out: Array<{ period: string; node: string; url: string }> = []
  for (const [key, url] of Object.entries(ledger.journals ?? {})) {
    const slash = key.indexOf('/')
    const period = key.slice(0, slash)
    const node = key.slice(slash + 1)
    if (filter.node !== undefined && node !== filter.node) continue
    if (filter.fromPeriod !== undefined && period < filter.fromPeriod) continue
    out.push({ period, node, url: str(url) })
  }
  return out.sort((a, b) => (a.period === b.period ? (a.node < b.node ? -1 : 1) : a.period < b.period ? -1 : 1))
}

/** Every movement of a journal, in sequence order. */
export function journalPostings(journal: JournalDoc): Posting[] {
  const out: Posting[] = []
  for (const entries of Object.values(journal.m ?? {})) {
    for (const [seq, m] of Object.entries(entries)) out.push(fromStored(journal, Number(seq), m))
  }
  return out.sort((a, b) => a.seq - b.seq)
}

/**
 * Postings of `node` in its journals that the counters have not applied yet (a crash between
 * the two steps), oldest first. Pass the node's journals from `posted[node].period` on.
 */
export function pendingPostings(ledger: LedgerDoc, node: string, journals: Iterable<JournalDoc>): Posting[] {
  const mark = ledger.posted?.[node]?.seq ?? 0
  const pending: Posting[] = []
  for (const journal of journals) {
    if (str(journal.node) !== node) continue
    for (const p of journalPostings(journal)) if (p.seq > mark) pending.push(p)
  }
  return pending.sort((a, b) => a.seq - b.seq)
}

/** Highest sequence number a node has used, from its posted mark and the journals given. */
export function lastSeqOf(ledger: LedgerDoc, node: string, journals: Iterable<JournalDoc>): number {
  let last = ledger.posted?.[node]?.seq ?? 0
  for (const journal of journals) {
    if (str(journal.node) !== node) continue
    const buckets = Object.keys(journal.m ?? {}).map(Number)
    if (buckets.length === 0) continue
    const top = journal.m[String(Math.max(...buckets))] ?? {}
    for (const key of Object.keys(top)) last = Math.max(last, Number(key))
  }
  return last
}

export interface LedgerCheck {
  /** SKUs whose on hand differs from the sum of the movements the counters claim to include. */
  mismatches: Array<{ sku: string; node: string; counter: number; movements: number }>
  /** Journal postings not yet applied to the counters (normal while a sync is half done). */
  pending: Posting[]
}

/**
 * Checks on hand = Σ movements, node by node: each node's counters must equal the sum of its
 * journal movements up to its `posted` mark. Needs every journal of the ledger.
 */
export function checkLedger(ledger: LedgerDoc, journals: Iterable<JournalDoc>): LedgerCheck {
  const sums = new Map<string, number>()
  const pending: Posting[] = []
  const seen = new Set<string>()
  for (const journal of journals) {
    const node = str(journal.node)
    const mark = ledger.posted?.[node]?.seq ?? 0
    for (const p of journalPostings(journal)) {
      if (p.seq > mark) {
        pending.push(p)
        continue
      }
      seen.add(node)
      const key = counterKey(p.sku, node)
      sums.set(key, (sums.get(key) ?? 0) + p.delta)
    }
  }
  const mismatches: LedgerCheck['mismatches'] = []
  const keys = new Set([...Object.keys(ledger.q ?? {}), ...sums.keys()])
  for (const key of [...keys].sort()) {
    const at = key.lastIndexOf('@')
    const counter = ledger.q?.[key] === undefined ? 0 : Number(ledger.q[key])
    const movements = sums.get(key) ?? 0
    if (counter !== movements) mismatches.push({ sku: key.slice(0, at), node: key.slice(at + 1), counter, movements })
  }
  return { mismatches, pending: pending.sort((a, b) => (a.node === b.node ? a.seq - b.seq : a.node < b.node ? -1 : 1)) }
}
