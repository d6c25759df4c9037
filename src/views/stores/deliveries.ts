/**
 * Delivery manifests as this site node holds them (GET /api/manifests, GET /api/manifests/:id):
 * the list and the one manifest open on screen, read again on every (re)connection and whenever
 * the node says a manifest changed or arrived. Commands (depart, close, deliver a stop, decide a
 * review item) are POSTs that count as done when the node answers; the store then shows the
 * node's answer. What a person types for a delivery is kept here (a draft per stop) until the
 * node has recorded it, so a refusal, an unreachable node or a trip to another page loses nothing.
 */
import { defineStore } from 'pinia'
import { reactive, ref, shallowRef } from 'vue'
import { getJson, messageOf, post } from '../api.ts'
import { coalesced, useLiveStore } from './live.ts'

export type ManifestStatus = 'planned' | 'departed' | 'delivered' | 'closed'

/** A line shipped to a stop. */
export interface ManifestLine {
  id: string
  sku: string
  shipped: number
  lot?: string
  expiry?: string
}

/** A stop as GET /api/manifests lists it. */
export interface StopSummary {
  id: string
  site: string
  status: 'pending' | 'delivered'
  /** How many deliveries were recorded (more than one is a review item). */
  deliveries: number
  lines: ManifestLine[]
}

/** One manifest of GET /api/manifests. */
export interface ManifestSummary {
  id: string
  status: ManifestStatus
  /** The hub it leaves from. */
  from: string
  carrier: string
  stops: StopSummary[]
}

/** A recorded delivery: the proof (who received, when, the signature). */
export interface DeliveryRecord {
  by: string
  device: string
  /** When it was recorded, unix ms. */
  at: number
  /** When the receiver took the goods, unix ms. */
  receivedAt: number
  receiver: string
  /** A `data:image/png;base64,…` URL or a typed name. */
  signature: string
  lines: Record<string, { received: number; rejected: number }>
  note?: string
}

/** A stop of GET /api/manifests/:id; `receipts` only on this site's stops. */
export interface StopDetail extends StopSummary {
  recorded: DeliveryRecord[]
  receipts?: Array<{ id: string; sku: string; quantity: number; inLedger: boolean }>
}

/** A review item of the manifest (src/schema/review.ts). */
export interface ManifestReviewItem {
  id: string
  kind: string
  summary: string
  details: Record<string, unknown>
  status: 'open' | 'resolved'
  decision?: { by: string; at: number; note: string; movements: string[] }
}

/** GET /api/manifests/:id, and the answer of depart and close. */
export interface ManifestDetail extends Omit<ManifestSummary, 'stops'> {
  createdBy: string
  createdAt: number
  events: Array<{ to: string; by: string; device: string; at: number; reason?: string }>
  stops: StopDetail[]
  review: ManifestReviewItem[]
}

/** The answer of POST …/stops/:stop/delivery. */
export interface DeliveryOutcome {
  manifest: string
  stop: string
  site: string
  status: ManifestStatus
  delivery: DeliveryRecord
  receipts: { posted: true; results: Array<{ status: 'recorded' | 'duplicate'; id: string; sku: string; quantity: number }> } | { posted: false; reason: string }
}

/** What a person typed (and drew) to receive one stop. Quantities are '' while a field is empty. */
export interface DeliveryDraft {
  lines: Array<{ line: string; received: number | ''; rejected: number | '' }>
  receiver: string
  /** The drawn signature as a PNG data URL, '' when nothing is drawn. */
  drawn: string
  /** Whether the typed name, not the drawing, is the signature. */
  typed: boolean
  typedName: string
  /** `datetime-local` value; '' for "now". */
  receivedAt: string
  note: string
}

/** How one line's figures compare with what was shipped. */
export interface LineDifference {
  /** Neither received nor rejected: missing from what arrived. */
  short: number
  /** More received and rejected than shipped. */
  over: number
  rejected: number
  /** Whether the quantities typed are whole numbers of 0 or more (otherwise the rest is 0). */
  valid: boolean
}

