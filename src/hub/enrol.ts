/**
 * `stockmesh enrol` and `stockmesh revoke`, at the hub; reading an enrolment file on the device.
 *
 * A site's documents are made once, by the hub, when the site is first enrolled (its index and
 * ledger, naming the deployment catalog, and its directory of documents other sites share with it),
 * and every enrolment file of the site carries them: two
 * devices of a new site that start offline at the same moment start from the same ledger.
 */
import { constants, promises as fsp } from 'node:fs'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { save } from '@automerge/automerge'
import type { AutomergeUrl, DocHandle } from '@automerge/automerge-repo'
import type { Logger } from 'pino'
import { createLedger } from '../docs/ledger.ts'
import { createSiteDirectory } from '../docs/siteDirectory.ts'
import { createSiteIndex } from '../docs/siteIndex.ts'
import { generateKeyPair, publicKeyOf, signCredential, signRevocations, verifyCredential, verifyRevocations } from '../network/credential.ts'
import { EnrolmentFile, DeviceRole, type CredentialClaims } from '../schema/credential.ts'
import { DeviceId, SiteId } from '../schema/ids.ts'
import type { LedgerDoc } from '../schema/ledger.ts'
import type { SiteDirectoryDoc } from '../schema/siteDirectory.ts'
import type { SiteIndexDoc } from '../schema/siteIndex.ts'
import { writeJsonDurably } from './durableFile.ts'
import { checkedRevocations, type Hub, type HubRegister, lockHubRegister, openHub, type RegisteredDevice, readDeploymentKey, readHubDeployment, readHubRegister, writeHubRegister } from './hubFolder.ts'

const DAY = 24 * 60 * 60 * 1000
const UNITS: Record<string, number> = { m: 60_000, h: 60 * 60_000, d: DAY, w: 7 * DAY }

/** `90d`, `12h`, `2w`, `30m` → ms; at most 5 years. */
export function parseDuration(text: string): number {
  const match = /^([1-9][0-9]{0,5})([mhdw])$/.exec(text.trim())
  if (!match) throw new Error(`${JSON.stringify(text)} is not a duration: give a number and a unit, e.g. 90d (m minutes, h hours, d days, w weeks)`)
  const ms = Number(match[1]) * UNITS[match[2]!]!
  if (ms > 5 * 365 * DAY) throw new Error(`${text} is too long: a credential lasts at most 5 years (1825d)`)
  return ms
}

function checked<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { message: string }[] } } }, value: unknown, what: string): T {
  const parsed = schema.safeParse(value)
  if (!parsed.success) throw new Error(`${JSON.stringify(value)} is not a valid ${what}: ${parsed.error.issues[0]?.message}`)
  return parsed.data
}

export interface EnrolOptions {
  site: string
  role?: string
  /** Validity from now, ms (default 90 days). */
  validForMs?: number
  /** ws:// or wss:// URL of the relay the device connects to. */
  relay?: string
  /** Device id; generated (`dev-` + 8 hex) if not given. */
  device?: string
  /** A relay's: the sites it carries (default its own). */
  serves?: string[]
  /** Where the enrolment file goes (mode 0600); must not exist. */
  out: string
  logger: Logger
  now?: () => number
}

export interface EnrolResult {
  file: EnrolmentFile
  device: string
  site: string
  newSite: boolean
  expiresAt: number
}

/**
 * Enrols one new device of `site` at the hub `hubDir`: registers the site on first use (the hub
 * makes its index and ledger), signs the device's credential, writes the enrolment file to `out`
 * (0600) and registers the device. Every input is checked before the folder is touched.
 */
