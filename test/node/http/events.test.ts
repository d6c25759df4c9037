/**
 * `GET /api/events`: what the page listens to instead of polling. A real site node on a loopback
 * socket, read as a browser's fetch reads it: the stream opens with `hello`, a movement recorded
 * shows up as it is acknowledged, a heartbeat keeps the connection open past the idle timeout,
 * a reader that leaves leaves no listener behind, and the API token guards it as every endpoint.
 */
import http from 'node:http'
import { describe, expect, it } from 'vitest'
import { api } from '../../helpers/api.ts'
import { startSite } from '../../helpers/site.ts'
import { tempDir } from '../../helpers/tempDir.ts'
import { until } from '../../helpers/until.ts'

interface SseEvent {
  event: string
  data: unknown
}

/** Opens the event stream; collects events and heartbeat comments until `close()`. */
function openEvents(url: string, headers: Record<string, string> = {}) {
  const events: SseEvent[] = []
  let comments = 0
  let status = 0
  let ended = false
  let buffer = ''
  const req = http.get(`${url}/api/events`, { headers }, (res) => {
    status = res.statusCode ?? 0
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      buffer += chunk
      let end
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        if (frame.startsWith(':')) comments++
        const event = /^event: (.*)$/m.exec(frame)?.[1]
        const data = /^data: (.*)$/m.exec(frame)?.[1]
        if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) })
      }
    })
    res.on('end', () => (ended = true))
    res.on('close', () => (ended = true))
  })
  req.on('error', () => (ended = true))
  return {
    events,
    get comments() {
      return comments
    },
    get status() {
      return status
    },
    get ended() {
      return ended
    },
    close: () => req.destroy(),
  }
}

describe('GET /api/events', () => {
  it('pushes a movement to the page as it is acknowledged, and stays open on its heartbeat', async () => {
    const site = await startSite(tempDir(), { api: { idleTimeout: 400, eventsHeartbeatMs: 100 } })
    const listenersBefore = site.node.events.listenerCount('movements')
    const stream = openEvents(site.url)
    await until('the hello event', async () => (stream.events.some((e) => e.event === 'hello') ? true : undefined), 5_000)
    expect(stream.status).toBe(200)
    expect(stream.events[0]).toEqual({ event: 'hello', data: { site: 'demo-store', node: site.node.identity.node } })

    const posted = await api(site.url, 'POST', '/api/movements', { id: 'ev-1', kind: 'receipt', sku: 'AMOX-500', quantity: 12, user: 'amina' })
    expect(posted.status).toBe(201)
    const pushed = await until('the movement on the stream', async () => stream.events.find((e) => e.event === 'movements'), 1_000)
    expect(pushed.data).toMatchObject({ source: 'local', movements: [{ id: 'ev-1', kind: 'receipt', sku: 'AMOX-500', delta: 12, user: 'amina' }] })

    // Three idle timeouts later it is still open, kept alive by its heartbeat.
    await new Promise((resolve) => setTimeout(resolve, 1_200))
    expect(stream.ended).toBe(false)
    expect(stream.comments).toBeGreaterThanOrEqual(5)
    // A decision shows too.
    await api(site.url, 'POST', '/api/movements', { id: 'ev-2', kind: 'issue', sku: 'ORS-1L', quantity: 3, user: 'amina' })
    const item = (await api(site.url, 'GET', '/api/review')).body.items[0]
    expect((await api(site.url, 'POST', `/api/review/${encodeURIComponent(item.id)}/decision`, { user: 'amina', note: 'counted later' })).status).toBe(201)
    await until('the decision on the stream', async () => stream.events.find((e) => e.event === 'decision'), 2_000)

    stream.close()
    await until('the stream to let go of its listeners', async () => (site.node.events.listenerCount('movements') === listenersBefore ? true : undefined), 2_000)
  })

  it('says when an order or the ledger changed, so the page reads it again', async () => {
    const site = await startSite(tempDir())
    const stream = openEvents(site.url)
    await until('the hello event', async () => (stream.events.some((e) => e.event === 'hello') ? true : undefined), 5_000)
    expect((await api(site.url, 'POST', '/api/orders', { id: 'po-ev', from: 'demo-store', to: 'demo-hub', lines: [{ sku: 'AMOX-500', requested: 20 }], user: 'amina' })).status).toBe(201)
    await until('the new order on the stream', async () => stream.events.find((e) => e.event === 'document' && (e.data as { id: string }).id === 'po-ev'), 2_000)
    const before = stream.events.length
    expect((await api(site.url, 'POST', '/api/orders/po-ev/lines', { sku: 'ORS-1L', requested: 5, user: 'amina' })).status).toBe(200)
    const changed = await until('the change on the stream', async () => stream.events.slice(before).find((e) => e.event === 'changed'), 2_000)
    expect(changed.data).toEqual({ kind: 'order', id: 'po-ev' })
    // A review decision changes the ledger.
    await api(site.url, 'POST', '/api/movements', { id: 'ev-neg', kind: 'issue', sku: 'ORS-1L', quantity: 3, user: 'amina' })
    const item = (await api(site.url, 'GET', '/api/review')).body.items[0]
    const mark = stream.events.length
    expect((await api(site.url, 'POST', `/api/review/${encodeURIComponent(item.id)}/decision`, { user: 'amina', note: 'counted later' })).status).toBe(201)
    await until('the ledger change on the stream', async () => stream.events.slice(mark).find((e) => e.event === 'changed' && (e.data as { kind: string }).kind === 'ledger'), 2_000)
    stream.close()
  })

  it('asks for the API token like every other endpoint', async () => {
    const site = await startSite(tempDir(), { api: { token: 'secret-token' } })
    const refused = openEvents(site.url)
    await until('the refusal', async () => (refused.status ? true : undefined), 5_000)
    expect(refused.status).toBe(401)
    expect((await api(site.url, 'POST', '/api/events', {}, { authorization: 'Bearer secret-token' })).status).toBe(405)
    const stream = openEvents(site.url, { authorization: 'Bearer secret-token' })
    await until('the hello event', async () => (stream.events.some((e) => e.event === 'hello') ? true : undefined), 5_000)
    stream.close()
  })
})
