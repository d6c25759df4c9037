/**
 * A movement packed into one string (journal schema 2): one Automerge operation per movement
 * instead of a map of eight to eleven fields, so a week's journal travels in ~37 B per movement
 * instead of ~53 B (issue 7: ≤ 40 B after a week offline), and a posting costs fewer operations.
 *
 * Fields, `|`-separated, trailing empty fields dropped:
 *   0 head   kind letter `a`–`f` + the id's 16 random characters, when the id is a 26-character ULID
 *            whose time part is the movement's time (the usual scanner id); else kind digit `1`–`6` + id
 *   1 sku
 *   2 q      the quantity in base 36: the delta, negated for issues and transfers out (so usually positive)
 *   3 t      the time in base 36: ms after the previous movement of the same bucket, or after the
 *            journal's `t0` for the first of a bucket (decoding one movement reads at most its bucket)
 *   4 who    dictionary code of `user|device` (the journal's `d`: code → value, written with the
 *            first movement that needs it; codes are base-36 insertion numbers)
 *   5 ref    the reference ('' none, '%' empty)
 *   6 why    dictionary code of `#reason`, or ''
 *   7 n      counted quantity (counts) in base 36, or ''
 *   8 prev   counts: '' none, '%' empty, `:seq` for this journal's own node, else the posting key
 *   9 lots   lot-tracked products (journal schema 4): the lot, when the movement is all of one lot;
 *            else `lot/part,lot/part` (parts in base 36, signed as the delta)
 *   10 x     the expiry the movement states, in days since 1970-01-01, base 36
 * Strings are escaped (`%` → `%25`, `|` → `%7C`) so any value round-trips; numbers that are not
 * safe integers are written as `~` + decimal. Lossless for every field of a posting
 * (test/docs/movementCodec.test.ts).
 */
import { MovementKind, movementKindName, type MovementKindCode } from '../schema/ledger.ts'
import type { Posting } from './ledger.ts'

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
const KIND_LETTERS = 'abcdef'
const NEGATED = new Set(['issue', 'transferOut'])

/** The 10-character Crockford time part a ULID made at `at` starts with. */
export function ulidTime(at: number): string {
  if (!Number.isSafeInteger(at) || at < 0 || at >= 2 ** 48) return ''
  let time = ''
  let t = at
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time
    t = Math.floor(t / 32)
  }
  return time
}

const esc = (s: string) => (s.includes('%') || s.includes('|') ? s.replace(/%/g, '%25').replace(/\|/g, '%7C') : s)
const unesc = (s: string) => (s.includes('%') ? s.replace(/%7C/g, '|').replace(/%25/g, '%') : s)
/** An optional string: '' absent, '%' empty. */
const optEsc = (s: string | undefined) => (s === undefined ? '' : s === '' ? '%' : esc(s))
const optUnesc = (s: string | undefined) => (s === undefined || s === '' ? undefined : s === '%' ? '' : unesc(s))

export function num(n: number): string {
  return Number.isSafeInteger(n) ? n.toString(36) : `~${n}`
}

export function unnum(s: string): number {
  if (s.startsWith('~')) return Number(s.slice(1))
  return s.startsWith('-') ? -parseInt(s.slice(1), 36) : parseInt(s, 36)
}

/** What packing needs of the journal besides the posting: codes for repeated strings, times. */
export interface PackContext {
  /** The code of `value` in the journal's dictionary (added when new). */
  code(value: string): string
  /** The time the movement's `t` is counted from: the previous movement of its bucket, or `t0`. */
  base: number
  node: string
}

export function packMovement(p: Posting, ctx: PackContext): string {
  const kind = MovementKind[p.kind]
  const head = p.id.length === 26 && p.id.slice(0, 10) === ulidTime(p.at) && /^[0-9A-HJKMNP-TV-Z]{16}$/.test(p.id.slice(10)) ? KIND_LETTERS[kind - 1] + p.id.slice(10) : `${kind}${esc(p.id)}`
  const q = NEGATED.has(p.kind) ? -p.delta : p.delta
  const who = ctx.code(`${esc(p.by)}|${p.device === undefined ? '' : `+${esc(p.device)}`}`)
  const why = p.reason === undefined ? '' : ctx.code(`#${p.reason}`)
  let prev = optEsc(p.prev)
  if (p.prev !== undefined && p.prev.startsWith(`${ctx.node}:`) && /^\d+$/.test(p.prev.slice(ctx.node.length + 1))) prev = `:${p.prev.slice(ctx.node.length + 1)}`
  const fields = [head, esc(p.sku), num(q), num(p.at - ctx.base), who, optEsc(p.reference), why, p.counted === undefined ? '' : num(p.counted), prev, encodeLots(p), p.expiry === undefined ? '' : num(dayNumber(p.expiry))]
  while (fields.length > 5 && fields[fields.length - 1] === '') fields.pop()
  return fields.join('|')
}

