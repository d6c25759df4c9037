/**
 * `GET /api/sync` of real `stockmesh site` processes: a demo site is offline with no relay; an
 * enrolled site whose relay is not running yet is offline and counts its movements as pending;
 * once the relay runs it reads up-to-date; a movement recorded while the relay is stopped is
 * pending again; a revoked device shows the relay's refusal and its reason.
 */
import { describe, expect, it } from 'vitest'
import { api } from '../helpers/api.ts'
import { hubDeployment, ok, relayProcess, running } from '../helpers/deployment.ts'
import { startSiteProcess, type SiteProcess } from '../helpers/siteProcess.ts'
import { tempDir } from '../helpers/tempDir.ts'
import { until } from '../helpers/until.ts'

async function site(args: string[], command = 'site'): Promise<SiteProcess> {
  const p = await startSiteProcess([command, '--data', tempDir('site-'), ...args, '--port', '0', '--log-level', 'warn'])
  running.push(() => p.kill('SIGTERM'))
  return p
}

interface SyncBody {
  state: string
  relay: { url: string; connected: boolean; lastSyncAt: string | null; refusal?: { error: string; reason: string; status: number } } | null
  peers: Array<{ peerId: string; role: string | null; connected: boolean; lastSyncAt: string | null }>
  pending: { documents: number; changes: number }
  documents: Array<{ kind: string; id: string; url: string; pending: number }>
}
const sync = async (url: string) => {
  const res = await api(url, 'GET', '/api/sync')
  expect(res.status).toBe(200)
  return res.body as SyncBody
}
const movement = (id: string, quantity: number) => ({ id, kind: 'receipt', sku: 'AMOX-500', quantity, user: 'amina' })

describe('GET /api/sync', () => {
  it('the demo site (not enrolled) is offline, with no relay, and counts what it records as pending', async () => {
    const demo = await site([], 'demo')
    expect((await api(demo.url, 'POST', '/api/movements', movement('d1', 3))).status).toBe(201)
    const body = await sync(demo.url)
    expect(body).toMatchObject({ state: 'offline', relay: null, peers: [] })
    expect(body.documents.map((d) => d.kind).sort()).toEqual(['index', 'journal', 'ledger'])
    expect(body.documents.find((d) => d.kind === 'journal')?.pending).toBeGreaterThan(0)
  }, 30_000)

  it('offline with pending changes until the relay runs, up-to-date after, pending again while it is stopped; a revoked device sees why', async () => {
    const { hub, port, relayUrl, enrol, file: fileOf } = await hubDeployment()
    await enrol('a1', 'store-a')
    const file = fileOf('a1')

    // Enrolled, relay not running: offline, and what it records is pending.
    const a1 = await site(['--enrol', file])
    expect((await api(a1.url, 'POST', '/api/movements', { movements: [movement('m1', 10), movement('m2', 5)] })).status).toBe(201)
    const before = await sync(a1.url)
    expect(before.state).toBe('offline')
    expect(before.relay).toMatchObject({ url: relayUrl, connected: false, lastSyncAt: null })
    expect(before.relay?.refusal).toBeUndefined()
    expect(before.pending.changes).toBeGreaterThan(0)
    expect(before.documents.find((d) => d.kind === 'journal')?.pending).toBeGreaterThan(0)

    // The relay starts: the site reconnects by itself and the relay comes to hold everything.
    let relay = await relayProcess(hub, port)
    const synced = await until('the site to read up-to-date', async () => {
      const body = await sync(a1.url)
      return body.state === 'up-to-date' ? body : undefined
    }, 40_000)
    expect(synced.pending).toEqual({ documents: 0, changes: 0 })
    expect(synced.documents.every((d) => d.pending === 0)).toBe(true)
    expect(synced.relay).toMatchObject({ url: relayUrl, connected: true })
    expect(Date.parse(synced.relay!.lastSyncAt!)).toBeGreaterThan(0)
    expect(synced.peers).toContainEqual(expect.objectContaining({ role: 'relay', connected: true }))

    // The relay stops; a movement recorded meanwhile is pending, and the site is offline.
    await relay.kill('SIGTERM')
    await until('the site to see the relay gone', async () => ((await sync(a1.url)).state === 'offline' ? true : undefined), 20_000)
    expect((await api(a1.url, 'POST', '/api/movements', movement('m3', 1))).status).toBe(201)
    const stopped = await sync(a1.url)
    expect(stopped.state).toBe('offline')
    expect(stopped.relay).toMatchObject({ connected: false })
    expect(stopped.relay!.lastSyncAt).not.toBeNull()
    expect(stopped.pending.changes).toBeGreaterThan(0)
    expect(stopped.pending.changes).toBeLessThan(before.pending.changes + 10) // counted from the relay's heads, not from scratch
    expect(stopped.peers).toContainEqual(expect.objectContaining({ role: 'relay', connected: false }))

    // Back: up-to-date again; then the device is revoked and the site shows the relay's reason.
    relay = await relayProcess(hub, port)
    await until('the site to read up-to-date again', async () => ((await sync(a1.url)).state === 'up-to-date' ? true : undefined), 40_000)
    await ok(['revoke', '--data', hub, '--device', 'a1'])
    const refused = await until('the refusal to show', async () => {
      const body = await sync(a1.url)
      return body.relay?.refusal ? body : undefined
    }, 30_000)
    expect(refused.state).toBe('offline')
    expect(refused.relay!.refusal).toMatchObject({ error: 'revoked', status: 403 })
    expect(refused.relay!.refusal!.reason).toMatch(/revoked/i)
  }, 150_000)
})
