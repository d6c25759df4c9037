/**
 * Orders over the site node's local API: create, edit the draft lines, move the status, decide
 * review items, and read one order with its history. The routes parse the request, call the node
 * services of src/node/orders.ts and format the answer.
 */
import type { DocHandle } from '@automerge/automerge-repo'
import { approve, cancel, fulfil, orderLines, orderReviewItems, orderStatus, reject, removeLine, submit } from '../../docs/order.ts'
import { InputError } from '../../schema/errors.ts'
import { ORDER_TRANSITIONS, type OrderDoc, type OrderStatus } from '../../schema/order.ts'
import { str } from '../../schema/strings.ts'
import { changeOrder, createOrder, decideOrderReview, findOrder, setOrderLine } from '../orders.ts'
import type { SiteNode } from '../siteNode.ts'
import { historyOf, requestContext } from './documentRequests.ts'
import type { Route, RouteResult } from './routes.ts'

// ---- orders --------------------------------------------------------------------------------

const ok = (body: unknown): RouteResult => ({ status: 200, body })

/** The request (POST /api/orders/:id/<action>) that moves an order to each status. */
const ACTION_TO: Partial<Record<OrderStatus, Transition>> = { submitted: 'submit', approved: 'approve', rejected: 'reject', fulfilled: 'fulfil', cancelled: 'cancel' }

function orderView(id: string, doc: OrderDoc) {
  const status = orderStatus(doc)
  // What a person may do next: the page offers these and no other.
  const actions = ORDER_TRANSITIONS[status].map((to) => ACTION_TO[to]!)
  return { id, status, from: str(doc.from), to: str(doc.to), lines: orderLines(doc), actions }
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

const TRANSITIONS = { submit, approve, reject, fulfil, cancel } as const
type Transition = keyof typeof TRANSITIONS

/** Applies `op` to order `id` as the body's user; answers the order as it now is. */
async function change(node: SiteNode, id: string, body: unknown, opName: string, op: Parameters<typeof changeOrder>[3]): Promise<RouteResult> {
  const { ctx, input } = requestContext(node, body)
  const handle = await changeOrder(node, id, opName, op, input, ctx)
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
      const handle = await createOrder(node, input, ctx)
      return { status: 201, body: orderDetail(str(handle.doc().id), handle as DocHandle<unknown>) }
    },
  },
  {
    method: 'GET',
    pattern: /^\/api\/orders\/(?<id>[^/]+)$/,
    async handle({ node, params }) {
      const id = params.id!
      return ok(orderDetail(id, (await findOrder(node, id)) as DocHandle<unknown>))
    },
  },
  {
    method: 'POST',
    pattern: /^\/api\/orders\/(?<id>[^/]+)\/lines$/,
    async handle({ node, params, body }) {
      const { ctx, input } = requestContext(node, body)
      return ok(orderDetail(params.id!, (await setOrderLine(node, params.id!, input, ctx)) as DocHandle<unknown>))
    },
  },
  {
    method: 'POST',
    pattern: /^\/api\/orders\/(?<id>[^/]+)\/lines\/(?<sku>[^/]+)\/remove$/,
    handle: ({ node, params, body }) =>
      change(node, params.id!, body, 'order.removeLine', (d, input, ctx) => {
        if (input.sku !== undefined && input.sku !== params.sku) throw new InputError('sku', 'is given by the path; leave it out of the body')
        removeLine(d, { ...input, sku: params.sku }, ctx)
      }),
  },
  {
    method: 'POST',
    pattern: /^\/api\/orders\/(?<id>[^/]+)\/(?<action>submit|approve|reject|fulfil|cancel)$/,
    handle: ({ node, params, body }) => {
      const action = params.action as Transition
      return change(node, params.id!, body, `order.${action}`, TRANSITIONS[action])
    },
  },
  {
    method: 'POST',
    pattern: /^\/api\/orders\/(?<id>[^/]+)\/review\/(?<itemId>[^/]+)\/decision$/,
    async handle({ node, params, body }) {
      const { ctx, input } = requestContext(node, body)
      return { status: 201, body: { item: await decideOrderReview(node, params.id!, params.itemId!, input, ctx) } }
    },
  },
]
