/**
 * The Review and History pages in a real browser (Debian's Chromium through playwright-core)
 * against a real site node. A review item arises as it does in the field: a tablet that synced
 * with the store earlier counts a product while out of reach, a storekeeper counts the same product
 * at the store, and the two counts meet when the tablet is back. A manager sees both counts side by
 * side with the rule, resolves the item with the keyboard, and finds the decision in the history.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import * as A from '@automerge/automerge'
import { parseAutomergeUrl, Repo, type PeerId } from '@automerge/automerge-repo'
import { WebSocketClientAdapter, WebSocketServerAdapter } from '@automerge/automerge-repo-network-websocket'
import { WebSocketServer } from 'ws'
import { describe, expect, it, onTestFinished } from 'vitest'
import { LedgerBook } from '../../src/docs/ledgerBook.ts'
import { DurableGate } from '../../src/network/durableGate.ts'
import { RepoLedgerStore } from '../../src/node/repoLedgerStore.ts'
import type { JournalDoc, LedgerDoc } from '../../src/schema/ledger.ts'
import { api } from '../helpers/api.ts'
import { browser, openApp, screenshot, UI_DIR } from '../helpers/browser.ts'
import { startSite } from '../helpers/site.ts'
import { tempDir } from '../helpers/tempDir.ts'

type Site = Awaited<ReturnType<typeof startSite>>

/**
 * A second device of the store, out of reach: it holds the ledger and the store's journals as they
 * were when it last synced, and records into its own journal. `comeBack()` links it to the site.
 */
