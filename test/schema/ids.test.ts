import { describe, expect, it } from 'vitest'
import { InputError, parseInput } from '../../src/schema/errors.ts'
import { DeviceId, LineId, ManifestId, MovementId, OrderId, ReasonCode, SiteId, Sku, StopId, UserId } from '../../src/schema/ids.ts'
import { MovementInput } from '../../src/schema/ledger.ts'

describe('branded ids', () => {
  it.each(['AMOX-500', 'rcv:m1:s1:l1', 'a.b_c-d', 'x'.repeat(128)])('accepts %s', (id) => {
    expect(MovementId.safeParse(id).success).toBe(true)
  })
  it.each(['', ' lead', 'has space', 'a/b', 'sku@node', '-dash-first', 'x'.repeat(129), 42, null])('refuses %s', (id) => {
    expect(Sku.safeParse(id).success).toBe(false)
  })
})

describe('MovementInput', () => {
  it('names the field that is wrong', () => {
    const error = (() => {
      try {
        parseInput(MovementInput, { id: 'm1', kind: 'receipt', sku: 'bad sku', quantity: 1, user: 'u' })
      } catch (e) {
        return e
      }
    })()
    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).field).toBe('sku')
    expect((error as InputError).message).toMatch(/^sku: SKU must be/)
  })
})

describe('ids named like Object.prototype members', () => {
  const kinds = { SiteId, Sku, MovementId, DeviceId, UserId, OrderId, ManifestId, StopId, LineId, ReasonCode }

  it.each(Object.entries(kinds))('%s refuses __proto__ (it starts with _), so it never becomes a document key', (_kind, schema) => {
    expect(schema.safeParse('__proto__').success).toBe(false)
  })

  it.each(['constructor', 'toString', 'hasOwnProperty', 'valueOf'])('accepts %s for every kind: lookups must be own-key (src/schema/ownProperty.ts)', (id) => {
    for (const schema of Object.values(kinds)) expect(schema.safeParse(id).success).toBe(true)
  })
})
