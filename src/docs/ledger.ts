/**
 * Stock ledger operations. Pure: each function either plans (reads documents, validates, returns
 * a value) or writes one document inside `handle.change`.
 *
 * A movement is posted by `writeJournal`: the movement and its delta to the SKU's total are one
 * change of the node's current journal, so they can never be apart. When a journal is full (or the
 * week changed), the node opens the next with `createJournal`, carrying its opening balance.
 * On hand of a SKU = Σ over nodes of (open + tot) of the node's latest journal
 *                  = Σ of every movement of every journal (`checkLedger` verifies both).
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
import { checkClientTime } from '../schema/clientTime.ts'
import { assertWritable } from '../schema/migrations.ts'
import { hasOwnKey, own } from '../schema/ownProperty.ts'
import { imm, isImmutable, str, type Str } from '../schema/strings.ts'
import { decodeLots, encodeLots, packMovement, unpackMovement } from './movementCodec.ts'
import { checkReason } from './catalogRules.ts'

/** A movement ready to post: plain values, with the node's sequence number. */
export interface Posting {
  node: string
  seq: number
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
  /** Counts: the posting key of the latest count of the SKU known when counting ('' if none). */
  prev?: string
  /**
   * Lot-tracked products: the lots the movement moved, with the part of `delta` of each (their
   * sum). One lot, except an issue served first-expiry-first-out over several.
   */
  lots?: LotPart[]
  /** The expiry of the movement's lot (YYYY-MM-DD), where the movement says it (receipts of a lot). */
  expiry?: string
}

/** The part of a movement in one lot. */
export interface LotPart {
  lot: string
  delta: number
}

/** What planning a movement needs to know besides the input. */
export interface PlanContext {
  /** The node posting (owner of the journal). */
  node: string
  /** Node clock, unix ms. */
  now: number
  /** Whether the catalog knows the SKU. */
  knownSku: (sku: string) => boolean
  /**
   * The reason codes the catalog lists; a movement naming another (and not a built-in one,
   * `BUILT_IN_REASONS`) is refused. Omitted: any well-formed reason code is accepted.
   */
  knownReasons?: ReadonlySet<string>
  /** Highest sequence number this node has used so far. */
  lastSeq: number
  /** On hand of a SKU as the node sees it now, including movements planned earlier in the batch. */
  onHand: (sku: string) => number
  /** Posting key of the latest stock count of a SKU the node knows ('' if none); of a lot, by its `sku|lot` key. */
  lastCount: (sku: string) => string
  /** Whether the catalog tracks the SKU by lot (default: no SKU is). */
  lotTracked?: (sku: string) => boolean
  /** The lots of a SKU the node knows, earliest expiry first, with on hand including the batch so far. */
  lotsOf?: (sku: string) => Array<{ lot: string; expiry: string | undefined; onHand: number }>
  /** The movement recorded under an id already, if any (a re-sent issue keeps the lots it was served from). */
  recorded?: (id: string) => Posting | undefined
  /** Record an expiry that differs from the one known for the lot (raising a review item) instead of refusing it. */
  acceptExpiryMismatch?: boolean
}

/** Today's date (YYYY-MM-DD, UTC) at `now`. */
export function dateOf(now: number): string {
  return new Date(now).toISOString().slice(0, 10)
}

/** `${node}:${seq}` names a posting uniquely across all replicas. */
export function postingKey(node: string, seq: number): string {
  return `${node}:${seq}`
}

/** Key of a node's n-th journal in `LedgerDoc.journals`; sorts in journal order. */
export function journalKey(node: string, n: number): string {
  return `${node}/${String(n).padStart(6, '0')}`
}

/** Initialises an empty ledger for a site. */
export function createLedger(doc: LedgerDoc, site: string): void {
  doc.schema = LEDGER_SCHEMA
  doc.kind = imm('ledger')
  doc.site = imm(site)
  doc.journals = {}
  doc.decisions = {}
}

/** Initialises a node's n-th journal, opening with the node's totals of all earlier journals. */
export function createJournal(doc: JournalDoc, init: { site: string; node: string; n: number; week: string; s0: number; open: Map<string, number>; openLots?: Map<string, number>; t0: number }): void {
  doc.schema = JOURNAL_SCHEMA
  doc.kind = imm('journal')
  doc.site = imm(init.site)
  doc.node = imm(init.node)
  doc.n = init.n
  doc.week = imm(init.week)
  doc.s0 = init.s0
  doc.open = {}
  for (const [sku, quantity] of init.open) if (quantity !== 0) doc.open[sku] = quantity
  doc.tt = {}
  doc.lt = {}
  doc.ol = {}
  for (const [key, quantity] of init.openLots ?? []) if (quantity !== 0) doc.ol[key] = quantity
  doc.m = {}
  doc.t0 = init.t0
  doc.d = {}
}

