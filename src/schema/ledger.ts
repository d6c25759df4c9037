/**
 * The stock ledger of one site is a small set of documents (the shape was chosen on measured
 * numbers, see BENCHMARKS.md and docs/DESIGN.md):
 *
 * - one `LedgerDoc`: the URLs of the journals and the decisions on review items. It changes when a
 *   journal is opened or an item decided, not per movement.
 * - many `JournalDoc`s, numbered per device: the append-only movements that device posted, and in
 *   the same document its totals per SKU as Automerge Counters plus the opening balance carried
 *   from its previous journal. A movement and its effect on the totals are one change of one
 *   document, so no crash can leave them apart. Each journal has a single writer, so it never
 *   conflicts; on hand of a SKU is the sum over devices of their latest journal's opening + total.
 */
import type { Counter } from '@automerge/automerge'
import { z } from 'zod'
import { ClientTime } from './clientTime.ts'
import { DeviceId, ExpiryDate, LotId, MovementId, ReasonCode, SiteId, Sku, UserId } from './ids.ts'
import type { StoredDecision } from './reviewDecision.ts'
import type { Str } from './strings.ts'

export const LEDGER_SCHEMA = 3
/** 2: movements packed into one string each, with `t0` and the dictionary `d` (src/docs/movementCodec.ts). */
export const JOURNAL_SCHEMA = 4
/** Movements per journal bucket. */
export const JOURNAL_BUCKET = 100
/** A node opens its next journal after this many movements (or when the week changes). */
export const JOURNAL_LIMIT = 5000

/** Movement kinds; stored as small ints to keep the journal compact on disk and on the wire. */
export const MovementKind = {
  receipt: 1,
  issue: 2,
  adjustment: 3,
  count: 4,
  transferOut: 5,
  transferIn: 6,
} as const
export type MovementKindName = keyof typeof MovementKind
export type MovementKindCode = (typeof MovementKind)[MovementKindName]
export const movementKindName = Object.fromEntries(
  Object.entries(MovementKind).map(([name, code]) => [code, name]),
) as Record<MovementKindCode, MovementKindName>

/** One movement as stored in a journal. Short keys: this record is written 100k times. */
export interface StoredMovement {
  /** Client-supplied movement id (idempotency key). */
  id: Str
  /** Kind code, see `MovementKind`. */
  k: MovementKindCode
  sku: Str
  /** Signed change to on hand (receipts positive, issues negative, counts the difference). */
  q: number
  /** Counted quantity (stock counts only). */
  n?: number
  /** When it happened, unix ms. */
  t: number
  /** User who recorded it. */
  by: Str
  /** Device (scanner, tablet) it was recorded on, when not the node itself. */
  dev?: Str
  /** Reason code (adjustments, counts). */
  why?: Str
  /** Free reference: order, manifest line, transfer partner site, review item. */
  ref?: Str
  /** Stock counts: posting key of the latest count of this SKU the counting device knew ('' if none). */
  prev?: Str
  /** Lots (journal schema 4), as the packed form's field 9 (src/docs/movementCodec.ts). */
  lots?: Str
  /** Expiry the movement states, YYYY-MM-DD. */
  x?: Str
}

export interface JournalDoc {
  schema: number
  kind: Str
  site: Str
  /** The node (device) that writes this journal; the only writer. */
  node: Str
  /** Number of this journal among the node's journals, from 1. */
  n: number
  /** ISO week the journal was opened in, e.g. '2026-W47' (for people; order is by `n`). */
  week: Str
  /** Every posting sequence number in this journal is above this (the last of the journal before). */
  s0: number
  /** The node's totals per SKU over all its earlier journals (open + tot of journal n-1). */
  open: Record<string, number>
  /** Schemas 1–2: this journal's movements summed per SKU. */
  tot?: Record<string, Counter>
  /**
   * Schema 3: the same sums, in 64 shards by SKU (`totShard`). Automerge copies every map on the
   * path a change writes: one counter among 1,700 SKUs in a flat map cost 0.5 ms a movement,
   * 0.2 ms sharded (BENCHMARKS.md).
   */
  tt?: Record<string, Record<string, Counter>>
  /**
   * Schema 4: totals per lot of lot-tracked products, sharded like `tt` (by the SKU), keyed
   * `sku|lot` (`|` is in no id). On hand of a lot = Σ over devices of (`ol` + `lt`) of the latest journal.
   */
  lt?: Record<string, Record<string, Counter>>
  /** Schema 4: the opening balance per lot (`sku|lot`), carried like `open`; lots at 0 are left out. */
  ol?: Record<string, number>
  /** Schema 2: the time packed movements count from (unix ms; the journal's opening). */
  t0?: number
  /** Schema 2: repeated strings of packed movements (user and device, reasons), by code. */
  d?: Record<string, Str>
  /**
   * Movements by bucket (`floor(seq / JOURNAL_BUCKET)`) and then by the node's posting sequence
   * number. Buckets keep each map small: appending to one flat map of 5,000 keys cost 7 ms per
   * change against 0.9 ms bucketed (BENCHMARKS.md, diagnosis).
   */
  m: Record<string, Record<string, StoredMovement | Str>>
}


