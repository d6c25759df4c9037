/**
 * The ERP bridge at the hub relay (`stockmesh relay --erp …`): it reads the facts of every site from
 * the documents the hub holds (src/erp/facts.ts), forwards them to the parent ERP through a
 * connector (src/erp/connector.ts) and records what became of each (src/erp/outbox.ts); it brings
 * the ERP's products and sites down into the deployment catalog.
 *
 * - Exactly once in effect: a fact is recorded forwarded only after the ERP holds it; the connector
 *   asks the ERP before every send whether it holds a fact already (a crash or a lost answer), so a
 *   fact sent twice is taken once.
 * - Never flooded: batches of at most `batchSize` facts, at most one batch in flight, at least
 *   `minIntervalMs` apart. A batch takes facts from every site with facts waiting in turn (round
 *   robin), so a site back after weeks offline drains its backlog without holding up the others.
 * - Outages: the ERP unreachable (or answering 5xx) — nothing is recorded, the batch waits, and the
 *   bridge tries again after an exponential backoff with jitter (1 s doubling to 5 minutes).
 * - Parked: a fact the ERP cannot take (an unknown SKU, a site with no location, a refusal of the
 *   ERP's own) is parked with the reason, never dropped; parked facts are tried again every
 *   `parkedRetryMs`, after master data changed, and on `retryParked()` (POST /erp/retry).
 * - Visible: `status()` per site (forwarded, pending, parked with reasons) for GET /erp, and gauges
 *   and counters on the relay's /metrics.
 */
import type { DocHandle, Repo } from '@automerge/automerge-repo'
import type { Logger } from 'pino'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { importCatalog } from '../docs/catalog.ts'
import { changeOptions } from '../docs/history.ts'
import { ProductImport, SiteInput, type CatalogDoc } from '../schema/catalog.ts'
import { own } from '../schema/ownProperty.ts'
import { str } from '../schema/strings.ts'
import type { ErpConnector, Outcome } from './connector.ts'
import { FactReader, type Fact } from './facts.ts'
import { Outbox, type Parked } from './outbox.ts'
import { ErpUnavailable, TrytonError } from './trytonRpc.ts'

export interface BridgeOptions {
  repo: Repo
  connector: ErpConnector
  /** Each site with its ledger and index (URLs or document ids, from the hub register, read again on every scan). */
  sites: () => Array<[site: string, ledger: string, index: string]>
  /** The deployment catalog (master data comes down into it). */
  catalog: () => Promise<DocHandle<CatalogDoc> | undefined>
  /** Folder of the outbox (the hub's `erp/`). */
  dir: string
  logger: Logger
  metrics: Registry
  batchSize?: number
  /** Least time between two batches (ms): the ERP's rate limit. */
  minIntervalMs?: number
  /** How often the documents are read for new facts (ms). */
  scanMs?: number
  parkedRetryMs?: number
  /** How often products and sites are read from the ERP (ms; 0: never). */
  masterDataMs?: number
  maxBackoffMs?: number
  /** Reads a site's facts (default: from the documents, src/erp/facts.ts; tests give their own). */
  read?: (site: string, ledger: string, index: string) => Promise<Fact[]>
  /** The site a device is enrolled at (the hub's register): a proof of delivery counts only from a device of its stop's site. */
  siteOfDevice?: (device: string) => string | undefined
}

export interface SiteStatus {
  site: string
  forwarded: number
  pending: number
  parked: Array<{ key: string; reason: string; since: string }>
}

export interface BridgeStatus {
  erp: string
  /** ok: the last batch went through (or none was needed); unreachable: waiting to try again. */
  state: 'ok' | 'unreachable' | 'starting'
  lastError: string | null
  nextTryAt: string | null
  lastForwardedAt: string | null
  masterData: { at: string | null; products: number; sites: number; error: string | null }
  sites: SiteStatus[]
}

const siteOfKey = (key: string) => key.slice(0, key.indexOf('/'))

