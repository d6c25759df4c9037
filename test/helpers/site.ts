/** A site node with its HTTP API on a real loopback socket, in this process, closed when the test ends. */
import pino from 'pino'
import { onTestFinished } from 'vitest'
import { demoCatalog } from '../../src/node/demo.ts'
import { startApi, type ApiOptions } from '../../src/node/http/server.ts'
import { SiteNode, type SiteNodeOptions } from '../../src/node/siteNode.ts'

export async function startSite(dataDir: string, options: Partial<SiteNodeOptions> & { api?: Partial<ApiOptions> } = {}) {
  const { api: apiOptions, ...nodeOptions } = options
  const node = await SiteNode.open({ dataDir, site: 'demo-store', logger: pino({ level: 'silent' }), provisionCatalog: demoCatalog, ...nodeOptions })
  // A refused API start must not leave the node (and its data folder's lock) open.
  const api = await startApi(node, { host: '127.0.0.1', port: 0, ...apiOptions }).catch(async (error: unknown) => {
    await node.close()
    throw error
  })
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await api.close()
    await node.close()
  }
  onTestFinished(close)
  return { node, url: api.url, close }
}
