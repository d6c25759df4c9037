/**
 * `stockmesh relay --data DIR --port N --upstream ws://… --enrol FILE`: a relay chained under
 * another (site gateway → district → national). Devices connect to it as to the hub relay; it
 * carries the documents of the sites its credential serves up to its upstream and brings theirs
 * down, so a site keeps syncing with its neighbours while the link above is down.
 *
 * DIR holds:
 * ```
 * DIR/enrolment.json, DIR/device-key.pem   the relay's enrolment (src/hub/deviceEnrolment.ts), 0600
 * DIR/relay.json                            { upstream, catalog }: where it syncs to, the catalog's URL
 * DIR/automerge/                            its documents and records (DurableFsStorageAdapter)
 * ```
 * What it knows of the deployment comes from its upstream (src/network/control.ts): the sites'
 * roots and the latest revocation list (signed by the deployment, checked, the highest kept), kept
 * in its storage so it serves the same after a restart with the upstream unreachable.
 */
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { parseAutomergeUrl, type AutomergeUrl, type StorageAdapterInterface } from '@automerge/automerge-repo'
import type { Logger } from 'pino'
import { z } from 'zod'
import { loadDeviceEnrolment, saveDeviceEnrolment } from '../hub/deviceEnrolment.ts'
import { readJsonFile, writeJsonDurably } from '../hub/durableFile.ts'
import { readEnrolmentFile } from '../hub/enrol.ts'
import { peerIdOfCredential } from '../network/authProtocol.ts'
import { RegisterStatement } from '../network/control.ts'
import { verifyRevocations } from '../network/credential.ts'
import { DataFolderLockedError, describeHolder, lockDataFolder } from '../node/dataFolderLock.ts'
import { DurableFsStorageAdapter } from '../node/storage/DurableFsStorageAdapter.ts'
import type { DeploymentPublic } from '../schema/credential.ts'
import { SiteAccess } from './access.ts'
import { loadOwners, loadParties } from './owners.ts'
import { startRelay, type Relay } from './server.ts'
import { advertise } from '../peer-sync/advertise.ts'
import { LAN_PROTOCOL, lanServiceOf } from '../peer-sync/lanProtocol.ts'

const RelayFile = z.strictObject({
  upstream: z.url({ protocol: /^wss?$/, error: 'must be a ws:// or wss:// URL' }),
  catalog: z.string().regex(/^automerge:[1-9A-HJ-NP-Za-km-z]+$/),
})
const RELAY_FILE = 'relay.json'
const REGISTER_KEY = ['stockmesh-relay-register']

export interface ChainedRelayOptions {
  dir: string
  port: number
  host: string
  logger: Logger
  /** Documents idle this long leave memory (default 5 minutes; 0 never). */
  idleMs?: number
  /** The upstream relay (required at the first start, kept after; given again it replaces the kept one). */
  upstream?: string
  /** The enrolment file (role relay, or carrier with a route): required at the first start. */
  enrol?: string
  /** A carrier's LAN presence: advertised by DNS-SD for the sites of its route to find (default on); false: off. */
  lan?: false | { mdnsInterface?: string }
  /** Bearer token of the data endpoints (`GET /route`). */
  apiToken?: string
}

export interface RunningChainedRelay {
  relay: Relay
  deployment: DeploymentPublic
  upstream: string
  stop(): Promise<void>
}

