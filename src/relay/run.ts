/**
 * `stockmesh relay --data HUB --port N [--host H]`: the hub relay on a hub folder (src/hub/hubFolder.ts).
 * Takes the folder's lock, reads the deployment and the register (each site's index and ledger,
 * the signed revocation list), opens the hub Repo behind the relay and serves until SIGTERM/SIGINT.
 * The register is re-read every few seconds when it changes (a new site's roots, a new revocation
 * list); a device revoked meanwhile is disconnected.
 */
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { parseAutomergeUrl, type AutomergeUrl } from '@automerge/automerge-repo'
import type { Logger } from 'pino'
import { checkedRevocations, HUB_FILES, lockHubFolder, openHub, readHubDeployment, readHubRegister, type Hub, type HubRegister } from '../hub/hubFolder.ts'
import type { DeploymentPublic } from '../schema/credential.ts'
import type { SiteId } from '../schema/ids.ts'
import { DurableFsStorageAdapter } from '../node/storage/DurableFsStorageAdapter.ts'
import { SiteAccess } from './access.ts'
import { loadOwners, loadParties } from './owners.ts'
import { startRelay, type Relay } from './server.ts'
import { ErpBridge, type BridgeOptions } from '../erp/bridge.ts'
import { own } from '../schema/ownProperty.ts'
import type { ErpConnector } from '../erp/connector.ts'
import type { CatalogDoc } from '../schema/catalog.ts'

export interface RunRelayOptions {
  dir: string
  port: number
  host: string
  logger: Logger
  /** Documents idle this long leave memory (default 5 minutes; 0 never). */
  idleMs?: number
  /** Bearer token of the relay's data endpoints (a recall across sites: `GET /lots/:lot`). */
  apiToken?: string
  /** How often the register is checked for changes (ms). */
  registerPollMs?: number
  /** Forward to a parent ERP through this connector (src/erp/): the bridge's outbox is HUB/erp/. */
  erp?: { connector: ErpConnector } & Pick<BridgeOptions, 'batchSize' | 'minIntervalMs' | 'scanMs' | 'parkedRetryMs' | 'masterDataMs'>
}

export interface RunningRelay {
  relay: Relay
  hub: Hub
  erp: ErpBridge | undefined
  deployment: DeploymentPublic
  /** Stops the relay, flushes and closes the hub, releases the folder's lock. */
  stop(): Promise<void>
}

function revokedOf(register: HubRegister, deployment: DeploymentPublic, dir: string): Set<string> {
  const revoked = new Set<string>(checkedRevocations(register, deployment, dir).claims.devices)
  for (const [device, entry] of Object.entries(register.devices)) if (entry.revokedAt) revoked.add(device)
  return revoked
}

function rootsOf(register: HubRegister): Array<[string, string[], string | undefined]> {
  const id = (url: string) => parseAutomergeUrl(url as AutomergeUrl).documentId as string
  return Object.entries(register.sites).map(([site, entry]) => [site, [id(entry.index), id(entry.ledger)], entry.directory === undefined ? undefined : id(entry.directory)])
}

export async function runRelay(options: RunRelayOptions): Promise<RunningRelay> {
  const dir = path.resolve(options.dir)
  const { logger } = options
  await readHubDeployment(dir) // the clear "not a hub folder" error before anything is taken
  const lock = await lockHubFolder(dir, 'stockmesh relay')
  let hub: Hub | undefined
  try {
    const file = await readHubDeployment(dir)
    const deployment = file.deployment
    let register = await readHubRegister(dir)
    let revoked = revokedOf(register, deployment, dir)
    const registerPath = path.join(dir, HUB_FILES.register)
    let registerStamp = (await stat(registerPath)).mtimeMs
    // The owner records live next to the documents, in the hub's crash-safe storage folder.
    const storage = new DurableFsStorageAdapter(path.join(dir, HUB_FILES.automerge))
    const access = new SiteAccess({ catalog: parseAutomergeUrl(file.catalog as AutomergeUrl).documentId, roots: rootsOf(register), owners: await loadOwners(storage), parties: await loadParties(storage) })
    // The register is re-read when it changes (polled), and at once when a device of a site the
    // relay does not know yet connects, or a document names such a site as a party: a site enrolled
    // a moment ago syncs and is told of what is shared with it without waiting for the poll.
    let reloading: Promise<void> | undefined
    let started: Relay | undefined
    let bridge: ErpBridge | undefined
    const refreshRegister = () => (reloading ??= reload().finally(() => (reloading = undefined)))
    const relay = await startRelay({
      storage,
      revocations: () => register.revocations.token,
      registerStatement: (sites) => ({
        kind: 'register',
        roots: access
          .roots()
          .filter(([site]) => sites.includes(site))
          .map(([site, documents, directory]) => (directory ? [site as SiteId, documents, directory] : [site as SiteId, documents])),
        revocations: register.revocations.token,
      }),
      refreshRegister: () => refreshRegister().catch((error: unknown) => logger.error({ err: error }, 'could not re-read the register: keeping the previous one')),
      deployment,
      isRevoked: (device) => revoked.has(device),
      host: options.host,
      port: options.port,
      logger,
      ...(options.idleMs !== undefined ? { idleMs: options.idleMs } : {}),
      ...(options.apiToken !== undefined ? { apiToken: options.apiToken } : {}),
      erp: () => bridge,
      access,
      openRepo: async (config) => {
        hub = await openHub(dir, { logger, lock, network: config.network ?? [], repo: { sharePolicy: undefined, shareConfig: config.shareConfig, peerId: config.peerId } })
        return hub.repo
      },
    })
    started = relay
    lock.update({ url: relay.url })

    async function reload(): Promise<void> {
      const stamp = (await stat(registerPath)).mtimeMs
      if (stamp === registerStamp) return
      registerStamp = stamp
      register = await readHubRegister(dir)
      revoked = revokedOf(register, deployment, dir)
      for (const [site, documents, directory] of rootsOf(register)) access.setRoots(site, documents, directory)
      started?.accessChanged()
      const closed = started?.revalidate() ?? []
      logger.info({ sites: Object.keys(register.sites).length, revoked: revoked.size, disconnected: closed }, 'register re-read')
    }
    if (options.erp) {
      const { connector, ...tuning } = options.erp
      bridge = new ErpBridge({
        repo: hub!.repo,
        connector,
        sites: () => Object.entries(register.sites).map(([site, entry]) => [site, entry.ledger, entry.index]),
        catalog: () => hub!.repo.find<CatalogDoc>(hub!.catalogUrl).catch(() => undefined),
        dir: path.join(dir, 'erp'),
        logger: logger.child({ erp: connector.description }),
        metrics: relay.metrics,
        siteOfDevice: (device) => own(register.devices as Record<string, { site: string }>, device)?.site,
        ...tuning,
      })
      await bridge.start()
    }
    const timer = setInterval(() => refreshRegister().catch((error: unknown) => logger.error({ err: error }, 'could not re-read the register: keeping the previous one')), options.registerPollMs ?? 5_000)
    timer.unref()

    let stopping: Promise<void> | undefined
    return {
      relay,
      hub: hub!,
      erp: bridge,
      deployment,
      stop: () =>
        (stopping ??= (async () => {
          clearInterval(timer)
          await bridge?.stop()
          await relay.close()
          await hub!.close()
          await lock.release()
        })()),
    }
  } catch (error) {
    await hub?.close().catch(() => undefined)
    await lock.release()
    throw error
  }
}
