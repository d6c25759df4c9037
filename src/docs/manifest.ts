/**
 * Manifest operations. Each runs inside `handle.change` / `A.change` as `(doc, input, ctx)`: it
 * checks the document is writable, validates the input (from `unknown`) and the rules, and only
 * then writes. A refused call throws `InputError` / `RuleError` / `ReadOnlyDocumentError` and has
 * written nothing. No I/O, clock or randomness: who and when come in `ctx`.
 *
 * Nothing about progress is a stored status: departing and closing append events, delivering a
 * stop appends to that stop's delivery list (rules in docs/conflict-rules.md, "Manifests").
 */
import { type ChangeContext, parseContext } from '../schema/changeContext.ts'
import { checkClientTime } from '../schema/clientTime.ts'
import { parseInput, RuleError } from '../schema/errors.ts'
import { CloseInput, DeliverStopInput, DepartInput, type Delivery, MANIFEST_SCHEMA, type ManifestDoc, PlanManifestInput } from '../schema/manifest.ts'
import { assertWritable } from '../schema/migrations.ts'
import { imm, str } from '../schema/strings.ts'
import { findStop, manifestStatus, type ReceiptPosting, receiptPosting } from './manifestStatus.ts'

export { findStop, manifestStatus, manifestStops, receiptPostings, stopDeliveries, stopStatus } from './manifestStatus.ts'
export type { ReceiptPosting, StopStatus, StopView } from './manifestStatus.ts'
export { decideManifestItem, manifestReviewItems } from './manifestReview.ts'

/** The writable, planned manifest's checked context. */
function begin(doc: ManifestDoc, ctx: ChangeContext): ChangeContext {
  assertWritable('manifest', doc)
  const checked = parseContext(ctx)
  if (str(doc.kind) !== 'manifest') throw new RuleError('not-a-manifest', 'this document is not a manifest (planManifest first)')
  return checked
}

function appendEvent(doc: ManifestDoc, to: 'departed' | 'closed', ctx: ChangeContext, reason: string | undefined): void {
  doc.events.push({ to: imm(to), by: imm(ctx.user), device: imm(ctx.device), at: ctx.at, ...(reason !== undefined ? { reason: imm(reason) } : {}) })
}

/**
 * Initialises an empty document as a planned manifest `{id, from, carrier, stops: [{id, site,
 * lines: [{id, sku, shipped}]}]}` leaving hub `from`. Refuses a document already initialised.
 */
export function planManifest(doc: ManifestDoc, input: unknown, ctx: ChangeContext): void {
  assertWritable('manifest', doc)
  const c = parseContext(ctx)
  const plan = parseInput(PlanManifestInput, input)
  if (doc.kind !== undefined || doc.id !== undefined) throw new RuleError('already-created', 'this document is already initialised')
  doc.schema = MANIFEST_SCHEMA
  doc.kind = imm('manifest')
  doc.id = imm(plan.id)
  doc.from = imm(plan.from)
  doc.carrier = imm(plan.carrier)
  doc.createdBy = imm(c.user)
  doc.createdDevice = imm(c.device)
  doc.createdAt = c.at
  doc.stops = plan.stops.map((stop) => ({
    id: imm(stop.id),
    site: imm(stop.site),
    lines: stop.lines.map((l) => ({ id: imm(l.id), sku: imm(l.sku), shipped: l.shipped, ...(l.lot !== undefined ? { lot: imm(l.lot) } : {}), ...(l.expiry !== undefined ? { expiry: imm(l.expiry) } : {}) })),
    deliveries: [],
  }))
  doc.events = []
  doc.decisions = {}
}

/** planned → departed `{reason?}`. */
export function depart(doc: ManifestDoc, input: unknown, ctx: ChangeContext): void {
  const c = begin(doc, ctx)
  const { reason } = parseInput(DepartInput, input)
  const status = manifestStatus(doc)
  if (status !== 'planned') throw new RuleError(status === 'closed' ? 'manifest-closed' : 'already-departed', `cannot depart a manifest that is ${status}`)
  appendEvent(doc, 'departed', c, reason)
}

