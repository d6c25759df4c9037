/**
 * Deployments with real processes: `deployment init`, `enrol`, `revoke`, `catalog import` at the
 * hub, and two devices of one new site started from their enrolment files offline at the same
 * moment: one ledger, both record into it.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { verifyRevocations } from '../../src/network/credential.ts'
import { EnrolmentFile } from '../../src/schema/credential.ts'
import { api } from '../helpers/api.ts'
import { startSiteProcess, type SiteProcess } from '../helpers/siteProcess.ts'
import { tempDir } from '../helpers/tempDir.ts'
import { folderListing, runCli } from './cliHelpers.ts'

const sites: SiteProcess[] = []
afterEach(async () => {
  for (const site of sites.splice(0)) await site.kill('SIGKILL')
})

async function start(...args: string[]): Promise<SiteProcess> {
  const site = await startSiteProcess(['site', '--port', '0', '--log-level', 'warn', ...args])
  sites.push(site)
  return site
}

async function ok(args: string[]): Promise<string> {
  const result = await runCli(args)
  expect(result.stderr).toBe('')
  expect(result.status).toBe(0)
  return result.stdout
}

async function hubWithCatalog(): Promise<string> {
  const hub = path.join(tempDir(), 'hub')
  expect(await ok(['deployment', 'init', '--data', hub, '--name', 'Pilot'])).toMatch(/^deployment dep-[0-9a-f]{16} \(Pilot\) made in /)
  const products = path.join(tempDir('csv-'), 'products.csv')
  writeFileSync(products, 'sku,name,unit\nAMOX-500,Amoxicillin 500 mg capsules,pack of 100\n')
  expect((await ok(['catalog', 'import', '--data', hub, products])).trim()).toMatch(/^catalog of deployment dep-[0-9a-f]{16}: 1 added \(products\)$/)
  return hub
}

const receipt = (id: string, quantity: number) => ({ id, kind: 'receipt', sku: 'AMOX-500', quantity, user: 'amina' })

describe('stockmesh deployment, enrol, revoke', () => {
  it('two devices of a new store started offline at the same moment share one ledger and both record', async () => {
    const hub = await hubWithCatalog()
    const out = tempDir('enrol-')
    const fileA1 = path.join(out, 'a1.json')
    const fileA2 = path.join(out, 'a2.json')
    expect(await ok(['enrol', '--data', hub, '--site', 'store-a', '--out', fileA1, '--relay', 'ws://127.0.0.1:9'])).toMatch(/^device dev-[0-9a-f]{8} of site store-a \(new site\) enrolled until /)
    expect(await ok(['enrol', '--data', hub, '--site', 'store-a', '--out', fileA2, '--device', 'a-second', '--expires', '30d'])).toMatch(/^device a-second of site store-a enrolled/)
    for (const file of [fileA1, fileA2]) expect(statSync(file).mode & 0o777).toBe(0o600)
    const a1 = EnrolmentFile.parse(JSON.parse(readFileSync(fileA1, 'utf8')))
    const a2 = EnrolmentFile.parse(JSON.parse(readFileSync(fileA2, 'utf8')))
    expect(a1.documents.ledger.url).toBe(a2.documents.ledger.url)
    expect(a1.relay).toBe('ws://127.0.0.1:9')
    const register = JSON.parse(readFileSync(path.join(hub, 'register.json'), 'utf8'))
    expect(Object.keys(register.sites)).toEqual(['store-a'])
    expect(register.devices['a-second']).toMatchObject({ site: 'store-a', role: 'device' })

    const dir1 = path.join(tempDir(), 'a1')
    const dir2 = path.join(tempDir(), 'a2')
    const [one, two] = await Promise.all([start('--data', dir1, '--enrol', fileA1), start('--data', dir2, '--enrol', fileA2)])
    const [h1, h2] = await Promise.all([api(one.url, 'GET', '/api/health'), api(two.url, 'GET', '/api/health')])
    expect(h1.body).toMatchObject({ site: 'store-a', ledger: a1.documents.ledger.url, index: a1.documents.index.url, catalog: a1.documents.catalog.url })
    expect(h2.body).toMatchObject({ site: 'store-a', node: 'a-second', ledger: a1.documents.ledger.url })
    expect(h1.body.node).not.toBe('a-second')
    for (const file of ['device-key.pem', 'enrolment.json']) expect(statSync(path.join(dir1, file)).mode & 0o777).toBe(0o600)

    // Both accept movements at once (the catalog is the deployment's).
    const [r1, r2] = await Promise.all([api(one.url, 'POST', '/api/movements', receipt('rcv-1', 10)), api(two.url, 'POST', '/api/movements', receipt('rcv-2', 5))])
    expect([r1.status, r2.status]).toEqual([201, 201])

    // Later starts read the identity from the folder; --enrol again is refused and changes nothing.
    expect(await one.kill('SIGTERM')).toBe(0)
    const before = folderListing(dir1)
    const again = await runCli(['site', '--data', dir1, '--port', '0', '--enrol', fileA1])
    expect(again.status).toBe(1)
    expect(again.stderr).toMatch(/^stockmesh: .* is provisioned already \(site store-a, device dev-[0-9a-f]{8}\): --enrol is only for a folder's first start/)
    expect(folderListing(dir1)).toEqual(before)
    const restarted = await start('--data', dir1, '--relay', 'ws://127.0.0.1:10')
    expect((await api(restarted.url, 'GET', '/api/health')).body).toMatchObject({ ledger: a1.documents.ledger.url })
    expect((await api(restarted.url, 'GET', '/api/stock/AMOX-500')).body).toMatchObject({ onHand: 10 })
  })

  it('refuses a corrupted enrolment file with a clear message, and changes nothing', async () => {
    const hub = await hubWithCatalog()
    const file = path.join(tempDir('enrol-'), 'a.json')
    await ok(['enrol', '--data', hub, '--site', 'store-a', '--out', file])
    const good = JSON.parse(readFileSync(file, 'utf8'))
    const dir = path.join(tempDir(), 'site')
    const cases: [string, string, RegExp][] = [
      ['truncated', readFileSync(file, 'utf8').slice(0, 200), /is refused: it is not JSON \(damaged or truncated\)/],
      ['no credential', JSON.stringify({ ...good, credential: undefined }), /is refused: credential: /],
      ['forged credential', JSON.stringify({ ...good, credential: `${good.credential.split('.')[0]}.${'A'.repeat(86)}` }), /is refused: the credential is not signed by this deployment/],
      ['another key', JSON.stringify({ ...good, privateKey: (await import('../../src/network/credential.ts')).generateKeyPair().privateKey }), /the private key is not the one the credential names/],
      ['not an enrolment', '{"kind":"other"}', /is refused: kind: is not a stockmesh enrolment file/],
    ]
    for (const [what, text, message] of cases) {
      const bad = path.join(tempDir('bad-'), `${what.replace(/ /g, '-')}.json`)
      writeFileSync(bad, text)
      const result = await runCli(['site', '--data', dir, '--port', '0', '--enrol', bad])
      expect(result.status, what).toBe(1)
      expect(result.stderr, what).toMatch(/^stockmesh: the enrolment file .* is refused: /)
      expect(result.stderr, what).toMatch(message)
      expect(folderListing(dir), what).toBeNull()
    }
    // --relay is for an enrolled device, and must be a websocket URL.
    const noEnrolment = await runCli(['site', '--data', dir, '--site', 'store-z', '--port', '0', '--relay', 'ws://127.0.0.1:9'])
    expect(noEnrolment.stderr).toMatch(/^stockmesh: --relay is for a device enrolled in a deployment: .* has no enrolment \(enrolment.json\); give --enrol FILE at its first start/)
    const badRelay = await runCli(['site', '--data', dir, '--port', '0', '--enrol', file, '--relay', 'http://x'])
    expect(badRelay.stderr).toMatch(/^stockmesh: --relay "http:\/\/x": must be a ws:\/\/ or wss:\/\/ URL/)
    expect([noEnrolment.status, badRelay.status]).toEqual([1, 1])
    expect(folderListing(dir)).toBeNull()
  })

  it('revoke signs a list with seq + 1 naming the device; refusals say why and change nothing', async () => {
    const hub = await hubWithCatalog()
    const out = tempDir('enrol-')
    await ok(['enrol', '--data', hub, '--site', 'store-a', '--device', 'a-1', '--out', path.join(out, 'a1.json')])
    await ok(['enrol', '--data', hub, '--site', 'store-b', '--device', 'b-1', '--role', 'carrier', '--out', path.join(out, 'b1.json')])
    const deployment = JSON.parse(readFileSync(path.join(hub, 'deployment.json'), 'utf8')).deployment
    expect((await ok(['revoke', '--data', hub, '--device', 'a-1'])).trim()).toBe('device a-1 revoked: revocation list 1 names 1 device')
    expect((await ok(['revoke', '--data', hub, '--device', 'b-1'])).trim()).toBe('device b-1 revoked: revocation list 2 names 2 devices')
    const register = JSON.parse(readFileSync(path.join(hub, 'register.json'), 'utf8'))
    expect(register.revocations.seq).toBe(2)
    const list = verifyRevocations(register.revocations.token, deployment)
    expect(list.ok && list.claims).toMatchObject({ seq: 2, devices: ['a-1', 'b-1'] })
    expect(register.devices['a-1'].revokedAt).toEqual(expect.any(String))

    const before = folderListing(hub)
    const refusals: [string[], RegExp][] = [
      [['deployment', 'init', '--data', hub], /holds a deployment already/],
      [['revoke', '--data', hub, '--device', 'nobody'], /device nobody is not enrolled/],
      [['enrol', '--data', hub, '--site', 'store-a', '--device', 'a-1', '--out', path.join(out, 'x.json')], /device a-1 is enrolled already/],
      [['enrol', '--data', hub, '--site', 'store a', '--out', path.join(out, 'y.json')], /not a valid site id/],
      [['enrol', '--data', hub, '--site', 'store-a', '--role', 'boss', '--out', path.join(out, 'y.json')], /must be device, carrier or relay/],
      [['enrol', '--data', hub, '--site', 'store-a', '--expires', 'soon', '--out', path.join(out, 'y.json')], /is not a duration/],
      [['enrol', '--data', hub, '--site', 'store-a', '--relay', 'http://x', '--out', path.join(out, 'y.json')], /ws:\/\/ or wss:\/\//],
      [['enrol', '--data', hub, '--site', 'store-a', '--out', path.join(out, 'a1.json')], /exists already/],
    ]
    for (const [args, message] of refusals) {
      const result = await runCli(args)
      expect(result.status, args.join(' ')).toBe(1)
      expect(result.stderr, args.join(' ')).toMatch(/^stockmesh: /)
      expect(result.stderr, args.join(' ')).toMatch(message)
    }
    expect(folderListing(hub)).toEqual(before)

    const notHub = tempDir()
    const result = await runCli(['enrol', '--data', notHub, '--site', 'store-a', '--out', path.join(out, 'z.json')])
    expect(result.status).toBe(1)
    expect(result.stderr).toMatch(/^stockmesh: .* is not a hub folder \(no deployment.json\): make one with stockmesh deployment init/)
    expect(folderListing(notHub)).toEqual([expect.stringMatching(/^\. /)])
  })

  it('every new command has --help', async () => {
    for (const command of [['deployment', 'init'], ['enrol'], ['revoke']]) {
      const help = await runCli([...command, '--help'])
      expect(help.status).toBe(0)
      expect(help.stdout).toContain('--data <dir>')
    }
  })
})
