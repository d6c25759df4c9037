/**
 * A real Tryton 6.0 for tests (Debian's tryton-server, installed by .ci/run; ../shared/ENVIRONMENT.md):
 * a database made once per machine and copied for each test, `trytond` started on a free loopback
 * port, a company, products and site locations made through its JSON-RPC like an administrator would.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { decimal, TrytonRpc } from '../../src/erp/trytonRpc.ts'
import { tempDir } from './tempDir.ts'

const run = promisify(execFile)
export const TRYTON_PASSWORD = 'admin-secret'
const MODULES = ['party', 'company', 'product', 'stock', 'stock_lot', 'stock_lot_sled']

export function trytonInstalled(): boolean {
  return existsSync('/usr/bin/trytond') && existsSync('/usr/bin/trytond-admin')
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })
}

function conf(dir: string, port: number): string {
  const file = path.join(dir, 'trytond.conf')
  writeFileSync(file, `[database]\nuri = sqlite://\npath = ${dir}\n[web]\nlisten = 127.0.0.1:${port}\n[session]\ntimeout = 86400\n`)
  return file
}

/** The template database (made once: ~10 s; the modules activated), copied per test. */
let template: Promise<string> | undefined
function templateDb(): Promise<string> {
  return (template ??= (async () => {
    const dir = path.join(os.tmpdir(), `stockmesh-tryton-template-${process.getuid?.() ?? 0}`)
    const db = path.join(dir, 'erp.sqlite')
    if (existsSync(db)) return db
    const work = `${dir}.${process.pid}`
    mkdirSync(work, { recursive: true })
    writeFileSync(path.join(work, 'erp.sqlite'), '')
    writeFileSync(path.join(work, 'pass'), `${TRYTON_PASSWORD}\n`)
    const file = conf(work, 0)
    await run('trytond-admin', ['-c', file, '-d', 'erp', '--all', '--email', 'admin@example.invalid'], { env: { ...process.env, TRYTONPASSFILE: path.join(work, 'pass') }, timeout: 300_000 })
    await run('trytond-admin', ['-c', file, '-d', 'erp', '-u', ...MODULES, '--activate-dependencies'], { timeout: 300_000 })
    mkdirSync(dir, { recursive: true })
    renameSync(path.join(work, 'erp.sqlite'), `${db}.tmp`)
    renameSync(`${db}.tmp`, db)
    return db
  })())
}

export interface TrytonServer {
  url: string
  database: string
  user: string
  password: string
  rpc: TrytonRpc
  /** Stops trytond (the database stays): Tryton down. */
  stop(): Promise<void>
  /** Starts it again on the same port and database. */
  start(): Promise<void>
}

/** `dir`: the folder of its database (default a temporary one removed after the test). */
export async function startTryton(onCleanup: (stop: () => Promise<unknown>) => void, dir = tempDir('tryton-')): Promise<TrytonServer> {
  const db = await templateDb()
  copyFileSync(db, path.join(dir, 'erp.sqlite'))
  const port = await freePort()
  const file = conf(dir, port)
  const url = `http://127.0.0.1:${port}`
  const rpc = new TrytonRpc({ url, database: 'erp', user: 'admin', password: TRYTON_PASSWORD })
  let child: ChildProcess | undefined
  let log = ''
  const server: TrytonServer = {
    url,
    database: 'erp',
    user: 'admin',
    password: TRYTON_PASSWORD,
    rpc,
    async start() {
      log = ''
      const started = spawn('trytond', ['-c', file], { stdio: ['ignore', 'pipe', 'pipe'] })
      child = started
      started.stdout!.on('data', (c: Buffer) => (log += c.toString()))
      started.stderr!.on('data', (c: Buffer) => (log += c.toString()))
      const deadline = Date.now() + 30_000
      for (;;) {
        try {
          await rpc.login()
          return
        } catch {
          if (started.exitCode !== null || Date.now() > deadline) throw new Error(`trytond did not start:\n${log}`)
          await new Promise((resolve) => setTimeout(resolve, 200))
        }
      }
    },
    async stop() {
      const c = child
      child = undefined
      if (!c || c.exitCode !== null) return
      const exited = new Promise((resolve) => c.once('exit', resolve))
      c.kill('SIGTERM')
      await exited
    },
  }
  onCleanup(() => server.stop())
  await server.start()
  return server
}

export interface ErpSeed {
  products: Array<{ sku: string; name: string; lots?: boolean }>
  sites: Array<{ id: string; name: string }>
}

/** What an administrator sets up before stock: a currency and company (Tryton 6.0 ships none), products, one location per site. */
export async function seedErp(rpc: TrytonRpc, seed: ErpSeed): Promise<void> {
  const [currency] = await rpc.create('currency.currency', [{ name: 'Euro', code: 'EUR', symbol: '€', rounding: decimal('0.01'), digits: 2 }])
  const [party] = await rpc.create('party.party', [{ name: 'Pilot health district' }])
  const [company] = await rpc.create('company.company', [{ party, currency }])
  await rpc.write('res.user', [rpc.uid!], { companies: [['add', [company]]], company })
  await addProducts(rpc, seed.products)
  const [view] = await rpc.create('stock.location', [{ name: 'stockmesh sites', code: 'SM-SITES', type: 'view' }])
  await rpc.create('stock.location', seed.sites.map((s) => ({ name: s.name, code: s.id, type: 'storage', parent: view })))
}

export async function addProducts(rpc: TrytonRpc, products: ErpSeed['products']): Promise<void> {
  const [unit] = await rpc.searchRead<{ id: number }>('product.uom', [['symbol', '=', 'u']], ['id'])
  await rpc.create(
    'product.template',
    products.map((p) => ({ name: p.name, code: p.sku, type: 'goods', default_uom: unit!.id, list_price: decimal('0'), ...(p.lots ? { lot_required: ['storage', 'supplier', 'customer', 'lost_found'] } : {}), products: [['create', [{ suffix_code: '' }]]] })),
  )
}

/** Tryton's own quantity of each product at a site's location (by code), from its stock moves. */
export async function quantitiesAt(rpc: TrytonRpc, site: string): Promise<Map<string, number>> {
  const [location] = await rpc.searchRead<{ id: number }>('stock.location', [['code', '=', site]], ['id'])
  const rows = await rpc.searchRead<{ code: string; quantity: number }>('product.product', [], ['code', 'quantity'], { locations: [location!.id], stock_date_end: { __class__: 'date', year: 2100, month: 1, day: 1 } })
  return new Map(rows.filter((r) => r.quantity !== 0).map((r) => [r.code, r.quantity]))
}
