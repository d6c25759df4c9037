/**
 * The LAN mesh of an enrolled site node (src/peer-sync/lanProtocol.ts says the protocol): a sync
 * server on the LAN, a DNS-SD advertisement and browser (bonjour-service), and one authenticated
 * link per pair of nodes, through automerge-repo network adapters behind the node's durability
 * gate. What each peer may read is the node's share rule (SiteNode#mayShare).
 *
 * - Incoming: `GET /auth/challenge`, then the upgrade on `/sync` (the relay's checks, plus the
 *   LAN's: protocol version, role, the node's revocation list, one link per peer), answered with
 *   this node's own proof.
 * - Outgoing: to each advertised node of the same deployment whose peer id sorts after this one's,
 *   an AuthenticatedWebSocketClientAdapter that checks the server's proof; it reconnects with
 *   backoff and jitter, and is dropped when the service goes away.
 * - Every peer seen, linked, refused or incompatible is kept for `GET /api/sync` (`lan`).
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Service } from 'bonjour-service'
import { advertise, type Advertised } from './advertise.ts'
import type { Logger } from 'pino'
import { WebSocketServer, type WebSocket } from 'ws'
import { AuthenticatedWebSocketClientAdapter } from '../network/AuthenticatedWebSocketClientAdapter.ts'
import { CHALLENGE_PATH, readSyncParams, refusalResponse, SYNC_PATH, type RefusalCode } from '../network/authProtocol.ts'
import { verifyRevocations } from '../network/credential.ts'
import { formatPeerId, parsePeerId } from '../network/peerId.ts'
import { isId } from '../schema/ids.ts'
import { authenticate, ChallengeStore } from '../relay/auth.ts'
import { AuthenticatedWebSocketServerAdapter } from '../relay/serverAdapter.ts'
import type { DeviceEnrolment } from '../hub/deviceEnrolment.ts'
import type { CredentialClaims } from '../schema/credential.ts'
import { answerWithProof, checkClientProof, clientProof, compareSchemas, dialParams, LAN_PROTOCOL, LAN_ROLES, lanServiceOf, parseTxt, SCHEMA_TXT, verifyServer } from './lanProtocol.ts'

/** What the mesh needs of a site node (SiteNode satisfies it). */
export interface MeshNode {
  readonly enrolment: DeviceEnrolment | undefined
  readonly peerId: string
  readonly log: Logger
  /** The node's clock, unix ms (credentials are judged by it). */
  now(): number
  /** Keeps a revocation list a carrier told, when newer (the carrier brings the hub's). */
  keepRevocations?(token: string, from: string): void
  /** Whether a LAN peer may use this storage id: not this node's, not its relay's, not another peer's. */
  storageIdFree?(storageId: string, peerId: string): boolean
  connect(adapter: AuthenticatedWebSocketClientAdapter | AuthenticatedWebSocketServerAdapter): void
  disconnect(adapter: AuthenticatedWebSocketClientAdapter | AuthenticatedWebSocketServerAdapter): void
}

export interface LanOptions {
  /** Address the sync server listens on (default all: 0.0.0.0). */
  host?: string
  /** Its port (default 0: any free one, advertised). */
  port?: number
  /** Advertise and browse with DNS-SD (default true); false: only `dial()` links (tests). */
  discover?: boolean
  /** The interface multicast DNS uses (an address of it); default the system's. */
  mdnsInterface?: string
  /** Retry delays of a link (tests shorten them). */
  minRetryMs?: number
  maxRetryMs?: number
  refusedRetryMs?: number
}

/** A LAN peer as `GET /api/sync` shows it. */
export interface LanPeer {
  peerId: string
  site: string
  device: string
  role: string
  address: string
  /** linked: connected now; linking: dialling or waiting for it to dial; refused: one side refused the other; incompatible: another protocol version. */
  state: 'linked' | 'linking' | 'refused' | 'incompatible'
  /** Who dials: this node (`out`) or the peer (`in`). */
  direction: 'out' | 'in'
  reason?: string
  /** How its document schemas compare with this node's (from its advertisement). */
  schemas?: { state: 'same' | 'newer' | 'older' | 'unknown'; detail?: string }
  since: string
}

