import * as A from '@automerge/automerge'
import type { DocHandle } from '@automerge/automerge-repo'
import { describe, expect, it } from 'vitest'
import { deliverStop } from '../../src/docs/manifest.ts'
import { upsertProduct } from '../../src/docs/catalog.ts'
import { reconcileReceipts } from '../../src/node/manifests.ts'
import type { DeviceId, UserId } from '../../src/schema/ids.ts'
import type { ManifestDoc } from '../../src/schema/manifest.ts'
import { api } from '../helpers/api.ts'
import { startSite } from '../helpers/site.ts'
import { tempDir } from '../helpers/tempDir.ts'

/** From the hub: stop s1 is this site (demo-store), stop s2 another site. */
const PLAN = {
  id: 'mf-1',
  from: 'demo-hub',
  carrier: 'Kisumu Transport',
  stops: [
    { id: 's1', site: 'demo-store', lines: [{ id: 'l1', sku: 'AMOX-500', shipped: 10 }, { id: 'l2', sku: 'ORS-1L', shipped: 4 }] },
    { id: 's2', site: 'demo-clinic', lines: [{ id: 'l1', sku: 'ZINC-20', shipped: 6 }] },
  ],
  user: 'hub-clerk',
}
const SIGNATURE = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='
const DELIVERY_S1 = { user: 'amina', receiver: 'Amina Odhiambo', signature: SIGNATURE, lines: [{ line: 'l1', received: 10 }, { line: 'l2', received: 3, rejected: 1 }] }

async function stock(url: string) {
  const items = (await api(url, 'GET', '/api/stock')).body.items as Array<{ sku: string; onHand: number }>
  return Object.fromEntries(items.map((i) => [i.sku, i.onHand]))
}

async function movementIds(url: string): Promise<string[]> {
  return ((await api(url, 'GET', '/api/movements')).body.movements as Array<{ id: string }>).map((m) => m.id).sort()
}

async function departedManifest(url: string) {
  expect((await api(url, 'POST', '/api/manifests', PLAN)).status).toBe(201)
  expect((await api(url, 'POST', '/api/manifests/mf-1/depart', { user: 'driver-1' })).body.status).toBe('departed')
}