/** Registers a journal document's URL in the ledger. */
export function registerJournal(ledger: LedgerDoc, node: string, n: number, url: string): void {
  assertWritable('ledger', ledger)
  const key = journalKey(node, n)
  if (!hasOwnKey(ledger.journals, key)) ledger.journals[key] = imm(url)
}

export interface JournalEntry {
  node: string
  n: number
  url: string
}

/** Every journal the ledger names, in (node, number) order. */
export function journalEntries(ledger: LedgerDoc): JournalEntry[] {
  return Object.entries(ledger.journals ?? {})
    .map(([key, url]) => {
      const slash = key.lastIndexOf('/')
      return { node: key.slice(0, slash), n: Number(key.slice(slash + 1)), url: str(url) }
    })
    .sort((a, b) => (a.node === b.node ? a.n - b.n : a.node < b.node ? -1 : 1))
}

/** The latest journal of every node the ledger names. */
export function latestJournals(ledger: LedgerDoc): JournalEntry[] {
  const latest = new Map<string, JournalEntry>()
  for (const entry of journalEntries(ledger)) latest.set(entry.node, entry)
  return [...latest.values()]
}

/** The shard of a SKU's total in a schema-3 journal: FNV-1a of the SKU, mod 64, in base 36 (fixed for ever). */
export function totShard(sku: string): string {
  let hash = 0x811c9dc5
  for (let i = 0; i < sku.length; i++) hash = Math.imul(hash ^ sku.charCodeAt(i), 0x01000193)
  return ((hash >>> 0) % 64).toString(36)
}

/** A journal's totals per SKU as stored (flat in schemas 1–2, sharded from schema 3). */
export function* journalTotals(journal: JournalDoc): Generator<[string, number]> {
  for (const [sku, counter] of Object.entries(journal.tot ?? {})) yield [sku, Number(counter)]
  for (const shard of Object.values(journal.tt ?? {})) for (const [sku, counter] of Object.entries(shard)) yield [sku, Number(counter)]
}

/** The stored total of one SKU in a journal (0 when it has none). */
export function journalTotal(journal: JournalDoc, sku: string): number {
  const flat = own(journal.tot, sku)
  if (flat !== undefined) return Number(flat)
  const counter = own(own(journal.tt, totShard(sku)), sku)
  return counter === undefined ? 0 : Number(counter)
}

/** The key of a lot of a SKU in a journal's lot maps (`|` is in no id). */
export function lotKey(sku: string, lot: string): string {
  return `${sku}|${lot}`
}

/** The SKU and lot of a lot key. */
export function splitLotKey(key: string): { sku: string; lot: string } {
  const bar = key.indexOf('|')
  return { sku: key.slice(0, bar), lot: key.slice(bar + 1) }
}

/** A journal's stored totals per lot (`sku|lot`; schema 4). */
export function* journalLotTotals(journal: JournalDoc): Generator<[string, number]> {
  for (const shard of Object.values(journal.lt ?? {})) for (const [key, counter] of Object.entries(shard)) yield [key, Number(counter)]
}

/** A journal's totals per lot (`sku|lot`): its opening per lot plus its own lot movements. */
export function journalLotBalance(journal: JournalDoc): Map<string, number> {
  const balance = new Map<string, number>()
  for (const [key, quantity] of Object.entries(journal.ol ?? {})) balance.set(key, quantity)
  for (const [key, quantity] of journalLotTotals(journal)) balance.set(key, (balance.get(key) ?? 0) + quantity)
  return balance
}

/** A journal's totals per SKU: its opening balance plus its own movements. */
export function journalBalance(journal: JournalDoc): Map<string, number> {
  const balance = new Map<string, number>()
  for (const [sku, quantity] of Object.entries(journal.open ?? {})) balance.set(sku, quantity)
  for (const [sku, quantity] of journalTotals(journal)) balance.set(sku, (balance.get(sku) ?? 0) + quantity)
  return balance
}

