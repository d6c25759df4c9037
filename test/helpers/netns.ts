/**
 * A LAN of several hosts on one machine for tests (../shared/ENVIRONMENT.md): one network
 * namespace per host, each with `eth0` (10.77.0.<i>/24) plugged into a bridge that lives in a
 * namespace of its own, and the multicast route mDNS needs. Nothing is added to the machine's own
 * namespace. Everything is deleted when the test ends. Needs root (CAP_NET_ADMIN), as .ci/run has.
 */
import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import { onTestFinished } from 'vitest'
import { startSiteProcess, type SiteProcess } from './siteProcess.ts'

const run = promisify(execFile)
let made = 0

export interface Lan {
  /** The namespaces of the hosts, in order. */
  hosts: string[]
  /** The address of host `i` (0-based). */
  address(i: number): string
  /** Runs a JSON request against a site's API inside host `i`'s namespace (it listens on its loopback). */
  api(i: number, url: string, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>
  /** Plugs host `i` into LAN segment `segment` (a bridge of its own): a vehicle driving to another site. */
  attach(i: number, segment: number): void
  /**
   * `stockmesh site --data DIR [--enrol FILE]` on host `i`, its LAN port and multicast DNS on the
   * host's address, its API on the host's loopback (reach it with `api`). The caller stops it.
   */
  site(i: number, dataDir: string, enrolment?: string, timeoutMs?: number): Promise<SiteProcess>
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] })
}

/**
 * `segments[i]`: the LAN segment (bridge) host `i` starts on; all on one LAN by default.
 * `onCleanup`: registers the removal of the namespaces (default: when the current test ends).
 * `segmentCount`: how many segments there are (default: enough for `segments`).
 */
export function makeLan(count: number, segments: number[] = [], onCleanup: (cleanup: () => void) => void = onTestFinished, segmentCount = Math.max(0, ...segments) + 1): Lan {
  const tag = `sm${process.pid % 100000}x${made++}`
  const bridge = `${tag}br`
  const hosts = Array.from({ length: count }, (_, i) => `${tag}h${i}`)
  const cleanup = () => {
    for (const ns of [...hosts, bridge]) {
      try {
        ip(['netns', 'del', ns])
      } catch {
        // not made, or gone
      }
    }
  }
  onCleanup(cleanup)
  try {
    ip(['netns', 'add', bridge])
    for (let b = 0; b < Math.max(segmentCount, Math.max(0, ...segments) + 1); b++) {
      ip(['-n', bridge, 'link', 'add', `br${b}`, 'type', 'bridge'])
      ip(['-n', bridge, 'link', 'set', `br${b}`, 'up'])
    }
    hosts.forEach((ns, i) => {
      ip(['netns', 'add', ns])
      // Made inside the host's namespace, its peer end moved to the bridge's: the machine's own namespace is never touched.
      ip(['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', bridge])
      ip(['-n', bridge, 'link', 'set', `p${i}`, 'master', `br${segments[i] ?? 0}`])
      ip(['-n', bridge, 'link', 'set', `p${i}`, 'up'])
      ip(['-n', ns, 'addr', 'add', `10.77.0.${i + 1}/24`, 'dev', 'eth0'])
      ip(['-n', ns, 'link', 'set', 'lo', 'up'])
      ip(['-n', ns, 'link', 'set', 'eth0', 'up'])
      ip(['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0'])
    })
  } catch (error) {
    cleanup()
    const detail = (error as { stderr?: Buffer }).stderr?.toString() ?? String(error)
    throw new Error(`cannot make network namespaces (the LAN tests need root: CAP_NET_ADMIN): ${detail}`)
  }
  return {
    hosts,
    address: (i) => `10.77.0.${i + 1}`,
    attach(i, segment) {
      ip(['-n', bridge, 'link', 'set', `p${i}`, 'master', `br${segment}`])
    },
    site(i, dataDir, enrolment, timeoutMs = 30_000) {
      const address = `10.77.0.${i + 1}`
      return startSiteProcess(['site', '--data', dataDir, ...(enrolment ? ['--enrol', enrolment] : []), '--port', '0', '--log-level', 'warn', '--lan-host', address, '--mdns-interface', address], timeoutMs, ['ip', 'netns', 'exec', hosts[i]!])
    },
    async api(i, url, method, path, body, headers = {}) {
      const all = { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers }
      // node:http, not fetch: fetch will not send the headers of an upgrade.
      const script = `import http from 'node:http'; const req = http.request(${JSON.stringify(url + path)}, { method: ${JSON.stringify(method)}, headers: ${JSON.stringify(all)} }, (r) => { let t = ''; r.setEncoding('utf8'); r.on('data', (c) => (t += c)); r.on('end', () => { let b = t; try { b = JSON.parse(t) } catch {}; console.log(JSON.stringify({ status: r.statusCode, body: b })) }) }); req.on('upgrade', (r) => { console.log(JSON.stringify({ status: r.statusCode, body: null })); process.exit(0) }); req.end(${body === undefined ? '' : JSON.stringify(JSON.stringify(body))})`
      const { stdout } = await run('ip', ['netns', 'exec', hosts[i]!, process.execPath, '--input-type=module', '-e', script], { timeout: 15_000 })
      return JSON.parse(stdout) as { status: number; body: any }
    },
  }
}
