import * as A from '@automerge/automerge'
import type { DocHandle } from '@automerge/automerge-repo'
import { describe, expect, it } from 'vitest'
import type { OrderDoc } from '../../src/schema/order.ts'
import { imm } from '../../src/schema/strings.ts'
import { api } from '../helpers/api.ts'
import { startSite } from '../helpers/site.ts'
import { tempDir } from '../helpers/tempDir.ts'

const ORDER = { id: 'po-1', from: 'demo-store', to: 'demo-hub', lines: [{ sku: 'AMOX-500', requested: 20 }], user: 'amina' }

async function orderOf(url: string, id = 'po-1') {
  return (await api(url, 'GET', `/api/orders/${id}`)).body
}

describe('an order through the HTTP API', () => {
  it('is raised by this site only: an order from another site is refused and nothing is made', async () => {
    const { url } = await startSite(tempDir())
    const res = await api(url, 'POST', '/api/orders', { ...ORDER, from: 'demo-clinic', to: 'demo-hub' })
    expect(res).toMatchObject({ status: 422, body: { code: 'not-this-site', field: 'from', error: 'this is site demo-store: it cannot raise an order from demo-clinic' } })
    expect((await api(url, 'GET', '/api/orders')).body).toEqual({ orders: [] })
  })

  it('goes draft → submitted → approved → fulfilled, with its lines, events and history', async () => {
    const { url, node } = await startSite(tempDir())
    const created = await api(url, 'POST', '/api/orders', ORDER)
    expect(created).toMatchObject({ status: 201, body: { id: 'po-1', status: 'draft', from: 'demo-store', to: 'demo-hub', lines: [{ sku: 'AMOX-500', requested: 20, approved: null }], actions: ['submit', 'cancel'] } })

    expect(await api(url, 'POST', '/api/orders/po-1/lines', { sku: 'ORS-1L', requested: 50, user: 'amina' })).toMatchObject({ status: 200, body: { lines: [{ sku: 'AMOX-500' }, { sku: 'ORS-1L', requested: 50 }] } })
    await api(url, 'POST', '/api/orders/po-1/lines', { sku: 'ZINC-20', requested: 5, user: 'amina' })
    await api(url, 'POST', '/api/orders/po-1/lines', { sku: 'AMOX-500', requested: 30, user: 'amina', device: 'tablet-2' })
    expect((await api(url, 'POST', '/api/orders/po-1/lines/ZINC-20/remove', { user: 'amina' })).status).toBe(200)

    expect(await api(url, 'POST', '/api/orders/po-1/submit', { user: 'amina', reason: 'monthly requisition' })).toMatchObject({ status: 200, body: { status: 'submitted', actions: ['approve', 'reject', 'cancel'] } })
    const approved = await api(url, 'POST', '/api/orders/po-1/approve', { user: 'otieno', lines: [{ sku: 'ORS-1L', approved: 40 }] })
    expect(approved).toMatchObject({ status: 200, body: { status: 'approved', actions: ['fulfil', 'cancel'], lines: [{ sku: 'AMOX-500', requested: 30, approved: 30 }, { sku: 'ORS-1L', requested: 50, approved: 40 }] } })
    expect((await api(url, 'POST', '/api/orders/po-1/fulfil', { user: 'otieno' })).body.status).toBe('fulfilled')

    const order = await orderOf(url)
    expect(order).toMatchObject({ id: 'po-1', status: 'fulfilled', createdBy: 'amina', review: [] })
    expect(order.events.map((e: { from: string; to: string; by: string }) => `${e.from}>${e.to} ${e.by}`)).toEqual(['draft>submitted amina', 'submitted>approved otieno', 'approved>fulfilled otieno'])
    expect(order.events[0]).toMatchObject({ reason: 'monthly requisition', device: node.identity.node })
    const ops = order.history.map((h: { op: string }) => h.op)
    expect(ops).toEqual(['order.create', 'order.setLine', 'order.setLine', 'order.setLine', 'order.removeLine', 'order.submit', 'order.approve', 'order.fulfil'])
    for (const entry of order.history) expect(entry).toMatchObject({ ref: 'po-1', user: expect.any(String), device: expect.any(String) })
    expect(order.history[3]).toMatchObject({ op: 'order.setLine', user: 'amina', device: 'tablet-2' })
    expect(order.history[6]).toMatchObject({ op: 'order.approve', user: 'otieno', device: node.identity.node })

    expect((await api(url, 'GET', '/api/orders')).body).toEqual({ orders: [{ id: 'po-1', status: 'fulfilled', from: 'demo-store', to: 'demo-hub', lines: order.lines, actions: [] }] })
    expect(Object.keys(node.index.doc().orders)).toEqual(['po-1'])
  })

  it('cancels with a reason, and rejects a submitted order with a reason', async () => {
    const { url } = await startSite(tempDir())
    await api(url, 'POST', '/api/orders', ORDER)
    expect(await api(url, 'POST', '/api/orders/po-1/cancel', { user: 'amina', reason: 'raised twice' })).toMatchObject({ status: 200, body: { status: 'cancelled' } })
    await api(url, 'POST', '/api/orders', { ...ORDER, id: 'po-2' })
    await api(url, 'POST', '/api/orders/po-2/submit', { user: 'amina' })
    expect(await api(url, 'POST', '/api/orders/po-2/reject', { user: 'otieno', reason: 'over budget' })).toMatchObject({ status: 200, body: { status: 'rejected' } })
    expect((await orderOf(url, 'po-2')).events.at(-1)).toMatchObject({ to: 'rejected', by: 'otieno', reason: 'over budget' })
  })
})

