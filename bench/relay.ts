/**
 * The relay benchmark (`npm run bench -- --only=relay`): a real deployment (bench/relayDeploy.ts),
 * the hub relay alone in a child process (bench/relayServer.ts), and
 *   1. many devices (`sites` × `perSite`, each its own credential and websocket) in a few child
 *      processes (bench/relayClients.ts) plus two real SiteNodes of one more site (the measured
 *      pair) in this process: connections held, movements through the relay under load stages,
 *      latency device → relay → other device of the same site, the relay's memory and CPU;
 *   2. two devices of one site catching up after a week apart, unthrottled and over 64 kbit/s, and
 *      PouchDB doing the same through express-pouchdb (bench/relayCatchup.ts).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import { readEnrolmentFile } from '../src/hub/enrol.ts'
import { recordMovements } from '../src/node/ledger.ts'
import { SiteNode } from '../src/node/siteNode.ts'
import { makeDeployment, siteName, type Device } from './relayDeploy.ts'
import { pouchCatchup, startPouchServer, stockmeshCatchup, type CatchupRun, type LinkSpec } from './relayCatchup.ts'
import { Movements, log, percentile } from './workload.ts'
import { mkdtempSync } from 'node:fs'
import os from 'node:os'

const here = path.dirname(fileURLToPath(import.meta.url))

export interface RelayMem {
  rss: number
  heapUsed: number
  external: number
  arrayBuffers: number
  handles: number
  ready: number
  peers: number
  cpuMs: number
  /** Unhandled rejections in the relay so far (logged, as the CLI does), and the first. */
  unhandled?: number
  firstUnhandled?: string
}

export interface RelayStage {
  /** Each load device records one movement every this many ms. */
  perDeviceEveryMs: number
  durationMs: number
  offeredPerS: number
  sent: number
  failed: number
  /** Arrivals at the other devices of the sender's site, during the stage and after it drained. */
  arrivalsInStage: number
  arrivals: number
  expected: number
  /** Time after the stage ended until every movement had arrived (or the wait gave up). */
  drainMs: number
  /** Movements per second carried to every sibling during the stage window. */
  deliveredPerS: number
  load: { p50: number; p99: number; max: number; n: number }
  pair: { p50: number; p99: number; max: number; n: number; missing: number }
  relayCpuPct: number
  relayRss: number
}

export interface RelayResult {
  sites: number
  perSite: number
  devices: number
  clientProcesses: number
  setupS: number
  connect: { connected: number; ms: number; pairConnected: boolean }
  probe: { sent: number; arrivals: number; expected: number; ms: number }
  stages: RelayStage[]
  mem: { start: RelayMem; connected: RelayMem; afterLoad: RelayMem; disconnected: RelayMem }
  clientMem: Array<{ rss: number; heapUsed: number }>
  catchup: CatchupRun[]
  catchupPerSide: number
  links: LinkSpec[]
  /** The relay's source tree when not this checkout. */
  relaySrc?: string
}

export interface RelayOptions {
  sites: number
  perSite: number
  clientProcesses: number
  /** ms between one device's movements in each load stage. */
  stages: number[]
  stageMs: number
  perSide: number
  pouch: boolean
  /** Another source tree to run the relay from (default: this checkout); see bench/relayServer.ts. */
  relaySrc?: string
}

