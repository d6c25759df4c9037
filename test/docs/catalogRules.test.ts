import * as A from '@automerge/automerge'
import { describe, expect, it } from 'vitest'
import { createCatalog, isKnownReason, isKnownSite, isKnownSku, reasonCodes, upsertProduct, upsertReason, upsertSite } from '../../src/docs/catalog.ts'
import {
  checkLedgerDecisionAgainstCatalog,
  checkManifestAgainstCatalog,
  checkOrderAgainstCatalog,
  checkOrderLineAgainstCatalog,
  checkReason,
} from '../../src/docs/catalogRules.ts'
import { addManifest, addOrder, createSiteIndex, indexedManifestUrl, indexedOrderUrl } from '../../src/docs/siteIndex.ts'
import type { CatalogDoc } from '../../src/schema/catalog.ts'
import { RuleError } from '../../src/schema/errors.ts'
import type { SiteIndexDoc } from '../../src/schema/siteIndex.ts'

/** Names every plain object inherits from Object.prototype: valid ids, and must never be found by accident. */
const PROTOTYPE_NAMES = ['constructor', 'toString', 'hasOwnProperty', 'valueOf'] as const

function catalogOf(fill: (d: CatalogDoc) => void = () => {}): A.Doc<CatalogDoc> {
  return A.change(A.init<CatalogDoc>(), (d) => {
    createCatalog(d)
    fill(d)
  })
}

/** Sites HUB-1, CLINIC-1, CLINIC-2; products AMOX-500, ORS-1 and OLD-1 (inactive); reasons damaged, expired. */
const catalog = catalogOf((d) => {
  for (const [id, type] of [['HUB-1', 'hub'], ['CLINIC-1', 'clinic'], ['CLINIC-2', 'clinic']]) upsertSite(d, { id, name: id, type })
  upsertProduct(d, { sku: 'AMOX-500', name: 'Amoxicillin', unit: 'pack' })
  upsertProduct(d, { sku: 'ORS-1', name: 'ORS', unit: 'sachet' })
  upsertProduct(d, { sku: 'OLD-1', name: 'Withdrawn', unit: 'each', active: false })
  upsertReason(d, { code: 'damaged', label: 'Damaged' })
  upsertReason(d, { code: 'expired', label: 'Expired' })
})

/** The RuleError `fn` throws (fails the test if it throws nothing or something else). */
function ruleError(fn: () => void): RuleError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(RuleError)
    return error as RuleError
  }
  throw new Error('expected a RuleError, nothing was thrown')
}

const ORDER = { id: 'po-1', from: 'CLINIC-1', to: 'HUB-1', lines: [{ sku: 'AMOX-500', requested: 5 }, { sku: 'ORS-1', requested: 2 }] }
const PLAN = {
  id: 'mf-1',
  from: 'HUB-1',
  carrier: 'Truck',
  stops: [
    { id: 's1', site: 'CLINIC-1', lines: [{ id: 'l1', sku: 'AMOX-500', shipped: 1 }] },
    { id: 's2', site: 'CLINIC-2', lines: [{ id: 'l1', sku: 'ORS-1', shipped: 1 }, { id: 'l2', sku: 'AMOX-500', shipped: 1 }] },
  ],
}

