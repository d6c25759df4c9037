import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { DataFolderLockedError } from '../../src/node/dataFolderLock.ts'
import { SiteNode } from '../../src/node/siteNode.ts'
import { startSite } from '../helpers/site.ts'
import { tempDir } from '../helpers/tempDir.ts'

describe('SiteNode.open()', () => {
  it('refuses a data folder already open, and opens it once the first node is closed', async () => {
    const dir = tempDir()
    const first = await startSite(dir)
    const second = SiteNode.open({ dataDir: dir, logger: pino({ level: 'silent' }) })
    await expect(second).rejects.toBeInstanceOf(DataFolderLockedError)
    await expect(second).rejects.toThrow(dir)
    await first.close()
    const again = await SiteNode.open({ dataDir: dir, logger: pino({ level: 'silent' }) })
    expect(again.identity.site).toBe('demo-store')
    await again.close()
  })

  it('releases the folder when opening fails', async () => {
    const dir = tempDir()
    await expect(SiteNode.open({ dataDir: dir, logger: pino({ level: 'silent' }) })).rejects.toThrow(/not provisioned/)
    const node = await SiteNode.open({ dataDir: dir, site: 'store-9', logger: pino({ level: 'silent' }) })
    expect(node.identity.site).toBe('store-9')
    await node.close()
  })
})
