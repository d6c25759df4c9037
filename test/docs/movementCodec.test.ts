/**
 * Packed movements (journal schema 2, src/docs/movementCodec.ts) read back exactly as written, for
 * any posting: generated ids (ULIDs of the movement's time or not), references and keys holding the
 * separator and escape characters, negative and non-integer numbers, every kind; in journals
 * written movement by movement, so that times count along buckets and the dictionary grows. Older
 * journals (a map per movement) still read.
 */
import * as A from '@automerge/automerge'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createJournal, journalPosting, journalPostings, journalTotal, journalTotals, writeJournal, writeJournalAll, type Posting } from '../../src/docs/ledger.ts'
import { ulidTime } from '../../src/docs/movementCodec.ts'
import type { JournalDoc } from '../../src/schema/ledger.ts'
import { imm } from '../../src/schema/strings.ts'
import { checkProperty } from '../helpers/seed.ts'

const NODE = 'node-a'
const T0 = Date.UTC(2026, 10, 2, 9)
const KINDS = ['receipt', 'issue', 'adjustment', 'count', 'transferOut', 'transferIn'] as const
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

const text = fc.string({ unit: fc.constantFrom('a', 'Z', '7', '|', '%', '7C', '25', ':', '-', ' ', 'é'), maxLength: 12 })
const posting = (seq: number) =>
  fc
    .record({
      kind: fc.constantFrom(...KINDS),
      ulid: fc.boolean(),
      rand: fc.string({ unit: fc.constantFrom(...CROCKFORD), minLength: 16, maxLength: 16 }),
      otherId: fc.string({ unit: fc.constantFrom('a', 'B', '3', ':', '.', '-', '_'), minLength: 1, maxLength: 30 }),
      sku: fc.constantFrom('AMOX-500', 'ORS-1L', 'constructor', '__proto__x', 'a|b', '%7C'),
      delta: fc.oneof(fc.integer({ min: -1_000_000, max: 1_000_000 }), fc.double({ min: -1e6, max: 1e6, noNaN: true }), fc.constant(0)),
      dt: fc.integer({ min: -86_400_000, max: 86_400_000 * 8 }),
      by: fc.constantFrom('amina', 'zanele', 'u|1', 'x%y'),
      device: fc.option(fc.constantFrom('scanner-1', 'tab|2', ''), { nil: undefined }),
      reason: fc.option(fc.constantFrom('damaged', 'expired', 'cycle-count'), { nil: undefined }),
      reference: fc.option(text, { nil: undefined }),
      counted: fc.option(fc.integer({ min: 0, max: 1_000_000_000 }), { nil: undefined }),
      prev: fc.option(fc.oneof(fc.constant(''), fc.integer({ min: 1, max: 99_999 }).map((s) => `${NODE}:${s}`), fc.constantFrom('other:12', 'node-a:x', 'a|b:3')), { nil: undefined }),
      // Lots: one (all of the movement) or parts; names with the codec's separators too.
      lots: fc.option(fc.array(fc.record({ lot: fc.constantFrom('L1', 'AL2611', 'a/b', 'x,y', '%2F', '', 'c|d'), part: fc.integer({ min: -500, max: 500 }) }), { minLength: 1, maxLength: 3 }), { nil: undefined }),
      expiry: fc.option(fc.integer({ min: 0, max: 60_000 }).map((d) => new Date(d * 86_400_000).toISOString().slice(0, 10)), { nil: undefined }),
    })
    .map((r): Posting => {
      const at = T0 + r.dt
      // (-0 is not a quantity: it reads back as 0.)
      const p: Posting = { node: NODE, seq, id: r.ulid ? ulidTime(at) + r.rand : r.otherId, kind: r.kind, sku: r.sku, delta: r.delta + 0, at, by: r.by }
      if (r.device !== undefined) p.device = r.device
      if (r.reason !== undefined) p.reason = r.reason
      if (r.reference !== undefined) p.reference = r.reference
      if (r.counted !== undefined) p.counted = r.counted
      if (r.prev !== undefined) p.prev = r.prev
      if (r.lots !== undefined) {
        p.lots = r.lots.length === 1 ? [{ lot: r.lots[0]!.lot, delta: p.delta }] : r.lots.map((l) => ({ lot: l.lot, delta: l.part }))
        if (r.lots.length > 1) p.delta = p.lots.reduce((sum, l) => sum + l.delta, 0)
      }
      if (r.expiry !== undefined) p.expiry = r.expiry
      return p
    })

/** A journal written one change per movement, from `s0 + 1` on (buckets of 100 cross at 100, 200, …). */
function journalOf(postings: Posting[], s0: number): A.Doc<JournalDoc> {
  let doc = A.change(A.init<JournalDoc>(), (d) => createJournal(d, { site: 's', node: NODE, n: 1, week: '2026-W45', s0, open: new Map(), t0: T0 }))
  for (const p of postings) doc = A.change(doc, (d) => writeJournal(d, p))
  return doc
}

