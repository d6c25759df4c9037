import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { HUB_FILES, initHub, openHub } from '../../src/hub/hubFolder.ts'
import { verifyRevocations } from '../../src/network/credential.ts'
import type { CatalogDoc } from '../../src/schema/catalog.ts'
import { tempDir } from '../helpers/tempDir.ts'

const logger = pino({ level: 'silent' })

describe('hub folder', () => {
  it('init makes a deployment that openHub reads: key 0600, empty register, signed list seq 0, a catalog', async () => {
    const dir = path.join(tempDir(), 'hub')
    const made = await initHub(dir, { name: 'Kenya pilot', logger })
    expect(made.deployment.id).toMatch(/^dep-[0-9a-f]{16}$/)
    expect(made.deployment.name).toBe('Kenya pilot')
    expect(statSync(path.join(dir, HUB_FILES.key)).mode & 0o777).toBe(0o600)
    expect(readFileSync(path.join(dir, HUB_FILES.key), 'utf8')).toContain('PRIVATE KEY')
    const hub = await openHub(dir, { logger })
    try {
      expect(hub.deployment).toEqual(made.deployment)
      expect(hub.catalogUrl).toBe(made.catalog)
      expect(await hub.register()).toMatchObject({ sites: {}, devices: {}, revocations: { seq: 0 } })
      const list = await hub.revocations()
      expect(list.claims).toMatchObject({ seq: 0, devices: [], deployment: made.deployment.id })
      expect(verifyRevocations(list.token, hub.deployment).ok).toBe(true)
      const catalog = await hub.repo.find<CatalogDoc>(hub.catalogUrl)
      expect(String(catalog.doc().kind)).toBe('catalog')
      // Held while open.
      await expect(openHub(dir, { logger })).rejects.toThrow(/in use by/)
    } finally {
      await hub.close()
    }
  })

  it('init refuses a hub or a site folder and changes nothing', async () => {
    const dir = tempDir()
    await initHub(dir, { logger })
    const before = readFileSync(path.join(dir, HUB_FILES.deployment), 'utf8')
    await expect(initHub(dir, { logger })).rejects.toThrow(/holds a deployment already/)
    expect(readFileSync(path.join(dir, HUB_FILES.deployment), 'utf8')).toBe(before)
    const site = tempDir()
    mkdirSync(path.join(site, 'automerge', 'st'), { recursive: true })
    writeFileSync(path.join(site, 'automerge', 'st', 'ockmesh-identity'), '{}')
    await expect(initHub(site, { logger })).rejects.toThrow(/site's data folder/)
  })

  it('openHub refuses a folder that is not a hub, and a damaged register', async () => {
    await expect(openHub(tempDir(), { logger })).rejects.toThrow(/is not a hub folder/)
    const dir = tempDir()
    await initHub(dir, { logger })
    writeFileSync(path.join(dir, HUB_FILES.register), '{"sites":{}}')
    await expect(openHub(dir, { logger })).rejects.toThrow(/register.json is damaged/)
  })
})
