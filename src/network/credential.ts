/**
 * Signing and checking with Ed25519 (node:crypto): deployment-signed credentials and revocation
 * lists in a compact `<payload>.<signature>` form, and the proof a device gives that it holds the
 * key its credential names (a signature over a single-use challenge, so nothing replayable travels).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto'
import type { z } from 'zod'
import { Compact, CredentialClaims, type DeploymentPublic, RevocationClaims } from '../schema/credential.ts'

/** An Ed25519 key pair: the public key as raw base64url, the private key as PKCS#8 PEM. */
export interface KeyPair {
  publicKey: string
  privateKey: string
}

const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** A new Ed25519 key pair. */
export function generateKeyPair(): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  return { publicKey: rawPublicKey(publicKey), privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }
}

function rawPublicKey(key: KeyObject): string {
  return (key.export({ type: 'spki', format: 'der' }) as Buffer).subarray(SPKI_ED25519_PREFIX.length).toString('base64url')
}

function publicKeyObject(raw: string): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, Buffer.from(raw, 'base64url')]), format: 'der', type: 'spki' })
}

/** The public key (raw base64url) of a PKCS#8 PEM private key. */
export function publicKeyOf(privateKeyPem: string): string {
  return rawPublicKey(createPublicKey(createPrivateKey(privateKeyPem)))
}

function signCompact(payload: unknown, privateKeyPem: string): string {
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url')
  const signature = sign(null, Buffer.from(body), createPrivateKey(privateKeyPem)).toString('base64url')
  return `${body}.${signature}`
}

/** Why a signed token was refused, in words a device can show. */
export type Refusal = { ok: false; reason: 'malformed' | 'bad-signature' | 'wrong-deployment' | 'expired' | 'not-yet-valid' | 'revoked'; message: string }

function openCompact<T>(token: unknown, schema: z.ZodType<T>, publicKey: string, what: string): { ok: true; claims: T } | Refusal {
  const compact = Compact.safeParse(token)
  if (!compact.success) return { ok: false, reason: 'malformed', message: `the ${what} is not a signed token` }
  const [body, signature] = compact.data.split('.') as [string, string]
  let valid = false
  try {
    valid = verify(null, Buffer.from(body), publicKeyObject(publicKey), Buffer.from(signature, 'base64url'))
  } catch {
    valid = false
  }
  if (!valid) return { ok: false, reason: 'bad-signature', message: `the ${what} is not signed by this deployment` }
  let raw: unknown
  try {
    raw = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'))
  } catch {
    return { ok: false, reason: 'malformed', message: `the ${what} is not readable` }
  }
  const parsed = schema.safeParse(raw)
  if (!parsed.success) return { ok: false, reason: 'malformed', message: `the ${what} is not valid: ${parsed.error.issues[0]?.message}` }
  return { ok: true, claims: parsed.data }
}

/** Signs a device credential with the deployment's private key. */
export function signCredential(claims: CredentialClaims, deploymentPrivateKeyPem: string): string {
  return signCompact(CredentialClaims.parse(claims), deploymentPrivateKeyPem)
}

/**
 * Checks a credential from outside: signed by `deployment`, for it, valid at `now` (unix ms).
 * Revocation is checked by the caller against the list it holds (`isRevoked`).
 */
export function verifyCredential(token: unknown, deployment: DeploymentPublic, now: number): { ok: true; claims: CredentialClaims } | Refusal {
  const opened = openCompact(token, CredentialClaims, deployment.publicKey, 'credential')
  if (!opened.ok) return opened
  const claims = opened.claims
  if (claims.deployment !== deployment.id) return { ok: false, reason: 'wrong-deployment', message: `the credential is for deployment ${claims.deployment}, not ${deployment.id}` }
  if (now >= claims.expiresAt) return { ok: false, reason: 'expired', message: `the credential of device ${claims.device} expired on ${new Date(claims.expiresAt).toISOString()}: enrol the device again` }
  if (now + 5 * 60_000 < claims.issuedAt) return { ok: false, reason: 'not-yet-valid', message: `the credential of device ${claims.device} is issued in the future (${new Date(claims.issuedAt).toISOString()}): check this machine's clock` }
  return { ok: true, claims }
}

/** Signs a revocation list with the deployment's private key. */
export function signRevocations(claims: RevocationClaims, deploymentPrivateKeyPem: string): string {
  return signCompact(RevocationClaims.parse(claims), deploymentPrivateKeyPem)
}

/** Checks a revocation list from outside: signed by `deployment` and for it. */
export function verifyRevocations(token: unknown, deployment: DeploymentPublic): { ok: true; claims: RevocationClaims } | Refusal {
  const opened = openCompact(token, RevocationClaims, deployment.publicKey, 'revocation list')
  if (!opened.ok) return opened
  if (opened.claims.deployment !== deployment.id) return { ok: false, reason: 'wrong-deployment', message: `the revocation list is for deployment ${opened.claims.deployment}, not ${deployment.id}` }
  return opened
}

/** A fresh single-use challenge (32 random bytes, base64url). */
export function newChallenge(): string {
  return randomBytes(32).toString('base64url')
}

const proofMessage = (challenge: string, peerId: string) => Buffer.from(`stockmesh-auth:v1:${challenge}:${peerId}`)

/** The device's proof that it holds its key: a signature over the challenge and the peer id it claims. */
export function proveKey(challenge: string, peerId: string, devicePrivateKeyPem: string): string {
  return sign(null, proofMessage(challenge, peerId), createPrivateKey(devicePrivateKeyPem)).toString('base64url')
}

/**
 * A signature over a statement of its own kind (`tag`: what it proves, e.g. `stockmesh-lan-client:v1`)
 * and its parts. Each kind has its own tag, so a signature made for one purpose (a LAN peer's
 * answer) is never valid for another (a relay's challenge): nothing signed in one place can be
 * replayed in another.
 */
export function signStatement(tag: string, parts: readonly string[], privateKeyPem: string): string {
  return sign(null, Buffer.from([tag, ...parts].join('\n')), createPrivateKey(privateKeyPem)).toString('base64url')
}

/** Checks a {@link signStatement} signature against a verified credential's public key. */
export function verifyStatement(signature: unknown, tag: string, parts: readonly string[], publicKey: string): boolean {
  if (typeof signature !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(signature)) return false
  if (parts.some((p) => p.includes('\n'))) return false
  try {
    return verify(null, Buffer.from([tag, ...parts].join('\n')), publicKeyObject(publicKey), Buffer.from(signature, 'base64url'))
  } catch {
    return false
  }
}

/** Checks a proof against the public key a verified credential names. */
export function verifyProof(proof: unknown, challenge: string, peerId: string, publicKey: string): boolean {
  if (typeof proof !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(proof)) return false
  try {
    return verify(null, proofMessage(challenge, peerId), publicKeyObject(publicKey), Buffer.from(proof, 'base64url'))
  } catch {
    return false
  }
}