export async function enrolDevice(hubDir: string, options: EnrolOptions): Promise<EnrolResult> {
  const now = (options.now ?? Date.now)()
  const site = checked(SiteId, options.site, 'site id (--site)')
  const role = checked(DeviceRole, options.role ?? 'device', 'role (--role)')
  const device = options.device === undefined ? DeviceId.parse(`dev-${randomBytes(4).toString('hex')}`) : checked(DeviceId, options.device, 'device id (--device)')
  const validFor = options.validForMs ?? 90 * DAY
  if (options.serves !== undefined && role !== 'relay' && role !== 'carrier') throw new Error('--serves is for a relay (--role relay) or a carrier\'s route (--role carrier): a device belongs to one site')
  const serves = options.serves === undefined ? undefined : [...new Set(options.serves.map((s) => checked(SiteId, s, 'site id (--serves)')))]
  const relay = options.relay === undefined ? undefined : checked(EnrolmentFile.shape.relay, options.relay, 'relay URL (--relay)')
  const out = path.resolve(options.out)
  const outExists = await fsp.lstat(out).then(() => true, () => false)
  if (outExists) throw new Error(`${options.out} exists already: an enrolment file is written once; give another --out`)
  const outDir = await fsp.stat(path.dirname(out)).catch(() => undefined)
  if (!outDir?.isDirectory()) throw new Error(`cannot write ${options.out}: the folder ${path.dirname(out)} does not exist`)
  await fsp.access(path.dirname(out), constants.W_OK).catch(() => {
    throw new Error(`cannot write ${options.out}: the folder ${path.dirname(out)} is not writable`)
  })
  await readHubDeployment(hubDir) // "not a hub" before taking anything

  // The register's lock, not the folder's: enrolment works while the relay serves the folder.
  const registerLock = await lockHubRegister(hubDir, 'stockmesh enrol')
  let hub: Hub | undefined
  try {
    const opened = await openHub(hubDir, { logger: options.logger, lock: registerLock })
    hub = opened
    const register = await hub.register()
    if (Object.hasOwn(register.devices, device)) throw new Error(`device ${device} is enrolled already (site ${register.devices[device]!.site}): give another --device`)
    const key = await readDeploymentKey(hub.dir, hub.deployment)
    const catalog = await hub.repo.find(hub.catalogUrl)
    let index: DocHandle<SiteIndexDoc>
    let ledger: DocHandle<LedgerDoc>
    let directory: DocHandle<SiteDirectoryDoc> | undefined
    const known = Object.hasOwn(register.sites, site) ? register.sites[site] : undefined
    if (known) {
      ;[index, ledger, directory] = await Promise.all([
        hub.repo.find<SiteIndexDoc>(known.index as AutomergeUrl),
        hub.repo.find<LedgerDoc>(known.ledger as AutomergeUrl),
        known.directory ? hub.repo.find<SiteDirectoryDoc>(known.directory as AutomergeUrl) : undefined,
      ])
    } else {
      ledger = hub.repo.create<LedgerDoc>()
      ledger.change((d) => createLedger(d, site))
      const made = hub.repo.create<SiteDirectoryDoc>()
      made.change((d) => createSiteDirectory(d, site))
      directory = made
      index = hub.repo.create<SiteIndexDoc>()
      index.change((d) => createSiteIndex(d, site, opened.catalogUrl, ledger.url, made.url))
      await hub.repo.flush([ledger.documentId, made.documentId, index.documentId])
    }
    const keys = generateKeyPair()
    const claims: CredentialClaims = {
      v: 1,
      deployment: hub.deployment.id,
      device,
      site,
      role,
      publicKey: keys.publicKey,
      issuedAt: now,
      expiresAt: now + validFor,
      ...(serves ? { serves } : {}),
    }
    const snapshot = (handle: DocHandle<unknown>) => ({ url: handle.url, snapshot: Buffer.from(save(handle.doc() as object)).toString('base64') })
    const file: EnrolmentFile = EnrolmentFile.parse({
      kind: 'stockmesh-enrolment',
      version: 1,
      deployment: hub.deployment,
      credential: signCredential(claims, key),
      privateKey: keys.privateKey,
      ...(relay ? { relay } : {}),
      documents: { index: snapshot(index), ledger: snapshot(ledger), catalog: snapshot(catalog), ...(directory ? { directory: snapshot(directory) } : {}) },
      revocations: checkedRevocations(register, hub.deployment, hub.dir).token,
    })
    // The register first: every credential the hub signed is in it (and can be revoked), even if
    // writing the file fails after.
    const enrolledAt = new Date(now).toISOString()
    await writeHubRegister(hub.dir, {
      ...register,
      sites: known ? register.sites : { ...register.sites, [site]: { index: index.url, ledger: ledger.url, ...(directory ? { directory: directory.url } : {}), enrolledAt } },
      devices: { ...register.devices, [device]: { site: claims.site, role, publicKey: keys.publicKey, issuedAt: claims.issuedAt, expiresAt: claims.expiresAt } },
    })
    await writeJsonDurably(out, file, { mode: 0o600, exclusive: true })
    options.logger.info({ device, site, role, newSite: !known }, 'device enrolled')
    return { file, device, site, newSite: !known, expiresAt: claims.expiresAt }
  } finally {
    await hub?.close()
    await registerLock.release()
  }
}