/** At most this many LAN peers are tracked, and dialled (a flood of advertisements is ignored beyond). */
const MAX_PEERS = 256
const MAX_DIALLED = 64
const MAX_STATED = 10_000

/** What a peer id says of its holder (proven at the link). */
function namedBy(peerId: string): Pick<LanPeer, 'site' | 'device' | 'role'> {
  const parts = parsePeerId(peerId)
  return { site: parts?.site ?? '', device: parts?.device ?? '', role: parts?.role === 'site' ? 'device' : (parts?.role ?? '') }
}

export class LanMesh {
  readonly #node: MeshNode
  readonly #options: LanOptions
  readonly #enrolment: DeviceEnrolment
  readonly #challenges = new ChallengeStore()
  readonly #peers = new Map<string, LanPeer>()
  readonly #dialled = new Map<string, AuthenticatedWebSocketClientAdapter>()
  /**
   * The address each peer advertised last, also while linked (when it is not acted on): a node
   * restarted on a new port is dialled there once its old link is found dead, instead of its old
   * port for ever (the browser reports a service it knows only when it changes).
   */
  readonly #lastAdvertised = new Map<string, string>()
  /** The route (`serves`) of each carrier proven on a link. */
  readonly #proven = new Map<string, readonly string[] | undefined>()
  /** carrier → document → the owner it stated on its link now (the latest MAX_STATED; forgotten when the link drops). */
  readonly #stated = new Map<string, Map<string, string>>()
  /** The credential each linked peer proved, both directions: checked again by `revalidate`. */
  readonly #claims = new Map<string, CredentialClaims>()
  #revalidator: ReturnType<typeof setInterval> | undefined
  #server: http.Server | undefined
  #wss: WebSocketServer | undefined
  #adapter: AuthenticatedWebSocketServerAdapter | undefined
  #advertised: Advertised | undefined
  #closed = false
  port = 0

  constructor(node: MeshNode, options: LanOptions = {}) {
    if (!node.enrolment) throw new Error('the LAN mesh needs an enrolled node (stockmesh enrol)')
    this.#node = node
    this.#enrolment = node.enrolment
    this.#options = options
  }

