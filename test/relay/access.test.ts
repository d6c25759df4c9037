import * as A from '@automerge/automerge'
import { describe, expect, it } from 'vitest'
import { imm } from '../../src/schema/strings.ts'
import { partiesOf, SiteAccess } from '../../src/relay/access.ts'

describe('SiteAccess (v1 rule)', () => {
  const access = () => new SiteAccess({ catalog: 'CAT', roots: [['A', ['A-index', 'A-ledger']], ['B', ['B-index']]], owners: [['A-journal', 'A']] })

  it('gives every stockmesh peer the catalog, and nobody else', () => {
    const a = access()
    expect(a.mayAccess('site/A/d1', 'CAT')).toBe(true)
    expect(a.mayAccess('carrier/C/d9', 'CAT')).toBe(true)
    expect(a.mayAccess('alice', 'CAT')).toBe(false)
  })

  it('gives a site its roots and the documents it owns, never another site’s', () => {
    const a = access()
    expect(a.mayAccess('site/A/d1', 'A-index')).toBe(true)
    expect(a.mayAccess('site/A/d2', 'A-journal')).toBe(true)
    expect(a.mayAccess('relay/A/gw', 'A-ledger')).toBe(true)
    expect(a.mayAccess('site/B/d1', 'A-ledger')).toBe(false)
    expect(a.mayAccess('site/B/d1', 'A-journal')).toBe(false)
    expect(a.mayAccess('site/A/d1', 'B-index')).toBe(false)
  })

  it('refuses unknown documents until a site claims them; a claim never takes a recorded document', () => {
    const a = access()
    expect(a.mayAccess('site/B/d1', 'new-doc')).toBe(false)
    expect(a.claimable('new-doc')).toBe(true)
    expect(a.claim('new-doc', 'B')).toBe(true)
    expect(a.mayAccess('site/B/d1', 'new-doc')).toBe(true)
    expect(a.mayAccess('site/A/d1', 'new-doc')).toBe(false)
    for (const taken of ['new-doc', 'A-ledger', 'A-journal', 'CAT']) {
      expect(a.claimable(taken)).toBe(false)
      expect(a.claim(taken, 'B')).toBe(false)
    }
    expect(a.siteOf('A-ledger')).toBe('A')
  })

  it('refuses peer ids that are not stockmesh peer ids', () => {
    const a = access()
    expect(a.mayAccess('A', 'A-index')).toBe(false)
    expect(a.mayAccess('site/A', 'A-index')).toBe(false)
    expect(a.mayAccess('site/A/d1/x', 'A-index')).toBe(false)
  })
})

describe('parties (rule 4)', () => {
  it('reads an order’s supplier and a manifest’s carrier and stops, only from the owner’s own documents', () => {
    expect(partiesOf({ kind: 'order', from: 'A', to: 'B' }, 'A')).toEqual(['B'])
    expect(partiesOf({ kind: 'manifest', from: 'W', carrier: 'C', stops: [{ site: 'A' }, { site: 'B' }, { site: 'A' }, null, { site: 7 }] }, 'W')).toEqual(['C', 'A', 'B'])
    expect(partiesOf({ kind: 'order', from: 'C', to: 'B' }, 'A')).toEqual([]) // not from its owner
    expect(partiesOf({ kind: 'ledger', from: 'A', to: 'B' }, 'A')).toEqual([])
    expect(partiesOf({ kind: 'order', from: 'A', to: 'A' }, 'A')).toEqual([])
    expect(partiesOf({ kind: 'order', from: 'A', to: 'not/an id' }, 'A')).toEqual([])
    expect(partiesOf(null, 'A')).toEqual([])
  })

  it('reads the fields as real documents store them (immutable strings)', () => {
    const order = A.from({ kind: imm('order'), from: imm('A'), to: imm('B') })
    expect(partiesOf(order, 'A')).toEqual(['B'])
    expect(partiesOf(order, 'B')).toEqual([])
    const manifest = A.from({ kind: imm('manifest'), from: imm('W'), carrier: imm('C'), stops: [{ site: imm('A') }] })
    expect(partiesOf(manifest, 'W')).toEqual(['C', 'A'])
  })

  it('gives parties the owner’s document, once recorded and never changed', () => {
    const a = new SiteAccess({ owners: [['order-1', 'A']] })
    expect(a.mayAccess('site/B/b1', 'order-1')).toBe(false)
    expect(a.setParties('order-1', ['B'])).toBe(true)
    expect(a.mayAccess('site/B/b1', 'order-1')).toBe(true)
    expect(a.mayAccess('site/C/c1', 'order-1')).toBe(false)
    expect(a.setParties('order-1', ['C'])).toBe(false)
    expect(a.mayAccess('site/C/c1', 'order-1')).toBe(false)
    expect(a.setParties('nobodys', ['C'])).toBe(false) // parties only for owned documents
  })
})

describe('SiteAccess between two carriers met on a LAN', () => {
  it('lets a document cross only when a site of each route may see it', () => {
    // This carrier's route: A and B. The other's: B and C.
    const a = new SiteAccess({ catalog: 'CAT', roots: [['A', ['A-ledger']], ['B', ['B-ledger']]], owners: [['po-ac', 'A'], ['po-ab', 'A'], ['A-journal', 'A']], parties: [['po-ac', ['C']], ['po-ab', ['B']]] })
    a.setLateral('carrier/hub/y', ['B', 'C'], ['A', 'B'])
    expect(a.isLateral('carrier/hub/y')).toBe(true)
    expect(a.mayAccess('carrier/hub/y', 'CAT')).toBe(true)
    expect(a.mayAccess('carrier/hub/y', 'po-ac')).toBe(true) // A's order to C: A on this route, C on its
    expect(a.mayAccess('carrier/hub/y', 'po-ab')).toBe(true)
    expect(a.mayAccess('carrier/hub/y', 'B-ledger')).toBe(true)
    expect(a.mayAccess('carrier/hub/y', 'A-ledger')).toBe(false) // A is not on its route
    expect(a.mayAccess('carrier/hub/y', 'A-journal')).toBe(false)
    // A document of C's that this route may not see does not come here, though the other carrier holds it.
    a.claim('C-journal', 'C')
    expect(a.mayAccess('carrier/hub/y', 'C-journal')).toBe(false)
    // Parties a carrier stated are replaced by the upstream's record (and only by it).
    a.claim('po-x', 'A')
    expect(a.setParties('po-x', ['C'])).toBe(true)
    expect(a.setParties('po-x', ['B'])).toBe(false)
    expect(a.setParties('po-x', ['B'], { override: true })).toBe(true)
    expect(a.partiesOf('po-x')).toEqual(['B'])
    expect(a.setParties('po-x', ['B'], { override: true })).toBe(false)
    // Gone: nothing.
    a.setLateral('carrier/hub/y', undefined, ['A', 'B'])
    expect(a.isLateral('carrier/hub/y')).toBe(false)
    expect(a.mayAccess('carrier/hub/y', 'po-ac')).toBe(false)
  })
})
