import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import pino from 'pino'
import { loadIncremental, save } from '@automerge/automerge'
import { importCatalogFiles } from '../../src/node/catalogImport.ts'
import { describe, expect, it } from 'vitest'
import { checkEnrolment, enrolDevice, parseDuration, readEnrolmentFile, revokeDevice } from '../../src/hub/enrol.ts'
import { initHub, openHub } from '../../src/hub/hubFolder.ts'
import { proveKey, verifyCredential, verifyProof } from '../../src/network/credential.ts'
import { SiteNode } from '../../src/node/siteNode.ts'
import { tempDir } from '../helpers/tempDir.ts'

const logger = pino({ level: 'silent' })
const DAY = 86_400_000

async function hub(): Promise<string> {
  const dir = tempDir('hub-')
  await initHub(dir, { name: 'test', logger })
  return dir
}

describe('enrolment at the hub', () => {
  it('parses durations and refuses anything else', () => {
    expect(parseDuration('90d')).toBe(90 * DAY)
    expect(parseDuration('2w')).toBe(14 * DAY)
    expect(parseDuration('12h')).toBe(12 * 3_600_000)
    for (const bad of ['', '0d', '90', 'd', '1y', '-1d', '9999w']) expect(() => parseDuration(bad), bad).toThrow()
  })

  it('makes a site once, signs a credential for the key in the file, and the file checks', async () => {
    const dir = await hub()
    const out = tempDir('out-')
    const now = Date.now()
    const first = await enrolDevice(dir, { site: 'store-a', out: path.join(out, '1.json'), relay: 'wss://relay.example:443', logger, now: () => now })
    const second = await enrolDevice(dir, { site: 'store-a', device: 'a-2', role: 'carrier', validForMs: DAY, out: path.join(out, '2.json'), logger, now: () => now })
    expect(first.newSite).toBe(true)
    expect(second.newSite).toBe(false)
    expect(second.file.documents.index.url).toBe(first.file.documents.index.url)
    expect(second.file.documents.ledger.url).toBe(first.file.documents.ledger.url)
    const { enrolment, claims } = await readEnrolmentFile(path.join(out, '2.json'), now)
    expect(claims).toMatchObject({ device: 'a-2', site: 'store-a', role: 'carrier', issuedAt: now, expiresAt: now + DAY })
    // The device can prove it holds the key its credential names.
    expect(verifyProof(proveKey('challenge', 'peer', enrolment.privateKey), 'challenge', 'peer', claims.publicKey)).toBe(true)
    // Expired a day later.
    expect(() => checkEnrolment(readFileSync(path.join(out, '2.json'), 'utf8'), '2.json', now + DAY)).toThrow(/expired .* enrol the device again/)
    const opened = await openHub(dir, { logger })
    try {
      const register = await opened.register()
      expect(register.sites['store-a' as never]).toMatchObject({ index: first.file.documents.index.url, ledger: first.file.documents.ledger.url })
      expect(verifyCredential(first.file.credential, opened.deployment, now).ok).toBe(true)
    } finally {
      await opened.close()
    }
  })

  it('revokes: the list names every revoked device, seq grows, revoking again keeps the list', async () => {
    const dir = await hub()
    const out = tempDir('out-')
    await enrolDevice(dir, { site: 's', device: 'd-1', out: path.join(out, '1.json'), logger })
    await enrolDevice(dir, { site: 's', device: 'd-2', out: path.join(out, '2.json'), logger })
    expect(await revokeDevice(dir, { device: 'd-2', logger })).toEqual({ device: 'd-2', seq: 1, devices: ['d-2'], already: false })
    expect(await revokeDevice(dir, { device: 'd-2', logger })).toEqual({ device: 'd-2', seq: 2, devices: ['d-2'], already: true })
    const opened = await openHub(dir, { logger })
    try {
      expect((await opened.revocations()).claims).toMatchObject({ seq: 2, devices: ['d-2'] })
    } finally {
      await opened.close()
    }
    // A file enrolled after the revocation carries the list.
    await enrolDevice(dir, { site: 's', device: 'd-3', out: path.join(out, '3.json'), logger })
    const file = JSON.parse(readFileSync(path.join(out, '3.json'), 'utf8'))
    expect(file.revocations).toBe(JSON.parse(readFileSync(path.join(dir, 'register.json'), 'utf8')).revocations.token)
  })
})

