/**
 * The site's review queue as the node derives it (GET /api/review): the items of its ledger and of
 * every order and manifest it holds, open ones first. Read again whenever anything they are derived
 * from may have changed (movements, a decision, an order, manifest or the ledger changed here or by
 * sync, a document arrived) and on every (re)connection. A decision is a command to the node: done
 * when the node says it is on disk, with its compensating movements posted.
 */
import { defineStore } from 'pinia'
import { computed, ref, shallowRef } from 'vue'
import { getJson, messageOf, post } from '../api.ts'
import { coalesced, shownIn, useLiveStore } from './live.ts'
import type { ReviewItem } from '../../schema/review.ts'

// The node's own types (type-only: nothing of src/schema reaches the page's bundle).
export type { ReviewItem, ReviewKind } from '../../schema/review.ts'

/** A compensating adjustment a ledger decision posts. */
export interface Adjustment {
  sku: string
  /** Signed, never 0. */
  delta: number
  reason: string
  lot?: string
}

/**
 * What a person decided. `adjustments` only on ledger items (posted by the node with the decision);
 * order and manifest items take the note alone.
 */
export interface Decision {
  user: string
  note: string
  adjustments?: Adjustment[]
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null

function isReviewItem(value: unknown): value is ReviewItem {
  return isRecord(value) && typeof value.id === 'string' && typeof value.kind === 'string' && typeof value.summary === 'string' && isRecord(value.details) && (value.status === 'open' || value.status === 'resolved')
}

/**
 * The path a decision on `item` is posted to: ledger items at /api/review, an order's or a
 * manifest's on that document (its id is in the item's details).
 */
export function decisionPath(item: ReviewItem): string {
  const id = encodeURIComponent(item.id)
  const owner = item.doc === 'order' ? item.details.order : item.doc === 'manifest' ? item.details.manifest : undefined
  if (item.doc === 'ledger') return `/api/review/${id}/decision`
  if (typeof owner !== 'string') throw new Error(`review item ${item.id} does not name its ${item.doc}`)
  return `/api/${item.doc === 'order' ? 'orders' : 'manifests'}/${encodeURIComponent(owner)}/review/${id}/decision`
}

/** The postings a ledger item shows (counts, or postings of one movement id), each with its posting key (`node:seq`). */
function postingsOf(item: ReviewItem): Array<Record<string, unknown>> {
  if (item.doc !== 'ledger') return []
  return [item.details.counts, item.details.postings].flatMap((list) => (Array.isArray(list) ? list.filter(isRecord) : []))
}

/** The events after which the queue may differ. */
const STALE_AFTER = new Set(['hello', 'movements', 'decision', 'changed', 'document'])

export const useReviewStore = defineStore('review', () => {
  const live = useLiveStore()
  const items = shallowRef<readonly ReviewItem[]>([])
  /** False until the first read answered: the page says "reading", not "nothing to review". */
  const loaded = ref(false)
  const error = ref<string | undefined>()
  /**
   * The item this page decided last, as the node answered (the page confirms it: the item's own
   * form may be gone already, since the node's events can re-read the queue before its answer).
   */
  const lastDecided = shallowRef<ReviewItem | undefined>()

  /** Reads the queue; on failure keeps the last good one and sets `error`. */
  async function load(): Promise<void> {
    try {
      const answer = await getJson<unknown>('/api/review')
      if (!isRecord(answer) || !Array.isArray(answer.items) || !answer.items.every(isReviewItem)) throw new Error('The site node sent a review queue this UI cannot read')
      items.value = answer.items
      loaded.value = true
      error.value = undefined
    } catch (caught) {
      error.value = `Cannot read the review queue: ${messageOf(caught)}`
    }
  }

  const reload = coalesced(load)

  const open = computed(() => items.value.filter((i) => i.status === 'open'))
  const decided = computed(() => items.value.filter((i) => i.status === 'resolved'))

  /**
   * Records `decision` on `item`; resolves with the item as the node now shows it (resolved) once
   * the decision and its compensating movements are on the node's disk, and reads the queue again. Throws an ApiError (with
   * the field the node refused) when refused or unreachable; nothing changes then.
   */
  async function decide(item: ReviewItem, decision: Decision): Promise<ReviewItem> {
    const body = item.doc === 'ledger' ? { user: decision.user, note: decision.note, adjustments: decision.adjustments ?? [] } : { user: decision.user, note: decision.note }
    const answer = await post<{ item: ReviewItem }>(decisionPath(item), body)
    lastDecided.value = { ...item, ...answer.item, status: 'resolved' }
    // The item leaves the open list when the queue is read again (a decision may clear or open others).
    reload()
    return answer.item
  }

  const page = shownIn(reload)
  live.subscribe((e) => {
    if (page.shown && STALE_AFTER.has(e.event)) reload()
  })

  return { items, open, decided, loaded, error, lastDecided, load, reload, decide, usePage: page.use }
})
