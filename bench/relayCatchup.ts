/**
 * Relay benchmark, part 2: two devices of one site catch up after a week apart, through the relay,
 * each on its own link (bench/relayProxy.ts): unthrottled, and 64 kbit/s each way. Side by side,
 * the field's anchor: the same movements as PouchDB documents, replicated through a CouchDB-style
 * server (express-pouchdb) over the same kind of link.
 *
 * stockmesh: two real SiteNodes provisioned from their enrolment files record `perSide` movements
 * each (one `recordMovements` call, one change, per movement; a clock that puts 5,000 movements in
 * a week), offline; then both connect to the relay (`connectRelay`, through their proxies) at the
 * same moment. Done when each holds all 2 × perSide movements.
 *
 * PouchDB: two in-memory PouchDBs each `put` the same `perSide` movements (one document per
 * movement, `_id` = movement id); then both run one-shot `sync` with the server database at the
 * same moment, again until each holds all of them (a second round brings each the other's
 * documents that reached the server after its first pull).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import PouchDB from 'pouchdb-core'
import mem from 'pouchdb-adapter-memory'
import httpAdapter from 'pouchdb-adapter-http'
import replication from 'pouchdb-replication'
import { checkLedger, journalEntries, journalSize } from '../src/docs/ledger.ts'
import { readEnrolmentFile } from '../src/hub/enrol.ts'
import { recordMovements } from '../src/node/ledger.ts'
import { SiteNode } from '../src/node/siteNode.ts'
import type { JournalDoc } from '../src/schema/ledger.ts'
import { startProxy } from './relayProxy.ts'
import { BenchClock, Movements, STEP_MS, cpuMs, log, type Input } from './workload.ts'

PouchDB.plugin(mem).plugin(httpAdapter).plugin(replication)

export interface CatchupRun {
  system: 'stockmesh' | 'pouchdb'
  link: 'loopback' | '64kbit'
  /** Movements in all (both devices). */
  movements: number
  /** Until both devices hold every movement. */
  ms: number
  up: number
  down: number
  converged: boolean
  /** Offline recording: CPU ms per movement on the device. */
  recordCpuMsPerMovement: number
  /** stockmesh: ledger consistent on both; pouchdb: same doc count. */
  note?: string
  /** stockmesh: times a device lost its relay connection during the catch-up (and reconnected). */
  drops?: number
}

export interface LinkSpec {
  label: CatchupRun['link']
  bytesPerSecond: number
  oneWayMs: number
}

