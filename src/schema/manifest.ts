/**
 * A delivery manifest: one shipment from a hub by a carrier, with stops, each a site and the lines
 * shipped to it. Nothing about progress is a stored status: departure and closing are appended to
 * `events`, and each stop's deliveries are appended to that stop's own list, so two devices that
 * record the same stop offline both keep their record after the merge. Rules:
 * docs/conflict-rules.md, "Manifests".
 */
import { z } from 'zod'
import { ExpiryDate, LineId, LotId, ManifestId, SiteId, Sku, StopId, isId } from './ids.ts'
import { decisionKeysMigration } from './migrations/decisions.ts'
import type { Migration } from './migrations/types.ts'
import type { StoredDecision } from './reviewDecision.ts'
import type { Str } from './strings.ts'
import { ClientTime } from './clientTime.ts'

export const MANIFEST_SCHEMA = 2
/** Registered in src/schema/migrations.ts (this file must not import it: circular). */
export const manifestSchema: { current: number; migrations: Migration[] } = { current: MANIFEST_SCHEMA, migrations: [decisionKeysMigration(2)] }

export type ManifestStatus = 'planned' | 'departed' | 'delivered' | 'closed'
export type ManifestEventKind = 'departed' | 'closed'

export interface ManifestLine {
  id: Str
  sku: Str
  shipped: number
  /** Products tracked by lot: the lot shipped and its expiry (YYYY-MM-DD); a receipt of the line posts into that lot. */
  lot?: Str
  expiry?: Str
}

export interface DeliveryLine {
  received: number
  rejected: number
}

/** What one device recorded at a stop: the proof of delivery. Appended, never changed. */
export interface Delivery {
  by: Str
  device: Str
  /** When it was recorded, unix ms. */
  at: number
  /** When the receiver took the goods, unix ms (as entered; defaults to `at`). */
  receivedAt: number
  receiver: Str
  /** `data:image/png;base64,…` or a typed name. */
  signature: Str
  /** Every line of the stop, by line id. */
  lines: Record<string, DeliveryLine>
  note?: Str
}

export interface ManifestStop {
  id: Str
  site: Str
  lines: ManifestLine[]
  /** Created empty by planManifest so that concurrent appends all survive the merge. */
  deliveries: Delivery[]
}

export interface ManifestEvent {
  to: Str
  by: Str
  device: Str
  at: number
  reason?: Str
}

export interface ManifestDoc {
  schema: number
  /** 'manifest' */
  kind: Str
  id: Str
  /** The hub it leaves from. */
  from: Str
  carrier: Str
  createdBy: Str
  createdDevice: Str
  createdAt: number
  /** In route order. */
  stops: ManifestStop[]
  events: ManifestEvent[]
  decisions: Record<string, StoredDecision>
}

/** The receipt movement id of a manifest line: the same on every device that receives it. */
export function receiptMovementId(manifest: string, stop: string, line: string): string {
  return `rcv:${manifest}:${stop}:${line}`
}

// ---- outside input -------------------------------------------------------------------------

export const MAX_STOPS = 100
export const MAX_LINES_PER_STOP = 500
/** Signatures are stored in the document and synced to every party: keep them small. */
export const MAX_SIGNATURE_BYTES = 64 * 1024
const MAX_TYPED_NAME = 200

const wholeNumber = z.number({ error: 'must be a number' }).int({ error: 'must be a whole number' })
const shipped = wholeNumber.positive({ error: 'must be at least 1' }).max(1_000_000_000, { error: 'must be at most 1,000,000,000' })
const counted = wholeNumber.min(0, { error: 'must not be negative' }).max(1_000_000_000, { error: 'must be at most 1,000,000,000' })
const text = (max: number) =>
  z
    .string({ error: 'must be a string' })
    .trim()
    .min(1, { error: 'must not be empty' })
    .max(max, { error: `must be at most ${max} characters` })

const PNG_DATA_URL = /^data:image\/png;base64,iVBORw0KGgo[A-Za-z0-9+/]*={0,2}$/
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/

