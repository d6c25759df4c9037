/**
 * The hub folder: a deployment's home, made by `stockmesh deployment init --data HUB`, and the hub
 * relay's data folder. Layout:
 *
 * ```
 * HUB/deployment.json      { deployment: DeploymentPublic, catalog: <automerge url>, createdAt: ISO }
 *                          written last by `init`: a folder without it is not a hub
 * HUB/deployment-key.pem   the deployment's Ed25519 private key (PKCS#8 PEM), mode 0600; it signs
 *                          credentials and revocation lists and never leaves this folder
 * HUB/register.json        { sites:   { [site]:   { index, ledger, directory, enrolledAt } },
 *                            devices: { [device]: { site, role, publicKey, issuedAt, expiresAt, revokedAt? } },
 *                            revocations: { seq, token } }   (the latest signed revocation list)
 * HUB/automerge/           the hub Repo's storage (DurableFsStorageAdapter): the deployment catalog,
 *                          and the index and ledger of every site enrolled (made by the hub, once)
 * ```
 *
 * Times in register.json are unix ms (as in the credential claims); `enrolledAt`, `createdAt` and
 * `revokedAt` are ISO strings. The JSON files are written crash-safely (src/hub/durableFile.ts).
 *
 * Two locks (src/node/dataFolderLock.ts):
 * - the folder's lock: held by `deployment init`, `catalog import` (it changes the catalog, which a
 *   running relay holds in memory) and the relay, for as long as they run (`openHub` takes it);
 * - the register's lock (`lockHubRegister`): held by `enrol` and `revoke`, the only writers of
 *   register.json, one at a time. They run while the relay serves the folder: `revoke` writes the
 *   register only, and `enrol` adds a new site's documents to HUB/automerge as new documents
 *   (nobody else has them open yet) before it names them in the register. The relay re-reads the
 *   register when it changes.
 */
import { existsSync, promises as fsp } from 'node:fs'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { Repo, type AutomergeUrl, type NetworkAdapterInterface, type RepoConfig } from '@automerge/automerge-repo'
import type { Logger } from 'pino'
import { z } from 'zod'
import { createCatalog } from '../docs/catalog.ts'
import { generateKeyPair, publicKeyOf, signRevocations, verifyRevocations } from '../network/credential.ts'
import type { CatalogDoc } from '../schema/catalog.ts'
import { DeploymentPublic, DeviceRole, type DeploymentId, PublicKey, type RevocationClaims, Compact } from '../schema/credential.ts'
import { DeviceId, SiteId } from '../schema/ids.ts'
import { DataFolderLockedError, describeHolder, lockDataFolder, type DataFolderLock } from '../node/dataFolderLock.ts'
import { DurableFsStorageAdapter } from '../node/storage/DurableFsStorageAdapter.ts'
import { readJsonFile, writeFileDurably, writeJsonDurably, type JsonFileRead } from './durableFile.ts'

export const HUB_FILES = {
  deployment: 'deployment.json',
  key: 'deployment-key.pem',
  register: 'register.json',
  automerge: 'automerge',
} as const

const AutomergeUrlString = z.string().regex(/^automerge:[1-9A-HJ-NP-Za-km-z]+$/, { error: 'must be an automerge URL' })
const IsoTime = z.iso.datetime()
const UnixMs = z.number().int().positive()

/** HUB/deployment.json */
export const HubDeploymentFile = z.strictObject({
  deployment: DeploymentPublic,
  /** The deployment's one catalog, read by every enrolled site. */
  catalog: AutomergeUrlString,
  createdAt: IsoTime,
})
export type HubDeploymentFile = z.infer<typeof HubDeploymentFile>

export const RegisteredSite = z.strictObject({
  index: AutomergeUrlString,
  ledger: AutomergeUrlString,
  /** The site's directory, written by relays (absent for a site registered before directories). */
  directory: AutomergeUrlString.optional(),
  enrolledAt: IsoTime,
})
export type RegisteredSite = z.infer<typeof RegisteredSite>

