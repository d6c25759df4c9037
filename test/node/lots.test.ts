/**
 * Stock by lot through the site's API, as a storekeeper and a pharmacist use it: receipts by lot,
 * issues first-expiry-first-out with the lots used in the answer, what expires soon, a recall of
 * one lot, and all of it again after a restart (from the journal cache).
 */
import { describe, expect, it } from 'vitest'
import { upsertProduct } from '../../src/docs/catalog.ts'
import { api } from '../helpers/api.ts'
import { startSite } from '../helpers/site.ts'
import { tempDir } from '../helpers/tempDir.ts'

const T0 = Date.parse('2026-11-16T09:00:00Z') // a Monday
const DAY = 86_400_000
const SKU = 'AL-6X1' // lot-tracked in the demo catalog

describe('lots through the API', () => {
  it('receives by lot, issues first-expiry-first-out, lists what expires and recalls a lot, before and after a restart', async () => {
    const dataDir = tempDir()
    let now = T0
    let site = await startSite(dataDir, { now: () => now })
    const post = (body: Record<string, unknown>) => api(site.url, 'POST', '/api/movements', { user: 'amina', sku: SKU, ...body })

    expect((await post({ id: 'r1', kind: 'receipt', quantity: 40, lot: 'AL2611', expiry: '2026-12-10', reference: 'GRN-7 from demo-hub' })).status).toBe(201)
    expect((await post({ id: 'r2', kind: 'receipt', quantity: 100, lot: 'AL2705', expiry: '2027-05-31' })).status).toBe(201)
    expect((await post({ id: 'r3', kind: 'receipt', quantity: 5, lot: 'AL2609', expiry: '2026-11-01' })).status).toBe(201)
    // A receipt without the lot is refused with the field named; so is a lot on an untracked product.
    const noLot = await post({ id: 'r4', kind: 'receipt', quantity: 1 })
    expect(noLot).toMatchObject({ status: 422, body: { code: 'lot-required', field: 'lot' } })
    expect((await api(site.url, 'POST', '/api/movements', { id: 'r5', user: 'amina', sku: 'ORS-1L', kind: 'receipt', quantity: 1, lot: 'X1' })).body).toMatchObject({ code: 'not-lot-tracked', field: 'lot' })

    // An issue naming no lot: the expired lot is skipped, the earliest that has not expired is used up first.
    const issued = await post({ id: 'i1', kind: 'issue', quantity: 50, reference: 'ward 3' })
    expect(issued.status).toBe(201)
    expect(issued.body.lots).toEqual([
      { lot: 'AL2611', delta: -40, expiry: '2026-12-10' },
      { lot: 'AL2705', delta: -10, expiry: '2027-05-31' },
    ])

    const stockNow = async () => (await api(site.url, 'GET', `/api/stock/${SKU}`)).body
    const expected = {
      sku: SKU,
      onHand: 95,
      lotTracked: true,
      lots: [
        { lot: 'AL2609', expiry: '2026-11-01', onHand: 5 },
        { lot: 'AL2705', expiry: '2027-05-31', onHand: 90 },
      ],
    }
    expect(await stockNow()).toMatchObject(expected)

    // Expiring within 30 days, and already expired (with the write-off that clears it).
    now = T0 + 10 * DAY
    const expiring = await api(site.url, 'GET', '/api/expiring?days=30')
    expect(expiring.body.items).toEqual([
      { sku: SKU, name: 'Artemether/lumefantrine 20/120 mg, 6x1 blister', lot: 'AL2609', expiry: '2026-11-01', onHand: 5, expired: true, daysLeft: -25, writeOff: { kind: 'adjustment', sku: SKU, lot: 'AL2609', delta: -5, reason: 'expired' } },
    ])
    expect((await api(site.url, 'GET', '/api/expiring?days=-1')).status).toBe(400)

    // Recall: every movement of one lot, who and when.
    const recall = await api(site.url, 'GET', '/api/lots/AL2611')
    expect(recall.body.skus).toEqual([{ sku: SKU, expiry: '2026-12-10', onHand: 0 }])
    expect(recall.body.movements.map((m: { id: string; kind: string; user: string; reference?: string; lots: unknown }) => [m.id, m.kind, m.user, m.reference, m.lots])).toEqual([
      ['i1', 'issue', 'amina', 'ward 3', [{ lot: 'AL2611', delta: -40, expiry: '2026-12-10' }, { lot: 'AL2705', delta: -10, expiry: '2027-05-31' }]],
      ['r1', 'receipt', 'amina', 'GRN-7 from demo-hub', [{ lot: 'AL2611', delta: 40, expiry: '2026-12-10' }]],
    ])
    expect((await api(site.url, 'GET', '/api/lots/NOPE')).status).toBe(404)
    expect((await api(site.url, 'GET', '/api/ledger/check')).body).toEqual({ consistent: true, mismatches: [] })

    // The same after a restart: the old week's journal is indexed from the journal cache, lots included.
    now = T0 + 8 * DAY
    expect((await post({ id: 'w1', kind: 'adjustment', delta: -5, lot: 'AL2609', reason: 'expired' })).status).toBe(201)
    await site.close()
    site = await startSite(dataDir, { now: () => now })
    expect(await stockNow()).toMatchObject({ ...expected, onHand: 90, lots: [{ lot: 'AL2705', expiry: '2027-05-31', onHand: 90 }] })
    expect((await api(site.url, 'GET', '/api/lots/AL2611')).body.movements).toHaveLength(2)
    expect((await post({ id: 'i1', kind: 'issue', quantity: 50, reference: 'ward 3' })).body).toMatchObject({ status: 'duplicate', lots: [{ lot: 'AL2611', delta: -40 }, { lot: 'AL2705', delta: -10 }] })
    expect((await api(site.url, 'GET', '/api/ledger/check')).body).toEqual({ consistent: true, mismatches: [] })
  })

  it('plans manifest lines by lot and receives a delivered stop into those lots', async () => {
    const site = await startSite(tempDir(), { now: () => T0 })
    const plan = (lines: unknown[]) => ({ id: 'mf-lots', from: 'demo-hub', carrier: 'Kisumu Transport', stops: [{ id: 's1', site: 'demo-store', lines }], user: 'hub-clerk' })
    // A tracked product's line names its lot and expiry; an untracked one names none.
    expect(await api(site.url, 'POST', '/api/manifests', plan([{ id: 'l1', sku: SKU, shipped: 12 }]))).toMatchObject({ status: 422, body: { code: 'lot-required', field: 'stops.0.lines.0.lot' } })
    expect(await api(site.url, 'POST', '/api/manifests', plan([{ id: 'l1', sku: 'ORS-1L', shipped: 1, lot: 'X' }]))).toMatchObject({ status: 422, body: { code: 'not-lot-tracked' } })
    const planned = await api(site.url, 'POST', '/api/manifests', plan([{ id: 'l1', sku: SKU, shipped: 12, lot: 'AL2705', expiry: '2027-05-31' }, { id: 'l2', sku: 'ORS-1L', shipped: 4 }]))
    expect(planned.status).toBe(201)
    expect(planned.body.stops[0].lines[0]).toMatchObject({ sku: SKU, lot: 'AL2705', expiry: '2027-05-31' })
    await api(site.url, 'POST', '/api/manifests/mf-lots/depart', { user: 'driver-1' })
    const signature = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='
    const delivered = await api(site.url, 'POST', '/api/manifests/mf-lots/stops/s1/delivery', { user: 'amina', receiver: 'Amina Odhiambo', signature, lines: [{ line: 'l1', received: 11, rejected: 1 }, { line: 'l2', received: 4 }] })
    expect(delivered.status).toBe(201)
    expect((await api(site.url, 'GET', `/api/stock/${SKU}`)).body).toMatchObject({ onHand: 11, lots: [{ lot: 'AL2705', expiry: '2027-05-31', onHand: 11 }] })
    expect((await api(site.url, 'GET', '/api/lots/AL2705')).body.movements).toMatchObject([{ id: 'rcv:mf-lots:s1:l1', kind: 'receipt', lots: [{ lot: 'AL2705', delta: 11, expiry: '2027-05-31' }] }])
  })

  it('lets an order line ask for a lot of a product tracked by lot, and only of one', async () => {
    const site = await startSite(tempDir(), { now: () => T0 })
    const order = (lines: unknown[]) => ({ id: `po-${Math.random().toString(36).slice(2, 8)}`, from: 'demo-store', to: 'demo-hub', lines, user: 'amina' })
    const created = await api(site.url, 'POST', '/api/orders', order([{ sku: SKU, requested: 30, lot: 'AL2611' }, { sku: 'ORS-1L', requested: 5 }]))
    expect(created.status).toBe(201)
    expect(created.body.lines).toEqual([
      { sku: SKU, requested: 30, approved: null, lot: 'AL2611' },
      { sku: 'ORS-1L', requested: 5, approved: null },
    ])
    expect(await api(site.url, 'POST', '/api/orders', order([{ sku: 'ORS-1L', requested: 5, lot: 'X1' }]))).toMatchObject({ status: 422, body: { code: 'not-lot-tracked', field: 'lines.0.lot' } })
    expect(await api(site.url, 'POST', `/api/orders/${created.body.id}/lines`, { sku: 'ZINC-20', requested: 2, lot: 'Z1', user: 'amina' })).toMatchObject({ status: 422, body: { code: 'not-lot-tracked', field: 'lot' } })
  })

  it('refuses a delivery whose lots this site’s catalog disagrees with, before recording anything', async () => {
    const { url, node } = await startSite(tempDir(), { now: () => T0 })
    const plan = { id: 'mf-x', from: 'demo-hub', carrier: 'Kisumu Transport', stops: [{ id: 's1', site: 'demo-store', lines: [{ id: 'l1', sku: 'ORS-1L', shipped: 4 }] }], user: 'hub-clerk' }
    expect((await api(url, 'POST', '/api/manifests', plan)).status).toBe(201)
    await api(url, 'POST', '/api/manifests/mf-x/depart', { user: 'driver-1' })
    // This site now tracks ORS-1L by lot; the manifest (planned before) names no lot: its receipt could never be posted.
    await node.commit(node.catalog, (d) => upsertProduct(d, { sku: 'ORS-1L', name: 'Oral rehydration salts, 1 L sachet', unit: 'sachet', lots: true }), { op: 'catalog.test', user: 'it' })
    const signature = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='
    const res = await api(url, 'POST', '/api/manifests/mf-x/stops/s1/delivery', { user: 'amina', receiver: 'Amina', signature, lines: [{ line: 'l1', received: 4 }] })
    expect(res).toMatchObject({ status: 422, body: { code: 'lot-required', field: 'lines.0.line' } })
    expect((await api(url, 'GET', '/api/manifests/mf-x')).body.stops[0].status).toBe('pending')
    // A catalog import that says nothing of lots leaves the product tracked.
    await node.commit(node.catalog, (d) => upsertProduct(d, { sku: 'ORS-1L', name: 'ORS sachet', unit: 'sachet' }), { op: 'catalog.test', user: 'it' })
    expect((await api(url, 'GET', '/api/stock/ORS-1L')).body.lotTracked).toBe(true)
  })
})
