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

  it('a stop is received on one screen while a count is entered on the other; the review item shows on both and is resolved on one', async () => {
    const { hub, port, enrol, file } = await hubDeployment()
    await enrol('a1', 'store-a')
    await enrol('a2', 'store-a')
    let relay = await relayProcess(hub, port)
    const [a1, a2] = await Promise.all([device(file('a1')), device(file('a2'))])
    // The truck left the hub for store A with 10 packs.
    const plan = { id: 'mf-7', from: 'hub', carrier: 'Route 3 van', stops: [{ id: 's1', site: 'store-a', lines: [{ id: 'l1', sku: 'AMOX-500', shipped: 10 }] }], user: 'dispatcher' }
    expect((await api(a1.url, 'POST', '/api/manifests', plan)).status).toBe(201)
    expect((await api(a1.url, 'POST', '/api/manifests/mf-7/depart', { user: 'driver' })).status).toBe(200)
    const context = await browser()
    const { page: amina } = await openApp(context, a1.url, 'amina')
    const { page: bako } = await openApp(context, a2.url, 'bako')
    for (const page of [amina, bako]) await expect.poll(() => state(page), { timeout: 30_000 }).toContain('Up to date')
    // The manifest reached the other device too.
    await bako.getByRole('link', { name: 'Deliveries' }).click()
    await expect.poll(() => bako.getByRole('row', { name: /mf-7/ }).count(), { timeout: 20_000 }).toBe(1)
    await bako.getByRole('link', { name: 'Stock' }).click()

    // The link goes down. Amina receives the stop and counts the shelf; Bako counts it at the same time.
    await relay.kill('SIGTERM')
    for (const page of [amina, bako]) await expect.poll(() => state(page), { timeout: 20_000 }).toContain('Offline')
    await amina.getByRole('link', { name: 'Deliveries' }).click()
    await amina.getByRole('row', { name: /mf-7/ }).getByRole('link', { name: 'mf-7' }).click()
    const form = amina.getByRole('region', { name: 'Receive stop s1' })
    await expect.poll(() => form.isVisible(), { timeout: 10_000 }).toBe(true)
    await form.getByLabel('Receiver').fill('Amina Odhiambo')
    await form.getByRole('button', { name: 'Type name instead' }).click()
    await form.getByLabel('Signature (typed name)').fill('Amina Odhiambo')
    await form.getByRole('button', { name: 'Confirm delivery' }).click()
    await expect.poll(async () => (await amina.getByRole('article', { name: /Stop s1/ }).textContent()) ?? '', { timeout: 10_000 }).toContain('Received byAmina Odhiambo')
    await amina.getByRole('link', { name: 'Stock' }).click()
    await expect.poll(() => onHand(amina, 'AMOX-500'), { timeout: 10_000 }).toBe('10')
    await record(amina, 'Count', 'AMOX-500', 10)
    await record(bako, 'Count', 'AMOX-500', 4)
    expect(await onHand(bako, 'AMOX-500')).toBe('4')

    // The link returns: both show the same stock, and the same review item, by themselves.
    relay = await relayProcess(hub, port)
    const item = (page: Page) => page.getByRole('article', { name: /Two stock counts made at the same time/ })
    for (const page of [amina, bako]) {
      await expect.poll(() => state(page), { timeout: 30_000 }).toMatch(/Up to date · 0 changes/)
      await expect.poll(() => onHand(page, 'AMOX-500'), { timeout: 10_000 }).toBe('14') // receipt 10, counts +0 and +4
      await page.getByRole('link', { name: 'Review' }).click()
      await expect.poll(() => item(page).count(), { timeout: 10_000 }).toBe(1)
      expect(await item(page).textContent()).toMatch(/10 and 4|4 and 10/)
    }
    await screenshot(bako, 'two-devices-review')

    // Bako resolves it: Amina's count (after the delivery) is right.
    const mine = item(bako)
    await mine.getByRole('radio', { name: /counted by amina/ }).check()
    await mine.getByLabel('Reason for the adjustment').selectOption({ index: 1 })
    await mine.getByLabel('Note: what you checked').fill('Recounted after the delivery: 10')
    await mine.getByLabel('Note: what you checked').press('Enter')
    // Gone from both screens; both read 10 and Up to date.
    for (const page of [bako, amina]) {
      await expect.poll(() => item(page).count(), { timeout: 20_000 }).toBe(0)
      await page.getByRole('link', { name: 'Stock' }).click()
      await expect.poll(() => onHand(page, 'AMOX-500'), { timeout: 20_000 }).toBe('10')
      await expect.poll(() => state(page), { timeout: 30_000 }).toContain('Up to date')
    }
    for (const s of [a1, a2]) {
      expect((await api(s.url, 'GET', '/api/stock/AMOX-500')).body.onHand).toBe(10)
      expect(((await api(s.url, 'GET', '/api/review')).body.items as Array<{ status: string; kind: string }>).filter((i) => i.status === 'open' && i.kind === 'concurrent-counts')).toEqual([])
    }
    await amina.getByRole('link', { name: 'Sync', exact: true }).click()
    await expect.poll(() => amina.getByRole('cell', { name: 'relay', exact: true }).count(), { timeout: 10_000 }).toBeGreaterThan(0)
    await screenshot(amina, 'sync')
  }, 180_000)
})