export const RegisteredDevice = z.strictObject({
  site: SiteId,
  role: DeviceRole,
  publicKey: PublicKey,
  issuedAt: UnixMs,
  expiresAt: UnixMs,
  revokedAt: IsoTime.optional(),
})
export type RegisteredDevice = z.infer<typeof RegisteredDevice>

/** HUB/register.json */
export const HubRegister = z.strictObject({
  sites: z.record(SiteId, RegisteredSite),
  devices: z.record(DeviceId, RegisteredDevice),
  /** The latest revocation list the hub signed (seq 0, no devices, at init). */
  revocations: z.strictObject({ seq: z.number().int().nonnegative(), token: Compact }),
})
export type HubRegister = z.infer<typeof HubRegister>

/** The latest signed revocation list, checked against the deployment's key. */
export interface SignedRevocations {
  claims: RevocationClaims
  token: string
}

/** An open hub folder (see the module comment for its layout). */
export interface Hub {
  /** The folder, resolved. */
  readonly dir: string
  readonly deployment: DeploymentPublic
  /** The deployment's catalog document. */
  readonly catalogUrl: AutomergeUrl
  readonly createdAt: string
  /** The hub Repo's storage: HUB/automerge. */
  readonly storage: DurableFsStorageAdapter
  /** The hub Repo on `storage` (network adapters as given to `openHub`). */
  readonly repo: Repo
  /** The lock of the folder, held until `close()`. */
  readonly lock: DataFolderLock
  /** The register as it is on disk now (re-read on every call). */
  register(): Promise<HubRegister>
  /** The latest signed revocation list, verified against the deployment key. */
  revocations(): Promise<SignedRevocations>
  /** Flushes the Repo, shuts it down and releases the lock (if `openHub` took it). */
  close(): Promise<void>
}

export interface OpenHubOptions {
  logger: Logger
  /**
   * The folder's lock, when the caller holds it already; otherwise `openHub` takes it. `enrol`
   * passes the register's lock instead (it only adds new documents: see the module comment).
   */
  lock?: DataFolderLock
  /** Named in the lock (what a refused process prints). */
  command?: string
  /** Network adapters of the hub Repo (the relay's). */
  network?: NetworkAdapterInterface[]
  /** More Repo options (sharePolicy, shareConfig, peerId, …); storage and network are the hub's. */
  repo?: Omit<RepoConfig, 'storage' | 'network'>
}

/** True when `dir` holds a deployment (its deployment.json exists). */
export function isHubFolder(dir: string): boolean {
  return existsSync(path.join(dir, HUB_FILES.deployment))
}

/** True when `dir` is a site node's data folder (provisioned or partly provisioned). */
export function isSiteFolder(dir: string): boolean {
  return existsSync(path.join(dir, HUB_FILES.automerge, 'st', 'ockmesh-identity')) || existsSync(path.join(dir, 'enrolment.json'))
}

async function readJson<T>(file: string, schema: z.ZodType<T>, what: string): Promise<T> {
  let read: JsonFileRead<T>
  try {
    read = await readJsonFile(file, schema)
  } catch (error) {
    throw new Error(`cannot read ${what} ${file}: ${(error as Error).message}`, { cause: error })
  }
  if (read.state === 'missing') throw new Error(`cannot read ${what} ${file}: no such file`)
  if (read.state === 'damaged') throw new Error(`${file} is damaged: ${read.why}; restore the hub folder from a backup`)
  return read.value
}

/** HUB/deployment.json, checked. Throws a clear error when `dir` is not a hub. */
export async function readHubDeployment(dir: string): Promise<HubDeploymentFile> {
  if (!isHubFolder(dir)) throw new Error(`${dir} is not a hub folder (no ${HUB_FILES.deployment}): make one with stockmesh deployment init --data ${dir}`)
  return readJson(path.join(dir, HUB_FILES.deployment), HubDeploymentFile, 'the deployment file')
}

