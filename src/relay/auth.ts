/**
 * Authentication of a sync upgrade: single-use challenges and the checks of
 * src/network/authProtocol.ts (credential signed by the deployment and valid now, not revoked, proof
 * of the credential's key over a challenge this relay issued, peer id bound to the credential).
 */
import { newChallenge, verifyCredential, verifyProof } from '../network/credential.ts'
import type { CredentialClaims, DeploymentPublic } from '../schema/credential.ts'
import { peerIdOfCredential, type RefusalCode, type SyncParams } from '../network/authProtocol.ts'

/** Challenges issued and not yet used: single use, short-lived, bounded in number. */
export class ChallengeStore {
  readonly #issued = new Map<string, number>() // challenge → expires at (insertion order = age)
  constructor(
    readonly ttlMs = 30_000,
    readonly max = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new challenge, or undefined when `max` unexpired challenges are outstanding (a flood). */
  issue(): { challenge: string; expiresInMs: number } | undefined {
    this.#sweep()
    if (this.#issued.size >= this.max) return undefined
    const challenge = newChallenge()
    this.#issued.set(challenge, this.now() + this.ttlMs)
    return { challenge, expiresInMs: this.ttlMs }
  }

  /** True (and the challenge is used up) when it was issued here, unused and unexpired. */
  consume(challenge: string): boolean {
    const expires = this.#issued.get(challenge)
    if (expires === undefined) return false
    this.#issued.delete(challenge)
    return this.now() < expires
  }

  get size(): number {
    return this.#issued.size
  }

  #sweep(): void {
    const now = this.now()
    for (const [challenge, expires] of this.#issued) {
      if (expires > now) break // later entries expire later (same ttl, insertion order)
      this.#issued.delete(challenge)
    }
  }
}

/** The peer id a credential's holder must use: `site|carrier|relay/<site>/<device>`. */
export const peerIdOfClaims: (claims: CredentialClaims) => string = peerIdOfCredential

export type AuthResult = { ok: true; claims: CredentialClaims; peerId: string } | { ok: false; code: RefusalCode; reason: string; device?: string }

export interface AuthOptions {
  deployment: DeploymentPublic
  isRevoked: (device: string) => boolean
  challenges: ChallengeStore
  now?: () => number
  /**
   * Whether a credential may use a peer id (default: exactly {@link peerIdOfClaims}). Only the
   * acceptance suite, whose peer names are fixed, replaces it.
   */
  bindsPeer?: (claims: CredentialClaims, peer: string) => boolean
  /** Checks the proof instead of the relay's `stockmesh-auth` one (a LAN peer's, src/peer-sync/lanProtocol.ts). */
  checkProof?: (params: SyncParams, claims: CredentialClaims) => boolean
}

/** Checks a sync upgrade's parameters. The challenge is consumed whenever the credential checks out. */
export function authenticate(params: SyncParams, options: AuthOptions): AuthResult {
  const now = (options.now ?? Date.now)()
  if (!params.credential) return { ok: false, code: 'missing-credential', reason: 'no credential was given: enrol the device with an enrolment file from the hub' }
  const verified = verifyCredential(params.credential, options.deployment, now)
  if (!verified.ok) {
    const reason = verified.reason === 'malformed' || verified.reason === 'bad-signature' ? `${verified.message}: enrol the device again` : verified.message
    return { ok: false, code: verified.reason, reason }
  }
  const claims = verified.claims
  const device = claims.device
  // Whatever follows, this challenge has been shown once: it cannot be tried again.
  const fresh = params.challenge !== '' && options.challenges.consume(params.challenge)
  if (options.isRevoked(device)) return { ok: false, code: 'revoked', reason: `device ${device} has been revoked by the deployment: ask for a new enrolment`, device }
  const expected = peerIdOfClaims(claims)
  if (!(options.bindsPeer ? options.bindsPeer(claims, params.peer) : params.peer === expected)) return { ok: false, code: 'wrong-peer-id', reason: `the credential of device ${device} is for peer ${expected}, not ${JSON.stringify(params.peer.slice(0, 200))}`, device }
  if (!fresh) return { ok: false, code: 'unknown-challenge', reason: 'the challenge is unknown, used or expired: ask for a new one', device }
  if (!(options.checkProof ? options.checkProof(params, claims) : verifyProof(params.proof, params.challenge, params.peer, claims.publicKey))) {
    return { ok: false, code: 'bad-proof', reason: `the proof is not signed by the key of device ${device}'s credential`, device }
  }
  return { ok: true, claims, peerId: params.peer }
}
