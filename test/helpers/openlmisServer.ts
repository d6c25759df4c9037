/**
 * A small OpenLMIS-style stock management server for tests: it checks every `POST /api/stockEvents`
 * against the published shape (openlmis-stockmanagement's stockEventDto.json and
 * stockEventLineItemDto.json: facilityId, programId, lineItems with orderableId and a non-negative
 * integer quantity; a source, a destination or a reason, never two; ids that exist) and answers 400
 * with a message otherwise; it keeps stock cards (per facility, program, orderable, lot) with their
 * line items and serves the reference data and read-back endpoints the connector uses. Not
 * OpenLMIS itself (a Java service with PostgreSQL that cannot run here): the shape is the test.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomUUID } from 'node:crypto'
import { z } from 'zod'

const Uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i)
const LineItem = z.strictObject({
  orderableId: Uuid,
  lotId: Uuid.optional(),
  sourceId: Uuid.optional(),
  sourceFreeText: z.string().optional(),
  destinationId: Uuid.optional(),
  destinationFreeText: z.string().optional(),
  quantity: z.number().int().nonnegative(),
  reasonId: Uuid.optional(),
  reasonFreeText: z.string().optional(),
  occurredDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  extraData: z.record(z.string(), z.unknown()).optional(),
})
const StockEvent = z.strictObject({
  resourceId: z.string().nullable().optional(),
  facilityId: Uuid,
  programId: Uuid,
  signature: z.string().optional(),
  documentNumber: z.string().optional(),
  eventOrigin: z.enum(['ISSUE', 'RECEIVE']).nullable().optional(),
  lineItems: z.array(LineItem).min(1),
  isActive: z.boolean().optional(),
})

export interface OpenLmisServer {
  url: string
  ids: { program: string; source: string; destination: string; credit: string; debit: string }
  facilities: Map<string, string>
  orderables: Map<string, string>
  lots: Map<string, { id: string; orderable: string }>
  /** Events taken, in order. */
  events: Array<z.infer<typeof StockEvent>>
  /** Stock on hand at a facility (by code), per product code. */
  onHand(facility: string): Map<string, number>
  /** The next `n` events are stored and their answers lost (the connection is destroyed). */
  loseAnswers(n: number): void
  down: boolean
  close(): Promise<void>
}

