/**
 * listenApi: the port is bound before the site node (and its data folder) is opened, /api answers
 * 503 until the node is attached, and a port problem is an error an operator can act on.
 */
import net from 'node:net'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { demoCatalog } from '../../../src/node/demo.ts'
import { listenApi } from '../../../src/node/http/server.ts'
import { SiteNode } from '../../../src/node/siteNode.ts'
import { api } from '../../helpers/api.ts'
import { tempDir } from '../../helpers/tempDir.ts'

async function openNode() {
  const node = await SiteNode.open({ dataDir: tempDir(), site: 'demo-store', logger: pino({ level: 'silent' }), provisionCatalog: demoCatalog })
  onTestFinished(() => node.close())
  return node
}

async function listenOn(port: number, host = '127.0.0.1'): Promise<net.Server> {
  const server = net.createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return server
}

describe('listenApi', () => {
  it('answers 503 "the site is starting" on /api and serves the page until a node is attached, then answers normally', async () => {
    const running = await listenApi({ host: '127.0.0.1', port: 0 })
    onTestFinished(() => running.close())
    expect(await api(running.url, 'GET', '/api/health')).toEqual({ status: 503, body: { error: 'the site is starting' } })
    expect((await api(running.url, 'POST', '/api/movements', { id: 'r-1', kind: 'receipt', sku: 'AMOX-500', quantity: 1, user: 'amina' })).status).toBe(503)
    const page = await fetch(running.url + '/')
    expect(page.status).toBe(200)
    expect(await page.text()).toMatch(/stockmesh/)

    const node = await openNode()
    running.attach(node)
    expect(await api(running.url, 'GET', '/api/health')).toMatchObject({ status: 200, body: { site: 'demo-store', node: node.identity.node } })
    expect((await api(running.url, 'POST', '/api/movements', { id: 'r-1', kind: 'receipt', sku: 'AMOX-500', quantity: 1, user: 'amina' })).status).toBe(201)
  })

  it('asks for the token before saying the site is starting', async () => {
    const running = await listenApi({ host: '127.0.0.1', port: 0, token: 's3cret-token' })
    onTestFinished(() => running.close())
    expect((await api(running.url, 'GET', '/api/health')).status).toBe(401)
    expect((await api(running.url, 'GET', '/api/health', undefined, { authorization: 'Bearer s3cret-token' })).status).toBe(503)
  })

  it('refuses to serve a second node', async () => {
    const running = await listenApi({ host: '127.0.0.1', port: 0 })
    onTestFinished(() => running.close())
    running.attach(await openNode())
    expect(() => running.attach({} as SiteNode)).toThrow(/already serves another site node/)
  })

  it('rejects a port in use with an error that names the port and the address', async () => {
    const taken = await listenOn(0)
    const { port } = taken.address() as net.AddressInfo
    await expect(listenApi({ host: '127.0.0.1', port })).rejects.toThrow(`port ${port} on 127.0.0.1 is in use`)
  })

  it('refuses a non-loopback host without a token before binding the port', async () => {
    // A free port: taken by a throwaway server, then given back.
    const probe = await listenOn(0, '0.0.0.0')
    const { port } = probe.address() as net.AddressInfo
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    await expect(listenApi({ host: '0.0.0.0', port })).rejects.toThrow(/without an API token/)
    // Nothing was bound: the port can be had at once.
    await listenOn(port, '0.0.0.0')
  })
})