/**
 * On hand per SKU from the latest journal of each node: pass, per node, the latest journal loaded
 * (a node whose newest journal has not arrived yet counts with the one before: a consistent, older
 * view of that node).
 */
export function onHand(latestPerNode: Iterable<JournalDoc>): Map<string, number> {
  return sumOfBalances(latestPerNode, journalBalance)
}

/** On hand per lot (`sku|lot`) from the latest journal of each node, as `onHand` per SKU. */
export function lotsOnHand(latestPerNode: Iterable<JournalDoc>): Map<string, number> {
  return sumOfBalances(latestPerNode, journalLotBalance)
}

function sumOfBalances(journals: Iterable<JournalDoc>, balanceOf: (journal: JournalDoc) => Map<string, number>): Map<string, number> {
  const totals = new Map<string, number>()
  for (const journal of journals) for (const [key, quantity] of balanceOf(journal)) totals.set(key, (totals.get(key) ?? 0) + quantity)
  return totals
}

/** The expiry dates movements stated per lot (`sku|lot`), each list distinct and sorted (the first is the one served by). */
export function statedExpiries(postings: Iterable<Posting>): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const p of postings) {
    if (p.expiry === undefined || p.lots?.length !== 1) continue
    const key = lotKey(p.sku, p.lots[0]!.lot)
    const dates = out.get(key) ?? []
    if (!dates.includes(p.expiry)) out.set(key, [...dates, p.expiry].sort())
  }
  return out
}

/**
 * Validates a movement from outside (HTTP, IPC, a scanner) against the input schema, the node's
 * clock (a client's `at` within 400 days before and 24 hours after `ctx.now`,
 * src/schema/clientTime.ts) and the catalog (SKU, reason), and returns the posting to write.
 * Throws InputError / RuleError; reads only.
 */
export function planMovement(input: unknown, ctx: PlanContext): Posting {
  const mv = parseInput(MovementInput, input)
  if (mv.at !== undefined) checkClientTime('at', mv.at, ctx.now)
  if (!ctx.knownSku(mv.sku)) throw new RuleError('unknown-sku', `sku: ${mv.sku} is not in the catalog`, 'sku')
  if (mv.reason !== undefined && ctx.knownReasons) checkReason(mv.reason, ctx.knownReasons)
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
      delta = mv.counted - ctx.onHand(mv.sku)
      prev = ctx.lastCount(mv.sku)
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
  const tracked = ctx.lotTracked?.(mv.sku) ?? false
  if (!tracked && (mv.lot !== undefined || mv.expiry !== undefined)) {
    throw new RuleError('not-lot-tracked', `${mv.lot !== undefined ? 'lot' : 'expiry'}: ${mv.sku} is not tracked by lot in the catalog; leave out lot and expiry`, mv.lot !== undefined ? 'lot' : 'expiry')
  }
  let lots: LotPart[] | undefined
  // A re-sent movement (its id recorded already, same kind and SKU) is the same movement: the book
  // answers it as a duplicate, or refuses it if it differs. The lot rules judged it when it was
  // recorded; judged again now (the lot expired since, its expiry was corrected, its stock is
  // gone) a scanner that never got its answer would be refused, and might enter it again.
  const earlier = tracked ? ctx.recorded?.(mv.id) : undefined
  if (earlier && earlier.sku === mv.sku && earlier.kind === mv.kind) {
    lots = mv.lot === undefined ? earlier.lots : [{ lot: mv.lot, delta }]
  } else if (tracked) {
    const known = ctx.lotsOf?.(mv.sku) ?? []
    const lot = mv.lot === undefined ? undefined : known.find((l) => l.lot === mv.lot)
    // Expiry is judged on the day the movement happened (a batch recorded offline arrives late).
    const day = dateOf(mv.at ?? ctx.now)
    if (!ctx.acceptExpiryMismatch && mv.lot !== undefined && mv.expiry !== undefined && lot?.expiry !== undefined && lot.expiry !== mv.expiry) {
      throw new RuleError('expiry-mismatch', `expiry: lot ${mv.lot} of ${mv.sku} expires ${lot.expiry} here, not ${mv.expiry}; check the label`, 'expiry')
    }
    if (mv.kind === 'count') {
      // A lot is counted on its own: the count sets that lot (and so the SKU) to what was counted.
      if (mv.lot === undefined) throw new RuleError('lot-required', `lot: ${mv.sku} is tracked by lot: count each lot on its own`, 'lot')
      if (!lot && mv.expiry === undefined) throw new RuleError('expiry-required', `expiry: lot ${mv.lot} of ${mv.sku} is new here: give its expiry (YYYY-MM-DD)`, 'expiry')
      delta = mv.counted - (lot?.onHand ?? 0)
      prev = ctx.lastCount(lotKey(mv.sku, mv.lot))
    } else if (mv.lot === undefined) {
      if (mv.kind !== 'issue' && mv.kind !== 'transferOut') throw new RuleError('lot-required', `lot: ${mv.sku} is tracked by lot: name the lot${mv.kind === 'receipt' || mv.kind === 'transferIn' ? ' and its expiry' : ''}`, 'lot')
      lots = firstExpiryFirstOut(mv.sku, -delta, known, day)
    } else if (!lot && (mv.kind === 'receipt' || mv.kind === 'transferIn')) {
      if (mv.expiry === undefined) throw new RuleError('expiry-required', `expiry: lot ${mv.lot} of ${mv.sku} is new here: give its expiry (YYYY-MM-DD)`, 'expiry')
    } else if (!lot) {
      throw new RuleError('unknown-lot', `lot: ${mv.sku} has no lot ${mv.lot} here (lots: ${known.map((l) => l.lot).join(', ') || 'none'})`, 'lot')
    } else if (mv.kind === 'issue' && lot.expiry !== undefined && lot.expiry < day) {
      throw new RuleError('lot-expired', `lot: lot ${mv.lot} of ${mv.sku} expired on ${lot.expiry}: write it off (an adjustment with the reason expired) or transfer it out, do not issue it`, 'lot')
    }
    lots ??= [{ lot: mv.lot!, delta }]
  }
  const posting: Posting = { node: ctx.node, seq: ctx.lastSeq + 1, id: mv.id, kind: mv.kind, sku: mv.sku, delta, at: mv.at ?? ctx.now, by: mv.user }
  if (lots) posting.lots = lots
  if (mv.expiry !== undefined) posting.expiry = mv.expiry
  if (counted !== undefined) posting.counted = counted
  if (prev !== undefined) posting.prev = prev
  if (mv.device !== undefined) posting.device = mv.device
  if (mv.reason !== undefined) posting.reason = mv.reason
  if (reference !== undefined) posting.reference = reference
  return posting
}

