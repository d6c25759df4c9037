import { describe, expect, it } from 'vitest'
import { generateKeyPair, newChallenge, proveKey, publicKeyOf, signCredential, signRevocations, verifyCredential, verifyProof, verifyRevocations } from '../../src/network/credential.ts'
import type { CredentialClaims, DeploymentPublic } from '../../src/schema/credential.ts'

const hub = generateKeyPair()
const deployment: DeploymentPublic = { id: 'dep-0123456789abcdef', name: 'Kisumu district', publicKey: hub.publicKey }
const device = generateKeyPair()
const NOW = Date.parse('2026-11-29T10:00:00Z')
const claims = (over: Partial<CredentialClaims> = {}): CredentialClaims => ({
  v: 1,
  deployment: deployment.id,
  device: 'tab-1' as CredentialClaims['device'],
  site: 'store-1' as CredentialClaims['site'],
  role: 'device',
  publicKey: device.publicKey,
  issuedAt: NOW - 1000,
  expiresAt: NOW + 90 * 86_400_000,
  ...over,
})

describe('credentials', () => {
  it('verifies a credential the deployment signed', () => {
    expect(verifyCredential(signCredential(claims(), hub.privateKey), deployment, NOW)).toEqual({ ok: true, claims: claims() })
    expect(publicKeyOf(device.privateKey)).toBe(device.publicKey)
  })

  it.each([
    ['expired', () => signCredential(claims({ expiresAt: NOW - 1 }), hub.privateKey), deployment, 'expired'],
    ['issued in the future', () => signCredential(claims({ issuedAt: NOW + 3_600_000 }), hub.privateKey), deployment, 'not-yet-valid'],
    ['signed by another key', () => signCredential(claims(), generateKeyPair().privateKey), deployment, 'bad-signature'],
    ['for another deployment', () => signCredential(claims({ deployment: 'dep-ffffffffffffffff' }), hub.privateKey), deployment, 'wrong-deployment'],
    ['not a token', () => 'hello', deployment, 'malformed'],
    ['not a string', () => 42 as unknown as string, deployment, 'malformed'],
  ])('refuses a credential %s, saying why', (_, make, dep, reason) => {
    const result = verifyCredential(make(), dep, NOW)
    expect(result).toMatchObject({ ok: false, reason })
    expect((result as { message: string }).message.length).toBeGreaterThan(10)
  })

  it('refuses a credential whose claims were changed after signing', () => {
    const [body, signature] = signCredential(claims(), hub.privateKey).split('.')
    const forged = JSON.parse(Buffer.from(body!, 'base64url').toString())
    forged.site = 'store-2'
    expect(verifyCredential(`${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${signature}`, deployment, NOW)).toMatchObject({ ok: false, reason: 'bad-signature' })
  })
})

describe('proof of key', () => {
  it('holds only for the challenge, the peer id and the key it was made with', () => {
    const challenge = newChallenge()
    const proof = proveKey(challenge, 'site/store-1/tab-1', device.privateKey)
    expect(verifyProof(proof, challenge, 'site/store-1/tab-1', device.publicKey)).toBe(true)
    expect(verifyProof(proof, newChallenge(), 'site/store-1/tab-1', device.publicKey)).toBe(false)
    expect(verifyProof(proof, challenge, 'site/store-1/tab-2', device.publicKey)).toBe(false)
    expect(verifyProof(proof, challenge, 'site/store-1/tab-1', generateKeyPair().publicKey)).toBe(false)
    expect(verifyProof('x'.repeat(86), challenge, 'site/store-1/tab-1', device.publicKey)).toBe(false)
    expect(verifyProof(undefined, challenge, 'site/store-1/tab-1', device.publicKey)).toBe(false)
  })
})

describe('revocation lists', () => {
  it('verifies a list the deployment signed and refuses one it did not', () => {
    const list = { v: 1 as const, deployment: deployment.id, seq: 3, issuedAt: NOW, devices: ['tab-9' as CredentialClaims['device']] }
    expect(verifyRevocations(signRevocations(list, hub.privateKey), deployment)).toEqual({ ok: true, claims: list })
    expect(verifyRevocations(signRevocations(list, generateKeyPair().privateKey), deployment)).toMatchObject({ ok: false, reason: 'bad-signature' })
  })
})
