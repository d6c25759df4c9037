/**
 * The hub relay killed with SIGKILL mid-sync and restarted, over several rounds, every part a real
 * process over real sockets: two storekeepers of store A (a1, a2) post bursts of movements while
 * the relay is killed at a random moment after the posts start, then restarted on the same port.
 * Afterwards both devices read up-to-date and hold every acknowledged movement exactly once, with
 * the same on hand and a clean ledger check; store B holds none of them; and a NEW device of A,
 * enrolled after a1 and a2 are stopped, receives every acknowledged movement from the relay alone
 * (the relay's disk held them: nothing lost at the hub), on its first start. Replay: STOCKMESH_SEED.
 */
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { api } from '../helpers/api.ts'
import { hubDeployment, ok, relayProcess, running } from '../helpers/deployment.ts'
import { chaosSeeds, prng } from '../helpers/seed.ts'
import { startSiteProcess, type SiteProcess } from '../helpers/siteProcess.ts'
import { tempDir } from '../helpers/tempDir.ts'
import { until } from '../helpers/until.ts'

const SKUS = ['AMOX-500', 'ORS-1L']
const ROUNDS = 5

async function site(enrolment: string | undefined, dir = tempDir('site-')): Promise<SiteProcess> {
  const p = await startSiteProcess(['site', '--data', dir, ...(enrolment ? ['--enrol', enrolment] : []), '--port', '0', '--log-level', 'warn'])
  running.push(() => p.kill('SIGTERM'))
  return p
}

interface Listed {
  id: string
  sku: string
  delta: number
}
const movements = async (url: string): Promise<Listed[]> => {
  const res = await api(url, 'GET', '/api/movements?limit=10000')
  expect(res.status).toBe(200)
  return res.body.movements as Listed[]
}
const syncState = async (url: string) => (await api(url, 'GET', '/api/sync')).body.state as string
const onHand = async (url: string) => {
  const items = (await api(url, 'GET', '/api/stock')).body.items as Array<{ sku: string; onHand: number }>
  return Object.fromEntries(items.map((i) => [i.sku, i.onHand]))
}
/** Ids of `acked` that `listed` does not hold exactly once. */
const notExactlyOnce = (listed: Listed[], acked: Map<string, Listed>) => {
  const count = new Map<string, number>()
  for (const m of listed) count.set(m.id, (count.get(m.id) ?? 0) + 1)
  return [...acked.keys()].filter((id) => count.get(id) !== 1)
}


