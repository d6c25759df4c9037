/** The advertisement's parts: a service read defensively, and document schemas compared. */
import { describe, expect, it } from 'vitest'
import { compareSchemas, lanServiceOf, SCHEMA_TXT } from '../../src/peer-sync/lanProtocol.ts'

const DEP = 'dep-0123456789abcdef'
const txt = { dep: DEP, site: 'store-a', dev: 'a1', role: 'device', pv: '1' }

describe('LAN advertisements', () => {
  it('reads a service of this deployment, and nothing else', () => {
    expect(lanServiceOf({ txt, port: 4000, referer: { address: '10.0.0.5' } }, DEP)).toEqual({ peerId: 'site/store-a/a1', url: 'ws://10.0.0.5:4000', txt })
    expect(lanServiceOf({ txt: { ...txt, role: 'carrier' }, port: 4000, addresses: ['fe80::1', '10.0.0.6'] }, DEP)?.url).toBe('ws://10.0.0.6:4000')
    expect(lanServiceOf({ txt, port: 4000, referer: { address: '10.0.0.5' } }, 'dep-fedcba9876543210')).toBeUndefined()
    for (const bad of [{ txt, port: 0 }, { txt, port: 70000 }, { txt, port: '4000' }, { txt: { ...txt, site: '../x' }, port: 1 }, { txt: { ...txt, pv: undefined }, port: 1 }, { txt: null, port: 1 }, { txt, port: 4000 }]) {
      expect(lanServiceOf(bad as never, DEP)).toBeUndefined()
    }
  })

  it('compares document schemas: same, newer, older, or unknown (a node from before `sv`)', () => {
    expect(compareSchemas(SCHEMA_TXT)).toEqual({ state: 'same' })
    expect(compareSchemas(undefined)).toEqual({ state: 'unknown' })
    expect(compareSchemas('not a schema list')).toEqual({ state: 'unknown' })
    const newer = compareSchemas(SCHEMA_TXT.replace(/j\d+/, 'j99'))
    expect(newer.state).toBe('newer')
    expect(newer.detail).toMatch(/journal 99/)
    expect(compareSchemas(SCHEMA_TXT.replace(/o\d+/, 'o1'))).toMatchObject({ state: 'older', detail: expect.stringMatching(/order 1/) })
    expect(compareSchemas(`${SCHEMA_TXT}.z1`)).toMatchObject({ state: 'newer', detail: expect.stringMatching(/kind 'z'/) })
  })
})
