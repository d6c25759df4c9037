/**
 * Orders as the site node shows them (GET /api/orders, GET /api/orders/:id): the list, and the one
 * order a page has open with its events, history and review items. Both are read again when the
 * node says an order changed (here, by sync, or a new one arrived) and on every (re)connection.
 * Changes are commands to the node (src/node/http/orderRoutes.ts): each resolves with the order
 * as it now is, once it is on the node's disk, and the store shows that answer at once.
 */
import { defineStore } from 'pinia'
import { ref, shallowRef } from 'vue'
import { ApiError, getJson, messageOf, post } from '../api.ts'
import { coalesced, useLiveStore } from './live.ts'

export type OrderStatus = 'draft' | 'submitted' | 'approved' | 'rejected' | 'fulfilled' | 'cancelled'

export type OrderAction = 'submit' | 'approve' | 'reject' | 'fulfil' | 'cancel'

export interface OrderLine {
  sku: string
  requested: number
  /** Once approved: the quantity approved (0: the line was refused); null before. */
  approved: number | null
  lot?: string
}

/** One order of GET /api/orders. */
export interface OrderSummary {
  id: string
  status: OrderStatus
  /** The requesting site. */
  from: string
  /** The supplying site. */
  to: string
  lines: OrderLine[]
  /** What a person may do next, as the node's rules say (src/schema/order.ts ORDER_TRANSITIONS). */
  actions: OrderAction[]
}

/** One status change: who moved the order from what to what, and when. */
export interface OrderEvent {
  from: string
  to: string
  by: string
  device: string
  at: number
  reason?: string
}

/** One change of the document: who did what (`op`, e.g. 'order.setLine'), when. */
export interface OrderHistoryEntry {
  op: string
  user: string
  device?: string
  ref?: string
  at: number
}

export interface OrderReviewItem {
  id: string
  kind: string
  summary: string
  details: Record<string, unknown>
  status: 'open' | 'resolved'
  decision?: { by: string; at: number; note: string }
}

/** GET /api/orders/:id, and the answer to every command. */
export interface OrderDetail extends OrderSummary {
  createdBy: string
  createdAt: number
  events: OrderEvent[]
  review: OrderReviewItem[]
  history: OrderHistoryEntry[]
}

/** What the approve form sends: approved quantities of some lines (the others as requested), an optional note. */
export interface ApproveInput {
  lines: Array<{ sku: string; approved: number }>
  reason?: string
}

const path = (id: string) => `/api/orders/${encodeURIComponent(id)}`

