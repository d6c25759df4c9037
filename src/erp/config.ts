/**
 * `stockmesh relay --erp URL`: which parent ERP the hub forwards to.
 *
 * - `tryton://USER@HOST:PORT/DATABASE` — Tryton 6.0 over JSON-RPC at http://HOST:PORT (`trytons://`:
 *   https, for a Tryton across a network: the password and session travel in every request) (the
 *   password comes from the environment, STOCKMESH_ERP_PASSWORD, or `--erp-password-file`: never
 *   on the command line, where every user of the machine could read it);
 * - `openlmis+http://HOST:PORT[/PATH]?program=ID&source=ID&destination=ID&credit=ID&debit=ID` (or
 *   `openlmis+https://…`) — OpenLMIS-style stock events (src/erp/openlmis.ts): the program, the
 *   valid source of receipts, destination of issues, and the reasons of positive and negative
 *   adjustments, as the OpenLMIS instance names them; a bearer token from STOCKMESH_ERP_TOKEN.
 */
import { readFileSync } from 'node:fs'
import type { ErpConnector } from './connector.ts'
import { OpenLmisConnector } from './openlmis.ts'
import { TrytonConnector } from './tryton.ts'

export function connectorOf(url: string, secrets: { password?: string; passwordFile?: string; token?: string }): ErpConnector {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new Error(`--erp ${JSON.stringify(url)} is not a URL: give tryton://USER@HOST:PORT/DATABASE or openlmis+http://HOST:PORT?program=…`)
  }
  if (parsed.protocol === 'tryton:' || parsed.protocol === 'trytons:') {
    const database = decodeURIComponent(parsed.pathname.replace(/^\/+|\/+$/g, ''))
    if (!parsed.username || !parsed.hostname || !database) throw new Error(`--erp ${url}: give tryton://USER@HOST:PORT/DATABASE (the user, the server and the database)`)
    if (parsed.password) throw new Error('--erp: no password in the URL (it would be visible to every user of the machine): set STOCKMESH_ERP_PASSWORD or give --erp-password-file')
    const password = secrets.passwordFile ? readFileSync(secrets.passwordFile, 'utf8').replace(/\r?\n$/, '') : secrets.password
    if (!password) throw new Error('--erp tryton://…: the password is missing: set STOCKMESH_ERP_PASSWORD or give --erp-password-file')
    return new TrytonConnector({ url: `${parsed.protocol === 'trytons:' ? 'https' : 'http'}://${parsed.host}`, database, user: decodeURIComponent(parsed.username), password })
  }
  if (parsed.protocol === 'openlmis+http:' || parsed.protocol === 'openlmis+https:') {
    const ids = Object.fromEntries(['program', 'source', 'destination', 'credit', 'debit'].map((k) => [k, parsed.searchParams.get(k) ?? '']))
    const missing = Object.entries(ids).filter(([, v]) => !v).map(([k]) => k)
    if (missing.length > 0) throw new Error(`--erp ${url}: give ${missing.join(', ')} (the OpenLMIS ids: ?program=…&source=…&destination=…&credit=…&debit=…)`)
    return new OpenLmisConnector({ url: `${parsed.protocol.slice('openlmis+'.length)}//${parsed.host}${parsed.pathname.replace(/\/+$/, '')}`, ...(secrets.token ? { token: secrets.token } : {}), program: ids.program!, source: ids.source!, destination: ids.destination!, credit: ids.credit!, debit: ids.debit! })
  }
  throw new Error(`--erp ${url}: unknown ERP ${parsed.protocol.replace(/:$/, '')}: give tryton://USER@HOST:PORT/DATABASE or openlmis+http://HOST:PORT?program=…`)
}
