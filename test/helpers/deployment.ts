/**
 * Real-process fixtures for a deployment: the CLI run to success, a free port, a `stockmesh relay`
 * process, and a hub with a catalog whose devices are enrolled against a relay URL fixed in advance
 * (so a relay can be stopped and started again on it). Processes are stopped after each test.
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import path from 'node:path'
import { afterEach, expect } from 'vitest'
import { runCli } from '../cli/cliHelpers.ts'
import { api } from './api.ts'
import { serverProcess as serverChild, startSiteProcess, type RelayProcess, type SiteProcess } from './siteProcess.ts'
export type { RelayProcess }

/** `stockmesh <args>` serving a websocket (relay, carrier; test/helpers/siteProcess.ts), stopped after the test. */
export async function serverProcess(args: string[], wrap: string[] = []): Promise<RelayProcess> {
  const p = await serverChild(args, wrap)
  running.push(() => p.kill('SIGTERM'))
  return p
}
import { tempDir } from './tempDir.ts'

const BIN = path.resolve(import.meta.dirname, '../../bin/stockmesh.mjs')

/** Stops of the processes a test started, run (newest first) after each test. */
export const running: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const stop of running.splice(0).reverse()) await stop()
})

/** Runs `stockmesh …` and expects it to succeed quietly; returns what it printed. */
export async function ok(args: string[]): Promise<string> {
  const result = await runCli(args)
  expect(result.stderr, result.stdout).toBe('')
  expect(result.status).toBe(0)
  return result.stdout
}

/** A loopback port free right now. */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * `stockmesh relay --data dir --port port` (0: any), ready to serve; stopped after the test. `extra`:
 * more arguments (`--upstream URL --enrol FILE` for a relay chained under another).
 */
export async function relayProcess(dir: string, port = 0, extra: string[] = [], wrap: string[] = []): Promise<RelayProcess> {
  return serverProcess(['relay', '--data', dir, '--port', String(port), '--log-level', 'warn', ...extra], wrap)
}

/**
 * A hub (`deployment init`) with `products` in its catalog, a free port for its relay, and
 * `enrol(device, store)` writing `<files>/<device>.json` against `ws://127.0.0.1:<port>`.
 */
export async function hubDeployment(products: string[] = ['AMOX-500,Amoxicillin 500 mg capsules,pack of 100'], header = 'sku,name,unit') {
  const hub = path.join(tempDir('hub-'), 'hub')
  await ok(['deployment', 'init', '--data', hub, '--name', 'Pilot'])
  const csv = path.join(tempDir('csv-'), 'products.csv')
  writeFileSync(csv, `${header}\n${products.join('\n')}\n`)
  await ok(['catalog', 'import', '--data', hub, csv])
  const port = await freePort()
  const relayUrl = `ws://127.0.0.1:${port}`
  const files = tempDir('enrol-')
  const enrol = (device: string, store: string, extra: string[] = []) => ok(['enrol', '--data', hub, '--site', store, '--device', device, '--relay', relayUrl, '--out', path.join(files, `${device}.json`), ...extra])
  return { hub, port, relayUrl, files, enrol, file: (device: string) => path.join(files, `${device}.json`) }
}

/** `stockmesh site --enrol FILE` on a fresh folder, any port; stopped after the test. */
export async function enrolledSite(enrolment: string): Promise<SiteProcess> {
  const p = await startSiteProcess(['site', '--data', tempDir('site-'), '--enrol', enrolment, '--port', '0', '--log-level', 'warn'])
  running.push(() => p.kill('SIGTERM'))
  return p
}

/** On hand of AMOX-500 (the fixtures' product) at a site. */
export const stockOf = async (url: string): Promise<number> => (await api(url, 'GET', '/api/stock/AMOX-500')).body.onHand as number

/** The ids of the movements a site holds, sorted. */
export const movementIdsOf = async (url: string): Promise<string[]> => ((await api(url, 'GET', '/api/movements?limit=1000')).body.movements as Array<{ id: string }>).map((m) => m.id).sort()
