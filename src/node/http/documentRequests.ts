/**
 * What the order and manifest routes share: who makes a change (`requestContext`), the node's
 * clock, serialised creation of documents, and a document's history as a person reads it.
 */
import type { DocHandle } from '@automerge/automerge-repo'
import { documentHistory, type ChangeNote } from '../../docs/history.ts'
import type { ChangeContext } from '../../schema/changeContext.ts'
import { InputError } from '../../schema/errors.ts'
import { DeviceId, UserId } from '../../schema/ids.ts'
import type { SiteNode } from '../siteNode.ts'
import type { RouteResult } from './routes.ts'

/**
 * Splits a request body into who makes the change and the operation's own input. `user` is
 * required (400 naming `user`); `device` is optional, the device the person used (a scanner, a
 * tablet), and defaults to this node. Neither is passed on to the operation.
 */
export function requestContext(node: SiteNode, body: unknown): { ctx: ChangeContext; input: Record<string, unknown> } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new InputError('', 'the body must be a JSON object')
  const { user, device, ...input } = body as Record<string, unknown>
  if (user === undefined) throw new InputError('user', 'is required: the id of the person making the change')
  const parsedUser = UserId.safeParse(user)
  if (!parsedUser.success) throw new InputError('user', parsedUser.error.issues[0]?.message ?? 'is not a valid user id')
  let parsedDevice = node.identity.node
  if (device !== undefined) {
    const result = DeviceId.safeParse(device)
    if (!result.success) throw new InputError('device', result.error.issues[0]?.message ?? 'is not a valid device id')
    parsedDevice = result.data
  }
  return { ctx: { user: parsedUser.data, device: parsedDevice, at: node.now() }, input }
}

/** The change note of an operation made with `ctx` on document `ref`. */
export function noteFor(op: string, ctx: ChangeContext, ref: string): ChangeNote {
  return { op, user: ctx.user, device: ctx.device, ref }
}

const creating = new WeakMap<SiteNode, Promise<unknown>>()

/**
 * Runs `task` after every creation queued before it on this node, so that two requests creating
 * the same id cannot both pass the duplicate check.
 */
export function serialCreate<T>(node: SiteNode, task: () => Promise<T>): Promise<T> {
  const run = (creating.get(node) ?? Promise.resolve()).then(task, task)
  creating.set(node, run.catch(() => undefined))
  return run
}

/** Creates and initialises a new document; if `init` refuses, the empty document is dropped. */
export async function createDocument<T>(node: SiteNode, init: (doc: T) => void, note: ChangeNote): Promise<DocHandle<T>> {
  const handle = node.repo.create<T>()
  try {
    await node.commit(handle, init, note)
  } catch (error) {
    node.repo.delete(handle.documentId)
    throw error
  }
  return handle
}

/** The history of a document as a person reads it, oldest first. */
export function historyOf(handle: DocHandle<unknown>) {
  return documentHistory(handle.doc() as never)
}

export const notFound = (what: string, id: string): RouteResult => ({ status: 404, body: { error: `no ${what} ${id} on this site` } })
