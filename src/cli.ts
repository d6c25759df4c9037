/** Command-line entry: `stockmesh site …` runs a site node headless; `stockmesh demo` the demo site. */
import path from 'node:path'
import { Command, InvalidArgumentError } from 'commander'
import pino from 'pino'
import { demoCatalog, DEMO_SITE } from './node/demo.ts'
import { importCatalogFiles, importSummary } from './node/catalogImport.ts'
import { connectorOf } from './erp/config.ts'
import { lockDataFolder } from './node/dataFolderLock.ts'
import { listenApi } from './node/http/server.ts'
import { SiteNode } from './node/siteNode.ts'
import { existsSync, statSync } from 'node:fs'
import { initHub, isHubFolder } from './hub/hubFolder.ts'
import { enrolDevice, parseDuration, readEnrolmentFile, revokeDevice } from './hub/enrol.ts'
import { DEVICE_FILES } from './hub/deviceEnrolment.ts'
import { EnrolmentFile } from './schema/credential.ts'
import { runChainedRelay } from './relay/chained.ts'
import { runRelay } from './relay/run.ts'

/** On SIGINT or SIGTERM (once): logs, runs `stop`, exits 0. */
function stopOnSignals(logger: pino.Logger, stop: () => Promise<unknown>): void {
  let stopping = false
  const onSignal = async (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'stopping')
    await stop()
    process.exit(0)
  }
  process.on('SIGINT', () => void onSignal('SIGINT'))
  process.on('SIGTERM', () => void onSignal('SIGTERM'))
}

function port(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number from 0 to 65535')
  return n
}

function count(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 10_000_000) throw new InvalidArgumentError('must be a whole number')
  return n
}

interface SiteFlags {
  data: string
  site?: string
  node?: string
  host: string
  port: number
  token?: string
  ui?: string
  logLevel: string
  /** Enrolment file for the first start (src/hub/enrol.ts). */
  enrol?: string
  /** Relay URL, overriding the enrolment's. */
  relay?: string
  /** commander's `--no-lan`: false turns the LAN mesh off. */
  lan: boolean
  lanHost: string
  lanPort: number
  /** The interface (an address of it) multicast DNS uses. */
  mdnsInterface?: string
}

async function runSite(flags: SiteFlags, provision?: typeof demoCatalog): Promise<void> {
  const logger = pino({ level: flags.logLevel })
  // automerge-repo 2.5.6 turns a failed storage save into an unhandled rejection that would end
  // the process (https://github.com/automerge/automerge-repo/pull/676): log it loudly instead.
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'))
  const dataDir = path.resolve(flags.data)
  // The enrolment file is read and checked before anything else: a bad one changes nothing.
  let enrolment: EnrolmentFile | undefined
  if (flags.relay !== undefined) {
    const relay = EnrolmentFile.shape.relay.safeParse(flags.relay)
    if (!relay.success) throw new Error(`--relay ${JSON.stringify(flags.relay)}: ${relay.error.issues[0]?.message}`)
    if (!flags.enrol && !existsSync(path.join(dataDir, DEVICE_FILES.enrolment))) {
      throw new Error(`--relay is for a device enrolled in a deployment: ${dataDir} has no enrolment (${DEVICE_FILES.enrolment}); give --enrol FILE at its first start`)
    }
  }
  if (flags.enrol) {
    enrolment = (await readEnrolmentFile(path.resolve(flags.enrol))).enrolment
    if (flags.relay) enrolment = { ...enrolment, relay: flags.relay }
  }
  // The folder's lock, then the port, then the folder: a start refused for any reason (folder in
  // use, port taken, a host without a token) has touched nothing in the folder.
  const lock = await lockDataFolder(dataDir, { command: `stockmesh ${provision ? 'demo' : 'site'}` })
  let api: Awaited<ReturnType<typeof listenApi>> | undefined
  let node: SiteNode
  try {
    api = await listenApi({ host: flags.host, port: flags.port, logger, ...(flags.token ? { token: flags.token } : {}), ...(flags.ui ? { uiDir: flags.ui } : {}) })
    lock.update({ url: `${api.url}/` })
    node = await SiteNode.open({
      dataDir,
      logger,
      lock,
      ...(flags.site ? { site: flags.site } : {}),
      ...(flags.node ? { node: flags.node } : {}),
      ...(provision ? { provisionCatalog: provision } : {}),
      ...(enrolment ? { enrolment } : {}),
    })
    if (flags.relay && node.enrolment) node.enrolment.relay = flags.relay
    api.attach(node)
    // An enrolled device syncs through its relay from now on (offline until it is reachable).
    node.connectRelay()
    // …and with the nodes of its deployment it finds on the LAN (src/peer-sync).
    if (node.enrolment && flags.lan) await node.startLan({ host: flags.lanHost, port: flags.lanPort, ...(flags.mdnsInterface ? { mdnsInterface: flags.mdnsInterface } : {}) })
  } catch (error) {
    await api?.close()
    await lock.release()
    throw error
  }
  stopOnSignals(logger, async () => {
    await api.close()
    await node.close()
    await lock.release()
  })
  // The line scripts and tests wait for; keep its shape. Printed after the signal handlers: a
  // script that stops the site as soon as it reads the line must get a clean stop, not a kill.
  console.log(`stockmesh site ${node.identity.site} (device ${node.identity.node}) ready at ${api.url}/  data in ${dataDir}`)
}