/**
 * An issue of `quantity` served from the lots on hand, earliest expiry first, expired lots left
 * out (they are written off, not issued). Refused when they do not hold enough: then a person
 * names the lot.
 */
export function firstExpiryFirstOut(sku: string, quantity: number, lots: ReadonlyArray<{ lot: string; expiry: string | undefined; onHand: number }>, today: string): LotPart[] {
  const usable = lots.filter((l) => l.onHand > 0 && (l.expiry === undefined || l.expiry >= today))
  const parts: LotPart[] = []
  let left = quantity
  for (const l of usable) {
    if (left <= 0) break
    const take = Math.min(left, l.onHand)
    parts.push({ lot: l.lot, delta: -take })
    left -= take
  }
  if (left > 0) {
    const available = quantity - left
    const listed = usable.map((l) => `${l.lot}: ${l.onHand}`).join(', ')
    throw new RuleError('insufficient-lot-stock', `quantity: ${sku} has ${available} in lots that have not expired${listed ? ` (${listed})` : ''}, not ${quantity}: name the lot to issue from (the node then records it below zero and raises a review item)`, 'quantity')
  }
  return parts
}

function toStored(p: Posting): StoredMovement {
  const m: StoredMovement = { id: imm(p.id), k: MovementKind[p.kind], sku: imm(p.sku), q: p.delta, t: p.at, by: imm(p.by) }
  if (p.counted !== undefined) m.n = p.counted
  if (p.device !== undefined) m.dev = imm(p.device)
  if (p.reason !== undefined) m.why = imm(p.reason)
  if (p.reference !== undefined) m.ref = imm(p.reference)
  if (p.prev !== undefined) m.prev = imm(p.prev)
  if (p.lots !== undefined && p.lots.length > 0) m.lots = imm(encodeLots(p))
  if (p.expiry !== undefined) m.x = imm(p.expiry)
  return m
}

