/**
 * The site node's local HTTP API, for scanners, scripts and the UI. JSON in and out; every refusal
 * is a JSON `{ error, field? }` with the right status, and a refused request changes nothing.
 *
 * The server is bounded against bad clients: at most `maxConnections` sockets at once (each holds
 * a file descriptor the node also needs to write its documents), and every stage of a connection
 * has a deadline (see {@link ApiOptions}). It can listen before its site node is open
 * ({@link listenApi}), so a port problem shows before the data folder is touched.
 */
import { EVENTS_PATH, streamEvents } from './events.ts'
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { bearerMatches } from '../../network/bearer.ts'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import pino, { type Logger } from 'pino'
import { InputError, ReadOnlyDocumentError, RuleError } from '../../schema/errors.ts'
import { ConflictError, NotFoundError } from '../../schema/errors.ts'
import type { SiteNode } from '../siteNode.ts'
import { HttpError, readJson } from './body.ts'
import { movementView, routes, type Route } from './routes.ts'
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
  /**
   * Most connections open at once; one more is closed as soon as it is accepted. Each holds a
   * file descriptor, and a node out of descriptors cannot write its documents. Default 256.
   */
  maxConnections?: number
  /** Time a client has to send the request line and headers, ms. Default 20 000. */
  headersTimeout?: number
  /** Time a client has to send the whole request, body included, ms; a larger `headersTimeout` is cut to it. Default 30 000. */
  requestTimeout?: number
  /** How long a kept-alive connection may wait for its next request, ms (Node adds a second of grace). Default 5 000. */
  keepAliveTimeout?: number
  /** `GET /api/events`: a heartbeat comment this often, ms (below `idleTimeout`). Default 5 000. */
  eventsHeartbeatMs?: number
  /**
   * A connection on which nothing moves for this long is closed, ms: one that never sends
   * anything, or whose client stopped reading the answer. A request being answered is not cut
   * while the node works on it. Default 10 000.
   */
  idleTimeout?: number
  /** Where the server logs until a site node is attached (then the node's log). Silent by default. */
  logger?: Logger
}

export interface RunningApi {
  server: Server
  url: string
  close(): Promise<void>
}

/** The defaults of the limits in {@link ApiOptions}. */
export const API_LIMITS = {
  bodyLimit: 1024 * 1024,
  maxConnections: 256,
  headersTimeout: 20_000,
  requestTimeout: 30_000,
  keepAliveTimeout: 5_000,
  idleTimeout: 10_000,
} as const

/** Node's own test for an `Expect: 100-continue` request (the one that emits 'checkContinue'). */
const CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i
const LOOPBACK_HOST = /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/i

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  // The client may have gone while the answer was prepared: nothing to write to.
  if (res.destroyed || res.writableEnded) return
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers })
  res.end(text)
}

/**
 * A JSON refusal written straight to a socket, for requests Node refuses before there is a
 * request object (bad syntax, headers too large, too slow). The connection is closed after it.
 */
function refuseOnSocket(socket: Duplex, status: number, error: string): void {
  const text = JSON.stringify({ error })
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${text}`,
  )
  // end() only half-closes; a client that never closes its side must not keep the socket.
  socket.once('finish', () => socket.destroy())
}

function decodeParam(value: string, pathname: string): string {
  try {
    return decodeURIComponent(value)
  } catch {
    throw new HttpError(400, `the path is not valid percent-encoding: ${pathname.slice(0, 200)}`, 'path')
  }
}

function match(method: string, pathname: string): { route: Route; params: Record<string, string> } | 'wrong-method' | undefined {
  let pathMatched = false
  for (const route of routes) {
    const m = route.pattern.exec(pathname)
    if (!m) continue
    pathMatched = true
    if (route.method !== method) continue
    const params = Object.fromEntries(Object.entries(m.groups ?? {}).map(([k, v]) => [k, decodeParam(v, pathname)]))
    return { route, params }
  }
  return pathMatched ? 'wrong-method' : undefined
}

/**
 * The request target as a URL, and the host it is addressed to. A target in absolute form
 * (`GET http://host/path`) names its host itself, and RFC 9112 §3.2.2 says that host wins over
 * the Host header, so the loopback check must look at it. An origin-form target is always a path:
 * `//evil.example/api` is the path `//evil.example/api`, not a URL with that host.
 */
function requestTarget(req: IncomingMessage): { url: URL; host: string } | undefined {
  const target = req.url ?? '/'
  try {
    if (target.startsWith('/')) return { url: new URL('http://localhost' + target), host: req.headers.host ?? '' }
    const url = new URL(target)
    return url.protocol === 'http:' || url.protocol === 'https:' ? { url, host: url.host } : undefined
  } catch {
    return undefined
  }
}

function countHeader(req: IncomingMessage, name: string): number {
  let count = 0
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === name) count++
  return count
}

