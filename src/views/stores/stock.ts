/**
 * Stock on hand, what expires soon, and the site's identity, read from the site node's JSON API;
 * movements recorded from this page. Read again whenever the node says movements arrived (here,
 * from a scanner, or from another device) and whenever the event stream (re)connects.
 *
 * The page holds no replica of the documents (docs/DESIGN.md, "How the app gets live data").
 */
import { defineStore } from 'pinia'
import { ref, shallowRef } from 'vue'
import { getJson, messageOf, post } from '../api.ts'
import { coalesced, useLiveStore } from './live.ts'

/** One row of GET /api/stock. */
export interface StockItem {
  sku: string
  name: string
  unit: string
  onHand: number
  lotTracked?: boolean
}

/** The parts of GET /api/health that the UI shows. */
export interface SiteHealth {
  site: string
  node: string
}

/** One lot of GET /api/expiring. */
export interface ExpiringLot {
  sku: string
  name: string
  lot: string
  expiry: string
  onHand: number
  expired: boolean
  daysLeft: number
  writeOff?: { kind: 'adjustment'; sku: string; lot: string; delta: number; reason: string }
}

/** What the entry form sends (POST /api/movements), without the user. */
export type MovementDraft =
  | { kind: 'receipt' | 'issue'; sku: string; quantity: number; lot?: string; expiry?: string; reference?: string; reason?: string }
  | { kind: 'adjustment'; sku: string; delta: number; reason: string; lot?: string; reference?: string }
  | { kind: 'count'; sku: string; counted: number; lot?: string; reason?: string; reference?: string }

/** A movement as the node shows it (GET /api/movements, POST answers, events). */
export interface MovementView {
  id: string
  kind: string
  sku: string
  delta: number
  counted?: number
  lots?: Array<{ lot: string; delta: number; expiry?: string }>
  at: number
  user: string
  device?: string
  reason?: string
  reference?: string
  posting: string
  status?: 'recorded' | 'duplicate'
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null

function isStockItem(value: unknown): value is StockItem {
  return isRecord(value) && typeof value.sku === 'string' && typeof value.name === 'string' && typeof value.unit === 'string' && typeof value.onHand === 'number'
}

export const useStockStore = defineStore('stock', () => {
  const live = useLiveStore()
  // Replaced whole on each load, never mutated in place: no deep reactivity needed.
  const items = shallowRef<readonly StockItem[]>([])
  const expiring = shallowRef<readonly ExpiringLot[]>([])
  const health = shallowRef<SiteHealth | undefined>()
  const loading = ref(false)
  const error = ref<string | undefined>()

  /** Reads stock, what expires within 30 days and health; on failure keeps the last good data and sets `error`. */
  /** Answers to commands shown so far: a read begun before one of them is older than what is on screen. */
  let answers = 0

  async function load(): Promise<void> {
    loading.value = true
    const seen = answers
    try {
      const [stock, soon, site] = await Promise.all([getJson<unknown>('/api/stock'), getJson<{ items: ExpiringLot[] }>('/api/expiring?days=30'), getJson<unknown>('/api/health')])
      if (!isRecord(stock) || !Array.isArray(stock.items) || !stock.items.every(isStockItem)) throw new Error('The site node sent a stock list this UI cannot read')
      if (!isRecord(site) || typeof site.site !== 'string' || typeof site.node !== 'string') throw new Error('The site node sent a status this UI cannot read')
      if (seen !== answers) {
        // Begun before a movement recorded here was shown: read again rather than show older stock.
        reload()
        return
      }
      items.value = stock.items
      expiring.value = Array.isArray(soon.items) ? soon.items : []
      health.value = { site: site.site, node: site.node }
      error.value = undefined
    } catch (caught) {
      error.value = `Cannot read stock: ${messageOf(caught)}`
    } finally {
      loading.value = false
    }
  }
  const reload = coalesced(load)

  /**
   * Records one movement; resolves with the node's answer once it is on the node's disk, and shows
   * its effect at once. Throws an ApiError (field, code) when the node refuses it or cannot be reached.
   */
  async function record(id: string, user: string, draft: MovementDraft): Promise<MovementView> {
    const answer = await post<MovementView>('/api/movements', { id, user, ...draft })
    answers++
    if (answer.status === 'recorded') items.value = items.value.map((i) => (i.sku === answer.sku ? { ...i, onHand: i.onHand + answer.delta } : i))
    reload()
    return answer
  }

  live.subscribe((e) => {
    // A product added to the catalog shows in the list at once (with nothing on hand).
    if (e.event === 'hello' || e.event === 'movements' || (e.event === 'changed' && (e.data as { kind?: string }).kind === 'catalog')) reload()
  })

  return { items, expiring, health, loading, error, load, reload, record }
})
