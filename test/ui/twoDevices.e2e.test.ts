/**
 * Two storekeepers on two devices of one store, each at their own screen (real Chromium) on their
 * own real `stockmesh site` process, syncing through a real relay. The link goes down (the relay
 * stops), both record movements of the same item, the link returns: both screens show the same
 * correct stock and read Up to date, without a reload.
 */
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { api } from '../helpers/api.ts'
import { browser, openApp, screenshot, UI_DIR } from '../helpers/browser.ts'
import { hubDeployment, relayProcess, running } from '../helpers/deployment.ts'
import { startSiteProcess, type SiteProcess } from '../helpers/siteProcess.ts'
import { tempDir } from '../helpers/tempDir.ts'

async function device(file: string): Promise<SiteProcess> {
  const p = await startSiteProcess(['site', '--data', tempDir('site-'), '--enrol', file, '--port', '0', '--ui', UI_DIR, '--log-level', 'warn'])
  running.push(() => p.kill('SIGTERM'))
  return p
}

const onHand = async (page: Page, sku: string) => (await page.locator('.stock-table').getByRole('row', { name: new RegExp(`^${sku}\\b`) }).locator('td').nth(2).textContent())?.trim()
const state = async (page: Page) => (await page.getByRole('status').textContent()) ?? ''

async function record(page: Page, kind: 'Receipt' | 'Issue' | 'Count', sku: string, quantity: number): Promise<void> {
  await page.getByLabel('Movement').selectOption({ label: kind })
  await page.getByLabel('SKU').fill(sku)
  await page.getByLabel('SKU').press('Enter')
  await page.keyboard.type(String(quantity))
  await page.keyboard.press('Enter')
  await expect.poll(() => page.locator('[aria-live=polite].ok').textContent(), { timeout: 5_000 }).toContain('Recorded')
}

describe('two devices of one store, each with its screen', () => {
  it('record the same item while the link is down; once it returns both screens show the same stock and read Up to date', async () => {
    const { hub, port, enrol, file } = await hubDeployment()
    await enrol('a1', 'store-a')
    await enrol('a2', 'store-a')
    let relay = await relayProcess(hub, port)
    const [a1, a2] = await Promise.all([device(file('a1')), device(file('a2'))])
    const context = await browser()
    const { page: amina, foreign: f1 } = await openApp(context, a1.url, 'amina')
    const { page: bako, foreign: f2 } = await openApp(context, a2.url, 'bako')
    for (const page of [amina, bako]) await expect.poll(() => state(page), { timeout: 30_000 }).toContain('Up to date')
    await screenshot(amina, 'two-devices-up-to-date')

    // The link goes down: each screen says so, and each storekeeper goes on working.
    await relay.kill('SIGTERM')
    for (const page of [amina, bako]) await expect.poll(() => state(page), { timeout: 20_000 }).toContain('Offline')
    await record(amina, 'Receipt', 'AMOX-500', 50)
    await record(bako, 'Receipt', 'AMOX-500', 30)
    await record(bako, 'Issue', 'AMOX-500', 5)
    expect(await onHand(amina, 'AMOX-500')).toBe('50')
    expect(await onHand(bako, 'AMOX-500')).toBe('25')
    // Each says what has not left the device yet.
    expect(await state(amina)).toMatch(/Offline · [1-9]\d* changes? not at the relay yet/)
    await screenshot(bako, 'two-devices-offline')

    // The link returns: both converge on 75, by themselves, and read Up to date.
    relay = await relayProcess(hub, port)
    for (const page of [amina, bako]) {
      await expect.poll(() => onHand(page, 'AMOX-500'), { timeout: 30_000 }).toBe('75')
      await expect.poll(() => state(page), { timeout: 30_000 }).toMatch(/Up to date · 0 changes not at the relay yet/)
    }
    for (const s of [a1, a2]) expect((await api(s.url, 'GET', '/api/stock/AMOX-500')).body.onHand).toBe(75)
    await screenshot(amina, 'two-devices-converged')
    expect([...f1, ...f2]).toEqual([])
  }, 120_000)
})