  get #log(): Logger {
    return this.#node.log
  }

  /** Devices on the revocation list this node holds (from its enrolment, kept newer by the relay). */
  #revokedCache: { token: string; devices: Set<string> } | undefined
  isRevoked(device: string): boolean {
    const token = this.#enrolment.revocations
    if (this.#revokedCache?.token !== token) {
      const opened = verifyRevocations(token, this.#enrolment.deployment)
      this.#revokedCache = { token, devices: new Set(opened.ok ? opened.claims.devices : []) }
    }
    return this.#revokedCache.devices.has(device)
  }

  get #trust() {
    return { deployment: this.#enrolment.deployment, isRevoked: (device: string) => this.isRevoked(device), now: () => this.#node.now() }
  }

  /** Starts the sync server and, unless `discover: false`, the advertisement and the browser. */
  async start(): Promise<void> {
    const wss = new WebSocketServer({ noServer: true, maxPayload: 256 * 1024 * 1024 })
    this.#wss = wss
    const willProve = answerWithProof(wss, { credential: this.#enrolment.credential, privateKey: this.#enrolment.privateKey, peerId: this.#node.peerId })
    const storageIdFree = this.#node.storageIdFree?.bind(this.#node)
    const adapter = new AuthenticatedWebSocketServerAdapter(wss, { logger: this.#log, readyAtOnce: true, ...(storageIdFree ? { hooks: { storageIdFree } } : {}) })
    this.#adapter = adapter
    this.#node.connect(adapter)

    const server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]
      if (req.method === 'GET' && path === CHALLENGE_PATH) {
        const issued = this.#challenges.issue()
        res.writeHead(issued ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        return res.end(JSON.stringify(issued ?? { error: 'busy', reason: 'too many challenges outstanding' }))
      }
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: 'not-found', reason: `this is a stockmesh LAN sync port: sync is at ${SYNC_PATH}` }))
    })
    server.headersTimeout = 10_000
    server.requestTimeout = 15_000
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head, willProve))
    this.#server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.#options.port ?? 0, this.#options.host ?? '0.0.0.0', () => {
        server.off('error', reject)
        resolve()
      })
    })
    this.port = (server.address() as AddressInfo).port
    this.#revalidator = setInterval(() => this.revalidate(), 30_000)
    this.#revalidator.unref()
    if (this.#options.discover !== false) this.#discover()
    this.#log.info({ port: this.port, discover: this.#options.discover !== false }, 'LAN sync listening')
  }

  #refuse(socket: Duplex, code: RefusalCode, reason: string, remote: string | undefined, peer?: Pick<LanPeer, 'peerId' | 'site' | 'device' | 'role'>): void {
    this.#log.warn({ remote, error: code, peer: peer?.peerId }, `refused a LAN peer: ${reason}`)
    if (peer) this.#note({ ...peer, state: 'refused', reason: `refused by this node: ${reason}`, direction: 'in', address: remote ?? '' })
    socket.end(refusalResponse(code, reason))
  }

  #upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, willProve: (req: http.IncomingMessage, nonce: string, client: string) => void): void {
    socket.on('error', () => {})
    const remote = req.socket.remoteAddress
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://lan')
    } catch {
      return this.#refuse(socket, 'malformed', 'the request URL is not readable', remote)
    }
    if (url.pathname !== SYNC_PATH) return this.#refuse(socket, 'malformed', `sync is at ${SYNC_PATH}`, remote)
    const proto = url.searchParams.get('proto') ?? ''
    if (proto !== String(LAN_PROTOCOL)) return this.#refuse(socket, 'incompatible-protocol', `this node speaks LAN protocol ${LAN_PROTOCOL}, the peer ${proto || 'none'}: upgrade the older one`, remote)
    const nonce = url.searchParams.get('nonce') ?? ''
    if (!/^[A-Za-z0-9_-]{32,64}$/.test(nonce)) return this.#refuse(socket, 'malformed', 'no nonce for this node to prove itself with', remote)
    // The dialler's proof is a LAN one, made for this node: one made for another cannot be replayed here.
    const result = authenticate(readSyncParams(url.searchParams), { ...this.#trust, challenges: this.#challenges, checkProof: (params, claims) => checkClientProof(params.proof, params.challenge, params.peer, this.#node.peerId, claims.publicKey) })
    if (!result.ok) return this.#refuse(socket, result.code, result.reason, remote)
    const claims = result.claims
    const known = { peerId: result.peerId, site: claims.site, device: claims.device, role: claims.role }
    if (!LAN_ROLES.has(claims.role)) return this.#refuse(socket, 'wrong-role', `a ${claims.role} does not sync over the LAN`, remote, known)
    if (this.#adapter?.isConnected(result.peerId) || this.#dialled.get(result.peerId)?.remotePeerId) {
      return this.#refuse(socket, 'peer-already-connected', `${result.peerId} is linked already`, remote, undefined)
    }
    willProve(req, nonce, result.peerId)
    this.#wss!.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      this.#log.info({ peer: result.peerId, remote }, 'LAN peer linked (it dialled)')
      this.#claims.set(result.peerId, claims)
      this.#note({ ...known, state: 'linked', direction: 'in', address: remote ?? '' })
      ws.on('error', () => ws.terminate())
      ws.on('close', () => {
        if (this.#closed) return
        // (only this link's: a newer one of the same peer keeps its proof)
        if (!this.#adapter?.isConnected(result.peerId)) this.#claims.delete(result.peerId)
        this.#log.info({ peer: result.peerId }, 'LAN peer gone')
        const seen = this.#peers.get(result.peerId)
        if (seen?.state === 'linked' && seen.direction === 'in') this.#note({ ...seen, state: 'linking' })
      })
      this.#adapter!.accept(this.#wss!, ws, result.peerId, req)
    })
  }

  #note(peer: Omit<LanPeer, 'since'> & { since?: string }): void {
    const before = this.#peers.get(peer.peerId)
    const since = before && before.state === peer.state ? before.since : new Date().toISOString()
    const schemas = peer.schemas ?? before?.schemas
    this.#peers.set(peer.peerId, { ...peer, since, ...(schemas ? { schemas } : {}) })
  }

  #discover(): void {
    this.#advertised = advertise(this.#enrolment.claims, this.port, this.#log, this.#options.mdnsInterface)
    this.#advertised.browse({ seen: (service) => this.#seen(service), gone: (service) => this.#gone(service) })
  }

  #seen(service: Service): void {
    // Anything on the LAN can advertise anything: nothing it says may throw out of the multicast handler.
    try {
      this.#seenChecked(service)
    } catch (error) {
      this.#log.debug({ err: error, name: String(service.name).slice(0, 100) }, 'a LAN service that is not a stockmesh node: ignored')
    }
  }

  #seenChecked(service: Service): void {
    if (this.#closed) return
    const found = lanServiceOf(service, this.#enrolment.claims.deployment)
    if (!found) {
      this.#log.debug({ name: String(service.name).slice(0, 100) }, 'not a stockmesh node of this deployment: ignored')
      return
    }
    const { peerId, url: target, txt } = found
    if (peerId === this.#node.peerId) return
    if (this.#lastAdvertised.has(peerId) || this.#lastAdvertised.size < MAX_PEERS) this.#lastAdvertised.set(peerId, target)
    // A linked peer's row is what it proved: an advertisement in its name (anyone's) changes nothing now.
    if (this.#peers.get(peerId)?.state === 'linked') return
    // Anything on the LAN can advertise: a flood of made-up nodes fills neither the table nor the
    // links for good — when full, the oldest peer that never linked makes room.
    if (!this.#peers.has(peerId) && this.#peers.size >= MAX_PEERS && !this.#evictOne()) {
      this.#log.warn({ max: MAX_PEERS }, 'too many stockmesh nodes linked on this LAN: the others are ignored')
      return
    }
    const schemas = compareSchemas(txt.sv)
    if (schemas.detail && this.#peers.get(peerId)?.schemas?.state !== schemas.state) this.#log.warn({ peer: peerId, theirs: txt.sv, ours: SCHEMA_TXT }, `a LAN peer with other document schemas: ${schemas.detail}`)
    const base = { peerId, site: txt.site, device: txt.dev, role: txt.role, address: target, schemas }
    if (txt.pv !== String(LAN_PROTOCOL)) {
      if (this.#peers.get(peerId)?.state !== 'incompatible') this.#log.warn({ peer: peerId, theirs: txt.pv, ours: LAN_PROTOCOL }, 'a LAN peer speaks another protocol version: not linked (upgrade the older one)')
      this.#note({ ...base, state: 'incompatible', direction: 'out', reason: `it speaks LAN protocol ${txt.pv}, this node ${LAN_PROTOCOL}: upgrade the older one` })
      return
    }
    if (!LAN_ROLES.has(txt.role)) return
    // One link per pair: the smaller peer id dials; a carrier only ever answers (it is a relay that travels).
    if (txt.role !== 'carrier' && this.#node.peerId > peerId) {
      const seen = this.#peers.get(peerId)
      if (!seen) this.#note({ ...base, state: 'linking', direction: 'in' })
      else this.#peers.set(peerId, { ...seen, schemas })
      return
    }
    this.dial(peerId, target, base)
  }

  /** Links to the node at `url` (ws://host:port) that advertised itself as `peerId`. */
  dial(peerId: string, url: string, seen: Pick<LanPeer, 'site' | 'device' | 'role' | 'schemas'> = namedBy(peerId)): void {
    const current = this.#dialled.get(peerId)
    if (current?.url === url) return
    // A linked peer keeps its link: another advertisement in its name (a stranger's, perhaps) changes nothing.
    if (current?.remotePeerId) return
    if (current) this.#drop(peerId)
    if (this.#dialled.size >= MAX_DIALLED && !this.#evictOne(true)) {
      this.#log.warn({ max: MAX_DIALLED }, 'too many LAN peers linked: the others are not dialled')
      return
    }
    const adapter = new AuthenticatedWebSocketClientAdapter({
      url,
      credential: this.#enrolment.credential,
      privateKey: this.#enrolment.privateKey,
      logger: this.#log,
      label: 'LAN peer',
      minRetryMs: this.#options.minRetryMs ?? 500,
      maxRetryMs: this.#options.maxRetryMs ?? 30_000,
      refusedRetryMs: this.#options.refusedRetryMs ?? 60_000,
      ...(this.#node.storageIdFree ? { storageIdFree: this.#node.storageIdFree.bind(this.#node) } : {}),
      // A carrier states whose each document is by its record, before the document's first sync message.
      onControl: (control, from) => {
        if (from !== peerId || !this.#proven.get(peerId)) return
        // A carrier brings the hub's newest revocation list to sites that have no relay.
        if (control.kind === 'revocations') return void this.#node.keepRevocations?.(control.revocations, peerId)
        if (control.kind !== 'owner') return
        let stated = this.#stated.get(peerId)
        if (!stated) this.#stated.set(peerId, (stated = new Map()))
        if (stated.size >= MAX_STATED) stated.delete(stated.keys().next().value!)
        stated.set(control.documentId, control.owner)
      },
      peerCheck: {
        prove: (challenge, me) => clientProof(challenge, me, peerId, this.#enrolment.privateKey),
        params: dialParams,
        verify: (headers, params) => {
          const verdict = verifyServer(headers, params, this.#trust, this.#node.peerId)
          // The advertised name must be the proven one: no node answers for another.
          if (verdict.ok && verdict.peerId !== peerId) return { ok: false, refusal: { error: 'wrong-peer-id', reason: `${url} advertised itself as ${peerId} but proved to be ${verdict.peerId}` } }
          if (verdict.ok) {
            this.#proven.set(peerId, verdict.claims.serves)
            this.#claims.set(peerId, verdict.claims)
          }
          return verdict
        },
      },
    })
    this.#dialled.set(peerId, adapter)
    this.#note({ peerId, ...seen, address: url, state: 'linking', direction: 'out' })
    adapter.on('peer-candidate', () => {
      this.#log.info({ peer: peerId, url }, 'LAN peer linked (this node dialled)')
      this.#note({ peerId, ...seen, address: url, state: 'linked', direction: 'out' })
    })
    adapter.on('peer-disconnected', () => {
      this.#stated.delete(peerId)
      if (this.#closed || this.#dialled.get(peerId) !== adapter) return
      // What it proved held for that link: proven again at the next.
      this.#claims.delete(peerId)
      this.#proven.delete(peerId)
      const refusal = adapter.lastRefusal
      this.#note({ peerId, ...seen, address: url, state: refusal ? 'refused' : 'linking', direction: 'out', ...(refusal ? { reason: refusal.reason } : {}) })
      // It went away and came back elsewhere (a restart on a new port) while the link was up: dial it there.
      const latest = this.#lastAdvertised.get(peerId)
      if (latest && latest !== url) {
        this.#log.info({ peer: peerId, from: url, to: latest }, 'LAN peer advertised a new address: dialled there')
        this.#drop(peerId)
        this.dial(peerId, latest, seen)
      }
    })
    this.#node.connect(adapter)
  }

  /**
   * Forgets the LAN peer seen longest ago that is not linked (a dialled one: its link stops);
   * `dialled`: among those this node dials. False when every one is linked.
   */
  #evictOne(dialled = false): boolean {
    let oldest: LanPeer | undefined
    for (const peer of this.#peers.values()) {
      if (peer.state === 'linked' || (dialled && !this.#dialled.has(peer.peerId))) continue
      if (this.#dialled.get(peer.peerId)?.remotePeerId) continue
      if (!oldest || peer.since < oldest.since) oldest = peer
    }
    if (!oldest) return false
    this.#log.warn({ peer: oldest.peerId, max: MAX_PEERS }, 'too many stockmesh nodes advertised on this LAN: forgot the oldest one never linked')
    this.#drop(oldest.peerId)
    this.#peers.delete(oldest.peerId)
    return true
  }

  #drop(peerId: string): void {
    this.#stated.delete(peerId)
    const adapter = this.#dialled.get(peerId)
    if (!adapter) return
    this.#dialled.delete(peerId)
    adapter.disconnect()
    this.#node.disconnect(adapter)
  }

  #gone(service: Service): void {
    const txt = parseTxt(service.txt)
    if (!txt || !isId(txt.site) || !isId(txt.dev)) return
    const peerId = formatPeerId({ role: txt.role === 'carrier' ? 'carrier' : txt.role === 'relay' ? 'relay' : 'site', site: txt.site, device: txt.dev })
    // The link itself says when the peer is really gone; a dialled one stops trying.
    if (this.#dialled.has(peerId) && !this.#dialled.get(peerId)!.remotePeerId) this.#drop(peerId)
  }

  /**
   * Checks every linked peer's credential again (every 30 s, and when the node keeps a newer
   * revocation list): one revoked or expired since it linked is cut off, in either direction, and
   * recorded as refused. Returns the peers cut off.
   */
  revalidate(): string[] {
    const cut: string[] = []
    for (const [peerId, claims] of this.#claims) {
      const revoked = this.isRevoked(claims.device)
      const why = revoked ? `device ${claims.device} has been revoked by the deployment` : this.#node.now() >= claims.expiresAt ? `the credential of device ${claims.device} has expired` : undefined
      if (!why) continue
      this.#claims.delete(peerId)
      this.#proven.delete(peerId)
      const seen = this.#peers.get(peerId)
      const adapter = this.#dialled.get(peerId)
      if (adapter) this.#drop(peerId)
      this.#adapter?.closePeer(peerId, revoked ? 'revoked' : 'expired', why)
      this.#note({ ...(seen ?? { peerId, ...namedBy(peerId), address: '', direction: adapter ? 'out' : 'in' }), state: 'refused', reason: `cut off by this node: ${why}` })
      this.#log.warn({ peer: peerId }, `LAN peer cut off: ${why}`)
      cut.push(peerId)
    }
    return cut
  }

  /** The owner a linked carrier stated for a document (its record: who brought it to a relay or carrier first). */
  ownerStated(peerId: string, documentId: string): string | undefined {
    return this.#stated.get(peerId)?.get(documentId)
  }

  /** The sites a carrier proved it serves (its route), or undefined when no such carrier is linked. */
  routeOf(peerId: string): readonly string[] | undefined {
    return this.#proven.get(peerId)
  }

  /** Every LAN peer seen, with its state (refusals read from the links as they are now). */
  peers(): LanPeer[] {
    const out: LanPeer[] = []
    for (const peer of this.#peers.values()) {
      const adapter = this.#dialled.get(peer.peerId)
      if (adapter?.lastRefusal && peer.state !== 'linked') out.push({ ...peer, state: 'refused', reason: adapter.lastRefusal.reason })
      else out.push(peer)
    }
    return out.sort((a, b) => (a.peerId < b.peerId ? -1 : 1))
  }

  async stop(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#revalidator)
    for (const peerId of [...this.#dialled.keys()]) this.#drop(peerId)
    await this.#advertised?.stop()
    await new Promise<void>((resolve) => {
      if (!this.#server) return resolve()
      this.#server.close(() => resolve())
      for (const client of this.#wss?.clients ?? []) client.terminate()
      this.#wss?.close()
      this.#server.closeAllConnections()
    })
    if (this.#adapter) this.#node.disconnect(this.#adapter)
  }
}