let nextId = 0
function ask<T>(child: ChildProcess, msg: object, timeoutMs = 600_000): Promise<T> {
  const id = ++nextId
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child did not answer ${JSON.stringify(msg).slice(0, 80)}`)), timeoutMs)
    const on = (m: { id?: number; error?: string }) => {
      if (m.id !== id) return
      child.off('message', on)
      clearTimeout(timer)
      if (m.error) reject(new Error(m.error))
      else resolve(m as T)
    }
    child.on('message', on)
    child.send({ ...msg, id })
  })
}

const stats = (v: number[]) => ({ p50: percentile(v, 50), p99: percentile(v, 99), max: v.length ? Math.max(...v) : NaN, n: v.length })
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function startRelayChild(hub: string, src?: string): Promise<{ child: ChildProcess; url: string; port: number }> {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(here, 'relayServer.ts'), hub, ...(src ? [src] : [])], { cwd: path.dirname(here), stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  let err = ''
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString()
    process.stderr.write(`[relay child] ${d.toString()}`)
  })
  child.once('exit', (code, signal) => log(`relay child exited (${code ?? signal})`))
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /"url":"([^"]+)"/.exec(out)
      if (m) resolve(m[1]!)
    })
    child.once('exit', (code) => reject(new Error(`relay child exited ${code}: ${err}`)))
  })
  return { child, url, port: Number(new URL(url.replace('ws:', 'http:')).port) }
}

export async function relayBench(o: RelayOptions): Promise<RelayResult> {
  // As the site and relay commands do (src/cli.ts): automerge-repo's own timeouts can reject with
  // nobody listening (withTimeout in find); log them instead of dying with the measured SiteNodes.
  process.on('unhandledRejection', (reason) => log(`unhandled rejection in the bench process (SiteNodes): ${String(reason)}`))
  const pairSite = 'site-pair'
  const weekSite = 'site-week'
  log(`relay: deployment of ${o.sites} sites × ${o.perSite} devices (+ 2 measured, + 2 for the catch-up)`)
  const dep = await makeDeployment(o.sites, o.perSite, 'ws://127.0.0.1:9', [
    { site: pairSite, device: 'pair-a' },
    { site: pairSite, device: 'pair-b' },
    { site: weekSite, device: 'week-a' },
    { site: weekSite, device: 'week-b' },
  ])
  log(`relay: deployment made in ${dep.setupS.toFixed(0)} s`)
  const byName = new Map(dep.devices.map((d) => [d.device, d]))
  const relay = await startRelayChild(dep.hub, o.relaySrc)
  log(`relay: serving at ${relay.url}`)
  const mem = (): Promise<RelayMem> => ask<RelayMem>(relay.child, { cmd: 'mem' })
  const memStart = await mem()

  // Load devices: whole sites per child process.
  const load = dep.devices.filter((d) => d.site.startsWith('site-') && /^site-\d+$/.test(d.site))
  const groups: Device[][] = Array.from({ length: o.clientProcesses }, () => [])
  for (let s = 0; s < o.sites; s++) groups[s % o.clientProcesses]!.push(...load.filter((d) => d.site === siteName(s)))
  const clients = groups.map(() => fork(path.join(here, 'relayClients.ts'), [], { execArgv: ['--import', 'tsx'], cwd: path.dirname(here), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
  await Promise.all(clients.map((c) => new Promise((r) => c.once('message', r))))
  await Promise.all(clients.map((c, i) => ask(c, { cmd: 'init', devices: groups[i], url: relay.url })))

  // The measured pair: two real SiteNodes of one site, provisioned from their enrolment files.
  const pairDirs = [0, 1].map(() => mkdtempSync(path.join(os.tmpdir(), 'stockmesh-pair-')))
  const pair: SiteNode[] = []
  for (const [i, name] of ['pair-a', 'pair-b'].entries()) {
    const { enrolment } = await readEnrolmentFile(byName.get(name)!.file)
    pair.push(await SiteNode.open({ dataDir: pairDirs[i]!, enrolment, logger: pino({ level: 'silent' }) }))
  }
  const pairSent = new Map<string, number>()
  let pairLat: number[] = []
  pair[1]!.events.on('movements', ({ postings }) => {
    for (const p of postings) {
      const t = pairSent.get(p.id)
      if (t !== undefined) {
        pairLat.push(performance.now() - t)
        pairSent.delete(p.id)
      }
    }
  })
  for (const node of pair) node.connectRelay(relay.url)

  log(`relay: connecting ${load.length} devices from ${clients.length} processes at once`)
  const connects = await Promise.all(clients.map((c) => ask<{ connected: number; ms: number }>(c, { cmd: 'connect' })))
  const connect = { connected: connects.reduce((s, c) => s + c.connected, 0), ms: Math.max(...connects.map((c) => c.ms)), pairConnected: pair.every((n) => n.relay?.remotePeerId !== undefined) }
  log(`relay: ${connect.connected}/${load.length} connected in ${(connect.ms / 1000).toFixed(1)} s; pair connected: ${connect.pairConnected}`)

  type Stats = { sent: number; failed: number; firstError?: string; arrivals: number; latencies: number[]; connected: number }
  const allStats = async (reset = false) => {
    const s = await Promise.all(clients.map((c) => ask<Stats>(c, { cmd: 'stats', reset })))
    return { firstError: s.find((x) => x.firstError)?.firstError, sent: s.reduce((n, x) => n + x.sent, 0), failed: s.reduce((n, x) => n + x.failed, 0), arrivals: s.reduce((n, x) => n + x.arrivals, 0), latencies: s.flatMap((x) => x.latencies), connected: s.reduce((n, x) => n + x.connected, 0) }
  }
  const settle = async (timeoutMs: number) => {
    const t0 = performance.now()
    for (;;) {
      const s = await allStats()
      if (s.arrivals >= s.sent * (o.perSite - 1) || performance.now() - t0 > timeoutMs) return { ...s, ms: performance.now() - t0 }
      await sleep(200)
    }
  }

  // Every device records one movement: it must reach every other device of its site.
  await allStats(true)
  log(`relay: probe — one movement from every device`)
  const tProbe = performance.now()
  await Promise.all(clients.map((c) => ask(c, { cmd: 'record', perDeviceEveryMs: 2000, durationMs: 2000 })))
  const probeDone = await settle(60_000)
  const probe = { sent: probeDone.sent, arrivals: probeDone.arrivals, expected: probeDone.sent * (o.perSite - 1), ms: performance.now() - tProbe }
  log(`relay: probe ${probe.arrivals}/${probe.expected} arrivals in ${(probe.ms / 1000).toFixed(1)} s`)
  await sleep(3000)
  const memConnected = await mem()

  const pairGen = new Movements(99, 'pair')
  const stages: RelayStage[] = []
  for (const every of o.stages) {
    await allStats(true)
    pairLat = []
    pairSent.clear()
    const offered = (load.length * 1000) / every
    log(`relay: stage — each device a movement every ${every} ms (${offered.toFixed(0)} movements/s offered) for ${o.stageMs / 1000} s`)
    const m0 = await mem()
    const t0 = performance.now()
    let pairRunning = true
    const pairLoop = (async () => {
      while (pairRunning) {
        const input = pairGen.next(Date.now())
        pairSent.set(String(input.id), performance.now())
        await recordMovements(pair[0]!, [input]).catch((error: unknown) => {
          pairSent.delete(String(input.id))
          log(`  the measured pair refused a movement: ${String(error)}`)
        })
        await sleep(1000)
      }
    })()
    await Promise.all(clients.map((c) => ask(c, { cmd: 'record', perDeviceEveryMs: every, durationMs: o.stageMs })))
    const window = performance.now() - t0
    const inStage = await allStats()
    if (inStage.failed) log(`  ${inStage.failed} movements refused at load devices, e.g. ${inStage.firstError}`)
    const m1 = await mem()
    pairRunning = false
    await pairLoop
    const drained = await settle(60_000)
    const pairDrainEnd = performance.now() + 10_000
    while (pairSent.size > 0 && performance.now() < pairDrainEnd) await sleep(100)
    stages.push({
      perDeviceEveryMs: every,
      durationMs: window,
      offeredPerS: offered,
      sent: drained.sent,
      failed: drained.failed,
      arrivalsInStage: inStage.arrivals,
      arrivals: drained.arrivals,
      expected: drained.sent * (o.perSite - 1),
      drainMs: drained.ms,
      deliveredPerS: inStage.arrivals / (o.perSite - 1) / (window / 1000),
      load: stats(drained.latencies),
      pair: { ...stats(pairLat), missing: pairSent.size },
      relayCpuPct: ((m1.cpuMs - m0.cpuMs) / (window + 0)) * 100,
      relayRss: m1.rss,
    })
    const st = stages.at(-1)!
    log(`  sent ${st.sent}, delivered ${st.deliveredPerS.toFixed(1)}/s in the window, drained in ${(st.drainMs / 1000).toFixed(1)} s; load p50/p99 ${st.load.p50.toFixed(0)}/${st.load.p99.toFixed(0)} ms; pair p50/p99 ${st.pair.p50.toFixed(0)}/${st.pair.p99.toFixed(0)} ms (n=${st.pair.n}, missing ${st.pair.missing}); relay CPU ${st.relayCpuPct.toFixed(0)}%`)
  }
  await sleep(3000)
  const memAfterLoad = await mem()
  const clientMem = await Promise.all(clients.map((c) => ask<{ rss: number; heapUsed: number }>(c, { cmd: 'mem' })))
  log(`relay: every device disconnects`)
  await Promise.all(clients.map((c) => ask(c, { cmd: 'disconnect' })))
  for (const node of pair) node.relay?.disconnect()
  for (const c of clients) c.kill('SIGTERM')
  for (const node of pair) await node.close()
  for (const d of pairDirs) rmSync(d, { recursive: true, force: true })
  await sleep(3000)
  const memDisconnected = await mem()

  // Part 2: a week apart.
  const links: LinkSpec[] = [
    { label: 'loopback', bytesPerSecond: Infinity, oneWayMs: 0 },
    { label: '64kbit', bytesPerSecond: 8000, oneWayMs: 50 },
  ]
  const catchup: CatchupRun[] = []
  const weekFiles: [string, string][] = []
  // One site per link (each must start a week apart from the relay's point of view too).
  for (const [i] of links.entries()) {
    const a = `week${i}-a`
    const b = `week${i}-b`
    const { enrolDevice } = await import('../src/hub/enrol.ts')
    for (const device of [a, b]) {
      await enrolDevice(dep.hub, { site: `${weekSite}-${i}`, device, out: path.join(dep.root, 'enrol', `${device}.json`), relay: relay.url, logger: pino({ level: 'silent' }) })
    }
    weekFiles.push([path.join(dep.root, 'enrol', `${a}.json`), path.join(dep.root, 'enrol', `${b}.json`)])
  }
  // The relay re-reads the register every 5 s: wait for it to know the new sites.
  await sleep(6000)
  for (const [i, link] of links.entries()) {
    log(`relay: catch-up after a week apart, ${link.label}`)
    const run = await stockmeshCatchup(relay.port, weekFiles[i]!, o.perSide, link)
    log(`  stockmesh ${link.label}: ${(run.ms / 1000).toFixed(1)} s, ${((run.up + run.down) / run.movements).toFixed(1)} B/movement, converged ${run.converged}`)
    catchup.push(run)
  }
  await ask(relay.child, { cmd: 'stop' }).catch(() => undefined)
  relay.child.kill('SIGTERM')
  if (o.pouch) {
    const server = await startPouchServer()
    try {
      for (const link of links) {
        log(`relay: PouchDB catch-up, ${link.label}`)
        const run = await pouchCatchup(server.port, o.perSide, link)
        log(`  pouchdb ${link.label}: ${(run.ms / 1000).toFixed(1)} s, ${((run.up + run.down) / run.movements).toFixed(1)} B/movement, converged ${run.converged}`)
        catchup.push(run)
      }
    } finally {
      await server.stop()
    }
  }
  rmSync(dep.root, { recursive: true, force: true })
  return {
    sites: o.sites,
    perSite: o.perSite,
    devices: load.length,
    clientProcesses: o.clientProcesses,
    setupS: dep.setupS,
    connect,
    probe,
    stages,
    mem: { start: memStart, connected: memConnected, afterLoad: memAfterLoad, disconnected: memDisconnected },
    clientMem,
    catchup,
    catchupPerSide: o.perSide,
    links,
    ...(o.relaySrc ? { relaySrc: o.relaySrc } : {}),
  }
}
