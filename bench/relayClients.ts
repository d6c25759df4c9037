/**
 * Child process of the relay benchmark: many devices in one process, each a real device of the
 * deployment as the relay sees it — its own automerge-repo Repo (in memory), its own
 * AuthenticatedWebSocketClientAdapter with its own credential and key (challenge, signed proof,
 * websocket), the site's ledger, index and catalog from its enrolment file, and the project's
 * LedgerBook over a RepoLedgerStore recording movements into its own journals. Whole sites live in
 * one process, so the time from a movement recorded at one device to its arrival at another device
 * of the same site is read on one clock.
 *
 * Driven over IPC by bench/relay.ts:
 *   {cmd:'init', devices, url}      make the devices (not connected)
 *   {cmd:'connect'}                  connect every device; answers when all are connected or after 60 s
 *   {cmd:'record', perDeviceEveryMs, durationMs}  each device records a movement every perDeviceEveryMs
 *   {cmd:'stats', reset?}            sent, arrivals at siblings, latencies (ms), connected devices
 *   {cmd:'mem'}                      this process's memory
 *   {cmd:'disconnect'}               every device leaves; repos shut down
 */
import { type AutomergeUrl, type DocHandle, type PeerId, Repo, parseAutomergeUrl } from '@automerge/automerge-repo'
import { journalEntries, journalPosting } from '../src/docs/ledger.ts'
import { LedgerBook } from '../src/docs/ledgerBook.ts'
import { readEnrolmentFile } from '../src/hub/enrol.ts'
import { AuthenticatedWebSocketClientAdapter } from '../src/network/AuthenticatedWebSocketClientAdapter.ts'
import { peerIdOfCredential } from '../src/network/authProtocol.ts'
import { DurableGate } from '../src/network/durableGate.ts'
import { RepoLedgerStore } from '../src/node/repoLedgerStore.ts'
import type { JournalDoc, LedgerDoc } from '../src/schema/ledger.ts'
import { CATALOG_SIZE, Movements, skuOf } from './workload.ts'

const skus = new Set(Array.from({ length: CATALOG_SIZE }, (_, i) => skuOf(i)))
/** Movement id → when it was recorded (performance.now of this process). */
const sentAt = new Map<string, number>()
let latencies: number[] = []
let arrivals = 0
let sent = 0
let failed = 0
let firstError: string | undefined

class Device {
  readonly repo: Repo
  adapter!: AuthenticatedWebSocketClientAdapter
  store!: RepoLedgerStore
  book!: LedgerBook
  readonly watched = new Set<string>()
  readonly gen: Movements
  constructor(
    readonly site: string,
    readonly device: string,
    readonly peerId: string,
    seed: number,
  ) {
    this.repo = new Repo({ network: [], peerId: peerId as PeerId, sharePolicy: async () => true })
    this.gen = new Movements(seed, device.slice(-6))
  }
  get connected(): boolean {
    return this.adapter?.remotePeerId !== undefined
  }
  /** Loads every journal the ledger names; counts arrivals in the journals of the site's other devices. */
  watchJournals(): void {
    for (const { url, node } of journalEntries(this.store.ledger.doc())) {
      if (this.watched.has(url)) continue
      this.watched.add(url)
      // As SiteNode does (src/node/siteNode.ts #find): a journal asked for before the relay could
      // answer is unavailable to every later find in automerge-repo 2.5.6, but its handle turns
      // ready when the relay sends it: wait on the handle.
      void this.repo
        .find<JournalDoc>(url as AutomergeUrl)
        .catch(() => this.repo.findWithProgress<JournalDoc>(url as AutomergeUrl).handle.whenReady(['ready']).then(() => this.repo.findWithProgress<JournalDoc>(url as AutomergeUrl).handle))
        .then((handle) => {
          this.book.indexJournal(this.store.addJournal(handle))
          if (node === this.device) return
          const seen = new Set<number>()
          const take = (doc: JournalDoc, seq: number) => {
            if (seen.has(seq)) return
            seen.add(seq)
            const p = journalPosting(doc, seq)
            if (!p) return
            arrivals++
            const t = sentAt.get(p.id)
            if (t !== undefined) latencies.push(performance.now() - t)
          }
          // What the journal held when it arrived, then what each change adds.
          const doc = handle.doc()
          for (const [, entries] of Object.entries(doc.m ?? {})) for (const seq of Object.keys(entries)) take(doc, Number(seq))
          handle.on('change', ({ doc, patches }) => {
            for (const patch of patches) {
              if (patch.path[0] !== 'm' || patch.path.length < 2) continue
              if (patch.path.length >= 3) take(doc, Number(patch.path[2]))
              else for (const key of Object.keys((doc.m as Record<string, object>)[String(patch.path[1])] ?? {})) take(doc, Number(key))
            }
          })
        })
        .catch(() => this.watched.delete(url))
    }
  }
  async recordOne(): Promise<void> {
    const input = this.gen.next(Date.now())
    sentAt.set(String(input.id), performance.now())
    try {
      await this.book.record([input])
      sent++
    } catch (error) {
      failed++
      firstError ??= String(error)
    }
  }
}