export interface RevokeResult {
  device: string
  seq: number
  devices: string[]
  already: boolean
}

/** Marks `device` revoked and signs a new revocation list (seq + 1) of every revoked device. */
export async function revokeDevice(hubDir: string, options: { device: string; logger: Logger; now?: () => number }): Promise<RevokeResult> {
  const now = (options.now ?? Date.now)()
  const device = checked(DeviceId, options.device, 'device id (--device)')
  await readHubDeployment(hubDir)
  // The register's lock only: a revocation is signed while the relay runs, which re-reads the register.
  const registerLock = await lockHubRegister(hubDir, 'stockmesh revoke')
  try {
    const dir = path.resolve(hubDir)
    const hub = { dir, deployment: (await readHubDeployment(dir)).deployment }
    const register = await readHubRegister(dir)
    const entry = Object.hasOwn(register.devices, device) ? register.devices[device] : undefined
    if (!entry) throw new Error(`device ${device} is not enrolled in deployment ${hub.deployment.id}`)
    const current = checkedRevocations(register, hub.deployment, hub.dir)
    const already = entry.revokedAt !== undefined
    const devices: HubRegister['devices'] = { ...register.devices, [device]: { ...entry, revokedAt: entry.revokedAt ?? new Date(now).toISOString() } }
    const revoked = (Object.entries(devices) as [CredentialClaims['device'], RegisteredDevice][]).filter(([, d]) => d.revokedAt !== undefined).map(([id]) => id).sort()
    const seq = current.claims.seq + 1
    const key = await readDeploymentKey(hub.dir, hub.deployment)
    const token = signRevocations({ v: 1, deployment: hub.deployment.id, seq, issuedAt: now, devices: revoked }, key)
    await writeHubRegister(hub.dir, { ...register, devices, revocations: { seq, token } })
    options.logger.info({ device, seq }, 'device revoked')
    return { device, seq, devices: revoked, already }
  } finally {
    await registerLock.release()
  }
}

/**
 * Reads and checks an enrolment file on the device: the shape (zod), the credential (signed by the
 * deployment in the file, not expired), the key (the private half of the credential's key), the
 * revocation list, and that the documents are the credential's site's. Every refusal names the
 * file and what is wrong.
 */
export async function readEnrolmentFile(file: string, now: number = Date.now()): Promise<{ enrolment: EnrolmentFile; claims: CredentialClaims }> {
  let text: string
  try {
    text = await fsp.readFile(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new Error(`cannot read the enrolment file ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : (error as Error).message}`, { cause: error })
  }
  return checkEnrolment(text, file, now)
}

/** `readEnrolmentFile` for text already read. */
export function checkEnrolment(text: string, file: string, now: number): { enrolment: EnrolmentFile; claims: CredentialClaims } {
  const bad = (why: string) => new Error(`the enrolment file ${file} is refused: ${why}; ask the hub for a new one (stockmesh enrol)`)
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    throw bad('it is not JSON (damaged or truncated)')
  }
  const parsed = EnrolmentFile.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw bad(`${issue?.path.join('.') || 'the file'}: ${issue?.message}`)
  }
  const enrolment = parsed.data
  const credential = verifyCredential(enrolment.credential, enrolment.deployment, now)
  if (!credential.ok) throw bad(credential.message)
  let publicKey: string
  try {
    publicKey = publicKeyOf(enrolment.privateKey)
  } catch {
    throw bad('privateKey: not an Ed25519 private key')
  }
  if (publicKey !== credential.claims.publicKey) throw bad("the private key is not the one the credential names")
  const revocations = verifyRevocations(enrolment.revocations, enrolment.deployment)
  if (!revocations.ok) throw bad(revocations.message)
  if (revocations.claims.devices.includes(credential.claims.device)) throw bad(`device ${credential.claims.device} is revoked`)
  return { enrolment, claims: credential.claims }
}
