import * as A from '@automerge/automerge'
import { describe, expect, it } from 'vitest'
import { ReadOnlyDocumentError } from '../../src/schema/errors.ts'
import { LEDGER_SCHEMA } from '../../src/schema/ledger.ts'
import { assertWritable, migrate, registerSchema, schemaState } from '../../src/schema/migrations.ts'
import { indexDecisions, recordDecision, withDecision } from '../../src/docs/reviewDecision.ts'

/** A ledger as version 1 wrote it: strings as collaborative text. */
function ledgerV1() {
  return A.from<any>({
    schema: 1,
    kind: 'ledger',
    site: 'store-1',
    journals: { 'dev-1/000001': 'automerge:abc' },
    decisions: {},
  })
}

describe('ledger migration 2', () => {
  it('turns text fields into ImmutableStrings with the same values', () => {
    let doc = ledgerV1()
    expect(doc.site).not.toBeInstanceOf(A.ImmutableString)
    let ran: string[] = []
    doc = A.change(doc, (d) => {
      ran = migrate('ledger', d)
    })
    expect(ran).toHaveLength(LEDGER_SCHEMA - 1)
    expect(doc.schema).toBe(LEDGER_SCHEMA)
    expect(doc.site).toBeInstanceOf(A.ImmutableString)
    expect(String(doc.site)).toBe('store-1')
    expect(doc.journals['dev-1/000001']).toBeInstanceOf(A.ImmutableString)
    expect(String(doc.journals['dev-1/000001'])).toBe('automerge:abc')
  })

  it('merges cleanly when two replicas migrate the same document at once', () => {
    const base = ledgerV1()
    const a = A.change(A.clone(base), (d) => void migrate('ledger', d))
    const b = A.change(A.clone(base), (d) => void migrate('ledger', d))
    const merged = A.merge(a, b)
    expect(A.toJS(merged)).toEqual(A.toJS(a))
    expect(String(merged.site)).toBe('store-1')
  })

  it('does nothing to a current document', () => {
    const doc = A.from<any>({ schema: LEDGER_SCHEMA, kind: 'ledger' })
    const after = A.change(doc, (d) => void migrate('ledger', d))
    expect(A.getHeads(after)).toEqual(A.getHeads(doc))
  })
})

describe('a document newer than the code', () => {
  it('is reported newer, left untouched by migrate and refused for writing', () => {
    const doc = A.from<any>({ schema: LEDGER_SCHEMA + 1, kind: 'ledger', site: 'x', futureField: [1, 2] })
    expect(schemaState('ledger', doc)).toEqual({ version: LEDGER_SCHEMA + 1, current: LEDGER_SCHEMA, state: 'newer' })
    const after = A.change(doc, (d) => void migrate('ledger', d))
    expect(A.getHeads(after)).toEqual(A.getHeads(doc))
    expect(() => assertWritable('ledger', doc)).toThrow(ReadOnlyDocumentError)
  })
})

describe('registerSchema()', () => {
  it('refuses migrations that are not numbered consecutively up to the current version', () => {
    const up = () => {}
    expect(() => registerSchema('catalog', 3, [{ version: 2, name: 'a', up }, { version: 4, name: 'b', up }])).toThrow(/consecutively/)
    expect(() => registerSchema('catalog', 3, [{ version: 2, name: 'a', up }])).toThrow(/end at 2/)
  })
})

describe('decisions keyed per decision (ledger 3, order 2, manifest 2)', () => {
  it('keeps reading decisions stored under their item id, concurrent ones included, and adds new ones beside them', () => {
    const base = A.from<any>({ schema: 1, kind: 'ledger', site: 'store-1', journals: {}, decisions: {} })
    const decide = (by: string) => (d: any) => {
      d.decisions['negative-stock:AMOX-500'] = { by, at: 5, note: `seen by ${by}`, movements: [] }
    }
    const merged = A.merge(A.change(A.clone(base), decide('ana')), A.change(A.clone(base), decide('ben')))
    const upgraded = A.change(merged, (d) => void migrate('ledger', d))
    expect(upgraded.schema).toBe(LEDGER_SCHEMA)
    const item = { id: 'negative-stock:AMOX-500', kind: 'negative-stock' as const, doc: 'ledger' as const, summary: 's', details: {} }
    expect(withDecision(item, indexDecisions(upgraded.decisions))).toMatchObject({ status: 'resolved', decision: { by: 'ana' }, details: { decisions: [{ by: 'ana' }, { by: 'ben' }] } })
    const other = { ...item, id: 'concurrent-counts:AMOX-500:first', kind: 'concurrent-counts' as const }
    const later = A.change(upgraded, (d) => recordDecision(d, [{ ...other, status: 'open' }], other.id, { note: 'ok', movements: [] }, { user: 'cy' as never, device: 'tab' as never, at: 9 }))
    const index = indexDecisions(later.decisions)
    expect(index.get(item.id)?.decisions.map((d) => d.by)).toEqual(['ana', 'ben'])
    expect(index.get(other.id)?.decisions.map((d) => d.by)).toEqual(['cy'])
  })
})
