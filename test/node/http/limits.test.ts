/**
 * A site node's HTTP API against slow, silent, greedy and vanishing clients, over real sockets:
 * each is cut off at the configured limit, and the node keeps serving everyone else. Limits are
 * set small here; the bounds checked are generous, so a loaded machine does not fail them.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { demoCatalog } from '../../../src/node/demo.ts'
import { listenApi, type ApiOptions } from '../../../src/node/http/server.ts'
import { SiteNode } from '../../../src/node/siteNode.ts'
import { api } from '../../helpers/api.ts'
import { startSite } from '../../helpers/site.ts'
import { tempDir } from '../../helpers/tempDir.ts'
import { capturedLogger, connect, eventually, firstResponse, request, untilClosed } from './rawHttp.ts'

async function recorded(url: string): Promise<number> {
  return (await api(url, 'GET', '/api/movements')).body.total
}

async function healthy(url: string): Promise<boolean> {
  return api(url, 'GET', '/api/health').then(
    (res) => res.status === 200,
    () => false,
  )
}

describe('slow and silent clients', () => {
  it('disconnects a client that connects and sends nothing after the idle timeout', async () => {
    const { url } = await startSite(tempDir(), { api: { idleTimeout: 300, headersTimeout: 5_000, requestTimeout: 5_000 } })
    const socket = await connect(url)
    const since = performance.now()
    const result = await untilClosed(socket, 10_000, since)
    expect(result.closed).toBe(true)
    expect(result.elapsed).toBeGreaterThanOrEqual(250)
    expect(result.elapsed).toBeLessThan(5_000)
    expect(await healthy(url)).toBe(true)
  })

  it('answers 408 and disconnects a client that sends its request line a byte at a time', async () => {
    const { url } = await startSite(tempDir(), { api: { idleTimeout: 300, headersTimeout: 600, requestTimeout: 1_000 } })
    const socket = await connect(url)
    const since = performance.now()
    const result = untilClosed(socket, 10_000, since)
    // A byte every 100 ms keeps the socket from being idle; only the headers deadline stops it.
    socket.write('GET /api/st')
    const trickle = setInterval(() => socket.writable && socket.write('a'), 100)
    onTestFinished(() => clearInterval(trickle))
    const { closed, elapsed, text } = await result
    clearInterval(trickle)
    expect(closed).toBe(true)
    expect(elapsed).toBeGreaterThanOrEqual(500)
    expect(elapsed).toBeLessThan(6_000)
    expect(firstResponse(text)).toMatchObject({ status: 408, body: { error: expect.stringMatching(/did not arrive in time/) } })
    expect(await healthy(url)).toBe(true)
  })

  it('answers 408 and disconnects a client that stops halfway through its body, recording nothing and logging no error', async () => {
    const { logger, lines, errors } = capturedLogger()
    const { url } = await startSite(tempDir(), { logger, api: { idleTimeout: 300, headersTimeout: 500, requestTimeout: 1_000 } })
    const socket = await connect(url)
    const since = performance.now()
    const result = untilClosed(socket, 10_000, since)
    const body = JSON.stringify({ id: 'r-1', kind: 'receipt', sku: 'AMOX-500', quantity: 4, user: 'amina' })
    socket.write(request('POST', '/api/movements', ['Content-Type: application/json', `Content-Length: ${body.length + 50}`], body))
    const { closed, elapsed, text } = await result
    expect(closed).toBe(true)
    // Past the idle timeout: a request being received is bounded by requestTimeout, not idleness.
    expect(elapsed).toBeGreaterThanOrEqual(800)
    expect(elapsed).toBeLessThan(6_000)
    expect(firstResponse(text)).toMatchObject({ status: 408 })
    expect(await recorded(url)).toBe(0)
    expect(errors()).toEqual([])
    expect(lines.filter((l) => l.msg === 'client closed the connection before the request was complete')).toHaveLength(1)
  })

  it('closes a kept-alive connection that sends no next request', async () => {
    const { url } = await startSite(tempDir(), { api: { keepAliveTimeout: 300, idleTimeout: 5_000 } })
    const socket = await connect(url)
    const result = untilClosed(socket, 10_000)
    socket.write('GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    const { closed, elapsed, text } = await result
    expect(firstResponse(text).status).toBe(200)
    expect(closed).toBe(true)
    // Node adds a second of grace to the advertised keep-alive time.
    expect(elapsed).toBeLessThan(5_000)
  })
})

describe('many connections', () => {
  it('closes connections over maxConnections, warns once, and serves again when they go away', async () => {
    const { logger, lines } = capturedLogger()
    const { url } = await startSite(tempDir(), { logger, api: { maxConnections: 4, idleTimeout: 60_000, keepAliveTimeout: 60_000 } })
    // Four clients that each made a request and keep their connection: the server holds all four.
    const held = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const socket = await connect(url)
        const answered = new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1'))))
        socket.write('GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
        expect(firstResponse(await answered).status).toBe(200)
        return socket
      }),
    )
    for (let i = 0; i < 3; i++) {
      const extra = await connect(url)
      const result = untilClosed(extra, 5_000)
      extra.write(request('GET', '/api/health'))
      expect(await result).toMatchObject({ closed: true, text: '' })
    }
    expect(lines.filter((l) => l.level === 40 && /connection limit reached/.test(l.msg))).toHaveLength(1)

    for (const socket of held) socket.destroy()
    expect(await eventually(() => healthy(url))).toBe(true)
  })

  it('frees the connections of silent clients at the idle timeout, so that others get in', async () => {
    const { url } = await startSite(tempDir(), { api: { maxConnections: 3, idleTimeout: 300 } })
    const silent = await Promise.all(Array.from({ length: 3 }, () => connect(url)))
    const closes = await Promise.all(silent.map((socket) => untilClosed(socket, 10_000)))
    expect(closes.every((c) => c.closed)).toBe(true)
    expect(await eventually(() => healthy(url))).toBe(true)
  })

  it('keeps serving after it fails to accept a connection (out of file descriptors)', async () => {
    const { logger, errors } = capturedLogger()
    const node = await SiteNode.open({ dataDir: tempDir(), site: 'demo-store', logger, provisionCatalog: demoCatalog })
    const running = await listenApi({ host: '127.0.0.1', port: 0 } satisfies ApiOptions)
    running.attach(node)
    onTestFinished(async () => {
      await running.close()
      await node.close()
    })
    // What Node's server emits when accept() fails with EMFILE; without a listener it ends the process.
    running.server.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', syscall: 'accept' }))
    expect(await healthy(running.url)).toBe(true)
    expect(errors().map((l) => l.msg)).toEqual(['the API could not accept a connection'])
  })
})

describe('a client that goes away', () => {
  it.each([
    ['midway through its body', 2_000],
    ['right after its headers', 0],
  ])('%s is logged once at debug level, with no error, and nothing is recorded', async (_, sent) => {
    const { logger, lines } = capturedLogger()
    const { url } = await startSite(tempDir(), { logger })
    const socket = await connect(url)
    socket.write(request('POST', '/api/movements', ['Content-Type: application/json', 'Content-Length: 100000'], `{"movements":[${' '.repeat(sent)}`))
    // Give the server time to start reading the body, then vanish.
    await new Promise((r) => setTimeout(r, 200))
    socket.destroy()
    const message = 'client closed the connection before the request was complete'
    expect(await eventually(() => lines.some((l) => l.msg === message))).toBe(true)
    await new Promise((r) => setTimeout(r, 200))
    expect(lines.filter((l) => l.msg === message)).toEqual([expect.objectContaining({ level: 20, method: 'POST', url: '/api/movements' })])
    expect(lines.filter((l) => l.level >= 40)).toEqual([])
    expect(await recorded(url)).toBe(0)
  })
})
