/**
 * What the desktop app runs, as plain Node so that tests run it without Electron: the site node on
 * a data folder and its API plus UI on a free loopback port.
 */
import pino, { type Logger } from 'pino'
import { demoCatalog, DEMO_SITE } from '../node/demo.ts'
import { startApi } from '../node/http/server.ts'
import { SiteNode } from '../node/siteNode.ts'
import type { LanOptions } from '../peer-sync/lanMesh.ts'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { DEVICE_FILES } from '../hub/deviceEnrolment.ts'
import { readEnrolmentFile } from '../hub/enrol.ts'

export interface StartSiteOptions {
  /** Data folder of this site node. */
  dataDir: string
  /** Folder of the built UI served at `/`. */
  uiDir: string
  /** Site id; the demo site, provisioned with the demo catalog, when left out (and no enrolment). */
  site?: string
  /**
   * An enrolment file (stockmesh enrol) for the first start of an enrolled device: the site and its
   * documents come from it. A folder enrolled before syncs through its relay without it.
   */
  enrolment?: string
  logger?: Logger
  /** An enrolled device's LAN mesh (src/peer-sync): on by default; false turns it off. */
  lan?: LanOptions | false
}

export interface RunningSite {
  /** Where the UI and the API answer, e.g. `http://127.0.0.1:41234`. */
  url: string
  site: string
  node: string
  /** Stops the API, then flushes and closes the node. Safe to call more than once. */
  close(): Promise<void>
}

/** Opens the site node in `dataDir` and serves it on 127.0.0.1 at a port the system picks. */
export async function startSite(options: StartSiteOptions): Promise<RunningSite> {
  // The enrolment is for the folder's first start; a folder enrolled already keeps its own.
  const firstStart = options.enrolment !== undefined && !existsSync(path.join(options.dataDir, DEVICE_FILES.enrolment))
  const enrolment = firstStart ? (await readEnrolmentFile(options.enrolment!)).enrolment : undefined
  const site = options.site ?? (options.enrolment !== undefined ? undefined : DEMO_SITE)
  const node = await SiteNode.open({
    dataDir: options.dataDir,
    ...(site !== undefined ? { site } : {}),
    ...(enrolment ? { enrolment } : {}),
    logger: options.logger ?? pino({ name: 'stockmesh' }),
    ...(site === DEMO_SITE ? { provisionCatalog: demoCatalog } : {}),
  })
  // An enrolled device syncs through its relay (offline until it is reachable; GET /api/sync says),
  // and with the nodes of its deployment it finds on the LAN.
  node.connectRelay()
  if (node.enrolment && options.lan !== false) {
    await node.startLan(options.lan ?? {}).catch(async (error: unknown) => {
      await node.close()
      throw error
    })
  }
  // Loopback only: the API has no token here, and only this machine's window needs it.
  const api = await startApi(node, { host: '127.0.0.1', port: 0, uiDir: options.uiDir }).catch(async (error: unknown) => {
    await node.close()
    throw error
  })
  let closing: Promise<void> | undefined
  return {
    url: api.url,
    site: node.identity.site,
    node: node.identity.node,
    close: () =>
      (closing ??= (async () => {
        await api.close()
        await node.close()
      })()),
  }
}