export interface LedgerDoc {
  schema: number
  kind: Str
  site: Str
  /** Journal document URLs keyed `${node}/${n}` with n zero-padded to 6 digits. */
  journals: Record<string, Str>
  /** Decisions on review items, each under a key of its own (src/schema/reviewDecision.ts). Never deleted. */
  decisions: Record<string, StoredDecision>
}

// ---- outside input -------------------------------------------------------------------------

const quantity = z
  .number({ error: 'must be a number' })
  .int({ error: 'must be a whole number' })
  .positive({ error: 'must be at least 1' })
  .max(1_000_000_000, { error: 'must be at most 1,000,000,000' })

const text = (max: number) => z.string().trim().max(max, { error: `must be at most ${max} characters` })

const common = {
  id: MovementId,
  sku: Sku,
  user: UserId,
  device: DeviceId.optional(),
  /**
   * When it happened, unix ms; defaults to the node's clock. Within 400 days before and 24 hours
   * after the node's clock, checked by `planMovement` (src/schema/clientTime.ts).
   */
  at: ClientTime.optional(),
  reference: text(200).optional(),
  /** Lot-tracked products: the lot (an issue without one is served first-expiry-first-out). */
  lot: LotId.optional(),
  /** The lot's expiry, YYYY-MM-DD: required when a receipt brings a lot that is new here. */
  expiry: ExpiryDate.optional(),
}
const wholeNumber = z.number({ error: 'must be a number' }).int({ error: 'must be a whole number' })

/** A movement as a client (scanner, script, UI) submits it. Unknown fields are refused. */
export const MovementInput = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({ ...common, kind: z.literal('receipt'), quantity, reason: ReasonCode.optional() }),
    z.strictObject({ ...common, kind: z.literal('issue'), quantity, reason: ReasonCode.optional() }),
    z.strictObject({
      ...common,
      kind: z.literal('adjustment'),
      /** Signed: positive adds stock, negative removes it. */
      delta: wholeNumber
        .refine((n) => n !== 0, { error: 'must not be zero' })
        .refine((n) => Math.abs(n) <= 1_000_000_000, { error: 'must be at most 1,000,000,000 either way' }),
      reason: ReasonCode,
    }),
    z.strictObject({
      ...common,
      kind: z.literal('count'),
      counted: wholeNumber.min(0, { error: 'must not be negative' }).max(1_000_000_000),
      reason: ReasonCode.optional(),
    }),
    z.strictObject({ ...common, kind: z.literal('transferOut'), quantity, to: SiteId, reason: ReasonCode.optional() }),
    z.strictObject({ ...common, kind: z.literal('transferIn'), quantity, from: SiteId, reason: ReasonCode.optional() }),
  ],
  { error: 'kind must be one of receipt, issue, adjustment, count, transferOut, transferIn' },
)
export type MovementInput = z.infer<typeof MovementInput>



/** A decision on a ledger review item, with the compensating adjustments to post. */
export const LedgerDecisionInput = z.strictObject({
  user: UserId,
  note: text(500).pipe(z.string().min(1, { error: 'must say what was decided' })),
  adjustments: z
    .array(z.strictObject({ sku: Sku, delta: wholeNumber.refine((n) => n !== 0, { error: 'must not be zero' }), reason: ReasonCode, lot: LotId.optional() }))
    .max(50, { error: 'at most 50 adjustments per decision' })
    .default([]),
})
export type LedgerDecisionInput = z.infer<typeof LedgerDecisionInput>
