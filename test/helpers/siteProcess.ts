/**
 * Runs `stockmesh site` as a real child process (the same command a user runs) and waits for its
 * "ready at <url>" line. Used where a test must kill the node for real.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'

const BIN = path.resolve(import.meta.dirname, '../../bin/stockmesh.mjs')

export interface SiteProcess {
  child: ChildProcess
  url: string
  /** Everything the process wrote, for failure messages. */
  output(): string
  kill(signal?: NodeJS.Signals): Promise<number | null>
}

/** `wrap`: a command the site runs under (e.g. `ip netns exec NS`: a host of a test LAN). */
export async function startSiteProcess(args: string[], timeoutMs = 20_000, wrap: string[] = []): Promise<SiteProcess> {
  // Tests bind only to loopback or to namespaces they made: an enrolled site's LAN mesh (on all
  // addresses, multicast DNS) is off unless the test places it (--lan-host).
  const lan = args[0] === 'site' && !args.includes('--lan-host') && !args.includes('--no-lan') ? ['--no-lan'] : []
  const [command, ...rest] = [...wrap, process.execPath, BIN, ...args, ...lan]
  const child = spawn(command!, rest, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`site did not start within ${timeoutMs} ms:\n${out}`)), timeoutMs)
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      const m = /ready at (http:\/\/\S+?)\/?\s/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()))
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`site exited with ${code} before it was ready:\n${out}`))
    })
  })
  return {
    child,
    url,
    output: () => out,
    kill: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}

export interface RelayProcess {
  url: string
  kill(signal: NodeJS.Signals): Promise<unknown>
  output(): string
}

/**
 * `stockmesh <args>` for a command that serves a websocket (relay, carrier) and prints "ready at
 * ws://…"; `wrap`: a command it runs under (`ip netns exec NS`). Stopped after the test.
 */
export async function serverProcess(args: string[], wrap: string[] = []): Promise<RelayProcess> {
  const [command, ...rest] = [...wrap, process.execPath, BIN, ...args]
  const child = spawn(command!, rest, { stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const kill = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    await exited
  }
  let out = ''
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not start:\n${out}`)), 20_000)
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const m = /ready at (ws:\/\/\S+)/.exec(out)
      if (m) (clearTimeout(timer), resolve(m[1]!))
    })
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()))
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`relay exited with ${code}:\n${out}`))))
  })
  return { url, kill, output: () => out }
}

