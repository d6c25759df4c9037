/**
 * One item as its page shows it: on hand, its lots with their expiry (GET /api/stock/:sku) and its
 * movements, newest first (GET /api/movements?sku=). Read again when the node says movements of
 * that SKU arrived.
 */
import { defineStore } from 'pinia'
import { ref, shallowRef } from 'vue'
import { getJson, messageOf } from '../api.ts'
import { coalesced, shownIn, useLiveStore } from './live.ts'
import type { MovementView } from './stock.ts'

export interface ItemDetail {
  sku: string
  name: string
  unit: string
  onHand: number
  lotTracked: boolean
  lots?: Array<{ lot: string; expiry: string | null; onHand: number }>
  notInLots?: number
}

/** How many movements the page reads (and charts). */
export const ITEM_MOVEMENTS = 500

export const useItemStore = defineStore('item', () => {
  const live = useLiveStore()
  const sku = ref<string | undefined>()
  const item = shallowRef<ItemDetail | undefined>()
  const movements = shallowRef<readonly MovementView[]>([])
  const total = ref(0)
  const error = ref<string | undefined>()

  async function load(): Promise<void> {
    const asked = sku.value
    if (asked === undefined) return
    try {
      const path = encodeURIComponent(asked)
      const [detail, list] = await Promise.all([getJson<ItemDetail>(`/api/stock/${path}`), getJson<{ movements: MovementView[]; total: number }>(`/api/movements?sku=${path}&limit=${ITEM_MOVEMENTS}`)])
      if (asked !== sku.value) return
      item.value = detail
      movements.value = list.movements
      total.value = list.total
      error.value = undefined
    } catch (caught) {
      if (asked === sku.value) error.value = messageOf(caught)
    }
  }
  const reload = coalesced(load)

  /** Shows `next` (clears what another item's page showed). */
  function open(next: string): void {
    if (next !== sku.value) {
      sku.value = next
      item.value = undefined
      movements.value = []
      total.value = 0
      error.value = undefined
    }
    reload()
  }

  const page = shownIn(reload)
  live.subscribe((e) => {
    if (sku.value === undefined || !page.shown) return
    if (e.event === 'hello') reload()
    if (e.event === 'movements') {
      const moved = (e.data as { movements?: Array<{ sku?: string }> }).movements ?? []
      if (moved.some((m) => m.sku === sku.value)) reload()
    }
  })

  return { sku, item, movements, total, error, open, usePage: page.use }
})