export const useOrdersStore = defineStore('orders', () => {
  const live = useLiveStore()
  // Replaced whole on each read or answer, never mutated in place.
  const list = shallowRef<readonly OrderSummary[]>([])
  const listError = ref<string | undefined>()
  const listLoaded = ref(false)
  /** The order a page has open, as last read; undefined until read. */
  const current = shallowRef<OrderDetail | undefined>()
  const currentId = ref<string | undefined>()
  /** Why the open order cannot be shown now (the last read stays shown when there is one). */
  const currentError = ref<string | undefined>()
  /** True when the node says it holds no such order. */
  const notFound = ref(false)

  // Counts the command answers shown: a read that began before the latest one may be older than
  // it, so it is not shown; it is read once more instead.
  let answers = 0

  async function loadList(): Promise<void> {
    const seen = answers
    try {
      const answer = await getJson<{ orders: OrderSummary[] }>('/api/orders')
      if (seen !== answers) return reloadList()
      // Newest first: ids made here start with their creation time.
      list.value = [...answer.orders].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
      listError.value = undefined
      listLoaded.value = true
    } catch (caught) {
      listError.value = `Cannot read the orders: ${messageOf(caught)}`
    }
  }

  async function loadCurrent(): Promise<void> {
    const id = currentId.value
    if (id === undefined) return
    const seen = answers
    try {
      const answer = await getJson<OrderDetail>(path(id))
      if (id !== currentId.value) return
      if (seen !== answers) return reloadCurrent()
      current.value = answer
      currentError.value = undefined
      notFound.value = false
    } catch (caught) {
      if (id !== currentId.value) return
      notFound.value = caught instanceof ApiError && caught.status === 404
      currentError.value = notFound.value ? `This site holds no order ${id}.` : `Cannot read order ${id}: ${messageOf(caught)}`
    }
  }

  const reloadList = coalesced(loadList)
  const reloadCurrent = coalesced(loadCurrent)

  /** Opens order `id` (the detail page); reads it, keeping what is shown if it is the same order. */
  function open(id: string): void {
    if (currentId.value !== id) {
      currentId.value = id
      current.value = undefined
      currentError.value = undefined
      notFound.value = false
    }
    reloadCurrent()
  }

  /** Shows a command's answer at once: the open order, and its row in the list. */
  function show(order: OrderDetail): OrderDetail {
    answers++
    if (order.id === currentId.value) {
      current.value = order
      currentError.value = undefined
      notFound.value = false
    }
    const row: OrderSummary = { id: order.id, status: order.status, from: order.from, to: order.to, lines: order.lines, actions: order.actions }
    list.value = list.value.some((o) => o.id === order.id) ? list.value.map((o) => (o.id === order.id ? row : o)) : [row, ...list.value]
    return order
  }

  /** Raises a draft order `{id, from, to}` (from: this site); the id comes from the caller so a retry is the same order. */
  async function create(user: string, order: { id: string; from: string; to: string }): Promise<OrderDetail> {
    const answer = await post<OrderDetail>('/api/orders', { ...order, user })
    // The page opens it next: show it there without waiting for a read.
    currentId.value = answer.id
    return show(answer)
  }

  /** Adds a draft line, or changes its requested quantity. */
  async function setLine(id: string, user: string, line: { sku: string; requested: number }): Promise<OrderDetail> {
    return show(await post<OrderDetail>(`${path(id)}/lines`, { ...line, user }))
  }

  /** Removes the draft line of `sku`. */
  async function removeLine(id: string, user: string, sku: string): Promise<OrderDetail> {
    return show(await post<OrderDetail>(`${path(id)}/lines/${encodeURIComponent(sku)}/remove`, { user }))
  }

  /**
   * Moves the order's status. `submit` and `fulfil` take an optional note, `reject` and `cancel` a
   * required reason, `approve` approved quantities (ApproveInput).
   */
  async function transition(id: string, user: string, action: OrderAction, input: { reason?: string } | ApproveInput = {}): Promise<OrderDetail> {
    return show(await post<OrderDetail>(`${path(id)}/${action}`, { ...input, user }))
  }

  /** Records the decision on review item `itemId` of order `id`; answers the item as it now is. */
  async function decide(id: string, user: string, itemId: string, note: string): Promise<OrderReviewItem> {
    const answer = await post<{ item: OrderReviewItem }>(`${path(id)}/review/${encodeURIComponent(itemId)}/decision`, { note, user })
    if (id === currentId.value && current.value) {
      answers++
      current.value = { ...current.value, review: current.value.review.map((i) => (i.id === itemId ? answer.item : i)) }
    }
    reloadCurrent()
    return answer.item
  }

  live.subscribe((e) => {
    if (e.event === 'hello') {
      reloadList()
      reloadCurrent()
      return
    }
    if (e.event !== 'changed' && e.event !== 'document' && e.event !== 'decision') return
    const data = e.data as { kind?: string; doc?: string; id?: string }
    if ((data.kind ?? data.doc) !== 'order') return
    reloadList()
    if (data.id === currentId.value) reloadCurrent()
  })

  return { list, listError, listLoaded, current, currentId, currentError, notFound, loadList, reloadList, open, create, setLine, removeLine, transition, decide }
})
