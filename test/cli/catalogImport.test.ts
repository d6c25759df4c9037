/**
 * `stockmesh catalog import`, end to end with real processes: a site started as the README shows
 * has no products and refuses every movement; after an import it accepts them.
 */
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { api } from '../helpers/api.ts'
import { startSiteProcess, type SiteProcess } from '../helpers/siteProcess.ts'
import { tempDir } from '../helpers/tempDir.ts'
import { folderListing, runCli } from './cliHelpers.ts'

const sites: SiteProcess[] = []
afterEach(async () => {
  for (const site of sites.splice(0)) await site.kill('SIGKILL')
})

async function start(dir: string, ...more: string[]): Promise<SiteProcess> {
  const site = await startSiteProcess(['site', '--data', dir, '--port', '0', '--log-level', 'warn', ...more])
  sites.push(site)
  return site
}

function csvFile(name: string, text: string): string {
  const file = path.join(tempDir('csv-'), name)
  writeFileSync(file, text)
  return file
}

const receipt = (id: string, sku: string) => ({ id, kind: 'receipt', sku, quantity: 10, user: 'amina' })

describe('stockmesh catalog import', () => {
  it('fills the catalog of a new site so that it accepts movements, and renames on a second import', async () => {
    const dir = tempDir()
    const fresh = await start(dir, '--site', 'store-12')
    expect((await api(fresh.url, 'POST', '/api/movements', receipt('rcv-0', 'AMOX-500'))).status).toBe(422)
    expect(await fresh.kill('SIGTERM')).toBe(0)

    // As a spreadsheet saves it: BOM and CRLF.
    const products = csvFile('products.csv', '\uFEFFsku,name,unit\r\nAMOX-500,Amoxicillin 500 mg capsules,pack of 100\r\nORS-1L,"Oral rehydration salts, 1 L",sachet\r\n')
    const reasons = csvFile('reasons.csv', 'code,label\ndamaged,Damaged\n')
    const imported = await runCli(['catalog', 'import', '--data', dir, products, reasons])
    expect(imported.stderr).toBe('')
    expect(imported.status).toBe(0)
    expect(imported.stdout.trim()).toBe('catalog of site store-12: 2 added (products); 1 added (reasons)')

    const site = await start(dir)
    expect((await api(site.url, 'POST', '/api/movements', receipt('rcv-1', 'AMOX-500'))).status).toBe(201)
    const stock = await api(site.url, 'GET', '/api/stock')
    expect(stock.body.items).toContainEqual({ sku: 'AMOX-500', name: 'Amoxicillin 500 mg capsules', unit: 'pack of 100', onHand: 10, lotTracked: false })
    expect(await site.kill('SIGTERM')).toBe(0)

    const renamed = csvFile('products.csv', 'sku,name,unit\nAMOX-500,Amoxicillin 500 mg caps,pack of 100\n')
    const second = await runCli(['catalog', 'import', '--data', dir, renamed])
    expect(second.status).toBe(0)
    expect(second.stdout.trim()).toBe('catalog of site store-12: 1 renamed (products)')
    const again = await start(dir)
    const items = (await api(again.url, 'GET', '/api/stock')).body.items
    expect(items).toContainEqual({ sku: 'AMOX-500', name: 'Amoxicillin 500 mg caps', unit: 'pack of 100', onHand: 10, lotTracked: false })
    // Not in the second file, still in the catalog.
    expect(items).toContainEqual(expect.objectContaining({ sku: 'ORS-1L', name: 'Oral rehydration salts, 1 L' }))
    expect(await again.kill('SIGTERM')).toBe(0)

    // A lots column: the product is tracked by lot from then on, its receipts name a lot and its expiry.
    const tracked = csvFile('products.csv', 'sku,name,unit,lots\nAMOX-500,Amoxicillin 500 mg caps,pack of 100,yes\n')
    expect((await runCli(['catalog', 'import', '--data', dir, tracked])).stdout.trim()).toBe('catalog of site store-12: 1 updated (products)')
    const third = await start(dir)
    expect((await api(third.url, 'POST', '/api/movements', receipt('rcv-2', 'AMOX-500'))).body).toMatchObject({ code: 'lot-required', field: 'lot' })
    expect((await api(third.url, 'POST', '/api/movements', { ...receipt('rcv-3', 'AMOX-500'), lot: 'B1', expiry: '2027-01-31' })).status).toBe(201)
    // The stock from before it was tracked is in no lot.
    expect((await api(third.url, 'GET', '/api/stock/AMOX-500')).body).toMatchObject({ onHand: 20, lotTracked: true, lots: [{ lot: 'B1', expiry: '2027-01-31', onHand: 10 }], notInLots: 10 })
  })

  it('refuses a file with bad rows, naming each, and changes nothing', async () => {
    const dir = tempDir()
    await (await start(dir, '--site', 'store-12')).kill('SIGTERM')
    const before = folderListing(dir)
    const bad = csvFile('products.csv', 'sku,name,unit\nAMOX-500,Amoxicillin,pack\nAMOX 500,Amoxicillin,pack\nORS-1L,,sachet\nAMOX-500,Again,pack\n')
    const res = await runCli(['catalog', 'import', '--data', dir, bad])
    expect(res.status).toBe(1)
    expect(res.stderr.trim().split('\n')).toEqual([
      `stockmesh: ${bad}: 3 bad rows`,
      expect.stringMatching(/^ {2}line 3: sku: SKU must be /),
      '  line 4: name: must not be empty',
      '  line 5: sku: AMOX-500 is listed twice (also on line 2)',
      'nothing was imported',
    ])
    expect(folderListing(dir)).toEqual(before)
  })

  it('refuses while the site runs, naming it, and changes nothing', async () => {
    const dir = tempDir()
    const site = await start(dir, '--site', 'store-12')
    await new Promise((resolve) => setTimeout(resolve, 500))
    const before = folderListing(dir)
    const res = await runCli(['catalog', 'import', '--data', dir, csvFile('p.csv', 'sku,name,unit\nA-1,A,each\n')])
    expect(res.status).toBe(1)
    expect(res.stderr).toMatch(new RegExp(`^stockmesh: data folder .* is in use by process ${site.child.pid} \\(stockmesh site, since .*\\): stop the site first, then import\\n$`))
    expect(folderListing(dir)).toEqual(before)
  })

  it('refuses a folder that is not provisioned, without provisioning it', async () => {
    const dir = tempDir()
    const res = await runCli(['catalog', 'import', '--data', dir, csvFile('p.csv', 'sku,name,unit\nA-1,A,each\n')])
    expect(res.status).toBe(1)
    expect(res.stderr).toContain(`stockmesh: ${dir} is not provisioned yet: start the site once (stockmesh site --data ${dir} --site <id>), stop it, then import`)
    expect(folderListing(dir)).toHaveLength(1)
  })
})
