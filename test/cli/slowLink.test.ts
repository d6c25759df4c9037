/**
 * A device back from days offline on a slow link catches up: every part a real process, the device's
 * link a throttling TCP proxy at 24 kbit/s. Its 1,500 movements travel as one sync message that takes
 * ~20 s to upload, during which no whole frame (nor the pong queued behind it) reaches the relay.
 * The relay must not take the device for dead meanwhile (it counts bytes still arriving as alive);
 * before, it dropped the link every 5–10 s and the catch-up started over for ever.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { startProxy } from '../../bench/relayProxy.ts'
import { api } from '../helpers/api.ts'
import { enrolledSite, freePort, hubDeployment, relayProcess, running, stockOf } from '../helpers/deployment.ts'
import { startSiteProcess } from '../helpers/siteProcess.ts'
import { tempDir } from '../helpers/tempDir.ts'
import { until } from '../helpers/until.ts'

const MOVEMENTS = 1500

describe('a slow link', () => {
  it('carries a long catch-up through the relay without the relay dropping the device', async () => {
    const { hub, port, enrol, file } = await hubDeployment()
    await relayProcess(hub, port)
    await enrol('a1', 'store-a')
    await enrol('a2', 'store-a')

    // a1 records offline (its relay address leads nowhere), then stops.
    const data = tempDir('site-')
    const nowhere = `ws://127.0.0.1:${await freePort()}`
    const offline = await startSiteProcess(['site', '--data', data, '--enrol', file('a1'), '--relay', nowhere, '--port', '0', '--log-level', 'warn'])
    for (let start = 0; start < MOVEMENTS; start += 750) {
      // Random ids and references, as scanners make them: ~60 KB that do not compress away.
      const movements = Array.from({ length: 750 }, () => ({ id: randomUUID(), kind: 'receipt', sku: 'AMOX-500', quantity: 1, user: 'amina', reference: randomBytes(6).toString('hex') }))
      expect((await api(offline.url, 'POST', '/api/movements', { movements })).status).toBe(201)
    }
    await offline.kill('SIGTERM')

    // Back, behind a 24 kbit/s link to the relay; a2 is on a fast one.
    const proxy = await startProxy({ host: '127.0.0.1', port }, 3000)
    running.push(() => proxy.close())
    const a1 = await startSiteProcess(['site', '--data', data, '--relay', proxy.url, '--port', '0', '--log-level', 'warn'])
    running.push(() => a1.kill('SIGTERM'))
    const a2 = await enrolledSite(file('a2'))

    await until('a2 to hold a1’s movements', async () => ((await stockOf(a2.url)) === MOVEMENTS ? true : undefined), 90_000)
    // One upload did it: what crossed the link is about the movements once, not a catch-up started over and over.
    expect(proxy.up).toBeLessThan(MOVEMENTS * 120)
    expect((await api(a2.url, 'GET', '/api/ledger/check')).body.consistent).toBe(true)
  }, 120_000)
})