/** The status and message for an error Node's HTTP parser or its deadlines raised on a connection. */
function clientErrorAnswer(error: NodeJS.ErrnoException & { reason?: unknown }, limits: { headersTimeout: number; requestTimeout: number }): [number, string] {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'the request line and headers are too large']
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return [413, 'the chunk extensions of the body are too large']
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, `the request did not arrive in time (headers within ${limits.headersTimeout} ms, the whole request within ${limits.requestTimeout} ms)`]
    case 'HPE_INVALID_METHOD':
      return [501, 'the request method is not supported']
    default:
      return [400, `the request is not valid HTTP${typeof error.reason === 'string' ? ` (${error.reason})` : ''}`]
  }
}

/** Turns a failed listen into a message an operator can act on. */
function listenError(error: NodeJS.ErrnoException, host: string, port: number): Error {
  switch (error.code) {
    case 'EADDRINUSE':
      return new Error(`port ${port} on ${host} is in use: another program (or another site node) listens there; stop it or choose another port`, { cause: error })
    case 'EACCES':
      return new Error(`port ${port} on ${host} is not allowed for this user (ports below 1024 usually need privileges); choose another port`, { cause: error })
    case 'EADDRNOTAVAIL':
      return new Error(`cannot listen on ${host}: it is not an address of this machine`, { cause: error })
    default:
      return new Error(`cannot listen on ${host} port ${port}: ${error.message}`, { cause: error })
  }
}

/**
 * Binds host:port (refusing a non-loopback host without a token first) and answers 503
 * `{ error: 'the site is starting' }` on /api until `attach()`; the UI pages are served from the
 * start. Rejects, with a message naming the port, when the port cannot be had.
 */