/** Reads a stored movement back as a posting of `journal`'s node (schema 1: a map per movement). */
export function fromStored(journal: JournalDoc, seq: number, m: StoredMovement): Posting {
  const p: Posting = { node: str(journal.node), seq, id: str(m.id), kind: movementKindName[m.k], sku: str(m.sku), delta: m.q, at: m.t, by: str(m.by) }
  if (m.n !== undefined) p.counted = m.n
  if (m.dev !== undefined) p.device = str(m.dev)
  if (m.why !== undefined) p.reason = str(m.why)
  if (m.ref !== undefined) p.reference = str(m.ref)
  if (m.prev !== undefined) p.prev = str(m.prev)
  if (m.lots !== undefined) p.lots = decodeLots(str(m.lots), p.delta)
  if (m.x !== undefined) p.expiry = str(m.x)
  return p
}

/** The journal bucket of a posting sequence number. */
export function bucketOf(seq: number): string {
  return String(Math.floor(seq / JOURNAL_BUCKET))
}

/** A journal's packed movements are written in schema 2's format (it has `t0`); older journals keep theirs. */
const packs = (journal: JournalDoc) => typeof journal.t0 === 'number'

/**
 * Per journal (`node/n`), what the writer last packed and the dictionary's codes: checked against
 * the document before use (another journal with the same key in this process, or an older view),
 * so they only save work.
 */
const lastPacked = new Map<string, { seq: number; at: number; packed: string }>()
const dictionaries = new Map<string, { codes: Map<string, string>; words: string[] }>()

function dictionaryCode(journal: JournalDoc, key: string, value: string): string {
  const stored = (journal.d ??= {})
  let known = dictionaries.get(key)
  let code = known?.codes.get(value)
  // A hit is checked against the document (one read, not a listing of the dictionary: listing a
  // map inside a change is a call into Automerge, once per string of every movement).
  if (code !== undefined && own(stored, code) !== undefined && str(own(stored, code)!) === value) return code
  // A new word: codes are dense (0, 1, 2, … in base 36), so the words read so far are all there
  // are when the last one is still there and the code after it is free; else read them again.
  const n = known?.words.length ?? 0
  const whole = known !== undefined && code === undefined && (n === 0 || str(own(stored, (n - 1).toString(36)) ?? '') === known.words[n - 1]) && own(stored, n.toString(36)) === undefined
  if (!whole) {
    const words: string[] = []
    for (const [c, word] of Object.entries(stored)) words[parseInt(c, 36)] = str(word)
    known = { codes: new Map(words.map((word, i) => [word, i.toString(36)])), words }
    dictionaries.set(key, known)
    code = known.codes.get(value)
    if (code !== undefined) return code
  }
  code = known!.words.length.toString(36)
  // Never a code in use (a dictionary with gaps, which this code does not write, is read again above).
  if (own(stored, code) !== undefined) throw new Error(`internal: dictionary code ${code} of journal ${key} is taken`)
  stored[code] = imm(value)
  known!.words.push(value)
  known!.codes.set(value, code)
  return code
}

/** The time packed movement `seq` counts from: the previous movement of its bucket, or `t0`. */
function packBase(journal: JournalDoc, entries: Record<string, StoredMovement | Str>, seq: number, key: string): number {
  const prevSeq = seq - 1
  if (bucketOf(prevSeq) !== bucketOf(seq)) return journal.t0!
  const prev = own(entries, String(prevSeq))
  if (prev === undefined) return journal.t0!
  const cached = lastPacked.get(key)
  if (cached && cached.seq === prevSeq && isImmutable(prev) && str(prev) === cached.packed) return cached.at
  return bucketPostings(journal, Math.floor(seq / JOURNAL_BUCKET)).get(prevSeq)?.at ?? journal.t0!
}

/** The postings of one bucket (packed times count along the bucket). */
function bucketPostings(journal: JournalDoc, bucket: number): Map<number, Posting> {
  const out = new Map<number, Posting>()
  const entries = own(journal.m, String(bucket))
  if (!entries) return out
  const node = str(journal.node)
  const word = (code: string) => {
    const w = own(journal.d, code)
    return w === undefined ? undefined : str(w)
  }
  let base = journal.t0 ?? 0
  let prevSeq = Number.NaN
  for (const seq of Object.keys(entries).map(Number).sort((a, b) => a - b)) {
    const m = entries[String(seq)]!
    if (typeof m === 'object' && !isImmutable(m)) {
      out.set(seq, fromStored(journal, seq, m as StoredMovement))
      continue
    }
    if (seq !== prevSeq + 1) base = journal.t0!
    const p = unpackMovement(str(m as Str), seq, { node, base, word })
    out.set(seq, p)
    base = p.at
    prevSeq = seq
  }
  return out
}

