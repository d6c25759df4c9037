/**
 * The deployment's catalog as forms need it (GET /api/catalog): products (and which are
 * lot-tracked), the adjustment reasons this site may use, and the sites. Read again on every
 * (re)connection to the node; it changes rarely (an import at the hub).
 */
import { defineStore } from 'pinia'
import { computed, ref, shallowRef } from 'vue'
import { getJson, messageOf } from '../api.ts'
import { coalesced, useLiveStore } from './live.ts'

export interface Product {
  sku: string
  name: string
  unit: string
  lotTracked: boolean
  /** False: withdrawn from the catalog; the node refuses new movements of it. */
  active: boolean
}
export interface Reason {
  code: string
  label: string
}
export interface Site {
  id: string
  name: string
  type: string
}

export const useCatalogStore = defineStore('catalog', () => {
  const live = useLiveStore()
  const products = shallowRef<readonly Product[]>([])
  const reasons = shallowRef<readonly Reason[]>([])
  const sites = shallowRef<readonly Site[]>([])
  const error = ref<string | undefined>()

  async function load(): Promise<void> {
    try {
      const c = await getJson<{ products: Product[]; reasons: Reason[]; sites: Site[] }>('/api/catalog')
      products.value = c.products
      reasons.value = c.reasons
      sites.value = c.sites
      error.value = undefined
    } catch (caught) {
      error.value = messageOf(caught)
    }
  }
  const reload = coalesced(load)
  live.subscribe((e) => {
    if (e.event === 'hello' || (e.event === 'changed' && (e.data as { kind?: string }).kind === 'catalog')) reload()
  })

  const bySku = computed(() => new Map(products.value.map((p) => [p.sku, p])))
  /** The product of `sku`, or undefined when the catalog does not have it. */
  const product = (sku: string): Product | undefined => bySku.value.get(sku)

  return { products, reasons, sites, error, load, product }
})
