/**
 * The bridge's scheduling, with facts given directly and a connector that records what it is sent
 * (the ERP's side is tested against a real Tryton in bridge.test.ts; here, only the order and the
 * retries): fair batches across sites, nothing lost or decided while the ERP is unreachable,
 * parked facts tried again and forwarded once the ERP takes them.
 */
import pino from 'pino'
import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { ErpBridge } from '../../src/erp/bridge.ts'
import type { ErpConnector, Outcome } from '../../src/erp/connector.ts'
import type { Fact, MovementFact } from '../../src/erp/facts.ts'
import { ErpUnavailable } from '../../src/erp/trytonRpc.ts'
import { tempDir } from '../helpers/tempDir.ts'
import { until } from '../helpers/until.ts'

const fact = (site: string, i: number, sku = 'AMOX-500'): MovementFact => ({ type: 'movement', key: `${site}/m${i}/n:${i}`, site, id: `m${i}`, kind: 'receipt', sku, delta: 1, at: 0, by: 'x' })

class Recording implements ErpConnector {
  readonly description = 'recording'
  batches: string[][] = []
  /** When each batch arrived (ms). */
  at: number[] = []
  down = false
  known = new Set(['AMOX-500'])
  delayMs = 0
  async forward(facts: Fact[]): Promise<Outcome[]> {
    if (this.down) throw new ErpUnavailable('the ERP cannot be reached')
    if (this.delayMs) await new Promise((resolve) => setTimeout(resolve, this.delayMs))
    this.batches.push(facts.map((f) => f.key))
    this.at.push(performance.now())
    return facts.map((f) => (f.type === 'movement' && !this.known.has(f.sku) ? { key: f.key, parked: `SKU ${f.sku} unknown` } : { key: f.key, forwarded: true }))
  }
}

function bridge(connector: ErpConnector, facts: Map<string, Fact[]>, dir = tempDir('bridge-'), minIntervalMs = 0) {
  return new ErpBridge({
    repo: undefined as never,
    connector,
    sites: () => [...facts.keys()].map((s) => [s, '', '']),
    catalog: async () => undefined,
    dir,
    logger: pino({ level: 'silent' }),
    metrics: new Registry(),
    batchSize: 10,
    minIntervalMs,
    scanMs: 20,
    masterDataMs: 0,
    maxBackoffMs: 200,
    read: async (site) => facts.get(site) ?? [],
  })
}

