/**
 * Child process of the relay benchmark: the hub relay (`runRelay`, src/relay/run.ts: what
 * `stockmesh relay --data HUB` runs) on HUB, on a free loopback port, alone in its process so that
 * its memory and CPU can be read. Prints `{"url":…}` once serving; answers IPC messages:
 *   {cmd:'mem'}   → memory after two forced GCs, documents loaded, peers connected, CPU so far
 *   {cmd:'stop'}  → stops the relay (flush, shutdown, lock released) and exits
 * Usage: node --expose-gc --import tsx bench/relayServer.ts HUB [SOURCE_ROOT]
 * SOURCE_ROOT (default: this checkout) is where src/relay/run.ts is loaded from: another copy of the
 * source (with node_modules linked) measures another version of the relay against the same clients.
 */
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import pino from 'pino'
import type { runRelay as RunRelay } from '../src/relay/run.ts'

const hub = process.argv[2]!
const root = process.argv[3] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const { runRelay } = (await import(pathToFileURL(path.join(root, 'src', 'relay', 'run.ts')).href)) as { runRelay: typeof RunRelay }
const running = await runRelay({ dir: hub, port: 0, host: '127.0.0.1', logger: pino({ level: 'error' }) })
const relay = running.relay
const cpu0 = process.cpuUsage()

process.on('message', (msg: { cmd: string; id: number }) => {
  if (msg.cmd === 'mem') {
    const g = (globalThis as { gc?: () => void }).gc
    g?.()
    g?.()
    const m = process.memoryUsage()
    const handles = Object.values(relay.repo.handles)
    const cpu = process.cpuUsage(cpu0)
    process.send!({ id: msg.id, rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, handles: handles.length, ready: handles.filter((h) => h.isReady()).length, peers: Object.keys(relay.adapter.sockets).length, cpuMs: (cpu.user + cpu.system) / 1000, unhandled, firstUnhandled })
  } else if (msg.cmd === 'stop') {
    void running.stop().finally(() => {
      process.send!({ id: msg.id, stopped: true })
      setTimeout(() => process.exit(0), 50)
    })
  }
})
// The benchmark went away: do not outlive it.
process.on('disconnect', () => void running.stop().finally(() => process.exit(0)))
// As `stockmesh relay` does (src/cli.ts): an unhandled rejection is logged, not fatal. Counted here.
let unhandled = 0
let firstUnhandled: string | undefined
process.on('unhandledRejection', (reason) => {
  unhandled++
  firstUnhandled ??= String((reason as Error)?.stack ?? reason).split('\n').slice(0, 3).join(' | ')
  if (unhandled <= 3) process.stderr.write(`relay child: unhandled rejection (logged, as the CLI does): ${String(reason)}\n`)
})
process.on('uncaughtException', (error) => {
  process.stderr.write(`relay child: uncaught ${String(error?.stack ?? error)}\n`)
  process.exit(70)
})
process.stdout.write(JSON.stringify({ url: relay.url }) + '\n')