export class ErpBridge {
  readonly #o: Required<Omit<BridgeOptions, 'metrics' | 'read' | 'siteOfDevice'>> & { metrics: Registry }
  readonly #read: (site: string, ledger: string, index: string) => Promise<Fact[]>
  #outbox: Outbox | undefined
  /** site → facts waiting, oldest first */
  readonly #pending = new Map<string, Fact[]>()
  readonly #queued = new Set<string>()
  /** parked key → the fact (to try again) */
  readonly #parkedFacts = new Map<string, Fact>()
  readonly #forwardedBySite = new Map<string, number>()
  #state: BridgeStatus['state'] = 'starting'
  #lastError: string | null = null
  #nextTryAt = 0
  #lastForwardedAt: number | null = null
  #failures = 0
  #master: BridgeStatus['masterData'] = { at: null, products: 0, sites: 0, error: null }
  #stopped = false
  #wake: (() => void) | undefined
  #running: Promise<void> | undefined
  readonly #timers: NodeJS.Timeout[] = []
  readonly #forwardedTotal: Counter<'site'>
  readonly #batches: Counter<'outcome'>
  readonly #batchSeconds: Histogram

  constructor(options: BridgeOptions) {
    const { read: _read, siteOfDevice: _siteOfDevice, ...rest } = options
    this.#o = { batchSize: 100, minIntervalMs: 200, scanMs: 2_000, parkedRetryMs: 60_000, masterDataMs: 60_000, maxBackoffMs: 5 * 60_000, ...rest }
    const reader = new FactReader(options.repo, {
      ...(options.siteOfDevice ? { siteOfDevice: options.siteOfDevice } : {}),
      onError: (error, where) => options.logger.warn({ err: error, where }, 'a document could not be read for the ERP: tried again at the next scan'),
    })
    // Movements, then orders and deliveries: one failing never costs the other what it read.
    this.#read =
      options.read ??
      (async (site, ledger, index) => {
        const movements = await reader.read(site, ledger).catch((error: unknown) => {
          options.logger.warn({ err: error, site }, 'could not read the movements of a site')
          return [] as Fact[]
        })
        const documents = await reader.readDocuments(site, index).catch((error: unknown) => {
          options.logger.warn({ err: error, site }, 'could not read the orders and manifests of a site')
          return [] as Fact[]
        })
        return [...movements, ...documents]
      })
    const registers = [options.metrics]
    this.#forwardedTotal = new Counter({ name: 'stockmesh_erp_forwarded_total', help: 'Facts the parent ERP took (or was found holding), by site', labelNames: ['site'], registers })
    this.#batches = new Counter({ name: 'stockmesh_erp_batches_total', help: 'Batches sent to the parent ERP, by outcome', labelNames: ['outcome'], registers })
    this.#batchSeconds = new Histogram({ name: 'stockmesh_erp_batch_seconds', help: 'Time the parent ERP took for a batch', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers })
    const bridge = this
    new Gauge({ name: 'stockmesh_erp_pending', help: 'Facts waiting to be forwarded to the parent ERP, by site', labelNames: ['site'], registers, collect() { this.reset(); for (const [site, list] of bridge.#pending) this.set({ site }, list.length) } })
    new Gauge({ name: 'stockmesh_erp_parked', help: 'Facts parked (the ERP cannot take them until something is fixed), by site', labelNames: ['site'], registers, collect() {
      this.reset()
      const counts = new Map<string, number>()
      for (const key of bridge.#outbox?.parked.keys() ?? []) counts.set(siteOfKey(key), (counts.get(siteOfKey(key)) ?? 0) + 1)
      for (const [site, n] of counts) this.set({ site }, n)
    } })
    new Gauge({ name: 'stockmesh_erp_reachable', help: '1 when the last batch reached the parent ERP', registers, collect() { this.set(bridge.#state === 'unreachable' ? 0 : 1) } })
  }

  async start(): Promise<void> {
    this.#outbox = await Outbox.open(this.#o.dir)
    for (const key of this.#outbox.forwarded) this.#forwardedBySite.set(siteOfKey(key), (this.#forwardedBySite.get(siteOfKey(key)) ?? 0) + 1)
    this.#scheduleParkedRetry(this.#o.parkedRetryMs)
    if (this.#o.masterDataMs > 0) this.#timers.push(setInterval(() => void this.pullMasterData(), this.#o.masterDataMs))
    for (const t of this.#timers) t.unref()
    this.#o.logger.info({ erp: this.#o.connector.description, forwarded: this.#outbox.forwarded.size, parked: this.#outbox.parked.size }, 'ERP bridge started')
    if (this.#o.masterDataMs > 0) void this.pullMasterData()
    this.#running = this.#loop()
  }

  /** Reads new facts from the documents: queued unless forwarded or parked already. */
  async scan(): Promise<number> {
    const outbox = this.#outbox!
    let added = 0
    for (const [site, ledger, index] of this.#o.sites()) {
      const facts = await this.#read(site, ledger, index).catch((error: unknown) => {
          this.#o.logger.warn({ err: error, site }, 'could not read the facts of a site')
          return [] as Fact[]
        })
      for (const f of facts) {
        if (outbox.forwarded.has(f.key) || this.#queued.has(f.key)) continue
        if (outbox.parked.has(f.key)) {
          this.#parkedFacts.set(f.key, f)
          continue
        }
        this.#enqueue(f)
        added++
      }
    }
    return added
  }

  #enqueue(f: Fact, front = false): void {
    let list = this.#pending.get(f.site)
    if (!list) this.#pending.set(f.site, (list = []))
    if (front) list.unshift(f)
    else list.push(f)
    this.#queued.add(f.key)
  }

  /** The site after which the next batch starts (round robin across batches too). */
  #lastServed = ''

  /** Up to `batchSize` facts, taken from each site with facts waiting in turn, starting after the site the last batch ended with. */
  #nextBatch(): Fact[] {
    const batch: Fact[] = []
    const waiting = [...this.#pending.keys()].filter((s) => this.#pending.get(s)!.length > 0).sort()
    const from = waiting.findIndex((s) => s > this.#lastServed)
    const sites = from <= 0 ? waiting : [...waiting.slice(from), ...waiting.slice(0, from)]
    while (batch.length < this.#o.batchSize && sites.length > 0) {
      for (let i = 0; i < sites.length && batch.length < this.#o.batchSize; ) {
        const list = this.#pending.get(sites[i]!)!
        batch.push(list.shift()!)
        this.#lastServed = sites[i]!
        if (list.length === 0) sites.splice(i, 1)
        else i++
      }
    }
    return batch
  }

  /**
   * Parked facts are tried again by themselves after `parkedRetryMs`, then twice as long each time
   * none of them went through (to an hour): a site with no location in the ERP is not re-sent
   * every minute for ever. A fix (master data changed, POST /erp/retry) tries them at once.
   */
  #parkedDelay = 0
  #parkedTimer: NodeJS.Timeout | undefined
  #parkedBefore = Number.POSITIVE_INFINITY
  #scheduleParkedRetry(delay: number): void {
    clearTimeout(this.#parkedTimer)
    this.#parkedDelay = delay
    this.#parkedTimer = setTimeout(() => {
      const parked = this.#outbox?.parked.size ?? 0
      // No fewer parked than at the last round: nothing was fixed, wait twice as long next time.
      const next = parked > 0 && parked >= this.#parkedBefore ? Math.min(this.#parkedDelay * 2, 3_600_000) : this.#o.parkedRetryMs
      this.#parkedBefore = parked
      this.retryParked()
      this.#scheduleParkedRetry(next)
    }, delay)
    this.#parkedTimer.unref()
  }

  /** After a fix (POST /erp/retry): master data read again, and the parked facts back in line now. */
  retry(): number {
    void this.pullMasterData()
    return this.retryParked()
  }

  /** Parked facts go back in line (after a fix: a product added, a location made). */
  retryParked(): number {
    const facts = [...this.#parkedFacts.values()]
    this.#parkedFacts.clear()
    for (const f of facts) if (!this.#queued.has(f.key)) this.#enqueue(f)
    if (facts.length > 0) this.#o.logger.info({ facts: facts.length }, 'parked facts tried again')
    this.#wake?.()
    return facts.length
  }

  async #loop(): Promise<void> {
    let lastScan = 0
    while (!this.#stopped) {
      if (Date.now() - lastScan >= this.#o.scanMs) {
        lastScan = Date.now()
        await this.scan()
      }
      const waiting = [...this.#pending.values()].some((l) => l.length > 0)
      if (!waiting || Date.now() < this.#nextTryAt) {
        await this.#sleep(Math.max(10, Math.min(this.#o.scanMs - (Date.now() - lastScan), waiting ? this.#nextTryAt - Date.now() : this.#o.scanMs)))
        continue
      }
      const batch = this.#nextBatch()
      const started = performance.now()
      try {
        const outcomes = await this.#o.connector.forward(batch)
        this.#batchSeconds.observe((performance.now() - started) / 1000)
        await this.#record(batch, outcomes)
        this.#batches.inc({ outcome: 'ok' })
        this.#failures = 0
        this.#state = 'ok'
        this.#lastError = null
        this.#nextTryAt = Date.now() + this.#o.minIntervalMs
      } catch (error) {
        // Nothing decided: the batch goes back to the front of its sites' lines.
        for (const f of [...batch].reverse()) {
          this.#queued.delete(f.key)
          this.#enqueue(f, true)
        }
        this.#batches.inc({ outcome: 'failed' })
        this.#failures++
        const base = Math.min(this.#o.maxBackoffMs, 1000 * 2 ** Math.min(this.#failures - 1, 20))
        const delay = base / 2 + Math.random() * (base / 2)
        this.#nextTryAt = Date.now() + delay
        this.#state = 'unreachable'
        this.#lastError = error instanceof Error ? error.message : String(error)
        const unexpected = !(error instanceof ErpUnavailable) && !(error instanceof TrytonError)
        this.#o.logger[unexpected ? 'error' : 'warn']({ err: unexpected ? error : undefined, erp: this.#o.connector.description, retryInMs: Math.round(delay), facts: batch.length }, `the parent ERP did not take a batch: ${this.#lastError}`)
      }
    }
  }

  async #record(batch: Fact[], outcomes: Outcome[]): Promise<void> {
    const byKey = new Map(batch.map((f) => [f.key, f]))
    // Anything the connector did not answer for stays in line.
    const answered = new Set(outcomes.map((o) => o.key))
    const wasParked = new Set(outcomes.filter((o) => this.#outbox!.parked.has(o.key)).map((o) => o.key))
    await this.#outbox!.record(outcomes)
    for (const o of outcomes) {
      const f = byKey.get(o.key)
      this.#queued.delete(o.key)
      if ('forwarded' in o) {
        const site = siteOfKey(o.key)
        this.#forwardedBySite.set(site, (this.#forwardedBySite.get(site) ?? 0) + 1)
        this.#forwardedTotal.inc({ site })
        this.#parkedFacts.delete(o.key)
      } else if (f) {
        this.#parkedFacts.set(o.key, f)
        if (!wasParked.has(o.key)) this.#o.logger.warn({ key: o.key, reason: o.parked }, 'a fact is parked: the parent ERP cannot take it until this is fixed')
      }
    }
    for (const f of batch) if (!answered.has(f.key)) {
      this.#queued.delete(f.key)
      this.#enqueue(f)
    }
    if (outcomes.some((o) => 'forwarded' in o)) this.#lastForwardedAt = Date.now()
  }

  /** Products and sites from the ERP into the deployment catalog (renames included); what the ERP does not name is kept. */
  async pullMasterData(): Promise<void> {
    if (!this.#o.connector.masterData) return
    try {
      const data = await this.#o.connector.masterData()
      const handle = await this.#o.catalog()
      if (!handle) throw new Error('the hub does not hold the deployment catalog')
      const doc = handle.doc()
      // Rows the catalog would refuse (an id that is not one, one listed twice) are left out, not the whole pull.
      const once = <T>(rows: T[], id: (row: T) => string) => rows.filter((row, i) => rows.findIndex((other) => id(other) === id(row)) === i)
      const products = once(
        data.products.flatMap((p) => {
          const parsed = ProductImport.safeParse({ sku: p.sku, name: p.name, unit: p.unit, lots: p.lots })
          return parsed.success ? [parsed.data] : []
        }),
        (p) => p.sku,
      )
      const sites = once(
        data.sites.flatMap((s) => {
          const known = doc?.sites ? own(doc.sites, s.id) : undefined
          const parsed = SiteInput.safeParse({ id: s.id, name: s.name, type: known ? str(known.type) : 'store' })
          return parsed.success ? [parsed.data] : []
        }),
        (s) => s.id,
      )
      const skipped = data.products.length - products.length + (data.sites.length - sites.length)
      let changed = 0
      // Noted like `catalog import` (the catalog's history says the ERP changed it).
      handle.change((d) => {
        const counts = importCatalog(d, { products, sites, reasons: [] })
        changed = counts.products.added + counts.products.renamed + counts.products.updated + counts.sites.added + counts.sites.renamed + counts.sites.updated
      }, changeOptions({ op: 'catalog.import', user: 'erp', ref: this.#o.connector.description }, Date.now()))
      this.#master = { at: new Date().toISOString(), products: products.length, sites: sites.length, error: null }
      if (changed > 0 || skipped > 0) this.#o.logger.info({ changed, skipped }, 'master data from the parent ERP applied to the catalog')
      if (changed > 0) this.retryParked()
    } catch (error) {
      this.#master = { ...this.#master, error: error instanceof Error ? error.message : String(error) }
      this.#o.logger.warn({ err: error instanceof ErpUnavailable || error instanceof TrytonError ? undefined : error }, `could not read master data from the parent ERP: ${this.#master.error}`)
    }
  }

  status(): BridgeStatus {
    const parkedBySite = new Map<string, Array<{ key: string; reason: string; since: string }>>()
    for (const [key, p] of (this.#outbox?.parked ?? new Map<string, Parked>())) {
      const site = siteOfKey(key)
      let list = parkedBySite.get(site)
      if (!list) parkedBySite.set(site, (list = []))
      list.push({ key, reason: p.reason, since: new Date(p.since).toISOString() })
    }
    const sites = new Set([...this.#o.sites().map(([s]) => s), ...this.#pending.keys(), ...parkedBySite.keys(), ...this.#forwardedBySite.keys()])
    return {
      erp: this.#o.connector.description,
      state: this.#state,
      lastError: this.#lastError,
      nextTryAt: this.#state === 'unreachable' ? new Date(this.#nextTryAt).toISOString() : null,
      lastForwardedAt: this.#lastForwardedAt ? new Date(this.#lastForwardedAt).toISOString() : null,
      masterData: this.#master,
      sites: [...sites].sort().map((site) => ({ site, forwarded: this.#forwardedBySite.get(site) ?? 0, pending: this.#pending.get(site)?.length ?? 0, parked: parkedBySite.get(site) ?? [] })),
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined
        resolve()
      }, ms)
      this.#wake = () => {
        clearTimeout(timer)
        this.#wake = undefined
        resolve()
      }
    })
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#parkedTimer)
    for (const t of this.#timers) clearInterval(t)
    this.#wake?.()
    await this.#running?.catch(() => undefined)
    await this.#outbox?.close()
  }
}