/**
 * Posts a movement: stores it and adds its delta to the SKU's total, in the same change.
 * Writing the same posting again is a no-op.
 */
export function writeJournal(journal: JournalDoc, p: Posting): void {
  writeJournalAll(journal, [p])
}

/**
 * Posts movements in one change: each stored, and each SKU's total moved once by the sum of its
 * movements (an increment is an operation Automerge walks past on every later one of that counter:
 * a batch of 500 over a few SKUs made thousands). Postings already written are skipped.
 */
export function writeJournalAll(journal: JournalDoc, postings: readonly Posting[]): void {
  assertWritable('journal', journal)
  const sums = new Map<string, number>()
  const lotSums = new Map<string, number>()
  for (const p of postings) {
    if (!writeMovement(journal, p)) continue
    // Whole quantities add up exactly; anything else is added one by one, as it always was.
    if (Number.isInteger(p.delta)) sums.set(p.sku, (sums.get(p.sku) ?? 0) + p.delta)
    else addTotal(journal, p.sku, p.delta)
    for (const part of p.lots ?? []) {
      const key = lotKey(p.sku, part.lot)
      if (Number.isInteger(part.delta)) lotSums.set(key, (lotSums.get(key) ?? 0) + part.delta)
      else addLotTotal(journal, key, part.delta)
    }
  }
  for (const [sku, delta] of sums) addTotal(journal, sku, delta)
  for (const [key, delta] of lotSums) addLotTotal(journal, key, delta)
}

/** Moves a lot's total (schema 4: the journal's node migrated it before its first lot movement). */
function addLotTotal(journal: JournalDoc, key: string, delta: number): void {
  if (!journal.lt) throw new Error(`internal: a lot movement written to journal ${str(journal.node)}/${journal.n} of schema ${journal.schema}, which has no lot totals`)
  const shard = totShard(splitLotKey(key).sku)
  if (!hasOwnKey(journal.lt, shard)) journal.lt[shard] = {}
  const totals = journal.lt[shard]!
  if (!hasOwnKey(totals, key)) totals[key] = new Counter(0)
  if (delta !== 0) totals[key]!.increment(delta)
}

/** Stores one movement; false when the journal holds it already. */
function writeMovement(journal: JournalDoc, p: Posting): boolean {
  if (str(journal.node) !== p.node) throw new Error(`internal: posting ${postingKey(p.node, p.seq)} written to a journal of ${str(journal.node)}`)
  const bucket = bucketOf(p.seq)
  if (!hasOwnKey(journal.m, bucket)) journal.m[bucket] = {}
  const entries = journal.m[bucket]!
  if (hasOwnKey(entries, String(p.seq))) return false
  if (packs(journal)) {
    const key = `${p.node}/${journal.n}`
    const base = packBase(journal, entries, p.seq, key)
    const packed = packMovement(p, { node: p.node, base, code: (value) => dictionaryCode(journal, key, value) })
    entries[p.seq] = imm(packed)
    lastPacked.set(key, { seq: p.seq, at: p.at, packed })
  } else entries[p.seq] = toStored(p)
  return true
}

/** Moves a SKU's total; the counter is created at the SKU's first movement in the journal, even one of 0. */
function addTotal(journal: JournalDoc, sku: string, delta: number): void {
  // Only this journal's node creates its totals, so a counter is never created twice concurrently.
  // An own-key test: a SKU named `constructor` must get its own counter, not Object's.
  let totals: Record<string, Counter>
  if (journal.tt) {
    const shard = totShard(sku)
    if (!hasOwnKey(journal.tt, shard)) journal.tt[shard] = {}
    totals = journal.tt[shard]!
  } else totals = (journal.tot ??= {})
  if (!hasOwnKey(totals, sku)) totals[sku] = new Counter(0)
  if (delta !== 0) totals[sku]!.increment(delta)
}

/** One posting of a journal, if present. */
export function journalPosting(journal: JournalDoc, seq: number): Posting | undefined {
  const m = own(own(journal.m, bucketOf(seq)), String(seq))
  if (m === undefined) return undefined
  if (typeof m === 'object' && !isImmutable(m)) return fromStored(journal, seq, m as StoredMovement)
  return bucketPostings(journal, Math.floor(seq / JOURNAL_BUCKET)).get(seq)
}

