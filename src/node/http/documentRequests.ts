/**
 * What the routes share: who makes a change (`requestContext`), and a document's history as a
 * person reads it.
 */
import type { DocHandle } from '@automerge/automerge-repo'
import { documentHistory } from '../../docs/history.ts'
import type { ChangeContext } from '../../schema/changeContext.ts'
import { InputError } from '../../schema/errors.ts'
import { DeviceId, UserId } from '../../schema/ids.ts'
import type { SiteNode } from '../siteNode.ts'

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

/** The history of a document as a person reads it, oldest first. */
export function historyOf(handle: DocHandle<unknown>) {
  return documentHistory(handle.doc() as never)
}
