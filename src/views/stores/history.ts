/**
 * Who did what and when, one document at a time: the site's ledger (GET /api/history/ledger: every
 * movement and every change to the ledger itself, decisions included) or one order or manifest
 * (the `history` of GET /api/orders/:id, /api/manifests/:id). Newest first. The list of documents
 * comes from GET /api/orders and /api/manifests. Both are read again when the node says something
 * changed and on every (re)connection.
 */
import { defineStore } from 'pinia'
import { ref, shallowRef, watch } from 'vue'
import { getJson, messageOf } from '../api.ts'
import { coalesced, shownIn, useLiveStore } from './live.ts'

/** How many ledger entries the page reads (the newest). */
export const LEDGER_HISTORY_LIMIT = 200

/** One line of a document's history (src/docs/history.ts, src/node/ledger.ts `ledgerHistory`). */
export interface HistoryEntry {
  /** What was done, e.g. 'ledger.receipt', 'ledger.decide', 'order.submit'. */
  op: string
  user: string
  device?: string
  /** A movement id, a review item id, a journal… */
  ref?: string
  /** unix ms (changes to documents: whole seconds). */
  at: number
  actor: string
  hash: string
  /** Ledger movements: what moved. */
  movement?: { id: string; kind: string; sku: string; delta: number; reason?: string; reference?: string }
}

/** A document whose history can be shown: `ledger`, `order:<id>` or `manifest:<id>`. */
export interface HistoryDocument {
  key: string
  label: string
}

const LEDGER: HistoryDocument = { key: 'ledger', label: 'Site ledger (stock movements and review decisions)' }

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null
const isEntry = (value: unknown): value is HistoryEntry => isRecord(value) && typeof value.op === 'string' && typeof value.user === 'string' && typeof value.at === 'number'

function entriesOf(value: unknown, field: string): HistoryEntry[] {
  const list = isRecord(value) ? value[field] : undefined
  if (!Array.isArray(list) || !list.every(isEntry)) throw new Error('The site node sent a history this UI cannot read')
  return list
}

export const useHistoryStore = defineStore('history', () => {
  const live = useLiveStore()
  const documents = shallowRef<readonly HistoryDocument[]>([LEDGER])
  /** The document shown (a key of `documents`). */
  const selected = ref(LEDGER.key)
  const entries = shallowRef<readonly HistoryEntry[]>([])
  /** The document `entries` belong to ('' before the first read). */
  const shown = ref('')
  const error = ref<string | undefined>()

  async function loadDocuments(): Promise<void> {
    try {
      const [orders, manifests] = await Promise.all([
        getJson<{ orders: Array<{ id: string; status: string; from: string; to: string }> }>('/api/orders'),
        getJson<{ manifests: Array<{ id: string; status: string; from: string; carrier: string }> }>('/api/manifests'),
      ])
      documents.value = [
        LEDGER,
        ...orders.orders.map((o) => ({ key: `order:${o.id}`, label: `Order ${o.id} (${o.from} → ${o.to}, ${o.status})` })),
        ...manifests.manifests.map((m) => ({ key: `manifest:${m.id}`, label: `Delivery ${m.id} (from ${m.from}, ${m.status})` })),
      ]
    } catch (caught) {
      error.value = `Cannot read the list of orders and deliveries: ${messageOf(caught)}`
    }
  }

  /** Reads the selected document's history, newest first; on failure keeps the last good one. */
  async function loadEntries(): Promise<void> {
    const key = selected.value
    try {
      let list: HistoryEntry[]
      if (key === LEDGER.key) list = entriesOf(await getJson<unknown>(`/api/history/ledger?limit=${LEDGER_HISTORY_LIMIT}`), 'entries')
      else {
        const [kind, ...rest] = key.split(':')
        const path = kind === 'order' ? 'orders' : 'manifests'
        // A document's history is oldest first, in causal order within a second (Automerge keeps
        // whole seconds): reversed, it is newest first without reordering changes of one second.
        list = entriesOf(await getJson<unknown>(`/api/${path}/${encodeURIComponent(rest.join(':'))}`), 'history').slice().reverse()
      }
      if (key !== selected.value) return // another document was chosen meanwhile
      entries.value = list
      shown.value = key
      error.value = undefined
    } catch (caught) {
      if (key === selected.value) error.value = `Cannot read the history: ${messageOf(caught)}`
    }
  }

  const reloadDocuments = coalesced(loadDocuments)
  const reloadEntries = coalesced(loadEntries)
  watch(selected, () => reloadEntries())

  const page = shownIn(() => {
    reloadDocuments()
    reloadEntries()
  })
  live.subscribe((e) => {
    if (!page.shown) return
    if (e.event === 'hello' || e.event === 'document') reloadDocuments()
    if (e.event === 'changed') {
      const { kind, id } = (isRecord(e.data) ? e.data : {}) as { kind?: string; id?: string }
      if (kind !== 'ledger') reloadDocuments() // its status is in its label
      if ((kind === 'ledger' && selected.value === LEDGER.key) || `${kind}:${id}` === selected.value) reloadEntries()
    }
    if (e.event === 'hello' || ((e.event === 'movements' || e.event === 'decision') && selected.value === LEDGER.key)) reloadEntries()
  })

  return { documents, selected, entries, shown, error, loadDocuments, loadEntries, reloadDocuments, reloadEntries, usePage: page.use }
})