const whole = (n: number | ''): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0

/** Shipped against received and rejected: received + rejected should make up what was shipped. */
export function lineDifference(shipped: number, received: number | '', rejected: number | ''): LineDifference {
  if (!whole(received) || !whole(rejected)) return { short: 0, over: 0, rejected: 0, valid: false }
  const accounted = received + rejected
  return { short: Math.max(0, shipped - accounted), over: Math.max(0, accounted - shipped), rejected, valid: true }
}

/** A difference in words: "as shipped", "2 short", "1 over, 1 rejected", "—" when not a number. */
export function differenceWords(d: LineDifference): string {
  if (!d.valid) return '—'
  const parts = [d.short > 0 ? `${d.short} short` : '', d.over > 0 ? `${d.over} over` : '', d.rejected > 0 ? `${d.rejected} rejected` : ''].filter((p) => p !== '')
  return parts.length === 0 ? 'as shipped' : parts.join(', ')
}

/** The POST body of a delivery (without the user) from what was typed. */
export function deliveryBody(draft: DeliveryDraft): Record<string, unknown> {
  const receivedAt = draft.receivedAt === '' ? undefined : new Date(draft.receivedAt).getTime()
  return {
    receiver: draft.receiver,
    signature: draft.typed ? draft.typedName : draft.drawn,
    lines: draft.lines.map((l) => ({ line: l.line, received: l.received, rejected: l.rejected })),
    ...(receivedAt !== undefined && !Number.isNaN(receivedAt) ? { receivedAt } : {}),
    ...(draft.note.trim() !== '' ? { note: draft.note } : {}),
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null
const path = (...parts: string[]) => parts.map(encodeURIComponent).join('/')

export const useDeliveriesStore = defineStore('deliveries', () => {
  const live = useLiveStore()
  // Replaced whole on each read, never mutated in place.
  const list = shallowRef<readonly ManifestSummary[]>([])
  const listError = ref<string | undefined>()
  const listLoaded = ref(false)
  /** The id of the manifest on screen, and the manifest as last read (it may still be another id's while the new one loads). */
  const openId = ref<string | undefined>()
  const open = shallowRef<ManifestDetail | undefined>()
  const openError = ref<string | undefined>()
  const drafts = new Map<string, DeliveryDraft>()
  /** What the node answered to each delivery recorded from this page (shown as its confirmation). */
  const outcomes = shallowRef<ReadonlyMap<string, DeliveryOutcome>>(new Map())

  async function loadList(): Promise<void> {
    try {
      const answer = await getJson<{ manifests: ManifestSummary[] }>('/api/manifests')
      if (!Array.isArray(answer.manifests)) throw new Error('The site node sent a manifest list this UI cannot read')
      list.value = answer.manifests
      listError.value = undefined
    } catch (caught) {
      listError.value = `Cannot read the manifests: ${messageOf(caught)}`
    } finally {
      listLoaded.value = true
    }
  }

  async function loadOpen(): Promise<void> {
    const id = openId.value
    if (id === undefined) return
    try {
      const manifest = await getJson<ManifestDetail>(`/api/manifests/${path(id)}`)
      // Another manifest was opened meanwhile: this answer is stale.
      if (openId.value !== id) return
      open.value = manifest
      openError.value = undefined
    } catch (caught) {
      if (openId.value === id) openError.value = `Cannot read manifest ${id}: ${messageOf(caught)}`
    }
  }

  const reloadList = coalesced(loadList)
  const reloadOpen = coalesced(loadOpen)

  /** Shows manifest `id` (reads it now and whenever it changes). */
  function show(id: string): void {
    if (openId.value !== id) {
      openId.value = id
      openError.value = undefined
    }
    reloadOpen()
  }

  /** Stops following manifest `id` (its page was left). */
  function hide(id: string): void {
    if (openId.value === id) openId.value = undefined
  }

  /** Applies a manifest the node answered with, when it is the one on screen. */
  function shown(manifest: ManifestDetail): void {
    if (openId.value === manifest.id) {
      open.value = manifest
      openError.value = undefined
    }
    reloadList()
  }

  /** planned → departed. */
  async function depart(id: string, user: string, reason: string): Promise<ManifestDetail> {
    const manifest = await post<ManifestDetail>(`/api/manifests/${path(id)}/depart`, { user, ...(reason.trim() !== '' ? { reason } : {}) })
    shown(manifest)
    return manifest
  }

  /** departed | delivered → closed; the node requires a reason while a stop has no delivery. */
  async function close(id: string, user: string, reason: string): Promise<ManifestDetail> {
    const manifest = await post<ManifestDetail>(`/api/manifests/${path(id)}/close`, { user, ...(reason.trim() !== '' ? { reason } : {}) })
    shown(manifest)
    return manifest
  }

  const draftKey = (manifest: string, stop: string) => `${manifest}\u0000${stop}`

  /** What was typed for stop `stop` of `manifest`, created prefilled (received = shipped, rejected = 0) on first use. */
  function draft(manifest: string, stop: StopSummary): DeliveryDraft {
    const key = draftKey(manifest, stop.id)
    let found = drafts.get(key)
    if (!found) {
      found = reactive<DeliveryDraft>({
        lines: stop.lines.map((l) => ({ line: l.id, received: l.shipped, rejected: 0 })),
        receiver: '',
        drawn: '',
        typed: false,
        typedName: '',
        receivedAt: '',
        note: '',
      })
      drafts.set(key, found)
    }
    return found
  }

  /**
   * Records the delivery of `stop` from its draft. On success the draft is dropped and the
   * manifest read again (it now holds the proof); on failure the draft stays as typed.
   */
  async function deliver(manifest: string, stop: string, user: string, typed: DeliveryDraft): Promise<DeliveryOutcome> {
    const outcome = await post<DeliveryOutcome>(`/api/manifests/${path(manifest)}/stops/${path(stop)}/delivery`, { user, ...deliveryBody(typed) })
    drafts.delete(draftKey(manifest, stop))
    outcomes.value = new Map([...outcomes.value, [draftKey(manifest, stop), outcome]])
    if (openId.value === manifest) reloadOpen()
    reloadList()
    return outcome
  }

  /** The node's answer to the delivery of `stop` recorded from this page, if one was. */
  const outcomeOf = (manifest: string, stop: string): DeliveryOutcome | undefined => outcomes.value.get(draftKey(manifest, stop))

  /** Records a decision on review item `itemId` of `manifest`. */
  async function decide(manifest: string, itemId: string, user: string, note: string): Promise<ManifestReviewItem> {
    const answer = await post<{ item: ManifestReviewItem }>(`/api/manifests/${path(manifest)}/review/${path(itemId)}/decision`, { user, note })
    if (openId.value === manifest) await loadOpen()
    return answer.item
  }

  live.subscribe((e) => {
    if (e.event === 'hello') {
      reloadList()
      reloadOpen()
      return
    }
    // Receipts reach the ledger after the delivery (or at the next start): "in stock here" then changes.
    if (e.event === 'movements' && open.value?.stops.some((s) => s.receipts?.some((r) => !r.inLedger))) {
      reloadOpen()
      return
    }
    const data = isRecord(e.data) ? e.data : {}
    const aboutManifest = ((e.event === 'changed' || e.event === 'document') && data.kind === 'manifest') || (e.event === 'decision' && data.doc === 'manifest')
    if (!aboutManifest) return
    reloadList()
    if (data.id === openId.value) reloadOpen()
  })

  return { list, listError, listLoaded, openId, open, openError, loadList, reloadList, show, hide, depart, close, draft, deliver, outcomeOf, decide }
})