describe('the hub relay killed with SIGKILL mid-sync', () => {
  it.each(chaosSeeds('relay crash'))('loses nothing: every acknowledged movement reaches both devices of A and a new device enrolled afterwards (STOCKMESH_SEED=%i)', async (seed) => {
    const rand = prng(seed)
    const { hub, port, files, enrol } = await hubDeployment(['AMOX-500,Amoxicillin 500 mg capsules,pack of 100', 'ORS-1L,Oral rehydration salts,sachet'])
    for (const [device, store] of [['a1', 'store-a'], ['a2', 'store-a'], ['b1', 'store-b']] as const) await enrol(device, store)

    let relay = await relayProcess(hub, port)
    const [a1, a2, b1] = await Promise.all(['a1', 'a2', 'b1'].map((d) => site(path.join(files, `${d}.json`))))
    const devices = [a1!, a2!]
    const acked = new Map<string, Listed>()
    let next = 0
    const failWith = async (error: unknown): Promise<never> => {
      const logs = [`--- relay ---\n${relay.output()}`, ...devices.map((d, i) => `--- a${i + 1} ---\n${d.output()}`)].join('\n')
      throw new Error(`${(error as Error).message}\n${logs}`, { cause: error })
    }

    try {
      // Both devices reach the relay once before the chaos, so every round kills a live sync.
      await until('a1 and a2 to read up-to-date before the first round', async () => ((await syncState(a1!.url)) === 'up-to-date' && (await syncState(a2!.url)) === 'up-to-date' ? true : undefined), 30_000)

      for (let round = 0; round < ROUNDS; round++) {
        let killed = false
        const scanner = async (device: SiteProcess, name: string) => {
          // At least one batch a round, then bursts until the relay is killed.
          do {
            const batch = Array.from({ length: 1 + Math.floor(rand() * 5) }, () => {
              const sku = SKUS[Math.floor(rand() * SKUS.length)]!
              const issue = rand() < 0.3
              const quantity = 1 + Math.floor(rand() * 20)
              return { id: `r${round}-${name}-${next++}`, kind: issue ? 'issue' : 'receipt', sku, quantity, user: name }
            })
            const res = await api(device.url, 'POST', '/api/movements', { movements: batch })
            if (res.status !== 201) throw new Error(`round ${round}: ${name} answered ${res.status}: ${JSON.stringify(res.body)}`)
            for (const m of batch) acked.set(m.id, { id: m.id, sku: m.sku, delta: m.kind === 'issue' ? -m.quantity : m.quantity })
          } while (!killed)
        }
        const scanners = [scanner(a1!, 'a1'), scanner(a2!, 'a2')]
        const killAfter = Math.floor(rand() * 300)
        await Promise.race([new Promise((resolve) => setTimeout(resolve, killAfter)), Promise.all(scanners)])
        await relay.kill((process.env.RC_SIGNAL as NodeJS.Signals) ?? 'SIGKILL')
        killed = true
        await Promise.all(scanners)
        relay = await relayProcess(hub, port)
      }

      // After the last restart: both devices hold everything the relay holds, and the relay holds all of theirs.
      const wanted = [...acked.keys()].sort().join()
      await until(
        'a1 and a2 to read up-to-date and hold every acknowledged movement',
        async () => {
          for (const d of devices) {
            if ((await syncState(d.url)) !== 'up-to-date') return undefined
            if ((await movements(d.url)).map((m) => m.id).sort().join() !== wanted) return undefined
          }
          return true
        },
        40_000,
      ).catch(async (error: unknown) => {
        for (const [i, d] of devices.entries()) {
          const missing = notExactlyOnce(await movements(d.url), acked)
          console.error(`[relay crash] seed ${seed}: a${i + 1} reads ${await syncState(d.url)}, ${missing.length} of ${acked.size} acknowledged movements not held once: ${missing.slice(0, 20).join(' ')}`)
        }
        throw error
      })

      const sums: Record<string, number> = {}
      for (const a of acked.values()) sums[a.sku] = (sums[a.sku] ?? 0) + a.delta
      for (const [i, d] of devices.entries()) {
        const listed = await movements(d.url)
        expect(notExactlyOnce(listed, acked), `a${i + 1}: acknowledged movements not held exactly once`).toEqual([])
        expect(listed).toHaveLength(acked.size)
        for (const m of listed) expect(m, `a${i + 1}: movement ${m.id}`).toMatchObject(acked.get(m.id)!)
        const stock = await onHand(d.url)
        for (const sku of SKUS) expect(stock[sku] ?? 0, `a${i + 1}: on hand of ${sku}`).toBe(sums[sku] ?? 0)
        expect((await api(d.url, 'GET', '/api/ledger/check')).body).toEqual({ consistent: true, mismatches: [] })
      }
      expect(await onHand(a1!.url)).toEqual(await onHand(a2!.url))

      // Store B shares the relay, not A's ledger.
      expect(await movements(b1!.url)).toEqual([])

      // a1 and a2 go away; a new device of A, enrolled now with a fresh folder, gets everything from the relay alone.
      await a1!.kill('SIGTERM')
      await a2!.kill('SIGTERM')
      // Its first start must get everything: each journal the ledger names is awaited until it
      // arrives (it comes back unavailable while the relay link is still opening).
      await enrol('a3', 'store-a')
      const holdsAll = async (url: string) => (await movements(url)).map((m) => m.id).sort().join() === wanted
      const a3 = await site(path.join(files, 'a3.json'), tempDir('site-'))
      devices.splice(0, devices.length, a3)
      await until('a3 to hold every acknowledged movement from the relay, on its first start', async () => ((await holdsAll(a3.url)) ? true : undefined), 30_000).catch(async () => {
        const missing = notExactlyOnce(await movements(a3.url), acked)
        throw new Error(`a3 lacks ${missing.length} of ${acked.size} acknowledged movements (reads ${await syncState(a3.url)}): ${missing.slice(0, 20).join(' ')}`)
      })
      expect(notExactlyOnce(await movements(a3.url), acked)).toEqual([])
      const stock = await onHand(a3.url)
      for (const sku of SKUS) expect(stock[sku] ?? 0, `a3: on hand of ${sku}`).toBe(sums[sku] ?? 0)
      expect((await api(a3.url, 'GET', '/api/ledger/check')).body).toEqual({ consistent: true, mismatches: [] })
      expect(acked.size).toBeGreaterThanOrEqual(2 * ROUNDS)
    } catch (error) {
      await failWith(error)
    }
  }, 120_000)

  // 2026-11-29, found by this test (every seed, e.g. STOCKMESH_SEED=1554234880, and without any
  // relay kill): a device enrolled and first started after the other devices of its site stopped
  // reads up-to-date but never holds their movements: its ledger names their journals, the first
  // request for each journal comes back unavailable ("journal not available yet" in its log) and
  // is retried only when the ledger changes again, which nobody does. A restart of the same folder
  // loads what reached its disk meanwhile (all of it, in every run so far: the main case above
  // relies on that). The same "unavailable once, never asked again" can strike a running device
  // mid-sync: once, with the relay stopped by SIGTERM instead of SIGKILL, a2 never received a1's
  // journal. Fixed: the site node waits on the handle of a document that was unavailable until it
  // arrives (src/node/siteNode.ts #find), and GET /api/sync counts a named journal not yet here.
  it('a device enrolled after the others stopped holds their movements on its first start', async () => {
    const { hub, port, files, enrol } = await hubDeployment(['AMOX-500,Amoxicillin 500 mg capsules,pack of 100', 'ORS-1L,Oral rehydration salts,sachet'])
    await enrol('a1', 'store-a')
    await relayProcess(hub, port)
    const a1 = await site(path.join(files, 'a1.json'))
    const posted = Array.from({ length: 6 }, (_, i) => ({ id: `m${i}`, kind: 'receipt', sku: SKUS[i % 2]!, quantity: i + 1, user: 'amina' }))
    expect((await api(a1.url, 'POST', '/api/movements', { movements: posted })).status).toBe(201)
    await until('a1 to read up-to-date', async () => ((await syncState(a1.url)) === 'up-to-date' ? true : undefined), 30_000)
    await a1.kill('SIGTERM')
    await enrol('a2', 'store-a')
    const a2 = await site(path.join(files, 'a2.json'))
    const ids = posted.map((m) => m.id).sort().join()
    await until('a2 to hold a1’s movements on its first start', async () => ((await movements(a2.url)).map((m) => m.id).sort().join() === ids ? true : undefined), 15_000)
  }, 60_000)
})