export async function startOpenLmis(seed: { facilities: string[]; products: string[]; lots?: Array<{ code: string; product: string }> }): Promise<OpenLmisServer> {
  const ids: OpenLmisServer['ids'] = { program: randomUUID(), source: randomUUID(), destination: randomUUID(), credit: randomUUID(), debit: randomUUID() }
  const facilities = new Map<string, string>(seed.facilities.map((code) => [code, randomUUID()]))
  const orderables = new Map<string, string>(seed.products.map((code) => [code, randomUUID()]))
  const lots = new Map<string, { id: string; orderable: string }>((seed.lots ?? []).map((l) => [l.code, { id: randomUUID(), orderable: orderables.get(l.product)! }]))
  const events: OpenLmisServer['events'] = []
  /** stock card id → its key and line items */
  const cards = new Map<string, { facility: string; orderable: string; lot: string | null; items: Array<{ documentNumber?: string; quantity: number }> }>()
  let lose = 0
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }
  const server = http.createServer((req, res) => {
    if (self.down) return void res.destroy()
    const url = new URL(req.url ?? '/', 'http://x')
    if (req.method === 'GET' && url.pathname === '/api/facilities') return json(res, 200, [...facilities].map(([code, id]) => ({ id, code, name: code })))
    if (req.method === 'GET' && url.pathname === '/api/orderables') return json(res, 200, { orderables: [...orderables].map(([productCode, id]) => ({ id, productCode })) })
    if (req.method === 'GET' && url.pathname === '/api/lots') return json(res, 200, { content: [...lots].map(([lotCode, l]) => ({ id: l.id, lotCode, tradeItemId: l.orderable })) })
    if (req.method === 'GET' && url.pathname === '/api/v2/stockCardSummaries') {
      const facility = url.searchParams.get('facilityId')
      const mine = [...cards].filter(([, c]) => c.facility === facility)
      return json(res, 200, { content: [...new Set(mine.map(([, c]) => c.orderable))].map((orderable) => ({ orderable: { id: orderable }, canFulfillForMe: mine.filter(([, c]) => c.orderable === orderable).map(([id]) => ({ stockCard: { id } })) })) })
    }
    const card = /^\/api\/stockCards\/([^/]+)$/.exec(url.pathname)
    if (req.method === 'GET' && card) {
      const c = cards.get(card[1]!)
      return c ? json(res, 200, { id: card[1], lineItems: c.items.map((i) => ({ documentNumber: i.documentNumber ?? null, quantity: i.quantity })) }) : json(res, 404, { message: 'no such stock card' })
    }
    if (req.method === 'POST' && url.pathname === '/api/stockEvents') {
      let body = ''
      req.on('data', (c: Buffer) => (body += c.toString()))
      req.on('end', () => {
        let parsed
        try {
          parsed = StockEvent.safeParse(JSON.parse(body))
        } catch {
          return json(res, 400, { message: 'the body is not JSON' })
        }
        if (!parsed.success) return json(res, 400, { message: `stockEvent: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` })
        const event = parsed.data
        if (event.programId !== ids.program || ![...facilities.values()].includes(event.facilityId)) return json(res, 400, { message: 'unknown program or facility' })
        for (const item of event.lineItems) {
          const directions = [item.sourceId, item.destinationId, item.reasonId].filter((x) => x !== undefined)
          if (directions.length !== 1) return json(res, 400, { message: 'a line item has one of sourceId, destinationId, reasonId' })
          if (![...orderables.values()].includes(item.orderableId)) return json(res, 400, { message: `unknown orderable ${item.orderableId}` })
          if (item.sourceId !== undefined && item.sourceId !== ids.source) return json(res, 400, { message: 'not a valid source' })
          if (item.destinationId !== undefined && item.destinationId !== ids.destination) return json(res, 400, { message: 'not a valid destination' })
          if (item.reasonId !== undefined && item.reasonId !== ids.credit && item.reasonId !== ids.debit) return json(res, 400, { message: 'not a valid reason' })
        }
        events.push(event)
        for (const item of event.lineItems) {
          const sign = item.destinationId !== undefined || item.reasonId === ids.debit ? -1 : 1
          const key = [...cards].find(([, c]) => c.facility === event.facilityId && c.orderable === item.orderableId && c.lot === (item.lotId ?? null))
          const id = key?.[0] ?? randomUUID()
          if (!key) cards.set(id, { facility: event.facilityId, orderable: item.orderableId, lot: item.lotId ?? null, items: [] })
          cards.get(id)!.items.push({ ...(event.documentNumber ? { documentNumber: event.documentNumber } : {}), quantity: sign * item.quantity })
        }
        if (lose > 0) {
          lose--
          return void res.destroy()
        }
        json(res, 201, randomUUID())
      })
      return
    }
    json(res, 404, { message: `no ${req.method} ${url.pathname}` })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const self: OpenLmisServer = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    ids,
    facilities,
    orderables,
    lots,
    events,
    down: false,
    onHand(code) {
      const facility = facilities.get(code)
      const byCode = new Map([...orderables].map(([c, id]) => [id, c]))
      const out = new Map<string, number>()
      for (const c of cards.values()) if (c.facility === facility) out.set(byCode.get(c.orderable)!, (out.get(byCode.get(c.orderable)!) ?? 0) + c.items.reduce((n, i) => n + i.quantity, 0))
      return out
    },
    loseAnswers(n) {
      lose = n
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    }),
  }
  return self
}