describe('a manifest through the HTTP API', () => {
  it('is planned, departs, delivers this site’s stop into the ledger, and closes', async () => {
    const { url, node } = await startSite(tempDir())
    const planned = await api(url, 'POST', '/api/manifests', PLAN)
    expect(planned).toMatchObject({ status: 201, body: { id: 'mf-1', status: 'planned', from: 'demo-hub', carrier: 'Kisumu Transport', stops: [{ id: 's1', status: 'pending' }, { id: 's2' }] } })
    expect(await api(url, 'POST', '/api/manifests/mf-1/stops/s1/delivery', DELIVERY_S1)).toMatchObject({ status: 422, body: { code: 'not-departed' } })
    expect((await api(url, 'POST', '/api/manifests/mf-1/depart', { user: 'driver-1', reason: 'left 06:10' })).body.status).toBe('departed')

    const delivered = await api(url, 'POST', '/api/manifests/mf-1/stops/s1/delivery', DELIVERY_S1)
    expect(delivered).toMatchObject({
      status: 201,
      body: {
        manifest: 'mf-1',
        stop: 's1',
        site: 'demo-store',
        status: 'departed',
        delivery: { by: 'amina', device: node.identity.node, receiver: 'Amina Odhiambo', lines: { l1: { received: 10, rejected: 0 }, l2: { received: 3, rejected: 1 } } },
        receipts: {
          posted: true,
          results: [
            { status: 'recorded', id: 'rcv:mf-1:s1:l1', sku: 'AMOX-500', quantity: 10 },
            { status: 'recorded', id: 'rcv:mf-1:s1:l2', sku: 'ORS-1L', quantity: 3 },
          ],
        },
        reconciled: [],
      },
    })
    expect(await stock(url)).toMatchObject({ 'AMOX-500': 10, 'ORS-1L': 3, 'ZINC-20': 0 })
    expect(await movementIds(url)).toEqual(['rcv:mf-1:s1:l1', 'rcv:mf-1:s1:l2'])
    const movement = (await api(url, 'GET', '/api/movements?sku=AMOX-500')).body.movements[0]
    expect(movement).toMatchObject({ kind: 'receipt', delta: 10, user: 'amina', reference: 'manifest mf-1 stop s1 line l1' })

    // Another site's stop: the delivery only (this node acts as the carrier's device).
    const other = await api(url, 'POST', '/api/manifests/mf-1/stops/s2/delivery', { user: 'driver-1', receiver: 'Nurse Achieng', signature: 'Achieng', lines: [{ line: 'l1', received: 6 }] })
    expect(other).toMatchObject({ status: 201, body: { site: 'demo-clinic', status: 'delivered', receipts: { posted: false, reason: expect.stringMatching(/demo-clinic/), movements: [{ id: 'rcv:mf-1:s2:l1', quantity: 6 }] } } })
    expect((await stock(url))['ZINC-20']).toBe(0)

    expect((await api(url, 'POST', '/api/manifests/mf-1/close', { user: 'driver-1' })).body.status).toBe('closed')

    const manifest = (await api(url, 'GET', '/api/manifests/mf-1')).body
    expect(manifest).toMatchObject({ id: 'mf-1', status: 'closed', createdBy: 'hub-clerk' })
    expect(manifest.events).toMatchObject([{ to: 'departed', by: 'driver-1', reason: 'left 06:10' }, { to: 'closed', by: 'driver-1' }])
    expect(manifest.stops[0]).toMatchObject({
      id: 's1',
      status: 'delivered',
      deliveries: 1,
      recorded: [{ by: 'amina', receiver: 'Amina Odhiambo', signature: SIGNATURE }],
      receipts: [{ id: 'rcv:mf-1:s1:l1', inLedger: true }, { id: 'rcv:mf-1:s1:l2', inLedger: true }],
    })
    expect(manifest.stops[1].receipts).toBeUndefined()
    expect(manifest.history.map((h: { op: string }) => h.op)).toEqual(['manifest.plan', 'manifest.depart', 'manifest.deliver', 'manifest.deliver', 'manifest.close'])
    expect(manifest.history[2]).toMatchObject({ user: 'amina', device: node.identity.node, ref: 'mf-1' })
    expect((await api(url, 'GET', '/api/manifests')).body).toEqual({ manifests: [{ id: 'mf-1', status: 'closed', from: 'demo-hub', carrier: 'Kisumu Transport', stops: manifest.stops.map(({ recorded: _r, receipts: _p, ...s }: Record<string, unknown>) => s) }] })
    expect((await api(url, 'GET', '/api/ledger/check')).body).toMatchObject({ consistent: true })
  })

  it('refuses delivering a stop again, and the stock stays as it was', async () => {
    const { url } = await startSite(tempDir())
    await departedManifest(url)
    expect((await api(url, 'POST', '/api/manifests/mf-1/stops/s1/delivery', DELIVERY_S1)).status).toBe(201)
    const before = { stock: await stock(url), movements: await movementIds(url), manifest: (await api(url, 'GET', '/api/manifests/mf-1')).body }
    const again = await api(url, 'POST', '/api/manifests/mf-1/stops/s1/delivery', { ...DELIVERY_S1, user: 'otieno', lines: [{ line: 'l1', received: 10 }, { line: 'l2', received: 4 }] })
    expect(again).toMatchObject({ status: 422, body: { code: 'stop-already-delivered', field: 'stop' } })
    expect({ stock: await stock(url), movements: await movementIds(url), manifest: (await api(url, 'GET', '/api/manifests/mf-1')).body }).toEqual(before)
  })

  it('shows a short delivery in the review queue and records a decision on the manifest', async () => {
    const { url } = await startSite(tempDir())
    await departedManifest(url)
    await api(url, 'POST', '/api/manifests/mf-1/stops/s1/delivery', DELIVERY_S1)
    const itemId = 'delivery-discrepancy:mf-1:s1:l2'
    const queue = (await api(url, 'GET', '/api/review')).body.items
    expect(queue).toMatchObject([{ id: itemId, kind: 'delivery-discrepancy', doc: 'manifest', status: 'open', details: { shipped: 4, received: 3, rejected: 1 } }])
    expect((await api(url, 'POST', `/api/review/${itemId}/decision`, { user: 'manager', note: 'x' })).status).toBe(400)

    expect(await api(url, 'POST', `/api/manifests/mf-1/review/${itemId}/decision`, { user: 'manager', note: '' })).toMatchObject({ status: 400, body: { field: 'note' } })
    expect((await api(url, 'POST', '/api/manifests/mf-1/review/delivery-discrepancy:mf-1:s1:l1/decision', { user: 'manager', note: 'x' })).status).toBe(404)
    const decided = await api(url, 'POST', `/api/manifests/mf-1/review/${itemId}/decision`, { user: 'manager', note: 'one sachet torn; returned to hub' })
    expect(decided).toMatchObject({ status: 201, body: { item: { id: itemId, status: 'resolved', decision: { by: 'manager' } } } })
    expect((await api(url, 'POST', `/api/manifests/mf-1/review/${itemId}/decision`, { user: 'manager', note: 'again' })).status).toBe(409)
    expect((await api(url, 'GET', '/api/review')).body.items).toMatchObject([{ id: itemId, status: 'resolved' }])
    expect((await api(url, 'GET', '/api/manifests/mf-1')).body.history.at(-1)).toMatchObject({ op: 'manifest.decide', user: 'manager', ref: 'mf-1' })
  })
})

