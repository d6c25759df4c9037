/**
 * Review items of a manifest:
 * - 'stop-received-twice': a stop with more than one delivery (recorded offline on two devices);
 *   each posted the same receipt movement ids, which the ledger also flags.
 * - 'delivery-discrepancy': one per stop line where a delivery's received quantity differs from
 *   the shipped one or something was rejected.
 */
import { z } from 'zod'
import { type ChangeContext, parseContext } from '../schema/changeContext.ts'
import { parseInput, RuleError } from '../schema/errors.ts'
import { type Delivery, type ManifestDoc, type ManifestStop, receiptMovementId } from '../schema/manifest.ts'
import { assertWritable } from '../schema/migrations.ts'
import { own } from '../schema/ownProperty.ts'
import { compareReviewItems, type ReviewItem, type ReviewKind } from '../schema/review.ts'
import { DecideManifestItemInput, ReviewItemId } from '../schema/reviewDecision.ts'
import { str } from '../schema/strings.ts'
import { stopDeliveries } from './manifestStatus.ts'
import { type DecisionIndex, decidedButCleared, indexDecisions, recordDecision, withDecision } from './reviewDecision.ts'

/** A delivery as plain JSON (without the signature), for review details and API answers. */
export function describeDelivery(d: Delivery): Record<string, unknown> {
  return {
    by: str(d.by),
    device: str(d.device),
    at: d.at,
    receivedAt: d.receivedAt,
    receiver: str(d.receiver),
    lines: Object.fromEntries(Object.entries(d.lines).map(([id, l]) => [id, { received: l.received, rejected: l.rejected }])),
    ...(d.note !== undefined ? { note: str(d.note) } : {}),
  }
}

function item(decided: DecisionIndex, id: string, kind: ReviewKind, summary: string, details: Record<string, unknown>): ReviewItem {
  return withDecision({ id, kind, doc: 'manifest', summary, details }, decided)
}

function receivedTwice(doc: ManifestDoc, decided: DecisionIndex, stop: ManifestStop, deliveries: Delivery[]): ReviewItem[] {
  if (deliveries.length < 2) return []
  const manifestId = str(doc.id)
  const stopId = str(stop.id)
  const who = deliveries.map((d) => `${str(d.by)} on ${str(d.device)}`).join(', ')
  return [
    item(decided, `stop-received-twice:${manifestId}:${stopId}`, 'stop-received-twice', `Stop ${stopId} (${str(stop.site)}) of manifest ${manifestId} was received ${deliveries.length} times (${who}); each posts receipt movements with the same ids.`, {
      manifest: manifestId,
      stop: stopId,
      site: str(stop.site),
      deliveries: deliveries.map(describeDelivery),
      // The ids each delivery posts (a line received 0 posts nothing).
      movements: Array.from(stop.lines)
        .map((l) => str(l.id))
        .filter((lineId) => deliveries.some((d) => (own(d.lines, lineId)?.received ?? 0) > 0))
        .map((lineId) => receiptMovementId(manifestId, stopId, lineId)),
    }),
  ]
}

function discrepancies(doc: ManifestDoc, decided: DecisionIndex, stop: ManifestStop, deliveries: Delivery[]): ReviewItem[] {
  const manifestId = str(doc.id)
  const stopId = str(stop.id)
  return Array.from(stop.lines).flatMap((line) => {
    const lineId = str(line.id)
    const counts = deliveries.map((d) => ({ d, received: own(d.lines, lineId)?.received ?? 0, rejected: own(d.lines, lineId)?.rejected ?? 0 }))
    const first = counts[0]
    if (!first || counts.every((c) => c.received === line.shipped && c.rejected === 0)) return []
    const figures = counts.map((c) => `received ${c.received}, rejected ${c.rejected}`).join('; then ')
    return [
      item(decided, `delivery-discrepancy:${manifestId}:${stopId}:${lineId}`, 'delivery-discrepancy', `Stop ${stopId} (${str(stop.site)}) line ${lineId} (${str(line.sku)}): shipped ${line.shipped}, ${figures}.`, {
        manifest: manifestId,
        stop: stopId,
        site: str(stop.site),
        line: lineId,
        sku: str(line.sku),
        shipped: line.shipped,
        received: first.received,
        rejected: first.rejected,
        deliveries: counts.map((c) => ({ by: str(c.d.by), device: str(c.d.device), at: c.d.at, received: c.received, rejected: c.rejected })),
      }),
    ]
  })
}

/**
 * The manifest's review items in `compareReviewItems` order. A discrepancy's `received` and
 * `rejected` are those of the earliest delivery; `deliveries` lists every delivery's figures.
 */
export function manifestReviewItems(doc: ManifestDoc): ReviewItem[] {
  if (str(doc.kind) !== 'manifest') return []
  const decided = indexDecisions(doc.decisions)
  const items = Array.from(doc.stops ?? []).flatMap((stop) => {
    const deliveries = stopDeliveries(stop)
    return [...receivedTwice(doc, decided, stop, deliveries), ...discrepancies(doc, decided, stop, deliveries)]
  })
  return [...items, ...decidedButCleared(decided, 'manifest', items)].sort(compareReviewItems)
}

/**
 * Records a decision `{note, movements?}` on an open review item of this manifest; `movements`
 * are the ids of compensating movements posted to the site's ledger for it. Refuses an unknown
 * item and one already decided.
 */
export function decideManifestItem(doc: ManifestDoc, itemId: unknown, input: unknown, ctx: ChangeContext): void {
  assertWritable('manifest', doc)
  const c = parseContext(ctx)
  if (str(doc.kind) !== 'manifest') throw new RuleError('not-a-manifest', 'this document is not a manifest (planManifest first)')
  const { itemId: id } = parseInput(z.object({ itemId: ReviewItemId }), { itemId })
  const decision = parseInput(DecideManifestItemInput, input)
  recordDecision(doc, manifestReviewItems(doc), id, decision, c)
}
