/** Command-line entry: `stockmesh site …` runs a site node headless; `stockmesh demo` the demo site. */
import path from 'node:path'
import { Command, InvalidArgumentError } from 'commander'
import pino from 'pino'
import { demoCatalog, DEMO_SITE } from './node/demo.ts'
import { startApi } from './node/http/server.ts'
import { SiteNode } from './node/siteNode.ts'

function port(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number from 0 to 65535')
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
}

async function runSite(flags: SiteFlags, provision?: typeof demoCatalog): Promise<void> {
  const logger = pino({ level: flags.logLevel })
  // automerge-repo 2.5.6 turns a failed storage save into an unhandled rejection that would end
  // the process (https://github.com/automerge/automerge-repo/pull/676): log it loudly instead.
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'))
  const node = await SiteNode.open({
    dataDir: path.resolve(flags.data),
    logger,
    ...(flags.site ? { site: flags.site } : {}),
    ...(flags.node ? { node: flags.node } : {}),
    ...(provision ? { provisionCatalog: provision } : {}),
  })
  const api = await startApi(node, { host: flags.host, port: flags.port, ...(flags.token ? { token: flags.token } : {}), ...(flags.ui ? { uiDir: flags.ui } : {}) })
  // The line scripts and tests wait for; keep its shape.
  console.log(`stockmesh site ${node.identity.site} (device ${node.identity.node}) ready at ${api.url}/  data in ${path.resolve(flags.data)}`)
  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'stopping')
    await api.close()
    await node.close()
    process.exit(0)
  }
  process.on('SIGINT', () => void stop('SIGINT'))
  process.on('SIGTERM', () => void stop('SIGTERM'))
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
      .option('--node <id>', 'device id of this node (generated on first start if not given)'),
  ).action((flags: SiteFlags) => runSite(flags))
  siteOptions(
    cli
      .command('demo')
      .description(`run the demo site "${DEMO_SITE}" with a small catalog`)
      .option('--data <dir>', 'data folder', '.stockmesh/demo'),
  ).action((flags: SiteFlags) => runSite({ ...flags, site: DEMO_SITE }, demoCatalog))
  return cli
}

export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv)
  } catch (error) {
    console.error(`stockmesh: ${(error as Error).message}`)
    process.exit(1)
  }
}