/** A signature: a PNG as a data URL (at most 64 KB), or a typed name (at most 200 characters). */
export const Signature = z
  .string({ error: 'must be a string' })
  .max(MAX_SIGNATURE_BYTES, { error: `must be at most ${MAX_SIGNATURE_BYTES} bytes` })
  .refine(
    (s) => (s.startsWith('data:') ? PNG_DATA_URL.test(s) && s.length % 4 === 2 : s.trim().length > 0 && s.length <= MAX_TYPED_NAME && !CONTROL.test(s)),
    { error: `must be a data:image/png;base64 URL or a typed name of 1–${MAX_TYPED_NAME} characters` },
  )

export const ManifestLineInput = z.strictObject({ id: LineId, sku: Sku, shipped, lot: LotId.optional(), expiry: ExpiryDate.optional() })
export const ManifestStopInput = z.strictObject({
  id: StopId,
  site: SiteId,
  lines: z
    .array(ManifestLineInput)
    .min(1, { error: 'must have at least one line' })
    .max(MAX_LINES_PER_STOP, { error: `must have at most ${MAX_LINES_PER_STOP} lines` }),
})

export const PlanManifestInput = z
  .strictObject({
    id: ManifestId,
    from: SiteId,
    carrier: text(200),
    stops: z
      .array(ManifestStopInput)
      .min(1, { error: 'must have at least one stop' })
      .max(MAX_STOPS, { error: `must have at most ${MAX_STOPS} stops` }),
  })
  .superRefine((input, ctx) => {
    const stopIds = new Set<string>()
    input.stops.forEach((stop, s) => {
      if (stopIds.has(stop.id)) ctx.addIssue({ code: 'custom', message: `stop ${stop.id} is listed twice`, path: ['stops', s, 'id'] })
      stopIds.add(stop.id)
      if (stop.site === input.from) ctx.addIssue({ code: 'custom', message: 'must not be the hub the manifest leaves from', path: ['stops', s, 'site'] })
      const lineIds = new Set<string>()
      stop.lines.forEach((line, l) => {
        if (lineIds.has(line.id)) ctx.addIssue({ code: 'custom', message: `line ${line.id} is listed twice`, path: ['stops', s, 'lines', l, 'id'] })
        lineIds.add(line.id)
        // The receipt movement id must itself be a valid id (at most 128 characters).
        if (!isId(receiptMovementId(input.id, stop.id, line.id))) {
          ctx.addIssue({ code: 'custom', message: 'manifest, stop and line ids together are too long for a movement id (128 characters)', path: ['stops', s, 'lines', l, 'id'] })
        }
      })
    })
  })
export type PlanManifestInput = z.infer<typeof PlanManifestInput>

/** depart: an optional note. */
export const DepartInput = z.strictObject({ reason: text(500).optional() })
export type DepartInput = z.infer<typeof DepartInput>

/** close: a reason, required by the rules when a stop has no delivery. */
export const CloseInput = z.strictObject({ reason: text(500).optional() })
export type CloseInput = z.infer<typeof CloseInput>

/**
 * What a driver records at a stop. Every line of the stop must be listed. Received and rejected
 * may add up to more or less than shipped (a miscount at the hub is a fact the site must be able
 * to record); any line where they do not match what was shipped becomes a review item.
 */
export const DeliverStopInput = z
  .strictObject({
    stop: StopId,
    receiver: text(200),
    /**
     * When the goods were taken, unix ms; defaults to the time of recording. Within 400 days
     * before and 24 hours after the node's clock, checked by `deliverStop` (src/schema/clientTime.ts).
     */
    receivedAt: ClientTime.optional(),
    signature: Signature,
    lines: z
      .array(z.strictObject({ line: LineId, received: counted, rejected: counted.default(0) }))
      .min(1, { error: 'must have at least one line' })
      .max(MAX_LINES_PER_STOP, { error: `must have at most ${MAX_LINES_PER_STOP} lines` }),
    note: text(1000).optional(),
  })
  .superRefine((input, ctx) => {
    const seen = new Set<string>()
    input.lines.forEach((line, i) => {
      if (seen.has(line.line)) ctx.addIssue({ code: 'custom', message: `line ${line.line} is listed twice`, path: ['lines', i, 'line'] })
      seen.add(line.line)
    })
  })
export type DeliverStopInput = z.infer<typeof DeliverStopInput>
