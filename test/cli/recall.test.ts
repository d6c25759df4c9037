/**
 * A recall at the hub, every part a real process: two stores receive the same lot (and store A
 * issues from it), their devices sync through the relay, and the relay answers `GET /lots/:lot`
 * across both stores — only with its API token.
 */
import { describe, expect, it } from 'vitest'
import { api } from '../helpers/api.ts'
import { enrolledSite, hubDeployment, relayProcess } from '../helpers/deployment.ts'
import { until } from '../helpers/until.ts'

const TOKEN = 'recall-token-for-the-test'

async function relayGet(port: number, path: string, token?: string) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} })
  return { status: res.status, body: await res.json() }
}

describe('a recall at the hub', () => {
  it('lists every movement of a lot at every store that synced, behind the relay token', async () => {
    const { hub, port, enrol, file } = await hubDeployment(['AL-6X1,Artemether/lumefantrine 20/120 mg,blister,yes', 'ORS-1L,ORS sachet,sachet,no'], 'sku,name,unit,lots')
    await relayProcess(hub, port, ['--api-token', TOKEN])
    await enrol('a1', 'store-a')
    await enrol('b1', 'store-b')
    const [a1, b1] = await Promise.all([enrolledSite(file('a1')), enrolledSite(file('b1'))])
    const post = (url: string, body: Record<string, unknown>) => api(url, 'POST', '/api/movements', { sku: 'AL-6X1', user: 'amina', ...body })
    expect((await post(a1.url, { id: 'a-r', kind: 'receipt', quantity: 20, lot: 'AL2611', expiry: '2027-01-31', reference: 'GRN-1' })).status).toBe(201)
    expect((await post(a1.url, { id: 'a-i', kind: 'issue', quantity: 3, reference: 'ward 2' })).status).toBe(201)
    expect((await post(b1.url, { id: 'b-r', kind: 'receipt', quantity: 8, lot: 'AL2611', expiry: '2027-01-31' })).status).toBe(201)
    expect((await post(b1.url, { id: 'b-r2', kind: 'receipt', quantity: 5, lot: 'AL2703', expiry: '2027-03-31' })).status).toBe(201)
    for (const s of [a1, b1]) await until('the relay to hold what the store recorded', async () => ((await api(s.url, 'GET', '/api/sync')).body.state === 'up-to-date' ? true : undefined), 30_000)

    // No token, a wrong one: refused, and told why.
    expect(await relayGet(port, '/lots/AL2611')).toMatchObject({ status: 401, body: { error: 'unauthorized' } })
    expect((await relayGet(port, '/lots/AL2611', 'wrong')).status).toBe(401)
    expect((await relayGet(port, '/lots/not%20a%20lot', TOKEN)).status).toBe(400)

    const recall = await relayGet(port, '/lots/AL2611', TOKEN)
    expect(recall.status).toBe(200)
    expect(recall.body.sites.map((s: { site: string; skus: unknown; complete: boolean }) => [s.site, s.skus, s.complete])).toEqual([
      ['store-a', [{ sku: 'AL-6X1', onHand: 17, expiry: '2027-01-31' }], true],
      ['store-b', [{ sku: 'AL-6X1', onHand: 8, expiry: '2027-01-31' }], true],
    ])
    expect(recall.body.sites[0].movements.map((m: { id: string; kind: string; delta: number; reference?: string }) => [m.id, m.kind, m.delta, m.reference])).toEqual([
      ['a-i', 'issue', -3, 'ward 2'],
      ['a-r', 'receipt', 20, 'GRN-1'],
    ])
    expect(recall.body.sites[1].movements.map((m: { id: string }) => m.id)).toEqual(['b-r'])
    // The same question at a store answers for that store only.
    expect((await api(a1.url, 'GET', '/api/lots/AL2611')).body.movements.map((m: { id: string }) => m.id)).toEqual(['a-i', 'a-r'])
    expect((await relayGet(port, '/lots/NOPE', TOKEN)).status).toBe(404)
  }, 90_000)
})
