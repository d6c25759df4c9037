/**
 * Orders over the site node's local API: create, edit the draft lines, move the status, decide
 * review items, and read one order with its history. Every write goes through `node.commit`
 * (durable before the answer) with a change note `{op, user, device, ref: orderId}`; the document
 * operations validate first and write nothing when they refuse.
 */
import type { DocHandle } from '@automerge/automerge-repo'
import { approve, cancel, createOrder, decideOrderItem, fulfil, orderLines, orderReviewItems, orderStatus, reject, removeLine, setLine, submit } from '../../docs/order.ts'
import { addOrder } from '../../docs/siteIndex.ts'
import type { ChangeContext } from '../../schema/changeContext.ts'
import { InputError, parseInput } from '../../schema/errors.ts'
import { CreateOrderInput, type OrderDoc } from '../../schema/order.ts'
import { str } from '../../schema/strings.ts'
import type { SiteNode } from '../siteNode.ts'
import { createDocument, historyOf, notFound, noteFor, requestContext, serialCreate } from './documentRequests.ts'
import type { Route, RouteResult } from './routes.ts'

// ---- orders --------------------------------------------------------------------------------

const ok = (body: unknown): RouteResult => ({ status: 200, body })

function orderView(id: string, doc: OrderDoc) {
  return { id, status: orderStatus(doc), from: str(doc.from), to: str(doc.to), lines: orderLines(doc) }
}

function orderDetail(id: string, handle: DocHandle<unknown>) {
  const doc = handle.doc() as OrderDoc
  return {
    ...orderView(id, doc),
    createdBy: str(doc.createdBy),
    createdAt: doc.createdAt,
    events: Array.from(doc.events ?? []).map((e) => ({
      from: str(e.from),
      to: str(e.to),
      by: str(e.by),
      device: str(e.device),
      at: e.at,
      ...(e.reason !== undefined ? { reason: str(e.reason) } : {}),
    })),
    review: orderReviewItems(doc),
    history: historyOf(handle),
  }
}

/** The loaded order `id` (after the background load), or undefined. */
async function findOrder(node: SiteNode, id: string): Promise<DocHandle<OrderDoc> | undefined> {
  await node.fullyLoaded
  return node.orders.get(id) as DocHandle<OrderDoc> | undefined
}

const TRANSITIONS = { submit, approve, reject, fulfil, cancel } as const
type Transition = keyof typeof TRANSITIONS

/** Applies `op` to order `id` as the body's user; answers the order as it now is. */
async function changeOrder(
  node: SiteNode,
  id: string,
  body: unknown,
  opName: string,
  op: (doc: OrderDoc, input: Record<string, unknown>, ctx: ChangeContext) => void,
): Promise<RouteResult> {
  const handle = await findOrder(node, id)
  if (!handle) return notFound('order', id)
  const { ctx, input } = requestContext(node, body)
  await node.commit(handle, (d) => op(d, input, ctx), noteFor(opName, ctx, id))
  return ok(orderDetail(id, handle as DocHandle<unknown>))
}

export const orderRoutes: Route[] = [
  {
    method: 'GET',
    pattern: /^\/api\/orders$/,
    async handle({ node }) {
      await node.fullyLoaded
      return ok({ orders: [...node.orders].map(([id, h]) => orderView(id, h.doc() as OrderDoc)) })
    },
  },
  {
    method: 'POST',
    pattern: /^\/api\/orders$/,
    async handle({ node, body }) {
      const { ctx, input } = requestContext(node, body)
      // Validate before any document exists: a refused request leaves nothing behind.
      const order = parseInput(CreateOrderInput, input)
      const readOnlyIndex = node.readOnly.get(node.index.url)
      if (readOnlyIndex) throw readOnlyIndex
      return serialCreate(node, async () => {
        if (node.index.doc().orders?.[order.id] !== undefined || node.orders.has(order.id)) {
          return { status: 409, body: { error: `order ${order.id} already exists`, field: 'id' } }
        }
        const handle = await createDocument<OrderDoc>(node, (d) => createOrder(d, order, ctx), noteFor('order.create', ctx, order.id))
        await node.commit(node.index, (d) => addOrder(d, order.id, handle.url), noteFor('siteIndex.addOrder', ctx, order.id))
        node.orders.set(order.id, handle as DocHandle<unknown>)
        return { status: 201, body: orderDetail(order.id, handle as DocHandle<unknown>) }
      })
    },
  },
  {
    method: 'GET',
    pattern: /^\/api\/orders\/(?<id>[^/]+)$/,
    async handle({ node, params }) {
      const id = params.id!
      const handle = await findOrder(node, id)
      if (!handle) return notFound('order', id)
      return ok(orderDetail(id, handle as DocHandle<unknown>))
    },
  },
  {
    method: 'POST',
    pattern: /^\/api\/orders\/(?<id>[^/]+)\/lines$/,
    handle: ({ node, params, body }) => changeOrder(node, params.id!, body, 'order.setLine', setLine),
  },
  {
    method: 'POST',
    pattern: /^\/api\/orders\/(?<id>[^/]+)\/lines\/(?<sku>[^/]+)\/remove$/,
    handle: ({ node, params, body }) =>
      changeOrder(node, params.id!, body, 'order.removeLine', (d, input, ctx) => {
        if (input.sku !== undefined && input.sku !== params.sku) throw new InputError('sku', 'is given by the path; leave it out of the body')
        removeLine(d, { ...input, sku: params.sku }, ctx)
      }),
  },
  {
    method: 'POST',
    pattern: /^\/api\/orders\/(?<id>[^/]+)\/(?<action>submit|approve|reject|fulfil|cancel)$/,
    handle: ({ node, params, body }) => {
      const action = params.action as Transition
      return changeOrder(node, params.id!, body, `order.${action}`, TRANSITIONS[action])
    },
  },
  {
    method: 'POST',
    pattern: /^\/api\/orders\/(?<id>[^/]+)\/review\/(?<itemId>[^/]+)\/decision$/,
    async handle({ node, params, body }) {
      const id = params.id!
      const itemId = params.itemId!
      const handle = await findOrder(node, id)
      if (!handle) return notFound('order', id)
      const { ctx, input } = requestContext(node, body)
      const item = orderReviewItems(handle.doc()).find((i) => i.id === itemId)
      if (!item) return { status: 404, body: { error: `no review item ${itemId} on order ${id}` } }
      if (item.status === 'resolved') return { status: 409, body: { error: `${itemId} was already decided by ${item.decision?.by}` } }
      await node.commit(handle, (d) => decideOrderItem(d, itemId, input, ctx), noteFor('order.decide', ctx, id))
      return { status: 201, body: { item: orderReviewItems(handle.doc()).find((i) => i.id === itemId) } }
    },
  },
]
