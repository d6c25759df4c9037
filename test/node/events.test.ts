/**
 * The site node's typed events, which the app, the ERP bridge and carrier mode listen to instead
 * of polling: movements recorded here and arriving from another device, documents added, review
 * decisions, and peers coming and going with their parsed peer ids.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Repo, type AutomergeUrl } from '@automerge/automerge-repo'
import { WebSocketClientAdapter, WebSocketServerAdapter } from '@automerge/automerge-repo-network-websocket'
import { WebSocketServer } from 'ws'
import { describe, expect, it, onTestFinished } from 'vitest'
import { LedgerBook } from '../../src/docs/ledgerBook.ts'
import { DurableGate } from '../../src/network/durableGate.ts'
import { formatPeerId } from '../../src/network/peerId.ts'
import type { SiteNodeEvents } from '../../src/node/events.ts'
import { RepoLedgerStore } from '../../src/node/repoLedgerStore.ts'
import type { SiteNode } from '../../src/node/siteNode.ts'
import type { LedgerDoc } from '../../src/schema/ledger.ts'
import { api } from '../helpers/api.ts'
import { startSite } from '../helpers/site.ts'
import { tempDir } from '../helpers/tempDir.ts'
import { until } from '../helpers/until.ts'

/** Everything `node` emits, in order. */
function listen(node: SiteNode) {
  const seen: Array<{ [K in keyof SiteNodeEvents]: { event: K; data: SiteNodeEvents[K][0] } }[keyof SiteNodeEvents]> = []
  for (const event of ['movements', 'document', 'decision', 'peer'] as const) node.events.on(event, ((data: never) => void seen.push({ event, data })) as never)
  return seen
}

describe('SiteNode events', () => {
  it('announces movements recorded here once durable, documents added and decisions made', async () => {
    const site = await startSite(tempDir())
    const seen = listen(site.node)
    // At the moment a listener hears of a movement, no change of any journal is still waiting for
    // its flush (the store counts a hold per change until the change is on disk).
    const undurableAtEvent: number[] = []
    site.node.events.on('movements', () => undurableAtEvent.push([...site.node.store.journals()].reduce((n, ref) => n + ref.holds, 0)))
    await api(site.url, 'POST', '/api/movements', { id: 'r-1', kind: 'receipt', sku: 'AMOX-500', quantity: 5, user: 'amina' })
    const moved = seen.find((s) => s.event === 'movements')
    expect(moved).toMatchObject({ data: { source: 'local', postings: [{ id: 'r-1', sku: 'AMOX-500', delta: 5, by: 'amina' }] } })
    await api(site.url, 'POST', '/api/orders', { id: 'ord-1', from: 'demo-store', to: 'demo-hub', user: 'amina' })
    expect(seen.filter((s) => s.event === 'document')).toMatchObject([{ data: { kind: 'order', id: 'ord-1', how: 'added' } }])
    await api(site.url, 'POST', '/api/movements', { id: 'i-1', kind: 'issue', sku: 'AMOX-500', quantity: 9, user: 'amina' })
    await api(site.url, 'POST', '/api/review/negative-stock:AMOX-500/decision', { user: 'mgr', note: 'recounted', adjustments: [{ sku: 'AMOX-500', delta: 4, reason: 'correction' }] })
    expect(seen.filter((s) => s.event === 'decision')).toMatchObject([{ data: { doc: 'ledger', item: 'negative-stock:AMOX-500', by: 'mgr' } }])
    expect(seen.filter((s) => s.event === 'movements').flatMap((s) => (s.data as SiteNodeEvents['movements'][0]).postings.map((p) => p.id))).toEqual(['r-1', 'i-1', `fix:negative-stock:AMOX-500:${site.node.identity.node}:1`])
    expect(undurableAtEvent).toEqual([0, 0, 0])
  })

  it('announces a peer with its parsed id, and the movements another device posts as synced', async () => {
    const site = await startSite(tempDir())
    const seen = listen(site.node)
    const http = createServer()
    const wss = new WebSocketServer({ server: http })
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    const device = new Repo({ network: [new WebSocketServerAdapter(wss as never)], peerId: formatPeerId({ role: 'site', site: 'demo-store', device: 'tablet-2' }), sharePolicy: async () => true })
    onTestFinished(() => {
      device.networkSubsystem.disconnect()
      wss.close()
      http.close()
    })
    site.node.connect(new WebSocketClientAdapter(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`, 200))
    const peer = await until('the peer event', () => seen.find((s) => s.event === 'peer'))
    expect(peer.data).toEqual({ peerId: 'site/demo-store/tablet-2', peer: { role: 'site', site: 'demo-store', device: 'tablet-2' }, state: 'connected' })

    const ledger = await device.find<LedgerDoc>(site.node.store.ledger.url as AutomergeUrl)
    const book = new LedgerBook(new RepoLedgerStore(device, ledger, new DurableGate()), { node: 'tablet-2', site: 'demo-store', knownSku: () => true, now: Date.now })
    await book.record([{ id: 'tab-1', kind: 'receipt', sku: 'ORS-1L', quantity: 30, user: 'zanele' }])
    const synced = await until('the synced movement', () => seen.find((s) => s.event === 'movements'))
    expect(synced.data).toMatchObject({ source: 'sync', postings: [{ id: 'tab-1', node: 'tablet-2', by: 'zanele' }] })
    expect(seen.filter((s) => s.event === 'document')).toEqual(expect.arrayContaining([expect.objectContaining({ data: expect.objectContaining({ kind: 'journal', id: 'tablet-2/1', how: 'loaded' }) })]))

    device.networkSubsystem.disconnect()
    wss.close()
    await until('the peer to go', () => seen.find((s) => s.event === 'peer' && (s.data as SiteNodeEvents['peer'][0]).state === 'disconnected'))
  })
})
