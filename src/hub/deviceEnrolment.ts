/**
 * A device's enrolment, kept in its data folder after the first start with `--enrol FILE`:
 *
 * ```
 * DIR/enrolment.json   { deployment, credential, relay?, revocations }   (mode 0600)
 * DIR/device-key.pem   the device's Ed25519 private key, PKCS#8 PEM        (mode 0600)
 * ```
 *
 * The node identity (site, device, index URL) stays where it always was, in the node's storage;
 * the relay client reads `SiteNode.enrolment` for its credential, key and relay URL.
 */
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { z } from 'zod'
import { publicKeyOf, verifyCredential, verifyRevocations } from '../network/credential.ts'
import { Compact, CredentialClaims, DeploymentPublic, EnrolmentFile } from '../schema/credential.ts'
import { readJsonFile, writeFileDurably, writeJsonDurably } from './durableFile.ts'

export const DEVICE_FILES = { enrolment: 'enrolment.json', key: 'device-key.pem' } as const

const StoredEnrolment = z.strictObject({
  deployment: DeploymentPublic,
  credential: Compact,
  relay: EnrolmentFile.shape.relay,
  revocations: Compact,
})

/** What a site node knows of its enrolment: enough to connect to its relay and prove who it is. */
export interface DeviceEnrolment {
  deployment: DeploymentPublic
  /** The signed credential (compact form) and what it says. */
  credential: string
  claims: CredentialClaims
  /** The device's private key, PKCS#8 PEM. */
  privateKey: string
  relay?: string
  /** The latest signed revocation list this device holds (compact form). */
  revocations: string
}

/** Writes the enrolment into `dataDir` (both files 0600). The key first: the JSON file marks it complete. */
export async function saveDeviceEnrolment(dataDir: string, enrolment: EnrolmentFile): Promise<void> {
  await writeFileDurably(path.join(dataDir, DEVICE_FILES.key), enrolment.privateKey, { mode: 0o600 })
  const stored: z.infer<typeof StoredEnrolment> = {
    deployment: enrolment.deployment,
    credential: enrolment.credential,
    ...(enrolment.relay ? { relay: enrolment.relay } : {}),
    revocations: enrolment.revocations,
  }
  await writeJsonDurably(path.join(dataDir, DEVICE_FILES.enrolment), stored, { mode: 0o600 })
}

/**
 * The enrolment kept in `dataDir`, or undefined when the folder was provisioned without one
 * (`--site`). The credential's signature is checked, not its expiry (an expired device still opens
 * its own data; the relay refuses it and says why).
 */
export async function loadDeviceEnrolment(dataDir: string): Promise<DeviceEnrolment | undefined> {
  const file = path.join(dataDir, DEVICE_FILES.enrolment)
  const damaged = (why: string) => new Error(`${file} is damaged (${why}); restore the folder from a backup or enrol the device again`)
  const read = await readJsonFile(file, StoredEnrolment)
  if (read.state === 'missing') return undefined
  if (read.state === 'damaged') throw damaged(read.why)
  const stored = read.value
  // Any time inside the credential's validity: the signature and deployment are what is checked here.
  const opened = verifyCredential(stored.credential, stored.deployment, 0)
  const claims = opened.ok ? opened.claims : opened.reason === 'not-yet-valid' ? decodeClaims(stored.credential) : undefined
  if (!claims) throw damaged(opened.ok ? 'credential' : opened.message)
  const privateKey = await fsp.readFile(path.join(dataDir, DEVICE_FILES.key), 'utf8').catch(() => {
    throw damaged(`${DEVICE_FILES.key} is missing`)
  })
  let publicKey: string | undefined
  try {
    publicKey = publicKeyOf(privateKey)
  } catch {
    publicKey = undefined
  }
  if (publicKey !== claims.publicKey) throw damaged(`${DEVICE_FILES.key} is not the key the credential names`)
  return { deployment: stored.deployment, credential: stored.credential, claims, privateKey, ...(stored.relay ? { relay: stored.relay } : {}), revocations: stored.revocations }
}

/** The claims of a credential whose signature verified (only called after `verifyCredential` said not-yet-valid). */
function decodeClaims(token: string): CredentialClaims | undefined {
  const parsed = CredentialClaims.safeParse(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8')))
  return parsed.success ? parsed.data : undefined
}

/**
 * Keeps `token` as the device's revocation list when it is signed by the deployment and newer (a
 * higher seq) than the one kept; returns its seq when it was kept, undefined otherwise.
 */
export async function keepNewerRevocations(dataDir: string, enrolment: DeviceEnrolment, token: string): Promise<number | undefined> {
  const offered = verifyRevocations(token, enrolment.deployment)
  const held = verifyRevocations(enrolment.revocations, enrolment.deployment)
  if (!offered.ok || (held.ok && offered.claims.seq <= held.claims.seq)) return undefined
  const stored: z.infer<typeof StoredEnrolment> = {
    deployment: enrolment.deployment,
    credential: enrolment.credential,
    ...(enrolment.relay ? { relay: enrolment.relay } : {}),
    revocations: token,
  }
  await writeJsonDurably(path.join(dataDir, DEVICE_FILES.enrolment), stored, { mode: 0o600 })
  enrolment.revocations = token
  return offered.claims.seq
}
