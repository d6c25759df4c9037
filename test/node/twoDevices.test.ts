/**
 * Two devices of one store over a real websocket: the site node and a second device that posts
 * into the same ledger. The site node loads the other device's new journal as soon as the ledger
 * names it, counts its movements in on hand, and recognises a movement id the other device
 * already posted.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Repo, type AutomergeUrl, type PeerId } from '@automerge/automerge-repo'
import { WebSocketClientAdapter, WebSocketServerAdapter } from '@automerge/automerge-repo-network-websocket'
import { WebSocketServer } from 'ws'
import { describe, expect, it, onTestFinished } from 'vitest'
import { LedgerBook } from '../../src/docs/ledgerBook.ts'
import { DurableGate } from '../../src/network/durableGate.ts'
import { RepoLedgerStore } from '../../src/node/repoLedgerStore.ts'
import type { LedgerDoc } from '../../src/schema/ledger.ts'
import { api } from '../helpers/api.ts'
import { startSite } from '../helpers/site.ts'
import { tempDir } from '../helpers/tempDir.ts'
import { until } from '../helpers/until.ts'

describe('a second device of the same store', () => {
  it('has its movements counted and its movement ids recognised on the site node', async () => {
    const site = await startSite(tempDir())
    const http = createServer()
    const wss = new WebSocketServer({ server: http })
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    const device = new Repo({ network: [new WebSocketServerAdapter(wss as never)], peerId: 'tablet-2' as PeerId, sharePolicy: async () => true })
    onTestFinished(() => {
      device.networkSubsystem.disconnect()
      wss.close()
      http.close()
    })
    const connected = new Promise((resolve) => device.networkSubsystem.once('peer', resolve))
    site.node.connect(new WebSocketClientAdapter(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`, 200))
    await connected

    const ledger = await device.find<LedgerDoc>(site.node.store.ledger.url as AutomergeUrl)
    const book = new LedgerBook(new RepoLedgerStore(device, ledger, new DurableGate()), { node: 'tablet-2', site: 'demo-store', knownSku: () => true, now: Date.now })
    await book.record([
      { id: 'tab-1', kind: 'receipt', sku: 'ORS-1L', quantity: 30, user: 'zanele' },
      { id: 'tab-2', kind: 'issue', sku: 'ORS-1L', quantity: 4, user: 'zanele' },
    ])

    const onHand = await until('the site to count the tablet’s movements', async () => {
      const res = await api(site.url, 'GET', '/api/stock/ORS-1L')
      return res.body.onHand === 26 ? res.body.onHand : undefined
    })
    expect(onHand).toBe(26)
    const listed = await until('the site to list the tablet’s movements', async () => {
      const res = await api(site.url, 'GET', '/api/movements?sku=ORS-1L')
      return res.body.total === 2 ? res.body.movements : undefined
    })
    expect(listed.map((m: { id: string; posting: string }) => [m.id, m.posting]).sort()).toEqual([
      ['tab-1', 'tablet-2:1'],
      ['tab-2', 'tablet-2:2'],
    ])
    const resent = await api(site.url, 'POST', '/api/movements', { id: 'tab-1', kind: 'receipt', sku: 'ORS-1L', quantity: 30, user: 'zanele' })
    expect(resent.body).toMatchObject({ status: 'duplicate', posting: 'tablet-2:1' })
    // A later movement in the journal the site already holds is indexed as it arrives.
    await book.record([{ id: 'tab-3', kind: 'receipt', sku: 'ORS-1L', quantity: 1, user: 'zanele' }])
    await until('the tablet’s later movement', async () => ((await api(site.url, 'GET', '/api/stock/ORS-1L')).body.onHand === 27 ? true : undefined))
    const later = await api(site.url, 'POST', '/api/movements', { id: 'tab-3', kind: 'receipt', sku: 'ORS-1L', quantity: 1, user: 'zanele' })
    expect(later.body).toMatchObject({ status: 'duplicate', posting: 'tablet-2:3' })
    expect((await api(site.url, 'GET', '/api/ledger/check')).body).toMatchObject({ consistent: true })
  })
})
