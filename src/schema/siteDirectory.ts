/**
 * A site's directory: the documents other sites made that this site is party to (an order whose
 * supplier it is, a manifest where it is a stop or the carrier). The hub makes it when the site is
 * first enrolled; relays write it (src/relay/directory.ts), the site's nodes read it and list what
 * it names beside their own documents. Entries are keyed by document id, so two relays recording
 * the same share write the same value and never conflict.
 */
import { z } from 'zod'
import { isId } from './ids.ts'
import type { Str } from './strings.ts'

export const SITE_DIRECTORY_SCHEMA = 1

export interface SharedEntry {
  kind: Str
  /** The document's own id (the order or manifest id). */
  id: Str
  /** The site that made it (its owner at the relay). */
  from: Str
  url: Str
  /** When the relay recorded the share, ISO. */
  sharedAt: Str
}

export interface SiteDirectoryDoc {
  schema: number
  kind: Str
  site: Str
  /** Shared documents by document id. */
  documents: Record<string, SharedEntry>
}

/** A directory entry as a node reads it: anything else in the document is ignored. */
export const SharedDocument = z.object({
  kind: z.enum(['order', 'manifest']),
  id: z.string().refine(isId, { error: 'must be an id' }),
  from: z.string().refine(isId, { error: 'must be a site id' }),
  url: z.string().regex(/^automerge:[1-9A-HJ-NP-Za-km-z]+$/, { error: 'must be an automerge URL' }),
  sharedAt: z.string(),
})
export type SharedDocument = z.infer<typeof SharedDocument>