function siteOptions(command: Command): Command {
  return command
    .option('--host <address>', 'address to listen on (anything but loopback needs --token)', '127.0.0.1')
    .option('--port <n>', 'HTTP port for the API and UI (0 picks a free one)', port, 8470)
    .option('--token <secret>', 'require this bearer token on every API request (env STOCKMESH_API_TOKEN)', process.env.STOCKMESH_API_TOKEN)
    .option('--ui <dir>', 'folder of the built UI to serve')
    .option('--log-level <level>', 'pino log level', 'info')
}

export function program(): Command {
  const cli = new Command('stockmesh').description('Offline-first stock ledgers, orders and delivery manifests.').showHelpAfterError()
  siteOptions(
    cli
      .command('site')
      .description('run a site node headless: documents on disk, the local HTTP API and the UI')
      .requiredOption('--data <dir>', 'data folder of this site node')
      .option('--site <id>', 'site id (needed the first time a data folder is used)')
      .option('--node <id>', 'device id of this node (generated on first start if not given)')
      .option('--enrol <file>', 'enrolment file from stockmesh enrol: the first start joins the deployment with it')
      .option('--relay <url>', "relay to connect to (ws://HOST:PORT), instead of the enrolment file's")
      .option('--no-lan', 'an enrolled node finds the nodes of its deployment on the LAN (DNS-SD) and syncs with them: turn that off')
      .option('--lan-host <address>', 'address the LAN sync port listens on', '0.0.0.0')
      .option('--lan-port <n>', 'LAN sync port (0 picks a free one; it is advertised)', port, 0)
      .option('--mdns-interface <address>', 'an address of the interface multicast DNS uses (default: the system picks)'),
  ).action((flags: SiteFlags) => runSite(flags))
  siteOptions(
    cli
      .command('demo')
      .description(`run the demo site "${DEMO_SITE}" with a small catalog`)
      .option('--data <dir>', 'data folder', '.stockmesh/demo'),
  ).action((flags: SiteFlags) => runSite({ ...flags, site: DEMO_SITE }, demoCatalog))
  const catalog = cli.command('catalog').description("the catalog of a data folder's site: products, adjustment reasons, sites")
  catalog
    .command('import')
    .summary("add or update the catalog of the folder's site from CSV files")
    .description(
      "add or update catalog entries of the folder's site from CSV files (UTF-8). The header says what a file holds: " +
        'sku,name,unit[,active] products, code,label adjustment reasons, id,name,type sites (store|clinic|warehouse|hub). ' +
        'Entries not in the file are kept. Every row is checked first: one bad row and nothing is imported. The site must not be running.',
    )
    .requiredOption('--data <dir>', 'data folder of the site (provisioned: started once with --site), or a hub folder (the deployment catalog)')
    .argument('<file...>', 'CSV files, at most one of each kind')
    .option('--log-level <level>', 'pino log level', 'warn')
    .action(async (files: string[], flags: { data: string; logLevel: string }) => {
      const result = await importCatalogFiles({ dataDir: path.resolve(flags.data), files, logger: pino({ level: flags.logLevel }) })
      console.log(importSummary(result))
    })
  deploymentCommands(cli)
  return cli
}