describe('enrolment while the relay holds the hub folder', () => {
  it('enrols new sites and revokes while the hub is open; enrolments sent at once queue and make one site', async () => {
    const dir = await hub()
    const out = tempDir('out-')
    const relayHub = await openHub(dir, { logger, command: 'stockmesh relay' })
    try {
      const files = await Promise.all([1, 2, 3].map((n) => enrolDevice(dir, { site: 'store-n', device: `n-${n}`, out: path.join(out, `${n}.json`), logger })))
      expect(new Set(files.map((f) => f.file.documents.ledger.url)).size).toBe(1)
      expect(files.filter((f) => f.newSite)).toHaveLength(1)
      const register = await relayHub.register()
      expect(Object.keys(register.sites)).toEqual(['store-n'])
      expect(Object.keys(register.devices).sort()).toEqual(['n-1', 'n-2', 'n-3'])
      // The open hub finds the new site's documents in its storage.
      const ledger = await relayHub.repo.find<{ site: unknown }>(files[0]!.file.documents.ledger.url as never)
      expect(String(ledger.doc().site)).toBe('store-n')
      expect((await revokeDevice(dir, { device: 'n-2', logger })).seq).toBe(1)
      expect((await relayHub.revocations()).claims.devices).toEqual(['n-2'])
    } finally {
      await relayHub.close()
    }
  })
})

describe('a site node from an enrolment file', () => {
  it('provisions from the snapshots, keeps the enrolment, and refuses --enrol on a provisioned folder', async () => {
    const dir = await hub()
    const out = tempDir('out-')
    const { file } = await enrolDevice(dir, { site: 'store-a', device: 'a-1', relay: 'ws://127.0.0.1:9', out: path.join(out, '1.json'), logger })
    const data = path.join(tempDir(), 'node')
    const node = await SiteNode.open({ dataDir: data, logger, enrolment: file })
    try {
      expect(node.identity).toEqual({ site: 'store-a', node: 'a-1', index: file.documents.index.url })
      expect(node.store.ledger.url).toBe(file.documents.ledger.url)
      expect(node.catalog.url).toBe(file.documents.catalog.url)
      expect(node.enrolment).toMatchObject({ relay: 'ws://127.0.0.1:9', credential: file.credential, privateKey: file.privateKey, claims: { device: 'a-1' } })
    } finally {
      await node.close()
    }
    const again = await SiteNode.open({ dataDir: data, logger })
    try {
      expect(again.enrolment?.claims.site).toBe('store-a')
      expect(again.store.ledger.url).toBe(file.documents.ledger.url)
    } finally {
      await again.close()
    }
    await expect(SiteNode.open({ dataDir: data, logger, enrolment: file })).rejects.toThrow(/provisioned already .*--enrol is only for a folder's first start/)
    await expect(SiteNode.open({ dataDir: path.join(tempDir(), 'x'), site: 'store-b', logger, enrolment: file })).rejects.toThrow(/for site store-a, not store-b/)
  })

  it("a device enrolled after the hub's ledger names another device's journal starts offline without it", async () => {
    const dir = await hub()
    const out = tempDir('out-')
    const csv = path.join(out, 'products.csv')
    writeFileSync(csv, 'sku,name,unit\nAMOX-500,Amoxicillin,pack\n')
    await importCatalogFiles({ dataDir: dir, files: [csv], logger })
    const { file: first } = await enrolDevice(dir, { site: 'store-a', device: 'a-1', out: path.join(out, '1.json'), logger })
    const one = await SiteNode.open({ dataDir: path.join(tempDir(), 'one'), logger, enrolment: first })
    let ledgerBytes: Uint8Array
    try {
      expect((await one.book.record([{ id: 'rcv-1', kind: 'receipt', sku: 'AMOX-500', quantity: 4, user: 'amina' }]))[0]?.status).toBe('recorded')
      ledgerBytes = save(one.store.ledger.doc() as object)
    } finally {
      await one.close()
    }
    // As if the relay had brought a-1's ledger entry (not its journal) to the hub.
    const relayHub = await openHub(dir, { logger })
    try {
      const ledger = await relayHub.repo.find(first.documents.ledger.url as never)
      ledger.update((doc) => loadIncremental(doc, ledgerBytes))
      await relayHub.repo.flush([ledger.documentId])
    } finally {
      await relayHub.close()
    }
    const { file: second } = await enrolDevice(dir, { site: 'store-a', device: 'a-2', out: path.join(out, '2.json'), logger })
    const two = await SiteNode.open({ dataDir: path.join(tempDir(), 'two'), logger, enrolment: second })
    try {
      expect(Object.keys(two.store.ledger.doc().journals ?? {})).not.toHaveLength(0)
      expect((await two.book.record([{ id: 'rcv-2', kind: 'receipt', sku: 'AMOX-500', quantity: 1, user: 'juma' }]))[0]?.status).toBe('recorded')
    } finally {
      await two.close()
    }
  })

  it('a folder whose enrolment key was swapped is refused as damaged', async () => {
    const dir = await hub()
    const out = tempDir('out-')
    const { file } = await enrolDevice(dir, { site: 'store-a', out: path.join(out, '1.json'), logger })
    const { file: other } = await enrolDevice(dir, { site: 'store-a', out: path.join(out, '2.json'), logger })
    const data = path.join(tempDir(), 'node')
    await (await SiteNode.open({ dataDir: data, logger, enrolment: file })).close()
    writeFileSync(path.join(data, 'device-key.pem'), other.privateKey)
    await expect(SiteNode.open({ dataDir: data, logger })).rejects.toThrow(/enrolment.json is damaged \(device-key.pem is not the key the credential names\)/)
  })
})
