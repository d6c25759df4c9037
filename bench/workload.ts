/**
 * The benchmark's workload: a 2,000-product catalog, a realistic movement mix, a node clock that
 * puts 5,000 movements in each ISO week, and small statistics helpers.
 */
import { upsertProduct } from '../src/docs/catalog.ts'
import { demoCatalog } from '../src/node/demo.ts'
import type { CatalogDoc } from '../src/schema/catalog.ts'
import { prng } from '../test/helpers/seed.ts'

export const CATALOG_SIZE = 2_000
export const PER_WEEK = 5_000
export const BATCH = 500
/** Monday 2026-01-05 00:00 UTC: week 2026-W02 starts here. */
export const T0 = Date.UTC(2026, 0, 5)
const WEEK_MS = 7 * 86_400_000
/** Clock step per movement so that 5,000 movements fill one week. */
export const STEP_MS = WEEK_MS / PER_WEEK

const FAMILIES = ['AMOX', 'PARA', 'ORS', 'ZINC', 'RDT', 'GLOVE', 'SYR', 'IVF', 'COTR', 'MASK', 'IBU', 'METF', 'CEFT', 'OXY', 'BAND', 'ALC']

export const skuOf = (i: number): string => `${FAMILIES[i % FAMILIES.length]}-${String(1000 + i)}`

/** The catalog of the benchmark site: the demo catalog plus 2,000 products. */
export function benchCatalog(doc: CatalogDoc): void {
  demoCatalog(doc)
  for (let i = 0; i < CATALOG_SIZE; i++) upsertProduct(doc, { sku: skuOf(i), name: `Product ${i} ${FAMILIES[i % FAMILIES.length]}`, unit: 'each' })
  // Tracked by lot and expiry: the lot movements measured beside the plain ones (siteBench.ts).
  for (let i = 0; i < LOT_SKUS; i++) upsertProduct(doc, { sku: lotSkuOf(i), name: `Lot-tracked product ${i}`, unit: 'each', lots: true })
}

export const LOT_SKUS = 50
export const lotSkuOf = (i: number) => `LOT-${String(i).padStart(3, '0')}`

/**
 * Lot movements, alternating: a receipt of a new lot (its expiry named), then an issue of the
 * same product naming no lot, served first-expiry-first-out (over two lots once the first runs low).
 */
export function lotInputs(n: number, at: (i: number) => number, seed = 0): Input[] {
  return Array.from({ length: n }, (_, i) => {
    const sku = lotSkuOf(Math.floor(i / 2) % LOT_SKUS)
    const base = { id: `lot-${seed}-${i}`, sku, user: 'user-01', device: 'scanner-1', at: at(i) }
    if (i % 2 === 0) return { ...base, kind: 'receipt', quantity: 12, lot: `B${seed}-${Math.floor(i / 2)}`, expiry: new Date(Date.UTC(2027, 0, 1) + (i % 365) * 86_400_000).toISOString().slice(0, 10), reference: 'GRN-1' }
    return { ...base, kind: 'issue', quantity: 7, reference: 'ward 3' }
  })
}


const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

export type Input = Record<string, string | number>

/**
 * Movements as a scanner or the UI would submit them: ULID ids (26 chars), SKUs skewed towards
 * a popular head, 30% receipts, 50% issues, 10% adjustments, 10% stock counts, with user,
 * device and reference filled.
 */
export class Movements {
  readonly #rand: () => number
  #n = 0
  constructor(
    seed: number,
    readonly tag: string,
  ) {
    this.#rand = prng(seed)
  }

  #int(lo: number, hi: number): number {
    return lo + Math.floor(this.#rand() * (hi - lo + 1))
  }

  #ulid(at: number): string {
    let time = ''
    let t = at
    for (let i = 0; i < 10; i++) {
      time = CROCKFORD[t % 32] + time
      t = Math.floor(t / 32)
    }
    let rand = ''
    for (let i = 0; i < 16; i++) rand += CROCKFORD[Math.floor(this.#rand() * 32)]
    return time + rand
  }

  next(at: number): Input {
    this.#n++
    const r = this.#rand()
    const sku = skuOf(Math.floor(CATALOG_SIZE * r * r))
    const base: Input = {
      id: this.#ulid(at),
      sku,
      user: `user-${String(this.#int(1, 12)).padStart(2, '0')}`,
      device: `scanner-${this.tag}-${this.#int(1, 4)}`,
      at: Math.floor(at),
    }
    const k = this.#rand()
    if (k < 0.3) return { ...base, kind: 'receipt', quantity: this.#int(1, 40) * 10, reference: `GRN-2026-${String(this.#int(1, 999_999)).padStart(6, '0')}` }
    if (k < 0.8) return { ...base, kind: 'issue', quantity: this.#int(1, 30), reference: `REQ-${String(this.#int(1, 99_999)).padStart(5, '0')}` }
    if (k < 0.9) {
      const delta = this.#int(1, 5) * (this.#rand() < 0.7 ? -1 : 1)
      return { ...base, kind: 'adjustment', delta, reason: delta < 0 ? (this.#rand() < 0.5 ? 'damaged' : 'expired') : 'found', reference: `ADJ-${this.#int(1, 9_999)}` }
    }
    return { ...base, kind: 'count', counted: this.#int(0, 800), reason: 'cycle-count', reference: `CC-2026-${this.#int(1, 400)}` }
  }
}

/** A settable clock: `at(count)` is the time of the count-th movement of the history. */
export class BenchClock {
  count = 0
  constructor(readonly start = T0) {}
  now = (): number => this.start + this.count * STEP_MS
}

// ---- statistics --------------------------------------------------------------------------------

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]!
}

export const median = (values: number[]): number => percentile(values, 50)
export const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length

/** CPU ms (user + system) since `from`. */
export function cpuMs(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from)
  return (d.user + d.system) / 1000
}

export const log = (...parts: unknown[]): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${parts.join(' ')}\n`)
}

export const gc = (): void => {
  const g = (globalThis as { gc?: () => void }).gc
  if (g) g()
}

export const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : '–')
export const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–')
export const mb = (bytes: number): string => (Number.isFinite(bytes) ? (bytes / 1024 / 1024).toFixed(1) : '–')
