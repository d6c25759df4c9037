/**
 * The Tryton 6.0 connector (JSON-RPC, src/erp/trytonRpc.ts). docs/erp-mapping.md says what each
 * fact becomes in Tryton and why; in short:
 *
 * - each site is a Tryton storage location whose code is the site id (sites come down as the
 *   storage locations under the view location coded `SM-SITES`);
 * - each movement is one internal shipment (`stock.shipment.internal`) whose `reference` is the
 *   fact's key, done at once, with one stock move per lot (`stock.lot` by number and product,
 *   made with its expiry when new) between the site's location and a counter-location of the
 *   movement's kind (made by the bridge, lost-and-found locations coded SM-SUPPLY, SM-ISSUED, SM-ADJUST, SM-TRANSIT);
 * - exactly once in effect: before every send the connector searches the shipments whose
 *   reference is one of the batch's keys — found and done: forwarded; found and not done: taken
 *   through to done; not found: created (all of a batch in one transaction) and taken through.
 *   Every step may be repeated after a crash or a lost answer, and changes nothing twice;
 * - a fact Tryton cannot take (no product with the SKU as its code, no location for the site, a
 *   refusal of Tryton's own) is parked with the reason; a batch Tryton refuses is split until the
 *   fact it refuses is found.
 */
import type { ErpConnector, ErpProduct, ErpSite, Outcome } from './connector.ts'
import { dateOf } from '../docs/ledger.ts'
import type { DeliveryFact, Fact, MovementFact, OrderFact } from './facts.ts'
import { TrytonError, TrytonRpc, type TrytonRpcOptions } from './trytonRpc.ts'

const SHIPMENT = 'stock.shipment.internal'

/** The counter-locations: where stock comes from or goes to, by movement kind. */
const COUNTERS = {
  supply: { code: 'SM-SUPPLY', name: 'stockmesh: received from suppliers' },
  issued: { code: 'SM-ISSUED', name: 'stockmesh: issued (patients, customers)' },
  adjust: { code: 'SM-ADJUST', name: 'stockmesh: adjustments and counts' },
  transit: { code: 'SM-TRANSIT', name: 'stockmesh: between sites' },
} as const
type Counter = keyof typeof COUNTERS

function counterOf(kind: MovementFact['kind']): Counter {
  switch (kind) {
    case 'receipt':
      return 'supply'
    case 'issue':
      return 'issued'
    case 'transferIn':
    case 'transferOut':
      return 'transit'
    default:
      return 'adjust'
  }
}

interface Product {
  id: number
  uom: number
}

/** A YYYY-MM-DD day as Tryton's JSON-RPC carries a date. */
const trytonDate = (day: string) => ({ __class__: 'date', year: Number(day.slice(0, 4)), month: Number(day.slice(5, 7)), day: Number(day.slice(8, 10)) })
const noProduct = (sku: string) => `SKU ${sku} is not a product in Tryton (no product with code ${sku}): add it in Tryton`
const noLocation = (site: string) => `site ${site} has no storage location in Tryton with code ${site}: add one`

/** Tryton refused the request itself (a user error, an access or validation error): not an outage. */
function isRefusal(error: unknown): error is TrytonError {
  return error instanceof TrytonError && error.kind !== 'auth' && error.kind !== 'setup'
}

export class TrytonConnector implements ErpConnector {
  readonly rpc: TrytonRpc
  readonly description: string
  #company: number | undefined
  #counters: Record<Counter, number> | undefined
  /** SKU → product, site → location: read for each batch's unknowns (a product added in Tryton is found at the next try). */
  readonly #products = new Map<string, Product>()
  readonly #locations = new Map<string, number>()
  readonly #lots = new Map<string, number>()

  /** Called when a key is found done twice in Tryton (it should never be: a human must look). */
  readonly #onDouble: ((key: string, ids: number[]) => void) | undefined

  constructor(options: TrytonRpcOptions & { onDouble?: (key: string, ids: number[]) => void }) {
    this.rpc = new TrytonRpc(options)
    this.description = `tryton ${options.url.replace(/\/+$/, '')}/${options.database}`
    this.#onDouble = options.onDouble ?? ((key, ids) => process.emitWarning(`Tryton holds ${ids.length} done shipments for ${key} (ids ${ids.join(', ')}): one must be undone by hand`, 'StockmeshErpWarning'))
  }

