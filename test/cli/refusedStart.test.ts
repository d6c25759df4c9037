/**
 * One process per data folder, and a start that is refused changes nothing in the folder: a
 * folder in use, a port in use, a non-loopback host without a token. Real processes throughout.
 */
import { createServer, type Server } from 'node:net'
import type { AddressInfo } from 'node:net'
import { mkdirSync, realpathSync } from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { api } from '../helpers/api.ts'
import { startSiteProcess, type SiteProcess } from '../helpers/siteProcess.ts'
import { tempDir } from '../helpers/tempDir.ts'
import { folderListing, runCli } from './cliHelpers.ts'

/** The folder lock writes nothing only on Linux (macOS keeps a socket file in the folder). */
const linux = process.platform === 'linux'

const sites: SiteProcess[] = []
const servers: Server[] = []
afterEach(async () => {
  for (const site of sites.splice(0)) await site.kill('SIGKILL')
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve))
})

async function start(args: string[]): Promise<SiteProcess> {
  const site = await startSiteProcess([...args, '--log-level', 'warn'])
  sites.push(site)
  return site
}

/** A folder provisioned as the demo site (its catalog has AMOX-500), no process running on it. */
async function demoFolder(): Promise<string> {
  const dir = tempDir()
  const demo = await start(['demo', '--data', dir, '--port', '0'])
  expect(await demo.kill('SIGTERM')).toBe(0)
  return dir
}

/** A port something else listens on. */
async function takenPort(): Promise<number> {
  const server = createServer()
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

describe('stockmesh site refuses a start that cannot go ahead, and changes nothing', () => {
  it('a second site on the same folder exits 1 naming the folder and the first pid; the folder is untouched and the first keeps working', async () => {
    const dir = await demoFolder()
    const first = await start(['site', '--data', dir, '--port', '0'])
    // Let the first settle (background loading) so that the listing compares only the refused start.
    expect((await api(first.url, 'GET', '/api/health')).status).toBe(200)
    await new Promise((resolve) => setTimeout(resolve, 500))
    const before = folderListing(dir)

    // Another spelling of the same folder, as a second terminal might type it.
    const second = await runCli(['site', '--data', path.relative(process.cwd(), dir), '--port', '0'])
    expect(second.status).toBe(1)
    expect(second.stderr).toContain(`stockmesh: data folder ${realpathSync(dir)} is in use by process ${first.child.pid} (stockmesh site, since `)
    expect(second.stderr).toContain(`${first.url}/`)
    expect(second.stdout).not.toMatch(/ready at/)
    expect(folderListing(dir)).toEqual(before)

    const posted = await api(first.url, 'POST', '/api/movements', { id: 'rcv-1', kind: 'receipt', sku: 'AMOX-500', quantity: 5, user: 'amina' })
    expect(posted.status).toBe(201)
  })

  it('the folder is free again once the first site is killed', async () => {
    const dir = await demoFolder()
    const first = await start(['site', '--data', dir, '--port', '0'])
    await first.kill('SIGKILL')
    const again = await start(['site', '--data', dir, '--port', '0'])
    expect((await api(again.url, 'GET', '/api/health')).body.site).toBe('demo-store')
  })

  it.skipIf(!linux)('--host 0.0.0.0 without a token: exit 1, a fresh folder is not created and an empty one stays empty', async () => {
    const parent = tempDir()
    const fresh = path.join(parent, 'fresh')
    const empty = path.join(parent, 'empty')
    mkdirSync(empty)
    for (const dir of [fresh, empty]) {
      const res = await runCli(['site', '--data', dir, '--site', 'store-1', '--host', '0.0.0.0', '--port', '0'])
      expect(res.status).toBe(1)
      expect(res.stderr).toMatch(/^stockmesh: refusing to listen on 0\.0\.0\.0 without an API token/)
    }
    expect(folderListing(fresh)).toBeNull()
    expect(folderListing(empty)?.length).toBe(1) // the folder itself, nothing in it
  })

  it.skipIf(!linux)('a port in use: exit 1 naming the port; a fresh folder is not created, an existing one is unchanged', async () => {
    const port = await takenPort()
    const fresh = path.join(tempDir(), 'fresh')
    const res = await runCli(['site', '--data', fresh, '--site', 'store-1', '--port', String(port)])
    expect(res.status).toBe(1)
    expect(res.stderr).toMatch(new RegExp(`^stockmesh: .*port ${port}\\b.*in use`))
    expect(folderListing(fresh)).toBeNull()

    const existing = await demoFolder()
    const before = folderListing(existing)
    const again = await runCli(['site', '--data', existing, '--port', String(port)])
    expect(again.status).toBe(1)
    expect(again.stderr).toMatch(new RegExp(`port ${port}\\b`))
    expect(folderListing(existing)).toEqual(before)
  })
})