export async function runChainedRelay(options: ChainedRelayOptions): Promise<RunningChainedRelay> {
  const dir = path.resolve(options.dir)
  const { logger } = options
  await fsp.mkdir(dir, { recursive: true })
  const lock = await lockDataFolder(dir, { command: 'stockmesh relay (chained)' }).catch((error: unknown) => {
    if (!(error instanceof DataFolderLockedError)) throw error
    throw new Error(`relay folder ${error.dir} is in use by ${describeHolder(error.holder)}: stop it first`, { cause: error })
  })
  try {
    let enrolment = await loadDeviceEnrolment(dir)
    let file = await readRelayFile(dir)
    if (options.enrol) {
      if (enrolment) throw new Error(`${dir} is enrolled already (device ${enrolment.claims.device}): --enrol is for the first start only`)
      const read = await readEnrolmentFile(options.enrol)
      if (read.claims.role === 'device') throw new Error(`the enrolment file ${options.enrol} is for a device, not a relay or a carrier: enrol it with --role relay or --role carrier --serves …`)
      if (read.claims.role === 'carrier' && !read.claims.serves) throw new Error(`the enrolment file ${options.enrol} is for a carrier with no route: enrol it with --serves SITE,SITE… (the sites it visits)`)
      const upstream = options.upstream ?? read.enrolment.relay
      if (!upstream) throw new Error('give the upstream relay (--upstream ws://HOST:PORT): the enrolment file names none')
      file = RelayFile.parse({ upstream, catalog: read.enrolment.documents.catalog.url })
      await saveDeviceEnrolment(dir, read.enrolment)
      await writeJsonDurably(path.join(dir, RELAY_FILE), file, { mode: 0o600 })
      enrolment = await loadDeviceEnrolment(dir)
    }
    if (!enrolment || !file) throw new Error(`${dir} is not a relay folder yet: give --enrol FILE (an enrolment made with --role relay) and --upstream at its first start`)
    if (options.upstream && options.upstream !== file.upstream) {
      file = RelayFile.parse({ ...file, upstream: options.upstream })
      await writeJsonDurably(path.join(dir, RELAY_FILE), file, { mode: 0o600 })
    }
    const { deployment, claims } = enrolment

    const storage = new DurableFsStorageAdapter(path.join(dir, 'automerge'))
    let register = await loadRegister(storage)
    let revoked = revokedBy([enrolment.revocations, register?.revocations], deployment)
    const access = new SiteAccess({ catalog: parseAutomergeUrl(file.catalog as AutomergeUrl).documentId, roots: register?.roots ?? [], owners: await loadOwners(storage), parties: await loadParties(storage) })
    let relay: Relay | undefined
    relay = await startRelay({
      storage,
      deployment,
      isRevoked: (device) => revoked.devices.has(device),
      host: options.host,
      port: options.port,
      logger,
      ...(options.idleMs !== undefined ? { idleMs: options.idleMs } : {}),
      access,
      peerId: peerIdOfCredential(claims),
      upstream: { url: file.upstream, credential: enrolment.credential, privateKey: enrolment.privateKey },
      ...(options.apiToken ? { apiToken: options.apiToken } : {}),
      // A carrier proves itself to the devices of its route that dial it on their LAN.
      ...(claims.role === 'carrier' ? { prove: { credential: enrolment.credential, privateKey: enrolment.privateKey, peerId: peerIdOfCredential(claims) } } : {}),
      serves: claims.serves ?? [claims.site],
      revocations: () => revoked.token,
      registerStatement: (sites) => (register ? { ...register, roots: register.roots.filter(([site]) => sites.includes(site)), revocations: revoked.token } : undefined),
      // Carriers met on a LAN pass on the newest list each holds (signed by the deployment).
      onRevocations: async (token) => {
        const next = revokedBy([revoked.token, token], deployment)
        if (next.seq === revoked.seq) return false
        revoked = next
        // Kept on disk, with the register when there is one (a carrier that never reached the hub has none yet).
        register = { ...(register ?? { kind: 'register' as const, roots: [] }), revocations: next.token }
        await storage.save(REGISTER_KEY, new TextEncoder().encode(JSON.stringify(register)))
        logger.info({ seq: next.seq, devices: next.devices.size }, 'revocation list from a carrier met on the LAN')
        return true
      },
      onUpstreamRegister: async (statement) => {
        const next = revokedBy([revoked.token, statement.revocations], deployment)
        for (const [site, documents, directory] of statement.roots) access.setRoots(site, documents, directory)
        register = { ...statement, revocations: next.token }
        await storage.save(REGISTER_KEY, new TextEncoder().encode(JSON.stringify(register)))
        if (next.seq !== revoked.seq) {
          revoked = next
          logger.info({ seq: next.seq, devices: next.devices.size }, 'revocation list from the upstream')
          relay?.revalidate()
        }
      },
    })
    logger.info({ upstream: file.upstream, serves: claims.serves ?? [claims.site], role: claims.role }, claims.role === 'carrier' ? 'carrier serving its route' : 'chained relay serving')
    // A carrier is found by the sites of its route on each LAN it comes to.
    const advertised = claims.role === 'carrier' && options.lan !== false ? advertise(claims, relay.port, logger, options.lan?.mdnsInterface) : undefined
    // And finds the other carriers there: of two, the one whose peer id sorts first dials.
    const me = peerIdOfCredential(claims)
    advertised?.browse({
      seen: (service) => {
        try {
          const found = lanServiceOf(service, deployment.id)
          if (!found || found.txt.role !== 'carrier' || found.peerId <= me) return
          if (found.txt.pv !== String(LAN_PROTOCOL)) return void logger.warn({ peer: found.peerId, theirs: found.txt.pv, ours: LAN_PROTOCOL }, 'a carrier on this LAN speaks another protocol version: not linked (upgrade the older one)')
          relay!.linkCarrier(found.peerId, found.url)
        } catch (error) {
          logger.debug({ err: error }, 'a LAN service that is not a stockmesh node: ignored')
        }
      },
      gone: (service) => {
        const found = lanServiceOf(service, deployment.id)
        if (found?.txt.role === 'carrier') relay!.unlinkCarrier(found.peerId)
      },
    })
    const upstream = file.upstream
    let stopping: Promise<void> | undefined
    return {
      relay,
      deployment,
      upstream,
      stop: () =>
        (stopping ??= (async () => {
          await advertised?.stop()
          await relay!.close()
          await lock.release()
        })()),
    }
  } catch (error) {
    await lock.release()
    throw error
  }
}

async function readRelayFile(dir: string): Promise<z.infer<typeof RelayFile> | undefined> {
  const read = await readJsonFile(path.join(dir, RELAY_FILE), RelayFile)
  if (read.state === 'damaged') throw new Error(`${path.join(dir, RELAY_FILE)} is damaged (${read.why}): restore the folder from a backup or enrol the relay again`)
  return read.state === 'ok' ? read.value : undefined
}

async function loadRegister(storage: StorageAdapterInterface): Promise<RegisterStatement | undefined> {
  const bytes = await storage.load(REGISTER_KEY)
  if (!bytes) return undefined
  try {
    const parsed = RegisterStatement.safeParse(JSON.parse(new TextDecoder().decode(bytes)))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}

/** The highest-numbered valid revocation list among `tokens` (signed by the deployment). */
function revokedBy(tokens: Array<string | undefined>, deployment: DeploymentPublic): { token: string; seq: number; devices: Set<string> } {
  let best: { token: string; seq: number; devices: Set<string> } | undefined
  for (const token of tokens) {
    if (!token) continue
    const checked = verifyRevocations(token, deployment)
    if (!checked.ok) continue
    if (!best || checked.claims.seq > best.seq) best = { token, seq: checked.claims.seq, devices: new Set(checked.claims.devices) }
  }
  if (!best) throw new Error('no valid revocation list: enrol the relay again')
  return best
}
