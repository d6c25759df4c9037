/**
 * Stock on hand and the site's identity, read from the site node's JSON API that served the page.
 *
 * The page holds no replica of the documents (docs/DESIGN.md, "How the app gets live data"): it
 * reads the node's JSON API and, once the app listens to `GET /api/events`, reads again what an
 * event says has changed.
 */
import { defineStore } from 'pinia'
import { ref, shallowRef } from 'vue'
import { listenToNode, type EventStream } from './events.ts'

/** One row of GET /api/stock. */
export interface StockItem {
  sku: string
  name: string
  unit: string
  onHand: number
}

/** The parts of GET /api/health that the UI shows. */
export interface SiteHealth {
  site: string
  node: string
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null

function isStockItem(value: unknown): value is StockItem {
  return isRecord(value) && typeof value.sku === 'string' && typeof value.name === 'string' && typeof value.unit === 'string' && typeof value.onHand === 'number'
}

/** GETs a same-origin JSON path; throws an Error whose message is fit to show to the user. */
async function getJson(path: string): Promise<unknown> {
  let res: Response
  try {
    res = await fetch(path, { headers: { accept: 'application/json' } })
  } catch {
    throw new Error(`Cannot reach the site node (${location.origin}). Is it running?`)
  }
  const body: unknown = await res.json().catch(() => undefined)
  if (!res.ok) {
    const reason = isRecord(body) && typeof body.error === 'string' ? body.error : res.statusText
    throw new Error(`The site node answered ${path} with ${res.status}: ${reason}`)
  }
  if (body === undefined) throw new Error(`The site node answered ${path} with something that is not JSON`)
  return body
}

export const useStockStore = defineStore('stock', () => {
  // Replaced whole on each load, never mutated in place: no deep reactivity needed.
  const items = shallowRef<readonly StockItem[]>([])
  const health = shallowRef<SiteHealth | undefined>()
  const loading = ref(false)
  const error = ref<string | undefined>()

  /** Reads stock and health together; on failure keeps the last good data and sets `error`. */
  async function load(): Promise<void> {
    loading.value = true
    try {
      const [stock, site] = await Promise.all([getJson('/api/stock'), getJson('/api/health')])
      if (!isRecord(stock) || !Array.isArray(stock.items) || !stock.items.every(isStockItem)) throw new Error('The site node sent a stock list this UI cannot read')
      if (!isRecord(site) || typeof site.site !== 'string' || typeof site.node !== 'string') throw new Error('The site node sent a status this UI cannot read')
      items.value = stock.items
      health.value = { site: site.site, node: site.node }
      error.value = undefined
    } catch (caught) {
      error.value = caught instanceof Error ? caught.message : String(caught)
    } finally {
      loading.value = false
    }
  }

  /** Whether the page hears the node's events now (false: it shows what it read last). */
  const live = ref(false)
  let stream: EventStream | undefined
  let reloading: Promise<void> | undefined
  let again = false

  /** Reads again, at most one read at a time and one more queued, however many events arrive. */
  function reload(): void {
    if (reloading) {
      again = true
      return
    }
    reloading = load().finally(() => {
      reloading = undefined
      if (again) {
        again = false
        reload()
      }
    })
  }

  /** Listens to the node: stock is read again when movements arrive, and on every (re)connection. */
  function listen(): void {
    if (stream) return
    stream = listenToNode(
      (e) => {
        if (e.event === 'hello' || e.event === 'movements') reload()
      },
      (connected) => (live.value = connected),
    )
  }

  function stopListening(): void {
    stream?.stop()
    stream = undefined
    live.value = false
  }

  return { items, health, loading, error, live, load, listen, stopListening }
})
