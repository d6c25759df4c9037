/**
 * The page in a real browser (Debian's Chromium through playwright-core; ../shared/ENVIRONMENT.md)
 * against a real site node: the stock a storekeeper sees changes by itself when a movement is
 * recorded elsewhere (a scanner, another device), and says whether it is live. A screenshot of
 * what the person sees is saved under test-output/.
 */
import { existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { chromium, type BrowserContext } from 'playwright-core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { api } from '../helpers/api.ts'
import { startSite } from '../helpers/site.ts'
import { tempDir } from '../helpers/tempDir.ts'

const CHROMIUM = process.env.STOCKMESH_CHROMIUM ?? '/usr/bin/chromium'
const UI_DIR = path.resolve('out/ui')
const SHOTS = path.resolve('test-output/screenshots')

async function browser(): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run does)`)
  if (!existsSync(path.join(UI_DIR, 'index.html'))) throw new Error(`no built UI in ${UI_DIR}: npm run build:ui (npm test does)`)
  const context = await chromium.launchPersistentContext(tempDir('chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  onTestFinished(() => context.close())
  return context
}

describe('the stock page in Chromium', () => {
  it('shows a movement recorded elsewhere without a reload, and says it is live', async () => {
    const site = await startSite(tempDir(), { api: { uiDir: UI_DIR } })
    const context = await browser()
    const page = await context.newPage()
    // Nothing from the internet: every request the page makes goes to the site node.
    const foreign: string[] = []
    page.on('request', (req) => {
      if (!req.url().startsWith(site.url)) foreign.push(req.url())
    })
    await page.goto(site.url)
    const row = page.getByRole('row', { name: /AMOX-500/ })
    await expect.poll(async () => (await row.textContent()) ?? '', { timeout: 10_000 }).toContain('0')
    await expect.poll(async () => (await page.getByRole('status').textContent()) ?? '', { timeout: 10_000 }).toContain('live')

    // A scanner posts to the node: the page shows it by itself.
    expect((await api(site.url, 'POST', '/api/movements', { id: 'e2e-1', kind: 'receipt', sku: 'AMOX-500', quantity: 37, user: 'amina' })).status).toBe(201)
    await expect.poll(async () => (await row.locator('td').nth(2).textContent())?.trim(), { timeout: 2_000 }).toBe('37')
    mkdirSync(SHOTS, { recursive: true })
    await page.screenshot({ path: path.join(SHOTS, 'stock-live.png'), fullPage: true })
    expect(foreign).toEqual([])
  }, 60_000)
})
