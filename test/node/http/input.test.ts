/**
 * Bad input to a site node's HTTP API, over real sockets: every refusal is a JSON 4xx that names
 * the problem, never a 500 or a hang, and a refused request changes nothing.
 */
import { describe, expect, it } from 'vitest'
import { api } from '../../helpers/api.ts'
import { startSite } from '../../helpers/site.ts'
import { tempDir } from '../../helpers/tempDir.ts'
import { capturedLogger, connect, exchange, firstResponse, request, untilClosed } from './rawHttp.ts'

const receipt = (id: string, quantity: number) => ({ id, kind: 'receipt', sku: 'AMOX-500', quantity, user: 'amina' })

async function recorded(url: string): Promise<number> {
  return (await api(url, 'GET', '/api/movements')).body.total
}

function post(url: string, path: string, body: string | Uint8Array<ArrayBuffer>, headers: Record<string, string>) {
  return fetch(url + path, { method: 'POST', headers, body })
}

describe('path parameters', () => {
  it.each([
    ['GET', '/api/orders/%E0%A4%A'],
    ['GET', '/api/stock/%ZZ'],
    ['GET', '/api/manifests/%'],
    ['POST', '/api/orders/%E0%A4%A/submit'],
    ['POST', '/api/review/%ZZ/decision'],
  ])('answers %s %s, not valid percent-encoding, with 400 naming the problem', async (method, path) => {
    const { url } = await startSite(tempDir())
    const res = await api(url, method, path, method === 'POST' ? { user: 'amina', note: 'n', adjustments: [] } : undefined)
    expect(res.status).toBe(400)
    expect(res.body.error).toMatch(/the path is not valid percent-encoding/)
    expect((await api(url, 'GET', '/api/orders')).body).toEqual({ orders: [] })
    expect(await recorded(url)).toBe(0)
  })

  it('still decodes a valid percent-encoded parameter', async () => {
    const { url } = await startSite(tempDir())
    expect(await api(url, 'GET', '/api/stock/AMOX%2D500')).toMatchObject({ status: 200, body: { sku: 'AMOX-500' } })
  })
})

describe('the body', () => {
  it.each(['application/json; charset=utf-8', 'Application/JSON;Charset="UTF-8"', 'application/json ; charset=utf8', 'application/json'])(
    'is taken with Content-Type %s',
    async (type) => {
      const { url } = await startSite(tempDir())
      const res = await post(url, '/api/movements', JSON.stringify(receipt('r-1', 4)), { 'content-type': type })
      expect(res.status).toBe(201)
      expect(await recorded(url)).toBe(1)
    },
  )

  it.each(['application/json; charset=latin1', 'application/json; charset="ISO-8859-1"', 'application/json; charset=utf-16'])(
    'declared as %s is refused with 415 naming the charset, and changes nothing',
    async (type) => {
      const { url } = await startSite(tempDir())
      const res = await post(url, '/api/movements', JSON.stringify(receipt('r-1', 4)), { 'content-type': type })
      expect(res.status).toBe(415)
      expect((await res.json()).error).toMatch(/charset .*UTF-8/)
      expect(await recorded(url)).toBe(0)
    },
  )

  it('that is not valid UTF-8 is refused with 400, not stored with replacement characters', async () => {
    const { url } = await startSite(tempDir())
    // "amélie" in latin1: the é is the lone byte 0xE9, which is not UTF-8.
    const bytes = Buffer.concat([Buffer.from('{"id":"r-1","kind":"receipt","sku":"AMOX-500","quantity":4,"user":"am'), Buffer.from([0xe9]), Buffer.from('lie"}')])
    const res = await post(url, '/api/movements', bytes, { 'content-type': 'application/json' })
    expect(res.status).toBe(400)
    expect((await res.json()).error).toMatch(/not valid UTF-8/)
    expect(await recorded(url)).toBe(0)
  })

  it('in UTF-8 with non-ASCII text is stored as sent', async () => {
    const { url } = await startSite(tempDir())
    expect((await api(url, 'POST', '/api/movements', { ...receipt('r-1', 4), reference: 'livré à Lubumbashi — 4 × 100' })).status).toBe(201)
    expect((await api(url, 'GET', '/api/movements')).body.movements[0].reference).toBe('livré à Lubumbashi — 4 × 100')
  })

  it.each([
    ['an array', '[{"id":"r-1","kind":"receipt","sku":"AMOX-500","quantity":4,"user":"amina"}]', /not an array/],
    ['null', 'null', /not null/],
    ['a string', '"receipt"', /not a string/],
    ['a number', '42', /not a number/],
  ])('that is %s is refused with 400 asking for a JSON object, and changes nothing', async (_, text, what) => {
    const { url } = await startSite(tempDir())
    for (const path of ['/api/movements', '/api/orders', '/api/review/negative-stock:AMOX-500/decision']) {
      const res = await api(url, 'POST', path, text)
      expect(res.status).toBe(400)
      expect(res.body.error).toMatch(/the body must be a JSON object/)
      expect(res.body.error).toMatch(what)
    }
    expect(await recorded(url)).toBe(0)
    expect((await api(url, 'GET', '/api/orders')).body).toEqual({ orders: [] })
  })

  it('that is compressed is refused with 415', async () => {
    const { url } = await startSite(tempDir())
    const res = await post(url, '/api/movements', JSON.stringify(receipt('r-1', 4)), { 'content-type': 'application/json', 'content-encoding': 'gzip' })
    expect(res.status).toBe(415)
    expect((await res.json()).error).toMatch(/Content-Encoding gzip/)
    expect(await recorded(url)).toBe(0)
  })
})

