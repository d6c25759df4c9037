/**
 * The relay's durable record of document owners (src/relay/access.ts rule 3), kept in the relay's own
 * storage adapter (crash-safe with DurableFsStorageAdapter) under keys no document id can take
 * (`-` is not a base58 character): one small chunk per document, holding the owning site.
 */
import type { StorageAdapterInterface } from '@automerge/automerge-repo'

const PREFIX = 'stockmesh-relay-owner'

export async function loadOwners(storage: StorageAdapterInterface): Promise<Array<[document: string, site: string]>> {
  const chunks = await storage.loadRange([PREFIX])
  const owners: Array<[string, string]> = []
  for (const chunk of chunks) {
    const document = chunk.key[1]
    if (document && chunk.data) owners.push([document, new TextDecoder().decode(chunk.data)])
  }
  return owners
}

export function saveOwner(storage: StorageAdapterInterface, document: string, site: string): Promise<void> {
  return storage.save([PREFIX, document], new TextEncoder().encode(site))
}

const PARTIES = 'stockmesh-relay-parties'

export async function loadParties(storage: StorageAdapterInterface): Promise<Array<[document: string, sites: string[]]>> {
  const chunks = await storage.loadRange([PARTIES])
  const parties: Array<[string, string[]]> = []
  for (const chunk of chunks) {
    const document = chunk.key[1]
    if (!document || !chunk.data) continue
    try {
      const sites = JSON.parse(new TextDecoder().decode(chunk.data)) as unknown
      if (Array.isArray(sites)) parties.push([document, sites.filter((s): s is string => typeof s === 'string')])
    } catch {
      // a torn record cannot happen with DurableFsStorageAdapter; ignore one from elsewhere
    }
  }
  return parties
}

export function saveParties(storage: StorageAdapterInterface, document: string, sites: string[]): Promise<void> {
  return storage.save([PARTIES, document], new TextEncoder().encode(JSON.stringify(sites)))
}
