/**
 * The hub forwards to a real Tryton 6.0 (test/helpers/tryton.ts): a real relay process with
 * `--erp tryton://…`, two real site processes, real sockets. Movements of two stores reach Tryton
 * and Tryton's own quantities per location equal the ledgers; Tryton stopped for a while — the
 * backlog drains once it is back; the relay killed with SIGKILL mid-forwarding and restarted —
 * nothing doubled, nothing lost; an unknown SKU is parked with its reason, the product is added in
 * Tryton, and it goes through; a product renamed in Tryton is renamed at the sites.
 */
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { api } from '../helpers/api.ts'
import { enrolledSite, hubDeployment, relayProcess, type RelayProcess } from '../helpers/deployment.ts'
import { tempDir } from '../helpers/tempDir.ts'
import { addProducts, quantitiesAt, seedErp, startTryton, trytonInstalled, type TrytonServer } from '../helpers/tryton.ts'
import { running } from '../helpers/deployment.ts'
import { until } from '../helpers/until.ts'

const TOKEN = 'erp-token'

interface ErpStatus {
  state: string
  lastError: string | null
  sites: Array<{ site: string; forwarded: number; pending: number; parked: Array<{ key: string; reason: string }> }>
}

/** On hand per SKU at a site, as its ledger says. */
async function ledgerOf(url: string): Promise<Map<string, number>> {
  const stock = (await api(url, 'GET', '/api/stock')).body as { items: Array<{ sku: string; onHand: number }> }
  return new Map(stock.items.filter((i) => i.onHand !== 0).map((i) => [i.sku, i.onHand]))
}

const receipt = (id: string, sku: string, quantity: number, extra: Record<string, unknown> = {}) => ({ id, kind: 'receipt', sku, quantity, user: 'amina', ...extra })
const issue = (id: string, sku: string, quantity: number) => ({ id, kind: 'issue', sku, quantity, user: 'amina' })

