/**
 * Sites syncing through the hub relay, every part a real process over real sockets: `stockmesh
 * deployment init`, `catalog import`, `relay`, `enrol`, and three `stockmesh site --enrol`
 * processes — two storekeepers of store A and one of store B. A's devices record apart, the
 * relay carries it, both show the same stock and movements, and B never holds A's ledger.
 */
import { describe, expect, it } from 'vitest'
import { api } from '../helpers/api.ts'
import { hubDeployment, ok, relayProcess, running, enrolledSite, movementIdsOf, stockOf } from '../helpers/deployment.ts'
import { until } from '../helpers/until.ts'

const site = enrolledSite
const stock = stockOf
const movementIds = movementIdsOf

describe('sites through the hub relay', () => {
  it('two storekeepers of one store see each other’s movements; another store holds none of them', async () => {
    const { hub, port, enrol, file } = await hubDeployment()
    await relayProcess(hub, port)
    for (const [name, store] of [['a1', 'store-a'], ['a2', 'store-a'], ['b1', 'store-b']] as const) await enrol(name, store)
    const [a1, a2, b1] = await Promise.all(['a1', 'a2', 'b1'].map((name) => site(file(name))))

    // Both storekeepers of A receive and issue the same SKU at once.
    const posts = await Promise.all([
      api(a1!.url, 'POST', '/api/movements', { movements: [{ id: 'a1-r', kind: 'receipt', sku: 'AMOX-500', quantity: 50, user: 'amina' }, { id: 'a1-i', kind: 'issue', sku: 'AMOX-500', quantity: 5, user: 'amina' }] }),
      api(a2!.url, 'POST', '/api/movements', { movements: [{ id: 'a2-r', kind: 'receipt', sku: 'AMOX-500', quantity: 20, user: 'baraka' }, { id: 'a2-i', kind: 'issue', sku: 'AMOX-500', quantity: 7, user: 'baraka' }] }),
    ])
    expect(posts.map((p) => p.status)).toEqual([201, 201])
    const all = ['a1-i', 'a1-r', 'a2-i', 'a2-r']
    await until('both devices of A to hold all four movements', async () => ((await movementIds(a1!.url)).join() === all.join() && (await movementIds(a2!.url)).join() === all.join() ? true : undefined), 30_000)
    expect(await stock(a1!.url)).toBe(58)
    expect(await stock(a2!.url)).toBe(58)
    expect((await api(a1!.url, 'GET', '/api/ledger/check')).body.consistent).toBe(true)

    // B shares the catalog, not A's ledger.
    const healthA = (await api(a1!.url, 'GET', '/api/health')).body
    const healthB = (await api(b1!.url, 'GET', '/api/health')).body
    expect(healthB.catalog).toBe(healthA.catalog)
    expect(healthB.ledger).not.toBe(healthA.ledger)
    expect(await movementIds(b1!.url)).toEqual([])
    expect(await stock(b1!.url)).toBe(0)
  }, 90_000)

  it('an order from A to supplier B appears at B without a URL typed; B’s approval appears at A; C sees none of it', async () => {
    const { hub, port, enrol, file } = await hubDeployment()
    await relayProcess(hub, port)
    for (const [name, store] of [['a1', 'store-a'], ['b1', 'store-b'], ['c1', 'store-c']] as const) await enrol(name, store)
    const [a1, b1, c1] = await Promise.all(['a1', 'b1', 'c1'].map((name) => site(file(name))))

    // B numbers its own orders too: its own po-7 keeps its id, A's po-7 is listed beside it.
    expect((await api(b1!.url, 'POST', '/api/orders', { id: 'po-7', from: 'store-b', to: 'store-d', lines: [{ sku: 'AMOX-500', requested: 3 }], user: 'otieno' })).status).toBe(201)
    const order = { id: 'po-7', from: 'store-a', to: 'store-b', lines: [{ sku: 'AMOX-500', requested: 12 }], user: 'amina' }
    expect((await api(a1!.url, 'POST', '/api/orders', order)).status).toBe(201)
    expect((await api(a1!.url, 'POST', '/api/orders/po-7/submit', { user: 'amina' })).status).toBe(200)

    const listed = await until('the order to be listed at its supplier', async () => {
      const orders = (await api(b1!.url, 'GET', '/api/orders')).body.orders as Array<{ id: string; status: string; from: string }>
      return orders.find((o) => o.id === 'po-7~store-a' && o.status === 'submitted')
    }, 30_000)
    expect(listed).toMatchObject({ from: 'store-a', to: 'store-b', lines: [{ sku: 'AMOX-500', requested: 12 }] })
    expect((await api(b1!.url, 'GET', '/api/orders/po-7')).body).toMatchObject({ from: 'store-b', to: 'store-d' })

    const approved = await api(b1!.url, 'POST', '/api/orders/po-7~store-a/approve', { user: 'otieno', lines: [{ sku: 'AMOX-500', approved: 10 }] })
    expect(approved.status).toBe(200)
    await until('B’s approval at A', async () => ((await api(a1!.url, 'GET', '/api/orders/po-7')).body.status === 'approved' ? true : undefined), 30_000)
    expect((await api(a1!.url, 'GET', '/api/orders/po-7')).body.lines).toEqual([expect.objectContaining({ sku: 'AMOX-500', requested: 12, approved: 10 })])

    // C is not a party: nothing listed, and its node never got the document.
    expect((await api(c1!.url, 'GET', '/api/orders')).body.orders).toEqual([])
    expect((await api(c1!.url, 'GET', '/api/orders/po-7')).status).toBe(404)
  }, 90_000)
})