/** HUB/register.json, checked. */
export function readHubRegister(dir: string): Promise<HubRegister> {
  return readJson(path.join(dir, HUB_FILES.register), HubRegister, 'the register')
}

/** Writes HUB/register.json crash-safely (hold the folder's lock). */
export function writeHubRegister(dir: string, register: HubRegister): Promise<void> {
  return writeJsonDurably(path.join(dir, HUB_FILES.register), HubRegister.parse(register))
}

/** The deployment's private key, checked to be the half of `deployment.publicKey`. Only for signing at the hub. */
export async function readDeploymentKey(dir: string, deployment: DeploymentPublic): Promise<string> {
  const file = path.join(dir, HUB_FILES.key)
  let pem: string
  try {
    pem = await fsp.readFile(file, 'utf8')
  } catch (error) {
    throw new Error(`cannot read the deployment key ${file}: ${(error as Error).message}`, { cause: error })
  }
  let publicKey: string
  try {
    publicKey = publicKeyOf(pem)
  } catch {
    throw new Error(`${file} is damaged: not an Ed25519 private key; restore the hub folder from a backup`)
  }
  if (publicKey !== deployment.publicKey) throw new Error(`${file} is not the key of deployment ${deployment.id}; restore the hub folder from a backup`)
  return pem
}

/** Takes the folder's lock with a message that says what to do when it is held. */
export async function lockHubFolder(dir: string, command: string): Promise<DataFolderLock> {
  return lockDataFolder(dir, { command }).catch((error: unknown) => {
    if (!(error instanceof DataFolderLockedError)) throw error
    throw new Error(`hub folder ${error.dir} is in use by ${describeHolder(error.holder)}: stop it first`, { cause: error })
  })
}

/** How long `lockHubRegister` waits for another enrol or revoke to finish. */
const REGISTER_WAIT_MS = 15_000

/**
 * Takes the register's lock (see the module comment), waiting up to 15 s for another `enrol` or
 * `revoke` to finish. A lock on `HUB/.register-lock`, a name that is never created on Linux and
 * Windows (a socket file inside it on other unixes).
 */
export async function lockHubRegister(dir: string, command: string): Promise<DataFolderLock> {
  const deadline = Date.now() + REGISTER_WAIT_MS
  for (;;) {
    try {
      return await lockDataFolder(path.join(dir, '.register-lock'), { command })
    } catch (error) {
      if (!(error instanceof DataFolderLockedError)) throw error
      if (Date.now() >= deadline) throw new Error(`the register of hub ${dir} is in use by ${describeHolder(error.holder)}: try again once it has finished`, { cause: error })
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 100))
    }
  }
}

/** A new deployment id: `dep-` and 16 hex digits. */
export function newDeploymentId(): DeploymentId {
  return `dep-${randomBytes(8).toString('hex')}` as DeploymentId
}

export interface InitHubOptions {
  name?: string
  logger: Logger
  /** Clock, unix ms. */
  now?: () => number
}

/**
 * `stockmesh deployment init`: makes `dir` a hub (see the module comment). Refuses a folder that
 * holds a deployment or a site, or one in use. deployment.json is written last: a crash before it
 * leaves a folder `init` can be run on again.
 */