const devices: Device[] = []
let url = ''

async function init(list: Array<{ file: string }>, relayUrl: string): Promise<void> {
  url = relayUrl
  for (const [i, { file }] of list.entries()) {
    const { enrolment, claims } = await readEnrolmentFile(file)
    const d = new Device(claims.site, claims.device, peerIdOfCredential(claims), 1000 + i)
    const docs = enrolment.documents
    const handles: Record<string, DocHandle<unknown>> = {}
    for (const [kind, { url: docUrl, snapshot }] of Object.entries(docs) as Array<[string, { url: string; snapshot: string }]>) {
      handles[kind] = d.repo.import(Buffer.from(snapshot, 'base64'), { docId: parseAutomergeUrl(docUrl as AutomergeUrl).documentId })
    }
    d.store = new RepoLedgerStore(d.repo, handles.ledger as DocHandle<LedgerDoc>, new DurableGate())
    d.book = new LedgerBook(d.store, { node: d.device, site: d.site, knownSku: (s) => skus.has(s), now: Date.now })
    d.store.ledger.handle.on('change', () => d.watchJournals())
    ;(d as unknown as { credential: string; key: string }).credential = enrolment.credential
    ;(d as unknown as { credential: string; key: string }).key = enrolment.privateKey
    devices.push(d)
  }
}

async function connect(): Promise<{ connected: number; ms: number }> {
  const t0 = performance.now()
  for (const d of devices) {
    const { credential, key } = d as unknown as { credential: string; key: string }
    d.adapter = new AuthenticatedWebSocketClientAdapter({ url, credential, privateKey: key, timeoutMs: 30_000, minRetryMs: 1000 })
    d.repo.networkSubsystem.addNetworkAdapter(d.adapter)
  }
  while (performance.now() - t0 < 60_000 && devices.some((d) => !d.connected)) await new Promise((r) => setTimeout(r, 50))
  return { connected: devices.filter((d) => d.connected).length, ms: performance.now() - t0 }
}

let recording: Promise<void> | undefined
async function record(perDeviceEveryMs: number, durationMs: number): Promise<void> {
  const t0 = performance.now()
  await Promise.all(
    devices.map(async (d, i) => {
      // Staggered: device i starts at its own offset in the period, so movements arrive evenly.
      let next = t0 + (i / devices.length) * perDeviceEveryMs
      while (next < t0 + durationMs) {
        const wait = next - performance.now()
        if (wait > 0) await new Promise((r) => setTimeout(r, wait))
        await d.recordOne()
        next += perDeviceEveryMs
      }
    }),
  )
}

process.on('message', async (msg: { cmd: string; id: number; [k: string]: unknown }) => {
  const reply = (body: object) => process.send!({ id: msg.id, ...body })
  try {
    if (msg.cmd === 'init') {
      await init(msg.devices as Array<{ file: string }>, msg.url as string)
      reply({ devices: devices.length })
    } else if (msg.cmd === 'connect') reply(await connect())
    else if (msg.cmd === 'record') {
      recording = record(msg.perDeviceEveryMs as number, msg.durationMs as number)
      await recording
      reply({ sent, failed })
    } else if (msg.cmd === 'stats') {
      reply({ sent, failed, firstError, unhandled, arrivals, latencies, connected: devices.filter((d) => d.connected).length, devices: devices.length })
      if (msg.reset) {
        latencies = []
        arrivals = 0
        sent = 0
        failed = 0
      }
    } else if (msg.cmd === 'mem') {
      const m = process.memoryUsage()
      reply({ rss: m.rss, heapUsed: m.heapUsed })
    } else if (msg.cmd === 'disconnect') {
      for (const d of devices) d.adapter?.disconnect()
      await Promise.all(devices.map((d) => d.repo.shutdown().catch(() => undefined)))
      reply({ ok: true })
    }
  } catch (error) {
    reply({ error: String((error as Error)?.stack ?? error) })
  }
})
process.on('disconnect', () => process.exit(0))
// As the site command does (src/cli.ts): automerge-repo's find timeouts can reject with nobody
// listening; count them instead of dying.
let unhandled = 0
process.on('unhandledRejection', () => void unhandled++)
process.send!({ ready: true })
