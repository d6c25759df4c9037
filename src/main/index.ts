/**
 * Electron main process: a thin window around `startSite`, which holds everything that is not
 * Electron (and is tested without it). The window shows the site node's own page over loopback,
 * so the desktop app and a browser on the same machine see the same UI and API.
 */
import path from 'node:path'
import { app, BrowserWindow, dialog } from 'electron'
import pino from 'pino'
import { DEMO_SITE } from '../node/demo.ts'
import { SiteId } from '../schema/ids.ts'
import { startSite, type RunningSite } from './startSite.ts'
import { readEnrolmentFile } from '../hub/enrol.ts'

const logger = pino({ name: 'stockmesh-desktop' })
// automerge-repo 2.5.6 turns a failed storage save into an unhandled rejection
// (https://github.com/automerge/automerge-repo/pull/676): log it loudly, as the CLI does.
process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'))

// Built layout (electron-vite): out/main/index.js, out/preload/index.cjs, out/renderer/index.html.
const UI_DIR = path.join(import.meta.dirname, '../renderer')
const PRELOAD = path.join(import.meta.dirname, '../preload/index.cjs')

let running: Promise<RunningSite> | undefined
let stopping = false
let stopped = false

function createWindow(url: string): BrowserWindow {
  const window = new BrowserWindow({
    width: 1100,
    height: 760,
    title: 'stockmesh',
    show: false,
    webPreferences: { contextIsolation: true, nodeIntegration: false, sandbox: true, preload: PRELOAD },
  })
  // The window only ever shows the site node: no pop-ups, no navigation to another origin.
  const origin = new URL(url).origin
  window.webContents.setWindowOpenHandler(() => ({ action: 'deny' }))
  window.webContents.on('will-navigate', (event) => {
    if (new URL(event.url).origin !== origin) event.preventDefault()
  })
  window.once('ready-to-show', () => window.show())
  void window.loadURL(url)
  return window
}

async function start(): Promise<RunningSite> {
  // STOCKMESH_ENROL: an enrolment file (first start of an enrolled device); its site names the folder.
  const enrolFile = process.env.STOCKMESH_ENROL || undefined
  const enrolled = enrolFile ? (await readEnrolmentFile(enrolFile)).claims.site : undefined
  const parsed = SiteId.safeParse(enrolled ?? (process.env.STOCKMESH_SITE || DEMO_SITE))
  if (!parsed.success) throw new Error(`STOCKMESH_SITE: ${parsed.error.issues[0]?.message}`)
  const site = parsed.data
  // encodeURIComponent: a site id may hold ':', which is not a file name character everywhere.
  const dataDir = path.join(app.getPath('userData'), 'sites', encodeURIComponent(site))
  const started = await startSite({ dataDir, uiDir: UI_DIR, logger, ...(enrolFile ? { enrolment: enrolFile } : { site }) })
  logger.info({ site: started.site, node: started.node, url: started.url, dataDir }, 'desktop site ready')
  return started
}

// One app instance per user: two would open the same data folder twice.
if (!app.requestSingleInstanceLock()) {
  app.quit()
} else {
  app.on('second-instance', () => {
    const [window] = BrowserWindow.getAllWindows()
    if (window?.isMinimized()) window.restore()
    window?.focus()
  })

  void app.whenReady().then(async () => {
    running = start()
    try {
      const site = await running
      createWindow(site.url)
      app.on('activate', () => {
        if (BrowserWindow.getAllWindows().length === 0) createWindow(site.url)
      })
    } catch (error) {
      logger.error({ err: error }, 'the site node could not start')
      dialog.showErrorBox('stockmesh could not start', error instanceof Error ? error.message : String(error))
      app.exit(1)
    }
  })

  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit()
  })

  // Quitting waits for the API to stop and the node to flush its documents to disk.
  app.on('before-quit', (event) => {
    if (stopped || !running) return
    event.preventDefault()
    if (stopping) return
    stopping = true
    running
      .then((site) => site.close())
      .catch((error: unknown) => logger.error({ err: error }, 'closing the site node failed'))
      .finally(() => {
        stopped = true
        app.quit()
      })
  })
}
