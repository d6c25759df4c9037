import { writeFileSync } from 'node:fs'
import path from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startSite, type StartSiteOptions } from '../../src/main/startSite.ts'
import { api } from '../helpers/api.ts'
import { tempDir } from '../helpers/tempDir.ts'
import { hubDeployment, relayProcess } from '../helpers/deployment.ts'
import { until } from '../helpers/until.ts'

async function started(options: Partial<StartSiteOptions> = {}) {
  const site = await startSite({ dataDir: tempDir(), uiDir: tempDir(), logger: pino({ level: 'silent' }), lan: false, ...options })
  onTestFinished(() => site.close())
  return site
}

describe('startSite()', () => {
  it('serves the built index.html from uiDir at / and for app routes', async () => {
    const uiDir = tempDir()
    writeFileSync(path.join(uiDir, 'index.html'), '<!doctype html><title>built-ui-marker</title>')
    const { url } = await started({ uiDir })
    for (const page of ['/', '/stock/AMOX-500']) {
      const res = await fetch(url + page)
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toMatch(/^text\/html/)
      expect(await res.text()).toContain('built-ui-marker')
    }
  })

  it('opens the demo site with its catalog on a loopback port when no site is named', async () => {
    const site = await started()
    expect(site.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(await api(site.url, 'GET', '/api/health')).toMatchObject({ status: 200, body: { status: 'ok', site: 'demo-store', node: site.node } })
    const stock = await api(site.url, 'GET', '/api/stock')
    expect(stock.body.items).toContainEqual({ sku: 'AMOX-500', name: 'Amoxicillin 500 mg capsules', unit: 'pack of 100', onHand: 0, lotTracked: false })
  })

  it('opens a named site without the demo catalog', async () => {
    const site = await started({ site: 'north-clinic' })
    expect((await api(site.url, 'GET', '/api/health')).body.site).toBe('north-clinic')
    expect((await api(site.url, 'GET', '/api/stock')).body.items).toEqual([])
  })

  it('keeps movements across close() and a restart on the same data folder', async () => {
    const dataDir = tempDir()
    const first = await started({ dataDir })
    const receipt = { id: 'r-1', kind: 'receipt', sku: 'ORS-1L', quantity: 12, user: 'amina' }
    expect((await api(first.url, 'POST', '/api/movements', receipt)).status).toBe(201)
    await Promise.all([first.close(), first.close()])
    await expect(fetch(first.url + '/api/health')).rejects.toThrow()

    const second = await started({ dataDir })
    expect(second.node).toBe(first.node)
    expect((await api(second.url, 'GET', '/api/stock/ORS-1L')).body.onHand).toBe(12)
  })

  it('an enrolled desktop device syncs through its relay: two storekeepers of one store, and again after a restart', async () => {
    const { hub, port, enrol, file } = await hubDeployment()
    await relayProcess(hub, port)
    await enrol('desk-1', 'store-a')
    await enrol('desk-2', 'store-a')
    const dataDir = tempDir()
    const one = await started({ dataDir, enrolment: file('desk-1') })
    const two = await started({ enrolment: file('desk-2') })
    expect((await api(one.url, 'GET', '/api/health')).body.site).toBe('store-a')
    expect((await api(one.url, 'POST', '/api/movements', { id: 'd1-r', kind: 'receipt', sku: 'AMOX-500', quantity: 9, user: 'amina' })).status).toBe(201)
    await until('the receipt at the other desk', async () => ((await api(two.url, 'GET', '/api/stock/AMOX-500')).body.onHand === 9 ? true : undefined), 30_000)
    await one.close()
    // Same folder, same environment (the enrolment file still named): it starts as enrolled, and syncs.
    const again = await started({ dataDir, enrolment: file('desk-1') })
    expect((await api(two.url, 'POST', '/api/movements', { id: 'd2-i', kind: 'issue', sku: 'AMOX-500', quantity: 4, user: 'baraka' })).status).toBe(201)
    await until('the issue back at the first desk', async () => ((await api(again.url, 'GET', '/api/stock/AMOX-500')).body.onHand === 5 ? true : undefined), 30_000)
  }, 90_000)
})