describe('packed movements', () => {
  it('read back exactly as written, one by one and all at once, after save and load', async () => {
    await checkProperty(
      'packed movements round trip',
      fc.property(
        fc.integer({ min: 0, max: 250 }).chain((s0) => fc.tuple(fc.constant(s0), fc.array(fc.nat(), { minLength: 1, maxLength: 40 }).chain((xs) => fc.tuple(...xs.map((_, i) => posting(s0 + 1 + i)))))),
        ([s0, postings]) => {
          const doc = A.load<JournalDoc>(A.save(journalOf(postings, s0)))
          expect(journalPostings(doc)).toEqual(postings)
          for (const p of postings) expect(journalPosting(doc, p.seq)).toEqual(p)
        },
      ),
      { numRuns: 60 },
    )
  })

  it('move each SKU total once per change, by the sum of a batch (one increment per SKU, not per movement)', () => {
    const batch: Posting[] = Array.from({ length: 40 }, (_, i) => ({ node: NODE, seq: i + 1, id: `b-${i}`, kind: i % 2 ? 'issue' : 'receipt', sku: i % 4 ? 'AMOX-500' : 'ORS-1L', delta: i % 2 ? -1 : 3, at: T0 + i, by: 'amina' }))
    let doc = A.change(A.init<JournalDoc>(), (d) => createJournal(d, { site: 's', node: NODE, n: 1, week: '2026-W45', s0: 0, open: new Map(), t0: T0 }))
    doc = A.change(doc, (d) => writeJournalAll(d, batch))
    const ops = A.decodeChange(A.getLastLocalChange(doc)!).ops
    expect(ops.filter((op) => op.action === 'inc')).toHaveLength(2)
    const sum = (sku: string) => batch.filter((p) => p.sku === sku).reduce((t, p) => t + p.delta, 0)
    expect(journalTotal(doc, 'AMOX-500')).toBe(sum('AMOX-500'))
    expect(journalTotal(doc, 'ORS-1L')).toBe(sum('ORS-1L'))
    expect(journalPostings(doc)).toEqual(batch)
    // Written again (a retried batch): nothing moves.
    const again = A.change(doc, (d) => writeJournalAll(d, batch))
    expect(journalTotal(again, 'AMOX-500')).toBe(sum('AMOX-500'))
  })

  it('store one string per movement, and a scanner ULID without its time part', () => {
    const at = T0 + 5_000
    const id = ulidTime(at) + 'ABCDEFGHJKMNPQRS'
    const doc = journalOf([{ node: NODE, seq: 1, id, kind: 'issue', sku: 'AMOX-500', delta: -3, at, by: 'amina', device: 'scanner-1', reference: 'REQ-1' }], 0)
    const stored = doc.m['0']!['1']
    expect(A.isImmutableString(stored)).toBe(true)
    expect(String(stored)).toBe('bABCDEFGHJKMNPQRS|AMOX-500|3|3uw|0|REQ-1')
    expect(Object.values(doc.d ?? {}).map(String)).toEqual(['amina|+scanner-1'])
  })

  it('still reads a journal of schema 1 (a map per movement) and writes its totals flat, as schemas 1–2 did', () => {
    const old = A.change(A.init<JournalDoc>(), (d) => {
      createJournal(d, { site: 's', node: NODE, n: 1, week: '2026-W45', s0: 0, open: new Map(), t0: T0 })
      delete d.t0
      delete d.d
      delete d.tt
      d.tot = {}
      d.schema = 1
    })
    const p: Posting = { node: NODE, seq: 1, id: 'm-1', kind: 'receipt', sku: 'AMOX-500', delta: 10, at: T0, by: 'amina', reference: 'GRN-1' }
    const written = A.change(A.clone(old), (d) => writeJournal(d, p))
    expect(A.isImmutableString(written.m['0']!['1'])).toBe(false)
    expect(journalPostings(written)).toEqual([p])
    // Its totals stay flat (schemas 1–2), and read as a schema-3 journal's sharded ones do.
    expect(Number(written.tot!['AMOX-500'])).toBe(10)
    expect(written.tt).toBeUndefined()
    expect(journalTotal(written, 'AMOX-500')).toBe(10)
    const sharded = A.change(A.init<JournalDoc>(), (d) => {
      createJournal(d, { site: 's', node: NODE, n: 1, week: '2026-W45', s0: 0, open: new Map(), t0: T0 })
      writeJournal(d, p)
    })
    expect(sharded.tot).toBeUndefined()
    expect([...journalTotals(sharded)]).toEqual([...journalTotals(written)])
    // The map form as an older node wrote it reads too.
    const legacy = A.change(A.clone(old), (d) => {
      d.m['0'] = { '2': { id: imm('m-2'), k: 2, sku: imm('ORS-1L'), q: -4, t: T0 + 1, by: imm('zanele') } }
    })
    expect(journalPosting(legacy, 2)).toEqual({ node: NODE, seq: 2, id: 'm-2', kind: 'issue', sku: 'ORS-1L', delta: -4, at: T0 + 1, by: 'zanele' })
  })
})