/** Reads a packed movement back. `word(code)` is the journal's dictionary; `base` as for packing. */
export function unpackMovement(packed: string, seq: number, ctx: { node: string; base: number; word(code: string): string | undefined }): Posting {
  const f = packed.split('|')
  const head = f[0]!
  const first = head[0]!
  const letter = KIND_LETTERS.indexOf(first)
  const kindCode = (letter >= 0 ? letter + 1 : Number(first)) as MovementKindCode
  const kind = movementKindName[kindCode]
  const at = unnum(f[3]!) + ctx.base
  const id = letter >= 0 ? ulidTime(at) + head.slice(1) : unesc(head.slice(1))
  const q = unnum(f[2]!)
  const whoWord = ctx.word(f[4]!)
  if (whoWord === undefined) throw new Error(`internal: movement ${seq} names dictionary code ${f[4]} that its journal lacks`)
  const bar = whoWord.indexOf('|')
  const by = unesc(whoWord.slice(0, bar))
  const device = whoWord.slice(bar + 1)
  const p: Posting = { node: ctx.node, seq, id, kind, sku: unesc(f[1]!), delta: NEGATED.has(kind) ? 0 - q : q, at, by }
  if (f[7]) p.counted = unnum(f[7])
  const prev = f[8]
  if (prev !== undefined && prev.startsWith(':')) p.prev = `${ctx.node}${prev}`
  else {
    const value = optUnesc(prev)
    if (value !== undefined) p.prev = value
  }
  if (device !== '') p.device = unesc(device.slice(1))
  if (f[6]) p.reason = ctx.word(f[6])!.slice(1)
  const reference = optUnesc(f[5])
  if (reference !== undefined) p.reference = reference
  if (f[9]) p.lots = decodeLots(f[9], p.delta)
  if (f[10]) p.expiry = dayString(unnum(f[10]))
  return p
}

const DAY_MS = 86_400_000

/** Days since 1970-01-01 of a YYYY-MM-DD date. */
export function dayNumber(date: string): number {
  return Math.round(Date.parse(`${date}T00:00:00Z`) / DAY_MS)
}

/** The YYYY-MM-DD date of a day number. */
export function dayString(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10)
}

const escLot = (lot: string) => esc(lot).replace(/,/g, '%2C').replace(/\//g, '%2F')
const unescLot = (lot: string) => unesc(lot.replace(/%2F/g, '/').replace(/%2C/g, ','))

/** A movement's lots as one field ('' for none): the lot alone when it is all of one lot. */
export function encodeLots(p: Pick<Posting, 'lots' | 'delta'>): string {
  if (!p.lots || p.lots.length === 0) return ''
  if (p.lots.length === 1 && Object.is(p.lots[0]!.delta, p.delta)) return escLot(p.lots[0]!.lot) || '%'
  return p.lots.map((part) => `${escLot(part.lot)}/${num(part.delta)}`).join(',')
}

/** The lots of a movement of `delta` from their field. */
export function decodeLots(field: string, delta: number): Array<{ lot: string; delta: number }> {
  if (!field.includes('/')) return [{ lot: field === '%' ? '' : unescLot(field), delta }]
  return field.split(',').map((part) => {
    const slash = part.lastIndexOf('/')
    return { lot: unescLot(part.slice(0, slash)), delta: unnum(part.slice(slash + 1)) }
  })
}

/** The time field of a packed movement, without unpacking the rest. */
export function packedTime(packed: string, base: number): number {
  let start = 0
  for (let i = 0; i < 3; i++) start = packed.indexOf('|', start) + 1
  const end = packed.indexOf('|', start)
  return unnum(packed.slice(start, end < 0 ? undefined : end)) + base
}
