/**
 * The OpenLMIS-style connector: stock movements as stock events (`POST /api/stockEvents`, the shape
 * of openlmis-stockmanagement's stockEventDto / stockEventLineItemDto), one event per movement with
 * one line item per lot part:
 *
 * - facility: the facility whose `code` is the site id (`GET /api/facilities`); orderable: the one
 *   whose `productCode` is the SKU (`GET /api/orderables`); lot: by `lotCode` (`GET /api/lots`);
 * - receipts and transfers in: `sourceId` (the `source` node given in the URL), `eventOrigin`
 *   RECEIVE; issues and transfers out: `destinationId`, ISSUE; adjustments and counts: `reasonId`
 *   (the `credit` or `debit` reason by the sign); `quantity` never negative; `occurredDate`
 *   YYYY-MM-DD; `signature`: the user; `documentNumber`: the fact's key;
 * - exactly once in effect: OpenLMIS takes no idempotency key, so the connector reads back which
 *   document numbers a facility's stock cards hold (`GET /api/v2/stockCardSummaries`, then
 *   `GET /api/stockCards/{id}`) — once per facility after a start, and again after any send whose
 *   answer was lost — and sends only what is not there;
 * - a 400 (OpenLMIS refusing the event: a reason not valid for the facility, say) parks the fact
 *   with OpenLMIS's message; no answer, a timeout or a 5xx is an outage (retried).
 *
 * Order decisions and proofs of delivery have no stock event: they are recorded as forwarded with
 * nothing sent (docs/erp-mapping.md).
 */
import { dateOf } from '../docs/ledger.ts'
import type { ErpConnector, Outcome } from './connector.ts'
import type { Fact, MovementFact } from './facts.ts'
import { ErpUnavailable } from './trytonRpc.ts'

export interface OpenLmisOptions {
  /** http(s)://host:port[/path] of the OpenLMIS API (the `/api/…` paths are under it). */
  url: string
  token?: string
  program: string
  /** Valid source node of receipts, destination node of issues, reasons of positive and negative adjustments. */
  source: string
  destination: string
  credit: string
  debit: string
  timeoutMs?: number
}

interface Page<T> {
  content?: T[]
}

export class OpenLmisConnector implements ErpConnector {
  readonly description: string
  readonly #o: OpenLmisOptions
  readonly #facilities = new Map<string, string>()
  readonly #orderables = new Map<string, string>()
  readonly #lots = new Map<string, string>()
  /** facility → document numbers its stock cards hold (read back, then kept up to date with what was sent). */
  readonly #held = new Map<string, Set<string>>()

  constructor(options: OpenLmisOptions) {
    this.#o = options
    this.description = `openlmis ${options.url}`
  }

  async #request<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    let res: Response
    try {
      res = await fetch(`${this.#o.url}${path}`, {
        method,
        headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(this.#o.token ? { authorization: `Bearer ${this.#o.token}` } : {}) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.#o.timeoutMs ?? 30_000),
      })
    } catch (error) {
      throw new ErpUnavailable(`OpenLMIS at ${this.#o.url} cannot be reached: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}`)
    }
    if (res.status >= 500 || res.status === 429) throw new ErpUnavailable(`OpenLMIS answered HTTP ${res.status} to ${method} ${path}`)
    if (res.status === 401 || res.status === 403) throw new ErpUnavailable(`OpenLMIS refused the token (HTTP ${res.status}): check STOCKMESH_ERP_TOKEN`)
    const text = await res.text()
    let parsed: unknown = text
    try {
      parsed = text ? JSON.parse(text) : null
    } catch {
      // a text answer: kept as text
    }
    return { status: res.status, body: parsed as T }
  }

