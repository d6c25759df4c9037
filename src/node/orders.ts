/**
 * Order services of a site node: create an order (registered in the site index), apply an
 * operation to one, decide its review items. Every write is durable before it returns and names
 * the person and device (`ctx`); the document operations validate and write nothing when they refuse.
 */
import type { DocHandle } from '@automerge/automerge-repo'
import { checkOrderAgainstCatalog, checkOrderLineAgainstCatalog } from '../docs/catalogRules.ts'
import { createOrder as initOrder, decideOrderItem, orderReviewItems, setLine } from '../docs/order.ts'
import type { ChangeContext } from '../schema/changeContext.ts'
import { parseInput } from '../schema/errors.ts'
import { CreateOrderInput, type OrderDoc, SetLineInput } from '../schema/order.ts'
import type { ReviewItem } from '../schema/review.ts'
import { changeIndexed, createIndexedDocument, findIndexed, noteFor } from './documents.ts'
import { ConflictError, NotFoundError, RuleError } from '../schema/errors.ts'
import type { SiteNode } from './siteNode.ts'

/** The order `id` this node holds (after the background load); NotFoundError otherwise. */
export function findOrder(node: SiteNode, id: string): Promise<DocHandle<OrderDoc>> {
  return findIndexed<OrderDoc>(node, 'order', id)
}

/** Creates a draft order `{ id, from, to, lines? }`. Validated before any document exists. */
export async function createOrder(node: SiteNode, input: unknown, ctx: ChangeContext): Promise<DocHandle<OrderDoc>> {
  const order = parseInput(CreateOrderInput, input)
  requireThisSite(node, order.from, 'raise an order')
  checkOrderAgainstCatalog(node.catalog.doc(), order)
  return createIndexedDocument<OrderDoc>(node, 'order', order.id, (d) => initOrder(d, order, ctx), noteFor('order.create', ctx, order.id))
}

/** Applies `op` (a document operation of src/docs/order.ts) to order `id`, durably. */
export function changeOrder(
  node: SiteNode,
  id: string,
  opName: string,
  op: (doc: OrderDoc, input: Record<string, unknown>, ctx: ChangeContext) => void,
  input: Record<string, unknown>,
  ctx: ChangeContext,
): Promise<DocHandle<OrderDoc>> {
  return changeIndexed<OrderDoc>(node, 'order', id, opName, op, input, ctx)
}

/** Adds or changes a draft line `{ sku, requested }` of order `id`; the SKU must be in the catalog. */
export async function setOrderLine(node: SiteNode, id: string, input: Record<string, unknown>, ctx: ChangeContext): Promise<DocHandle<OrderDoc>> {
  checkOrderLineAgainstCatalog(node.catalog.doc(), parseInput(SetLineInput, input))
  return changeOrder(node, id, 'order.setLine', setLine, input, ctx)
}

/** Decides review item `itemId` of order `id` `{ note }`. NotFoundError / ConflictError as the item is unknown / decided. */
export async function decideOrderReview(node: SiteNode, id: string, itemId: string, input: unknown, ctx: ChangeContext): Promise<ReviewItem> {
  const handle = await findOrder(node, id)
  const item = orderReviewItems(handle.doc()).find((i) => i.id === itemId)
  if (!item) throw new NotFoundError(`no review item ${itemId} on order ${id}`)
  if (item.status === 'resolved') throw new ConflictError(`${itemId} was already decided by ${item.decision?.by}`)
  await node.commit(handle, (d) => decideOrderItem(d, itemId, input, ctx), noteFor('order.decide', ctx, id))
  node.events.emit('decision', { doc: 'order', id, item: itemId, by: ctx.user })
  return orderReviewItems(handle.doc()).find((i) => i.id === itemId)!
}

/**
 * A site raises its own orders: the relay shares a document with the parties it names only when it
 * comes from the site it says it is from (src/relay/access.ts). (A manifest may be typed in by the
 * site receiving it, from a paper delivery note of a hub that does not run stockmesh: it is then
 * this site's own record, shared with nobody.)
 */
export function requireThisSite(node: SiteNode, from: string, what: string): void {
  if (from !== node.identity.site) throw new RuleError('not-this-site', `this is site ${node.identity.site}: it cannot ${what} from ${from}`, 'from')
}