describe('refusals', () => {
  /** Starts a site with po-1 submitted and returns a snapshot function of what the API shows. */
  async function submittedOrder() {
    const site = await startSite(tempDir())
    await api(site.url, 'POST', '/api/orders', ORDER)
    await api(site.url, 'POST', '/api/orders/po-1/submit', { user: 'amina' })
    const handle = site.node.orders.get('po-1') as DocHandle<OrderDoc>
    const snapshot = async () => ({ order: await orderOf(site.url), heads: A.getHeads(handle.doc()), stock: (await api(site.url, 'GET', '/api/stock')).body })
    return { ...site, snapshot }
  }

  it.each([
    ['a transition the status does not allow', '/api/orders/po-1/fulfil', { user: 'otieno' }, 422, undefined, 'transition-not-allowed'],
    ['a line change after submission', '/api/orders/po-1/lines', { sku: 'ORS-1L', requested: 3, user: 'amina' }, 422, undefined, 'not-draft'],
    ['approving more than requested', '/api/orders/po-1/approve', { user: 'otieno', lines: [{ sku: 'AMOX-500', approved: 21 }] }, 422, 'lines.0.approved', 'approved-exceeds-requested'],
    ['a reject without reason', '/api/orders/po-1/reject', { user: 'otieno' }, 400, 'reason', undefined],
    ['a cancel without reason', '/api/orders/po-1/cancel', { user: 'otieno' }, 400, 'reason', undefined],
    ['a cancel with an empty reason', '/api/orders/po-1/cancel', { user: 'otieno', reason: '  ' }, 400, 'reason', undefined],
    ['a missing user', '/api/orders/po-1/approve', {}, 400, 'user', undefined],
    ['a malformed user', '/api/orders/po-1/approve', { user: 'no spaces allowed' }, 400, 'user', undefined],
    ['a malformed device', '/api/orders/po-1/approve', { user: 'otieno', device: '' }, 400, 'device', undefined],
    ['an unknown field', '/api/orders/po-1/submit', { user: 'amina', urgent: true }, 400, '', undefined],
    ['a body that is not an object', '/api/orders/po-1/approve', [1, 2], 400, '', undefined],
  ])('refuses %s and changes nothing', async (_, path, body, status, field, code) => {
    const { url, snapshot } = await submittedOrder()
    const before = await snapshot()
    const res = await api(url, 'POST', path, body)
    expect(res.status).toBe(status)
    if (field !== undefined) expect(res.body.field).toBe(field)
    if (code !== undefined) expect(res.body.code).toBe(code)
    expect(res.body.error).toEqual(expect.any(String))
    expect(await snapshot()).toEqual(before)
  })

  it('answers an unknown order with 404', async () => {
    const { url } = await startSite(tempDir())
    expect(await api(url, 'GET', '/api/orders/po-404')).toMatchObject({ status: 404, body: { error: expect.stringMatching(/no order po-404/) } })
    expect((await api(url, 'POST', '/api/orders/po-404/submit', { user: 'amina' })).status).toBe(404)
    expect((await api(url, 'POST', '/api/orders/po-404/lines', { sku: 'AMOX-500', requested: 1, user: 'amina' })).status).toBe(404)
    expect((await api(url, 'POST', '/api/orders/po-404/review/x/decision', { user: 'amina', note: 'n' })).status).toBe(404)
    expect((await api(url, 'DELETE', '/api/orders/po-404')).status).toBe(405)
  })

  it('refuses a bad new order before creating any document, and a duplicate id with 409', async () => {
    const { url, node } = await startSite(tempDir())
    const documents = Object.keys(node.repo.handles).length
    for (const [body, field] of [
      [{ ...ORDER, to: 'demo-store' }, 'to'],
      [{ ...ORDER, lines: [{ sku: 'AMOX-500', requested: 0 }] }, 'lines.0.requested'],
      [{ ...ORDER, id: 'has space' }, 'id'],
      [{ ...ORDER, user: undefined }, 'user'],
    ] as const) {
      const res = await api(url, 'POST', '/api/orders', body)
      expect(res).toMatchObject({ status: 400, body: { field } })
    }
    expect(Object.keys(node.repo.handles).length).toBe(documents)
    expect((await api(url, 'GET', '/api/orders')).body).toEqual({ orders: [] })

    expect((await api(url, 'POST', '/api/orders', ORDER)).status).toBe(201)
    const afterOne = Object.keys(node.repo.handles).length
    const [a, b] = await Promise.all([api(url, 'POST', '/api/orders', { ...ORDER, lines: [] }), api(url, 'POST', '/api/orders', ORDER)])
    expect([a.status, b.status]).toEqual([409, 409])
    expect(a.body).toMatchObject({ field: 'id', error: expect.stringMatching(/po-1 already exists/) })
    expect(Object.keys(node.repo.handles).length).toBe(afterOne)
    expect((await orderOf(url)).lines).toEqual([{ sku: 'AMOX-500', requested: 20, approved: null }])
  })

  it('creates only one of two concurrent orders with the same id', async () => {
    const { url } = await startSite(tempDir())
    const results = await Promise.all([api(url, 'POST', '/api/orders', ORDER), api(url, 'POST', '/api/orders', { ...ORDER, to: 'demo-clinic' })])
    expect(results.map((r) => r.status).sort()).toEqual([201, 409])
    expect((await api(url, 'GET', '/api/orders')).body.orders).toHaveLength(1)
  })
})