  /** The user's company and the counter-locations (made when missing). */
  async #setup(): Promise<void> {
    if (this.#company === undefined) {
      const prefs = await this.rpc.call<{ company?: number | null }>('model.res.user.get_preferences', [true, {}])
      const company = prefs?.company
      if (!company) throw new TrytonError('setup', 'the Tryton user has no company: set its company (User → Preferences) so that stock moves can be made')
      this.#company = company
    }
    if (!this.#counters) {
      const found = await this.rpc.searchRead<{ id: number; code: string }>('stock.location', [['code', 'in', Object.values(COUNTERS).map((c) => c.code)]], ['code'])
      const byCode = new Map(found.map((l) => [l.code, l.id]))
      const missing = Object.values(COUNTERS).filter((c) => !byCode.has(c.code))
      if (missing.length > 0) {
        // Lost-and-found locations (Tryton keeps those at the top: their parent may only be another such).
        const ids = await this.rpc.create('stock.location', missing.map((c) => ({ name: c.name, code: c.code, type: 'lost_found' })))
        missing.forEach((c, i) => byCode.set(c.code, ids[i]!))
      }
      this.#counters = Object.fromEntries(Object.entries(COUNTERS).map(([k, c]) => [k, byCode.get(c.code)!])) as Record<Counter, number>
    }
  }

  async #lookup(facts: Array<Pick<MovementFact, 'site' | 'sku' | 'lots'>>): Promise<void> {
    const skus = [...new Set(facts.map((f) => f.sku))].filter((s) => s && !this.#products.has(s))
    if (skus.length > 0) {
      const rows = await this.rpc.searchRead<{ id: number; code: string; default_uom: number }>('product.product', [['code', 'in', skus]], ['code', 'default_uom'])
      for (const r of rows) this.#products.set(r.code, { id: r.id, uom: r.default_uom })
    }
    const sites = [...new Set(facts.map((f) => f.site))].filter((s) => !this.#locations.has(s))
    if (sites.length > 0) {
      const rows = await this.rpc.searchRead<{ id: number; code: string }>('stock.location', [['code', 'in', sites], ['type', '=', 'storage']], ['code'])
      for (const r of rows) this.#locations.set(r.code, r.id)
    }
    const lots = new Map<string, { number: string; product: number; expiry?: string }>()
    for (const f of facts) {
      const product = this.#products.get(f.sku)
      if (!product) continue
      for (const part of f.lots ?? []) {
        const key = `${product.id}|${part.lot}`
        if (!this.#lots.has(key) && !lots.has(key)) lots.set(key, { number: part.lot, product: product.id, ...(part.expiry ? { expiry: part.expiry } : {}) })
      }
    }
    if (lots.size > 0) {
      const numbers = [...new Set([...lots.values()].map((l) => l.number))]
      const rows = await this.rpc.searchRead<{ id: number; number: string; product: number }>('stock.lot', [['number', 'in', numbers]], ['number', 'product'])
      for (const r of rows) this.#lots.set(`${r.product}|${r.number}`, r.id)
      const create = [...lots].filter(([key]) => !this.#lots.has(key))
      if (create.length > 0) {
        const ids = await this.rpc.create(
          'stock.lot',
          create.map(([, l]) => ({ number: l.number, product: l.product, ...(l.expiry ? { expiration_date: trytonDate(l.expiry) } : {}) })),
        )
        create.forEach(([key], i) => this.#lots.set(key, ids[i]!))
      }
    }
  }

  /** Why Tryton cannot take a fact now, or undefined. */
  #problem(f: MovementFact): string | undefined {
    if (!this.#products.has(f.sku)) return noProduct(f.sku)
    if (!this.#locations.has(f.site)) return noLocation(f.site)
    return undefined
  }

  #shipment(f: MovementFact): Record<string, unknown> {
    const site = this.#locations.get(f.site)!
    const counter = this.#counters![counterOf(f.kind)]
    const product = this.#products.get(f.sku)!
    const [from, to] = f.delta >= 0 ? [counter, site] : [site, counter]
    const date = trytonDate(dateOf(f.at))
    const parts = f.lots && f.lots.length > 0 ? f.lots.map((p) => ({ quantity: Math.abs(p.delta), lot: this.#lots.get(`${product.id}|${p.lot}`) })) : [{ quantity: Math.abs(f.delta), lot: undefined }]
    return {
      reference: f.key,
      company: this.#company,
      from_location: from,
      to_location: to,
      planned_date: date,
      planned_start_date: date,
      effective_date: date,
      effective_start_date: date,
      moves: [
        [
          'create',
          parts
            .filter((p) => p.quantity > 0)
            .map((p) => ({ product: product.id, uom: product.uom, quantity: p.quantity, from_location: from, to_location: to, company: this.#company, planned_date: date, effective_date: date, ...(p.lot !== undefined ? { lot: p.lot } : {}) })),
        ],
      ],
    }
  }

  /**
   * Forwards a batch; a refusal of Tryton's own for the batch (at any step: a create, a workflow
   * button, an attachment) splits it in halves until the one fact it refuses is found and parked:
   * one bad fact never holds up the others. Every step searches first, so the halves repeat nothing.
   */
  async forward(all: Fact[]): Promise<Outcome[]> {
    if (all.length === 0) return []
    await this.#setup()
    try {
      return await this.#forward(all)
    } catch (error) {
      if (!isRefusal(error)) throw error
      if (all.length === 1) return [{ key: all[0]!.key, parked: `Tryton refused it: ${error.message}` }]
      const half = Math.ceil(all.length / 2)
      return [...(await this.forward(all.slice(0, half))), ...(await this.forward(all.slice(half)))]
    }
  }

  async #forward(all: Fact[]): Promise<Outcome[]> {
    const facts = all.filter((f): f is MovementFact => f.type === 'movement')
    const outcomes: Outcome[] = [...(await this.#orders(all.filter((f): f is OrderFact => f.type === 'order'))), ...(await this.#deliveries(all.filter((f): f is DeliveryFact => f.type === 'delivery')))]
    if (facts.length === 0) return outcomes
    // A movement that moves nothing (a count that found what was expected) is nothing in Tryton.
    const moving = facts.filter((f) => {
      if (f.delta !== 0) return true
      outcomes.push({ key: f.key, forwarded: true })
      return false
    })
    // What Tryton holds already (a batch sent before a crash or a lost answer).
    const found = await this.#held(moving.map((f) => f.key))
    const fresh = moving.filter((f) => !found.has(f.key))
    await this.#lookup(fresh)
    const ready: MovementFact[] = []
    for (const f of fresh) {
      const problem = this.#problem(f)
      if (problem) outcomes.push({ key: f.key, parked: problem })
      else ready.push(f)
    }
    if (ready.length > 0) await this.#acknowledging(() => this.rpc.create(SHIPMENT, ready.map((f) => this.#shipment(f))))
    // Searched again: a create of an earlier try whose answer was lost may have committed meanwhile.
    const held = ready.length > 0 ? new Map([...found, ...(await this.#held(ready.map((f) => f.key)))]) : found
    const toFinish: Array<{ id: number; state: string }> = []
    for (const f of moving) {
      const s = held.get(f.key)
      if (!s) continue
      if (s.state === 'cancelled') outcomes.push({ key: f.key, parked: `its shipment in Tryton (id ${s.id}, reference ${f.key}) was cancelled there: make it again in Tryton, or delete it there and retry` })
      else {
        if (s.state !== 'done') toFinish.push(s)
        outcomes.push({ key: f.key, forwarded: true })
      }
    }
    await this.#finish(toFinish)
    return outcomes
  }

  /**
   * The shipment that stands for each key Tryton holds: a done one, else the oldest not cancelled,
   * else a cancelled one. Any other not done (two creates of one key that raced: a timed-out try
   * and its retry) is cancelled here, so that a key never moves stock twice.
   */
  async #held(keys: string[]): Promise<Map<string, { id: number; reference: string; state: string }>> {
    const rows = await this.rpc.searchRead<{ id: number; reference: string; state: string }>(SHIPMENT, [['reference', 'in', keys]], ['reference', 'state'])
    const byKey = new Map<string, Array<{ id: number; reference: string; state: string }>>()
    for (const r of rows.sort((a, b) => a.id - b.id)) byKey.set(r.reference, [...(byKey.get(r.reference) ?? []), r])
    const out = new Map<string, { id: number; reference: string; state: string }>()
    const extras: number[] = []
    for (const [key, list] of byKey) {
      const keep = list.find((r) => r.state === 'done') ?? list.find((r) => r.state !== 'cancelled') ?? list[0]!
      out.set(key, keep)
      for (const r of list) if (r !== keep && r.state !== 'cancelled' && r.state !== 'done') extras.push(r.id)
      if (list.filter((r) => r.state === 'done').length > 1) this.#onDouble?.(key, list.filter((r) => r.state === 'done').map((r) => r.id))
    }
    if (extras.length > 0) await this.#acknowledging(() => this.rpc.button(SHIPMENT, 'cancel', extras))
    return out
  }

  /**
   * Order decisions: one internal shipment per order (reference `order:SITE:ID`) from the
   * supplier's location to the requester's, made in draft when approved (the supply planned, in
   * Tryton's list of internal shipments) and cancelled when the order is rejected, cancelled or
   * fulfilled (the stock itself moves by the movements). Each step finds the shipment first: a
   * decision sent twice changes nothing.
   */
  async #orders(facts: OrderFact[]): Promise<Outcome[]> {
    if (facts.length === 0) return []
    const outcomes: Outcome[] = []
    const reference = (f: OrderFact) => `order:${f.site}:${f.order}`
    await this.#lookup(facts.flatMap((f) => [...f.lines.map((l) => ({ site: f.site, sku: l.sku }) as MovementFact), { site: f.supplier, sku: f.lines[0]?.sku ?? '' } as MovementFact]))
    // In the order they were decided: an approval before the cancellation that followed it.
    for (const f of facts) {
      const missing = f.lines.map((l) => l.sku).find((sku) => !this.#products.has(sku))
      const site = [f.site, f.supplier].find((s) => !this.#locations.has(s))
      const problem = missing ? noProduct(missing) : site ? noLocation(site) : undefined
      if (problem) {
        outcomes.push({ key: f.key, parked: problem })
        continue
      }
      const all = () => this.rpc.searchRead<{ id: number; state: string }>(SHIPMENT, [['reference', '=', reference(f)]], ['state']).then((rows) => rows.sort((a, b) => a.id - b.id))
      let found = await all()
      if (found.length === 0) {
        const from = this.#locations.get(f.supplier)!
        const to = this.#locations.get(f.site)!
        const date = trytonDate(dateOf(f.at))
        const [id] = await this.#acknowledging(() =>
          this.rpc.create(SHIPMENT, [
            {
              reference: reference(f),
              company: this.#company,
              from_location: from,
              to_location: to,
              planned_date: date,
              planned_start_date: date,
              moves: [['create', f.lines.map((l) => ({ product: this.#products.get(l.sku)!.id, uom: this.#products.get(l.sku)!.uom, quantity: l.quantity, from_location: from, to_location: to, company: this.#company, planned_date: date }))]],
            },
          ]),
        )
        // Searched again: a create of an earlier try whose answer was lost may have committed meanwhile.
        found = id === undefined ? [] : await all()
      }
      // One planned supply per order: a second (two creates that raced) is cancelled; a decision
      // that ends the order cancels every one not done.
      const open = found.filter((s) => s.state !== 'cancelled' && s.state !== 'done')
      const cancel = f.status === 'approved' ? open.filter((s) => s !== found.find((x) => x.state !== 'cancelled')) : open
      if (cancel.length > 0) await this.#acknowledging(() => this.rpc.button(SHIPMENT, 'cancel', cancel.map((s) => s.id)))
      outcomes.push({ key: f.key, forwarded: true })
    }
    return outcomes
  }

  /**
   * Proofs of delivery: an attachment (`ir.attachment`, named with the fact's key) on the stop
   * site's location, holding what was shipped, received and rejected per line, the receiver, the
   * time and the signature as JSON; its description says it in a line. The goods received are in
   * Tryton already as the site's receipt movements. Found by its name before it is made.
   */
  async #deliveries(facts: DeliveryFact[]): Promise<Outcome[]> {
    if (facts.length === 0) return []
    const outcomes: Outcome[] = []
    const found = new Set((await this.rpc.searchRead<{ name: string }>('ir.attachment', [['name', 'in', facts.map((f) => f.key)]], ['name'])).map((a) => a.name))
    await this.#lookup(facts.map((f) => ({ site: f.site, sku: f.lines[0]?.sku ?? '' }) as MovementFact))
    const create: DeliveryFact[] = []
    for (const f of facts) {
      if (found.has(f.key)) outcomes.push({ key: f.key, forwarded: true })
      else if (!this.#locations.has(f.site)) outcomes.push({ key: f.key, parked: noLocation(f.site) })
      else create.push(f)
    }
    if (create.length > 0) {
      await this.#acknowledging(() => this.rpc.create(
        'ir.attachment',
        create.map((f) => {
          const received = f.lines.reduce((n, l) => n + l.received, 0)
          const rejected = f.lines.reduce((n, l) => n + l.rejected, 0)
          const { type: _type, key: _key, ...body } = f
          return {
            name: f.key,
            resource: `stock.location,${this.#locations.get(f.site)}`,
            type: 'data',
            data: { __class__: 'bytes', base64: Buffer.from(JSON.stringify(body)).toString('base64') },
            description: `Proof of delivery: manifest ${f.manifest}, stop ${f.stop} at ${f.site}; received ${received}, rejected ${rejected}; signed by ${f.receiver} on ${new Date(f.receivedAt).toISOString()}`,
          }
        }),
      ))
      for (const f of create) outcomes.push({ key: f.key, forwarded: true })
    }
    // A second attachment of one key (a create of an earlier try that committed late) is deleted: the oldest stands.
    const all = await this.rpc.searchRead<{ id: number; name: string }>('ir.attachment', [['name', 'in', facts.map((f) => f.key)]], ['name'])
    const kept = new Set<string>()
    const extra = all.sort((a, b) => a.id - b.id).filter((a) => (kept.has(a.name) ? true : (kept.add(a.name), false))).map((a) => a.id)
    if (extra.length > 0) await this.rpc.call('model.ir.attachment.delete', [extra, {}])
    return outcomes
  }

  /** Takes shipments through draft → waiting → assigned → done (each step for the whole batch; each may be repeated). */
  async #finish(shipments: Array<{ id: number; state: string }>): Promise<void> {
    const at = (states: string[]) => shipments.filter((s) => states.includes(s.state)).map((s) => s.id)
    const draft = at(['draft', 'request'])
    if (draft.length) await this.#acknowledging(() => this.rpc.button(SHIPMENT, 'wait', draft))
    const waiting = at(['draft', 'request', 'waiting'])
    if (waiting.length) await this.#acknowledging(() => this.rpc.button(SHIPMENT, 'assign_force', waiting))
    const assigned = at(['draft', 'request', 'waiting', 'assigned'])
    if (assigned.length) await this.#acknowledging(() => this.rpc.button(SHIPMENT, 'done', assigned))
  }

  /** Runs `step`, acknowledging Tryton's warnings (a UserWarning blocks an RPC until the user says yes). */
  async #acknowledging<T>(step: () => Promise<T>): Promise<T> {
    for (let i = 0; ; i++) {
      try {
        return await step()
      } catch (error) {
        if (!(error instanceof TrytonError) || error.kind !== 'UserWarning' || !error.warning || i >= 5) throw error
        await this.rpc.create('res.user.warning', [{ user: this.rpc.uid, name: error.warning, always: false }])
      }
    }
  }

  async masterData(): Promise<{ products: ErpProduct[]; sites: ErpSite[] }> {
    // (Tryton 6.0 answers a dotted field as a nested record under `field.`)
    const products = await this.rpc.searchRead<{ code: string | null; name: string; 'default_uom.': { name: string } | null; lot_required: string[] | null }>('product.product', [['code', '!=', null]], ['code', 'name', 'default_uom.name', 'lot_required'])
    const view = (await this.rpc.searchRead<{ id: number }>('stock.location', [['code', '=', 'SM-SITES'], ['type', '=', 'view']], ['id']))[0]
    const sites = view ? await this.rpc.searchRead<{ code: string | null; name: string }>('stock.location', [['parent', '=', view.id], ['type', '=', 'storage']], ['code', 'name']) : []
    return {
      products: products.filter((p) => p.code).map((p) => ({ sku: p.code!, name: p.name, unit: p['default_uom.']?.name ?? 'unit', lots: (p.lot_required ?? []).length > 0 })),
      sites: sites.filter((s) => s.code).map((s) => ({ id: s.code!, name: s.name })),
    }
  }
}
