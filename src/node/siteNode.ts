/**
 * A site node: one automerge-repo Repo on crash-safe disk storage holding a site's documents,
 * loaded from the site's index at start, with the ledger's posting rules and a local HTTP API.
 *
 * Start-up, in the order that makes the site usable soonest:
 *   0. the data folder's lock (one process per folder: src/node/dataFolderLock.ts);
 *   1. identity (site, node, index URL) from storage, or provisioning of a new site;
 *   2. the index, catalog and ledger documents (migrated if older, read-only if newer);
 *   3. the latest journal of every device, which hold on hand;                        → usable
 *   4. every older journal indexed (`indexed`: movement ids, postings, stored balances) from the
 *      journal cache, or loaded, indexed and unloaded again — enough to record and to answer the
 *      movement lists, the ledger check and the review queue;
 *   5. in the background: the orders, the manifests and the documents other sites share.
 * Journals not being written stay out of memory (loaded again when a peer needs one).
 *
 * Domain steps that span documents (creating an indexed document, delivering a stop into the
 * ledger, deciding review items) are node services in src/node/{ledger,orders,manifests}.ts, which
 * the HTTP API, the app, the relay and the ERP bridge all call; listeners learn what happened
 * from `events` (src/node/events.ts).
 */
import { randomBytes } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { EventEmitter } from 'node:events'
import path from 'node:path'
import { Repo, type AutomergeUrl, type DocHandle, type DocumentId, type NetworkAdapterInterface, type PeerId } from '@automerge/automerge-repo'
import type { Logger } from 'pino'
import { z } from 'zod'
import { createCatalog, isKnownSku, isLotTracked, reasonCodes } from '../docs/catalog.ts'
import { changeOptions, type ChangeNote } from '../docs/history.ts'
import { createLedger, journalEntries, journalFacts, journalPosting, journalPostings, latestJournals } from '../docs/ledger.ts'
import { LedgerBook } from '../docs/ledgerBook.ts'
import { createSiteIndex } from '../docs/siteIndex.ts'
import type { CatalogDoc } from '../schema/catalog.ts'
import { ReadOnlyDocumentError } from '../schema/errors.ts'
import { SiteId, DeviceId, isId } from '../schema/ids.ts'
import type { JournalDoc, LedgerDoc } from '../schema/ledger.ts'
import { migrate, schemaState, type DocKind } from '../schema/migrations.ts'
import type { SiteIndexDoc } from '../schema/siteIndex.ts'
import { own } from '../schema/ownProperty.ts'
import { str } from '../schema/strings.ts'
import { DurableGate } from '../network/durableGate.ts'
import { AuthenticatedWebSocketClientAdapter } from '../network/AuthenticatedWebSocketClientAdapter.ts'
import { peerIdOfCredential } from '../network/authProtocol.ts'
import { formatPeerId, parsePeerId } from '../network/peerId.ts'
import { partiesOf, text } from '../relay/access.ts'
import { LanMesh, type LanOptions } from '../peer-sync/lanMesh.ts'
import { canonicalDataDir, type DataFolderLock, lockDataFolder } from './dataFolderLock.ts'
import type { NodeDocumentKind, SiteNodeEvents } from './events.ts'
import { reconcileDecisions } from './ledger.ts'
import { reconcileReceipts } from './manifests.ts'
import * as A from '@automerge/automerge'
import { addShared, sharedDocuments } from '../docs/siteDirectory.ts'
import { JournalCache } from './journalCache.ts'
import { hasOwnKey } from '../schema/ownProperty.ts'
import type { SiteDirectoryDoc } from '../schema/siteDirectory.ts'
import { RepoLedgerStore } from './repoLedgerStore.ts'
import { DurableFsStorageAdapter } from './storage/DurableFsStorageAdapter.ts'
import { DocumentStorage, sameHeads } from './storage/documentStorage.ts'
import { parseAutomergeUrl } from '@automerge/automerge-repo'
import { verifyCredential } from '../network/credential.ts'
import type { EnrolmentFile } from '../schema/credential.ts'
import { keepNewerRevocations, loadDeviceEnrolment, saveDeviceEnrolment, type DeviceEnrolment } from '../hub/deviceEnrolment.ts'

/** `value` checked as an id, with a message a person can act on; undefined stays undefined. */
function checkedId(schema: typeof SiteId | typeof DeviceId, value: string | undefined, what: string): string | undefined {
  if (value === undefined) return undefined
  const parsed = schema.safeParse(value)
  if (!parsed.success) throw new Error(`${JSON.stringify(value)} is not a valid ${what}: ${parsed.error.issues[0]?.message}`)
  return parsed.data
}

/** What a node is, kept in its storage next to the documents. */
const Identity = z.strictObject({
  site: SiteId,
  node: DeviceId,
  index: z.string().startsWith('automerge:'),
})
type Identity = z.infer<typeof Identity>
const IDENTITY_KEY = ['stockmesh-identity']

/**
 * Journals a peer opened (or a start loaded) leave memory again once quiet for this long and held
 * by every connected peer: a site's memory does not grow with its history (issue 7).
 */
export const UNLOAD_SWEEP_MS = 60_000

/**
 * After the relay has been out of reach this long, the next posting opens a new journal (once per
 * outage): a journal the relay partly holds would otherwise catch up change by change, ~200 B per
 * movement, against ~37 B for a journal sent whole (BENCHMARKS.md sections 3 and 5).
 */
export const OFFLINE_JOURNAL_AFTER_MS = 15 * 60_000

export interface SiteNodeOptions {
  /** Data folder; documents live in `<dataDir>/automerge`. */
  dataDir: string
  /** Site id; needed the first time a data folder is used, must match afterwards. */
  site?: string
  /** Device id of this node; generated on first start if not given. */
  node?: string
  logger: Logger
  /** Clock, unix ms (tests pass their own). */
  now?: () => number
  /** A relay outage this long (ms) makes the next posting open a new journal; default `OFFLINE_JOURNAL_AFTER_MS`. */
  offlineJournalAfterMs?: number
  /** How often quiet journals are unloaded (ms); default `UNLOAD_SWEEP_MS`. */
  unloadSweepMs?: number
  /** Tests: the background load (orders, manifests, shared documents) starts only once this resolves. */
  backgroundLoadAfter?: Promise<unknown>
  /** Fills the catalog of a newly provisioned site. */
  provisionCatalog?: (catalog: CatalogDoc) => void
  /**
   * The data folder's lock, when the caller took it already (the CLI takes it before binding its
   * port). Otherwise `open` takes it and `close` releases it.
   */
  lock?: DataFolderLock
  /**
   * A checked enrolment file (src/hub/enrol.ts `readEnrolmentFile`): the first start provisions the
   * folder from it (the site's documents from its snapshots, the credential and key into the folder);
   * refused on a folder already provisioned.
   */
  enrolment?: EnrolmentFile
}

