/**
 * A site node killed with SIGKILL at random moments while scanners post movements, over many
 * rounds: after every restart each acknowledged movement is present, every document loads, on hand
 * equals the sum of the movements, and re-sent movements are recognised. The checks run at the start
 * of each round and once more after the last kill, so the last round's acknowledgements are held to
 * the same standard as the others'. Replay: STOCKMESH_SEED.
 */
import { describe, expect, it } from 'vitest'
import { api } from '../helpers/api.ts'
import { chaosSeeds, prng } from '../helpers/seed.ts'
import { startSiteProcess, type SiteProcess } from '../helpers/siteProcess.ts'
import { tempDir } from '../helpers/tempDir.ts'

const SKUS = ['AMOX-500', 'ORS-1L', 'ZINC-20', 'RDT-MAL', 'GLOVE-M', 'AL-6X1']
/** Tracked by lot in the demo catalog: its movements name lot L0. */
const LOT_SKU = 'AL-6X1'
const LOT = { lot: 'L0', expiry: '2027-06-30' }
const ROUNDS = 12

interface Acked {
  id: string
  sku: string
  delta: number
  lot?: string
}

/**
 * Everything a restarted site must show: every movement acknowledged before the kill present exactly
 * once and unchanged, on hand equal to the sum of the movements present, the ledger check clean, and
 * the newest acknowledged ids, sent again as a scanner that never got its answer would, refused as
 * duplicates. `acked` is in acknowledgement order, so the re-sent ones are the last round's.
 */
async function verifyRestart(site: SiteProcess, acked: Map<string, Acked>, when: string): Promise<void> {
  const listed = await api(site.url, 'GET', '/api/movements?limit=10000')
  expect(listed.status).toBe(200)
  const present = new Map<string, { id: string; sku: string; delta: number }[]>()
  for (const m of listed.body.movements) present.set(m.id, [...(present.get(m.id) ?? []), m])
  for (const a of acked.values()) {
    expect(present.get(a.id), `${when}: acknowledged movement ${a.id} is missing`).toHaveLength(1)
    expect(present.get(a.id)![0]).toMatchObject({ sku: a.sku, delta: a.delta, ...(a.lot ? { lots: [{ lot: a.lot, delta: a.delta }] } : {}) })
  }
  // Per lot too: the lot's on hand is the sum of its parts in the movements present.
  let inLot = 0
  for (const m of listed.body.movements as Array<{ lots?: Array<{ lot: string; delta: number }> }>) for (const part of m.lots ?? []) if (part.lot === LOT.lot) inLot += part.delta
  const lotStock = (await api(site.url, 'GET', `/api/stock/${LOT_SKU}`)).body
  expect(lotStock.lots.find((l: { lot: string }) => l.lot === LOT.lot)?.onHand ?? 0, `${when}: on hand of lot ${LOT.lot}`).toBe(inLot)
  // On hand equals the sum of every movement present (acknowledged or not) and the ledger checks out.
  const sums = new Map<string, number>()
  for (const m of listed.body.movements) sums.set(m.sku, (sums.get(m.sku) ?? 0) + m.delta)
  const stock = await api(site.url, 'GET', '/api/stock')
  for (const item of stock.body.items) expect(item.onHand, `${when}: on hand of ${item.sku}`).toBe(sums.get(item.sku) ?? 0)
  expect((await api(site.url, 'GET', '/api/ledger/check')).body).toEqual({ consistent: true, mismatches: [] })
  // A scanner that never got its answer sends again: recognised, not counted twice.
  for (const a of [...acked.values()].slice(-3)) {
    const res = await api(site.url, 'POST', '/api/movements', { id: a.id, kind: a.delta > 0 ? 'receipt' : 'issue', sku: a.sku, quantity: Math.abs(a.delta), user: 'scanner', ...(a.lot ? LOT : {}) })
    expect(res.body.status, `${when}: re-sent ${a.id}`).toBe('duplicate')
  }
}

