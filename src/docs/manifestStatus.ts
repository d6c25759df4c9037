/**
 * Derived views of a manifest: its status, each stop's status, and the receipt postings a stop's
 * deliveries make in the site's ledger. Pure: every replica with the same document computes the
 * same thing.
 */
import { asId, type MovementId, type SiteId, type Sku } from '../schema/ids.ts'
import { type Delivery, type ManifestDoc, type ManifestStatus, type ManifestStop, receiptMovementId } from '../schema/manifest.ts'
import { own } from '../schema/ownProperty.ts'
import { str } from '../schema/strings.ts'

export type StopStatus = 'pending' | 'delivered'

export interface StopView {
  id: string
  site: string
  status: StopStatus
  /** How many deliveries were recorded (more than one is a review item). */
  deliveries: number
  lines: Array<{ id: string; sku: string; shipped: number; lot?: string; expiry?: string }>
}

/** A receipt to post into the stop site's ledger: one movement per line received (> 0). */
export interface ReceiptPosting {
  site: SiteId
  movements: Array<{ id: MovementId; sku: Sku; quantity: number; reference: string; lot?: string; expiry?: string }>
}

function cmp(a: string | number, b: string | number): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function hasEvent(doc: ManifestDoc, to: 'departed' | 'closed'): boolean {
  return (doc.events ?? []).some((e) => str(e.to) === to)
}

/**
 * planned → departed → delivered (every stop has a delivery) → closed. Any 'closed' event closes
 * it, any 'departed' event departs it: concurrent departures or closings agree.
 */
export function manifestStatus(doc: ManifestDoc): ManifestStatus {
  if (hasEvent(doc, 'closed')) return 'closed'
  if (!hasEvent(doc, 'departed')) return 'planned'
  return (doc.stops ?? []).every((s) => s.deliveries.length > 0) ? 'delivered' : 'departed'
}

/** A stop is delivered once any device recorded a delivery for it. */
export function stopStatus(stop: ManifestStop): StopStatus {
  return stop.deliveries.length > 0 ? 'delivered' : 'pending'
}

/** The stops in route order, with their status. */
export function manifestStops(doc: ManifestDoc): StopView[] {
  return (doc.stops ?? []).map((stop) => ({
    id: str(stop.id),
    site: str(stop.site),
    status: stopStatus(stop),
    deliveries: stop.deliveries.length,
    lines: stop.lines.map((l) => ({ id: str(l.id), sku: str(l.sku), shipped: l.shipped, ...(l.lot !== undefined ? { lot: str(l.lot), expiry: l.expiry === undefined ? undefined : str(l.expiry) } : {}) })),
  }))
}

/** The stop with this id, if it is on the manifest. */
export function findStop(doc: ManifestDoc, stopId: string): ManifestStop | undefined {
  return (doc.stops ?? []).find((s) => str(s.id) === stopId)
}

/** A stop's deliveries, earliest first: by `at`, then `by`, then `device`, then list position. */
export function stopDeliveries(stop: ManifestStop): Delivery[] {
  return stop.deliveries
    .map((delivery, index) => ({ delivery, index }))
    .sort((a, b) => cmp(a.delivery.at, b.delivery.at) || cmp(str(a.delivery.by), str(b.delivery.by)) || cmp(str(a.delivery.device), str(b.delivery.device)) || a.index - b.index)
    .map(({ delivery }) => delivery)
}

/**
 * The receipt posting of one delivery of `stop`. Movement ids are derived from the manifest line
 * (`rcv:<manifestId>:<stopId>:<lineId>`), so the same stop received on two devices gives the same
 * ids and the ledger sees the duplicate. Lines received 0 post nothing.
 */
export function receiptPosting(doc: ManifestDoc, stop: ManifestStop, delivery: Delivery): ReceiptPosting {
  const manifestId = str(doc.id)
  const stopId = str(stop.id)
  const movements = Array.from(stop.lines).flatMap((line) => {
    const lineId = str(line.id)
    const received = own(delivery.lines, lineId)?.received ?? 0
    if (received <= 0) return []
    return [
      {
        id: asId<MovementId>(receiptMovementId(manifestId, stopId, lineId)),
        sku: asId<Sku>(str(line.sku)),
        quantity: received,
        reference: `manifest ${manifestId} stop ${stopId} line ${lineId}`,
        // Received into the lot the line shipped (with its expiry: the lot may be new at this site).
        ...(line.lot !== undefined ? { lot: str(line.lot) } : {}),
        ...(line.expiry !== undefined ? { expiry: str(line.expiry) } : {}),
      },
    ]
  })
  return { site: asId<SiteId>(str(stop.site)), movements }
}

/** The receipt postings of every delivery recorded for `stopId`, earliest first ([] if none). */
export function receiptPostings(doc: ManifestDoc, stopId: string): ReceiptPosting[] {
  const stop = findStop(doc, stopId)
  return stop ? stopDeliveries(stop).map((d) => receiptPosting(doc, stop, d)) : []
}
