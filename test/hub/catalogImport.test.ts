import { writeFileSync } from 'node:fs'
import path from 'node:path'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { enrolDevice } from '../../src/hub/enrol.ts'
import { initHub, openHub } from '../../src/hub/hubFolder.ts'
import { importCatalogFiles, importSummary } from '../../src/node/catalogImport.ts'
import { SiteNode } from '../../src/node/siteNode.ts'
import type { CatalogDoc } from '../../src/schema/catalog.ts'
import { tempDir } from '../helpers/tempDir.ts'

const logger = pino({ level: 'silent' })

describe('catalog import into a hub folder', () => {
  it("writes the deployment catalog, which a device enrolled after carries; refused while the hub is open", async () => {
    const hub = tempDir('hub-')
    const made = await initHub(hub, { logger })
    const csv = path.join(tempDir('csv-'), 'products.csv')
    writeFileSync(csv, 'sku,name,unit\nORS-1L,Oral rehydration salts,sachet\n')
    const result = await importCatalogFiles({ dataDir: hub, files: [csv], logger })
    expect(importSummary(result)).toBe(`catalog of deployment ${made.deployment.id}: 1 added (products)`)

    const opened = await openHub(hub, { logger })
    try {
      const catalog = await opened.repo.find<CatalogDoc>(opened.catalogUrl)
      expect(Object.keys(catalog.doc().products)).toEqual(['ORS-1L'])
      await expect(importCatalogFiles({ dataDir: hub, files: [csv], logger })).rejects.toThrow(/is in use by .*: stop the relay first, then import/)
    } finally {
      await opened.close()
    }

    const { file } = await enrolDevice(hub, { site: 'clinic-1', out: path.join(tempDir('out-'), 'e.json'), logger })
    const node = await SiteNode.open({ dataDir: path.join(tempDir(), 'node'), logger, enrolment: file })
    try {
      expect(node.catalog.url).toBe(made.catalog)
      const [recorded] = await node.book.record([{ id: 'rcv-1', kind: 'receipt', sku: 'ORS-1L', quantity: 3, user: 'amina' }])
      expect(recorded?.status).toBe('recorded')
    } finally {
      await node.close()
    }
  })
})
