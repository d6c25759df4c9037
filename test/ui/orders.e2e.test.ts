/**
 * The orders pages in a real browser (Debian's Chromium through playwright-core) against a real
 * site node: a storekeeper raises an order, adds its lines with the keyboard, submits it, and it
 * is approved for less than requested; the page offers only what the status allows, shows a
 * refusal next to the field the node named without losing what was typed, and shows what the
 * other party does through the API without a reload.
 */
import type { DocHandle } from '@automerge/automerge-repo'
import type { Locator, Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import type { OrderDoc } from '../../src/schema/order.ts'
import { imm } from '../../src/schema/strings.ts'
import { api } from '../helpers/api.ts'
import { browser, openApp, screenshot, UI_DIR } from '../helpers/browser.ts'
import { startSite } from '../helpers/site.ts'
import { tempDir } from '../helpers/tempDir.ts'

const POLL = { timeout: 10_000 }

/** The buttons the page offers under "What next". */
const actions = (page: Page) => page.getByRole('region', { name: 'What next' }).getByRole('button').allTextContents()
const status = (page: Page) => page.locator('.facts').textContent()
const cells = (page: Page, sku: string) => page.getByRole('row', { name: new RegExp(`^${sku} `) }).getByRole('cell').allTextContents()
const activeId = (page: Page) => page.evaluate(() => document.activeElement?.id ?? '')

/** The message a field points at with aria-describedby, and its class (both empty while there is none). */
async function describedBy(page: Page, field: string | Locator): Promise<{ text: string; className: string }> {
  const input = typeof field === 'string' ? page.getByLabel(field, { exact: true }) : field
  const id = await input.getAttribute('aria-describedby')
  if (!id) return { text: '', className: '' }
  const note = page.locator(`[id="${id}"]`)
  return { text: ((await note.textContent()) ?? '').trim(), className: (await note.getAttribute('class')) ?? '' }
}

describe('the orders pages in Chromium', () => {
  it('raise an order by keyboard, submit it and approve less than requested, offering only what the status allows', async () => {
    const site = await startSite(tempDir(), { api: { uiDir: UI_DIR } })
    const context = await browser()
    const { page, foreign } = await openApp(context, site.url, 'amina')

    await page.getByRole('link', { name: 'Orders', exact: true }).click()
    await expect.poll(() => page.getByText('No orders yet').isVisible(), POLL).toBe(true)
    // New order: from this site (the node takes no other) to the hub, chosen from the catalog.
    await expect.poll(() => page.getByRole('form', { name: 'New order' }).textContent(), POLL).toContain('Demo district store')
    const to = page.getByLabel('To (supplying site)')
    await expect.poll(() => to.inputValue(), POLL).toBe('demo-hub')
    await to.focus()
    await page.keyboard.press('Tab')
    await page.keyboard.press('Enter')
    await page.waitForURL(/#\/orders\/ord-/)
    const id = decodeURIComponent(page.url().split('#/orders/')[1]!)
    await expect.poll(() => status(page), POLL).toMatch(/Status\s*Draft.*From\s*Demo district store.*To\s*Demo regional hub/)

    // Two lines by keyboard: the new order waits in the SKU field; Enter moves on, Enter adds.
    await expect.poll(() => activeId(page), POLL).toBe('order-line-sku')
    for (const [sku, quantity] of [['AMOX-500', '20'], ['ORS-1L', '50']] as const) {
      await page.keyboard.type(sku)
      await page.keyboard.press('Enter')
      await page.keyboard.type(quantity)
      await page.keyboard.press('Enter')
      await expect.poll(() => cells(page, sku), POLL).toEqual([sku, expect.stringMatching(/\S/), expect.any(String), quantity, '—', 'Remove'])
      await expect.poll(() => activeId(page), POLL).toBe('order-line-sku')
    }

    // Refused by the node: its words next to the field it named, and what was typed stays.
    await page.keyboard.type('ZINC-20')
    await page.keyboard.press('Enter')
    await page.keyboard.type('0')
    await page.keyboard.press('Enter')
    await expect.poll(() => describedBy(page, 'Quantity'), POLL).toEqual({ text: 'requested: must be at least 1', className: 'field-error' })
    expect(await page.getByLabel('SKU', { exact: true }).inputValue()).toBe('ZINC-20')
    expect(await page.getByLabel('Quantity', { exact: true }).inputValue()).toBe('0')
    await page.getByLabel('SKU', { exact: true }).fill('NOPE-1')
    await page.getByLabel('Quantity', { exact: true }).fill('5')
    await page.keyboard.press('Enter')
    await expect.poll(async () => (await describedBy(page, 'SKU')).text, POLL).toMatch(/NOPE-1 is not in this site's catalog/)
    expect(await page.getByLabel('Quantity', { exact: true }).getAttribute('aria-describedby')).toBeNull()
    expect([await page.getByLabel('SKU', { exact: true }).inputValue(), await page.getByLabel('Quantity', { exact: true }).inputValue()]).toEqual(['NOPE-1', '5'])

    // The node cannot be reached: nothing is recorded and nothing typed is lost.
    await page.route('**/api/orders/*/lines', (route) => route.abort())
    await page.getByLabel('SKU', { exact: true }).fill('ZINC-20')
    await page.getByLabel('Quantity', { exact: true }).fill('5')
    await page.keyboard.press('Enter')
    await expect.poll(() => page.getByRole('alert').allTextContents(), POLL).toContainEqual(expect.stringMatching(/Cannot reach the site node/))
    expect([await page.getByLabel('SKU', { exact: true }).inputValue(), await page.getByLabel('Quantity', { exact: true }).inputValue()]).toEqual(['ZINC-20', '5'])
    await page.unroute('**/api/orders/*/lines')
    expect((await api(site.url, 'GET', `/api/orders/${id}`)).body.lines.map((l: { sku: string }) => l.sku)).toEqual(['AMOX-500', 'ORS-1L'])

    // A draft offers submit and cancel only; submit with the keyboard.
    expect(await actions(page)).toEqual(['Submit order', 'Cancel order'])
    await page.getByRole('button', { name: 'Submit order' }).focus()
    await page.keyboard.press('Enter')
    await expect.poll(() => status(page), POLL).toMatch(/Status\s*Submitted/)
    await expect.poll(() => actions(page), POLL).toEqual(['Approve order', 'Reject order', 'Cancel order'])
    expect(await page.getByLabel('SKU', { exact: true }).count()).toBe(0)
    expect(await page.getByRole('button', { name: /^Remove/ }).count()).toBe(0)

    // Approve more than requested: refused next to that line's quantity, kept as typed.
    const amox = page.getByLabel(/^Approve AMOX-500/)
    const ors = page.getByLabel(/^Approve ORS-1L/)
    expect([await amox.inputValue(), await ors.inputValue()]).toEqual(['20', '50'])
    await amox.fill('25')
    await amox.press('Enter')
    await expect.poll(() => describedBy(page, amox), POLL).toEqual({ text: 'cannot approve 25 of SKU AMOX-500: 20 were requested', className: 'field-error' })
    expect(await amox.inputValue()).toBe('25')

    // The same site may approve (no rule refuses it): 20 of 20, and 40 of the 50 asked.
    await amox.fill('20')
    await ors.fill('40')
    await ors.press('Enter')
    await expect.poll(() => status(page), POLL).toMatch(/Status\s*Approved/)
    await expect.poll(() => cells(page, 'ORS-1L'), POLL).toEqual(['ORS-1L', expect.stringMatching(/Oral rehydration/), 'sachet', '50', '40'])
    expect(await cells(page, 'AMOX-500')).toEqual(['AMOX-500', expect.stringMatching(/Amoxicillin/), 'pack of 100', '20', '20'])
    expect(await actions(page)).toEqual(['Mark fulfilled', 'Cancel order'])
    const changes = page.getByRole('table', { name: 'Status changes' })
    await expect.poll(() => changes.getByRole('row').allTextContents(), POLL).toEqual([
      expect.stringMatching(/When/),
      expect.stringMatching(/amina.*draft → submitted/),
      expect.stringMatching(/amina.*submitted → approved/),
    ])
    const history = page.getByRole('table', { name: 'History' })
    expect(await history.locator('tbody td:nth-child(2)').allTextContents()).toEqual(Array(5).fill(expect.stringMatching(/^amina on /)))
    expect(await history.locator('tbody td:nth-child(3)').allTextContents()).toEqual(['Raised the order', 'Added or changed a line', 'Added or changed a line', 'Submitted', 'Approved'])
    await screenshot(page, 'order-detail')
    // The sync badge stays the page's one status element (openApp and every page test find it by that role).
    expect(await page.getByRole('status').count()).toBe(1)

    // The supplying site fulfils it (here through the API): the page shows it without a reload.
    expect((await api(site.url, 'POST', `/api/orders/${id}/fulfil`, { user: 'otieno', reason: 'sent on truck 4' })).status).toBe(200)
    await expect.poll(() => status(page), POLL).toMatch(/Status\s*Fulfilled/)
    await expect.poll(() => changes.getByRole('row').last().textContent(), POLL).toMatch(/otieno.*approved → fulfilled.*sent on truck 4/)
    expect(await actions(page)).toEqual([])
    expect(await page.getByRole('region', { name: 'What next' }).textContent()).toContain('nothing more can be done')

    // The list: this order with its parties, status and line count; another raised meanwhile appears by itself.
    await page.getByRole('link', { name: '← All orders' }).click()
    const row = page.getByRole('row', { name: new RegExp(id) })
    await expect.poll(() => row.getByRole('cell').allTextContents(), POLL).toEqual([id, 'Demo district store demo-store', 'Demo regional hub demo-hub', 'Fulfilled', '2'])
    expect((await api(site.url, 'POST', '/api/orders', { id: 'po-api-1', from: 'demo-store', to: 'demo-clinic', lines: [{ sku: 'RDT-MAL', requested: 10 }], user: 'wanjiru' })).status).toBe(201)
    await expect.poll(() => page.getByRole('row', { name: /po-api-1/ }).getByRole('cell').allTextContents(), POLL).toEqual(['po-api-1', 'Demo district store demo-store', 'Demo clinic demo-clinic', 'Draft', '1'])
    await screenshot(page, 'orders-list')
    expect(await page.getByRole('status').count()).toBe(1)

    // The link opens the order.
    await page.getByRole('link', { name: 'po-api-1' }).focus()
    await page.keyboard.press('Enter')
    await expect.poll(() => cells(page, 'RDT-MAL'), POLL).toEqual(['RDT-MAL', 'Malaria rapid diagnostic test', 'test', '10', '—', 'Remove'])
    expect(foreign).toEqual([])
  }, 90_000)

  it('shows a status conflict merged from elsewhere as a review item, and records the decision typed', async () => {
    const site = await startSite(tempDir(), { api: { uiDir: UI_DIR } })
    await api(site.url, 'POST', '/api/orders', { id: 'po-1', from: 'demo-store', to: 'demo-hub', lines: [{ sku: 'AMOX-500', requested: 20 }], user: 'amina' })
    await api(site.url, 'POST', '/api/orders/po-1/submit', { user: 'amina' })
    const context = await browser()
    const { page } = await openApp(context, site.url, 'otieno')
    await page.goto(`${site.url}/#/orders/po-1`)
    await expect.poll(() => status(page), POLL).toMatch(/Status\s*Submitted/)

    // Approved here, and a rejection made offline on another device arrives: the rule keeps the rejection.
    await api(site.url, 'POST', '/api/orders/po-1/approve', { user: 'otieno' })
    ;(site.node.orders.get('po-1') as DocHandle<OrderDoc>).change((d) => {
      d.events.push({ from: imm('submitted'), to: imm('rejected'), by: imm('wanjiru'), device: imm('tablet-9'), at: Date.now(), reason: imm('no budget') })
    })
    await expect.poll(() => status(page), POLL).toMatch(/Status\s*Rejected/)
    const review = page.getByRole('region', { name: 'To review' })
    await expect.poll(() => review.textContent(), POLL).toMatch(/Open:/)
    expect(await actions(page)).toEqual([])

    // An empty note is refused by the node, next to the field; then the decision is recorded.
    const note = review.getByLabel('Decision note')
    await note.fill('  ')
    await note.press('Enter')
    await expect.poll(() => describedBy(page, note), POLL).toEqual({ text: expect.stringMatching(/^note: /), className: 'field-error' })
    expect(await note.inputValue()).toBe('  ')
    await note.fill('rejection stands; re-order next month')
    await note.press('Enter')
    await expect.poll(() => review.textContent(), POLL).toMatch(/Decided by otieno, .*: “rejection stands; re-order next month”/)
    expect(await review.getByLabel('Decision note').count()).toBe(0)
  }, 60_000)
})