  async #get<T>(path: string): Promise<T> {
    const r = await this.#request<T>('GET', path)
    if (r.status !== 200) throw new ErpUnavailable(`OpenLMIS answered HTTP ${r.status} to GET ${path}`)
    return r.body
  }

  async #lookup(facts: MovementFact[]): Promise<void> {
    if (facts.some((f) => !this.#facilities.has(f.site))) {
      const list = await this.#get<Array<{ id: string; code: string }> | Page<{ id: string; code: string }>>('/api/facilities')
      for (const f of Array.isArray(list) ? list : (list.content ?? [])) this.#facilities.set(f.code, f.id)
    }
    if (facts.some((f) => !this.#orderables.has(f.sku))) {
      const page = await this.#get<{ orderables?: Array<{ id: string; productCode: string }> } & Page<{ id: string; productCode: string }>>('/api/orderables')
      for (const o of page.orderables ?? page.content ?? []) this.#orderables.set(o.productCode, o.id)
    }
    if (facts.some((f) => (f.lots ?? []).some((p) => !this.#lots.has(`${f.sku}|${p.lot}`)))) {
      const page = await this.#get<Page<{ id: string; lotCode: string; tradeItemId?: string }>>('/api/lots')
      const skuOf = new Map([...this.#orderables].map(([sku, id]) => [id, sku]))
      for (const l of page.content ?? []) this.#lots.set(`${l.tradeItemId ? (skuOf.get(l.tradeItemId) ?? '') : ''}|${l.lotCode}`, l.id)
    }
  }

  /** The document numbers a facility's stock cards of the program hold. */
  async #readBack(facility: string): Promise<Set<string>> {
    const held = new Set<string>()
    const summaries = await this.#get<Page<{ canFulfillForMe?: Array<{ stockCard?: { id: string } }> }>>(`/api/v2/stockCardSummaries?programId=${encodeURIComponent(this.#o.program)}&facilityId=${encodeURIComponent(facility)}`)
    for (const summary of summaries.content ?? []) {
      for (const c of summary.canFulfillForMe ?? []) {
        if (!c.stockCard?.id) continue
        const card = await this.#get<{ lineItems?: Array<{ documentNumber?: string | null }> }>(`/api/stockCards/${encodeURIComponent(c.stockCard.id)}`)
        for (const item of card.lineItems ?? []) if (item.documentNumber) held.add(item.documentNumber)
      }
    }
    return held
  }

  #event(f: MovementFact, facility: string): Record<string, unknown> {
    const orderableId = this.#orderables.get(f.sku)!
    const incoming = f.kind === 'receipt' || f.kind === 'transferIn'
    const outgoing = f.kind === 'issue' || f.kind === 'transferOut'
    const date = dateOf(f.at)
    const parts = f.lots && f.lots.length > 0 ? f.lots.map((p) => ({ delta: p.delta, lotId: this.#lots.get(`${f.sku}|${p.lot}`) })) : [{ delta: f.delta, lotId: undefined }]
    return {
      facilityId: facility,
      programId: this.#o.program,
      documentNumber: f.key,
      signature: f.by,
      ...(incoming ? { eventOrigin: 'RECEIVE' } : outgoing ? { eventOrigin: 'ISSUE' } : {}),
      lineItems: parts
        .filter((p) => p.delta !== 0)
        .map((p) => ({
          orderableId,
          ...(p.lotId ? { lotId: p.lotId } : {}),
          quantity: Math.abs(p.delta),
          occurredDate: date,
          ...(incoming ? { sourceId: this.#o.source } : outgoing ? { destinationId: this.#o.destination } : { reasonId: p.delta > 0 ? this.#o.credit : this.#o.debit }),
          extraData: { stockmeshKey: f.key, ...(f.reason ? { reason: f.reason } : {}) },
        })),
    }
  }

  async forward(all: Fact[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = []
    const facts: MovementFact[] = []
    for (const f of all) {
      if (f.type === 'order' || f.type === 'delivery') outcomes.push({ key: f.key, forwarded: true })
      else if (f.delta === 0) outcomes.push({ key: f.key, forwarded: true })
      else facts.push(f)
    }
    if (facts.length === 0) return outcomes
    await this.#lookup(facts)
    for (const f of facts) {
      const facility = this.#facilities.get(f.site)
      const problem = !facility
        ? `site ${f.site} is not a facility in OpenLMIS (no facility with code ${f.site}): add it`
        : !this.#orderables.has(f.sku)
          ? `SKU ${f.sku} is not an orderable in OpenLMIS (no productCode ${f.sku}): add it in OpenLMIS`
          : f.lots?.find((p) => !this.#lots.has(`${f.sku}|${p.lot}`))
            ? `lot ${f.lots.find((p) => !this.#lots.has(`${f.sku}|${p.lot}`))!.lot} of ${f.sku} is not a lot in OpenLMIS: add it`
            : undefined
      if (problem) {
        outcomes.push({ key: f.key, parked: problem })
        continue
      }
      let held = this.#held.get(facility!)
      if (!held) this.#held.set(facility!, (held = await this.#readBack(facility!)))
      if (held.has(f.key)) {
        outcomes.push({ key: f.key, forwarded: true })
        continue
      }
      let answer: { status: number; body: unknown }
      try {
        answer = await this.#request('POST', '/api/stockEvents', this.#event(f, facility!))
      } catch (error) {
        // The event may have been taken with its answer lost: read the facility back before the next send.
        this.#held.delete(facility!)
        // What was decided before the outage stands (the outbox keeps it); the rest waits.
        if (outcomes.length > 0) return outcomes
        throw error
      }
      if (answer.status === 201 || answer.status === 200) {
        held.add(f.key)
        outcomes.push({ key: f.key, forwarded: true })
      } else {
        const message = typeof answer.body === 'object' && answer.body !== null ? String((answer.body as { message?: unknown }).message ?? JSON.stringify(answer.body)) : String(answer.body)
        outcomes.push({ key: f.key, parked: `OpenLMIS refused it (HTTP ${answer.status}): ${message.slice(0, 500)}` })
      }
    }
    return outcomes
  }
}
