/**
 * The OpenLMIS-style connector against a server that checks the published stock event shape
 * (test/helpers/openlmisServer.ts; OpenLMIS itself cannot run here): movements become stock
 * events with the right source, destination or reason; a lost answer is read back, not sent
 * twice; an unknown SKU is parked; a refused event is parked with the server's message.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { connectorOf } from '../../src/erp/config.ts'
import type { Fact, MovementFact } from '../../src/erp/facts.ts'
import { OpenLmisConnector } from '../../src/erp/openlmis.ts'
import { ErpUnavailable } from '../../src/erp/trytonRpc.ts'
import { startOpenLmis, type OpenLmisServer } from '../helpers/openlmisServer.ts'

let server: OpenLmisServer | undefined
afterEach(async () => server?.close())

const fact = (id: string, kind: MovementFact['kind'], sku: string, delta: number, extra: Partial<MovementFact> = {}): MovementFact => ({ type: 'movement', key: `store-a/${id}/d1:1`, site: 'store-a', id, kind, sku, delta, at: Date.UTC(2026, 10, 30), by: 'amina', ...extra })

describe('the OpenLMIS-style connector', () => {
  it('sends movements as stock events of the published shape, once, reading back a lost answer; parks what the server cannot take', async () => {
    server = await startOpenLmis({ facilities: ['store-a'], products: ['AMOX-500', 'AL-6X1'], lots: [{ code: 'L-1', product: 'AL-6X1' }] })
    const query = new URLSearchParams(server.ids).toString()
    const connector = connectorOf(`openlmis+${server.url}?${query}`, {})
    expect(connector).toBeInstanceOf(OpenLmisConnector)
    const facts: Fact[] = [
      fact('r1', 'receipt', 'AMOX-500', 50),
      fact('i1', 'issue', 'AMOX-500', -12),
      fact('adj', 'adjustment', 'AMOX-500', -3, { reason: 'expired' }),
      fact('cnt', 'count', 'AMOX-500', 2),
      fact('r2', 'receipt', 'AL-6X1', 20, { lots: [{ lot: 'L-1', delta: 20, expiry: '2027-01-31' }] }),
      fact('x', 'receipt', 'NOPE-1', 1),
    ]
    const outcomes = await connector.forward(facts)
    expect(outcomes.filter((o) => 'forwarded' in o)).toHaveLength(5)
    expect(outcomes.find((o) => o.key === 'store-a/x/d1:1')).toMatchObject({ parked: expect.stringMatching(/SKU NOPE-1 is not an orderable/) })
    expect(server.onHand('store-a')).toEqual(new Map([['AMOX-500', 37], ['AL-6X1', 20]]))
    const [receipt, issue, adjustment] = server.events
    expect(receipt).toMatchObject({ documentNumber: 'store-a/r1/d1:1', eventOrigin: 'RECEIVE', lineItems: [{ quantity: 50, sourceId: server.ids.source, occurredDate: '2026-11-30' }] })
    expect(issue).toMatchObject({ eventOrigin: 'ISSUE', lineItems: [{ quantity: 12, destinationId: server.ids.destination }] })
    expect(adjustment).toMatchObject({ lineItems: [{ quantity: 3, reasonId: server.ids.debit }] })
    expect(server.events[4]!.lineItems[0]!.lotId).toBe(server.lots.get('L-1')!.id)

    // The answer to the next event is lost: the connector says the ERP is unreachable, then reads back and does not send it again.
    server.loseAnswers(1)
    const next = fact('r3', 'receipt', 'AMOX-500', 5)
    await expect(connector.forward([next])).rejects.toBeInstanceOf(ErpUnavailable)
    expect(await connector.forward([next])).toEqual([{ key: next.key, forwarded: true }])
    expect(server.events.filter((e) => e.documentNumber === next.key)).toHaveLength(1)
    expect(server.onHand('store-a').get('AMOX-500')).toBe(42)
    // A new connector (a restarted relay) reads back too: all six sent before are found.
    const fresh = connectorOf(`openlmis+${server.url}?${query}`, {})
    const count = server.events.length
    expect((await fresh.forward([...facts.slice(0, 5), next])).every((o) => 'forwarded' in o)).toBe(true)
    expect(server.events.length).toBe(count)
    // Down: an outage, nothing decided.
    server.down = true
    await expect(fresh.forward([fact('r4', 'receipt', 'AMOX-500', 1)])).rejects.toBeInstanceOf(ErpUnavailable)
  })

  it('parks an event the server refuses, with its message, and names the missing ids in the URL', async () => {
    server = await startOpenLmis({ facilities: ['store-a'], products: ['AMOX-500'] })
    const connector = new OpenLmisConnector({ url: server.url, ...server.ids, source: '00000000-0000-4000-8000-000000000000' })
    expect(await connector.forward([fact('r1', 'receipt', 'AMOX-500', 5)])).toEqual([{ key: 'store-a/r1/d1:1', parked: expect.stringMatching(/OpenLMIS refused it \(HTTP 400\): not a valid source/) }])
    expect(() => connectorOf(`openlmis+${server!.url}?program=x`, {})).toThrow(/give source, destination, credit, debit/)
  })
})