export class SiteNode {
  readonly repo: Repo
  readonly gate = new DurableGate()
  readonly book: LedgerBook
  readonly store: RepoLedgerStore
  #fullyLoaded: Promise<void> = Promise.resolve()
  /** Documents found newer than this code: kept intact, shown read-only. */
  readonly readOnly = new Map<string, ReadOnlyDocumentError>()
  readonly orders = new Map<string, DocHandle<unknown>>()
  readonly manifests = new Map<string, DocHandle<unknown>>()
  /** Movements posted, documents added or loaded, decisions, peers: src/node/events.ts. */
  readonly events = new EventEmitter<SiteNodeEvents>()
  #closed = false
  /** The lock `open` took itself (released by `close`). */
  #ownLock: DataFolderLock | undefined
  /** Credential, key, deployment and relay of a node provisioned from an enrolment file; undefined otherwise. */
  enrolment: DeviceEnrolment | undefined

  private constructor(
    readonly identity: Identity,
    repo: Repo,
    readonly index: DocHandle<SiteIndexDoc>,
    readonly catalog: DocHandle<CatalogDoc>,
    ledger: DocHandle<LedgerDoc>,
    readonly options: SiteNodeOptions,
  ) {
    this.repo = repo
    this.store = new RepoLedgerStore(repo, ledger, this.gate)
    this.book = new LedgerBook(this.store, {
      node: identity.node,
      site: identity.site,
      knownSku: (sku) => isKnownSku(catalog.doc(), sku),
      lotTracked: (sku) => isLotTracked(catalog.doc(), sku),
      knownReasons: () => reasonCodes(catalog.doc()),
      now: () => this.now(),
      rollOver: () => this.#offlineRollOver(),
    })
  }

  /** Since when the relay link is down (Date.now ms); undefined while it is up or there is no relay. */
  #relayDownSince: number | undefined
  /** The outage (its `#relayDownSince`) a journal was opened for already. */
  #rolledFor: number | undefined

  /**
   * True once per relay outage longer than `offlineJournalAfterMs` (the first posting then opens a
   * new journal: what is recorded offline travels whole when the link is back; see LedgerBook's
   * `rollOver`). A flapping link opens at most one journal per outage of that length.
   */
  #offlineRollOver(): boolean {
    const since = this.#relayDownSince
    if (!this.relay || since === undefined || this.#rolledFor === since) return false
    if (Date.now() - since < (this.options.offlineJournalAfterMs ?? OFFLINE_JOURNAL_AFTER_MS)) return false
    this.#rolledFor = since
    this.log.info({ offlineSinceMs: Date.now() - since }, 'the relay has been out of reach: movements go into a new journal')
    return true
  }

  #cache: JournalCache | undefined
  #sweeper: ReturnType<typeof setInterval> | undefined
  #sweeping: Promise<void> | undefined
  /** How the Repo loads and saves documents (src/node/storage/documentStorage.ts). */
  documents!: DocumentStorage
  #compacting: Promise<void> | undefined
  /** Ends the compaction loop's wait for an idle moment (a document is overdue). */
  #overdue: (() => void) | undefined

