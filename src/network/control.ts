/**
 * Control messages between relays in a chain (site gateway → district → national), sent on the
 * same authenticated websocket as automerge-repo's messages and never handed to a Repo:
 *
 * - `owner`: who owns a document (the site that first brought it to the relay that states it) and,
 *   from an upstream, the sites party to it. Sent before the first sync message about the document
 *   on a connection, so the receiving relay knows whose it is before its content arrives.
 * - `register`: from an upstream to a relay below it: the roots (index, ledger, directory) of the
 *   sites that relay serves, and the deployment's latest signed revocation list.
 * - `ask-owner`: from a relay below that has no record of a document one of its devices asked for
 *   or brought: the upstream answers with an `owner` statement when a site the asker serves may
 *   access the document (asking its own upstream first when it has no record either), else nothing.
 *   An upstream's statement overrides what the relay below recorded by itself.
 *
 * - `revocations`: from a relay to every device when it joins and when the list changes: the
 *   deployment's latest signed revocation list, which the device keeps (its highest seq) for the
 *   peers it meets without a relay.
 *
 * Only relay peers send them to relays; src/relay/access.ts says which statements a relay takes from whom.
 */
import { z } from 'zod'
import { Compact } from '../schema/credential.ts'
import { SiteId } from '../schema/ids.ts'

export const CONTROL_TYPE = 'stockmesh-control'

const DocumentIdString = z.string().regex(/^[1-9A-HJ-NP-Za-km-z]{20,60}$/, { error: 'must be a document id' })

export const OwnerStatement = z.strictObject({
  kind: z.literal('owner'),
  documentId: DocumentIdString,
  owner: SiteId,
  /** The parties recorded for it (rule 4), when the sender has recorded them. */
  parties: z.array(SiteId).max(200).optional(),
})
export type OwnerStatement = z.infer<typeof OwnerStatement>

export const RegisterStatement = z.strictObject({
  kind: z.literal('register'),
  /** [site, [index, ledger], directory?] as document ids */
  roots: z.array(z.tuple([SiteId, z.array(DocumentIdString).max(8), DocumentIdString.optional()])).max(100_000),
  /** The latest revocation list the sender holds, signed by the deployment. */
  revocations: Compact,
})
export type RegisterStatement = z.infer<typeof RegisterStatement>

/** From a relay below: who owns this document? (a device of a site it serves asked for it, and it has no record) */
export const OwnerQuestion = z.strictObject({
  kind: z.literal('ask-owner'),
  documentId: DocumentIdString,
})
export type OwnerQuestion = z.infer<typeof OwnerQuestion>

/** From a relay to a device when it joins and whenever it changes: the latest revocation list (signed by the deployment). */
export const RevocationsStatement = z.strictObject({
  kind: z.literal('revocations'),
  revocations: Compact,
})
export type RevocationsStatement = z.infer<typeof RevocationsStatement>

export const ControlMessage = z.discriminatedUnion('kind', [OwnerStatement, RegisterStatement, OwnerQuestion, RevocationsStatement])
export type ControlMessage = z.infer<typeof ControlMessage>

/** The frame as sent: automerge-repo's message envelope around a control message. */
export interface ControlFrame {
  type: typeof CONTROL_TYPE
  senderId: string
  targetId: string
  control: ControlMessage
}
