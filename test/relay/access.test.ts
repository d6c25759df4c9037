import { describe, expect, it } from 'vitest'
import { SiteAccess } from '../../src/relay/access.ts'

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