  /**
   * Compacts the documents whose incremental chunks outgrew their snapshot, one at a time and only
   * while no movement is being recorded (never inside a user's save).
   */
  #compactSoon(): void {
    if (this.#compacting || this.#closed) return
    this.#compacting = (async () => {
      for (;;) {
        // Recording comes first, unless a sustained burst left a document overdue (its change log
        // several times its snapshot): then it is compacted between two postings anyway.
        await Promise.race([this.book.settled(), new Promise<void>((resolve) => (this.#overdue = resolve))])
        this.#overdue = undefined
        await new Promise((resolve) => setImmediate(resolve))
        if (this.#closed) return
        const next = this.documents.compactable()[0]
        if (next === undefined) return
        const handle = this.repo.handles[next]
        if (!handle?.isReady()) {
          this.documents.forget(next)
          continue
        }
        await this.documents.compact(next, handle.doc()).catch((error: unknown) => this.log.warn({ err: error, documentId: next }, 'compacting a document failed (its chunks stay as they are)'))
      }
    })().finally(() => {
      this.#compacting = undefined
    })
  }

  #idsIndexed: Promise<void> = Promise.resolve()

  /**
   * Resolves when every movement of every journal the ledger named at start is indexed (from the
   * journal cache, or by loading the journal): enough to check movement ids and so to record.
   */
  get indexed(): Promise<void> {
    return this.#idsIndexed
  }

  /**
   * Compensating adjustments of a decision a crash left unposted (the decision is recorded first).
   * Needs only the ledger and the movement ids: run before recording opens, and again (idempotent)
   * after the background load.
   */
  async #reconcileDecisions(): Promise<void> {
    const compensated = await reconcileDecisions(this).catch((error: unknown) => {
      this.log.error({ err: error }, 'posting the compensations of recorded decisions failed')
      return []
    })
    if (compensated.length > 0) this.log.warn({ movements: compensated.map((r) => r.posting.id) }, 'posted compensating adjustments missing from the ledger')
  }

  /**
   * Journals indexed but not loaded (from the journal cache, or loaded once and unloaded since),
   * with the heads they were indexed at. A peer opening one in the Repo, or a peer that lacks it
   * connecting, loads it again.
   */
  readonly #unloaded = new Map<string, string>()

  /** Indexes the journals not loaded yet: from the cache when their content is unchanged, else by loading them. */
  async #indexJournals(): Promise<void> {
    const started = performance.now()
    let cached = 0
    let loaded = 0
    const entries = journalEntries(this.store.ledger.doc()).reverse().filter((e) => !this.store.journal(e.url))
    // Each read lists the journal's chunks (its token): all at once, the file system queues them.
    const reads = await Promise.all(entries.map((e) => this.#cache?.read(e.url).catch(() => undefined)))
    for (const [i, { url }] of entries.entries()) {
      if (this.#closed) return
      const hit = reads[i]
      if (hit && !this.store.journal(url)) {
        this.book.indexFacts(url, hit.facts, hit.postings)
        this.#unloaded.set(url, hit.heads)
        cached++
        continue
      }
      await this.#loadJournal(url).catch((error: unknown) => this.log.warn({ err: error, url }, 'journal not available yet'))
      await this.#unloadJournal(url).catch((error: unknown) => this.log.warn({ err: error, url }, 'unloading an indexed journal failed'))
      loaded++
    }
    if (loaded > 0) await this.#cache?.save(new Set(journalEntries(this.store.ledger.doc()).map((e) => e.url))).catch((error: unknown) => this.log.warn({ err: error }, 'the journal cache was not written'))
    this.log.info({ cached, loaded, ms: Math.round(performance.now() - started) }, 'movement ids indexed')
  }

  /** This node's current journal (the one it writes). */
  #ownCurrent(): string | undefined {
    return journalEntries(this.store.ledger.doc()).filter((e) => e.node === this.identity.node).at(-1)?.url
  }

  /**
   * Whether the loaded journal at `url` may leave memory: not this node's current journal, and a
   * newer journal of its device is loaded (on hand counts each device's newest loaded journal).
   */
  #unloadable(url: string): boolean {
    if (url === this.#ownCurrent() || url === this.book.ownJournalUrl) return false
    const entries = journalEntries(this.store.ledger.doc())
    const entry = entries.find((e) => e.url === url)
    return entry !== undefined && entries.some((e) => e.node === entry.node && e.n > entry.n && this.store.journal(e.url) !== undefined)
  }

  /**
   * Unloads an indexed journal: flushed, its entry written into the journal cache (postings and
   * stored balances, read at the heads that are on disk), then dropped from the Repo. Only when
   * nothing changed it meanwhile and no change of it waits for the disk. Returns whether it did.
   * The Repo's save of the emptied document that `removeFromCache` triggers (automerge-repo #435)
   * is ignored by DocumentStorage, which never saves an empty document.
   */
  async #unloadJournal(url: string, peersAt = this.#peerEpoch): Promise<boolean> {
    const ref = this.store.journal(url)
    if (!ref || ref.holds > 0 || !this.#unloadable(url)) return false
    const doc = ref.doc()
    const heads = A.getHeads(doc as A.Doc<JournalDoc>).join()
    await this.repo.flush([ref.handle.documentId])
    const cache = this.#cache
    const token = cache && !cache.has(url, heads) ? await cache.token(url) : undefined
    // A peer that connected meanwhile was not asked whether it holds this journal: keep it loaded.
    if (this.#closed || this.store.journal(url) !== ref || ref.holds > 0 || this.#peerEpoch !== peersAt || A.getHeads(ref.doc() as A.Doc<JournalDoc>).join() !== heads) return false
    const facts = journalFacts(doc)
    if (cache && token !== undefined) cache.put(url, token, heads, facts, journalPostings(doc))
    this.book.forgetDocument(url, facts)
    this.store.removeJournal(url)
    this.#unloaded.set(url, heads)
    await this.repo.removeFromCache(ref.handle.documentId)
    this.documents.forget(ref.handle.documentId)
    return true
  }

  /** Counts peer connections: an unload checked against the peers of an older count is called off. */
  #peerEpoch = 0

  /** Heads of each loaded journal at the previous sweep: a journal unloads only once it is quiet. */
  #lastSeen = new Map<string, string>()

  /**
   * Unloads the journals that are quiet (heads unchanged since the previous sweep), unloadable, and
   * held by every connected peer that keeps what it syncs (its remote heads equal ours). Runs
   * every `UNLOAD_SWEEP_MS` and never while a movement is being recorded.
   */
  async #sweepJournals(): Promise<void> {
    await this.book.settled()
    const seen = new Map<string, string>()
    let unloaded = 0
    const peersAt = this.#peerEpoch
    const peers = this.repo.peers.map((peerId) => this.repo.peerMetadataByPeerId[peerId]?.storageId)
    for (const ref of [...this.store.journals()]) {
      if (this.#closed) return
      const heads = A.getHeads(ref.doc() as A.Doc<JournalDoc>)
      const joined = heads.join()
      seen.set(ref.url, joined)
      if (this.#lastSeen.get(ref.url) !== joined || !this.#unloadable(ref.url)) continue
      const held = peers.every((storageId) => storageId === undefined || sameHeads(ref.handle.getSyncInfo(storageId)?.lastHeads ?? [], ref.handle.heads()))
      if (held && (await this.#unloadJournal(ref.url, peersAt))) unloaded++
    }
    this.#lastSeen = seen
    if (unloaded > 0) {
      await this.#cache?.save(new Set(journalEntries(this.store.ledger.doc()).map((e) => e.url)))
      this.log.debug({ unloaded }, 'quiet journals unloaded')
    }
  }

  /**
   * A peer connected: the journals that are not loaded and that it may lack (its stored sync state
   * does not show our heads as shared) are loaded, so that the Repo offers them to it.
   */
  async #offerUnloaded(peerId: PeerId): Promise<void> {
    // After a sweep in progress: what it unloads is then in `#unloaded` (it re-checks the peers before each).
    await this.#sweeping
    const storageId = this.repo.peerMetadataByPeerId[peerId]?.storageId
    for (const [url, heads] of [...this.#unloaded]) {
      if (this.#closed) return
      const { documentId } = parseAutomergeUrl(url as AutomergeUrl)
      const state = storageId ? await this.repo.storageSubsystem?.loadSyncState(documentId, storageId).catch(() => undefined) : undefined
      if (state && heads.split(',').every((h) => state.sharedHeads.includes(h))) continue
      await this.#loadJournal(url).catch((error: unknown) => this.log.warn({ err: error, url }, 'loading a journal to offer a peer failed'))
    }
  }

  /**
   * Writes the journal cache: every journal loaded except this node's current one, each flushed,
   * then its token read, then its postings taken (so they hold at least what the token names).
   * Entries of journals not loaded stay as they are.
   */
  async #saveCache(): Promise<void> {
    const cache = this.#cache
    if (!cache) return
    const entries = journalEntries(this.store.ledger.doc())
    const mine = this.#ownCurrent()
    for (const { url } of entries) {
      const ref = this.store.journal(url)
      if (!ref || url === mine) continue
      // The content as it is now; kept only if nothing changed it while it was flushed and its
      // token read (then the disk holds exactly this content).
      const doc = ref.doc()
      const heads = A.getHeads(doc as A.Doc<JournalDoc>).join()
      if (cache.has(url, heads)) continue
      await this.repo.flush([ref.handle.documentId])
      const token = await cache.token(url)
      if (A.getHeads(ref.doc() as A.Doc<JournalDoc>).join() !== heads) continue
      cache.put(url, token, heads, journalFacts(doc), journalPostings(doc))
    }
    await cache.save(new Set(entries.map((e) => e.url)))
  }

  /** Resolves when every journal, order and manifest named by the index is loaded and indexed. */
  get fullyLoaded(): Promise<void> {
    return this.#fullyLoaded
  }

  get log(): Logger {
    return this.options.logger
  }

  /**
   * Opens (or provisions) the site in `dataDir` and returns once it is usable. Refuses a folder
   * another process (or this one) holds, with `DataFolderLockedError` naming the holder.
   */
  static async open(options: SiteNodeOptions): Promise<SiteNode> {
    if (options.lock && options.lock.dir !== canonicalDataDir(options.dataDir)) {
      throw new Error(`internal: the lock given is for ${options.lock.dir}, not ${options.dataDir}`)
    }
    const ownLock = options.lock ? undefined : await lockDataFolder(options.dataDir, { command: 'stockmesh site node' })
    try {
      const node = await SiteNode.#open(options, options.lock ?? ownLock!)
      node.#ownLock = ownLock
      node.#ownStorageId = await node.repo.storageId().catch(() => undefined)
      return node
    } catch (error) {
      await ownLock?.release()
      throw error
    }
  }

  static async #open(options: SiteNodeOptions, lock: DataFolderLock): Promise<SiteNode> {
    const started = performance.now()
    const storage = new DurableFsStorageAdapter(path.join(options.dataDir, 'automerge'))
    const saved = await storage.load(IDENTITY_KEY)
    let identity: Identity | undefined
    if (saved) {
      let raw: unknown
      try {
        raw = JSON.parse(Buffer.from(saved).toString('utf8'))
      } catch {
        raw = undefined
      }
      const parsed = Identity.safeParse(raw)
      if (!parsed.success) throw new Error(`${options.dataDir}: the node identity is damaged (${parsed.error.issues[0]?.message}); restore the folder from a backup`)
      identity = parsed.data
      if (options.enrolment) {
        throw new Error(`${options.dataDir} is provisioned already (site ${identity.site}, device ${identity.node}): --enrol is only for a folder's first start; start it without --enrol`)
      }
      if (options.site !== undefined && options.site !== identity.site) {
        throw new Error(`${options.dataDir} holds site ${identity.site}, not ${options.site}`)
      }
      if (options.node !== undefined && options.node !== identity.node) {
        throw new Error(`${options.dataDir} is device ${identity.node}, not ${options.node}: a data folder keeps the device id it was provisioned with`)
      }
    }
    let enrolled: { site: string; node: string } | undefined
    if (!identity && options.enrolment) {
      const opened = verifyCredential(options.enrolment.credential, options.enrolment.deployment, (options.now ?? Date.now)())
      if (!opened.ok) throw new Error(`the enrolment is refused: ${opened.message}`)
      enrolled = { site: opened.claims.site, node: opened.claims.device }
      if (options.site !== undefined && options.site !== enrolled.site) throw new Error(`the enrolment file is for site ${enrolled.site}, not ${options.site}`)
      if (options.node !== undefined && options.node !== enrolled.node) throw new Error(`the enrolment file is for device ${enrolled.node}, not ${options.node}`)
    }
    const node = identity?.node ?? enrolled?.node ?? checkedId(DeviceId, options.node, 'device id (--node)') ?? `dev-${randomBytes(4).toString('hex')}`
    const site = identity?.site ?? enrolled?.site ?? checkedId(SiteId, options.site, 'site id (--site)')
    if (!site) throw new Error(`${options.dataDir} is not provisioned yet: give the site id (--site)`)
    // The Repo writes its storage id at once: the folder exists from here, so hold it by its
    // identity too (a bind mount or another spelling of the path then finds it locked).
    await mkdir(options.dataDir, { recursive: true })
    await lock.holdIdentity()
    // An enrolled device's peer id is the one its credential names (the relay binds the two).
    const checked = options.enrolment ? verifyCredential(options.enrolment.credential, options.enrolment.deployment, (options.now ?? Date.now)()) : undefined
    const claims = checked?.ok ? checked.claims : (await loadDeviceEnrolment(options.dataDir))?.claims
    const peerId = claims ? peerIdOfCredential(claims) : formatPeerId({ role: 'site', site, device: node })
    // Who gets which document (SiteNode#mayShare), decided once the node exists; before that no peer is connected.
    let share: ((peer: string, documentId: string | undefined, mode: 'announce' | 'access') => boolean) | undefined
    const decide = (mode: 'announce' | 'access') => async (peer: PeerId, documentId?: string) => (share ? share(peer, documentId, mode) : false)
    const repo = new Repo({ storage, network: [], peerId: peerId as PeerId, shareConfig: { announce: decide('announce'), access: decide('access') } })
    const documents = new DocumentStorage(storage).install(repo)

    if (!identity && options.enrolment) {
      identity = await SiteNode.#provisionFromEnrolment(repo, storage, { site, node }, options.enrolment, options.dataDir)
      options.logger.info({ site, node, deployment: options.enrolment.deployment.id, dataDir: options.dataDir }, 'provisioned from an enrolment file')
    } else if (!identity) {
      identity = await SiteNode.#provision(repo, storage, { site: SiteId.parse(site), node: DeviceId.parse(node) }, options)
      options.logger.info({ site, node, dataDir: options.dataDir }, 'provisioned a new site')
    }
    const enrolment = await loadDeviceEnrolment(options.dataDir)
    const index = await repo.find<SiteIndexDoc>(identity.index as AutomergeUrl)
    const [catalog, ledger] = await Promise.all([
      repo.find<CatalogDoc>(str(index.doc().catalog) as AutomergeUrl),
      repo.find<LedgerDoc>(str(index.doc().ledger) as AutomergeUrl),
    ])
    const siteNode = new SiteNode(identity, repo, index, catalog, ledger, options)
    share = (peer, documentId, mode) => siteNode.mayShare(peer, documentId, mode)
    siteNode.documents = documents
    documents.onCompactable = () => siteNode.#compactSoon()
    documents.onOverdue = () => {
      siteNode.#compactSoon()
      siteNode.#overdue?.()
    }
    // A peer syncing a journal that is not loaded makes the Repo load it from disk (automerge-repo
    // 2.5.6 emits no event for that): index it then, so that its new movements are indexed (and
    // announced) as they arrive, and it is unloaded again when quiet.
    documents.onLoaded = (documentId) => siteNode.#journalOpened(`automerge:${documentId}`)
    documents.onFirstSaved = (documentId, doc) => siteNode.#arrived(documentId, doc)
    documents.onDamage = (documentId, detail) => options.logger.error({ documentId, ...detail }, 'a change log held damaged records before its end: a copy is kept and the log cut to its last whole record')
    siteNode.enrolment = enrolment
    siteNode.#watchPeers()
    for (const [kind, handle] of [['siteIndex', index], ['catalog', catalog], ['ledger', ledger]] as const) siteNode.#upgrade(kind, handle)

    const [cache] = await Promise.all([JournalCache.open(options.dataDir, storage, options.logger, { count: (url) => siteNode.book.countOfJournal(url), postings: (url) => siteNode.book.postingsOfJournal(url) }), siteNode.#loadLatestJournals()])
    siteNode.#cache = cache
    siteNode.#idsIndexed = siteNode.#indexJournals().then(() => siteNode.#reconcileDecisions())
    siteNode.#fullyLoaded = Promise.all([siteNode.#idsIndexed, options.backgroundLoadAfter])
      .then(() => siteNode.#loadRest())
      .then(() => siteNode.#saveCache())
    siteNode.fullyLoaded.catch((error: unknown) => options.logger.error({ err: error }, 'loading the rest of the site failed'))
    siteNode.#sweeper = setInterval(() => {
      if (siteNode.#sweeping) return
      siteNode.#sweeping = siteNode.#sweepJournals()
        .catch((error: unknown) => options.logger.warn({ err: error }, 'unloading quiet journals failed'))
        .finally(() => (siteNode.#sweeping = undefined))
    }, options.unloadSweepMs ?? UNLOAD_SWEEP_MS)
    siteNode.#sweeper.unref()
    ledger.on('change', () => void siteNode.#loadNewJournals())
    // A new journal or order of this site's is its own once the ledger or index names it: offered then.
    for (const handle of [ledger, index]) {
      handle.on('change', () => {
        siteNode.#own = undefined
        siteNode.#shareChanged()
      })
    }
    siteNode.#watchChanges('ledger', 'ledger', ledger)
    siteNode.#watchChanges('catalog', 'catalog', catalog)
    options.logger.info({ site, node: identity.node, ms: Math.round(performance.now() - started) }, 'site usable')
    return siteNode
  }

  static async #provision(repo: Repo, storage: DurableFsStorageAdapter, who: { site: string; node: string }, options: SiteNodeOptions): Promise<Identity> {
    const catalog = repo.create<CatalogDoc>()
    catalog.change((d) => {
      createCatalog(d)
      options.provisionCatalog?.(d)
    })
    const ledger = repo.create<LedgerDoc>()
    ledger.change((d) => createLedger(d, who.site))
    const index = repo.create<SiteIndexDoc>()
    index.change((d) => createSiteIndex(d, who.site, catalog.url, ledger.url))
    await repo.flush([catalog.documentId, ledger.documentId, index.documentId])
    const identity: Identity = { site: who.site as Identity['site'], node: who.node as Identity['node'], index: index.url }
    // Written last: a crash before this leaves an unprovisioned folder, never a half-made site.
    await storage.save(IDENTITY_KEY, Buffer.from(JSON.stringify(identity)))
    return identity
  }

  /**
   * The site's documents from the enrolment file's snapshots (made once, by the hub), then the
   * credential and key, then the identity: a crash before the identity leaves an unprovisioned folder.
   */
  static async #provisionFromEnrolment(repo: Repo, storage: DurableFsStorageAdapter, who: { site: string; node: string }, enrolment: EnrolmentFile, dataDir: string): Promise<Identity> {
    const docs = enrolment.documents
    const handles = [docs.catalog, docs.ledger, docs.index, ...(docs.directory ? [docs.directory] : [])].map(({ url, snapshot }) =>
      repo.import(Buffer.from(snapshot, 'base64'), { docId: parseAutomergeUrl(url as AutomergeUrl).documentId }),
    )
    await repo.flush(handles.map((h) => h.documentId))
    await saveDeviceEnrolment(dataDir, enrolment)
    const identity: Identity = { site: who.site as Identity['site'], node: who.node as Identity['node'], index: docs.index.url }
    await storage.save(IDENTITY_KEY, Buffer.from(JSON.stringify(identity)))
    return identity
  }

  /** Migrates an older document; marks a newer one read-only. */
  #upgrade(kind: DocKind, handle: DocHandle<unknown>): void {
    const { state, version, current } = schemaState(kind, handle.doc() as { schema?: number })
    if (state === 'newer') {
      this.readOnly.set(handle.url, new ReadOnlyDocumentError(kind, version, current))
      this.log.warn({ kind, url: handle.url, version, current }, 'document is newer than this app: kept read-only')
    } else if (state === 'outdated') {
      let ran: string[] = []
      handle.change((d) => {
        ran = migrate(kind, d as { schema?: number })
      }, { message: JSON.stringify({ op: `${kind}.migrate`, user: this.identity.node }) })
      this.log.info({ kind, url: handle.url, migrations: ran }, 'document migrated')
    }
  }

  /** Journal loads in flight: a second ask for the same journal (the Repo's load hook, a peer) joins the first. */
  readonly #loading = new Map<string, Promise<void>>()

  /** Loads and indexes a journal; `arrived` when it came by sync after start (its new movements are announced). */
  #loadJournal(url: string, arrived = false): Promise<void> {
    const inFlight = this.#loading.get(url)
    if (inFlight) return inFlight
    const run = this.#loadJournalNow(url, arrived).finally(() => this.#loading.delete(url))
    this.#loading.set(url, run)
    return run
  }

  async #loadJournalNow(url: string, arrived: boolean): Promise<void> {
    if (this.store.journal(url)) return
    const handle = await this.#find<JournalDoc>(url, () => void this.#loadJournal(url, true).catch((error: unknown) => this.log.error({ err: error, url }, 'loading an arrived journal failed')))
    if (this.store.journal(url)) return
    this.#unloaded.delete(url)
    const ref = this.store.addJournal(handle)
    // Only movements not indexed before are new (a journal unloaded and loaded again was indexed).
    const fresh = this.book.indexJournal(ref)
    const ours = str(handle.doc().node) === this.identity.node
    this.events.emit('document', { kind: 'journal', id: `${str(handle.doc().node)}/${handle.doc().n}`, url, how: 'loaded' })
    if (arrived && !ours && fresh.length > 0) this.events.emit('movements', { postings: fresh, source: 'sync' })
    // Index what a change added (from its patches), not the whole journal again.
    handle.on('change', (event) => {
      // This node recording: the book indexes what it writes (no diff, no decoding). The patches
      // are computed when read (patches/@automerge+automerge-repo): not before this test.
      if (this.book.writing === ref.url) return
      const { doc, patches } = event
      const seqs = new Set<number>()
      for (const patch of patches) {
        if (patch.path[0] !== 'm' || patch.path.length < 2) continue
        if (patch.path.length >= 3) seqs.add(Number(patch.path[2]))
        else for (const key of Object.keys(own(doc.m, String(patch.path[1])) ?? {})) seqs.add(Number(key))
      }
      const postings = this.book.indexPostings(ref.url, [...seqs].flatMap((seq) => journalPosting(doc, seq) ?? []))
      // This node's own postings are announced by the service that recorded them, once durable.
      if (postings.length > 0 && !ours) this.events.emit('movements', { postings, source: 'sync' })
    })
  }

  /**
   * The latest journal of every device: what on hand needs. This node's own must load (it is on
   * this disk); another device's may not have arrived yet and then counts with its previous one.
   */
  async #loadLatestJournals(): Promise<void> {
    const entries = journalEntries(this.store.ledger.doc())
    await Promise.all(
      latestJournals(this.store.ledger.doc()).map(async ({ node, url }) => {
        try {
          await this.#loadJournal(url)
        } catch (error) {
          if (node === this.identity.node) throw error
          this.log.warn({ err: error, url }, 'latest journal of another device not available yet')
          // On hand counts that device with its newest journal that is here: load it (never from the cache).
          for (const older of entries.filter((e) => e.node === node && e.url !== url).reverse()) {
            const loaded = await this.#loadJournal(older.url).then(
              () => true,
              () => false,
            )
            if (loaded) break
          }
        }
      }),
    )
  }

  /**
   * The orders and manifests the index names, then what a crash may have left undone (receipts of
   * delivered stops, compensations of decisions), then the documents other sites share. Journals
   * are not loaded here: every one is indexed already (`indexed`), and one named but not here yet
   * (another device's, whose ledger entry synced before the journal itself) loads when it arrives.
   */
  async #loadRest(): Promise<void> {
    // Orders and manifests another device of this site adds to the index are loaded as they arrive:
    // listened to before the first pass, which may wait a while for a document no peer has (an
    // entry that arrived meanwhile was missed until the index changed again).
    this.index.on('change', () => void this.#loadIndexed().catch((error: unknown) => this.log.warn({ err: error }, 'loading documents new in the index failed')))
    await this.#loadIndexed()
    // Receipts of this site's delivered stops not in the ledger yet: a crash between the manifest
    // change and the ledger posting leaves them out (idempotent: posts only ids the ledger lacks).
    const reconciled = await reconcileReceipts(this).catch((error: unknown) => {
      this.log.error({ err: error }, 'reconciling manifest receipts failed')
      return []
    })
    if (reconciled.length > 0) this.log.warn({ movements: reconciled.map((r) => r.id) }, 'posted manifest receipts missing from the ledger')
    await this.#reconcileDecisions()
    await this.#watchDirectory()
  }

  /** Index entries (`kind:id`) loaded, being loaded, or being created here. */
  readonly #indexed = new Set<string>()

  /** A node service is about to add `id` to the index itself (it lists the document with `added`). */
  expectIndexed(kind: 'order' | 'manifest', id: string): void {
    this.#indexed.add(`${kind}:${id}`)
  }

  /** Loads the orders and manifests the index names that this node does not hold yet. */
  async #loadIndexed(): Promise<void> {
    if (this.#closed) return
    const index = this.index.doc()
    // Each entry on its own: one document no peer has yet does not hold up the others.
    const loads: Array<Promise<unknown>> = []
    for (const [kind, ids] of [['order', index.orders], ['manifest', index.manifests]] as const) {
      for (const [id, url] of Object.entries(ids ?? {})) {
        const key = `${kind}:${id}`
        if (this.#indexed.has(key)) continue
        this.#indexed.add(key)
        const load = (handle: DocHandle<unknown>) => {
          if (this.#listedOwn(kind, id)) return
          this.#upgrade(kind, handle)
          this.#listOwn(kind, id, handle)
          this.events.emit('document', { kind, id, url: handle.url, how: 'loaded' })
        }
        loads.push(
          this.#find<unknown>(str(url), load)
            .then(load)
            .catch((error: unknown) => this.log.warn({ err: error, kind, id }, 'document not available yet')),
        )
      }
    }
    await Promise.all(loads)
  }

  /** Listed ids (`kind:id`) that are another site's shared document, with the site it is from. */
  readonly #sharedListing = new Map<string, string>()

  /** True when `id` of `kind` is listed and is this site's own document (not one shared with it). */
  #listedOwn(kind: 'order' | 'manifest', id: string): boolean {
    return (kind === 'order' ? this.orders : this.manifests).has(id) && !this.#sharedListing.has(`${kind}:${id}`)
  }

  /** True when `id` names a document another site shared with this one (not this site's own). */
  isShared(kind: 'order' | 'manifest', id: string): boolean {
    return this.#sharedListing.has(`${kind}:${id}`)
  }

  /**
   * Lists this site's own document under its id. A shared document listed under that id (it came
   * before the own one loaded) moves to `<id>~<from site>`: an own id always means the own document.
   */
  #listOwn(kind: 'order' | 'manifest', id: string, handle: DocHandle<unknown>): void {
    const into = kind === 'order' ? this.orders : this.manifests
    const key = `${kind}:${id}`
    const from = this.#sharedListing.get(key)
    const shared = into.get(id)
    if (from !== undefined && shared) {
      this.#sharedListing.delete(key)
      const moved = `${id}~${from}`
      into.set(moved, shared)
      this.#watchChanges(kind, moved, shared)
      this.#sharedListing.set(`${kind}:${moved}`, from)
      this.log.warn({ kind, id, from, listedAs: moved }, 'a shared document had this site\'s own id: listed under another name')
    }
    into.set(id, handle)
    this.#watchChanges(kind, id, handle)
    this.#shareChanged()
  }

  #shareCheck: ReturnType<typeof setTimeout> | undefined
  /**
   * Who may have a document changed (an order or manifest is listed now, so its parties may):
   * automerge-repo decides once per document and peer, and decides again only when told.
   * Coalesced: one re-check for a burst of listings.
   */
  #shareChanged(): void {
    this.#listedById = undefined
    if (this.#shareCheck || this.#closed) return
    this.#shareCheck = setTimeout(() => {
      this.#shareCheck = undefined
      if (!this.#closed && this.repo.peers.length > 0) this.repo.shareConfigChanged()
    }, 50)
    this.#shareCheck.unref?.()
  }

  /** Handles whose changes are announced as `changed` events, with the name they are listed under now. */
  readonly #watched = new WeakMap<DocHandle<unknown>, { kind: SiteNodeEvents['changed'][0]['kind']; id: string }>()

  /** Announces every later change of `handle` (here or by sync) as a `changed` event; called again when it is listed under another id. */
  #watchChanges(kind: SiteNodeEvents['changed'][0]['kind'], id: string, handle: DocHandle<unknown>): void {
    const known = this.#watched.get(handle)
    this.#watched.set(handle, { kind, id })
    if (known) return
    handle.on('change', () => {
      const now = this.#watched.get(handle)
      if (now) this.events.emit('changed', now)
    })
  }

  /**
   * Orders and manifests other sites shared with this one, as the site's directory names them
   * (written by relays: src/relay/directory.ts), listed beside this site's own. Read after the
   * site's own documents are loaded, so an own order keeps its id; a shared one whose id this
   * site uses already is listed as `<id>~<from site>`.
   */
  async #watchDirectory(): Promise<void> {
    const url = this.index.doc().directory
    if (url === undefined || this.#closed) return
    const watch = (handle: DocHandle<SiteDirectoryDoc>) => {
      if (this.directory) return
      this.directory = handle
      handle.on('change', () => void this.#loadShared())
      void this.#loadShared()
    }
    await this.#find<SiteDirectoryDoc>(str(url), watch)
      .then(watch)
      .catch((error: unknown) => this.log.warn({ err: error }, 'the site directory is not here yet'))
  }

  /** The site's directory (documents shared with it), once loaded. */
  directory: DocHandle<SiteDirectoryDoc> | undefined

  /** Shared document ids already listed (or being loaded). */
  readonly #shared = new Set<string>()

  async #loadShared(): Promise<void> {
    if (this.#closed || !this.directory) return
    for (const [documentId, entry] of sharedDocuments(this.directory.doc())) await this.#listShared(documentId, entry)
  }

  /** Lists a document another site shares with this one (from the directory, or brought by a LAN peer), once. */
  async #listShared(documentId: string, entry: { kind: 'order' | 'manifest'; id: string; from: string; url: string }): Promise<void> {
    if (this.#shared.has(documentId)) return
    this.#shared.add(documentId)
    const into = entry.kind === 'order' ? this.orders : this.manifests
    const load = (handle: DocHandle<unknown>) => {
      if ([...into.values()].some((h) => h.documentId === handle.documentId)) return
      // The plain id only when neither this site's index nor this node uses it.
      const own = into.has(entry.id) || hasOwnKey(entry.kind === 'order' ? this.index.doc().orders : this.index.doc().manifests, entry.id) || this.#indexed.has(`${entry.kind}:${entry.id}`)
      const id = own ? `${entry.id}~${entry.from}` : entry.id
      if (into.has(id)) return
      this.#upgrade(entry.kind, handle)
      into.set(id, handle)
      this.#sharedListing.set(`${entry.kind}:${id}`, entry.from)
      this.#watchChanges(entry.kind, id, handle)
      this.#shareChanged()
      this.events.emit('document', { kind: entry.kind, id, url: handle.url, how: 'shared' })
      this.log.info({ kind: entry.kind, id, from: entry.from }, 'a document shared with this site is listed')
    }
    await this.#find<unknown>(entry.url, load)
      .then(load)
      .catch((error: unknown) => this.log.warn({ err: error, kind: entry.kind, id: entry.id }, 'shared document not available yet'))
  }

  /**
   * A document arrived by sync that this site is party to (an order to it, a manifest stopping at
   * it) but its directory does not list: brought by a LAN peer, with no relay to list it. Listed as
   * the relay would have. Limit: its content says who it is from; a relay records the owner as the
   * first site that brought it instead (src/relay/access.ts).
   */
  #arrived(documentId: string, doc: unknown): void {
    if (this.#closed || this.#shared.has(documentId)) return
    // Only what a LAN peer brought (not what this node made, nor what its relay brought: the
    // relay lists that in the directory itself).
    const bringer = this.#broughtBy.get(documentId)
    this.#broughtBy.delete(documentId)
    if (bringer === undefined) return
    const d = doc as { kind?: unknown; id?: unknown; from?: unknown } | undefined
    const kind = text(d?.kind)
    const id = text(d?.id)
    const from = text(d?.from)
    if ((kind !== 'order' && kind !== 'manifest') || !id || !from || from === this.identity.site || !isId(id)) return
    if (!partiesOf(doc, from).includes(this.identity.site)) return
    // Brought by the site it says it is from, or by a carrier whose record (the first site to bring
    // it to a relay or carrier) says it is from that site: a device cannot pass off a document as
    // another site's, not even through a carrier.
    const peer = parsePeerId(bringer)
    const vouched = peer !== undefined && (peer.site === from || (peer.role === 'carrier' && this.lan?.routeOf(bringer) !== undefined && this.lan.ownerStated(bringer, documentId) === from))
    if (!vouched) {
      this.log.warn({ kind, id, from, broughtBy: bringer }, 'a document that says it is from another site than the peer that brought it: not listed')
      return
    }
    if (this.#listed(documentId)) return
    const entry = { kind, id, from, url: `automerge:${documentId}` } as const
    // Kept in the site's directory, as a relay would have listed it: listed after a restart too,
    // and by this site's other devices.
    if (this.directory) {
      void this.commit(this.directory, (dir) => void addShared(dir, documentId, { ...entry, sharedAt: new Date(this.now()).toISOString() }), { op: 'directory.share', user: 'lan', ref: id })
        .catch((error: unknown) => this.log.warn({ err: error, id }, 'could not keep a document brought over the LAN in the site directory'))
    } else void this.#listShared(documentId, entry)
  }

  /**
   * The handle of `url` once ready. A document no peer has yet (named by the ledger or the index
   * before it arrived, or asked for before the relay was reachable) rejects; `whenArrives` runs
   * once it arrives later. automerge-repo 2.5.6 answers every later `find` of a document it once
   * found unavailable as unavailable at once, but the handle itself turns ready when a peer sends
   * it: wait on the handle, instead of asking once and never again.
   */
  async #find<T>(url: string, whenArrives: (handle: DocHandle<T>) => void): Promise<DocHandle<T>> {
    try {
      return await this.repo.find<T>(url as AutomergeUrl)
    } catch (error) {
      if (this.#closed) throw error
      const { handle } = this.repo.findWithProgress<T>(url as AutomergeUrl)
      if (!this.#waiting.has(url)) {
        this.#waiting.add(url)
        void handle
          .whenReady(['ready'])
          .then(() => {
            this.#waiting.delete(url)
            if (!this.#closed) whenArrives(handle)
          })
          .catch(() => this.#waiting.delete(url))
      }
      throw error
    }
  }

  /** Documents named but not here yet, awaited by `#find`. */
  readonly #waiting = new Set<string>()

  /**
   * Journals that arrived by sync (another node's new week) are loaded as soon as they are named;
   * journals indexed already and unloaded are not (a peer that sends one loads it: `#journalOpened`).
   */
  async #loadNewJournals(): Promise<void> {
    if (this.#closed) return
    for (const { url } of journalEntries(this.store.ledger.doc())) {
      if (this.store.journal(url) || this.#unloaded.has(url) || this.book.isIndexed(url)) continue
      await this.#loadJournal(url, true).catch((error: unknown) => this.log.warn({ err: error, url }, 'journal not available yet'))
    }
  }

  /** The Repo loaded a document from disk: a journal of the ledger that is not loaded here is loaded and indexed. */
  #journalOpened(url: string): void {
    if (this.#closed || this.store.journal(url)) return
    if (!journalEntries(this.store.ledger.doc()).some((e) => e.url === url)) return
    void this.#loadJournal(url, true).catch((error: unknown) => this.log.warn({ err: error, url }, 'loading a journal a peer opened failed'))
  }

  /**
   * Changes a document and returns once the change is on disk; peers receive it only then (the
   * durability gate). `fn` may throw to refuse: Automerge rolls the change back, nothing is held.
   * Returns what `fn` returned.
   */
  async commit<T, R>(handle: DocHandle<T>, fn: (doc: T) => R, note: ChangeNote): Promise<R> {
    const readOnly = this.readOnly.get(handle.url)
    if (readOnly) throw readOnly
    let result: R | undefined
    const ref = this.store.ref(handle)
    ref.change((d) => {
      result = fn(d)
    }, changeOptions(note, this.now()))
    await this.store.durable([ref])
    return result as R
  }

  /** The node's clock, unix ms (tests give their own). */
  now(): number {
    return (this.options.now ?? Date.now)()
  }

  /** Registers a document created here (by a node service) and tells listeners. */
  added(kind: Exclude<NodeDocumentKind, 'journal'>, id: string, handle: DocHandle<unknown>): void {
    this.#listOwn(kind, id, handle)
    this.events.emit('document', { kind, id, url: handle.url, how: 'added' })
  }

  #watchPeers(): void {
    const network = this.repo.networkSubsystem
    network.on('peer', ({ peerId }) => {
      this.#peerEpoch++
      if (this.relay && peerId === this.relay.remotePeerId) this.#relayDownSince = undefined
      this.events.emit('peer', { peerId, peer: parsePeerId(peerId), state: 'connected' })
      void this.indexed.then(() => this.#offerUnloaded(peerId)).catch((error: unknown) => this.log.warn({ err: error, peerId }, 'offering unloaded journals to a peer failed'))
    })
    network.on('peer-disconnected', ({ peerId }) => {
      if (parsePeerId(peerId)?.role === 'relay' || peerId === this.relay?.remotePeerId) this.#relayDownSince ??= Date.now()
      this.events.emit('peer', { peerId, peer: parsePeerId(peerId), state: 'disconnected' })
    })
  }

  /**
   * Connects to the relay of this device's enrolment (or `url`), authenticated with its
   * credential; the adapter reconnects by itself with backoff and keeps the reason of a refusal
   * (`lastRefusal`). Returns undefined for a node that is not enrolled or has no relay.
   */
  connectRelay(url = this.enrolment?.relay): AuthenticatedWebSocketClientAdapter | undefined {
    if (!this.enrolment || !url) return undefined
    const enrolment = this.enrolment
    const adapter = new AuthenticatedWebSocketClientAdapter({
      url,
      credential: enrolment.credential,
      privateKey: enrolment.privateKey,
      logger: this.log,
      // The relay tells the latest revocation list: kept (signed, newer only) for peers met without a relay.
      onControl: (control) => {
        if (control.kind === 'revocations') this.keepRevocations(control.revocations, 'the relay')
      },
    })
    this.relay = adapter
    this.#relayDownSince = Date.now() // until the link is up
    this.connect(adapter)
    this.log.info({ relay: url }, 'connecting to the relay')
    return adapter
  }

  /** Revocation lists are kept one at a time, so an older one never overwrites a newer one. */
  #revocationsKept: Promise<unknown> = Promise.resolve()

  /** The relay link, once `connectRelay` made it. */
  relay: AuthenticatedWebSocketClientAdapter | undefined

  /**
   * Whether `peerId` may read and write `documentId` through this node (automerge-repo's shareConfig,
   * asked per message: in-memory lookups only). The relay this node connects to: everything (it
   * applies its own rule for others, src/relay/access.ts). A device or carrier of this site (a LAN
   * peer): everything. A device of another site: the deployment's catalog, and the orders and
   * manifests this node holds that name that site as their owner (`from`) or a party (an order's
   * supplier, a manifest's carrier and stops) — never this site's index, ledger, journals or
   * directory. Anyone else (a peer id that is not ours): nothing. A node not enrolled: everything.
   */
  mayShare(peerId: string, documentId: string | undefined, mode: 'announce' | 'access' = 'access'): boolean {
    // A node not enrolled in a deployment makes no link by itself (no relay, no LAN mesh): the
    // links it has are those its operator made with `connect` (a test, a bridge), all trusted.
    if (!this.enrolment) return true
    const peer = parsePeerId(peerId)
    if (!peer) return false
    if (documentId === undefined) return true // asked when a peer connects: each document is asked about again
    if (peer.site === this.identity.site && peer.role !== 'relay') return true
    // A carrier whose route (proven on the LAN link) stops here carries this site's documents to its relay.
    const carrierHere = peer.role === 'carrier' && this.lan?.routeOf(peerId)?.includes(this.identity.site) === true
    // Relay peers arrive only over relay links (a LAN peer with a relay's credential is refused at its
    // upgrade, both ways). The relay, and a carrier of this site's route, get what the relay would:
    // this site's documents, those listed as shared with it, the catalog; what they bring is taken.
    if (peer.role === 'relay' || carrierHere) {
      if (documentId === this.catalog.documentId || this.#ownDocuments().has(documentId) || this.#listed(documentId)) return true
      return mode === 'access' && this.#notHeld(documentId, peer.role === 'relay' ? undefined : peerId)
    }
    if (documentId === this.catalog.documentId) return true
    const listed = this.#listedHandle(documentId)
    if (listed) {
      if (!listed.isReady()) return false
      const doc = listed.doc() as { from?: unknown } | undefined
      const from = text(doc?.from)
      return from !== undefined && (from === peer.site || partiesOf(doc, from).includes(peer.site))
    }
    // This site's own documents (index, ledger, directory, every journal, its orders and
    // manifests not listed yet): never, loaded or not. Nothing else is offered to another site.
    if (mode === 'announce' || this.#ownDocuments().has(documentId)) return false
    // A document this node does not hold may be brought to it (an order to this site from a LAN
    // peer): taken, and listed once here if the site that brought it is the one it is from (#arrived).
    return this.#notHeld(documentId, peerId)
  }

  /** Who first brought each document this node did not hold (a LAN peer), for #arrived to judge. */
  readonly #broughtBy = new Map<string, string>()

  /**
   * True when this node does not hold `documentId` (no handle, or one still waiting for content):
   * a peer may bring it. A brand-new document of this node's own is held from its creation.
   */
  #notHeld(documentId: string, peerId: string | undefined): boolean {
    const handle = this.repo.handles[documentId as DocumentId]
    // Still looking for it (on disk or from peers): not held. This site's own are refused before
    // this is asked; a document found on disk here is one some peer brought earlier.
    const held = handle !== undefined && !handle.inState(['idle', 'loading', 'requesting', 'unavailable'])
    if (held) return false
    if (peerId !== undefined && !this.#broughtBy.has(documentId) && this.#broughtBy.size < 10_000) this.#broughtBy.set(documentId, peerId)
    return true
  }

  #listedById: Map<string, DocHandle<unknown>> | undefined
  /** The order or manifest this node lists (its own or one shared with its site) with that document id: asked per message, so kept by id until a listing changes. */
  #listedHandle(documentId: string): DocHandle<unknown> | undefined {
    this.#listedById ??= new Map([...this.orders.values(), ...this.manifests.values()].map((h) => [h.documentId as string, h]))
    return this.#listedById.get(documentId)
  }

  #listed(documentId: string): boolean {
    return this.#listedHandle(documentId) !== undefined
  }

  #own: Set<string> | undefined
  /** The ids of this site's own documents, kept until the index or the ledger changes. */
  #ownDocuments(): Set<string> {
    if (this.#own) return this.#own
    const ids = new Set<string>([this.index.documentId, this.store.ledger.handle.documentId])
    const idOf = (url: unknown) => {
      const u = text(url)
      if (u?.startsWith('automerge:')) ids.add(u.slice('automerge:'.length))
    }
    const index = this.index.doc()
    idOf(index.directory)
    for (const map of [index.orders, index.manifests]) for (const url of Object.values(map ?? {})) idOf(url)
    for (const { url } of journalEntries(this.store.ledger.doc())) idOf(url)
    this.#own = ids
    return ids
  }

  /** Adds a network adapter (LAN peer, relay, renderer bridge) behind the durability gate. */
  connect(adapter: NetworkAdapterInterface): void {
    this.repo.networkSubsystem.addNetworkAdapter(this.gate.wrap(adapter))
  }

  /** Removes an adapter `connect` added (a LAN peer gone from the network). */
  disconnect(adapter: NetworkAdapterInterface): void {
    this.repo.networkSubsystem.removeNetworkAdapter(adapter)
  }

  /**
   * Keeps a revocation list a relay or a carrier told (signed by the deployment, kept only when
   * newer than the one held): LAN peers revoked by it are cut off at once.
   */
  keepRevocations(token: string, from: string): void {
    const enrolment = this.enrolment
    if (!enrolment || this.#closed) return
    this.#revocationsKept = this.#revocationsKept
      .then(() => keepNewerRevocations(this.options.dataDir, enrolment, token))
      .then((seq) => {
        if (seq === undefined) return
        this.log.info({ seq, from }, 'newer revocation list kept')
        this.lan?.revalidate()
      })
      .catch((error: unknown) => this.log.warn({ err: error, from }, 'could not keep a revocation list'))
  }

  /** This node's peer id (its credential's, once enrolled). */
  get peerId(): string {
    return this.repo.peerId
  }

  /**
   * Whether a LAN peer may use `storageId` as its own: not this node's, not one any other peer it
   * met uses (its relay's above all, remembered while the relay is away): automerge-repo records
   * what a peer holds per storage id, and "the relay holds it" would then be a LAN peer's word.
   */
  storageIdFree(storageId: string, peerId: string): boolean {
    if (storageId === this.#ownStorageId) return false
    for (const [other, metadata] of Object.entries(this.repo.peerMetadataByPeerId)) if (other !== peerId && metadata?.storageId === storageId) return false
    return true
  }
  #ownStorageId: string | undefined

  /** The LAN mesh, once started (src/peer-sync/lanMesh.ts). */
  lan: LanMesh | undefined

  /** Starts the LAN mesh of an enrolled node: its sync port, its advertisement, its links. */
  async startLan(options: LanOptions = {}): Promise<LanMesh> {
    if (this.lan) return this.lan
    const mesh = new LanMesh(this, options)
    await mesh.start()
    this.lan = mesh
    return mesh
  }

  /** Flushes what is ready, stops the repo and releases the folder's lock (if `open` took it). */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#sweeper)
    try {
      await this.lan?.stop()
      await this.#sweeping
      await this.fullyLoaded.catch(() => undefined)
      await this.#compacting
      await this.#saveCache().catch((error: unknown) => this.log.warn({ err: error }, 'the journal cache was not written: the next start loads the journals'))
      const ready = Object.values(this.repo.handles).filter((h) => h.isReady()).map((h) => h.documentId)
      // Flush only ready handles: https://github.com/automerge/automerge-repo/issues/740
      await this.repo.flush(ready)
      await this.repo.shutdown().catch(() => undefined)
    } finally {
      this.events.removeAllListeners()
      await this.#ownLock?.release()
    }
  }
}
