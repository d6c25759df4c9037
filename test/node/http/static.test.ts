/** The UI pages the site node serves, against hostile paths and files it cannot read. */
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { api } from '../../helpers/api.ts'
import { startSite } from '../../helpers/site.ts'
import { tempDir } from '../../helpers/tempDir.ts'
import { connect, exchange, firstResponse, request, untilClosed } from './rawHttp.ts'

function uiFolder(): string {
  const dir = tempDir()
  writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>ui</title>')
  mkdirSync(path.join(dir, 'assets'))
  writeFileSync(path.join(dir, 'assets', 'app one.js'), 'console.log(1)')
  return dir
}

describe('UI pages', () => {
  it('serves a file whose name is percent-encoded in the URL, and index.html for other paths', async () => {
    const { url } = await startSite(tempDir(), { api: { uiDir: uiFolder() } })
    const file = await fetch(url + '/assets/app%20one.js')
    expect(file.headers.get('content-type')).toMatch(/text\/javascript/)
    expect(await file.text()).toBe('console.log(1)')
    expect(await (await fetch(url + '/orders/o-1')).text()).toMatch(/<title>ui<\/title>/)
  })

  it.each([
    ['not valid percent-encoding', '/assets/%E0%A4%A', 400],
    ['a NUL byte', '/assets/app%00.js', 404],
  ])('answers a path with %s without failing', async (_, target, status) => {
    const { url } = await startSite(tempDir())
    const answer = await exchange(url, request('GET', target))
    expect(firstResponse(answer.text).status).toBe(status)
    expect((await api(url, 'GET', '/api/health')).status).toBe(200)
  })

  it('does not serve files outside the UI folder', async () => {
    const { url } = await startSite(tempDir(), { api: { uiDir: uiFolder() } })
    for (const target of ['/../../../../etc/passwd', '/%2e%2e/%2e%2e/%2e%2e/etc/passwd', '/assets/..%2f..%2f..%2fetc%2fpasswd']) {
      const answer = await exchange(url, request('GET', target))
      expect(answer.text).not.toMatch(/root:/)
    }
  })

  it('cuts a client that stops reading a page at the idle timeout', async () => {
    const ui = uiFolder()
    const size = 32 * 1024 * 1024
    writeFileSync(path.join(ui, 'assets', 'big.js'), Buffer.alloc(size, 'a'))
    const { url } = await startSite(tempDir(), { api: { uiDir: ui, idleTimeout: 300 } })
    const socket = await connect(url)
    socket.pause()
    socket.write(request('GET', '/assets/big.js'))
    // Far longer than the idle timeout, reading nothing: the send buffers fill and stay full.
    await new Promise((r) => setTimeout(r, 2_000))
    const result = untilClosed(socket, 10_000)
    let received = 0
    socket.on('data', (chunk: Buffer) => (received += chunk.length))
    socket.resume()
    expect((await result).closed).toBe(true)
    expect(received).toBeLessThan(size)
    expect((await api(url, 'GET', '/api/health')).status).toBe(200)
  })

  // /proc/self/mem is a regular file that opens but fails to read at offset 0 (EIO): a file of the
  // UI folder that breaks while it is sent. An unhandled stream error there used to end the process.
  it.runIf(process.platform === 'linux')('ends only that response when a file fails while it is read', async () => {
    const { url } = await startSite(tempDir(), { api: { uiDir: '/proc/self' } })
    const answer = await exchange(url, request('GET', '/mem'))
    expect(answer.closed).toBe(true)
    expect((await api(url, 'GET', '/api/health')).status).toBe(200)
  })
})