function hubDir(value: string): string {
  return path.resolve(value)
}

/** `deployment init`, `enrol`, `revoke`: src/hub/. */
function deploymentCommands(cli: Command): void {
  const deployment = cli.command('deployment').description('a deployment: its hub folder, signing key and catalog')
  deployment
    .command('init')
    .description('make a new deployment in HUB: its id, a signing key that never leaves HUB (deployment-key.pem, mode 0600), its register and its catalog. HUB becomes the hub relay\'s data folder')
    .requiredOption('--data <dir>', 'the hub folder (new, or empty)')
    .option('--name <name>', "the deployment's name (default: the folder's name)")
    .option('--log-level <level>', 'pino log level', 'warn')
    .action(async (flags: { data: string; name?: string; logLevel: string }) => {
      const made = await initHub(hubDir(flags.data), { logger: pino({ level: flags.logLevel }), ...(flags.name !== undefined ? { name: flags.name } : {}) })
      console.log(`deployment ${made.deployment.id} (${made.deployment.name}) made in ${hubDir(flags.data)}; catalog ${made.catalog}`)
    })
  cli
    .command('enrol')
    .description(
      'enrol one new device of SITE: writes its enrolment file (mode 0600: it holds the device\'s private key; anyone holding it can act as the device until it is revoked or expires). ' +
        "A new SITE is registered on first use: the hub makes the site's documents, and every enrolment file carries them",
    )
    .requiredOption('--data <dir>', 'the hub folder (stockmesh deployment init)')
    .requiredOption('--site <id>', 'the site the device belongs to')
    .requiredOption('--out <file>', 'where to write the enrolment file (must not exist)')
    .option('--role <role>', 'device, carrier or relay', 'device')
    .option('--expires <duration>', 'how long the credential is valid: e.g. 90d, 12w, 48h', '90d')
    .option('--relay <url>', 'the relay the device connects to (ws://HOST:PORT)')
    .option('--device <id>', 'device id (generated: dev- and 8 hex digits)')
    .option('--serves <sites>', "a relay's: the sites whose documents it carries (default: its --site); a carrier's: the sites of its route; comma-separated")
    .option('--log-level <level>', 'pino log level', 'warn')
    .action(async (flags: { data: string; site: string; out: string; role: string; expires: string; relay?: string; device?: string; serves?: string; logLevel: string }) => {
      const dir = hubDir(flags.data)
      if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir} is not a hub folder: make one with stockmesh deployment init --data ${dir}`)
      const result = await enrolDevice(dir, {
        site: flags.site,
        role: flags.role,
        validForMs: parseDuration(flags.expires),
        out: flags.out,
        logger: pino({ level: flags.logLevel }),
        ...(flags.relay !== undefined ? { relay: flags.relay } : {}),
        ...(flags.device !== undefined ? { device: flags.device } : {}),
        ...(flags.serves !== undefined ? { serves: flags.serves.split(',').map((s) => s.trim()) } : {}),
      })
      console.log(
        `device ${result.device} of site ${result.site}${result.newSite ? ' (new site)' : ''} enrolled until ${new Date(result.expiresAt).toISOString()}: ${path.resolve(flags.out)}`,
      )
    })
  cli
    .command('relay')
    .description('serve the hub folder HUB as the deployment\'s relay: devices connect with their enrolment credential over ws://HOST:PORT/sync; GET /healthz and /metrics (Prometheus) on the same port')
    .requiredOption('--data <dir>', 'the hub folder (stockmesh deployment init)')
    .requiredOption('--port <n>', 'port to listen on (0 picks a free one)', port)
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--upstream <url>', 'chain this relay under another (ws://HOST:PORT): DIR is then this relay\'s own folder, not a hub')
    .option('--enrol <file>', 'first start of a chained relay: its enrolment file (stockmesh enrol --role relay --serves …)')
    .option('--unload-after <duration>', 'documents idle this long are written out and leave memory (e.g. 5m, 1h; never keeps all)', '5m')
    .option('--api-token <secret>', "the hub relay's data endpoints (GET /lots/:lot, a recall across sites; GET /erp) need this bearer token; off without one (env STOCKMESH_RELAY_TOKEN)", process.env.STOCKMESH_RELAY_TOKEN)
    .option('--erp <url>', 'forward to the parent ERP: tryton://USER@HOST:PORT/DATABASE (password from STOCKMESH_ERP_PASSWORD or --erp-password-file; products and sites come down from it into the catalog) or openlmis+http://HOST:PORT?program=…&source=…&destination=…&credit=…&debit=… (token from STOCKMESH_ERP_TOKEN); docs/erp-mapping.md')
    .option('--erp-password-file <file>', 'file holding the ERP password (instead of STOCKMESH_ERP_PASSWORD)')
    .option('--erp-batch <n>', 'facts per batch sent to the ERP', count, 100)
    .option('--erp-interval <ms>', 'least time between two batches (the ERP rate limit)', count, 200)
    .option('--log-level <level>', 'pino log level', 'info')
    .action(async (flags: { data: string; port: number; host: string; upstream?: string; enrol?: string; unloadAfter: string; apiToken?: string; erp?: string; erpPasswordFile?: string; erpBatch: number; erpInterval: number; logLevel: string }) => {
      const idleMs = flags.unloadAfter === 'never' ? 0 : parseDuration(flags.unloadAfter)
      const logger = pino({ level: flags.logLevel })
      process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'))
      if (flags.upstream !== undefined || flags.enrol !== undefined || (existsSync(path.join(hubDir(flags.data), 'relay.json')) && !isHubFolder(hubDir(flags.data)))) {
        if (flags.upstream !== undefined) {
          const upstream = EnrolmentFile.shape.relay.safeParse(flags.upstream)
          if (!upstream.success) throw new Error(`--upstream ${JSON.stringify(flags.upstream)}: ${upstream.error.issues[0]?.message}`)
        }
        if (isHubFolder(hubDir(flags.data))) throw new Error(`${hubDir(flags.data)} is a hub folder: the hub relay has no upstream; give a folder of its own to a chained relay`)
        const chained = await runChainedRelay({ dir: hubDir(flags.data), port: flags.port, host: flags.host, logger, idleMs, ...(flags.upstream ? { upstream: flags.upstream } : {}), ...(flags.enrol ? { enrol: flags.enrol } : {}) })
        stopOnSignals(logger, () => chained.stop())
        console.log(`stockmesh relay ${chained.deployment.id} ready at ${chained.relay.url}  chained under ${chained.upstream}  data in ${hubDir(flags.data)}`)
        return
      }
      if (flags.erp && !flags.apiToken) logger.warn('--erp without --api-token: GET /erp (what is forwarded, pending, parked) stays off')
      const erp = flags.erp ? { connector: connectorOf(flags.erp, { ...(process.env.STOCKMESH_ERP_PASSWORD ? { password: process.env.STOCKMESH_ERP_PASSWORD } : {}), ...(flags.erpPasswordFile ? { passwordFile: flags.erpPasswordFile } : {}), ...(process.env.STOCKMESH_ERP_TOKEN ? { token: process.env.STOCKMESH_ERP_TOKEN } : {}) }), batchSize: Math.max(1, flags.erpBatch), minIntervalMs: flags.erpInterval } : undefined
      const running = await runRelay({ dir: hubDir(flags.data), port: flags.port, host: flags.host, logger, idleMs, ...(flags.apiToken ? { apiToken: flags.apiToken } : {}), ...(erp ? { erp } : {}) })
      stopOnSignals(logger, () => running.stop())
      // The line scripts and tests wait for; printed after the signal handlers.
      console.log(`stockmesh relay ${running.deployment.id} ready at ${running.relay.url}  data in ${hubDir(flags.data)}`)
    })
  cli
    .command('carrier')
    .description("run a carrier (a device enrolled with --role carrier --serves SITES): it holds the documents of the sites of its route, syncs with their nodes on each LAN it comes to (they find it by DNS-SD) and with the relay whenever it reaches it; GET /route says which documents the relay holds")
    .requiredOption('--data <dir>', "the carrier's data folder")
    .option('--enrol <file>', 'its enrolment file (first start only)')
    .option('--host <address>', 'address the carrier listens on for the devices of its route', '0.0.0.0')
    .option('--port <n>', 'its port (0 picks a free one; it is advertised)', port, 0)
    .option('--no-lan', 'do not advertise on the LAN (devices must be given its address)')
    .option('--mdns-interface <address>', 'an address of the interface multicast DNS uses (default: the system picks)')
    .option('--api-token <secret>', 'GET /route needs this bearer token; off without one (env STOCKMESH_RELAY_TOKEN)', process.env.STOCKMESH_RELAY_TOKEN)
    .option('--log-level <level>', 'pino log level', 'info')
    .action(async (flags: { data: string; enrol?: string; host: string; port: number; lan: boolean; mdnsInterface?: string; apiToken?: string; logLevel: string }) => {
      const logger = pino({ level: flags.logLevel })
      process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'))
      const carrier = await runChainedRelay({
        dir: path.resolve(flags.data),
        port: flags.port,
        host: flags.host,
        logger,
        // What it carries stays in memory: few documents, and GET /route lists what is loaded.
        idleMs: 0,
        ...(flags.enrol ? { enrol: flags.enrol } : {}),
        lan: flags.lan ? (flags.mdnsInterface ? { mdnsInterface: flags.mdnsInterface } : {}) : false,
        ...(flags.apiToken ? { apiToken: flags.apiToken } : {}),
      })
      stopOnSignals(logger, () => carrier.stop())
      console.log(`stockmesh carrier ${carrier.deployment.id} ready at ${carrier.relay.url}  relay ${carrier.upstream}  data in ${path.resolve(flags.data)}`)
    })
  cli
    .command('revoke')
    .description('revoke a device: signs a new revocation list naming every revoked device; it is refused wherever the list has reached')
    .requiredOption('--data <dir>', 'the hub folder')
    .requiredOption('--device <id>', 'the device to revoke')
    .option('--log-level <level>', 'pino log level', 'warn')
    .action(async (flags: { data: string; device: string; logLevel: string }) => {
      const result = await revokeDevice(hubDir(flags.data), { device: flags.device, logger: pino({ level: flags.logLevel }) })
      console.log(`device ${result.device} revoked${result.already ? ' (it was already)' : ''}: revocation list ${result.seq} names ${result.devices.length} ${result.devices.length === 1 ? 'device' : 'devices'}`)
    })
}

export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv)
  } catch (error) {
    console.error(`stockmesh: ${(error as Error).message}`)
    process.exit(1)
  }
}
