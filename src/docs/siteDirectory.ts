/** A site's directory of documents shared with it (src/schema/siteDirectory.ts). */
import { hasOwnKey } from '../schema/ownProperty.ts'
import { SITE_DIRECTORY_SCHEMA, SharedDocument, type SiteDirectoryDoc } from '../schema/siteDirectory.ts'
import { imm, str } from '../schema/strings.ts'

export function createSiteDirectory(doc: SiteDirectoryDoc, site: string): void {
  doc.schema = SITE_DIRECTORY_SCHEMA
  doc.kind = imm('directory')
  doc.site = imm(site)
  doc.documents = {}
}

/** Records that `documentId` is shared with this site; false (nothing written) when it is listed already. */
export function addShared(doc: SiteDirectoryDoc, documentId: string, entry: SharedDocument): boolean {
  if (!doc.documents) doc.documents = {}
  if (hasOwnKey(doc.documents, documentId)) return false
  doc.documents[documentId] = { kind: imm(entry.kind), id: imm(entry.id), from: imm(entry.from), url: imm(entry.url), sharedAt: imm(entry.sharedAt) }
  return true
}

/** True when the directory lists `documentId`. */
export function isShared(doc: SiteDirectoryDoc, documentId: string): boolean {
  return hasOwnKey(doc.documents, documentId)
}

/** The well-formed entries, by document id; a malformed one (nobody but a relay writes here) is skipped. */
export function sharedDocuments(doc: SiteDirectoryDoc | undefined): Array<[documentId: string, SharedDocument]> {
  const out: Array<[string, SharedDocument]> = []
  const documents = doc?.documents
  if (!documents || typeof documents !== 'object') return out
  for (const [documentId, raw] of Object.entries(documents)) {
    if (!raw || typeof raw !== 'object') continue
    const r = raw as unknown as Record<string, unknown>
    const parsed = SharedDocument.safeParse({ kind: str(r.kind as string), id: str(r.id as string), from: str(r.from as string), url: str(r.url as string), sharedAt: str(r.sharedAt as string) })
    if (parsed.success) out.push([documentId, parsed.data])
  }
  return out.sort((a, b) => a[1].sharedAt.localeCompare(b[1].sharedAt) || a[0].localeCompare(b[0]))
}
