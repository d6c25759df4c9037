/**
 * A real deployment for the relay benchmark: `stockmesh deployment init` and `stockmesh catalog
 * import` (the built CLI, bin/stockmesh.mjs) with the benchmark's 2,000-product catalog, then one
 * enrolment file per device through `enrolDevice` (src/hub/enrol.ts: what `stockmesh enrol` runs;
 * called in-process because 300 CLI start-ups would take minutes). Each device has its own key
 * pair and signed credential.
 */
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import { enrolDevice } from '../src/hub/enrol.ts'
import { CATALOG_SIZE, log, skuOf } from './workload.ts'

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'stockmesh.mjs')

/** Runs the built CLI; retries a few times when dist/ is being rebuilt by someone else (missing module). */
export async function cli(args: string[]): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const result = await new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile(process.execPath, [BIN, ...args], { maxBuffer: 1 << 24 }, (error, out, err) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out, err }))
    })
    if (result.code === 0) return result.out
    if (attempt < 5 && /Cannot find module|ERR_MODULE_NOT_FOUND/.test(result.err)) {
      log(`  CLI: dist/ missing a module (being rebuilt?); retrying in 5 s`)
      await new Promise((r) => setTimeout(r, 5000))
      continue
    }
    throw new Error(`stockmesh ${args.join(' ')} exited ${result.code}:\n${result.err}${result.out}`)
  }
}

export interface Device {
  site: string
  device: string
  file: string
}

export interface Deployment {
  root: string
  hub: string
  devices: Device[]
  /** Wall seconds to make it (init + catalog + every enrolment). */
  setupS: number
}

export const siteName = (i: number): string => `site-${String(i).padStart(3, '0')}`

/**
 * `sites` sites with `perSite` devices each (device ids `<site>-d<k>`), plus `extra` named devices
 * (site, device), all enrolled against `relayUrl` (the relay's own URL; a device behind a
 * throttling proxy is given the proxy's URL when it connects).
 */
export async function makeDeployment(sites: number, perSite: number, relayUrl: string, extra: Array<{ site: string; device: string }> = []): Promise<Deployment> {
  const t0 = performance.now()
  const root = mkdtempSync(path.join(os.tmpdir(), 'stockmesh-relaybench-'))
  const hub = path.join(root, 'hub')
  await cli(['deployment', 'init', '--data', hub, '--name', 'RelayBench'])
  const csv = path.join(root, 'products.csv')
  writeFileSync(csv, `sku,name,unit\n${Array.from({ length: CATALOG_SIZE }, (_, i) => `${skuOf(i)},Product ${i},each`).join('\n')}\n`)
  await cli(['catalog', 'import', '--data', hub, csv])
  // The reason codes the workload's adjustments and counts name (bench/workload.ts).
  const reasons = path.join(root, 'reasons.csv')
  writeFileSync(reasons, 'code,label\ndamaged,Damaged\nexpired,Expired\nfound,Found\ncycle-count,Cycle count\n')
  await cli(['catalog', 'import', '--data', hub, reasons])
  const files = path.join(root, 'enrol')
  mkdirSync(files)
  const wanted = [...extra]
  for (let s = 0; s < sites; s++) for (let d = 1; d <= perSite; d++) wanted.push({ site: siteName(s), device: `${siteName(s)}-d${d}` })
  const devices: Device[] = []
  const logger = pino({ level: 'silent' })
  for (const [i, { site, device }] of wanted.entries()) {
    const file = path.join(files, `${device}.json`)
    await enrolDevice(hub, { site, device, out: file, relay: relayUrl, logger })
    devices.push({ site, device, file })
    if ((i + 1) % 50 === 0) log(`  enrolled ${i + 1}/${wanted.length} devices`)
  }
  return { root, hub, devices, setupS: (performance.now() - t0) / 1000 }
}
