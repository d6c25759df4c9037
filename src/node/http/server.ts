/**
 * The site node's local HTTP API, for scanners, scripts and the UI. JSON in and out; every refusal
 * is a JSON `{ error, field? }` with the right status, and a refused request changes nothing.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { timingSafeEqual } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { InputError, ReadOnlyDocumentError, RuleError } from '../../schema/errors.ts'
import type { SiteNode } from '../siteNode.ts'
import { HttpError, readJson } from './body.ts'
import { routes, type Route } from './routes.ts'
import { sendStatic } from './static.ts'

export interface ApiOptions {
  host: string
  port: number
  /** When set, every /api request must carry `Authorization: Bearer <token>`. */
  token?: string
  /** Largest accepted body, bytes. */
  bodyLimit?: number
  /** Folder of the built UI; a placeholder page is served without it. */
  uiDir?: string
}

export interface RunningApi {
  server: Server
  url: string
  close(): Promise<void>
}

const LOOPBACK_HOST = /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/i

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
  res.end(text)
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header?.startsWith('Bearer ') ? header.slice(7) : '')
  const wanted = Buffer.from(token)
  return given.length === wanted.length && timingSafeEqual(given, wanted)
}

function match(method: string, pathname: string): { route: Route; params: Record<string, string> } | 'wrong-method' | undefined {
  let pathMatched = false
  for (const route of routes) {
    const m = route.pattern.exec(pathname)
    if (!m) continue
    pathMatched = true
    if (route.method !== method) continue
    const params = Object.fromEntries(Object.entries(m.groups ?? {}).map(([k, v]) => [k, decodeURIComponent(v)]))
    return { route, params }
  }
  return pathMatched ? 'wrong-method' : undefined
}

/** Starts the API on `host:port` and returns once it listens. */
export async function startApi(node: SiteNode, options: ApiOptions): Promise<RunningApi> {
  const limit = options.bodyLimit ?? 1024 * 1024
  const loopback = ['127.0.0.1', '::1', 'localhost'].includes(options.host)
  if (!loopback && !options.token) throw new Error(`refusing to listen on ${options.host} without an API token: only loopback is open without one (--token)`)

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    // On loopback, only a Host naming loopback: a web page whose domain an attacker points at
    // 127.0.0.1 (DNS rebinding) must not reach the API from the user's browser.
    if (loopback && !LOOPBACK_HOST.test(req.headers.host ?? '')) {
      req.resume()
      return sendJson(res, 421, { error: 'this site node answers only requests addressed to localhost' })
    }
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (!url.pathname.startsWith('/api/')) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: `${req.method} is not allowed here` })
      return sendStatic(res, url.pathname, options.uiDir)
    }
    if (options.token && !tokenMatches(req.headers.authorization, options.token)) {
      req.resume()
      return sendJson(res, 401, { error: 'missing or wrong API token: send Authorization: Bearer <token>' })
    }
    const found = match(req.method ?? 'GET', url.pathname)
    if (found === undefined) {
      req.resume()
      return sendJson(res, 404, { error: `no such endpoint: ${req.method} ${url.pathname}` })
    }
    if (found === 'wrong-method') {
      req.resume()
      return sendJson(res, 405, { error: `${req.method} is not allowed on ${url.pathname}` })
    }
    const body = found.route.method === 'POST' ? await readJson(req, limit) : undefined
    const { status, body: out } = await found.route.handle({ node, params: found.params, query: url.searchParams, body })
    sendJson(res, status, out)
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) return res.destroy()
      if (error instanceof HttpError) return sendJson(res, error.status, { error: error.message })
      if (error instanceof InputError) return sendJson(res, 400, { error: error.message, field: error.field })
      if (error instanceof RuleError) return sendJson(res, 422, { error: error.message, code: error.code, ...(error.field ? { field: error.field } : {}) })
      if (error instanceof ReadOnlyDocumentError) return sendJson(res, 409, { error: error.message })
      node.log.error({ err: error, url: req.url }, 'request failed')
      sendJson(res, 500, { error: 'internal error; see the site log' })
    })
  })
  server.requestTimeout = 30_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => resolve())
  })
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return {
    server,
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