describe('malformed and hostile HTTP', () => {
  const movement = JSON.stringify(receipt('smuggled', 9))
  it.each([
    ['headers over the size limit', request('GET', '/api/stock', [`X-Filler: ${'a'.repeat(20_000)}`]), 431],
    ['a control character in a header', request('GET', '/api/stock', ['X-Bad: a\u0001b']), 400],
    ['an unknown method', request('FROB', '/api/stock'), 501],
    ['a method the API does not take', request('PURGE', '/api/stock'), 405],
    ['CONNECT', 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 405],
    ['an absolute URL that does not parse', request('GET', 'http://[bad/api/stock'), 400],
    ['an absolute URL with an out-of-range port', request('GET', 'http://127.0.0.1:99999/api/stock'), 400],
    ['an absolute URL naming another host (DNS rebinding through the request line)', request('GET', 'http://evil.example/api/stock'), 421],
    ['two Host headers', request('GET', '/api/stock', ['Host: evil.example']), 400],
    ['no Host header', 'GET /api/stock HTTP/1.1\r\nConnection: close\r\n\r\n', 400],
    ['no Host header in HTTP/1.0', 'GET /api/stock HTTP/1.0\r\n\r\n', 421],
    [
      'Content-Length and Transfer-Encoding together (request smuggling)',
      request('POST', '/api/movements', ['Content-Type: application/json', `Content-Length: ${movement.length}`, 'Transfer-Encoding: chunked'], `0\r\n\r\n${movement}`),
      400,
    ],
    ['a Transfer-Encoding other than chunked', request('POST', '/api/movements', ['Content-Type: application/json', 'Transfer-Encoding: gzip'], movement), 400],
    ['a chunk size that overflows', request('POST', '/api/movements', ['Content-Type: application/json', 'Transfer-Encoding: chunked'], 'ffffffffffffffffffff\r\n{}\r\n0\r\n\r\n'), 400],
  ])('refuses %s with a JSON error and the right status, records nothing and keeps serving', async (_, data, status) => {
    const { logger, errors } = capturedLogger()
    const { url } = await startSite(tempDir(), { logger })
    const answer = await exchange(url, data)
    expect(answer.closed).toBe(true)
    const res = firstResponse(answer.text)
    expect(res.status).toBe(status)
    expect(res.body).toEqual({ error: expect.any(String) })
    expect(answer.text).not.toMatch(/HTTP\/1\.1 201/)
    expect(await recorded(url)).toBe(0)
    expect((await api(url, 'GET', '/api/health')).status).toBe(200)
    expect(errors()).toEqual([])
  })

  it('reads a path that starts with // as a path, not as a URL naming a host', async () => {
    const { url } = await startSite(tempDir())
    const answer = await exchange(url, request('GET', '//evil.example/api/stock'))
    expect(firstResponse(answer.text).status).toBe(404)
  })

  it('tells a client that sent Expect: 100-continue to go on only when its body will be read', async () => {
    const { url } = await startSite(tempDir(), { api: { bodyLimit: 10_000 } })
    const body = JSON.stringify(receipt('r-1', 4))
    const socket = await connect(url)
    const result = untilClosed(socket, 5_000)
    const gotContinue = new Promise<void>((resolve) => socket.on('data', (chunk: Buffer) => chunk.toString('latin1').includes('100 Continue') && resolve()))
    socket.write(request('POST', '/api/movements', ['Content-Type: application/json', `Content-Length: ${body.length}`, 'Expect: 100-continue']))
    await gotContinue
    socket.write(body)
    expect(firstResponse((await result).text.split('\r\n\r\n').slice(1).join('\r\n\r\n'))).toMatchObject({ status: 201 })

    // Too large, or not JSON: refused on the headers, and the client is never asked for the body.
    for (const headers of [['Content-Type: application/json', 'Content-Length: 20000000'], ['Content-Type: text/plain', 'Content-Length: 20']]) {
      const answer = await exchange(url, request('POST', '/api/movements', [...headers, 'Expect: 100-continue']))
      expect(answer.text).not.toMatch(/100 Continue/)
      expect(firstResponse(answer.text).status).toBeGreaterThanOrEqual(413)
      expect(answer.closed).toBe(true)
    }
    expect(await recorded(url)).toBe(1)
  })

  it('takes a chunked body that is well formed', async () => {
    const { url } = await startSite(tempDir())
    const body = JSON.stringify(receipt('r-1', 4))
    const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`
    const answer = await exchange(url, request('POST', '/api/movements', ['Content-Type: application/json', 'Transfer-Encoding: chunked'], chunked))
    expect(firstResponse(answer.text)).toMatchObject({ status: 201, body: { status: 'recorded', id: 'r-1' } })
  })
})
