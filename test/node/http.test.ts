import { describe, expect, it } from 'vitest'
import { api } from '../helpers/api.ts'
import { startSite } from '../helpers/site.ts'
import { tempDir } from '../helpers/tempDir.ts'

const receipt = (id: string, quantity: number, sku = 'AMOX-500') => ({ id, kind: 'receipt', sku, quantity, user: 'amina', device: 'scanner-1' })

async function stockOf(url: string, sku: string): Promise<number> {
  return (await api(url, 'GET', `/api/stock/${sku}`)).body.onHand
}

describe('POST /api/movements', () => {
  it('records a receipt and an issue that the stock then shows', async () => {
    const { url } = await startSite(tempDir())
    expect(await api(url, 'POST', '/api/movements', receipt('r-1', 40))).toMatchObject({ status: 201, body: { status: 'recorded', delta: 40, user: 'amina', device: 'scanner-1' } })
    expect((await api(url, 'POST', '/api/movements', { id: 'i-1', kind: 'issue', sku: 'AMOX-500', quantity: 15, user: 'amina', reference: 'ward 3' })).status).toBe(201)
    expect(await stockOf(url, 'AMOX-500')).toBe(25)
    const listed = await api(url, 'GET', '/api/movements?sku=AMOX-500')
    expect(listed.body.movements.map((m: { id: string }) => m.id).sort()).toEqual(['i-1', 'r-1'])
  })

  it('answers a re-submitted movement id with the original and changes nothing', async () => {
    const { url } = await startSite(tempDir())
    await api(url, 'POST', '/api/movements', receipt('r-1', 40))
    const again = await api(url, 'POST', '/api/movements', receipt('r-1', 40))
    expect(again).toMatchObject({ status: 200, body: { status: 'duplicate', id: 'r-1' } })
    expect(await stockOf(url, 'AMOX-500')).toBe(40)
  })

  it('takes a scanner batch and reports each movement', async () => {
    const { url } = await startSite(tempDir())
    const res = await api(url, 'POST', '/api/movements', { movements: [receipt('b-1', 5), receipt('b-2', 6, 'ORS-1L'), receipt('b-1', 5)] })
    expect(res.status).toBe(201)
    expect(res.body.results.map((r: { status: string }) => r.status)).toEqual(['recorded', 'recorded', 'duplicate'])
    expect(await stockOf(url, 'ORS-1L')).toBe(6)
  })

  it.each([
    ['a missing quantity', { id: 'x', kind: 'receipt', sku: 'AMOX-500', user: 'u' }, 400, 'quantity'],
    ['a fractional quantity', receipt('x', 2.5), 400, 'quantity'],
    ['an adjustment without reason', { id: 'x', kind: 'adjustment', sku: 'AMOX-500', delta: 2, user: 'u' }, 400, 'reason'],
    ['an unknown SKU', receipt('x', 1, 'NOT-A-SKU'), 422, 'sku'],
    ['an empty batch', { movements: [] }, 400, 'movements'],
  ])('refuses %s (status %i), naming the field, and changes nothing', async (_, body, status, field) => {
    const { url } = await startSite(tempDir())
    await api(url, 'POST', '/api/movements', receipt('before', 3))
    const res = await api(url, 'POST', '/api/movements', body)
    expect(res.status).toBe(status)
    expect(res.body.field).toBe(field)
    expect(res.body.error).toMatch(new RegExp(field))
    expect(await stockOf(url, 'AMOX-500')).toBe(3)
    expect((await api(url, 'GET', '/api/movements')).body.total).toBe(1)
  })

  it('refuses a body that is not JSON, not declared as JSON, or too large', async () => {
    const { url } = await startSite(tempDir(), { api: { bodyLimit: 10_000 } })
    expect(await api(url, 'POST', '/api/movements', '{"id": ')).toMatchObject({ status: 400, body: { error: expect.stringMatching(/not valid JSON/) } })
    const wrongType = await fetch(`${url}/api/movements`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify(receipt('t', 1)) })
    expect(wrongType.status).toBe(415)
    const big = { movements: Array.from({ length: 200 }, (_, i) => receipt(`big-${i}`, 1)) }
    expect((await api(url, 'POST', '/api/movements', big)).status).toBe(413)
    expect(await stockOf(url, 'AMOX-500')).toBe(0)
  })
})

