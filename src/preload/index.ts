/**
 * Preload of the app window (sandboxed, context-isolated). The UI reads and writes through the
 * site node's HTTP API, so the bridge carries no IPC: only what the page cannot learn by itself.
 */
import { contextBridge } from 'electron'

/** The app version from package.json, written in by the build (electron.vite.config.ts `define`). */
declare const __STOCKMESH_VERSION__: string

/** What the page sees as `window.stockmesh` inside the desktop app. */
export interface StockmeshBridge {
  /** Version of the desktop app. */
  readonly version: string
}

const bridge: StockmeshBridge = Object.freeze({ version: __STOCKMESH_VERSION__ })

contextBridge.exposeInMainWorld('stockmesh', bridge)
