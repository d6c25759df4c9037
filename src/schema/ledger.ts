/**
 * The stock ledger of one site is a small set of documents (the shape was chosen on measured
 * numbers, see BENCHMARKS.md and DESIGN.md):
 *
 * - one `LedgerDoc`: quantities on hand as Automerge Counters, one counter per (SKU, node) so that
 *   no two devices ever create the same counter concurrently (a counter created twice keeps only
 *   one of the two and loses the other's increments); on hand of a SKU is the sum over nodes.
 * - many `JournalDoc`s, one per (node, period): the append-only record of every movement a node
 *   posted in that week. Each has a single writer, so it never conflicts and stays small.
 *
 * A movement is written to its journal first, then to the counters with `posted[node]` advanced in
 * the same change; a node that crashed in between finds its journal ahead of `posted` on restart
 * and applies the rest (see src/docs/ledger.ts `pendingPostings`).
 */
import type { Counter } from '@automerge/automerge'
import { z } from 'zod'
import { DeviceId, MovementId, ReasonCode, SiteId, Sku, UserId } from './ids.ts'
import type { Str } from './strings.ts'

export const LEDGER_SCHEMA = 2
export const JOURNAL_SCHEMA = 1
/** Movements per journal bucket. */
export const JOURNAL_BUCKET = 100

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
  /** Stock counts: posting key of the latest count of this SKU the counter had seen ('' if none). */
  prev?: Str
}

export interface JournalDoc {
  schema: number
  kind: 'journal'
  site: Str
  /** The node (device) that writes this journal; the only writer. */
  node: Str
  /** ISO week, e.g. '2026-W47'. */
  period: Str
  /**
   * Movements by bucket (`floor(seq / JOURNAL_BUCKET)`) and then by the node's posting sequence
   * number. Buckets keep each map small: appending to one flat map of 5,000 keys cost 7 ms per
   * change against 0.9 ms bucketed (BENCHMARKS.md, diagnosis).
   */
  m: Record<string, Record<string, StoredMovement>>
}

export interface PostedMark {
  /** Highest posting sequence number of this node applied to the counters. */
  seq: number
  /** The journal period of that posting; a node never posts into an earlier period afterwards. */
  period: Str
}

export interface Decision {
  by: Str
  /** unix ms */
  at: number
  note: Str
  /** Movement ids posted as the compensating movements of this decision. */
  movements: Str[]
}

export interface LedgerDoc {
  schema: number
  kind: 'ledger'
  site: Str
  /** On hand contributions, keyed `${sku}@${node}`; on hand of a SKU is their sum. */
  q: Record<string, Counter>
  /** Per node, how far its journal has been applied to `q`. */
  posted: Record<string, PostedMark>
  /** Journal document URLs keyed `${period}/${node}`. */
  journals: Record<string, Str>
  /** Latest stock count per SKU: the posting key `${node}:${seq}`. */
  lastCount: Record<string, Str>
  /** Decisions on review items, by review item id. Never deleted. */
  decisions: Record<string, Decision>
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
  /** When it happened, unix ms; defaults to now. */
  at: z.number({ error: 'must be a time in unix milliseconds' }).int().positive().optional(),
  reference: text(200).optional(),
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
    .array(z.strictObject({ sku: Sku, delta: wholeNumber.refine((n) => n !== 0, { error: 'must not be zero' }), reason: ReasonCode }))
    .max(50, { error: 'at most 50 adjustments per decision' })
    .default([]),
})
export type LedgerDecisionInput = z.infer<typeof LedgerDecisionInput>
