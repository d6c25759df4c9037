/**
 * The stockmesh relay: an automerge-repo Repo on crash-safe storage behind an HTTP server that
 * authenticates every websocket at its upgrade (src/network/authProtocol.ts), binds each socket to
 * its authenticated peer id (src/relay/serverAdapter.ts) and gives each site only its documents
 * (src/relay/access.ts). Operations: `GET /healthz` (JSON) and `GET /metrics` (Prometheus).
 *
 * Durability: a sync message about a document (it carries the relay's heads, which is how a peer
 * learns what the relay holds) leaves only after the document, and its owner record when it was
 * just claimed, are on the relay's storage: with DurableFsStorageAdapter, "the relay has it" means
 * on its disk.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { decodeSyncMessage } from '@automerge/automerge'
import { Repo, type DocumentId, type Message, type PeerId, type RepoConfig, type StorageAdapterInterface } from '@automerge/automerge-repo'
import type { Logger } from 'pino'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { WebSocketServer, type WebSocket } from 'ws'
import { CHALLENGE_PATH, readSyncParams, refusalResponse, SYNC_PATH, type RefusalCode, type SyncParams } from '../network/authProtocol.ts'
import { formatPeerId, parsePeerId } from '../network/peerId.ts'
import type { CredentialClaims, DeploymentPublic } from '../schema/credential.ts'
import { partiesOf, SiteAccess } from './access.ts'
import { recallLot } from './recall.ts'
import { isId } from '../schema/ids.ts'
import { bearerMatches } from '../network/bearer.ts'
import { authenticate, ChallengeStore } from './auth.ts'
import { listInDirectories } from './directory.ts'
import { IdleUnloader } from './idle.ts'
import { AuthenticatedWebSocketClientAdapter } from '../network/AuthenticatedWebSocketClientAdapter.ts'
import type { ControlMessage, OwnerStatement, RegisterStatement } from '../network/control.ts'
import { loadOwners, loadParties, saveOwner, saveParties } from './owners.ts'
import { AuthenticatedWebSocketServerAdapter } from './serverAdapter.ts'
import { answerWithProof, checkClientProof, clientProof, dialParams, LAN_PROTOCOL, verifyServer } from '../peer-sync/lanProtocol.ts'

export interface RelayOptions {
  /** The relay Repo's storage (DurableFsStorageAdapter in production). */
  storage: StorageAdapterInterface
  deployment: DeploymentPublic
  /** True when the device is on the deployment's revocation list (asked at every upgrade). */
  isRevoked: (device: string) => boolean
  host?: string
  /** 0 for any free port. */
  port: number
  logger: Logger
  /** The access policy; default a {@link SiteAccess} with `catalog` and `roots`, owners loaded from `storage`. */
  access?: SiteAccess
  /** The deployment catalog's document id. */
  catalog?: string
  /** Each site's enrolment documents (index, ledger) as document ids, from the hub register. */
  roots?: Iterable<[site: string, documents: Iterable<string>, directory?: string]>
  /** Largest websocket message accepted (bytes); default 64 MiB. */
  maxPayload?: number
  /** Denied messages a peer may send in a minute before it is disconnected; default 1000. */
  maxDenialsPerMinute?: number
  challengeTtlMs?: number
  maxChallenges?: number
  /** Makes the relay's Repo (default: a Repo on `storage`); the hub passes its own (openHub). */
  openRepo?: (config: Pick<RepoConfig, 'network' | 'shareConfig' | 'peerId'>) => Repo | Promise<Repo>
  /**
   * Re-reads the access records (the hub's register) now: asked when a device of a site with no
   * roots connects, and when a document names a party whose directory is not known yet.
   */
  refreshRegister?: () => Promise<void>
  /** A chained relay's: the sites it serves; a device of another site (or a relay serving one) is refused. */
  serves?: readonly string[]
  /** Documents idle this long leave memory (flushed, then unloaded; src/relay/idle.ts); default 5 minutes, 0 keeps everything. */
  idleMs?: number
  /**
   * The bearer token of the relay's data endpoints (`GET /lots/:lot`, a recall across sites);
   * without one they answer 403. /healthz and /metrics stay open.
   */
  apiToken?: string
  /** This relay's peer id (default `relay/hub/<deployment>`; a chained relay's is its credential's). */
  peerId?: string
  /** The relay this one is chained under, and this relay's credential there. */
  upstream?: { url: string; credential: string; privateKey: string }
  /** What this relay tells a relay chained below it of the roots of `sites` (those it serves) and revocations (the hub's register, or what its own upstream told it). */
  registerStatement?: (sites: readonly string[]) => RegisterStatement | undefined
  /** The latest signed revocation list this relay holds, told to every device. */
  revocations?: () => string | undefined
  /** A register statement from the upstream: apply it (roots, revocation list) and keep it. */
  onUpstreamRegister?: (statement: RegisterStatement) => void | Promise<void>
  /** Replaces the credential → peer id binding (the acceptance suite's fixed peer names only). */
  bindsPeer?: (claims: CredentialClaims, peer: string) => boolean
  now?: () => number
  /**
   * A carrier's relay, met on a LAN (src/peer-sync/lanProtocol.ts): a device that dials it with a
   * nonce gets this proof of the carrier's own credential in the answer to its upgrade, and one
   * speaking another LAN protocol is refused.
   */
  prove?: { credential: string; privateKey: string; peerId: string }
  /**
   * A revocation list another carrier told this one (carriers met on a LAN pass on the newest each
   * holds): keep it when newer; true when it was.
   */
  onRevocations?: (token: string) => boolean | Promise<boolean>
  /** The hub's ERP bridge (src/erp/bridge.ts), once started: `GET /erp` and `POST /erp/retry`, behind the API token. */
  erp?: () => { status(): unknown; retry(): number } | undefined
}

/** A carrier this carrier dialled on a LAN, as `GET /api/sync` shows it. */
export interface CarrierLink {
  peerId: string
  url: string
  state: 'linked' | 'linking' | 'refused'
  reason?: string
  /** The sites of its route (once proven). */
  serves?: readonly string[]
}