export async function initHub(dir: string, options: InitHubOptions): Promise<HubDeploymentFile> {
  const now = options.now ?? Date.now
  const name = options.name ?? path.basename(path.resolve(dir))
  const named = DeploymentPublic.shape.name.safeParse(name)
  if (!named.success) throw new Error(`the deployment name (--name) must be 1 to 200 characters`)
  const lock = await lockHubFolder(dir, 'stockmesh deployment init')
  try {
    if (isHubFolder(dir)) throw new Error(`${dir} holds a deployment already (${HUB_FILES.deployment}); a hub folder is made once`)
    if (isSiteFolder(dir)) throw new Error(`${dir} is a site's data folder: make the hub in a folder of its own`)
    await fsp.mkdir(dir, { recursive: true })
    await lock.holdIdentity()
    const keys = generateKeyPair()
    const deployment: DeploymentPublic = { id: newDeploymentId(), name: named.data, publicKey: keys.publicKey }
    const storage = new DurableFsStorageAdapter(path.join(dir, HUB_FILES.automerge))
    const repo = new Repo({ storage, network: [], sharePolicy: async () => false })
    let catalogUrl: AutomergeUrl
    try {
      const catalog = repo.create<CatalogDoc>()
      catalog.change((d) => createCatalog(d))
      catalogUrl = catalog.url
      await repo.flush([catalog.documentId])
    } finally {
      await repo.shutdown().catch(() => undefined)
    }
    await writeFileDurably(path.join(dir, HUB_FILES.key), keys.privateKey, { mode: 0o600 })
    const issuedAt = now()
    const token = signRevocations({ v: 1, deployment: deployment.id, seq: 0, issuedAt, devices: [] }, keys.privateKey)
    await writeHubRegister(dir, { sites: {}, devices: {}, revocations: { seq: 0, token } })
    const file: HubDeploymentFile = { deployment, catalog: catalogUrl, createdAt: new Date(issuedAt).toISOString() }
    await writeJsonDurably(path.join(dir, HUB_FILES.deployment), HubDeploymentFile.parse(file))
    options.logger.info({ deployment: deployment.id, dir }, 'deployment created')
    return file
  } finally {
    await lock.release()
  }
}

/** Verifies the register's revocation list against the deployment key. */
export function checkedRevocations(register: HubRegister, deployment: DeploymentPublic, dir: string): SignedRevocations {
  const opened = verifyRevocations(register.revocations.token, deployment)
  if (!opened.ok) throw new Error(`${path.join(dir, HUB_FILES.register)}: the revocation list is refused: ${opened.message}`)
  if (opened.claims.seq !== register.revocations.seq) throw new Error(`${path.join(dir, HUB_FILES.register)}: the revocation list's seq does not match the register`)
  return { claims: opened.claims, token: register.revocations.token }
}

/**
 * Opens the hub folder `dir` (the relay, enrolment, revocation, catalog import): checks it is a hub,
 * holds its lock (given, or taken here and released by `close`), and starts a Repo on HUB/automerge
 * with the network adapters given.
 */
export async function openHub(dir: string, options: OpenHubOptions): Promise<Hub> {
  const resolved = path.resolve(dir)
  if (!isHubFolder(resolved)) await readHubDeployment(resolved) // throws the clear "not a hub" error
  const ownLock = options.lock ? undefined : await lockHubFolder(resolved, options.command ?? 'stockmesh hub')
  const lock = options.lock ?? ownLock!
  try {
    const file = await readHubDeployment(resolved)
    checkedRevocations(await readHubRegister(resolved), file.deployment, resolved)
    const storage = new DurableFsStorageAdapter(path.join(resolved, HUB_FILES.automerge))
    const repo = new Repo({ sharePolicy: async () => false, ...options.repo, storage, network: options.network ?? [] })
    let closed: Promise<void> | undefined
    return {
      dir: resolved,
      deployment: file.deployment,
      catalogUrl: file.catalog as AutomergeUrl,
      createdAt: file.createdAt,
      storage,
      repo,
      lock,
      register: () => readHubRegister(resolved),
      revocations: async () => checkedRevocations(await readHubRegister(resolved), file.deployment, resolved),
      close: () =>
        (closed ??= (async () => {
          try {
            const ready = Object.values(repo.handles).filter((h) => h.isReady()).map((h) => h.documentId)
            await repo.flush(ready)
            await repo.shutdown().catch(() => undefined)
          } finally {
            await ownLock?.release()
          }
        })()),
    }
  } catch (error) {
    await ownLock?.release()
    throw error
  }
}
