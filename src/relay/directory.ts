/**
 * Lists a document in the directory of each site party to it (src/schema/siteDirectory.ts), so the
 * party's nodes show it without anyone typing a URL: an order from A appears at its supplier B, a
 * manifest at its carrier and stops. Written by the relay that records the parties
 * (src/relay/access.ts rule 4), on its storage before the parties record itself: a relay killed in
 * between lists it again when the owner next syncs (listing is idempotent, keyed by document id,
 * so relays along a chain writing the same entry never conflict).
 */
import type { DocHandle, Repo } from '@automerge/automerge-repo'
import type { Logger } from 'pino'
import { addShared, isShared } from '../docs/siteDirectory.ts'
import { isId } from '../schema/ids.ts'
import type { SiteDirectoryDoc } from '../schema/siteDirectory.ts'
import { text, type SiteAccess } from './access.ts'

export interface Shared {
  documentId: string
  url: string
  owner: string
  /** The document's content as the relay holds it (its kind and id are read from it). */
  doc: unknown
  parties: string[]
}

/** How long a directory not in this relay's storage is awaited from its peers (a relay down a chain). */
const FIND_TIMEOUT_MS = 10_000

/** Lists `shared` in every party's directory this relay can reach; returns the sites listed. */
export async function listInDirectories(repo: Repo, access: SiteAccess, shared: Shared, logger: Logger, now: () => number): Promise<string[]> {
  const d = shared.doc as { kind?: unknown; id?: unknown } | null
  const kind = text(d?.kind) === 'order' ? 'order' : text(d?.kind) === 'manifest' ? 'manifest' : undefined
  const id = text(d?.id)
  if (!kind || !isId(id)) return []
  const listed: string[] = []
  for (const site of shared.parties) {
    const directory = access.directoryOf(site)
    if (!directory) {
      logger.warn({ site, documentId: shared.documentId }, 'the site has no directory (enrolled before directories): it is not told of the shared document')
      continue
    }
    let handle: DocHandle<SiteDirectoryDoc>
    try {
      handle = await withTimeout(repo.find<SiteDirectoryDoc>(`automerge:${directory}` as never), FIND_TIMEOUT_MS)
    } catch (error) {
      logger.warn({ err: error, site, documentId: shared.documentId }, 'the site directory is not reachable from this relay: not listed here')
      continue
    }
    if (!isShared(handle.doc(), shared.documentId)) {
      handle.change((doc) => void addShared(doc, shared.documentId, { kind, id, from: shared.owner, url: shared.url, sharedAt: new Date(now()).toISOString() }), {
        message: JSON.stringify({ op: 'directory.share', user: 'relay', document: shared.documentId }),
      })
      await repo.flush([handle.documentId])
    }
    listed.push(site)
  }
  return listed
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not found within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer))
}
