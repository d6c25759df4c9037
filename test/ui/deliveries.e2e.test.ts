/**
 * Receiving a delivery in a real browser (Debian's Chromium through playwright-core) against a
 * real site node: a storekeeper opens the manifest the hub sent, counts each line, the receiver
 * signs on screen, the page shows how the count differs from what was shipped before it is
 * confirmed, and the stock page then holds what was received. A refused or unsent delivery keeps
 * everything typed and drawn. Screenshots are saved under test-output/screenshots.
 */
import type { Locator, Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { api } from '../helpers/api.ts'
import { browser, openApp, screenshot, UI_DIR } from '../helpers/browser.ts'
import { startSite } from '../helpers/site.ts'
import { tempDir } from '../helpers/tempDir.ts'

/** As the hub plans it: stop s1 is this site (demo-store), s2 a clinic further down the road. */
const PLAN = {
  id: 'mf-1',
  from: 'demo-hub',
  carrier: 'Kisumu Transport · KBX 123A',
  stops: [
    {
      id: 's1',
      site: 'demo-store',
      lines: [
        { id: 'l1', sku: 'AMOX-500', shipped: 10 },
        { id: 'l2', sku: 'ORS-1L', shipped: 4 },
        { id: 'l3', sku: 'AL-6X1', shipped: 20, lot: 'B2207', expiry: '2030-06-30' },
      ],
    },
    { id: 's2', site: 'demo-clinic', lines: [{ id: 'l1', sku: 'ZINC-20', shipped: 6 }] },
  ],
  user: 'hub-clerk',
}

/** A site node with manifest mf-1 departed (and mf-2 still planned), and the app open on it. */
async function siteWithManifest() {
  const site = await startSite(tempDir(), { api: { uiDir: UI_DIR } })
  expect((await api(site.url, 'POST', '/api/manifests', PLAN)).status).toBe(201)
  expect((await api(site.url, 'POST', '/api/manifests', { ...PLAN, id: 'mf-2', carrier: 'Hub van', stops: [PLAN.stops[1]] })).status).toBe(201)
  expect((await api(site.url, 'POST', '/api/manifests/mf-1/depart', { user: 'driver-1' })).status).toBe(200)
  const { page, foreign } = await openApp(await browser(), site.url, 'amina')
  return { site, page, foreign }
}

/** Opens manifest `id` from the Deliveries page, as a person does. */
async function openManifest(page: Page, id: string): Promise<void> {
  await page.getByRole('link', { name: 'Deliveries' }).click()
  const row = page.getByRole('row', { name: new RegExp(id) })
  await expect.poll(async () => (await row.textContent()) ?? '', { timeout: 10_000 }).toMatch(/departed|planned/)
  await row.getByRole('link', { name: id }).click()
  await expect.poll(() => page.getByRole('heading', { name: `Manifest ${id}` }).isVisible()).toBe(true)
}

/** A signature drawn with the mouse over the pad. */
async function sign(page: Page, pad: Locator): Promise<void> {
  await pad.scrollIntoViewIfNeeded()
  const box = (await pad.boundingBox())!
  const at = (i: number) => ({ x: box.x + 20 + i * 14, y: box.y + box.height * (0.55 + 0.3 * Math.sin(i / 1.5)) })
  await page.mouse.move(at(0).x, at(0).y)
  await page.mouse.down()
  for (let i = 1; i <= 18; i++) await page.mouse.move(at(i).x, at(i).y, { steps: 3 })
  await page.mouse.up()
  // A second stroke, as a signature has: the pad keeps both.
  await page.mouse.move(box.x + 40, box.y + box.height * 0.85)
  await page.mouse.down()
  await page.mouse.move(box.x + box.width - 40, box.y + box.height * 0.8, { steps: 10 })
  await page.mouse.up()
}

/** How many pixels of the pad are ink. */
const inkOf = (pad: Locator) =>
  pad.evaluate((canvas: HTMLCanvasElement) => {
    const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height)
    let ink = 0
    for (let i = 0; i < data.length; i += 4) if (data[i]! < 128) ink++
    return ink
  })

const valueOf = (locator: Locator) => locator.inputValue()

