/**
 * Over HTTP, what the catalog does not know is refused like an unknown SKU in a movement: orders
 * and manifests naming products or sites the catalog lacks, reasons it does not list, client
 * times far from the node's clock, and ids that are names of Object.prototype. Each refusal names
 * the field and changes nothing.
 */
import { describe, expect, it } from 'vitest'
import { api } from '../../helpers/api.ts'
import { startSite } from '../../helpers/site.ts'
import { tempDir } from '../../helpers/tempDir.ts'

const PLAN = { id: 'mf-1', from: 'demo-hub', carrier: 'K', user: 'hub', stops: [{ id: 's1', site: 'demo-store', lines: [{ id: 'l1', sku: 'AMOX-500', shipped: 4 }] }] }

describe('requests naming what the catalog does not know', () => {
  it.each([
    ['an order of an unknown SKU', '/api/orders', { id: 'o-1', from: 'demo-store', to: 'demo-hub', user: 'ana', lines: [{ sku: 'NOPE-1', requested: 3 }] }, 'unknown-sku', 'lines.0.sku'],
    ['an order to an unknown site', '/api/orders', { id: 'o-1', from: 'demo-store', to: 'atlantis', user: 'ana' }, 'unknown-site', 'to'],
    ['a manifest of an unknown SKU', '/api/manifests', { ...PLAN, stops: [{ id: 's1', site: 'demo-store', lines: [{ id: 'l1', sku: 'NOPE-1', shipped: 4 }] }] }, 'unknown-sku', 'stops.0.lines.0.sku'],
    ['a manifest to an unknown site', '/api/manifests', { ...PLAN, stops: [{ id: 's1', site: 'atlantis', lines: [{ id: 'l1', sku: 'AMOX-500', shipped: 4 }] }] }, 'unknown-site', 'stops.0.site'],
    ['an adjustment with a reason the catalog lacks', '/api/movements', { id: 'a-1', kind: 'adjustment', sku: 'AMOX-500', delta: -2, reason: 'stolen-by-goats', user: 'ana' }, 'unknown-reason', undefined],
  ])('refuses %s and creates nothing', async (_, path, body, code, field) => {
    const { url } = await startSite(tempDir())
    const res = await api(url, 'POST', path, body)
    expect(res.status).toBe(422)
    expect(res.body.code).toBe(code)
    if (field) expect(res.body.field).toBe(field)
    expect((await api(url, 'GET', '/api/orders')).body.orders).toEqual([])
    expect((await api(url, 'GET', '/api/manifests')).body.manifests).toEqual([])
    expect((await api(url, 'GET', '/api/movements')).body.total).toBe(0)
  })

  it('refuses a line added to a draft order for an unknown SKU', async () => {
    const { url } = await startSite(tempDir())
    await api(url, 'POST', '/api/orders', { id: 'o-1', from: 'demo-store', to: 'demo-hub', user: 'ana' })
    const res = await api(url, 'POST', '/api/orders/o-1/lines', { sku: 'NOPE-1', requested: 2, user: 'ana' })
    expect(res).toMatchObject({ status: 422, body: { code: 'unknown-sku', field: 'sku' } })
    expect((await api(url, 'GET', '/api/orders/o-1')).body.lines).toEqual([])
  })

  it('refuses a decision whose compensating adjustment has an unknown reason, posting nothing', async () => {
    const { url } = await startSite(tempDir())
    await api(url, 'POST', '/api/movements', { id: 'i-1', kind: 'issue', sku: 'AMOX-500', quantity: 2, user: 'ana' })
    const res = await api(url, 'POST', '/api/review/negative-stock:AMOX-500/decision', { user: 'mgr', note: 'n', adjustments: [{ sku: 'AMOX-500', delta: 2, reason: 'magic' }] })
    expect(res).toMatchObject({ status: 422, body: { code: 'unknown-reason', field: 'adjustments.0.reason' } })
    expect((await api(url, 'GET', '/api/movements')).body.total).toBe(1)
    expect((await api(url, 'GET', '/api/review')).body.items).toMatchObject([{ status: 'open' }])
  })

  it.each([9e15, 1, Date.now() + 3 * 86_400_000])('refuses a movement whose client time %d is far from the node clock', async (at) => {
    const { url } = await startSite(tempDir())
    const res = await api(url, 'POST', '/api/movements', { id: 'r-1', kind: 'receipt', sku: 'AMOX-500', quantity: 1, user: 'ana', at })
    expect(res).toMatchObject({ status: 400, body: { field: 'at', error: expect.stringMatching(/400 days|24 hours/) } })
    expect((await api(url, 'GET', '/api/movements')).body.total).toBe(0)
  })
})

describe('ids that are names of Object.prototype', () => {
  it.each(['constructor', 'toString', 'hasOwnProperty', 'valueOf'])('creates an order and a manifest with the id %s', async (id) => {
    const { url } = await startSite(tempDir())
    expect((await api(url, 'POST', '/api/orders', { id, from: 'demo-store', to: 'demo-hub', user: 'ana' })).status).toBe(201)
    expect((await api(url, 'POST', '/api/manifests', { ...PLAN, id })).status).toBe(201)
    expect((await api(url, 'GET', `/api/orders/${id}`)).body).toMatchObject({ id, status: 'draft' })
    expect((await api(url, 'POST', '/api/orders', { id, from: 'demo-store', to: 'demo-hub', user: 'ana' })).status).toBe(409)
  })

  it('answers 404 for an order or manifest named like a prototype property that does not exist', async () => {
    const { url } = await startSite(tempDir())
    expect((await api(url, 'GET', '/api/orders/constructor')).status).toBe(404)
    expect((await api(url, 'GET', '/api/manifests/__proto__')).status).toBe(404)
    expect((await api(url, 'GET', '/api/stock/constructor')).status).toBe(404)
  })
})
