/**
 * What the relay holds of this site, in plain words (`GET /api/sync`): the node service
 * `syncStatus(node)`.
 *
 * "Held by the relay" comes from the relay's remote heads: automerge-repo records, per document
 * and per peer storage id, the heads a peer last told us it has (`handle.getSyncInfo(storageId)`).
 * The relay flushes a document to its disk before it sends anything about it (its durability
 * gate), so its heads mean "stored". Remote heads live in memory only: after a restart, until the
 * relay answers again, every change of a document counts as pending (the relay has confirmed
 * nothing yet this run).
 *
 * Cheap to call often: a document whose heads equal the relay's is settled without reading its
 * changes, and the count of an unsettled one is kept until its heads or the relay's change.
 */
import * as A from '@automerge/automerge'
import type { DocHandle, PeerId, StorageId } from '@automerge/automerge-repo'
import { journalEntries } from '../docs/ledger.ts'
import { parsePeerId } from '../network/peerId.ts'
import { str } from '../schema/strings.ts'
import { verifyRevocations } from '../network/credential.ts'
import type { SiteNode } from './siteNode.ts'
import type { LanPeer } from '../peer-sync/lanMesh.ts'
import { sameHeads } from './storage/documentStorage.ts'

export type SyncState = 'offline' | 'syncing' | 'up-to-date'
export type SyncDocumentKind = 'index' | 'ledger' | 'journal' | 'order' | 'manifest'

export interface SyncStatus {
  /** offline: no relay link up (or not enrolled); up-to-date: the relay holds every change of every document below; else syncing. */
  state: SyncState
  relay: { url: string; connected: boolean; lastSyncAt: string | null; refusal?: { error: string; reason: string; status: number; at: string }; revocations: { seq: number; devices: number } | null } | null
  peers: Array<{ peerId: string; role: string | null; site: string | null; device: string | null; connected: boolean; lastSyncAt: string | null }>
  /** Documents with changes the relay does not hold, and how many changes. */
  pending: { documents: number; changes: number }
  documents: Array<{ kind: SyncDocumentKind; id: string; url: string; pending: number; /** Named by the ledger, not arrived here yet. */ missing?: true }>
  /** The LAN mesh (src/peer-sync): its sync port and every LAN peer seen — linked, linking, refused (and why), or speaking another protocol. Null when off. */
  lan: { port: number; peers: LanPeer[] } | null
}

interface CachedCount {
  key: string
  pending: number
}
interface NodeState {
  /** The relay's peer id, kept when the link goes down (its remote heads stay known). */
  relayPeer: PeerId | undefined
  counts: Map<string, CachedCount>
}
const states = new WeakMap<SiteNode, NodeState>()

function stateOf(node: SiteNode): NodeState {
  let state = states.get(node)
  if (!state) states.set(node, (state = { relayPeer: undefined, counts: new Map() }))
  return state
}

const iso = (ms: number | undefined): string | null => (ms === undefined || ms === 0 ? null : new Date(ms).toISOString())


/** The documents this site writes: its index, ledger, journals, orders and manifests (not the hub's catalog). */
function siteDocuments(node: SiteNode): Array<{ kind: SyncDocumentKind; id: string; handle: DocHandle<unknown> }> {
  const site = node.identity.site
  const docs: Array<{ kind: SyncDocumentKind; id: string; handle: DocHandle<unknown> }> = [
    { kind: 'index', id: site, handle: node.index as DocHandle<unknown> },
    { kind: 'ledger', id: site, handle: node.store.ledger.handle as DocHandle<unknown> },
  ]
  for (const ref of node.store.journals()) {
    const doc = ref.doc()
    docs.push({ kind: 'journal', id: `${str(doc.node)}/${doc.n}`, handle: ref.handle as DocHandle<unknown> })
  }
  for (const [id, handle] of node.orders) docs.push({ kind: 'order', id, handle })
  for (const [id, handle] of node.manifests) docs.push({ kind: 'manifest', id, handle })
  return docs
}

/** Changes of `doc` the relay does not hold, given the heads it last confirmed (undefined: none yet). */
function pendingChanges(doc: A.Doc<unknown>, relayHeads: A.Heads | undefined): number {
  // Heads of the relay we hold too; one we lack came from another device and we cannot place it.
  const known = (relayHeads ?? []).filter((h) => {
    try {
      return A.hasHeads(doc, [h])
    } catch {
      return false
    }
  })
  if (known.length === 0) return A.getAllChanges(doc).length
  try {
    return A.getChanges(A.view(doc, known), doc).length
  } catch {
    return A.getAllChanges(doc).length
  }
}

