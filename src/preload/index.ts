/**
 * Preload of the app window (sandboxed, context-isolated). The UI reads and writes through the
 * site node's HTTP API, so the bridge carries no IPC: only what the page cannot learn by itself.
 */
import { contextBridge } from 'electron'
import { version } from '../../package.json'

/** What the page sees as `window.stockmesh` inside the desktop app. */
export interface StockmeshBridge {
  /** Version of the desktop app. */
  readonly version: string
}

const bridge: StockmeshBridge = Object.freeze({ version })

contextBridge.exposeInMainWorld('stockmesh', bridge)
