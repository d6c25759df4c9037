/** Shared by the relay tests: a deployment, enrolled devices, a relay on a temp folder, raw upgrades. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pino from 'pino'
import WebSocket from 'ws'
import { generateKeyPair, proveKey, signCredential, type KeyPair } from '../../src/network/credential.ts'
import { CHALLENGE_PATH, relayHttpUrl, syncUrl, type ChallengeResponse } from '../../src/network/authProtocol.ts'
import type { CredentialClaims, DeploymentPublic } from '../../src/schema/credential.ts'
import { DurableFsStorageAdapter } from '../../src/node/storage/DurableFsStorageAdapter.ts'
import { startRelay, type Relay, type RelayOptions } from '../../src/relay/server.ts'
import { peerIdOfClaims } from '../../src/relay/auth.ts'

export interface TestDeployment {
  deployment: DeploymentPublic
  key: KeyPair
  revoked: Set<string>
  device(site: string, device: string, options?: { role?: CredentialClaims['role']; expiresAt?: number; issuedAt?: number; signWith?: string; serves?: string[] }): TestDevice
}

export interface TestDevice {
  claims: CredentialClaims
  credential: string
  keys: KeyPair
  peerId: string
}

export function testDeployment(): TestDeployment {
  const key = generateKeyPair()
  const deployment: DeploymentPublic = { id: 'dep-0123456789abcdef', name: 'test', publicKey: key.publicKey }
  return {
    deployment,
    key,
    revoked: new Set(),
    device(site, device, options = {}) {
      const keys = generateKeyPair()
      const claims: CredentialClaims = {
        v: 1,
        deployment: deployment.id,
        device,
        site,
        role: options.role ?? 'device',
        publicKey: keys.publicKey,
        issuedAt: options.issuedAt ?? Date.now() - 1000,
        expiresAt: options.expiresAt ?? Date.now() + 86_400_000,
        ...(options.serves ? { serves: options.serves } : {}),
      } as CredentialClaims
      return { claims, credential: signCredential(claims, options.signWith ?? key.privateKey), keys, peerId: peerIdOfClaims(claims) }
    },
  }
}

export const quietLogger = () => pino({ level: process.env.STOCKMESH_TEST_LOG ?? 'silent' })

/** A relay on a fresh temp folder with DurableFsStorageAdapter; `cleanup` closes it and removes the folder. */
export async function testRelay(dep: TestDeployment, options: Partial<RelayOptions> = {}): Promise<{ relay: Relay; dir: string; cleanup: () => Promise<void> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'stockmesh-relay-'))
  const relay = await startRelay({ storage: new DurableFsStorageAdapter(dir), deployment: dep.deployment, isRevoked: (d) => dep.revoked.has(d), port: 0, logger: quietLogger(), ...options })
  return {
    relay,
    dir,
    cleanup: async () => {
      await relay.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export async function challenge(relayUrl: string): Promise<string> {
  const response = await fetch(relayHttpUrl(relayUrl, CHALLENGE_PATH))
  return ((await response.json()) as ChallengeResponse).challenge
}

/** `socket` when accepted (101), `body` when refused. */
export interface UpgradeResult {
  status: number
  socket?: WebSocket
  body?: { error: string; reason: string }
}

/** Opens a raw upgrade with the given parameters; resolves with the socket or the refusal. */
export function upgrade(relayUrl: string, params: { peer: string; credential: string; challenge: string; proof: string }): Promise<UpgradeResult> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(syncUrl(relayUrl, params))
    socket.on('open', () => resolve({ status: 101, socket }))
    socket.on('unexpected-response', (_req, res) => {
      let text = ''
      res.on('data', (c: Buffer) => (text += c.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }))
    })
    socket.on('error', (error) => reject(error))
  })
}

/** A proper upgrade for `device` (fresh challenge, its own key), with optional overrides. */
export async function upgradeAs(relayUrl: string, device: TestDevice, overrides: Partial<{ peer: string; credential: string; challenge: string; proof: string; key: string }> = {}): Promise<UpgradeResult> {
  const peer = overrides.peer ?? device.peerId
  const nonce = overrides.challenge ?? (await challenge(relayUrl))
  const proof = overrides.proof ?? proveKey(nonce, peer, overrides.key ?? device.keys.privateKey)
  return upgrade(relayUrl, { peer, credential: overrides.credential ?? device.credential, challenge: nonce, proof })
}

export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
