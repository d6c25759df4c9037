/**
 * `stockmesh relay` as a real process on a hub folder made by `stockmesh deployment init` and
 * `stockmesh enrol`: enrolled devices of a site sync through it, another site is refused the
 * site's ledger, a device revoked while the relay runs is disconnected and refused (403), a site
 * enrolled while it runs reaches its documents, SIGTERM stops it cleanly, SIGKILL loses nothing that
 * was flushed.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Repo, type AutomergeUrl, type PeerId } from '@automerge/automerge-repo'
import { AuthenticatedWebSocketClientAdapter } from '../../src/network/AuthenticatedWebSocketClientAdapter.ts'
import { verifyCredential } from '../../src/network/credential.ts'
import { relayHttpUrl } from '../../src/network/authProtocol.ts'
import { peerIdOfClaims } from '../../src/relay/auth.ts'
import { runCli } from '../cli/cliHelpers.ts'
import { until } from './helpers.ts'

const BIN = path.resolve(import.meta.dirname, '../../bin/stockmesh.mjs')
const root = mkdtempSync(path.join(tmpdir(), 'stockmesh-relay-proc-'))
const HUB = path.join(root, 'hub')
afterAll(() => rmSync(root, { recursive: true, force: true }))

async function startRelayProcess() {
  const child = spawn(process.execPath, [BIN, 'relay', '--data', HUB, '--port', '0', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not start:\n${out}`)), 20_000)
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const m = /stockmesh relay dep-[0-9a-f]{16} ready at (ws:\/\/\S+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    })
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()))
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`relay exited with ${code}:\n${out}`))
    })
  })
  return { url, output: () => out, stop: (signal: NodeJS.Signals = 'SIGTERM') => (child.kill(signal), exited) }
}

interface Enrolment {
  credential: string
  privateKey: string
  deployment: { id: string; name: string; publicKey: string }
  documents: { index: { url: string }; ledger: { url: string }; catalog: { url: string } }
}

function device(file: string, url: string) {
  const enrolment = JSON.parse(readFileSync(file, 'utf8')) as Enrolment
  const verified = verifyCredential(enrolment.credential, enrolment.deployment as never, Date.now())
  if (!verified.ok) throw new Error(verified.message)
  const adapter = new AuthenticatedWebSocketClientAdapter({ url, credential: enrolment.credential, privateKey: enrolment.privateKey, minRetryMs: 50, maxRetryMs: 500, refusedRetryMs: 60_000 })
  const repo = new Repo({ network: [adapter], peerId: peerIdOfClaims(verified.claims) as PeerId, sharePolicy: async () => true })
  return { enrolment, adapter, repo, close: async () => (adapter.disconnect(), await repo.shutdown().catch(() => undefined)) }
}

describe('stockmesh relay (a real process)', () => {
  it('serves a hub folder: same-site sync, other sites refused, revocation, clean stop', async () => {
    expect((await runCli(['deployment', 'init', '--data', HUB, '--name', 'test'])).status).toBe(0)
    for (const [site, name] of [['A', 'a1'], ['A', 'a2'], ['B', 'b1']]) {
      const result = await runCli(['enrol', '--data', HUB, '--site', site!, '--device', name!, '--out', path.join(root, `${name}.json`)])
      expect(result.status, result.stderr).toBe(0)
    }
    let relay = await startRelayProcess()
    const a1 = device(path.join(root, 'a1.json'), relay.url)
    const a2 = device(path.join(root, 'a2.json'), relay.url)
    const b1 = device(path.join(root, 'b1.json'), relay.url)
    try {
      const ledgerUrl = a1.enrolment.documents.ledger.url as AutomergeUrl
      // A's ledger (made by the hub at enrolment) and the catalog reach A's devices from the relay.
      await until(() => a1.adapter.remotePeerId !== undefined && b1.adapter.remotePeerId !== undefined, 10_000, 'connections')
      expect((await a1.repo.find(ledgerUrl)).doc()).toBeTruthy()
      expect((await b1.repo.find(a1.enrolment.documents.catalog.url as AutomergeUrl)).doc()).toBeTruthy()
      // A journal made by a1 reaches a2 through the relay; B is refused it and A's ledger.
      const journal = a1.repo.create<{ lines: string[] }>({ lines: ['first'] })
      await until(() => a2.adapter.remotePeerId !== undefined)
      await until(async () => {
        try {
          return (await a2.repo.find<{ lines: string[] }>(journal.url)).doc().lines[0] === 'first'
        } catch {
          return false // not at the relay yet: asked again
        }
      }, 10_000, 'the journal at a2')
      await expect(b1.repo.find(ledgerUrl)).rejects.toThrow(/unavailable/)
      await expect(b1.repo.find(journal.url)).rejects.toThrow(/unavailable/)
      // A second relay (or an enrolment) on the same folder is refused while this one runs.
      const second = await runCli(['relay', '--data', HUB, '--port', '0'])
      expect(second.status).toBe(1)
      expect(second.stderr).toMatch(/stockmesh relay/)
      const metrics = await (await fetch(relayHttpUrl(relay.url, '/metrics'))).text()
      expect(metrics).toMatch(/stockmesh_relay_access_denials_total [1-9]/)
      expect(metrics).toMatch(/stockmesh_relay_connected_devices 3/)

      // Revocation while the relay runs: it re-reads the register, disconnects b1 and refuses it (403).
      const revoked = await runCli(['revoke', '--data', HUB, '--device', 'b1'])
      expect(revoked.status, revoked.stderr).toBe(0)
      await until(() => b1.adapter.lastRefusal !== undefined, 15_000, 'b1 disconnected')
      expect(b1.adapter.lastRefusal).toMatchObject({ status: 403, error: 'revoked' })
      // A new site enrolled while the relay runs reaches its ledger.
      expect((await runCli(['enrol', '--data', HUB, '--site', 'D', '--device', 'd1', '--out', path.join(root, 'd1.json')])).status).toBe(0)
      await new Promise((r) => setTimeout(r, 6_000)) // the relay re-reads the register every 5 s
      const d1 = device(path.join(root, 'd1.json'), relay.url)
      try {
        expect((await d1.repo.find(d1.enrolment.documents.ledger.url as AutomergeUrl)).doc()).toBeTruthy()
        await expect(d1.repo.find(ledgerUrl)).rejects.toThrow(/unavailable/)
      } finally {
        await d1.close()
      }

      for (const d of [a1, a2, b1]) d.adapter.disconnect()
      expect(await relay.stop('SIGTERM')).toBe(0)
      relay = await startRelayProcess()
      const b1again = device(path.join(root, 'b1.json'), relay.url)
      const a2again = device(path.join(root, 'a2.json'), relay.url)
      try {
        await until(() => b1again.adapter.lastRefusal !== undefined, 10_000, 'the refusal of b1')
        expect(b1again.adapter.lastRefusal).toMatchObject({ status: 403, error: 'revoked' })
        // After a SIGKILL, the journal a1 synced before the clean stop is still there, and still A's.
        expect(await relay.stop('SIGKILL')).toBe(null)
        relay = await startRelayProcess()
        const a2third = device(path.join(root, 'a2.json'), relay.url)
        try {
          await until(() => a2third.adapter.remotePeerId !== undefined, 10_000, 'a2 connected')
          expect((await a2third.repo.find<{ lines: string[] }>(journal.url)).doc().lines).toEqual(['first'])
        } finally {
          await a2third.close()
        }
      } finally {
        await b1again.close()
        await a2again.close()
      }
    } finally {
      for (const d of [a1, a2, b1]) await d.close()
      await relay.stop('SIGTERM')
    }
  }, 90_000)
})