describe('receiving a delivery in Chromium', () => {
  it('records the counts, the receiver and a drawn signature, shows the difference first, and the stock holds what was received', async () => {
    const { site, page, foreign } = await siteWithManifest()
    // The page's Content Security Policy must allow everything it does (a signature is a data: PNG).
    const refused: string[] = []
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) refused.push(m.text())
    })
    await page.getByRole('link', { name: 'Deliveries' }).click()
    const listed = page.getByRole('row', { name: /mf-1/ })
    await expect.poll(async () => (await listed.textContent()) ?? '', { timeout: 10_000 }).toContain('departed')
    expect(await listed.textContent()).toMatch(/Demo regional hub.*Kisumu Transport.*to receive here.*0 of 2 delivered.*4/)
    expect(await page.getByRole('row', { name: /mf-2/ }).textContent()).toContain('planned')
    await screenshot(page, 'deliveries-list')

    await listed.getByRole('link', { name: 'mf-1' }).click()
    const form = page.getByRole('region', { name: 'Receive stop s1' })
    await expect.poll(() => form.isVisible(), { timeout: 10_000 }).toBe(true)
    const line = (sku: string) => form.getByRole('row', { name: new RegExp(sku) })
    // Prefilled as shipped; the lot and its expiry shown on the lot-tracked line.
    expect(await valueOf(form.getByLabel('Received AMOX-500'))).toBe('10')
    expect(await valueOf(form.getByLabel('Rejected AMOX-500'))).toBe('0')
    expect(await line('AL-6X1').textContent()).toContain('B2207 · 2030-06-30')
    expect(await form.textContent()).toContain('Everything as shipped.')
    // Another site's stop is not opened for receiving until asked.
    expect(await page.getByRole('region', { name: 'Receive stop s2' }).count()).toBe(0)

    // A typo (a negative count), one sachet torn, the receiver, a signature drawn with the mouse.
    await form.getByLabel('Received AMOX-500').fill('-1')
    await form.getByLabel('Received ORS-1L').fill('3')
    await form.getByLabel('Rejected ORS-1L').fill('1')
    await form.getByLabel('Receiver').fill('Amina Odhiambo')
    const pad = form.getByRole('img', { name: /Signature pad/ })
    await sign(page, pad)
    await expect.poll(() => form.getByText('Signed', { exact: true }).isVisible()).toBe(true)
    const ink = await inkOf(pad)
    expect(ink).toBeGreaterThan(100)

    // The node cannot be reached: nothing is recorded and nothing typed or drawn is lost.
    await page.route('**/api/manifests/mf-1/stops/s1/delivery', (route) => route.abort('internetdisconnected'))
    await form.getByRole('button', { name: 'Confirm delivery' }).click()
    await expect.poll(async () => (await form.getByRole('alert').allTextContents()).join(' ')).toMatch(/Cannot reach the site node/)
    await page.unroute('**/api/manifests/mf-1/stops/s1/delivery')

    // The node refuses the negative count: its message next to that field; everything else kept.
    await form.getByRole('button', { name: 'Confirm delivery' }).click()
    await expect.poll(async () => (await line('AMOX-500').getByRole('alert').textContent()) ?? '').toBe('Received must not be negative')
    expect(await form.getByLabel('Received AMOX-500').getAttribute('aria-invalid')).toBe('true')
    expect([await valueOf(form.getByLabel('Received AMOX-500')), await valueOf(form.getByLabel('Received ORS-1L')), await valueOf(form.getByLabel('Rejected ORS-1L'))]).toEqual(['-1', '3', '1'])
    expect(await valueOf(form.getByLabel('Receiver'))).toBe('Amina Odhiambo')
    expect(await inkOf(pad)).toBe(ink)
    expect(await form.getByText('Signed', { exact: true }).isVisible()).toBe(true)
    expect((await api(site.url, 'GET', '/api/manifests/mf-1')).body.stops[0].status).toBe('pending')

    // Away to another page and back: the draft is still there, the signature drawn again.
    await page.getByRole('link', { name: 'Stock' }).click()
    await openManifest(page, 'mf-1')
    expect(await valueOf(form.getByLabel('Received ORS-1L'))).toBe('3')
    expect(await valueOf(form.getByLabel('Receiver'))).toBe('Amina Odhiambo')
    await expect.poll(() => inkOf(pad)).toBe(ink)

    // Corrected: the difference shows per line and in total before confirming.
    await form.getByLabel('Received AMOX-500').fill('9')
    expect(await line('AMOX-500').getByRole('alert').count()).toBe(0)
    expect(await line('AMOX-500').getByRole('cell').last().textContent()).toBe('1 short')
    expect(await line('ORS-1L').getByRole('cell').last().textContent()).toBe('1 rejected')
    expect(await line('AL-6X1').getByRole('cell').last().textContent()).toBe('as shipped')
    expect(await form.getByRole('row', { name: /Total/ }).textContent()).toMatch(/Total\s*34\s*32\s*1\s*1 short, 1 rejected/)
    expect(await form.textContent()).toContain('2 lines differ from what was shipped')
    await screenshot(page, 'delivery-receive')
    // After a full-page screenshot, Chromium moved the page between this button's pointerdown and
    // pointerup (the click then landed on the form, not the button); one real scroll settles it.
    await page.evaluate(() => window.scrollTo(0, 0))

    await form.getByRole('button', { name: 'Confirm delivery' }).click()
    const stop = page.getByRole('article', { name: /Stop s1/ })
    await expect.poll(async () => (await stop.textContent()) ?? '', { timeout: 10_000 }).toContain('Received byAmina Odhiambo')
    await expect.poll(async () => (await stop.textContent()) ?? '').toContain("Delivery of stop s1 recorded; 3 receipts added to this site's stock.")
    expect(await form.count()).toBe(0)
    // The proof shows the very signature drawn, pixel for pixel.
    await expect.poll(() => inkOf(stop.getByRole('img', { name: 'Signature of Amina Odhiambo' }))).toBe(ink)
    await expect.poll(async () => (await stop.getByRole('row', { name: /AMOX-500/ }).textContent()) ?? '').toMatch(/10\s*9\s*0\s*1 short\s*yes/)
    // The short and the rejected lines wait for a decision.
    await expect.poll(async () => (await page.getByRole('region', { name: 'Review items' }).textContent()) ?? '').toMatch(/Open · Stop s1 .*line l1 \(AMOX-500\): shipped 10, received 9, rejected 0/)
    await screenshot(page, 'delivery-done')

    const recorded = (await api(site.url, 'GET', '/api/manifests/mf-1')).body.stops[0].recorded[0]
    expect(recorded).toMatchObject({ by: 'amina', receiver: 'Amina Odhiambo', lines: { l1: { received: 9, rejected: 0 }, l2: { received: 3, rejected: 1 }, l3: { received: 20, rejected: 0 } } })
    expect(recorded.signature.length).toBeLessThan(64 * 1024)

    // The stock page holds what was received.
    await page.getByRole('link', { name: 'Stock' }).click()
    const onHand = (sku: string) => page.getByRole('row', { name: new RegExp(sku) }).first().getByRole('cell').nth(2).textContent()
    await expect.poll(() => onHand('AMOX-500'), { timeout: 10_000 }).toBe('9')
    expect(await onHand('ORS-1L')).toBe('3')
    expect(await onHand('AL-6X1')).toBe('20')
    expect(foreign).toEqual([])
    expect(refused).toEqual([])
  }, 90_000)

  it('lets the keyboard alone receive another site’s stop with a typed name, decide its review item and close the manifest', async () => {
    const { site, page } = await siteWithManifest()
    await openManifest(page, 'mf-1')

    // As the carrier's device: stop s2 is for the clinic.
    await page.getByRole('button', { name: 'Receive stop s2 here' }).press('Enter')
    const form = page.getByRole('region', { name: 'Receive stop s2' })
    expect(await form.textContent()).toContain('confirming records the delivery in the manifest only')
    await form.getByLabel('Received ZINC-20').press('Control+A')
    await page.keyboard.type('5')
    await form.getByLabel('Receiver').focus()
    await page.keyboard.type('Nurse Achieng')
    await form.getByRole('button', { name: 'Type name instead' }).press('Enter')
    // The typed-name field takes the focus, prefilled with the receiver.
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toMatch(/-typed$/)
    expect(await valueOf(form.getByLabel('Signature (typed name)'))).toBe('Nurse Achieng')
    await form.getByRole('button', { name: 'Confirm delivery' }).press('Enter')

    const stop = page.getByRole('article', { name: /Stop s2/ })
    await expect.poll(async () => (await stop.textContent()) ?? '', { timeout: 10_000 }).toContain('typed name: Nurse Achieng')
    await expect.poll(async () => (await stop.textContent()) ?? '').toMatch(/Delivery of stop s2 recorded\. stop s2 is for site demo-clinic/)
    expect((await api(site.url, 'GET', '/api/stock')).body.items.find((i: { sku: string }) => i.sku === 'ZINC-20').onHand).toBe(0)

    // The short line of s2 is a review item: decided with the keyboard.
    const review = page.getByRole('region', { name: 'Review items' })
    await expect.poll(async () => (await review.textContent()) ?? '').toContain('line l1 (ZINC-20): shipped 6, received 5')
    await review.getByRole('button', { name: 'Record decision' }).press('Enter')
    await expect.poll(async () => (await review.getByRole('alert').textContent()) ?? '').toBe('Decision note must not be empty')
    await review.getByLabel('Decision note').focus()
    await page.keyboard.type('one blister short; hub informed')
    await review.getByRole('button', { name: 'Record decision' }).press('Enter')
    await expect.poll(async () => (await review.textContent()) ?? '').toContain('Decided by amina')

    // Closing with stop s1 still pending: the node asks for a reason, next to the reason field.
    await page.getByRole('button', { name: 'Close manifest' }).press('Enter')
    await expect.poll(async () => (await page.getByRole('region', { name: 'Close the manifest' }).getByRole('alert').textContent()) ?? '').toMatch(/stop s1 has no delivery: give a reason to close/)
    await page.getByLabel('Reason for closing').focus()
    await page.keyboard.type('store closed for stocktake; goods back to hub')
    await page.getByRole('button', { name: 'Close manifest' }).press('Enter')
    await expect.poll(async () => (await page.getByText('Manifest mf-1 closed.').count())).toBe(1)
    expect((await api(site.url, 'GET', '/api/manifests/mf-1')).body.status).toBe('closed')
    expect(await page.getByRole('region', { name: 'Receive stop s1' }).count()).toBe(0)
  }, 90_000)
})
