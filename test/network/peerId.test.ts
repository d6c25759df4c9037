import { describe, expect, it } from 'vitest'
import { formatPeerId, isPeerId, parsePeerId } from '../../src/network/peerId.ts'

describe('peer ids', () => {
  it('round-trips role, site and device, whatever characters the ids allow', () => {
    const id = formatPeerId({ role: 'carrier', site: 'hub.north:1', device: 'truck-7_b' })
    expect(id).toBe('carrier/hub.north:1/truck-7_b')
    expect(parsePeerId(id)).toEqual({ role: 'carrier', site: 'hub.north:1', device: 'truck-7_b' })
    expect(isPeerId(id)).toBe(true)
  })

  it.each([
    ['not a string', 42],
    ['two parts', 'site/store-1'],
    ['four parts', 'site/store-1/dev-1/x'],
    ['an unknown role', 'admin/store-1/dev-1'],
    ['an empty site', 'site//dev-1'],
    ['a site that is not an id', 'site/store 1/dev-1'],
    ['the old colon form', 'site:store-1:dev-1'],
  ])('refuses %s', (_, value) => {
    expect(parsePeerId(value)).toBeUndefined()
    expect(isPeerId(value)).toBe(false)
  })

  it('will not make a peer id from parts that are not ids', () => {
    expect(() => formatPeerId({ role: 'site', site: 'a/b', device: 'd' })).toThrow()
    expect(() => formatPeerId({ role: 'nobody' as never, site: 's', device: 'd' })).toThrow(/role/)
  })
})