describe('refusals', () => {
  it('answers an unknown manifest with 404', async () => {
    const { url } = await startSite(tempDir())
    expect(await api(url, 'GET', '/api/manifests/mf-404')).toMatchObject({ status: 404, body: { error: expect.stringMatching(/no manifest mf-404/) } })
    expect((await api(url, 'POST', '/api/manifests/mf-404/depart', { user: 'driver-1' })).status).toBe(404)
    expect((await api(url, 'POST', '/api/manifests/mf-404/stops/s1/delivery', DELIVERY_S1)).status).toBe(404)
  })

  it.each([
    ['a missing user', { ...DELIVERY_S1, user: undefined }, 400, 'user', undefined],
    ['a missing signature', { ...DELIVERY_S1, signature: undefined }, 400, 'signature', undefined],
    ['a negative quantity', { ...DELIVERY_S1, lines: [{ line: 'l1', received: -1 }, { line: 'l2', received: 4 }] }, 400, 'lines.0.received', undefined],
    ['a stop in the body that is not the path’s', { ...DELIVERY_S1, stop: 's2' }, 400, 'stop', undefined],
    ['a line missing', { ...DELIVERY_S1, lines: [{ line: 'l1', received: 10 }] }, 422, 'lines', 'missing-line'],
    ['a line not on the stop', { ...DELIVERY_S1, lines: [...DELIVERY_S1.lines, { line: 'l9', received: 1 }] }, 422, 'lines.2.line', 'unknown-line'],
  ])('refuses a delivery with %s and changes nothing', async (_, body, status, field, code) => {
    const { url } = await startSite(tempDir())
    await departedManifest(url)
    const before = { stock: await stock(url), manifest: (await api(url, 'GET', '/api/manifests/mf-1')).body }
    const res = await api(url, 'POST', '/api/manifests/mf-1/stops/s1/delivery', body)
    expect(res).toMatchObject({ status, body: { field } })
    if (code) expect(res.body.code).toBe(code)
    expect({ stock: await stock(url), manifest: (await api(url, 'GET', '/api/manifests/mf-1')).body }).toEqual(before)
    expect(await movementIds(url)).toEqual([])
  })

  it('refuses a delivery to this site of a SKU its catalog no longer lists, before recording anything', async () => {
    const { url, node } = await startSite(tempDir())
    await api(url, 'POST', '/api/manifests', { ...PLAN, stops: [{ id: 's1', site: 'demo-store', lines: [{ id: 'l1', sku: 'GLOVE-M', shipped: 2 }] }] })
    await api(url, 'POST', '/api/manifests/mf-1/depart', { user: 'driver-1' })
    // The product was withdrawn from the catalog after the manifest was planned.
    await node.commit(node.catalog, (d) => upsertProduct(d, { sku: 'GLOVE-M', name: 'Examination gloves, medium', unit: 'box of 100', active: false }), { op: 'catalog.test', user: 'it' })
    const res = await api(url, 'POST', '/api/manifests/mf-1/stops/s1/delivery', { ...DELIVERY_S1, lines: [{ line: 'l1', received: 2 }] })
    expect(res).toMatchObject({ status: 422, body: { code: 'unknown-sku', field: 'lines.0.line' } })
    expect((await api(url, 'GET', '/api/manifests/mf-1')).body.stops[0].status).toBe('pending')
  })

  it('refuses a bad plan before creating any document, and a duplicate manifest id with 409', async () => {
    const { url, node } = await startSite(tempDir())
    const documents = Object.keys(node.repo.handles).length
    expect(await api(url, 'POST', '/api/manifests', { ...PLAN, stops: [] })).toMatchObject({ status: 400, body: { field: 'stops' } })
    expect(await api(url, 'POST', '/api/manifests', { ...PLAN, stops: [{ ...PLAN.stops[0], site: 'demo-hub' }] })).toMatchObject({ status: 400, body: { field: 'stops.0.site' } })
    expect(await api(url, 'POST', '/api/manifests', { ...PLAN, user: '' })).toMatchObject({ status: 400, body: { field: 'user' } })
    expect(Object.keys(node.repo.handles).length).toBe(documents)
    expect((await api(url, 'GET', '/api/manifests')).body).toEqual({ manifests: [] })
    expect((await api(url, 'POST', '/api/manifests', PLAN)).status).toBe(201)
    expect(await api(url, 'POST', '/api/manifests', PLAN)).toMatchObject({ status: 409, body: { field: 'id' } })
    expect(Object.keys(node.index.doc().manifests)).toEqual(['mf-1'])
  })

  it('refuses to depart twice, and to close with a stop pending without a reason', async () => {
    const { url } = await startSite(tempDir())
    await departedManifest(url)
    expect(await api(url, 'POST', '/api/manifests/mf-1/depart', { user: 'driver-1' })).toMatchObject({ status: 422, body: { code: 'already-departed' } })
    expect(await api(url, 'POST', '/api/manifests/mf-1/close', { user: 'driver-1' })).toMatchObject({ status: 422, body: { code: 'reason-required', field: 'reason' } })
    expect((await api(url, 'POST', '/api/manifests/mf-1/close', { user: 'driver-1', reason: 'road closed; back to hub' })).body.status).toBe('closed')
  })
})