describe('order review items over HTTP', () => {
  it('shows a status conflict in the order and the queue, and records one decision', async () => {
    const { url, node } = await startSite(tempDir())
    await api(url, 'POST', '/api/orders', ORDER)
    await api(url, 'POST', '/api/orders/po-1/submit', { user: 'amina' })
    await api(url, 'POST', '/api/orders/po-1/approve', { user: 'otieno' })
    // A rejection made offline on another device, merged in: two events leave 'submitted'.
    const handle = node.orders.get('po-1') as DocHandle<OrderDoc>
    handle.change((d) => {
      d.events.push({ from: imm('submitted'), to: imm('rejected'), by: imm('wanjiru'), device: imm('tablet-9'), at: Date.now(), reason: imm('no budget') })
    })
    const itemId = 'order-status-conflict:po-1:submitted'
    const order = await orderOf(url)
    expect(order.status).toBe('rejected')
    expect(order.review).toMatchObject([{ id: itemId, status: 'open', doc: 'order' }])
    expect((await api(url, 'GET', '/api/review')).body.items).toMatchObject([{ id: itemId }])

    expect(await api(url, 'POST', `/api/orders/po-1/review/${itemId}/decision`, { user: 'manager' })).toMatchObject({ status: 400, body: { field: 'note' } })
    expect((await api(url, 'POST', '/api/orders/po-1/review/order-status-conflict:po-1:draft/decision', { user: 'manager', note: 'x' })).status).toBe(404)
    const decided = await api(url, 'POST', `/api/orders/po-1/review/${itemId}/decision`, { user: 'manager', note: 'rejection stands; re-order next month' })
    expect(decided).toMatchObject({ status: 201, body: { item: { id: itemId, status: 'resolved', decision: { by: 'manager', note: 'rejection stands; re-order next month' } } } })
    expect((await api(url, 'POST', `/api/orders/po-1/review/${itemId}/decision`, { user: 'manager', note: 'again' })).status).toBe(409)
    expect((await orderOf(url)).history.at(-1)).toMatchObject({ op: 'order.decide', user: 'manager', ref: 'po-1' })
  })
})

describe('a restart', () => {
  it('keeps the orders listed with their status', async () => {
    const dir = tempDir()
    const first = await startSite(dir)
    await api(first.url, 'POST', '/api/orders', ORDER)
    await api(first.url, 'POST', '/api/orders/po-1/submit', { user: 'amina' })
    await api(first.url, 'POST', '/api/orders', { ...ORDER, id: 'po-2' })
    await first.close()
    const second = await startSite(dir)
    const listed = (await api(second.url, 'GET', '/api/orders')).body.orders
    expect(listed.map((o: { id: string; status: string }) => `${o.id} ${o.status}`).sort()).toEqual(['po-1 submitted', 'po-2 draft'])
    expect((await api(second.url, 'POST', '/api/orders/po-1/approve', { user: 'otieno' })).body.status).toBe('approved')
    expect((await api(second.url, 'POST', '/api/orders', ORDER)).status).toBe(409)
  })
})