/** Every movement of a journal, in sequence order. */
export function journalPostings(journal: JournalDoc): Posting[] {
  const out: Posting[] = []
  for (const bucket of Object.keys(journal.m ?? {})) out.push(...bucketPostings(journal, Number(bucket)).values())
  return out.sort((a, b) => a.seq - b.seq)
}

/** How many movements a journal holds. */
export function journalSize(journal: JournalDoc): number {
  let count = 0
  for (const entries of Object.values(journal.m ?? {})) count += Object.keys(entries).length
  return count
}

/** Highest sequence number the journal's node has used up to this journal's last posting. */
export function lastSeqOf(journal: JournalDoc): number {
  const buckets = Object.keys(journal.m ?? {}).map(Number)
  if (buckets.length === 0) return journal.s0 ?? 0
  return Math.max(...Object.keys(journal.m[String(Math.max(...buckets))] ?? {}).map(Number), journal.s0 ?? 0)
}

/** Of the journals given, the one with the highest number per node. */
export function latestPerNode(journals: Iterable<JournalDoc>): JournalDoc[] {
  const latest = new Map<string, JournalDoc>()
  for (const journal of journals) {
    const node = str(journal.node)
    const known = latest.get(node)
    if (!known || journal.n > known.n) latest.set(node, journal)
  }
  return [...latest.values()]
}

export interface LedgerMismatch {
  /** `${node}/${n}` of the journal. */
  journal: string
  sku: string
  /** What the journal's totals (or opening balance) say. */
  recorded: number
  /** What its movements (or the previous journal) say. */
  expected: number
  what: 'total' | 'opening'
  /** Set when the mismatch is of one lot of the SKU (journal schema 4). */
  lot?: string
}

/** A journal's facts with the sums of its indexed movements, per SKU and per lot (`sku|lot`). */
export type CheckedJournal = JournalFacts & { sums: ReadonlyMap<string, number>; lotSums?: ReadonlyMap<string, number> }

/** Adds a posting's delta, and each of its lot parts, to running sums. */
export function addToSums(sums: Map<string, number>, lotSums: Map<string, number>, p: Posting): void {
  sums.set(p.sku, (sums.get(p.sku) ?? 0) + p.delta)
  for (const part of p.lots ?? []) {
    const key = lotKey(p.sku, part.lot)
    lotSums.set(key, (lotSums.get(key) ?? 0) + part.delta)
  }
}

/**
 * Checks on hand = Σ movements: each journal's totals equal the sum of its movements, and each
 * journal opens with its predecessor's opening + totals. Journals not given are not checked.
 */
export function checkLedger(journals: Iterable<JournalDoc>): LedgerMismatch[] {
  return checkJournalFacts([...journals].map((journal) => {
    const sums = new Map<string, number>()
    const lotSums = new Map<string, number>()
    for (const p of journalPostings(journal)) addToSums(sums, lotSums, p)
    return { ...journalFacts(journal), sums, lotSums }
  }))
}

/** What the ledger check needs of a journal besides its movements: who, which, and its stored balances. */
export interface JournalFacts {
  node: string
  n: number
  /** Opening balance as stored (SKUs carried at 0 are absent). */
  open: Record<string, number>
  /** Totals as stored, per SKU. */
  tot: Record<string, number>
  /** Schema 4: opening per lot (`sku|lot`) and totals per lot, as stored. */
  lotOpen?: Record<string, number>
  lotTot?: Record<string, number>
}

/** A journal's facts as plain values (copies: they outlive the document). */
export function journalFacts(journal: JournalDoc): JournalFacts {
  const tot: Record<string, number> = {}
  for (const [sku, quantity] of journalTotals(journal)) tot[sku] = quantity
  const facts: JournalFacts = { node: str(journal.node), n: journal.n, open: { ...(journal.open ?? {}) }, tot }
  if (journal.lt || journal.ol) {
    facts.lotOpen = { ...(journal.ol ?? {}) }
    facts.lotTot = Object.fromEntries(journalLotTotals(journal))
  }
  return facts
}

/**
 * The ledger check over journal facts and the sums of their movements per SKU (`sums`, which a
 * site node maintains as it indexes postings): each journal's totals against its movements, each
 * opening balance against its predecessor's closing one.
 */
