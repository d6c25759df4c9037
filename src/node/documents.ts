/**
 * Creating a document a site lists in its index (an order, a manifest): serialised per node so
 * two requests for one id cannot both pass the duplicate check, created and registered durably.
 */
import type { DocHandle } from '@automerge/automerge-repo'
import type { ChangeNote } from '../docs/history.ts'
import { addManifest, addOrder } from '../docs/siteIndex.ts'
import type { ChangeContext } from '../schema/changeContext.ts'
import { ConflictError, NotFoundError } from '../schema/errors.ts'
import type { SiteNode } from './siteNode.ts'

/** A kind of document a site lists in its index. */
export type IndexedKind = 'order' | 'manifest'

/** The change note of an operation made with `ctx` on document `ref`. */
export function noteFor(op: string, ctx: ChangeContext, ref: string): ChangeNote {
  return { op, user: ctx.user, device: ctx.device, ref }
}

/** The document of `kind` with `id` this node holds (after the background load); NotFoundError otherwise. */
export async function findIndexed<T>(node: SiteNode, kind: IndexedKind, id: string): Promise<DocHandle<T>> {
  await node.fullyLoaded
  const handle = (kind === 'order' ? node.orders : node.manifests).get(id)
  if (!handle) throw new NotFoundError(`no ${kind} ${id} on this site`)
  return handle as DocHandle<T>
}

/** Applies `op` (a document operation of src/docs) to the document of `kind` with `id`, durably. */
export async function changeIndexed<T>(
  node: SiteNode,
  kind: IndexedKind,
  id: string,
  opName: string,
  op: (doc: T, input: Record<string, unknown>, ctx: ChangeContext) => void,
  input: Record<string, unknown>,
  ctx: ChangeContext,
): Promise<DocHandle<T>> {
  const handle = await findIndexed<T>(node, kind, id)
  await node.commit(handle, (d) => op(d, input, ctx), noteFor(opName, ctx, id))
  return handle
}

const creating = new WeakMap<SiteNode, Promise<unknown>>()

/** Runs `task` after every creation queued before it on this node. */
function serialCreate<T>(node: SiteNode, task: () => Promise<T>): Promise<T> {
  const run = (creating.get(node) ?? Promise.resolve()).then(task, task)
  creating.set(node, run.catch(() => undefined))
  return run
}

/**
 * True when the site's index or this node already holds a document of `kind` with `id` of its own
 * (a document another site shared under that id does not count: it moves aside, see SiteNode).
 */
export function holds(node: SiteNode, kind: IndexedKind, id: string): boolean {
  const index = node.index.doc()
  const listed = kind === 'order' ? index.orders : index.manifests
  // Own keys only: an id like `constructor` must not find Object.prototype's.
  return (listed !== undefined && Object.hasOwn(listed, id)) || ((kind === 'order' ? node.orders : node.manifests).has(id) && !node.isShared(kind, id))
}

/**
 * Creates a document of `kind` with `id`, initialised by `init` (which validates and may throw to
 * refuse: then no document is left behind), registers it in the site index, and tells listeners.
 * Refuses an id the site holds already (ConflictError).
 */
export async function createIndexedDocument<T>(node: SiteNode, kind: IndexedKind, id: string, init: (doc: T) => void, note: ChangeNote): Promise<DocHandle<T>> {
  const readOnlyIndex = node.readOnly.get(node.index.url)
  if (readOnlyIndex) throw readOnlyIndex
  return serialCreate(node, async () => {
    if (holds(node, kind, id)) throw new ConflictError(`${kind} ${id} already exists`, 'id')
    const handle = node.repo.create<T>()
    try {
      await node.commit(handle, init, note)
    } catch (error) {
      node.repo.delete(handle.documentId)
      throw error
    }
    // A crash here leaves a document the index does not list: it is never shown, and creating
    // the same id again makes a new one.
    node.expectIndexed(kind, id)
    await node.commit(node.index, (d) => (kind === 'order' ? addOrder(d, id, handle.url) : addManifest(d, id, handle.url)), { ...note, op: `siteIndex.add${kind === 'order' ? 'Order' : 'Manifest'}` })
    node.added(kind, id, handle as DocHandle<unknown>)
    return handle
  })
}