describe('the ERP bridge scheduling', () => {
  it('serves every waiting site in each batch: a backlog of 200 does not hold up another site', async () => {
    const connector = new Recording()
    connector.delayMs = 15
    const facts = new Map([['store-a', Array.from({ length: 200 }, (_, i) => fact('store-a', i))], ['store-b', [] as Fact[]]])
    const b = bridge(connector, facts)
    await b.start()
    await until('a batch or two', async () => (connector.batches.length >= 2 ? true : undefined), 5000)
    facts.get('store-b')!.push(fact('store-b', 1), fact('store-b', 2), fact('store-b', 3))
    const forwarded = (site: string) => b.status().sites.find((s) => s.site === site)?.forwarded
    await until('everything forwarded', async () => (forwarded('store-a') === 200 && forwarded('store-b') === 3 ? true : undefined), 10_000)
    // B's three went out together with A's, in the first batch after they appeared, not after A's 200.
    const first = connector.batches.findIndex((batch) => batch.some((k) => k.startsWith('store-b/')))
    expect(first).toBeGreaterThan(0)
    expect(first).toBeLessThan(8)
    expect(connector.batches[first]!.filter((k) => k.startsWith('store-b/'))).toHaveLength(3)
    expect(connector.batches.flat()).toHaveLength(203)
    expect(connector.batches.every((batch) => batch.length <= 10)).toBe(true)
    expect(new Set(connector.batches.flat()).size).toBe(203)
    await b.stop()
  })

  it('waits while the ERP is unreachable, backing off, and sends each fact once when it is back; a restart keeps what was forwarded', async () => {
    const connector = new Recording()
    connector.down = true
    const facts = new Map([['store-a', Array.from({ length: 25 }, (_, i) => fact('store-a', i))]])
    const dir = tempDir('bridge-')
    const b = bridge(connector, facts, dir)
    await b.start()
    const down = await until('the bridge to see the ERP down', async () => (b.status().state === 'unreachable' ? b.status() : undefined), 5000)
    expect(down.lastError).toMatch(/cannot be reached/)
    expect(down.sites[0]).toMatchObject({ pending: 25, forwarded: 0 })
    connector.down = false
    await until('all forwarded', async () => (b.status().sites[0]!.forwarded === 25 ? true : undefined), 5000)
    expect(b.status().state).toBe('ok')
    await b.stop()
    // Restarted on the same outbox, with the same facts in the documents: nothing sent again.
    const again = bridge(connector, facts, dir)
    const sent = connector.batches.flat().length
    await again.start()
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(connector.batches.flat().length).toBe(sent)
    expect(again.status().sites[0]).toMatchObject({ forwarded: 25, pending: 0 })
    await again.stop()
  })

  it('parks what the ERP will not take, with the reason, and forwards it once the ERP knows it (after a restart too)', async () => {
    const connector = new Recording()
    const facts = new Map([['store-a', [fact('store-a', 1), fact('store-a', 2, 'NEW-1')]]])
    const dir = tempDir('bridge-')
    const b = bridge(connector, facts, dir)
    await b.start()
    const parked = await until('one parked', async () => (b.status().sites[0]!.parked.length === 1 ? b.status().sites[0]! : undefined), 5000)
    expect(parked.parked[0]).toMatchObject({ key: 'store-a/m2/n:2', reason: 'SKU NEW-1 unknown' })
    expect(parked.forwarded).toBe(1)
    await b.stop()
    connector.known.add('NEW-1')
    const again = bridge(connector, facts, dir)
    await again.start()
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(again.status().sites[0]!.parked).toHaveLength(1)
    expect(again.retryParked()).toBe(1)
    await until('forwarded after the fix', async () => (again.status().sites[0]!.forwarded === 2 && again.status().sites[0]!.parked.length === 0 ? true : undefined), 5000)
    await again.stop()
  })

  it('takes up where the last batch ended: with more sites waiting than a batch holds, none waits for the others to drain', async () => {
    const connector = new Recording()
    connector.delayMs = 5
    const sites = Array.from({ length: 15 }, (_, i) => `site-${String(i).padStart(2, '0')}`)
    const facts = new Map(sites.map((s) => [s, Array.from({ length: 20 }, (_, i) => fact(s, i)) as Fact[]]))
    const b = bridge(connector, facts)
    await b.start()
    await until('three batches', async () => (connector.batches.length >= 3 ? true : undefined), 5000)
    // Batches of 10 over 15 sites: the first two batches serve all 15.
    const served = new Set(connector.batches.slice(0, 2).flat().map((k) => k.split('/')[0]))
    expect(served.size).toBe(15)
    await until('all forwarded', async () => (b.status().sites.every((s) => s.forwarded === 20) ? true : undefined), 10_000)
    await b.stop()
  })

  it('is never faster than its rate limit: batches at least the interval apart', async () => {
    const connector = new Recording()
    const facts = new Map([['store-a', Array.from({ length: 50 }, (_, i) => fact('store-a', i)) as Fact[]]])
    const b = bridge(connector, facts, tempDir('bridge-'), 100)
    await b.start()
    await until('all forwarded', async () => (b.status().sites[0]!.forwarded === 50 ? true : undefined), 10_000)
    await b.stop()
    expect(connector.batches).toHaveLength(5)
    const gaps = connector.at.slice(1).map((t, i) => t - connector.at[i]!)
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(95)
  })
})