async function tabletOutOfReach(site: Site) {
  const http = createServer()
  const wss = new WebSocketServer({ server: http })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const repo = new Repo({ network: [new WebSocketServerAdapter(wss as never)], peerId: 'tablet-2' as PeerId, sharePolicy: async () => true })
  onTestFinished(() => {
    repo.networkSubsystem.disconnect()
    wss.close()
    http.close()
  })
  const copy = <T>(handle: { url: string; doc(): unknown }) => repo.import<T>(A.save(handle.doc() as A.Doc<T>), { docId: parseAutomergeUrl(handle.url as never).documentId })
  const store = new RepoLedgerStore(repo, copy<LedgerDoc>(site.node.store.ledger.handle), new DurableGate())
  const book = new LedgerBook(store, { node: 'tablet-2', site: 'demo-store', knownSku: () => true, now: Date.now })
  for (const journal of site.node.store.journals()) book.indexJournal(store.addJournal(copy<JournalDoc>(journal.handle)))
  return {
    book,
    comeBack: () => site.node.connect(new WebSocketClientAdapter(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`, 200)),
  }
}

describe('the review and history pages in Chromium', () => {
  it('show two concurrent counts side by side, resolve them by keyboard, and record who decided', async () => {
    const site = await startSite(tempDir(), { api: { uiDir: UI_DIR } })
    expect((await api(site.url, 'POST', '/api/movements', { id: 'rcv-50', kind: 'receipt', sku: 'AMOX-500', quantity: 50, user: 'bongani', device: 'scanner-1' })).status).toBe(201)
    const tablet = await tabletOutOfReach(site)
    // Both count the same shelf without seeing each other's count.
    await tablet.book.record([{ id: 'count-tablet', kind: 'count', sku: 'AMOX-500', counted: 47, user: 'zanele' }])
    expect((await api(site.url, 'POST', '/api/movements', { id: 'count-store', kind: 'count', sku: 'AMOX-500', counted: 45, user: 'bongani', device: 'scanner-1' })).status).toBe(201)

    const context = await browser()
    const { page, foreign } = await openApp(context, site.url, 'amina')
    await page.getByRole('link', { name: 'Review' }).click()
    await expect.poll(() => page.getByText('Nothing to review').isVisible(), { timeout: 5_000 }).toBe(true)

    // The tablet comes back: the page shows the item by itself.
    tablet.comeBack()
    const item = page.getByRole('article', { name: /Two stock counts made at the same time/ })
    await expect.poll(() => item.isVisible(), { timeout: 15_000 }).toBe(true)
    const versions = item.getByRole('table', { name: 'Versions side by side' })
    const cells = async (label: string) =>
      (await versions.getByRole('row').filter({ has: page.getByRole('rowheader', { name: label, exact: true }) }).getByRole('cell').allTextContents()).map((t) => t.trim())
    expect(await cells('Counted by')).toEqual(['bongani', 'zanele'])
    expect(await cells('Counted')).toEqual(['45', '47'])
    expect(await cells('Correction applied')).toEqual(['-5', '-3'])
    // The scanner bongani used, through the store's node; the tablet recorded into its own journal.
    await expect.poll(() => cells('Device'), { timeout: 5_000 }).toEqual([`scanner-1 (via ${site.node.identity.node})`, 'tablet-2'])
    expect((await cells('When')).every((t) => /\d/.test(t))).toBe(true)
    expect(await item.textContent()).toContain('Counts made on two devices that did not see each other were both applied')
    expect((await api(site.url, 'GET', '/api/stock/AMOX-500')).body.onHand).toBe(42)
    await screenshot(page, 'review')

    // Keep the tablet's count, by keyboard only.
    await item.getByRole('radio').first().focus()
    await page.keyboard.press('ArrowDown')
    const keepTablet = item.getByRole('radio', { name: /Keep count 2: 47 counted by zanele/ })
    expect(await keepTablet.isChecked()).toBe(true)
    expect(await item.getByText('posts an adjustment of +5 AMOX-500 (on hand 42 → 47)').isVisible()).toBe(true)
    await page.keyboard.press('Tab')
    const reason = item.getByLabel('Reason for the adjustment')
    await expect.poll(() => reason.evaluate((el) => el === document.activeElement)).toBe(true)
    await page.keyboard.type('Corr')
    expect(await reason.inputValue()).toBe('correction')
    await page.keyboard.press('Tab')
    // No note: the node refuses, says why next to the note, and nothing chosen is lost.
    await page.keyboard.press('Enter')
    const note = item.getByLabel('Note: what you checked')
    await expect.poll(() => note.getAttribute('aria-invalid'), { timeout: 5_000 }).toBe('true')
    expect(await item.locator('.field-error').textContent()).toMatch(/note/)
    expect(await item.getByRole('radio', { name: /Keep count 2/ }).isChecked()).toBe(true)
    expect(await reason.inputValue()).toBe('correction')
    await expect.poll(() => note.evaluate((el) => el === document.activeElement)).toBe(true)
    await page.keyboard.type('Recounted the shelf with Zanele: 47')
    await page.keyboard.press('Enter')

    // Decided: the item leaves the list, the tablet's count stands.
    await expect.poll(() => item.count(), { timeout: 5_000 }).toBe(0)
    expect(await page.getByText('Nothing to review').isVisible()).toBe(true)
    // The node's events may re-read the queue before its answer to the decision arrives: then the confirmation follows.
    await expect.poll(() => page.locator('p[aria-live="polite"]').textContent(), { timeout: 5_000 }).toContain('Recounted the shelf with Zanele')
    expect((await api(site.url, 'GET', '/api/stock/AMOX-500')).body.onHand).toBe(47)
    expect((await api(site.url, 'GET', '/api/review')).body.items).toMatchObject([{ id: 'concurrent-counts:AMOX-500:first', status: 'resolved', decision: { by: 'amina' } }])

    // The ledger's history names who decided, on which device, and when; newest first.
    await page.getByRole('link', { name: 'History' }).click()
    expect(await page.getByLabel('Document').inputValue()).toBe('ledger')
    const decision = page.getByRole('row', { name: /Review decision/ })
    await expect.poll(() => decision.count(), { timeout: 5_000 }).toBe(1)
    const [when, who, device, what, ref] = (await decision.getByRole('cell').allTextContents()).map((t) => t.trim())
    expect([who, device, what, ref]).toEqual(['amina', site.node.identity.node, 'Review decision', 'concurrent-counts:AMOX-500:first'])
    expect(when).toMatch(/\d{1,2}:\d{2}/)
    const adjustment = page.getByRole('row', { name: /Adjustment/ })
    expect(await adjustment.textContent()).toMatch(/amina.*\+5 AMOX-500.*reason correction/)
    const rows = await page.getByRole('row').allTextContents()
    expect(rows.findIndex((r) => r.includes('Review decision') || r.includes('Adjustment'))).toBeLessThan(rows.findIndex((r) => r.includes('Stock count')))
    await screenshot(page, 'history')
    expect(foreign).toEqual([])
  }, 90_000)

  it('decide a delivery’s review item on its manifest and show it in that delivery’s history', async () => {
    const site = await startSite(tempDir(), { api: { uiDir: UI_DIR } })
    const plan = { id: 'mf-1', from: 'demo-hub', carrier: 'Kisumu Transport', stops: [{ id: 's1', site: 'demo-store', lines: [{ id: 'l1', sku: 'ORS-1L', shipped: 4 }] }], user: 'hub-clerk' }
    expect((await api(site.url, 'POST', '/api/manifests', plan)).status).toBe(201)
    expect((await api(site.url, 'POST', '/api/manifests/mf-1/depart', { user: 'driver-1', device: 'truck-laptop' })).status).toBe(200)
    const delivery = { user: 'bongani', device: 'tablet-1', receiver: 'Bongani', signature: 'Bongani', lines: [{ line: 'l1', received: 3, rejected: 1 }] }
    expect((await api(site.url, 'POST', '/api/manifests/mf-1/stops/s1/delivery', delivery)).status).toBe(201)

    const context = await browser()
    const { page, foreign } = await openApp(context, site.url, 'amina')
    await page.getByRole('link', { name: 'Review' }).click()
    const item = page.getByRole('article', { name: /Received differs from shipped/ })
    await expect.poll(() => item.isVisible(), { timeout: 10_000 }).toBe(true)
    const cells = async (label: string) =>
      (await item.getByRole('row').filter({ has: page.getByRole('rowheader', { name: label, exact: true }) }).getByRole('cell').allTextContents()).map((t) => t.trim())
    expect([await cells('Received'), await cells('Rejected'), await cells('Recorded by'), await cells('Device')]).toEqual([['3'], ['1'], ['bongani'], ['tablet-1']])

    await item.getByLabel('Note: what you checked').focus()
    await page.keyboard.type('One sachet torn: rejected at the door, the carrier took it back')
    await page.keyboard.press('Enter')
    await expect.poll(() => item.count(), { timeout: 5_000 }).toBe(0)
    expect((await api(site.url, 'GET', '/api/manifests/mf-1')).body.review).toMatchObject([{ id: 'delivery-discrepancy:mf-1:s1:l1', status: 'resolved', decision: { by: 'amina' } }])

    await page.getByRole('link', { name: 'History' }).click()
    await expect.poll(async () => (await page.getByLabel('Document').locator('option').allTextContents()).join('|'), { timeout: 5_000 }).toContain('Delivery mf-1')
    await page.getByLabel('Document').selectOption({ label: 'Delivery mf-1 (from demo-hub, delivered)' })
    const decision = page.getByRole('row', { name: /Review decision/ })
    await expect.poll(() => decision.count(), { timeout: 5_000 }).toBe(1)
    expect((await decision.getByRole('cell').allTextContents()).slice(1, 3)).toEqual(['amina', site.node.identity.node])
    const rows = await page.getByRole('row').allTextContents()
    expect(rows.map((r) => /Review decision|Stop delivered|Departed|Delivery planned/.exec(r)?.[0]).filter(Boolean)).toEqual(['Review decision', 'Stop delivered', 'Departed', 'Delivery planned'])
    expect(foreign).toEqual([])
  }, 60_000)
})