describe('checkOrderAgainstCatalog()', () => {
  it('accepts an order between sites of the catalog for active products', () => {
    expect(() => checkOrderAgainstCatalog(catalog, ORDER)).not.toThrow()
    expect(() => checkOrderAgainstCatalog(catalog, { lines: ORDER.lines })).not.toThrow()
  })

  it.each([
    ['a SKU not in the catalog', { ...ORDER, lines: [ORDER.lines[0]!, { sku: 'NOPE', requested: 1 }] }, 'unknown-sku', 'lines.1.sku', /lines\.1\.sku: SKU NOPE is not in this site's catalog/],
    ['an inactive product', { ...ORDER, lines: [{ sku: 'OLD-1', requested: 1 }] }, 'unknown-sku', 'lines.0.sku', /SKU OLD-1 is inactive/],
    ['an unknown requesting site', { ...ORDER, from: 'CLINIC-9' }, 'unknown-site', 'from', /^from: site CLINIC-9 is not in this site's catalog\. The catalog lists the sites CLINIC-1, CLINIC-2, HUB-1\.$/],
    ['an unknown supplying site', { ...ORDER, to: 'WH-9' }, 'unknown-site', 'to', /to: site WH-9/],
  ])('refuses %s, naming the field', (_what, order, code, field, message) => {
    const error = ruleError(() => checkOrderAgainstCatalog(catalog, order))
    expect([error.code, error.field]).toEqual([code, field])
    expect(error.message).toMatch(message)
  })

  it('names the first bad field and lists every bad value, the first five', () => {
    const lines = ['A', 'B', 'C', 'D', 'E', 'F'].map((sku) => ({ sku: `X-${sku}`, requested: 1 }))
    const error = ruleError(() => checkOrderAgainstCatalog(catalog, { ...ORDER, to: 'WH-9', lines }))
    expect([error.code, error.field]).toEqual(['unknown-site', 'to'])
    expect(error.message).toBe(
      "to: site WH-9 is not in this site's catalog; lines.0.sku: SKU X-A is not in this site's catalog; lines.1.sku: SKU X-B is not in this site's catalog; " +
        "lines.2.sku: SKU X-C is not in this site's catalog; lines.3.sku: SKU X-D is not in this site's catalog; and 2 more. The catalog lists the sites CLINIC-1, CLINIC-2, HUB-1.",
    )
  })

  it('accepts any well-formed site in a catalog that lists no sites (a standalone site), never a product it does not list', () => {
    const standalone = catalogOf((d) => upsertProduct(d, { sku: 'AMOX-500', name: 'A', unit: 'u' }))
    expect(() => checkOrderAgainstCatalog(standalone, { from: 'ANY-1', to: 'ANY-2', lines: [{ sku: 'AMOX-500' }] })).not.toThrow()
    expect(ruleError(() => checkOrderAgainstCatalog(standalone, { from: 'ANY-1', to: 'ANY-2', lines: [{ sku: 'ORS-1' }] })).code).toBe('unknown-sku')
  })
})

describe('checkOrderLineAgainstCatalog()', () => {
  it('accepts an active product and refuses anything else with field sku', () => {
    expect(() => checkOrderLineAgainstCatalog(catalog, { sku: 'ORS-1' })).not.toThrow()
    for (const sku of ['NOPE', 'OLD-1']) {
      const error = ruleError(() => checkOrderLineAgainstCatalog(catalog, { sku }))
      expect([error.code, error.field]).toEqual(['unknown-sku', 'sku'])
    }
  })
})

describe('checkManifestAgainstCatalog()', () => {
  it('accepts a plan whose hub, stops and SKUs are in the catalog', () => {
    expect(() => checkManifestAgainstCatalog(catalog, PLAN)).not.toThrow()
  })

  it.each([
    ['an unknown hub', { ...PLAN, from: 'HUB-9' }, 'unknown-site', 'from'],
    ['a stop at an unknown site', { ...PLAN, stops: [PLAN.stops[0]!, { ...PLAN.stops[1]!, site: 'CLINIC-9' }] }, 'unknown-site', 'stops.1.site'],
    ['a line of an unknown SKU', { ...PLAN, stops: [PLAN.stops[0]!, { ...PLAN.stops[1]!, lines: [PLAN.stops[1]!.lines[0]!, { id: 'l2', sku: 'NEW-SKU', shipped: 2 }] }] }, 'unknown-sku', 'stops.1.lines.1.sku'],
    ['a line of an inactive product', { ...PLAN, stops: [{ ...PLAN.stops[0]!, lines: [{ id: 'l1', sku: 'OLD-1', shipped: 1 }] }] }, 'unknown-sku', 'stops.0.lines.0.sku'],
  ])('refuses %s, naming the field', (_what, plan, code, field) => {
    const error = ruleError(() => checkManifestAgainstCatalog(catalog, plan))
    expect([error.code, error.field]).toEqual([code, field])
    expect(error.message.startsWith(`${field}: `)).toBe(true)
  })

  it('accepts any well-formed site in a catalog that lists no sites', () => {
    const standalone = catalogOf((d) => {
      upsertProduct(d, { sku: 'AMOX-500', name: 'A', unit: 'u' })
      upsertProduct(d, { sku: 'ORS-1', name: 'O', unit: 'u' })
    })
    expect(() => checkManifestAgainstCatalog(standalone, { ...PLAN, from: 'ELSEWHERE' })).not.toThrow()
  })
})

describe('checkLedgerDecisionAgainstCatalog()', () => {
  it('names the adjustment whose SKU or reason the catalog does not know', () => {
    const adjustments = [{ sku: 'AMOX-500', delta: -1, reason: 'damaged' }, { sku: 'AMOX-500', delta: 2, reason: 'found' }]
    expect(() => checkLedgerDecisionAgainstCatalog(catalog, { adjustments: adjustments.slice(0, 1) })).not.toThrow()
    const error = ruleError(() => checkLedgerDecisionAgainstCatalog(catalog, { adjustments }))
    expect([error.code, error.field]).toEqual(['unknown-reason', 'adjustments.1.reason'])
    expect(error.message).toBe("adjustments.1.reason: found is not a reason in this site's catalog. Known reasons: damaged, expired.")
    expect(ruleError(() => checkLedgerDecisionAgainstCatalog(catalog, { adjustments: [{ sku: 'NOPE', reason: 'damaged' }] })).field).toBe('adjustments.0.sku')
  })
})

describe('checkReason()', () => {
  it('lists the first five known reasons and says how many more', () => {
    const known = new Set(['a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7'])
    expect(() => checkReason('a7', known)).not.toThrow()
    const error = ruleError(() => checkReason('stolen', known))
    expect([error.code, error.field]).toEqual(['unknown-reason', 'reason'])
    expect(error.message).toBe("reason: stolen is not a reason in this site's catalog. Known reasons: a1, a2, a3, a4, a5 and 3 more.")
  })

  it('says so when the catalog lists no reasons', () => {
    expect(ruleError(() => checkReason('damaged', new Set())).message).toMatch(/lists no reasons yet/)
  })
})

describe('ids named like Object.prototype members', () => {
  const empty = catalogOf()

  it.each(PROTOTYPE_NAMES)('%s is no product, site or reason of a catalog that does not list it', (name) => {
    expect(isKnownSku(empty, name)).toBe(false)
    expect(isKnownSite(catalog, name)).toBe(false)
    expect(isKnownReason(catalog, name)).toBe(false)
    expect(ruleError(() => checkOrderLineAgainstCatalog(empty, { sku: name })).code).toBe('unknown-sku')
    expect(ruleError(() => checkOrderAgainstCatalog(catalog, { ...ORDER, from: name })).code).toBe('unknown-site')
    expect(ruleError(() => checkManifestAgainstCatalog(catalog, { ...PLAN, stops: [{ ...PLAN.stops[0]!, site: name }] })).field).toBe('stops.0.site')
  })

  it.each(PROTOTYPE_NAMES)('%s can be added to a catalog as a product, site and reason, in a document or a plain object', (name) => {
    const doc = catalogOf((d) => {
      expect(upsertProduct(d, { sku: name, name: 'P', unit: 'u' })).toBe('added')
      expect(upsertSite(d, { id: name, name: 'S', type: 'store' })).toBe('added')
      expect(upsertReason(d, { code: name, label: 'R' })).toBe('added')
    })
    expect(isKnownSku(doc, name)).toBe(true)
    expect(isKnownSite(doc, name)).toBe(true)
    expect(isKnownReason(doc, name)).toBe(true)
    expect(reasonCodes(doc)).toEqual([name])
    // A document read outside `change` is a plain object: an upsert there must not find Object's member.
    const plain = {} as CatalogDoc
    createCatalog(plain)
    expect(upsertProduct(plain, { sku: name, name: 'P', unit: 'u' })).toBe('added')
    expect(upsertSite(plain, { id: name, name: 'S', type: 'store' })).toBe('added')
    expect(upsertReason(plain, { code: name, label: 'R' })).toBe('added')
    expect(upsertProduct(plain, { sku: name, name: 'P2', unit: 'u' })).toBe('renamed')
    expect(Object.keys(plain.products)).toEqual([name])
  })

  it.each(PROTOTYPE_NAMES)('an order or manifest %s is registered in the site index and found there, and no other', (name) => {
    let index = A.change(A.init<SiteIndexDoc>(), (d) => createSiteIndex(d, 'S1', 'automerge:catalog', 'automerge:ledger'))
    expect(indexedOrderUrl(index, name)).toBeUndefined()
    expect(indexedManifestUrl(index, name)).toBeUndefined()
    index = A.change(index, (d) => {
      addOrder(d, name, 'automerge:order')
      addManifest(d, name, 'automerge:manifest')
    })
    expect(indexedOrderUrl(index, name)).toBe('automerge:order')
    expect(indexedManifestUrl(index, name)).toBe('automerge:manifest')
    // As a plain object too (the same functions run on a document read outside `change`).
    const plain = {} as SiteIndexDoc
    createSiteIndex(plain, 'S1', 'c', 'l')
    addOrder(plain, name, 'o')
    expect(indexedOrderUrl(plain, name)).toBe('o')
  })
})