const fmtS = (ms: number) => `${(ms / 1000).toFixed(0)} s`
const until = async (what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> => {
  const t0 = performance.now()
  while (performance.now() - t0 < timeoutMs) {
    if (await check()) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  log(`  timed out waiting for ${what}`)
  return false
}

/** Movements a site node holds: every journal its ledger names that it has loaded. */
export function held(node: SiteNode): number {
  let n = 0
  for (const { url } of journalEntries(node.store.ledger.doc())) {
    const ref = node.store.journal(url)
    if (ref) n += journalSize(ref.doc())
  }
  return n
}

function journals(node: SiteNode): JournalDoc[] {
  return journalEntries(node.store.ledger.doc()).flatMap(({ url }) => node.store.journal(url)?.doc() ?? [])
}

function weekInputs(seed: number, tag: string, start: number, n: number, offset: number): Input[] {
  const gen = new Movements(seed, tag)
  return Array.from({ length: n }, (_, i) => gen.next(start + i * STEP_MS + offset))
}

/** stockmesh: devices `a` and `b` (enrolment files) of one site, a week apart, then through the relay. */
export async function stockmeshCatchup(relayPort: number, files: [string, string], perSide: number, link: LinkSpec): Promise<CatchupRun> {
  const dirs = files.map(() => mkdtempSync(path.join(os.tmpdir(), 'stockmesh-week-')))
  const start = Date.now()
  const clocks = [new BenchClock(start), new BenchClock(start)]
  const nodes: SiteNode[] = []
  for (const [i, file] of files.entries()) {
    const { enrolment } = await readEnrolmentFile(file)
    nodes.push(await SiteNode.open({ dataDir: dirs[i]!, enrolment, logger: pino({ level: 'silent' }), now: clocks[i]!.now }))
  }
  log(`  ${link.label}: ${perSide} movements on each device, one at a time, offline`)
  const c0 = process.cpuUsage()
  for (const [i, node] of nodes.entries()) {
    const inputs = weekInputs(21 + i, `w${i}`, start, perSide, i * (STEP_MS / 2))
    for (const input of inputs) {
      await recordMovements(node, [input])
      clocks[i]!.count++
    }
  }
  const recordCpuMsPerMovement = cpuMs(c0) / (2 * perSide)
  const proxies = await Promise.all(nodes.map(() => startProxy({ host: '127.0.0.1', port: relayPort }, link.bytesPerSecond, link.oneWayMs)))
  log(`  ${link.label}: both devices connect to the relay`)
  const t0 = performance.now()
  let drops = 0
  for (const node of nodes) node.events.on('peer', ({ state }) => state === 'disconnected' && drops++)
  nodes.forEach((node, i) => node.connectRelay(proxies[i]!.url))
  const total = 2 * perSide
  let nextLog = performance.now() + 30_000
  const converged = await until(
    'both devices to hold every movement',
    () => {
      if (performance.now() > nextLog) {
        nextLog += 30_000
        log(`    ${fmtS(performance.now() - t0)}: holding ${nodes.map(held).join(' / ')} of ${total}; bytes up ${proxies.map((p) => p.up).join('+')}, down ${proxies.map((p) => p.down).join('+')}; relay links ${nodes.map((n) => (n.relay?.remotePeerId ? 'up' : `down (${n.relay?.lastError ?? n.relay?.lastRefusal?.error ?? '?'})`)).join(', ')}`)
      }
      return nodes.every((n) => held(n) === total)
    },
    20 * 60_000,
  )
  const ms = performance.now() - t0
  const mismatches = nodes.map((n) => checkLedger(journals(n)).length)
  const onHand = nodes.map((n) => JSON.stringify([...n.book.onHand()].sort()))
  const run: CatchupRun = {
    system: 'stockmesh',
    link: link.label,
    movements: total,
    ms,
    up: proxies.reduce((s, p) => s + p.up, 0),
    down: proxies.reduce((s, p) => s + p.down, 0),
    converged: converged && onHand[0] === onHand[1] && mismatches.every((m) => m === 0),
    recordCpuMsPerMovement,
    drops,
    note: `ledger check mismatches ${mismatches.join('/')}, same on hand ${onHand[0] === onHand[1]}`,
  }
  for (const node of nodes) {
    node.relay?.disconnect()
    await node.close()
  }
  await Promise.all(proxies.map((p) => p.close()))
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
  return run
}

/** The PouchDB server (express-pouchdb, in-memory) in a child process. */
export async function startPouchServer(): Promise<{ port: number; child: ChildProcess; stop(): Promise<void> }> {
  const here = path.dirname(fileURLToPath(import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'relayPouchServer.ts')], { cwd: path.dirname(here), stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  let err = ''
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /"port":(\d+)/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    child.once('exit', (code) => reject(new Error(`PouchDB server exited ${code}: ${err}`)))
  })
  return {
    port,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}

let pouchRun = 0
/** PouchDB: the same movements, one document each, replicated through express-pouchdb. */
export async function pouchCatchup(serverPort: number, perSide: number, link: LinkSpec): Promise<CatchupRun> {
  const name = `site-week-${++pouchRun}`
  const start = Date.now()
  const dbs = [0, 1].map((i) => new PouchDB(`${name}-dev${i}`, { adapter: 'memory' }))
  log(`  ${link.label}: PouchDB, ${perSide} documents on each device, one put each`)
  const c0 = process.cpuUsage()
  for (const [i, db] of dbs.entries()) {
    for (const input of weekInputs(21 + i, `w${i}`, start, perSide, i * (STEP_MS / 2))) await db.put({ ...input, _id: String(input.id) })
  }
  const recordCpuMsPerMovement = cpuMs(c0) / (2 * perSide)
  const proxies = await Promise.all(dbs.map(() => startProxy({ host: '127.0.0.1', port: serverPort }, link.bytesPerSecond, link.oneWayMs)))
  // Make the server database first (not counted as the devices' traffic).
  await new PouchDB(`http://127.0.0.1:${serverPort}/${name}`).info()
  const total = 2 * perSide
  const count = async (db: { info(): Promise<{ doc_count: number }> }) => (await db.info()).doc_count
  log(`  ${link.label}: PouchDB, both devices sync with the server`)
  const t0 = performance.now()
  let rounds = 0
  let errors = 0
  let converged = false
  while (performance.now() - t0 < 20 * 60_000) {
    rounds++
    await Promise.all(
      dbs.map((db, i) =>
        db.sync(`http://127.0.0.1:${proxies[i]!.port}/${name}`, { batch_size: 100 }).catch((error: unknown) => {
          errors++
          log(`  PouchDB sync failed (another round follows): ${String(error)}`)
        }),
      ),
    )
    if ((await count(dbs[0]!)) === total && (await count(dbs[1]!)) === total) {
      converged = true
      break
    }
  }
  const ms = performance.now() - t0
  const run: CatchupRun = {
    system: 'pouchdb',
    link: link.label,
    movements: total,
    ms,
    up: proxies.reduce((s, p) => s + p.up, 0),
    down: proxies.reduce((s, p) => s + p.down, 0),
    converged,
    recordCpuMsPerMovement,
    note: `${rounds} sync rounds${errors ? `, ${errors} failed` : ''}`,
  }
  await Promise.all(proxies.map((p) => p.close()))
  await Promise.all(dbs.map((db) => db.destroy()))
  return run
}