export interface Relay {
  /** `ws://host:port` */
  readonly url: string
  readonly port: number
  readonly repo: Repo
  readonly access: SiteAccess
  readonly adapter: AuthenticatedWebSocketServerAdapter
  readonly metrics: Registry
  /** Re-checks loaded documents after the access policy changed (new site roots, say), and tells relays chained below. */
  accessChanged(): void
  /** The link to the relay this one is chained under, if any. */
  readonly upstream: AuthenticatedWebSocketClientAdapter | undefined
  /**
   * Re-checks connected devices (after a new revocation list, and periodically for expiry): a device
   * now revoked or expired is disconnected, and refused at its next upgrade. Returns the peers closed.
   */
  revalidate(): string[]
  /**
   * A carrier's: links to another carrier of the deployment met on a LAN (it advertised `peerId`
   * at `url`). Neither is above the other: documents cross when both routes may see them.
   */
  linkCarrier(peerId: string, url: string): void
  /** Drops a link `linkCarrier` made that is not up (its service went away). */
  unlinkCarrier(peerId: string): void
  /** The carriers this one dialled, and their state. */
  carrierLinks(): CarrierLink[]
  /** Stops accepting, closes every connection, flushes and shuts the Repo down. */
  close(): Promise<void>
}

export async function startRelay(options: RelayOptions): Promise<Relay> {
  const { logger, deployment } = options
  const now = options.now ?? Date.now
  const access = options.access ?? new SiteAccess({ catalog: options.catalog, roots: options.roots, owners: await loadOwners(options.storage), parties: await loadParties(options.storage) })
  const challenges = new ChallengeStore(options.challengeTtlMs ?? 30_000, options.maxChallenges ?? 10_000, now)

  const metrics = new Registry()
  const authFailures = new Counter({ name: 'stockmesh_relay_auth_failures_total', help: 'Refused connections, by reason', labelNames: ['reason'], registers: [metrics] })
  const accessDenials = new Counter({ name: 'stockmesh_relay_access_denials_total', help: 'Messages about a document the peer may not access', registers: [metrics] })
  const rejected = new Counter({ name: 'stockmesh_relay_connections_closed_total', help: 'Connections closed for bad input, by reason', labelNames: ['reason'], registers: [metrics] })
  const messagesIn = new Counter({ name: 'stockmesh_relay_messages_in_total', help: 'Messages received from peers', registers: [metrics] })
  const bytesIn = new Counter({ name: 'stockmesh_relay_bytes_in_total', help: 'Bytes received from peers', registers: [metrics] })
  const messagesOut = new Counter({ name: 'stockmesh_relay_messages_out_total', help: 'Messages sent to peers', registers: [metrics] })
  const bytesOut = new Counter({ name: 'stockmesh_relay_bytes_out_total', help: 'Bytes sent to peers', registers: [metrics] })
  const storageLatency = new Histogram({ name: 'stockmesh_relay_storage_flush_seconds', help: 'Time to put a document on disk before a sync message about it leaves', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [metrics] })
  const claims = new Counter({ name: 'stockmesh_relay_documents_claimed_total', help: 'Documents recorded as owned by the site that first brought them', registers: [metrics] })

  /** Unloads idle documents (src/relay/idle.ts); made once the Repo is. */
  let idle: IdleUnloader | undefined
  /** Owner records being written: a sync message about the document waits for its record too. */
  const ownerSaves = new Map<string, Promise<void>>()
  let closed = false
  /** Rule 4 of src/relay/access.ts: the parties of a claimed document, read once the relay holds it. */
  const partiesPending = new Set<string>()
  /** A sync message from a peer acting for a document's owner: read its parties from the content, once it is here. */
  const partiesFromContent = (message: { type: string; documentId?: string }, peerId: string): void => {
    const documentId = message.documentId
    if (message.type !== 'sync' || !documentId || access.hasParties(documentId)) return
    const owner = access.siteOf(documentId)
    if (owner !== undefined && access.sitesOf(peerId).includes(owner)) setImmediate(() => recordParties(documentId))
  }
  const recordParties = (documentId: string, attempt = 0): void => {
    if (closed || access.hasParties(documentId) || (attempt === 0 && partiesPending.has(documentId))) return
    const owner = access.siteOf(documentId)
    if (!owner) return
    partiesPending.add(documentId)
    const handle = repoRef?.handles[documentId as DocumentId]
    if (!handle || !handle.isReady() || handle.heads().length === 0) {
      // The content is still on its way (the repo applies sync messages asynchronously): look again
      // shortly, for up to a minute; after that the next sync message about it starts over.
      if (attempt < 600) setTimeout(() => recordParties(documentId, attempt + 1), 100).unref()
      else partiesPending.delete(documentId)
      return
    }
    const doc = handle.doc()
    const sites = partiesOf(doc, owner)
    if (!access.setParties(documentId, sites)) {
      partiesPending.delete(documentId)
      return
    }
    // Listed in each party's directory first, then the record: a relay killed in between has no
    // record and lists it again (idempotent) when the owner next syncs. A party whose directory
    // could not be reached (a relay down a chain whose upstream is away) is tried again.
    const list = async (attempt: number): Promise<void> => {
      if (sites.some((site) => !access.directoryOf(site)) && options.refreshRegister) await options.refreshRegister()
      const listed = await listInDirectories(repoRef!, access, { documentId, url: handle.url, owner, doc, parties: sites }, logger, now)
      const missing = sites.filter((site) => access.directoryOf(site) !== undefined && !listed.includes(site))
      if (missing.length > 0 && attempt < 20 && !closed) {
        logger.warn({ documentId, missing, attempt }, 'not every party could be told of the document yet: trying again in 30 s')
        setTimeout(() => holdFor(documentId, list(attempt + 1)), 30_000).unref()
        return
      }
      await saveParties(options.storage, documentId, sites)
      if (sites.length > 0) logger.info({ documentId, owner, parties: sites, listed }, 'document shared with its parties')
    }
    const saved = list(0)
      // Only a document shared with other sites changes who may see it (for the others, the owner's
      // devices may already): re-checking every document for every peer costs O(documents × peers).
      .then(() => sites.length > 0 && accessChangedSoon())
      .catch((error: unknown) => logger.error({ err: error, documentId }, 'could not store the parties of a document'))
      .finally(() => partiesPending.delete(documentId))
    holdFor(documentId, saved)
  }
  /**
   * automerge-repo re-checks every loaded document for every peer on shareConfigChanged: many
   * statements or shares in a burst are coalesced into one re-check.
   */
  let recheck: NodeJS.Timeout | undefined
  const accessChangedSoon = () => {
    if (recheck || closed) return
    recheck = setTimeout(() => {
      recheck = undefined
      if (!closed) repoRef?.shareConfigChanged()
    }, 200)
    recheck.unref()
  }
  /** Sync messages about `documentId` wait for `save` (and for what they waited for already). */
  const holdFor = (documentId: string, save: Promise<unknown>): void => {
    const all = Promise.all([ownerSaves.get(documentId), save]).then(
      () => undefined,
      () => undefined,
    )
    ownerSaves.set(documentId, all)
    void all.finally(() => {
      if (ownerSaves.get(documentId) === all) ownerSaves.delete(documentId)
    })
  }
  /**
   * A peer that acts for sites it serves, as a relay chained below this one: a relay, or a carrier
   * enrolled with a route (`--role carrier --serves …`: a relay that travels, src/relay/chained.ts).
   */
  const relayLike = (peerId: string): boolean => {
    const role = parsePeerId(peerId)?.role
    return role === 'relay' || (role === 'carrier' && connectedClaims.get(peerId)?.serves !== undefined)
  }
  /** Denied messages per peer in the current minute: a peer that keeps asking is disconnected. */
  const denials = new Map<string, { since: number; count: number }>()
  const maxDenials = options.maxDenialsPerMinute ?? 1000
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayload ?? 64 * 1024 * 1024 })
  // A carrier proves itself to the devices that ask (a nonce in their upgrade).
  const willProve = options.prove ? answerWithProof(wss, options.prove) : undefined
  const adapter = new AuthenticatedWebSocketServerAdapter(wss, {
    logger,
    hooks: {
      onBytesOut: (bytes) => {
        messagesOut.inc()
        bytesOut.inc(bytes)
      },
      onRejected: (why) => rejected.inc({ reason: why }),
      onControl: (control, peerId) => fromBelow(control, peerId),
      isRelayBelow: relayLike,
      storageIdFree: (storageId, peerId) => {
        if (storageId === ownStorageId) return false
        const repo = repoRef
        if (!repo) return true
        for (const other of repo.peers) if (other !== peerId && repo.getStorageIdOfPeer(other) === storageId) return false
        return true
      },
      onMessage: (message, bytes, peerId) => {
        messagesIn.inc()
        bytesIn.inc(bytes)
        const fromRelay = relayLike(peerId)
        // A relay chained below joins: tell it the sites' roots and the revocation list.
        // A carrier met on the LAN is not below: it gets the revocation list, not the register.
        if (message.type === 'join') setImmediate(() => (fromRelay && !access.isLateral(peerId) ? tellRegister(peerId) : tellRevocations(peerId)))
        const documentId = message.documentId
        if (!documentId) return
        idle?.touch(documentId)
        // Rule 3 of src/relay/access.ts: the first site to bring content for an unknown document owns it.
        // A device here asks for a document this relay has no record of: ask the upstream whose it is.
        if (upstream && !fromRelay && (message.type === 'request' || message.type === 'sync') && access.claimable(documentId) && !(message.data && bringsContent(message.data))) askUpstream(documentId, '')
        if (message.type === 'sync' && !fromRelay && access.claimable(documentId) && message.data && bringsContent(message.data)) {
          const site = parsePeerId(peerId)?.site
          if (site) recordOwner(documentId, site, 'document recorded as owned by the site that brought it', peerId)
        }
        partiesFromContent(message, peerId)
        if (!access.mayAccess(peerId, documentId)) {
          accessDenials.inc()
          const t = now()
          let window = denials.get(peerId)
          if (!window || t - window.since > 60_000) denials.set(peerId, (window = { since: t, count: 0 }))
          window.count++
          if (window.count <= 10) logger.warn({ peer: peerId, documentId, type: message.type }, 'access denied: answered as unavailable')
          // A relay below forwards what its devices ask: its denials are counted, never a reason to cut it off.
          if (window.count > maxDenials && !fromRelay) {
            denials.delete(peerId)
            adapter.closePeer(peerId, 'too-many-denials', `more than ${maxDenials} requests a minute for documents this device may not access`)
          }
        }
      },
    },
  })

  // "The relay has it" means on its disk: every sync message the relay sends about a document (they
  // carry the relay's heads, which is how a peer learns what the relay holds) waits until that
  // document's changes and records are saved (a flush; a no-op when nothing is pending). Messages
  // to one peer keep their order.
  const queues = new Map<string, Promise<void>>()
  let repoRef: Repo | undefined
  /** This relay's own storage id (read once its repo is made). */
  let ownStorageId: string | undefined
  function durable(sendNow: (message: Message) => void): (message: Message) => void {
    return (message) => {
      const target = message.targetId as string
      const documentId = message.type === 'sync' && 'documentId' in message ? message.documentId : undefined
      if (documentId) idle?.touch(documentId)
      const handle = documentId && repoRef ? repoRef.handles[documentId] : undefined
      const queued = queues.get(target)
      if (!queued && !(handle && handle.isReady()) && !(documentId && ownerSaves.has(documentId))) return sendNow(message)
      const next = (queued ?? Promise.resolve())
        .then(async () => {
          if (documentId) await ownerSaves.get(documentId)
          // (a handle unloaded meanwhile was flushed before it left memory)
          if (handle && handle.isReady() && repoRef && repoRef.handles[handle.documentId] === handle) {
            const started = performance.now()
            await repoRef.flush([handle.documentId])
            storageLatency.observe((performance.now() - started) / 1000)
          }
          sendNow(message)
        })
        .catch((error: unknown) => logger.error({ err: error, peer: target, documentId }, 'a sync message was not sent: the document could not be saved'))
        .finally(() => {
          if (queues.get(target) === next) queues.delete(target)
        })
      queues.set(target, next)
    }
  }

  // ---- relays in a chain (src/relay/access.ts, src/network/control.ts) ----------------------

  const persistOwner = (documentId: string, site: string) =>
    holdFor(documentId, saveOwner(options.storage, documentId, site).catch((error: unknown) => logger.error({ err: error, documentId }, 'could not store a document owner')))

  const recordOwner = (documentId: string, site: string, why: string, peer: string): boolean => {
    if (!access.claim(documentId, site)) return false
    claims.inc()
    logger.info({ peer, documentId, site }, why)
    persistOwner(documentId, site)
    return true
  }

  /** What this relay knows of a document's owner and parties, as a statement. */
  const statementOf = (documentId: string): OwnerStatement | undefined => {
    const owner = access.siteOf(documentId)
    if (!owner) return undefined
    const parties = access.partiesOf(documentId) as OwnerStatement['owner'][]
    return { kind: 'owner', documentId, owner: owner as OwnerStatement['owner'], ...(access.hasParties(documentId) ? { parties } : {}) }
  }

  /** Carriers this carrier dialled on a LAN: peer id → the link (they answer through it, not `adapter`). */
  const lateral = new Map<string, AuthenticatedWebSocketClientAdapter>()
  const controlTo = (peerId: string, control: ControlMessage): boolean => {
    const link = lateral.get(peerId)
    return link ? link.sendControl(control) : adapter.sendControl(peerId, control)
  }

  /** Tells a relay below what it may know of a document: only when a site it serves may access it. */
  const answer = (peerId: string, documentId: string): boolean => {
    const statement = statementOf(documentId)
    if (!statement || !access.sitesOf(peerId).some((site) => access.siteMayAccess(site, documentId))) return false
    stated.get(peerId)?.add(documentId)
    return controlTo(peerId, statement)
  }

  /** Questions this relay asked its upstream: document → relays below waiting for the answer ('' for this relay's own devices). */
  const asked = new Map<string, Set<string>>()
  const MAX_ASKED = 10_000
  const askUpstream = (documentId: string, forPeer: string): void => {
    if (!upstream?.remotePeerId) return
    const waiting = asked.get(documentId)
    if (waiting) return void waiting.add(forPeer)
    if (asked.size >= MAX_ASKED) return
    asked.set(documentId, new Set([forPeer]))
    upstream.sendControl({ kind: 'ask-owner', documentId })
    // Unanswered (the upstream does not know it, or this relay's sites may not see it): forget after a minute.
    setTimeout(() => asked.delete(documentId), 60_000).unref()
  }

  /** From a relay below: owner statements (only for sites it serves) and questions. */
  const fromBelow = (control: ControlMessage, peerId: string) => {
    const isLateral = access.isLateral(peerId)
    if (control.kind === 'revocations' && isLateral) {
      void Promise.resolve(options.onRevocations?.(control.revocations))
        .then((newer) => {
          if (!newer) return
          revalidate()
          tellDevicesRevocations()
        })
        .catch((error: unknown) => logger.error({ err: error }, 'could not keep the revocation list a carrier told'))
      return
    }
    if (control.kind === 'register' || control.kind === 'revocations') return void logger.warn({ peer: peerId, kind: control.kind }, 'a relay below sent what only an upstream sends: ignored')
    if (control.kind === 'ask-owner') {
      if (!answer(peerId, control.documentId) && access.claimable(control.documentId)) askUpstream(control.documentId, peerId)
      return
    }
    if (!access.sitesOf(peerId).includes(control.owner)) {
      return void logger.warn({ peer: peerId, documentId: control.documentId, owner: control.owner }, 'a relay stated an owner it does not serve: ignored')
    }
    if (recordOwner(control.documentId, control.owner, isLateral ? 'document recorded as owned by the site a carrier met on the LAN stated' : 'document recorded as owned by the site a relay below stated', peerId)) {
      // A carrier's record of the parties is taken with the owner: this one cannot read them before it holds the document.
      if (isLateral && control.parties && access.setParties(control.documentId, control.parties)) {
        holdFor(control.documentId, saveParties(options.storage, control.documentId, control.parties).catch((error: unknown) => logger.error({ err: error, documentId: control.documentId }, 'could not store the parties of a document')))
      }
      return
    }
    // Two carriers' records disagree: neither is above the other (the hub's record settles it when either gets there).
    if (isLateral) {
      if (access.siteOf(control.documentId) !== control.owner) logger.warn({ peer: peerId, documentId: control.documentId, stated: control.owner, owner: access.siteOf(control.documentId) }, 'a carrier met on the LAN records another owner for a document: kept this one')
      return
    }
    if (access.siteOf(control.documentId) !== control.owner) {
      // It recorded another owner than the one here (a device below brought a document it does not
      // own first): tell it the owner recorded here, which overrides its own record.
      // (the owner only, and the parties when its sites may see them: it named the id already)
      logger.warn({ peer: peerId, documentId: control.documentId, stated: control.owner, owner: access.siteOf(control.documentId) }, 'a relay below stated another owner than the one recorded here: told it')
      if (!answer(peerId, control.documentId)) controlTo(peerId, { kind: 'owner', documentId: control.documentId, owner: access.siteOf(control.documentId) as OwnerStatement['owner'] })
    }
  }

  /** From the upstream: owners and parties (they override what this relay recorded by itself), roots and revocations. */
  const fromUpstream = (control: ControlMessage, peerId: string) => {
    if (control.kind === 'register') {
      void Promise.resolve(options.onUpstreamRegister?.(control))
        .then(() => {
          repoRef?.shareConfigChanged()
          for (const peer of relaysBelow()) tellRegister(peer)
          tellDevicesRevocations()
        })
        .catch((error: unknown) => logger.error({ err: error }, 'could not apply the register the upstream sent'))
      return
    }
    if (control.kind === 'ask-owner' || control.kind === 'revocations') return void logger.warn({ peer: peerId, kind: control.kind }, 'the upstream sent what it does not send to relays: ignored')
    const { documentId, owner } = control
    if (!recordOwner(documentId, owner, 'document owner as the upstream stated it', peerId) && access.setOwner(documentId, owner)) {
      logger.warn({ documentId, owner }, 'the upstream records another owner for a document than this relay did: the upstream’s record holds')
      persistOwner(documentId, owner)
    }
    // The upstream's record holds, over one taken from a carrier met on a LAN.
    if (control.parties && access.siteOf(documentId) === owner && access.setParties(documentId, control.parties, { override: true })) {
      holdFor(documentId, saveParties(options.storage, documentId, control.parties).catch((error: unknown) => logger.error({ err: error, documentId }, 'could not store the parties of a document')))
    }
    accessChangedSoon()
    const waiting = asked.get(documentId)
    if (!waiting) return
    asked.delete(documentId)
    for (const peer of waiting) if (peer !== '') answer(peer, documentId)
    // A device here asked for it: fetch it from the upstream, and the Repo offers it to the device.
    if (waiting.has('') && repoRef && !repoRef.handles[documentId as DocumentId]) {
      void repoRef.find(`automerge:${documentId}` as never).catch((error: unknown) => logger.warn({ err: error, documentId }, 'a document the upstream named could not be fetched'))
    }
  }

  const relaysBelow = () => Object.keys(adapter.sockets).filter((peer) => relayLike(peer) && !access.isLateral(peer))
  /** The devices connected get the latest revocation list when it changes (and each when it joins). */
  let toldRevocations: string | undefined
  const tellRevocations = (peerId: string) => {
    const token = options.revocations?.()
    if (token) controlTo(peerId, { kind: 'revocations', revocations: token })
  }
  const tellDevicesRevocations = () => {
    const token = options.revocations?.()
    if (!token || token === toldRevocations) return
    toldRevocations = token
    for (const peer of Object.keys(adapter.sockets)) if (!relayLike(peer) || access.isLateral(peer)) tellRevocations(peer)
    for (const peer of lateral.keys()) tellRevocations(peer)
  }
  const tellRegister = (peerId: string) => {
    const statement = options.registerStatement?.(access.sitesOf(peerId))
    if (statement) controlTo(peerId, statement)
  }

  /** Documents whose owner was stated on each connection (a statement goes once, before the first sync message). */
  const stated = new Map<string, Set<string>>()
  const ownerStatement = (peerId: string, documentId: string | undefined): OwnerStatement | undefined => {
    if (!documentId || !access.ownerOf(documentId)) return undefined
    let done = stated.get(peerId)
    if (!done) stated.set(peerId, (done = new Set()))
    if (done.has(documentId)) return undefined
    done.add(documentId)
    return statementOf(documentId)
  }

  let upstream: AuthenticatedWebSocketClientAdapter | undefined
  if (options.upstream) {
    const link = new AuthenticatedWebSocketClientAdapter({ ...options.upstream, logger, onControl: fromUpstream })
    upstream = link
    link.on('peer-candidate', ({ peerId }) => {
      stated.delete(peerId)
      access.setUpstream(peerId, true)
      logger.info({ upstream: options.upstream!.url, peer: peerId }, 'connected to the upstream relay')
    })
    link.on('peer-disconnected', ({ peerId }) => {
      stated.delete(peerId)
      access.setUpstream(peerId, false)
    })
    // Up the chain as down it: a sync message leaves once the document and its records are on disk,
    // after the owner statement.
    const sendUp = link.send.bind(link)
    link.send = durable((message) => {
      const statement = message.type === 'sync' ? ownerStatement(message.targetId, (message as { documentId?: string }).documentId) : undefined
      if (statement) link.sendControl(statement)
      sendUp(message)
    })
  }

  /** peer id → its credential's expiry, for revalidation. */
  const connectedClaims = new Map<string, CredentialClaims>()
  const revalidate = (): string[] => {
    const closed: string[] = []
    for (const [peerId, claims] of connectedClaims) {
      const why = options.isRevoked(claims.device)
        ? `device ${claims.device} has been revoked by the deployment: ask for a new enrolment`
        : now() >= claims.expiresAt
          ? `the credential of device ${claims.device} expired: enrol the device again`
          : undefined
      if (!why) continue
      if (lateral.has(peerId)) {
        unlinkCarrier(peerId, why)
        logger.warn({ peer: peerId }, `carrier link cut off: ${why}`)
        closed.push(peerId)
      } else if (adapter.closePeer(peerId, options.isRevoked(claims.device) ? 'revoked' : 'expired', why)) {
        logger.warn({ peer: peerId }, `disconnected: ${why}`)
        closed.push(peerId)
      }
    }
    return closed
  }

  // ---- carrier ↔ carrier on a LAN: the carrier whose peer id sorts first dials the other ------

  const MAX_CARRIER_LINKS = 16
  /** Links dialled, with what became of them (kept after a refusal, for GET /api/sync). */
  const carrierState = new Map<string, CarrierLink>()
  /** The address each carrier advertised last (a carrier restarted on a new port is dialled there once its old link drops). */
  const lastAdvertised = new Map<string, string>()
  const linkCarrier = (peerId: string, url: string): void => {
    const prove = options.prove
    if (!prove || closed || peerId === prove.peerId) return
    // It dialled this carrier already (one link per pair).
    if (adapter.isConnected(peerId)) return
    const current = lateral.get(peerId)
    lastAdvertised.set(peerId, url)
    // A linked carrier keeps its link: another advertisement in its name changes nothing (until the link drops).
    if (current && (current.url === url || current.remotePeerId)) return
    if (current) unlinkCarrier(peerId)
    if (lateral.size >= MAX_CARRIER_LINKS) {
      // Full: the oldest link that never came up makes room (made-up advertisements cannot keep a real carrier out for good).
      const stale = [...lateral].find(([, link]) => !link.remotePeerId)
      if (!stale) return void logger.warn({ peer: peerId, max: MAX_CARRIER_LINKS }, 'too many carriers linked on this LAN: not linked')
      unlinkCarrier(stale[0])
    }
    const trust = { deployment, isRevoked: options.isRevoked, now }
    let proven: CredentialClaims | undefined
    const link = new AuthenticatedWebSocketClientAdapter({
      url,
      credential: prove.credential,
      privateKey: prove.privateKey,
      logger,
      label: 'carrier',
      minRetryMs: 500,
      maxRetryMs: 30_000,
      refusedRetryMs: 60_000,
      onControl: (control, from) => fromBelow(control, from),
      peerCheck: {
        prove: (challenge, me) => clientProof(challenge, me, peerId, prove.privateKey),
        params: dialParams,
        verify: (headers, params) => {
          const verdict = verifyServer(headers, params, trust, prove.peerId)
          if (!verdict.ok) return verdict
          if (verdict.peerId !== peerId) return { ok: false, refusal: { error: 'wrong-peer-id', reason: `${url} advertised itself as ${peerId} but proved to be ${verdict.peerId}` } }
          if (verdict.claims.role !== 'carrier' || !verdict.claims.serves) return { ok: false, refusal: { error: 'wrong-role', reason: `${peerId} is not a carrier with a route` } }
          proven = verdict.claims
          return verdict
        },
      },
    })
    lateral.set(peerId, link)
    carrierState.set(peerId, { peerId, url, state: 'linking' })
    link.on('peer-candidate', () => {
      if (!proven || lateral.get(peerId) !== link) return
      connectedClaims.set(peerId, proven)
      access.setLateral(peerId, proven.serves, options.serves ?? [])
      stated.delete(peerId)
      carrierState.set(peerId, { peerId, url, state: 'linked', serves: proven.serves! })
      logger.info({ peer: peerId, url, serves: proven.serves }, 'carrier met on the LAN: linked')
      setImmediate(() => tellRevocations(peerId))
      repoRef?.shareConfigChanged()
    })
    link.on('peer-disconnected', () => {
      if (lateral.get(peerId) !== link) return
      // (the records are the peer's, not the link's: kept while it is connected the other way)
      if (!adapter.isConnected(peerId)) {
        connectedClaims.delete(peerId)
        access.setLateral(peerId, undefined, options.serves ?? [])
        stated.delete(peerId)
      }
      const refusal = link.lastRefusal
      carrierState.set(peerId, { peerId, url, state: refusal ? 'refused' : 'linking', ...(refusal ? { reason: refusal.reason } : {}) })
      const latest = lastAdvertised.get(peerId)
      if (latest && latest !== url && !closed) {
        unlinkCarrier(peerId)
        linkCarrier(peerId, latest)
      }
    })
    // In as from a relay below: parties read from what the other carrier brings for an owner on its route.
    link.on('message', (message) => partiesFromContent(message, peerId))
    // Out as in: a sync message leaves once the document is on disk, after its owner statement.
    const sendOut = link.send.bind(link)
    link.send = durable((message) => {
      const statement = message.type === 'sync' ? ownerStatement(message.targetId, (message as { documentId?: string }).documentId) : undefined
      if (statement) link.sendControl(statement)
      sendOut(message)
    })
    repoRef!.networkSubsystem.addNetworkAdapter(link)
  }
  /** The carriers dialled, a refusal read from the link as it is now (its server's, or this carrier's check of the server). */
  const carrierLinks = (): CarrierLink[] =>
    [...carrierState.values()].map((c) => {
      const refusal = lateral.get(c.peerId)?.lastRefusal
      return refusal && c.state !== 'linked' ? { ...c, state: 'refused', reason: refusal.reason } : c
    })
  function unlinkCarrier(peerId: string, why?: string): void {
    const link = lateral.get(peerId)
    if (!link) return
    lateral.delete(peerId)
    if (!adapter.isConnected(peerId)) {
      connectedClaims.delete(peerId)
      access.setLateral(peerId, undefined, options.serves ?? [])
      stated.delete(peerId)
    }
    link.disconnect()
    repoRef?.networkSubsystem.removeNetworkAdapter(link)
    if (why) carrierState.set(peerId, { ...(carrierState.get(peerId) ?? { peerId, url: link.url }), state: 'refused', reason: `cut off by this carrier: ${why}` })
    else carrierState.delete(peerId)
    if (lastAdvertised.size > MAX_CARRIER_LINKS * 4) lastAdvertised.delete(lastAdvertised.keys().next().value!)
  }
  const revalidateTimer = setInterval(revalidate, 60_000)
  revalidateTimer.unref()

  const relayPeerId = (options.peerId ?? formatPeerId({ role: 'relay', site: 'hub', device: deployment.id })) as string as PeerId
  const shareConfig = {
    announce: async (peerId: PeerId, documentId?: string) => (documentId ? access.mayAccess(peerId, documentId) : false),
    access: async (peerId: PeerId, documentId?: string) => (documentId ? access.mayAccess(peerId, documentId) : false),
  }
  const sendDown = adapter.send.bind(adapter)
  const sendNow: typeof sendDown = (message) => {
    const target = message.targetId as string
    // A carrier states owners to the devices it meets too: a site lists another site's order or
    // manifest a carrier brought only when the carrier's record says it is from that site.
    if (message.type === 'sync' && (relayLike(target) || options.prove)) {
      const statement = ownerStatement(target, (message as { documentId?: string }).documentId)
      if (statement) adapter.sendControl(target, statement)
    }
    sendDown(message)
  }
  adapter.send = durable(sendNow)

  const repoConfig = { network: upstream ? [adapter, upstream] : [adapter], shareConfig: shareConfig as RepoConfig['shareConfig'], peerId: relayPeerId }
  const repo = options.openRepo ? await options.openRepo(repoConfig) : new Repo({ ...repoConfig, storage: options.storage })
  repoRef = repo
  ownStorageId = await repo.storageId().catch(() => undefined)
  const idleMs = options.idleMs ?? 5 * 60_000
  const unloaded = new Counter({ name: 'stockmesh_relay_documents_unloaded_total', help: 'Documents flushed and dropped from memory after being idle', registers: [metrics] })
  // Documents whose owner or parties record is being written stay until it is on disk.
  if (idleMs > 0) idle = new IdleUnloader({ repo, idleMs, logger, pinned: (id) => ownerSaves.has(id) || partiesPending.has(id), onUnloaded: () => unloaded.inc() })
  idle?.start()

  if (!options.openRepo) await adapter.connected

  const refuse = (socket: Duplex, code: RefusalCode, reason: string, extra: Record<string, unknown> = {}) => {
    authFailures.inc({ reason: code })
    logger.warn({ ...extra, error: code }, `relay refused a connection: ${reason}`)
    socket.end(refusalResponse(code, reason))
  }

  const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers })
    res.end(JSON.stringify(body))
  }

  /**
   * `GET /route`: each document this relay holds (a carrier: what it carries), whose it is, and
   * which peers hold its latest changes by their remote heads (automerge-repo's sync info per
   * storage id). `upstream`: the relay above holds them — on its disk, since a relay flushes a
   * document before it says anything about it (its durability gate); `peers`: each other peer met.
   */
  const routeStatus = () => {
    const repo = repoRef!
    const peers = new Set<string>([...Object.keys(repo.peerMetadataByPeerId), ...repo.peers])
    const upstreamPeer = upstream?.remotePeerId
    const storageOf = new Map([...peers].map((p) => [p, repo.getStorageIdOfPeer(p as PeerId)]))
    const documents = Object.values(repo.handles)
      .filter((h) => h.isReady())
      .map((h) => {
        const heads = [...h.heads()].sort()
        const holders = [...peers].map((peer) => {
          const storage = storageOf.get(peer)
          const info = storage ? h.getSyncInfo(storage) : undefined
          const theirs = info?.lastHeads ? [...info.lastHeads].sort() : undefined
          return { peer, latest: theirs !== undefined && theirs.join() === heads.join(), lastSyncAt: info?.lastSyncTimestamp ? new Date(info.lastSyncTimestamp).toISOString() : null }
        })
        const up = upstreamPeer ? holders.find((x) => x.peer === upstreamPeer) : undefined
        return { documentId: h.documentId, owner: access.siteOf(h.documentId) ?? null, upstream: up?.latest ?? false, peers: holders.filter((x) => x.peer !== upstreamPeer && x.lastSyncAt !== null) }
      })
      .sort((a, b) => (a.documentId < b.documentId ? -1 : 1))
    const carriers = [
      ...carrierLinks().map((c) => ({ ...c, direction: 'out' as const })),
      ...Object.keys(adapter.sockets)
        .filter((peer) => access.isLateral(peer))
        .map((peer) => ({ peerId: peer, url: '', state: 'linked' as const, serves: access.sitesOf(peer), direction: 'in' as const })),
    ]
    return { upstream: upstream ? { url: upstream.url, connected: upstreamPeer !== undefined && repo.peers.includes(upstreamPeer) } : null, documents, held: documents.filter((d) => d.upstream).length, total: documents.length, ...(options.prove ? { carriers } : {}) }
  }

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    if (path === '/erp' || path === '/erp/retry') {
      const erp = options.erp?.()
      if (!erp) return json(res, 404, { error: 'no-erp', reason: 'this relay forwards to no ERP: start it with --erp' })
      if (!options.apiToken) return json(res, 403, { error: 'no-api-token', reason: 'this relay was started without --api-token: its data endpoints are off' })
      if (!bearerMatches(req.headers.authorization, options.apiToken)) return json(res, 401, { error: 'unauthorized', reason: 'a bearer token (Authorization: Bearer …) matching --api-token is required' }, { 'www-authenticate': 'Bearer' })
      if (path === '/erp' && req.method === 'GET') return json(res, 200, erp.status())
      if (path === '/erp/retry' && req.method === 'POST') return json(res, 200, { retried: erp.retry() })
      return json(res, 405, { error: 'method-not-allowed', reason: path === '/erp' ? 'GET /erp' : 'POST /erp/retry' }, { allow: path === '/erp' ? 'GET' : 'POST' })
    }
    if (req.method !== 'GET') return json(res, 405, { error: 'method-not-allowed', reason: 'only GET' }, { allow: 'GET' })
    if (path === CHALLENGE_PATH) {
      const issued = challenges.issue()
      if (!issued) {
        authFailures.inc({ reason: 'busy' })
        return json(res, 503, { error: 'busy', reason: 'too many challenges outstanding: try again shortly' }, { 'retry-after': '5' })
      }
      return json(res, 200, issued)
    }
    // A carrier's driver asks its carrier what a site node's GET /api/sync would say: the same answer.
    if (path === '/route' || path === '/api/sync') {
      if (!options.apiToken) return json(res, 403, { error: 'no-api-token', reason: 'this relay was started without --api-token: its data endpoints are off' })
      if (!bearerMatches(req.headers.authorization, options.apiToken)) return json(res, 401, { error: 'unauthorized', reason: 'a bearer token (Authorization: Bearer …) matching --api-token is required' }, { 'www-authenticate': 'Bearer' })
      return json(res, 200, routeStatus())
    }
    if (path.startsWith('/lots/')) {
      if (!options.apiToken) return json(res, 403, { error: 'no-api-token', reason: 'this relay was started without --api-token: its data endpoints are off' })
      if (!bearerMatches(req.headers.authorization, options.apiToken)) return json(res, 401, { error: 'unauthorized', reason: 'a bearer token (Authorization: Bearer …) matching --api-token is required' }, { 'www-authenticate': 'Bearer' })
      let lot: string
      try {
        lot = decodeURIComponent(path.slice('/lots/'.length))
      } catch {
        return json(res, 400, { error: 'bad-lot', reason: 'the lot in the path is not readable' })
      }
      if (!isId(lot)) return json(res, 400, { error: 'bad-lot', reason: 'lot must be 1–128 characters: letters, digits and . _ : - (starting with a letter or digit)' })
      recallLot(repo, access.roots().map(([site, documents]) => [site, documents]), lot)
        .then((answer) => {
          // 404 only when every site was read whole and none moved the lot; a site not read whole is listed (complete: false).
          if (answer.sites.length === 0) return json(res, 404, { ...answer, error: 'not-found', reason: `no movement of lot ${lot} at any site this relay holds` })
          json(res, 200, answer)
        })
        .catch((error: unknown) => json(res, 500, { error: 'recall', reason: String(error) }))
      return
    }
    if (path === '/healthz') {
      return json(res, 200, { ok: true, deployment: deployment.id, peers: Object.keys(adapter.sockets).length, documents: Object.keys(repo.handles).length, owners: access.ownerCount })
    }
    if (path === '/metrics') {
      metrics
        .metrics()
        .then((text) => {
          res.writeHead(200, { 'content-type': metrics.contentType })
          res.end(text)
        })
        .catch((error: unknown) => json(res, 500, { error: 'metrics', reason: String(error) }))
      return
    }
    json(res, 404, { error: 'not-found', reason: `no ${path} here` })
  })
  server.headersTimeout = 10_000
  server.requestTimeout = 15_000

  new Gauge({ name: 'stockmesh_relay_connected_devices', help: 'Authenticated peers connected now', registers: [metrics], collect() { this.set(Object.keys(adapter.sockets).length) } })
  new Gauge({ name: 'stockmesh_relay_documents_loaded', help: 'Documents in the relay Repo memory', registers: [metrics], collect() { this.set(Object.keys(repo.handles).length) } })
  new Gauge({ name: 'stockmesh_relay_challenges_outstanding', help: 'Challenges issued and not yet used', registers: [metrics], collect() { this.set(challenges.size) } })

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {})
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://relay')
    } catch {
      return refuse(socket, 'malformed', 'the request URL is not readable')
    }
    if (url.pathname !== SYNC_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"error":"not-found","reason":"sync is at /sync"}')
      return
    }
    const nonce = url.searchParams.get('nonce')
    if (options.prove && nonce !== null) {
      const proto = url.searchParams.get('proto') ?? ''
      if (proto !== String(LAN_PROTOCOL)) return refuse(socket, 'incompatible-protocol', `this carrier speaks LAN protocol ${LAN_PROTOCOL}, the device ${proto || 'none'}: upgrade the older one`, { remote: req.socket.remoteAddress })
      if (!/^[A-Za-z0-9_-]{32,64}$/.test(nonce)) return refuse(socket, 'malformed', 'the nonce is not one', { remote: req.socket.remoteAddress })
    }
    // A device met on a LAN proves itself the LAN way, for this carrier (src/peer-sync/lanProtocol.ts).
    const lan = options.prove && nonce !== null ? options.prove : undefined
    const result = authenticate(readSyncParams(url.searchParams), {
      deployment,
      isRevoked: options.isRevoked,
      challenges,
      now,
      bindsPeer: options.bindsPeer,
      ...(lan ? { checkProof: (params: SyncParams, claims: CredentialClaims) => checkClientProof(params.proof, params.challenge, params.peer, lan.peerId, claims.publicKey) } : {}),
    })
    if (result.ok && lan) willProve?.(req, nonce!, result.peerId)
    const remote = req.socket.remoteAddress
    if (!result.ok) return refuse(socket, result.code, result.reason, { remote, device: result.device })
    if (adapter.isConnected(result.peerId)) return refuse(socket, 'peer-already-connected', `${result.peerId} is already connected: another process uses this device's identity`, { remote, device: result.claims.device })
    // One link per pair of carriers: not a second one when this carrier dialled it.
    if (lateral.get(result.peerId)?.remotePeerId) return refuse(socket, 'peer-already-connected', `${result.peerId} is linked already (this carrier dialled it)`, { remote, device: result.claims.device })
    // Another carrier met on a LAN (this relay is a carrier): it need not serve this route; what crosses is what both routes may see.
    const carrierMet = options.prove !== undefined && result.claims.role === 'carrier' && result.claims.serves !== undefined
    if (options.serves && !carrierMet) {
      const sites = result.claims.role === 'relay' || result.claims.role === 'carrier' ? (result.claims.serves ?? [result.claims.site]) : [result.claims.site]
      const other = sites.find((site) => !options.serves!.includes(site))
      if (other !== undefined) return refuse(socket, 'not-served', `this relay carries the documents of ${options.serves.join(', ')}, not of ${other}: connect to the relay of your enrolment`, { remote, device: result.claims.device })
    }
    if (options.refreshRegister && !access.knowsSite(result.claims.site)) {
      // A site enrolled since the register was last read: read it before the device syncs.
      socket.pause()
      void options.refreshRegister().finally(() => {
        socket.resume()
        if (socket.destroyed) return
        if (adapter.isConnected(result.peerId)) return refuse(socket, 'peer-already-connected', `${result.peerId} is already connected: another process uses this device's identity`, { remote, device: result.claims.device })
        accept(req, socket, head, result.peerId, result.claims, remote)
      })
      return
    }
    accept(req, socket, head, result.peerId, result.claims, remote)
  })

  const accept = (req: http.IncomingMessage, socket: Duplex, head: Buffer, peerId: string, claims: CredentialClaims, remote: string | undefined) => {
    const result = { peerId, claims }
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      logger.info({ peer: result.peerId, remote }, 'device connected')
      ws.on('error', (error) => {
        rejected.inc({ reason: 'socket-error' })
        logger.warn({ peer: result.peerId, err: error.message }, 'connection error: closed')
        ws.terminate()
      })
      connectedClaims.set(result.peerId, result.claims)
      if (options.prove && claims.role === 'carrier' && claims.serves) access.setLateral(peerId, claims.serves, options.serves ?? [])
      else if (claims.role === 'relay' || (claims.role === 'carrier' && claims.serves)) access.setServes(peerId, claims.serves ?? [claims.site])
      ws.on('close', () => {
        if (!adapter.isConnected(result.peerId)) {
          connectedClaims.delete(result.peerId)
          denials.delete(result.peerId)
          stated.delete(result.peerId)
          if (claims.role === 'relay' || claims.role === 'carrier') access.setLateral(peerId, undefined, options.serves ?? [])
        }
        logger.info({ peer: result.peerId }, 'device disconnected')
      })
      adapter.accept(wss, ws, result.peerId, req)
    })
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  const url = `ws://${host}:${address.port}`

  let closing: Promise<void> | undefined
  return {
    url,
    port: address.port,
    repo,
    access,
    adapter,
    metrics,
    upstream,
    accessChanged: () => {
      repo.shareConfigChanged()
      for (const peer of relaysBelow()) tellRegister(peer)
      tellDevicesRevocations()
    },
    revalidate,
    linkCarrier,
    unlinkCarrier: (peerId) => {
      if (!lateral.get(peerId)?.remotePeerId) unlinkCarrier(peerId)
    },
    carrierLinks,
    close: () =>
      (closing ??= (async () => {
        for (const peer of [...lateral.keys()]) unlinkCarrier(peer)
        closed = true
        clearInterval(revalidateTimer)
        idle?.stop()
        upstream?.disconnect()
        await new Promise<void>((resolve) => {
          server.close(() => resolve())
          // ws 8 with noServer emits 'close' (on which the adapter lets its peers go) only once
          // every client has gone: end them here.
          for (const client of wss.clients) client.terminate()
          wss.close()
          server.closeAllConnections()
        })
        if (!options.openRepo) {
          const ready = Object.values(repo.handles).filter((h) => h.isReady()).map((h) => h.documentId)
          await repo.flush(ready).catch(() => undefined)
          await repo.shutdown().catch(() => undefined)
        }
      })()),
  }
}

/** True when an Automerge sync message carries changes (its sender holds content). */
function bringsContent(data: Uint8Array): boolean {
  try {
    const decoded = decodeSyncMessage(data)
    return decoded.changes.length > 0 || decoded.heads.length > 0
  } catch {
    return false
  }
}