describe('a restart', () => {
  it('keeps manifests and orders listed', async () => {
    const dir = tempDir()
    const first = await startSite(dir)
    await departedManifest(first.url)
    await api(first.url, 'POST', '/api/manifests/mf-1/stops/s1/delivery', DELIVERY_S1)
    await api(first.url, 'POST', '/api/orders', { id: 'po-1', from: 'demo-store', to: 'demo-hub', lines: [{ sku: 'AMOX-500', requested: 5 }], user: 'amina' })
    await first.close()
    const second = await startSite(dir)
    expect((await api(second.url, 'GET', '/api/manifests')).body.manifests).toMatchObject([{ id: 'mf-1', status: 'departed', stops: [{ id: 's1', status: 'delivered' }, { id: 's2', status: 'pending' }] }])
    expect((await api(second.url, 'GET', '/api/orders')).body.orders).toMatchObject([{ id: 'po-1', status: 'draft' }])
    expect(await stock(second.url)).toMatchObject({ 'AMOX-500': 10, 'ORS-1L': 3 })
    expect(await movementIds(second.url)).toEqual(['rcv:mf-1:s1:l1', 'rcv:mf-1:s1:l2'])
  })

  it('posts, exactly once, the receipts of a delivery a crash left out of the ledger', async () => {
    const dir = tempDir()
    const first = await startSite(dir)
    await departedManifest(first.url)
    // The crash: the delivery is durably in the manifest, the process dies before the ledger posting.
    const handle = first.node.manifests.get('mf-1') as DocHandle<ManifestDoc>
    const ctx = { user: 'amina' as UserId, device: first.node.identity.node as DeviceId, at: Date.now() }
    const { user: _user, ...input } = DELIVERY_S1
    await first.node.commit(handle, (d) => deliverStop(d, { ...input, stop: 's1' }, ctx), { op: 'manifest.deliver', user: 'amina', device: ctx.device, ref: 'mf-1' })
    expect(await movementIds(first.url)).toEqual([])
    expect((await api(first.url, 'GET', '/api/manifests/mf-1')).body.stops[0].receipts).toMatchObject([{ inLedger: false }, { inLedger: false }])
    await first.close()

    const second = await startSite(dir)
    await second.node.fullyLoaded
    expect(await stock(second.url)).toMatchObject({ 'AMOX-500': 10, 'ORS-1L': 3 })
    expect(await movementIds(second.url)).toEqual(['rcv:mf-1:s1:l1', 'rcv:mf-1:s1:l2'])
    const movement = (await api(second.url, 'GET', '/api/movements?sku=ORS-1L')).body.movements[0]
    expect(movement).toMatchObject({ kind: 'receipt', delta: 3, user: 'amina', device: first.node.identity.node })
    expect((await api(second.url, 'GET', '/api/manifests/mf-1')).body.stops[0].receipts).toMatchObject([{ inLedger: true }, { inLedger: true }])
    expect(await reconcileReceipts(second.node)).toEqual([])
    expect((await api(second.url, 'GET', '/api/review')).body.items.filter((i: { kind: string }) => i.kind === 'duplicate-movement')).toEqual([])
    await second.close()

    const third = await startSite(dir)
    expect((await api(third.url, 'GET', '/api/movements')).body.total).toBe(2)
    expect(await stock(third.url)).toMatchObject({ 'AMOX-500': 10, 'ORS-1L': 3 })
    expect((await api(third.url, 'GET', '/api/ledger/check')).body).toMatchObject({ consistent: true })
  })

  it('reconciles leftovers after the next delivery too, without posting anything twice', async () => {
    const { url, node } = await startSite(tempDir())
    await api(url, 'POST', '/api/manifests', { ...PLAN, id: 'mf-2', stops: [PLAN.stops[0]!] })
    await api(url, 'POST', '/api/manifests/mf-2/depart', { user: 'driver-1' })
    await departedManifest(url)
    const handle = node.manifests.get('mf-2') as DocHandle<ManifestDoc>
    const { user: _user, ...input } = DELIVERY_S1
    await node.commit(handle, (d) => deliverStop(d, { ...input, stop: 's1' }, { user: 'amina' as UserId, device: node.identity.node as DeviceId, at: Date.now() }), { op: 'manifest.deliver', user: 'amina' })
    const heads = A.getHeads(handle.doc())
    const res = await api(url, 'POST', '/api/manifests/mf-1/stops/s1/delivery', DELIVERY_S1)
    expect(res.body.reconciled.map((r: { id: string }) => r.id)).toEqual(['rcv:mf-2:s1:l1', 'rcv:mf-2:s1:l2'])
    expect(A.getHeads(handle.doc())).toEqual(heads)
    expect(await movementIds(url)).toEqual(['rcv:mf-1:s1:l1', 'rcv:mf-1:s1:l2', 'rcv:mf-2:s1:l1', 'rcv:mf-2:s1:l2'])
    expect(await stock(url)).toMatchObject({ 'AMOX-500': 20, 'ORS-1L': 6 })
  })
})
