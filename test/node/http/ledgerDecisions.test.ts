/**
 * Ledger review decisions and movement ids over HTTP: one decision per item however many people
 * press the button at once, ids the node makes itself are not the client's to use, the same id
 * with other content is a conflict, stock that goes below zero again is a new item, and a
 * decision whose compensation a crash left unposted is completed at the next start.
 */
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { decideLedgerItem, ledgerReviewItems } from '../../../src/docs/review.ts'
import { journalDocs } from '../../../src/node/ledger.ts'
import { SiteNode } from '../../../src/node/siteNode.ts'
import type { DeviceId, UserId } from '../../../src/schema/ids.ts'
import { api } from '../../helpers/api.ts'
import { startSite } from '../../helpers/site.ts'
import { tempDir } from '../../helpers/tempDir.ts'

const issue = (id: string, quantity: number, sku = 'AMOX-500') => ({ id, kind: 'issue', sku, quantity, user: 'ana' })
const stockOf = async (url: string, sku = 'AMOX-500') => (await api(url, 'GET', `/api/stock/${sku}`)).body.onHand

describe('deciding a ledger review item', () => {
  it('takes one of two decisions sent at once; the other is 409 and changes nothing', async () => {
    const { url } = await startSite(tempDir())
    await api(url, 'POST', '/api/movements', issue('i-1', 10))
    const path = '/api/review/negative-stock:AMOX-500/decision'
    const [a, b] = await Promise.all([
      api(url, 'POST', path, { user: 'alice', note: 'A', adjustments: [{ sku: 'AMOX-500', delta: 10, reason: 'found' }] }),
      api(url, 'POST', path, { user: 'bob', note: 'B', adjustments: [{ sku: 'AMOX-500', delta: 1, reason: 'found' }, { sku: 'AMOX-500', delta: 9, reason: 'damaged' }] }),
    ])
    expect([a.status, b.status].sort()).toEqual([201, 409])
    expect(await stockOf(url)).toBe(0)
    expect((await api(url, 'GET', '/api/movements')).body.total).toBe(2)
    const [item] = (await api(url, 'GET', '/api/review')).body.items
    expect(item).toMatchObject({ id: 'negative-stock:AMOX-500', status: 'resolved' })
    expect((await api(url, 'GET', '/api/ledger/check')).body.consistent).toBe(true)
  })

  it('opens a new item when the stock goes below zero again', async () => {
    const { url } = await startSite(tempDir())
    await api(url, 'POST', '/api/movements', issue('i-1', 2))
    await api(url, 'POST', '/api/review/negative-stock:AMOX-500/decision', { user: 'mgr', note: 'found 2', adjustments: [{ sku: 'AMOX-500', delta: 2, reason: 'found' }] })
    await api(url, 'POST', '/api/movements', issue('i-2', 5))
    const items = (await api(url, 'GET', '/api/review')).body.items
    expect(items.map((i: { id: string; status: string }) => [i.id, i.status])).toEqual([
      ['negative-stock:AMOX-500~2', 'open'],
      ['negative-stock:AMOX-500', 'resolved'],
    ])
    const second = await api(url, 'POST', '/api/review/negative-stock:AMOX-500~2/decision', { user: 'mgr', note: 'found 5', adjustments: [{ sku: 'AMOX-500', delta: 5, reason: 'found' }] })
    expect(second.status).toBe(201)
    expect(await stockOf(url)).toBe(0)
  })

  it('posts at the next start the compensation of a decision a crash left unposted', async () => {
    const dir = tempDir()
    const first = await startSite(dir)
    await api(first.url, 'POST', '/api/movements', issue('i-1', 3))
    const node = first.node
    const [item] = ledgerReviewItems(node.store.ledger.doc(), journalDocs(node))
    // What a crash between the two durable steps leaves: the decision, naming a compensation that is not posted.
    const ctx = { user: 'mgr' as UserId, device: node.identity.node as DeviceId, at: node.now() }
    await node.commit(node.store.ledger.handle, (d) => decideLedgerItem(d, item!, { note: 'found 3', movements: ['fix:negative-stock:AMOX-500:1'], compensations: [{ id: 'fix:negative-stock:AMOX-500:1', sku: 'AMOX-500', delta: 3, reason: 'found' }] }, ctx), { op: 'ledger.decide', user: 'mgr' })
    expect(await stockOf(first.url)).toBe(-3)
    await first.close()
    const again = await SiteNode.open({ dataDir: dir, logger: pino({ level: 'silent' }) })
    await again.fullyLoaded
    expect(again.book.postingsOf('fix:negative-stock:AMOX-500:1')).toMatchObject([{ delta: 3, reason: 'found', by: 'mgr' }])
    expect(again.book.onHand().get('AMOX-500')).toBe(0)
    await again.close()
  })
})

describe('movement ids', () => {
  it.each(['rcv:mf-1:s1:l1', 'fix:negative-stock:AMOX-500:1'])('refuses a client movement with the id %s, which the node makes itself', async (id) => {
    const { url } = await startSite(tempDir())
    const res = await api(url, 'POST', '/api/movements', { id, kind: 'receipt', sku: 'AMOX-500', quantity: 1, user: 'ana' })
    expect(res).toMatchObject({ status: 400, body: { field: 'id', error: expect.stringContaining('made by the site node itself') } })
    const batch = await api(url, 'POST', '/api/movements', { movements: [issue('ok-1', 1), { id, kind: 'receipt', sku: 'AMOX-500', quantity: 1, user: 'ana' }] })
    expect(batch).toMatchObject({ status: 400, body: { field: 'movements.1.id' } })
    expect((await api(url, 'GET', '/api/movements')).body.total).toBe(0)
  })

  it('answers the same movement sent again as a duplicate, and the same id with another quantity as 409', async () => {
    const { url } = await startSite(tempDir())
    await api(url, 'POST', '/api/movements', { id: 'r-1', kind: 'receipt', sku: 'AMOX-500', quantity: 40, user: 'ana' })
    expect((await api(url, 'POST', '/api/movements', { id: 'r-1', kind: 'receipt', sku: 'AMOX-500', quantity: 40, user: 'ana' })).body.status).toBe('duplicate')
    const other = await api(url, 'POST', '/api/movements', { id: 'r-1', kind: 'receipt', sku: 'AMOX-500', quantity: 4, user: 'ana' })
    expect(other).toMatchObject({ status: 409, body: { field: 'id', error: expect.stringContaining('receipt of 40 AMOX-500') } })
    expect(await stockOf(url)).toBe(40)
  })

  it('refuses a SKU that is not an id in the path or the query', async () => {
    const { url } = await startSite(tempDir())
    expect(await api(url, 'GET', '/api/stock/%00')).toMatchObject({ status: 400, body: { field: 'sku' } })
    expect(await api(url, 'GET', '/api/movements?sku=%E0')).toMatchObject({ status: 400, body: { field: 'sku' } })
  })
})
