/**
 * Deployments, device credentials, enrolment files and revocation lists: the shapes, checked with
 * zod wherever they come from outside (a file, a URL, a peer). The cryptography is in
 * src/network/credential.ts.
 */
import { z } from 'zod'
import { DeviceId, SiteId } from './ids.ts'

/** A deployment id: `dep-` and 16 hex digits. */
export const DeploymentId = z.string().regex(/^dep-[0-9a-f]{16}$/, { error: 'must be a deployment id (dep- and 16 hex digits)' })
export type DeploymentId = z.infer<typeof DeploymentId>

/** An Ed25519 public key, raw 32 bytes in base64url. */
export const PublicKey = z.string().regex(/^[A-Za-z0-9_-]{43}$/, { error: 'must be an Ed25519 public key (43 base64url characters)' })

/** What a device knows of its deployment: enough to check credentials and lists offline. */
export const DeploymentPublic = z.strictObject({
  id: DeploymentId,
  name: z.string().min(1).max(200),
  /** The deployment's signing key (its private half never leaves the hub). */
  publicKey: PublicKey,
})
export type DeploymentPublic = z.infer<typeof DeploymentPublic>

export const DEVICE_ROLES = ['device', 'carrier', 'relay'] as const
export const DeviceRole = z.enum(DEVICE_ROLES, { error: 'must be device, carrier or relay' })
export type DeviceRole = z.infer<typeof DeviceRole>

/** What a credential says, signed by the deployment. */
export const CredentialClaims = z.strictObject({
  v: z.literal(1),
  deployment: DeploymentId,
  device: DeviceId,
  site: SiteId,
  role: DeviceRole,
  /** The device's own public key: the device proves it holds the private half. */
  publicKey: PublicKey,
  /** unix ms */
  issuedAt: z.number().int().positive(),
  expiresAt: z.number().int().positive(),
  /**
   * A relay's: the sites whose documents it carries to its upstream (a site gateway serves its own
   * site, a district relay the sites of its district). Absent: its own site only.
   */
  serves: z.array(SiteId).min(1).max(10_000).optional(),
})
export type CredentialClaims = z.infer<typeof CredentialClaims>

/** A signed revocation list: devices refused from then on, wherever the list has reached. */
export const RevocationClaims = z.strictObject({
  v: z.literal(1),
  deployment: DeploymentId,
  /** Increases with every list the hub signs: a node keeps the highest it has seen. */
  seq: z.number().int().nonnegative(),
  issuedAt: z.number().int().positive(),
  devices: z.array(DeviceId).max(100_000),
})
export type RevocationClaims = z.infer<typeof RevocationClaims>

/** `<base64url JSON>.<base64url signature>` */
export const Compact = z.string().max(64 * 1024).regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, { error: 'must be a signed token (two base64url parts joined by a dot)' })

/** An automerge document URL. */
const DocumentUrl = z.string().regex(/^automerge:[1-9A-HJ-NP-Za-km-z]+$/, { error: 'must be an automerge URL' })
/** A document's binary snapshot (Automerge.save), base64; at most 16 MB. */
const Snapshot = z.string().max(16 * 1024 * 1024).regex(/^[A-Za-z0-9+/]+={0,2}$/, { error: 'must be base64' })

/**
 * `stockmesh enrol --out FILE`: all a new device needs to join its deployment with no network at
 * hand. Holds the device's private key: written with mode 0600; anyone holding it can act as the
 * device until the device is revoked or the credential expires.
 */
export const EnrolmentFile = z.strictObject({
  kind: z.literal('stockmesh-enrolment', { error: 'is not a stockmesh enrolment file' }),
  version: z.literal(1, { error: 'is an enrolment file of another version' }),
  deployment: DeploymentPublic,
  /** The credential, signed by the deployment (CredentialClaims in compact form). */
  credential: Compact,
  /** The device's Ed25519 private key, PKCS#8 PEM. */
  privateKey: z.string().max(4096).regex(/^-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END PRIVATE KEY-----\n?$/, { error: 'must be a PKCS#8 PEM private key' }),
  /** The relay to connect to, if the hub named one. */
  relay: z.url({ protocol: /^wss?$/, error: 'must be a ws:// or wss:// URL' }).optional(),
  /** The site's documents: URLs, and snapshots so the device can start before it reaches a relay. */
  documents: z.strictObject({
    index: z.strictObject({ url: DocumentUrl, snapshot: Snapshot }),
    ledger: z.strictObject({ url: DocumentUrl, snapshot: Snapshot }),
    catalog: z.strictObject({ url: DocumentUrl, snapshot: Snapshot }),
    /** The site's directory (documents other sites share with it); from a hub that makes one. */
    directory: z.strictObject({ url: DocumentUrl, snapshot: Snapshot }).optional(),
  }),
  /** The latest signed revocation list at enrolment (RevocationClaims in compact form). */
  revocations: Compact,
})
export type EnrolmentFile = z.infer<typeof EnrolmentFile>
