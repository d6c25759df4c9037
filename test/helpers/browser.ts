/**
 * Real Chromium for the app's end-to-end tests (Debian's package through playwright-core;
 * ../shared/ENVIRONMENT.md): a fresh profile per test, closed when the test ends, and screenshots
 * saved under test-output/screenshots for a person to look at.
 */
import { existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { expect, onTestFinished } from 'vitest'
import { tempDir } from './tempDir.ts'

export const CHROMIUM = process.env.STOCKMESH_CHROMIUM ?? '/usr/bin/chromium'
/** The built UI the site nodes serve (npm test builds it first). */
export const UI_DIR = path.resolve(process.env.STOCKMESH_UI_DIR ?? 'out/ui')
const SHOTS = path.resolve('test-output/screenshots')

/** A Chromium profile of its own, closed after the test. */
export async function browser(): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run does)`)
  if (!existsSync(path.join(UI_DIR, 'index.html'))) throw new Error(`no built UI in ${UI_DIR}: npm run build:ui (npm test does)`)
  const context = await chromium.launchPersistentContext(tempDir('chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1200, height: 800 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  // Library mode waits for ever by default: an element that never comes must fail the test, saying which.
  context.setDefaultTimeout(15_000)
  onTestFinished(() => context.close())
  return context
}

/**
 * A page on the site node at `url`, signed in as `user` (the user id every change is recorded
 * under), with every request to another origin collected in `foreign` (the app must need none).
 */
export async function openApp(context: BrowserContext, url: string, user?: string): Promise<{ page: Page; foreign: string[] }> {
  const page = await context.newPage()
  const foreign: string[] = []
  page.on('request', (req) => {
    if (!req.url().startsWith(url)) foreign.push(req.url())
  })
  await page.goto(url)
  if (user !== undefined) {
    await page.getByLabel('User').fill(user)
  }
  await expect.poll(() => page.getByRole('status').textContent(), { timeout: 10_000 }).toMatch(/Offline|Syncing|Up to date/)
  // And the page hears its node (the badge says so until the event stream is up).
  await expect.poll(async () => (await page.locator('.sync').textContent()) ?? '', { timeout: 10_000 }).not.toContain('cannot reach its site node')
  return { page, foreign }
}

/** Saves what the person sees as test-output/screenshots/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true })
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true })
  // A full-page screenshot resizes the view for a moment: Chromium may then move the page between
  // the next click's pointerdown and pointerup. One real scroll settles it.
  await page.evaluate(() => window.scrollTo(0, 0))
}
