/**
 * Sites through a chain of two relays, every part a real process over real sockets: the hub relay,
 * a district relay chained under it (`stockmesh relay --upstream … --enrol …`, serving stores A and
 * B), store A's storekeeper a1 and store B's b1 at the district, A's second storekeeper a2 at the
 * hub. Documents flow both ways along the chain, the district keeps serving its sites while it is
 * down and comes back, each site still gets only its documents, and a revocation signed at the hub
 * reaches the district.
 */
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { api } from '../helpers/api.ts'
import { freePort, hubDeployment, ok, relayProcess, running, type RelayProcess, enrolledSite, movementIdsOf, stockOf } from '../helpers/deployment.ts'
import { tempDir } from '../helpers/tempDir.ts'
import { until } from '../helpers/until.ts'

const site = enrolledSite
const stock = stockOf
const movementIds = movementIdsOf
const syncState = async (url: string) => (await api(url, 'GET', '/api/sync')).body as { state: string; relay?: { refusal?: { error: string; status: number; reason: string } } }

describe('sites through a chain of two relays', () => {
  it('A’s storekeepers at the district and at the hub converge across the chain and a district outage; an order crosses it both ways; B holds none of A’s ledger; a revocation reaches the district', async () => {
    const { hub, port, enrol, file } = await hubDeployment()
    const hubRelay = await relayProcess(hub, port)
    const districtPort = await freePort()
    const district = `ws://127.0.0.1:${districtPort}`
    await enrol('district-1', 'district-n', ['--role', 'relay', '--serves', 'store-a,store-b'])
    await enrol('a1', 'store-a', ['--relay', district])
    await enrol('b1', 'store-b', ['--relay', district])
    await enrol('a2', 'store-a')
    const districtDir = path.join(tempDir('district-'), 'relay')
    let districtRelay: RelayProcess = await relayProcess(districtDir, districtPort, ['--upstream', hubRelay.url, '--enrol', file('district-1')])
    const [a1, b1, a2] = await Promise.all(['a1', 'b1', 'a2'].map((name) => site(file(name))))

    // Both storekeepers of A record while the district relay is down (a1 cannot reach anyone).
    await districtRelay.kill('SIGKILL')
    const posts = await Promise.all([
      api(a1!.url, 'POST', '/api/movements', { movements: [{ id: 'a1-r', kind: 'receipt', sku: 'AMOX-500', quantity: 50, user: 'amina' }, { id: 'a1-i', kind: 'issue', sku: 'AMOX-500', quantity: 5, user: 'amina' }] }),
      api(a2!.url, 'POST', '/api/movements', { movements: [{ id: 'a2-r', kind: 'receipt', sku: 'AMOX-500', quantity: 20, user: 'baraka' }, { id: 'a2-i', kind: 'issue', sku: 'AMOX-500', quantity: 7, user: 'baraka' }] }),
    ])
    expect(posts.map((p) => p.status)).toEqual([201, 201])
    expect(await movementIds(a1!.url)).toEqual(['a1-i', 'a1-r'])

    // The district comes back on its folder (no --enrol: it reads its enrolment) and carries both ways.
    districtRelay = await relayProcess(districtDir, districtPort)
    const all = ['a1-i', 'a1-r', 'a2-i', 'a2-r']
    await until('both devices of A to hold all four movements', async () => ((await movementIds(a1!.url)).join() === all.join() && (await movementIds(a2!.url)).join() === all.join() ? true : undefined), 40_000)
    expect(await stock(a1!.url)).toBe(58)
    expect(await stock(a2!.url)).toBe(58)
    expect((await api(a1!.url, 'GET', '/api/ledger/check')).body.consistent).toBe(true)
    await until('a1 to read up-to-date through the district', async () => ((await syncState(a1!.url)).state === 'up-to-date' ? true : undefined), 40_000)

    // An order raised at the hub side reaches its supplier at the district, and the approval comes back.
    expect((await api(a2!.url, 'POST', '/api/orders', { id: 'po-9', from: 'store-a', to: 'store-b', lines: [{ sku: 'AMOX-500', requested: 12 }], user: 'baraka' })).status).toBe(201)
    expect((await api(a2!.url, 'POST', '/api/orders/po-9/submit', { user: 'baraka' })).status).toBe(200)
    await until('the order at its supplier, through the chain', async () => {
      const orders = (await api(b1!.url, 'GET', '/api/orders')).body.orders as Array<{ id: string; status: string }>
      return orders.some((o) => o.id === 'po-9' && o.status === 'submitted') ? true : undefined
    }, 40_000)
    expect((await api(b1!.url, 'POST', '/api/orders/po-9/approve', { user: 'otieno' })).status).toBe(200)
    await until('B’s approval at a2, through the chain', async () => ((await api(a2!.url, 'GET', '/api/orders/po-9')).body.status === 'approved' ? true : undefined), 40_000)
    await until('the order at A’s other storekeeper too', async () => ((await api(a1!.url, 'GET', '/api/orders/po-9')).body.status === 'approved' ? true : undefined), 40_000)

    // B shares the catalog and its order, never A's ledger.
    expect(await movementIds(b1!.url)).toEqual([])
    expect(await stock(b1!.url)).toBe(0)
    expect((await api(b1!.url, 'GET', '/api/health')).body.ledger).not.toBe((await api(a1!.url, 'GET', '/api/health')).body.ledger)

    // Revoked at the hub: the signed list travels down the chain and the district refuses a1.
    await ok(['revoke', '--data', hub, '--device', 'a1'])
    const refused = await until('a1 to be refused by the district', async () => {
      const body = await syncState(a1!.url)
      return body.relay?.refusal ? body : undefined
    }, 60_000)
    expect(refused.relay!.refusal).toMatchObject({ error: 'revoked', status: 403 })
    expect(refused.state).toBe('offline')
    // The list reached the devices too, through both relays: b1 at the district holds it.
    await until('b1 to hold the new revocation list', async () => ((await api(b1!.url, 'GET', '/api/sync')).body.relay?.revocations?.seq === 1 ? true : undefined), 30_000)
    expect((await api(b1!.url, 'GET', '/api/sync')).body.relay.revocations).toEqual({ seq: 1, devices: 1 })
    expect((await api(a2!.url, 'GET', '/api/sync')).body.relay.revocations).toEqual({ seq: 1, devices: 1 })
    expect(districtRelay.output()).not.toMatch(/"level":50/)
  }, 240_000)
})