describe.skipIf(!trytonInstalled() && !process.env.CI)('the ERP bridge, against a real Tryton', () => {
  it('forwards two stores exactly once through an outage and a SIGKILL; parks an unknown SKU until Tryton knows it; renames come down; orders and proofs of delivery become Tryton documents', async () => {
    const erp: TrytonServer = await startTryton((stop) => running.push(stop))
    await seedErp(erp.rpc, { products: [{ sku: 'AMOX-500', name: 'Amoxicillin 500 mg capsules' }, { sku: 'AL-6X1', name: 'Artemether/lumefantrine 20/120', lots: true }], sites: [{ id: 'store-a', name: 'Store A' }, { id: 'store-b', name: 'Store B' }] })
    const d = await hubDeployment(['AMOX-500,Amoxicillin 500 mg capsules,pack of 100,no', 'AL-6X1,Artemether/lumefantrine 20/120,blister,yes', 'ORS-1L,Oral rehydration salts,sachet,no'], 'sku,name,unit,lots')
    await d.enrol('a1', 'store-a')
    await d.enrol('b1', 'store-b')
    const passwordFile = path.join(tempDir('erp-'), 'password')
    writeFileSync(passwordFile, `${erp.password}\n`, { mode: 0o600 })
    const erpArgs = ['--api-token', TOKEN, '--erp', `tryton://${erp.user}@${new URL(erp.url).host}/${erp.database}`, '--erp-password-file', passwordFile, '--erp-batch', '10', '--erp-interval', '20']
    let relay: RelayProcess = await relayProcess(d.hub, d.port, erpArgs)
    const relayHttp = () => relay.url.replace(/^ws:/, 'http:')
    const status = async () => (await api(relayHttp(), 'GET', '/erp', undefined, { authorization: `Bearer ${TOKEN}` })).body as ErpStatus
    const site = (s: ErpStatus, id: string) => s.sites.find((x) => x.site === id)
    const [a1, b1] = await Promise.all([enrolledSite(d.file('a1')), enrolledSite(d.file('b1'))])
    const record = async (url: string, movements: unknown[]) => {
      const res = await api(url, 'POST', '/api/movements', { movements })
      expect(res.status, JSON.stringify(res.body)).toBe(201)
    }

    await record(a1.url, [receipt('a-r1', 'AMOX-500', 120), issue('a-i1', 'AMOX-500', 35), receipt('a-r2', 'AL-6X1', 40, { lot: 'L-100', expiry: '2027-03-31' }), issue('a-i2', 'AL-6X1', 12)])
    await record(b1.url, [receipt('b-r1', 'AMOX-500', 60), { id: 'b-adj', kind: 'adjustment', sku: 'AMOX-500', delta: -4, reason: 'expired', user: 'otieno' }, receipt('b-r2', 'ORS-1L', 25)])
    // Everything reaches Tryton but ORS-1L, which Tryton does not know: parked, with why.
    const first = await until('the bridge to forward both stores', async () => {
      const s = await status()
      return site(s, 'store-a')?.forwarded === 4 && site(s, 'store-b')?.forwarded === 2 && site(s, 'store-b')?.parked.length === 1 ? s : undefined
    }, 60_000)
    expect(site(first, 'store-b')!.parked[0]!.reason).toMatch(/SKU ORS-1L is not a product in Tryton/)
    expect(await quantitiesAt(erp.rpc, 'store-a')).toEqual(await ledgerOf(a1.url))
    expect(await quantitiesAt(erp.rpc, 'store-b')).toEqual(new Map([...(await ledgerOf(b1.url))].filter(([sku]) => sku !== 'ORS-1L')))
    // On /metrics too.
    const metrics = (await api(relayHttp(), 'GET', '/metrics')).body as string
    expect(metrics).toMatch(/stockmesh_erp_forwarded_total\{site="store-a"\} 4/)
    expect(metrics).toMatch(/stockmesh_erp_parked\{site="store-b"\} 1/)

    // Tryton goes down; the stores keep working; the backlog waits and drains when Tryton is back.
    await erp.stop()
    await record(a1.url, Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? issue(`a-out-${i}`, 'AMOX-500', 1) : receipt(`a-out-${i}`, 'AMOX-500', 2))))
    await record(b1.url, [receipt('b-out-1', 'AMOX-500', 7)])
    const down = await until('the bridge to see Tryton down', async () => {
      const s = await status()
      return s.state === 'unreachable' && (site(s, 'store-a')?.pending ?? 0) > 0 ? s : undefined
    }, 60_000)
    expect(down.lastError).toMatch(/cannot be reached/)
    await erp.start()
    await until('the backlog to drain', async () => {
      const s = await status()
      return site(s, 'store-a')?.forwarded === 34 && site(s, 'store-b')?.forwarded === 3 ? s : undefined
    }, 120_000)
    expect(await quantitiesAt(erp.rpc, 'store-a')).toEqual(await ledgerOf(a1.url))

    // SIGKILL while forwarding: 200 movements go in batches of 10; the relay dies mid-way.
    await record(a1.url, Array.from({ length: 200 }, (_, i) => receipt(`a-k-${i}`, 'AMOX-500', 1 + (i % 5))))
    await until('forwarding to be under way', async () => {
      const a = site(await status(), 'store-a')!
      return a.forwarded > 34 && a.forwarded < 234 ? true : undefined
    }, 60_000)
    await relay.kill('SIGKILL')
    relay = await relayProcess(d.hub, d.port, erpArgs)
    await until('the rest to go through after the restart', async () => (site(await status(), 'store-a')?.forwarded === 234 ? true : undefined), 120_000)
    expect(await quantitiesAt(erp.rpc, 'store-a')).toEqual(await ledgerOf(a1.url))
    // One shipment per movement: nothing doubled.
    const shipments = await erp.rpc.searchRead<{ reference: string }>('stock.shipment.internal', [], ['reference'])
    expect(shipments.length).toBe(new Set(shipments.map((s) => s.reference)).size)
    expect(shipments.filter((s) => s.reference.startsWith('store-a/')).length).toBe(234)

    // The product is added in Tryton (and renamed there, another one): POST /erp/retry, and ORS-1L goes through.
    await addProducts(erp.rpc, [{ sku: 'ORS-1L', name: 'Oral rehydration salts 1 L' }])
    const [amox] = await erp.rpc.searchRead<{ template: number }>('product.product', [['code', '=', 'AMOX-500']], ['template'])
    await erp.rpc.write('product.template', [amox!.template], { name: 'Amoxicillin 500 mg caps (ERP name)' })
    expect((await api(relayHttp(), 'POST', '/erp/retry', undefined, { authorization: `Bearer ${TOKEN}` })).status).toBe(200)
    await until('ORS-1L to be forwarded', async () => {
      const b = site(await status(), 'store-b')!
      return b.forwarded === 4 && b.parked.length === 0 ? true : undefined
    }, 60_000)
    expect(await quantitiesAt(erp.rpc, 'store-b')).toEqual(await ledgerOf(b1.url))
    // The rename reaches the stores through the relay.
    await until('store B to see the ERP name', async () => {
      const catalog = (await api(b1.url, 'GET', '/api/catalog')).body as { products: Array<{ sku: string; name: string }> }
      return catalog.products.find((p) => p.sku === 'AMOX-500')?.name === 'Amoxicillin 500 mg caps (ERP name)' ? true : undefined
    }, 60_000)

    // An order from A to B, approved at B: a planned internal shipment from B to A in Tryton.
    expect((await api(a1.url, 'POST', '/api/orders', { id: 'po-erp', from: 'store-a', to: 'store-b', lines: [{ sku: 'AMOX-500', requested: 12 }], user: 'amina' })).status).toBe(201)
    expect((await api(a1.url, 'POST', '/api/orders/po-erp/submit', { user: 'amina' })).status).toBe(200)
    await until('B to see the order', async () => ((await api(b1.url, 'GET', '/api/orders/po-erp')).body.status === 'submitted' ? true : undefined), 60_000)
    expect((await api(b1.url, 'POST', '/api/orders/po-erp/approve', { user: 'otieno', lines: [{ sku: 'AMOX-500', approved: 10 }] })).status).toBe(200)
    const planned = await until('the planned supply in Tryton', async () => (await erp.rpc.searchRead<{ state: string; moves: number[] }>('stock.shipment.internal', [['reference', '=', 'order:store-a:po-erp']], ['state', 'moves']))[0], 60_000)
    expect(planned.state).toBe('draft')
    expect((await erp.rpc.searchRead<{ quantity: number }>('stock.move', [['id', 'in', planned.moves]], ['quantity'])).map((m) => m.quantity)).toEqual([10])
    // A delivery from A to B: B's proof of delivery (9 received, 1 rejected) is an attachment on B's location; the 9 are in B's stock.
    expect((await api(a1.url, 'POST', '/api/manifests', { id: 'mf-erp', from: 'store-a', carrier: 'Kisumu Transport', stops: [{ id: 's1', site: 'store-b', lines: [{ id: 'l1', sku: 'AMOX-500', shipped: 10 }] }], user: 'amina' })).status).toBe(201)
    expect((await api(a1.url, 'POST', '/api/manifests/mf-erp/depart', { user: 'driver-1' })).status).toBe(200)
    await until('B to see the manifest', async () => ((await api(b1.url, 'GET', '/api/manifests/mf-erp')).status === 200 ? true : undefined), 60_000)
    const delivered = await api(b1.url, 'POST', '/api/manifests/mf-erp/stops/s1/delivery', { user: 'otieno', receiver: 'Otieno W.', signature: 'Otieno W.', lines: [{ line: 'l1', received: 9, rejected: 1 }] })
    expect(delivered.status, JSON.stringify(delivered.body)).toBe(201)
    const pod = await until('the proof of delivery in Tryton', async () => (await erp.rpc.searchRead<{ description: string }>('ir.attachment', [['name', '=', 'store-b/delivery:mf-erp:s1']], ['description']))[0], 60_000)
    expect(pod.description).toMatch(/received 9, rejected 1; signed by Otieno W\./)
    await until("Tryton's stock at B to equal B's ledger", async () => {
      const [tryton, ledger] = await Promise.all([quantitiesAt(erp.rpc, 'store-b'), ledgerOf(b1.url)])
      return JSON.stringify([...tryton].sort()) === JSON.stringify([...ledger].sort()) ? true : undefined
    }, 60_000)

    // Without the token: nothing.
    expect((await api(relayHttp(), 'GET', '/erp')).status).toBe(401)
  }, 400_000)
})