describe('the API as a whole', () => {
  it('answers unknown routes with 404 and wrong methods with 405', async () => {
    const { url } = await startSite(tempDir())
    expect((await api(url, 'GET', '/api/nothing-here')).status).toBe(404)
    expect((await api(url, 'DELETE', '/api/stock')).status).toBe(405)
    expect((await api(url, 'GET', '/no-such-page.html')).status).toBe(404)
  })

  it('reports health, and serves a page at /', async () => {
    const { url, node } = await startSite(tempDir())
    expect(await api(url, 'GET', '/api/health')).toMatchObject({ status: 200, body: { status: 'ok', site: 'demo-store', node: node.identity.node, readOnly: [] } })
    const page = await fetch(url + '/')
    expect(page.headers.get('content-type')).toMatch(/text\/html/)
    expect(await page.text()).toMatch(/stockmesh/)
  })

  it('requires the bearer token when one is set', async () => {
    const { url } = await startSite(tempDir(), { api: { token: 's3cret-token' } })
    expect((await api(url, 'GET', '/api/stock')).status).toBe(401)
    expect((await api(url, 'GET', '/api/stock', undefined, { authorization: 'Bearer wrong' })).status).toBe(401)
    const res = await api(url, 'POST', '/api/movements', receipt('t-1', 2), { authorization: 'Bearer s3cret-token' })
    expect(res.status).toBe(201)
  })

  it('refuses requests addressed to another host name (DNS rebinding from a web page)', async () => {
    const { url } = await startSite(tempDir())
    const { request } = await import('node:http')
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${url}/api/stock`, { headers: { host: 'evil.example:8470' } }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
      req.end()
    })
    expect(status).toBe(421)
  })

  it('refuses to listen beyond loopback without a token', async () => {
    await expect(startSite(tempDir(), { api: { host: '0.0.0.0' } })).rejects.toThrow(/without an API token/)
  })

  it('lists orders and manifests the site holds (none yet on a new site)', async () => {
    const { url } = await startSite(tempDir())
    expect((await api(url, 'GET', '/api/orders')).body).toEqual({ orders: [] })
    expect((await api(url, 'GET', '/api/manifests')).body).toEqual({ manifests: [] })
  })
})

describe('the review queue over HTTP', () => {
  it('shows stock below zero and resolves it with a recorded decision and a compensating movement', async () => {
    const { url } = await startSite(tempDir())
    await api(url, 'POST', '/api/movements', receipt('r-1', 5))
    await api(url, 'POST', '/api/movements', { id: 'i-1', kind: 'issue', sku: 'AMOX-500', quantity: 8, user: 'amina' })
    const queue = await api(url, 'GET', '/api/review')
    expect(queue.body.items).toMatchObject([{ id: 'negative-stock:AMOX-500', status: 'open' }])

    const bad = await api(url, 'POST', '/api/review/negative-stock:AMOX-500/decision', { user: 'manager', note: '' })
    expect(bad).toMatchObject({ status: 400, body: { field: 'note' } })

    const decided = await api(url, 'POST', '/api/review/negative-stock:AMOX-500/decision', {
      user: 'manager',
      note: 'counted 0 on the shelf; the issue was real, the receipt was short',
      adjustments: [{ sku: 'AMOX-500', delta: 3, reason: 'correction' }],
    })
    expect(decided.status).toBe(201)
    expect(await stockOf(url, 'AMOX-500')).toBe(0)
    // Its cause has cleared, but the decided item stays listed, resolved, with its decision.
    expect((await api(url, 'GET', '/api/review')).body.items).toMatchObject([
      { id: 'negative-stock:AMOX-500', status: 'resolved', decision: { by: 'manager', movements: [expect.stringMatching(/^fix:negative-stock:AMOX-500:dev-[0-9a-f]+:1$/)] } },
    ])
    const again = await api(url, 'POST', '/api/review/negative-stock:AMOX-500/decision', { user: 'other', note: 'me too', adjustments: [] })
    expect(again).toMatchObject({ status: 409, body: { error: expect.stringContaining('already decided by manager') } })
    expect(await stockOf(url, 'AMOX-500')).toBe(0)
    const history = await api(url, 'GET', '/api/history/ledger')
    // Every movement with its person, device and time, and the decision.
    expect(history.body.entries).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ op: 'ledger.decide', user: 'manager', ref: 'negative-stock:AMOX-500' }),
        expect.objectContaining({ op: 'ledger.adjustment', user: 'manager', ref: expect.stringMatching(/^fix:negative-stock:AMOX-500:dev-[0-9a-f]+:1$/), movement: expect.objectContaining({ delta: 3, reason: 'correction' }) }),
        expect.objectContaining({ op: 'ledger.issue', user: 'amina', ref: 'i-1', at: expect.any(Number) }),
        expect.objectContaining({ op: 'ledger.receipt', user: 'amina', device: 'scanner-1', ref: 'r-1' }),
      ]),
    )
    expect((await api(url, 'GET', '/api/ledger/check')).body).toMatchObject({ consistent: true })
  })
})

describe('a restart', () => {
  it('keeps every recorded movement and the same device identity', async () => {
    const dir = tempDir()
    const first = await startSite(dir)
    await api(first.url, 'POST', '/api/movements', { movements: [receipt('a', 7), receipt('b', 9, 'ORS-1L')] })
    const device = first.node.identity.node
    await first.close()
    const second = await startSite(dir)
    expect(second.node.identity.node).toBe(device)
    expect(await stockOf(second.url, 'AMOX-500')).toBe(7)
    expect(await stockOf(second.url, 'ORS-1L')).toBe(9)
    expect((await api(second.url, 'POST', '/api/movements', receipt('a', 7))).body.status).toBe('duplicate')
  })

  it('keeps a ledger written by a newer app intact and read-only', async () => {
    const dir = tempDir()
    const first = await startSite(dir)
    await api(first.url, 'POST', '/api/movements', receipt('a', 7))
    first.node.store.ledger.handle.change((d) => {
      d.schema = 99
    })
    await first.close()
    const second = await startSite(dir)
    expect((await api(second.url, 'GET', '/api/health')).body.readOnly).toEqual([second.node.store.ledger.url])
    const refused = await api(second.url, 'POST', '/api/movements', receipt('b', 1))
    expect(refused.status).toBe(409)
    expect(refused.body.error).toMatch(/newer than this app/)
    expect(second.node.store.ledger.doc().schema).toBe(99)
    expect(await stockOf(second.url, 'AMOX-500')).toBe(7)
  })

  it('refuses a data folder of another site', async () => {
    const dir = tempDir()
    const first = await startSite(dir)
    await first.close()
    await expect(startSite(dir, { site: 'other-site' })).rejects.toThrow(/holds site demo-store/)
  })
})
