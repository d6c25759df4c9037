/**
 * Every posting a site node has indexed, kept in columns instead of one object per movement: a
 * site with 100k movements holds them in ~20 MB instead of ~60 MB, with no garbage to collect per
 * movement (issue 7: memory under 150 MB at 100k movements). Rows are numbered in the order they
 * were added; a `Posting` object is made only when one is read.
 *
 * Strings that repeat (nodes, SKUs, users, devices, reasons) are kept once, in a dictionary; ids,
 * references and `prev` keys are kept as they are.
 */
import { MovementKind, movementKindName, type MovementKindCode } from '../schema/ledger.ts'
import type { Posting } from './ledger.ts'
import { decodeLots, encodeLots } from './movementCodec.ts'

/** A growable list of row numbers. */
export class RowList {
  #rows = new Int32Array(16)
  length = 0

  push(row: number): void {
    if (this.length === this.#rows.length) {
      const grown = new Int32Array(this.#rows.length * 2)
      grown.set(this.#rows)
      this.#rows = grown
    }
    this.#rows[this.length++] = row
  }

  get(i: number): number {
    return this.#rows[i]!
  }

  /** Sorts the rows in place by `compare`. */
  sort(compare: (a: number, b: number) => number): void {
    this.#rows.subarray(0, this.length).sort(compare)
  }
}

const NONE = 0

export class PostingTable {
  #size = 0
  #capacity = 0
  /** Dictionary of repeated strings; code 0 is "none". */
  readonly #strings: string[] = ['']
  readonly #codes = new Map<string, number>()
  #node = new Uint32Array(0)
  #sku = new Uint32Array(0)
  #by = new Uint32Array(0)
  #device = new Uint32Array(0)
  #reason = new Uint32Array(0)
  #kind = new Uint8Array(0)
  #seq = new Float64Array(0)
  #delta = new Float64Array(0)
  #at = new Float64Array(0)
  /** NaN: not a count. */
  #counted = new Float64Array(0)
  readonly #ids: string[] = []
  readonly #refs: Array<string | undefined> = []
  /** `prev` of counts, by row (counts are a tenth of the movements). */
  readonly #prev = new Map<number, string>()
  /** Lots (their packed field, src/docs/movementCodec.ts) and stated expiry of lot movements, by row. */
  readonly #lots = new Map<number, string>()
  readonly #expiry = new Map<number, string>()

  get size(): number {
    return this.#size
  }

  /** The code of a repeated string (added when new). */
  code(value: string): number {
    let code = this.#codes.get(value)
    if (code === undefined) {
      code = this.#strings.length
      this.#strings.push(value)
      this.#codes.set(value, code)
    }
    return code
  }

  #grow(): void {
    const capacity = Math.max(1024, this.#capacity * 2)
    const grow = <T extends Uint32Array | Uint8Array | Float64Array>(old: T, make: new (n: number) => T): T => {
      const next = new make(capacity)
      next.set(old)
      return next
    }
    this.#node = grow(this.#node, Uint32Array)
    this.#sku = grow(this.#sku, Uint32Array)
    this.#by = grow(this.#by, Uint32Array)
    this.#device = grow(this.#device, Uint32Array)
    this.#reason = grow(this.#reason, Uint32Array)
    this.#kind = grow(this.#kind, Uint8Array)
    this.#seq = grow(this.#seq, Float64Array)
    this.#delta = grow(this.#delta, Float64Array)
    this.#at = grow(this.#at, Float64Array)
    this.#counted = grow(this.#counted, Float64Array)
    this.#capacity = capacity
  }

  /** Adds a posting; returns its row. */
  add(p: Posting): number {
    if (this.#size === this.#capacity) this.#grow()
    const row = this.#size++
    this.#node[row] = this.code(p.node)
    this.#sku[row] = this.code(p.sku)
    this.#by[row] = this.code(p.by)
    this.#device[row] = p.device === undefined ? NONE : this.code(p.device)
    this.#reason[row] = p.reason === undefined ? NONE : this.code(p.reason)
    this.#kind[row] = MovementKind[p.kind]
    this.#seq[row] = p.seq
    this.#delta[row] = p.delta
    this.#at[row] = p.at
    this.#counted[row] = p.counted ?? Number.NaN
    this.#ids[row] = p.id
    this.#refs[row] = p.reference
    if (p.prev !== undefined) this.#prev.set(row, p.prev)
    if (p.lots !== undefined && p.lots.length > 0) this.#lots.set(row, encodeLots(p))
    if (p.expiry !== undefined) this.#expiry.set(row, p.expiry)
    return row
  }

  /** The posting at `row`, as a new object. */
  get(row: number): Posting {
    const p: Posting = {
      node: this.#strings[this.#node[row]!]!,
      seq: this.#seq[row]!,
      id: this.#ids[row]!,
      kind: movementKindName[this.#kind[row]! as MovementKindCode],
      sku: this.#strings[this.#sku[row]!]!,
      delta: this.#delta[row]!,
      at: this.#at[row]!,
      by: this.#strings[this.#by[row]!]!,
    }
    const counted = this.#counted[row]!
    if (!Number.isNaN(counted)) p.counted = counted
    if (this.#device[row] !== NONE) p.device = this.#strings[this.#device[row]!]!
    if (this.#reason[row] !== NONE) p.reason = this.#strings[this.#reason[row]!]!
    const reference = this.#refs[row]
    if (reference !== undefined) p.reference = reference
    const prev = this.#prev.get(row)
    if (prev !== undefined) p.prev = prev
    const lots = this.#lots.get(row)
    if (lots !== undefined) p.lots = decodeLots(lots, p.delta)
    const expiry = this.#expiry.get(row)
    if (expiry !== undefined) p.expiry = expiry
    return p
  }

  id(row: number): string {
    return this.#ids[row]!
  }

  /** Newest first: time, then node (ascending), then the node's sequence. */
  readonly newestFirst = (a: number, b: number): number => {
    const at = this.#at[b]! - this.#at[a]!
    if (at !== 0) return at
    if (this.#node[a] !== this.#node[b]) return this.#strings[this.#node[a]!]! < this.#strings[this.#node[b]!]! ? -1 : 1
    return this.#seq[b]! - this.#seq[a]!
  }
}

/** A read-only, ordered view of some rows of a table: postings are made as they are read. */
export class PostingList implements Iterable<Posting> {
  constructor(
    readonly table: PostingTable,
    readonly rows: RowList | undefined,
  ) {}

  get length(): number {
    return this.rows?.length ?? 0
  }

  at(i: number): Posting | undefined {
    return i >= 0 && i < this.length ? this.table.get(this.rows!.get(i)) : undefined
  }

  /** The postings from `start` to `end` (exclusive), like Array.prototype.slice. */
  slice(start = 0, end = this.length): Posting[] {
    const out: Posting[] = []
    for (let i = Math.max(0, start); i < Math.min(end, this.length); i++) out.push(this.table.get(this.rows!.get(i)))
    return out
  }

  *[Symbol.iterator](): Iterator<Posting> {
    for (let i = 0; i < this.length; i++) yield this.table.get(this.rows!.get(i))
  }
}
