/**
 * `stockmesh relay --erp URL`: which parent ERP the hub forwards to.
 *
 * - `tryton://USER@HOST:PORT/DATABASE` — Tryton 6.0 over JSON-RPC at http://HOST:PORT (the
 *   password comes from the environment, STOCKMESH_ERP_PASSWORD, or `--erp-password-file`: never
 *   on the command line, where every user of the machine could read it);
 *
 * (An OpenLMIS-style stock events connector is not built yet.)
 */
import { readFileSync } from 'node:fs'
import type { ErpConnector } from './connector.ts'
import { TrytonConnector } from './tryton.ts'

export function connectorOf(url: string, secrets: { password?: string; passwordFile?: string }): ErpConnector {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new Error(`--erp ${JSON.stringify(url)} is not a URL: give tryton://USER@HOST:PORT/DATABASE`)
  }
  if (parsed.protocol === 'tryton:') {
    const database = decodeURIComponent(parsed.pathname.replace(/^\/+|\/+$/g, ''))
    if (!parsed.username || !parsed.hostname || !database) throw new Error(`--erp ${url}: give tryton://USER@HOST:PORT/DATABASE (the user, the server and the database)`)
    if (parsed.password) throw new Error('--erp: no password in the URL (it would be visible to every user of the machine): set STOCKMESH_ERP_PASSWORD or give --erp-password-file')
    const password = secrets.passwordFile ? readFileSync(secrets.passwordFile, 'utf8').replace(/\r?\n$/, '') : secrets.password
    if (!password) throw new Error('--erp tryton://…: the password is missing: set STOCKMESH_ERP_PASSWORD or give --erp-password-file')
    return new TrytonConnector({ url: `http://${parsed.host}`, database, user: decodeURIComponent(parsed.username), password })
  }
  throw new Error(`--erp ${url}: unknown ERP ${parsed.protocol.replace(/:$/, '')}: give tryton://USER@HOST:PORT/DATABASE`)
}
