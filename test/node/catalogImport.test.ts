/**
 * Catalog import: CSV parsing and validation (every bad row named, by line and field), the
 * document operation, and the import into a data folder (nothing written when refused).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import * as A from '@automerge/automerge'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { createCatalog, importCatalog } from '../../src/docs/catalog.ts'
import { CatalogFileError, importCatalogFiles, importSummary, parseCatalogCsv, readCatalogFiles } from '../../src/node/catalogImport.ts'
import { lockDataFolder } from '../../src/node/dataFolderLock.ts'
import { SiteNode } from '../../src/node/siteNode.ts'
import type { CatalogDoc, CatalogImport } from '../../src/schema/catalog.ts'
import { str } from '../../src/schema/strings.ts'
import { folderListing } from '../cli/cliHelpers.ts'
import { tempDir } from '../helpers/tempDir.ts'

const logger = pino({ level: 'silent' })

function refusal(text: string | Uint8Array): CatalogFileError {
  try {
    parseCatalogCsv(text, 'file.csv')
  } catch (error) {
    expect(error).toBeInstanceOf(CatalogFileError)
    return error as CatalogFileError
  }
  throw new Error('the file was accepted')
}

describe('parseCatalogCsv', () => {
  it('reads products, with or without a BOM, CRLF, quoted fields and an active column', () => {
    const text = '\uFEFFsku,name,unit,active\r\nAMOX-500,"Amoxicillin 500 mg, capsules",pack of 100,yes\r\n ORS-1L , ORS sachet ,sachet,\r\nOLD-1,Old thing,each,FALSE\r\n'
    const parsed = parseCatalogCsv(text, 'p.csv')
    expect(parsed.kind).toBe('products')
    expect(parsed.rows.products).toEqual([
      { sku: 'AMOX-500', name: 'Amoxicillin 500 mg, capsules', unit: 'pack of 100', active: true },
      { sku: 'ORS-1L', name: 'ORS sachet', unit: 'sachet' },
      { sku: 'OLD-1', name: 'Old thing', unit: 'each', active: false },
    ])
    expect(parsed.rows.reasons).toEqual([])
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...Buffer.from('sku,name,unit\nA-1,Ä thing,each\n')])
    expect(parseCatalogCsv(bytes, 'p.csv').rows.products).toEqual([{ sku: 'A-1', name: 'Ä thing', unit: 'each' }])
  })

  it('reads a lots column (yes/no): products tracked by lot and expiry; a bad value names the line and field', () => {
    const parsed = parseCatalogCsv('sku,name,unit,lots\nAL-6X1,Artemether/lumefantrine,blister,yes\nORS-1L,ORS,sachet,no\nZINC-20,Zinc,blister,\n', 'p.csv')
    expect(parsed.rows.products).toEqual([
      { sku: 'AL-6X1', name: 'Artemether/lumefantrine', unit: 'blister', lots: true },
      { sku: 'ORS-1L', name: 'ORS', unit: 'sachet', lots: false },
      { sku: 'ZINC-20', name: 'Zinc', unit: 'blister' },
    ])
    expect(refusal('sku,name,unit,lots\nA-1,A,each,maybe\n').message).toMatch(/line 2.*lots.*must be true or false/)
  })

  it('reads reasons and sites, headers in any case and order, semicolon-separated too', () => {
    expect(parseCatalogCsv('Label;Code\nDamaged;damaged\n', 'r.csv')).toEqual({ kind: 'reasons', rows: { products: [], sites: [], reasons: [{ code: 'damaged', label: 'Damaged' }] } })
    expect(parseCatalogCsv('id,name,type\nhub-1,Regional hub,hub\n', 's.csv').rows.sites).toEqual([{ id: 'hub-1', name: 'Regional hub', type: 'hub' }])
  })

  it('names every bad row with its line and field, and the SKU listed twice', () => {
    const text = ['sku,name,unit', 'GOOD-1,Good,each', 'bad sku,Bad,each', 'GOOD-2,,each', '', 'GOOD-3,"two', 'lines",each,extra', 'GOOD-1,Again,each', 'X-1,Thing,each,', 'Y-1,Y,' + 'u'.repeat(40)].join('\n')
    const error = refusal(text)
    expect(error.problems).toEqual([
      { line: 3, field: 'sku', message: expect.stringMatching(/^SKU must be /) },
      { line: 4, field: 'name', message: 'must not be empty' },
      { line: 6, field: '', message: 'has 4 fields, the header has 3 (sku,name,unit)' },
      { line: 8, field: 'sku', message: 'GOOD-1 is listed twice (also on line 2)' },
      { line: 9, field: '', message: 'has 4 fields, the header has 3 (sku,name,unit)' },
      { line: 10, field: 'unit', message: expect.any(String) },
    ])
    expect(error.message.split('\n')).toEqual([
      'file.csv: 6 bad rows',
      expect.stringMatching(/^ {2}line 3: sku: SKU must be /),
      '  line 4: name: must not be empty',
      '  line 6: has 4 fields, the header has 3 (sku,name,unit)',
      '  line 8: sku: GOOD-1 is listed twice (also on line 2)',
      '  line 9: has 4 fields, the header has 3 (sku,name,unit)',
      expect.stringMatching(/^ {2}line 10: unit: /),
    ])
  })

  it('names a bad active value and a bad site type', () => {
    expect(refusal('sku,name,unit,active\nA-1,A,each,maybe\n').problems).toEqual([{ line: 2, field: 'active', message: expect.stringMatching(/^must be true or false/) }])
    expect(refusal('id,name,type\nx-1,X,shop\n').problems).toEqual([{ line: 2, field: 'type', message: 'must be store, clinic, warehouse or hub' }])
  })

  it('refuses unknown, missing and doubled columns, naming them', () => {
    expect(refusal('sku,name,unit,colour,size\nA-1,A,each,red,L\n').message).toBe('file.csv: line 1: unknown columns colour, size (a products file has sku,name,unit[,active][,lots])')
    expect(refusal('sku,name\nA-1,A\n').message).toBe('file.csv: line 1: missing column unit (a products file has sku,name,unit[,active][,lots])')
    expect(refusal('code,label,label\nx,X,Y\n').message).toBe('file.csv: line 1: column listed twice: label')
    expect(refusal('product,description\nA-1,A\n').message).toMatch(/^file\.csv: line 1: the header \(product,description\) does not say what the file holds: it must be sku,name,unit\[,active\]\[,lots\] \(products\), code,label \(reasons\) or id,name,type \(sites\)$/)
  })

  it('refuses an empty file, a header without rows, and text that is not UTF-8', () => {
    for (const empty of ['', '\uFEFF', '\n\n  \n']) expect(refusal(empty).message).toMatch(/^file\.csv: the file is empty: the first line must be a header/)
    expect(refusal('sku,name,unit\n\n').message).toBe('file.csv: the file has a header (sku,name,unit) but no rows')
    expect(refusal(Buffer.from('sku,name,unit\nA-1,Caf\xe9,each\n', 'latin1')).message).toBe('file.csv: the file is not UTF-8 text: save it as "CSV UTF-8"')
    expect(refusal(Buffer.from('\uFEFFsku,name,unit\n', 'utf16le')).message).toBe('file.csv: the file is UTF-16 text: save it as "CSV UTF-8"')
  })
})

describe('readCatalogFiles', () => {
  it('reads one file of each kind, and refuses two of one kind or a missing file', async () => {
    const dir = tempDir()
    const file = (name: string, text: string) => {
      writeFileSync(path.join(dir, name), text)
      return path.join(dir, name)
    }
    const p = file('p.csv', 'sku,name,unit\nA-1,A,each\n')
    const r = file('r.csv', 'code,label\ndamaged,Damaged\n')
    expect(await readCatalogFiles([p, r])).toEqual({ products: [{ sku: 'A-1', name: 'A', unit: 'each' }], reasons: [{ code: 'damaged', label: 'Damaged' }], sites: [] })
    await expect(readCatalogFiles([p, file('p2.csv', 'sku,name,unit\nB-1,B,each\n')])).rejects.toThrow('more than one products file: put all products in one file\nnothing was imported')
    await expect(readCatalogFiles([p, path.join(dir, 'nope.csv')])).rejects.toThrow(`${path.join(dir, 'nope.csv')}: cannot read it: no such file`)
  })
})

describe('importCatalog', () => {
  const catalog = (fn: (d: CatalogDoc) => void) => A.change(A.change(A.init<CatalogDoc>(), (d) => createCatalog(d)), fn)
  const rows = (partial: Partial<CatalogImport>): CatalogImport => ({ products: [], reasons: [], sites: [], ...partial }) as CatalogImport

  it('adds, renames and updates what the import names and keeps everything else', () => {
    let doc = catalog((d) => importCatalog(d, rows({ products: [{ sku: 'A-1', name: 'A', unit: 'each' }, { sku: 'B-1', name: 'B', unit: 'each', active: false }, { sku: 'C-1', name: 'C', unit: 'each' }] } as never)))
    let counts
    doc = A.change(doc, (d) => {
      counts = importCatalog(d, rows({
        products: [{ sku: 'A-1', name: 'A renamed', unit: 'each' }, { sku: 'B-1', name: 'B', unit: 'each' }, { sku: 'C-1', name: 'C', unit: 'box' }, { sku: 'D-1', name: 'D', unit: 'each' }],
        reasons: [{ code: 'damaged', label: 'Damaged' }],
      } as never))
    })
    expect(counts).toEqual({
      products: { added: 1, renamed: 1, updated: 1, unchanged: 1 },
      reasons: { added: 1, renamed: 0, updated: 0, unchanged: 0 },
      sites: { added: 0, renamed: 0, updated: 0, unchanged: 0 },
    })
    expect(str(doc.products['A-1']!.name)).toBe('A renamed')
    // A file that says nothing about `active` leaves it as it was.
    expect(doc.products['B-1']!.active).toBe(false)
    expect(Object.keys(doc.products).sort()).toEqual(['A-1', 'B-1', 'C-1', 'D-1'])
    expect(importSummary({ site: 's', counts: counts! })).toBe('catalog of site s: 1 added, 1 renamed, 1 updated, 1 unchanged (products); 1 added (reasons)')
  })

  it('refuses an id listed twice, writing nothing', () => {
    const doc = catalog(() => undefined)
    const product = { sku: 'A-1', name: 'A', unit: 'each' }
    expect(() => A.change(doc, (d) => void importCatalog(d, rows({ products: [product, { ...product, name: 'Other' }] } as never)))).toThrow('sku: A-1 is listed twice')
  })
})

describe('importCatalogFiles', () => {
  async function provisioned(): Promise<string> {
    const dir = tempDir()
    const node = await SiteNode.open({ dataDir: dir, site: 'store-1', logger })
    await node.close()
    return dir
  }
  function csv(text: string): string {
    const file = path.join(tempDir('csv-'), 'products.csv')
    writeFileSync(file, text)
    return file
  }
  async function products(dir: string) {
    const node = await SiteNode.open({ dataDir: dir, logger })
    try {
      return Object.fromEntries(Object.entries(node.catalog.doc().products).map(([sku, p]) => [sku, str(p.name)]))
    } finally {
      await node.close()
    }
  }

  it('imports into the folder and updates on a second import', async () => {
    const dir = await provisioned()
    const first = await importCatalogFiles({ dataDir: dir, files: [csv('sku,name,unit\nA-1,A,each\nB-1,B,each\n')], logger })
    expect(importSummary(first)).toBe('catalog of site store-1: 2 added (products)')
    const second = await importCatalogFiles({ dataDir: dir, files: [csv('sku,name,unit\nA-1,A new,each\n')], logger })
    expect(importSummary(second)).toBe('catalog of site store-1: 1 renamed (products)')
    expect(await products(dir)).toEqual({ 'A-1': 'A new', 'B-1': 'B' })
  })

  it('writes nothing when a row is bad', async () => {
    const dir = await provisioned()
    const before = folderListing(dir)
    await expect(importCatalogFiles({ dataDir: dir, files: [csv('sku,name,unit\nA-1,A,each\nB 1,B,each\n')], logger })).rejects.toThrow(/line 3: sku: SKU must be/)
    expect(folderListing(dir)).toEqual(before)
  })

  it('refuses a folder in use, naming the holder and saying to stop the site, and writes nothing', async () => {
    const dir = await provisioned()
    const lock = await lockDataFolder(dir, { command: 'stockmesh site', url: 'http://127.0.0.1:8470/' })
    try {
      const before = folderListing(dir)
      await expect(importCatalogFiles({ dataDir: dir, files: [csv('sku,name,unit\nA-1,A,each\n')], logger })).rejects.toThrow(
        new RegExp(`^data folder .* is in use by process ${process.pid} \\(this process: stockmesh site, since .*, http://127\\.0\\.0\\.1:8470/\\): stop the site first, then import$`),
      )
      expect(folderListing(dir)).toEqual(before)
    } finally {
      await lock.release()
    }
  })

  it('refuses an unprovisioned folder without provisioning it, and does not create a missing one', async () => {
    const empty = tempDir()
    const missing = path.join(tempDir(), 'missing')
    for (const dir of [empty, missing]) {
      await expect(importCatalogFiles({ dataDir: dir, files: [csv('sku,name,unit\nA-1,A,each\n')], logger })).rejects.toThrow(`${dir} is not provisioned yet: start the site once`)
    }
    expect(folderListing(empty)).toHaveLength(1)
    expect(folderListing(missing)).toBeNull()
    // A folder a site started to use but never finished provisioning (a crash): left as it is.
    mkdirSync(path.join(empty, 'automerge'))
    const before = folderListing(empty)
    await expect(importCatalogFiles({ dataDir: empty, files: [csv('sku,name,unit\nA-1,A,each\n')], logger })).rejects.toThrow('is not provisioned yet')
    expect(folderListing(empty)).toEqual(before)
  })
})