/**
 * Records the delivery of a stop `{stop, receiver, receivedAt?, signature, lines: [{line,
 * received, rejected}], note?}` and returns the receipt posting for the stop site's ledger.
 * Every line of the stop must be listed. Refuses a `receivedAt` more than 400 days before or 24
 * hours after `ctx.at` (the node's clock; src/schema/clientTime.ts), a manifest not departed or
 * closed, a stop not on it, a line not on the stop, and a stop this replica already saw
 * delivered (a correction is a review decision, not a second delivery). A second delivery recorded offline on another device
 * is kept and shown as 'stop-received-twice'.
 */
export function deliverStop(doc: ManifestDoc, input: unknown, ctx: ChangeContext): ReceiptPosting {
  const c = begin(doc, ctx)
  const given = parseInput(DeliverStopInput, input)
  // ctx.at is the node's clock: the client's receivedAt must lie in the window around it.
  if (given.receivedAt !== undefined) checkClientTime('receivedAt', given.receivedAt, c.at)
  const status = manifestStatus(doc)
  if (status === 'planned') throw new RuleError('not-departed', 'cannot deliver a stop of a manifest that has not departed')
  if (status === 'closed') throw new RuleError('manifest-closed', 'cannot deliver a stop of a closed manifest')
  const stop = findStop(doc, given.stop)
  if (!stop) throw new RuleError('unknown-stop', `stop ${given.stop} is not on manifest ${str(doc.id)}`, 'stop')
  if (stop.deliveries.length > 0) throw new RuleError('stop-already-delivered', `stop ${given.stop} has already been delivered`, 'stop')
  const onStop = new Set(stop.lines.map((l) => str(l.id)))
  given.lines.forEach((line, i) => {
    if (!onStop.has(line.line)) throw new RuleError('unknown-line', `line ${line.line} is not on stop ${given.stop}`, `lines.${i}.line`)
  })
  const listed = new Set<string>(given.lines.map((l) => l.line))
  const missing = [...onStop].filter((id) => !listed.has(id))
  if (missing.length > 0) throw new RuleError('missing-line', `every line of the stop must be listed; missing: ${missing.join(', ')}`, 'lines')

  const delivery: Delivery = {
    by: imm(c.user),
    device: imm(c.device),
    at: c.at,
    receivedAt: given.receivedAt ?? c.at,
    receiver: imm(given.receiver),
    signature: imm(given.signature),
    lines: Object.fromEntries(given.lines.map((l) => [l.line, { received: l.received, rejected: l.rejected }])),
    ...(given.note !== undefined ? { note: imm(given.note) } : {}),
  }
  stop.deliveries.push(delivery)
  return receiptPosting(doc, stop, delivery)
}

/**
 * departed | delivered → closed `{reason?}`. A reason is required while a stop has no delivery
 * (the truck came back with it).
 */
export function close(doc: ManifestDoc, input: unknown, ctx: ChangeContext): void {
  const c = begin(doc, ctx)
  const { reason } = parseInput(CloseInput, input)
  const status = manifestStatus(doc)
  if (status === 'planned') throw new RuleError('not-departed', 'cannot close a manifest that has not departed')
  if (status === 'closed') throw new RuleError('manifest-closed', 'this manifest is already closed')
  const pending = doc.stops.filter((s) => s.deliveries.length === 0).map((s) => str(s.id))
  if (pending.length > 0 && reason === undefined) {
    throw new RuleError('reason-required', `${pending.length === 1 ? `stop ${pending[0]} has` : `stops ${pending.join(', ')} have`} no delivery: give a reason to close`, 'reason')
  }
  appendEvent(doc, 'closed', c, reason)
}