export function syncStatus(node: SiteNode): SyncStatus {
  const state = stateOf(node)
  const relay = node.relay
  const repo = node.repo
  if (relay?.remotePeerId) state.relayPeer = relay.remotePeerId
  if (!state.relayPeer) {
    // A relay peer seen before this service was first asked (its metadata stays after a disconnect).
    state.relayPeer = (Object.keys(repo.peerMetadataByPeerId) as PeerId[]).find((p) => parsePeerId(p)?.role === 'relay')
  }
  const relayStorage: StorageId | undefined = state.relayPeer ? repo.getStorageIdOfPeer(state.relayPeer) : undefined
  const connected = new Set(repo.peers)
  const peerIds = new Set<PeerId>([...(Object.keys(repo.peerMetadataByPeerId) as PeerId[]), ...connected])
  const peerStorage = new Map<PeerId, StorageId | undefined>([...peerIds].map((p) => [p, repo.getStorageIdOfPeer(p)]))
  const lastSync = new Map<PeerId, number>()

  const documents: SyncStatus['documents'] = []
  let upToDate = true
  const seen = new Set<string>()
  for (const { kind, id, handle } of siteDocuments(node)) {
    if (!handle.isReady()) continue
    seen.add(handle.url)
    for (const [peer, storage] of peerStorage) {
      const at = storage ? handle.getSyncInfo(storage)?.lastSyncTimestamp : undefined
      if (at !== undefined && at > (lastSync.get(peer) ?? 0)) lastSync.set(peer, at)
    }
    const local = handle.heads() as A.Heads
    const remote = relayStorage ? (handle.getSyncInfo(relayStorage)?.lastHeads as A.Heads | undefined) : undefined
    let pending = 0
    if (!remote || !sameHeads(local, remote)) {
      const key = `${[...local].sort().join(',')}|${remote ? [...remote].sort().join(',') : '-'}`
      const cached = state.counts.get(handle.url)
      if (cached?.key === key) pending = cached.pending
      else {
        pending = pendingChanges(handle.doc() as A.Doc<unknown>, remote)
        state.counts.set(handle.url, { key, pending })
      }
      // Heads differ (pending may still be 0: the relay has changes this node has not received yet).
      upToDate = false
    } else state.counts.delete(handle.url)
    documents.push({ kind, id, url: handle.url, pending })
  }
  for (const url of state.counts.keys()) if (!seen.has(url)) state.counts.delete(url)
  // A journal the ledger names that has not arrived here yet: this node is not up to date either.
  for (const { node: device, n, url } of journalEntries(node.store.ledger.doc())) {
    if (node.store.journal(url)) continue
    upToDate = false
    documents.push({ kind: 'journal', id: `${device}/${n}`, url, pending: 0, missing: true })
  }

  const relayConnected = relay?.remotePeerId !== undefined && connected.has(relay.remotePeerId)
  const refusal = relay?.lastRefusal
  const relayView: SyncStatus['relay'] = relay
    ? {
        url: relay.url,
        connected: relayConnected,
        lastSyncAt: state.relayPeer ? iso(lastSync.get(state.relayPeer)) : null,
        ...(refusal ? { refusal: { error: refusal.error, reason: refusal.reason, status: refusal.status, at: new Date(refusal.at).toISOString() } } : {}),
        revocations: revocationsOf(node),
      }
    : null
  const peers: SyncStatus['peers'] = [...peerIds].sort().map((peerId) => {
    const parts = parsePeerId(peerId)
    return { peerId, role: parts?.role ?? null, site: parts?.site ?? null, device: parts?.device ?? null, connected: connected.has(peerId), lastSyncAt: iso(lastSync.get(peerId)) }
  })
  const withPending = documents.filter((d) => d.pending > 0)
  return {
    state: !relayConnected ? 'offline' : upToDate ? 'up-to-date' : 'syncing',
    relay: relayView,
    peers,
    pending: { documents: withPending.length, changes: withPending.reduce((n, d) => n + d.pending, 0) },
    documents,
    lan: node.lan ? { port: node.lan.port, peers: node.lan.peers() } : null,
  }
}

/** The revocation list this device holds (from its enrolment, then the newest its relay told it). */
function revocationsOf(node: SiteNode): { seq: number; devices: number } | null {
  if (!node.enrolment) return null
  const checked = verifyRevocations(node.enrolment.revocations, node.enrolment.deployment)
  return checked.ok ? { seq: checked.claims.seq, devices: checked.claims.devices.length } : null
}