export function checkJournalFacts(journals: Iterable<CheckedJournal>): LedgerMismatch[] {
  const mismatches: LedgerMismatch[] = []
  const byKey = new Map<string, CheckedJournal>()
  for (const journal of journals) byKey.set(journalKey(journal.node, journal.n), journal)
  const closing = (j: JournalFacts) => {
    const balance = new Map<string, number>(Object.entries(j.open))
    for (const [sku, quantity] of Object.entries(j.tot)) balance.set(sku, (balance.get(sku) ?? 0) + quantity)
    return balance
  }
  for (const [key, journal] of [...byKey].sort(([a], [b]) => (a < b ? -1 : 1))) {
    for (const sku of new Set([...journal.sums.keys(), ...Object.keys(journal.tot)])) {
      const recorded = hasOwnKey(journal.tot, sku) ? journal.tot[sku]! : 0
      const expected = journal.sums.get(sku) ?? 0
      if (recorded !== expected) mismatches.push({ journal: key, sku, recorded, expected, what: 'total' })
    }
    const previous = byKey.get(journalKey(journal.node, journal.n - 1))
    if (!previous) continue
    const carried = closing(previous)
    for (const sku of new Set([...carried.keys(), ...Object.keys(journal.open)])) {
      // A SKU carried at 0 has no opening entry: `open.constructor` must read 0, not Object's.
      const recorded = hasOwnKey(journal.open, sku) ? journal.open[sku]! : 0
      const expected = carried.get(sku) ?? 0
      if (recorded !== expected) mismatches.push({ journal: key, sku, recorded, expected, what: 'opening' })
    }
  }
  mismatches.push(...checkLots(byKey))
  return mismatches
}

/** The same checks per lot, for journals of schema 4: lot totals against lot movements, lot openings against the journal before. */
function checkLots(byKey: ReadonlyMap<string, CheckedJournal>): LedgerMismatch[] {
  const mismatches: LedgerMismatch[] = []
  const closing = (j: JournalFacts) => {
    const balance = new Map<string, number>(Object.entries(j.lotOpen ?? {}))
    for (const [k, quantity] of Object.entries(j.lotTot ?? {})) balance.set(k, (balance.get(k) ?? 0) + quantity)
    return balance
  }
  for (const [key, journal] of [...byKey].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const lotTot = journal.lotTot ?? {}
    const sums = journal.lotSums ?? new Map<string, number>()
    for (const k of new Set([...sums.keys(), ...Object.keys(lotTot)])) {
      const recorded = hasOwnKey(lotTot, k) ? lotTot[k]! : 0
      const expected = sums.get(k) ?? 0
      if (recorded !== expected) mismatches.push({ journal: key, ...splitLotKey(k), recorded, expected, what: 'total' })
    }
    const previous = byKey.get(journalKey(journal.node, journal.n - 1))
    if (!previous || journal.lotOpen === undefined) continue
    const carried = closing(previous)
    for (const k of new Set([...carried.keys(), ...Object.keys(journal.lotOpen)])) {
      const recorded = hasOwnKey(journal.lotOpen, k) ? journal.lotOpen[k]! : 0
      const expected = carried.get(k) ?? 0
      if (recorded !== expected) mismatches.push({ journal: key, ...splitLotKey(k), recorded, expected, what: 'opening' })
    }
  }
  return mismatches
}

/**
 * What differs between a movement planned from a re-sent input and the one recorded earlier under
 * the same id ('kind', 'SKU', 'quantity', 'count'), or undefined when it is the same movement. Who,
 * when, and the reference may differ: a scanner that re-sends after a lost answer sends the same
 * movement, perhaps with a new time.
 */
export function sameMovement(planned: Posting, earlier: Posting): string | undefined {
  if (planned.kind !== earlier.kind) return 'kind'
  if (planned.sku !== earlier.sku) return 'SKU'
  const lots = (p: Posting) => (p.lots ?? []).map((part) => part.lot).join(',')
  if (lots(planned) !== lots(earlier)) return 'lot'
  if (planned.kind === 'count') return planned.counted === earlier.counted ? undefined : 'count'
  return planned.delta === earlier.delta ? undefined : 'quantity'
}

/** A movement in a few words, e.g. `receipt of 40 AMOX-500`. */
export function describeMovement(p: Posting): string {
  const lot = p.lots ? ` (lot ${p.lots.map((part) => part.lot).join(', ')})` : ''
  return p.kind === 'count' ? `count of ${p.sku}${lot}: ${p.counted}` : `${p.kind} of ${p.delta} ${p.sku}${lot}`
}