export async function listenApi(options: ApiOptions): Promise<RunningApi & { attach(node: SiteNode): void }> {
  const limit = options.bodyLimit ?? API_LIMITS.bodyLimit
  const loopback = ['127.0.0.1', '::1', 'localhost'].includes(options.host)
  if (!loopback && !options.token) throw new Error(`refusing to listen on ${options.host} without an API token: only loopback is open without one (--token)`)
  const requestTimeout = options.requestTimeout ?? API_LIMITS.requestTimeout
  // Node refuses headersTimeout > requestTimeout; a whole request cannot take less than its headers anyway.
  const headersTimeout = Math.min(options.headersTimeout ?? API_LIMITS.headersTimeout, requestTimeout)
  const keepAliveTimeout = options.keepAliveTimeout ?? API_LIMITS.keepAliveTimeout
  const idleTimeout = options.idleTimeout ?? API_LIMITS.idleTimeout

  let node: SiteNode | undefined
  const quiet = pino({ level: 'silent' })
  const log = (): Logger => node?.log ?? options.logger ?? quiet

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    // A client that sent `Expect: 100-continue` holds its body back until told to go on. An
    // answer before that closes the connection: whether the body follows anyway is up to the client.
    const expectsContinue = CONTINUE.test(req.headers.expect ?? '')
    if (expectsContinue) res.setHeader('connection', 'close')
    // RFC 9112 §3.2: an HTTP/1.1 request without a Host, or with several, is refused. Node keeps
    // the first of several, so which one a proxy or the loopback check below sees is ambiguous.
    // (Node's own check for a missing Host is off, see createServer, so that this answer is JSON.)
    const hosts = countHeader(req, 'host')
    if (hosts > 1) return sendJson(res, 400, { error: 'the request has more than one Host header' }, { connection: 'close' })
    if (hosts === 0 && req.httpVersion === '1.1') return sendJson(res, 400, { error: 'the request has no Host header' }, { connection: 'close' })
    const target = requestTarget(req)
    if (!target) return sendJson(res, 400, { error: 'the request target is not a path or an http URL' }, { connection: 'close' })
    // On loopback, only a Host naming loopback: a web page whose domain an attacker points at
    // 127.0.0.1 (DNS rebinding) must not reach the API from the user's browser.
    if (loopback && !LOOPBACK_HOST.test(target.host)) {
      req.resume()
      return sendJson(res, 421, { error: 'this site node answers only requests addressed to localhost' })
    }
    const { url } = target
    if (!url.pathname.startsWith('/api/')) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: `${req.method} is not allowed here` })
      return sendStatic(res, url.pathname, options.uiDir)
    }
    if (options.token && !bearerMatches(req.headers.authorization, options.token)) {
      req.resume()
      return sendJson(res, 401, { error: 'missing or wrong API token: send Authorization: Bearer <token>' })
    }
    if (!node) {
      req.resume()
      return sendJson(res, 503, { error: 'the site is starting' }, { 'retry-after': '1' })
    }
    if (url.pathname === EVENTS_PATH) {
      if (req.method !== 'GET') {
        req.resume()
        return sendJson(res, 405, { error: `${req.method} is not allowed on ${url.pathname}` }, { allow: 'GET' })
      }
      // The event stream stays open: the idle timeout is kept off by its heartbeat.
      return streamEvents(node, res, movementView, options.eventsHeartbeatMs ?? Math.min(5_000, Math.floor(idleTimeout / 2)))
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
    const ready = () => {
      if (!expectsContinue) return
      res.removeHeader('connection')
      res.writeContinue()
    }
    const body = found.route.method === 'POST' ? await readJson(req, limit, ready) : undefined
    const { status, body: out } = await found.route.handle({ node, params: found.params, query: url.searchParams, body })
    sendJson(res, status, out)
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    // The idle timeout is for sockets nobody uses. While the request is received,
    // requestTimeout bounds it; while the node works on it (a posting waits for fsync), the
    // client waits in silence and must not be cut. Once the answer has begun, a client that
    // stops reading it is cut.
    res.on('timeout', () => {
      if (res.headersSent) res.destroy()
    })
    handle(req, res)
      .catch((error: unknown) => {
        // The client left before its request was complete (an upload aborted, a deadline
        // passed): an everyday event, and there is no one left to answer.
        if (!req.complete && (req.destroyed || res.destroyed)) {
          log().debug({ url: req.url, method: req.method }, 'client closed the connection before the request was complete')
          return
        }
        const known =
          error instanceof HttpError || error instanceof InputError || error instanceof RuleError || error instanceof ReadOnlyDocumentError || error instanceof NotFoundError || error instanceof ConflictError
        if (res.destroyed) {
          if (known) log().debug({ url: req.url, method: req.method }, 'client closed the connection before the answer was sent')
          else log().error({ err: error, url: req.url }, 'request failed (the client had already gone)')
          return
        }
        if (res.headersSent) return res.destroy()
        if (error instanceof HttpError) return sendJson(res, error.status, { error: error.message, ...(error.field ? { field: error.field } : {}) })
        if (error instanceof InputError) return sendJson(res, 400, { error: error.message, field: error.field })
        if (error instanceof RuleError) return sendJson(res, 422, { error: error.message, code: error.code, ...(error.field ? { field: error.field } : {}) })
        if (error instanceof ReadOnlyDocumentError) return sendJson(res, 409, { error: error.message })
        if (error instanceof NotFoundError) return sendJson(res, 404, { error: error.message })
        if (error instanceof ConflictError) return sendJson(res, 409, { error: error.message, ...(error.field ? { field: error.field } : {}) })
        log().error({ err: error, url: req.url }, 'request failed')
        sendJson(res, 500, { error: 'internal error; see the site log' })
      })
  }

  const server = createServer(
    {
      headersTimeout,
      requestTimeout,
      keepAliveTimeout,
      requireHostHeader: false,
      // How often Node looks for requests past headersTimeout / requestTimeout; its 30 s default
      // would let a short deadline run far over.
      connectionsCheckingInterval: Math.max(25, Math.min(5_000, Math.floor(Math.min(...[headersTimeout, requestTimeout].filter((t) => t > 0)) / 4))),
    },
    onRequest,
  )
  // Expect: 100-continue: the client waits for a go-ahead before it sends its body. Give it only
  // when the body will be read (readJson's `ready`), so that an upload refused on its headers
  // (too large, not JSON, wrong token) is never sent. Node would otherwise say yes to every one.
  server.on('checkContinue', onRequest)
  server.timeout = idleTimeout
  server.maxConnections = options.maxConnections ?? API_LIMITS.maxConnections

  // Bad syntax, headers over the limit, a deadline passed: Node's own answers have no body; give
  // the JSON every other refusal has. A reset connection has no one to answer.
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage
    if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy()
      return
    }
    const [status, message] = clientErrorAnswer(error, { headersTimeout, requestTimeout })
    log().debug({ code: error.code, status }, `refused a request: ${message}`)
    refuseOnSocket(socket, status, message)
  })
  // CONNECT is for proxies; without this listener Node drops the socket without a word.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => refuseOnSocket(socket, 405, 'CONNECT is not allowed here'))

  // Connections over the cap are closed by Node as they arrive; say so in the log, once per
  // burst rather than once per connection, so that a flood does not also flood the log.
  let lastDropWarning = 0
  let droppedSince = 0
  server.on('drop', () => {
    droppedSince++
    const now = Date.now()
    if (now - lastDropWarning < 10_000) return
    log().warn({ maxConnections: server.maxConnections, dropped: droppedSince }, 'connection limit reached: new connections are closed until others end')
    lastDropWarning = now
    droppedSince = 0
  })

  await new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => reject(listenError(error, options.host, options.port))
    server.once('error', failed)
    server.listen(options.port, options.host, () => {
      server.off('error', failed)
      resolve()
    })
  })
  // After listening, an 'error' is a failed accept (EMFILE when the process is out of file
  // descriptors); Node keeps listening, and without a listener the event would end the process.
  server.on('error', (error: NodeJS.ErrnoException) => log().error({ err: error }, 'the API could not accept a connection'))

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
    attach(siteNode: SiteNode) {
      if (node && node !== siteNode) throw new Error('this API already serves another site node')
      node = siteNode
    },
  }
}

/** Starts the API on `host:port` for an open site node and returns once it listens. */
export async function startApi(node: SiteNode, options: ApiOptions): Promise<RunningApi> {
  const api = await listenApi(options)
  api.attach(node)
  return api
}