describe('a site node killed with SIGKILL', () => {
  it.each(chaosSeeds('site crash'))('loses no acknowledged movement and stays consistent over many rounds (STOCKMESH_SEED=%i)', async (seed) => {
    const rand = prng(seed)
    const dir = tempDir()
    const args = ['site', '--data', dir, '--site', 'demo-store', '--port', '0', '--log-level', 'warn']
    const acked = new Map<string, Acked>()
    let next = 0
    let lotKnown = false

    // Provision with the demo catalog first, so the SKUs exist.
    const first = await startSiteProcess(['demo', '--data', dir, '--port', '0', '--log-level', 'warn'])
    await first.kill('SIGKILL')

    /** Starts the site on the data folder, runs `fn`, and always leaves the process dead. */
    const withSite = async (fn: (site: SiteProcess) => Promise<void>) => {
      const site = await startSiteProcess(args)
      try {
        await fn(site)
      } catch (error) {
        await site.kill('SIGKILL')
        throw new Error(`${(error as Error).message}\n--- site output ---\n${site.output()}`)
      }
    }

    for (let round = 0; round < ROUNDS; round++) {
      await withSite(async (site) => {
        await verifyRestart(site, acked, `round ${round}`)

        // Post as fast as two scanners can until the kill.
        const killAfter = 50 + Math.floor(rand() * 400)
        let killed = false
        let ackedThisRound = 0
        let firstAck!: () => void
        const someAcked = new Promise<void>((resolve) => (firstAck = resolve))
        // A site that never answers ends the wait after 20 s and fails below, instead of timing out the test.
        const giveUp = setTimeout(() => firstAck(), 20_000)
        const scanner = async () => {
          while (!killed) {
            const batch = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => {
              const sku = SKUS[Math.floor(rand() * SKUS.length)]!
              // An issue names lot L0 only once a receipt of it was acknowledged (before that the lot is unknown here).
              const issue = rand() < 0.3 && (sku !== LOT_SKU || lotKnown)
              const quantity = 1 + Math.floor(rand() * 20)
              return { id: `c${round}-${next++}`, kind: issue ? 'issue' : 'receipt', sku, quantity, user: 'scanner', device: 'crash-test', ...(sku === LOT_SKU ? LOT : {}) }
            })
            try {
              const res = await api(site.url, 'POST', '/api/movements', { movements: batch })
              if (res.status !== 201) throw new Error(`unexpected ${res.status}: ${JSON.stringify(res.body)}`)
              for (const m of batch) {
                acked.set(m.id, { id: m.id, sku: m.sku, delta: m.kind === 'issue' ? -m.quantity : m.quantity, ...(m.sku === LOT_SKU ? { lot: LOT.lot } : {}) })
                if (m.sku === LOT_SKU) lotKnown = true
              }
              ackedThisRound += batch.length
              firstAck()
            } catch (error) {
              if (!killed) throw error
            }
          }
        }
        const scanners = [scanner(), scanner()]
        const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
        try {
          // Never kill a round before it acknowledged something: a round with nothing acknowledged
          // (a slow start on a loaded machine) would leave the next restart nothing new to check.
          // A scanner that fails ends the wait at once.
          await Promise.race([Promise.all([someAcked, sleep(killAfter)]), ...scanners])
        } finally {
          clearTimeout(giveUp)
          killed = true
          await site.kill('SIGKILL')
        }
        await Promise.all(scanners)
        expect(ackedThisRound, `round ${round}: nothing acknowledged before the kill`).toBeGreaterThan(0)
      })
    }

    // The last round's acknowledgements get the same checks as every other round's: one more start.
    await withSite(async (site) => {
      await verifyRestart(site, acked, `restart after the last kill (round ${ROUNDS - 1})`)
      await site.kill('SIGKILL')
    })
    expect(acked.size).toBeGreaterThan(ROUNDS)
  }, 180_000)
})
