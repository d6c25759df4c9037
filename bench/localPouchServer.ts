/**
 * Child process of the local benchmark (bench/local.ts): the PouchDB anchor's server,
 * express-pouchdb 4.2 (the HTTP server of pouchdb-server 4.2) over pouchdb-core 9 on the leveldb
 * adapter (leveldown 6), its databases in DIR. Prints `{"port":…}` once listening; exits on SIGTERM.
 *
 *   node … bench/localPouchServer.ts DIR sync|nosync [PORT]
 *
 * `sync`: every leveldb write (put, del, batch, chained batch) is passed {sync:true}, so leveldb
 * fsyncs its log before answering (leveldb never fsyncs by default: `nosync` is PouchDB as it ships).
 * GET /_bench/writes answers how many writes went to leveldb and how many of them asked for a sync.
 *
 * The benchmark runs this file transpiled to plain JavaScript (`node --input-type=module -e …`,
 * see `pouchServerCode` in bench/local.ts), so that no TypeScript loader is in its start-up time.
 */
import express from 'express'
import expressPouch from 'express-pouchdb'
import PouchDB from 'pouchdb-core'
import leveldbAdapter from 'pouchdb-adapter-leveldb'
import leveldown from 'leveldown'
import path from 'node:path'

// With `node -e CODE`, process.argv is [node, …args]; with a file, [node, file, …args].
const args = process.argv.slice(process.argv.findIndex((a, i) => i > 0 && !a.endsWith('.ts')))
const dir = args[0]!
const sync = args[1] === 'sync'
const port = Number(args[2] ?? 0)
const counts = { writes: 0, syncWrites: 0 }

type Cb = (...args: unknown[]) => void
interface Down {
  _put(k: unknown, v: unknown, o: object, cb: Cb): void
  _del(k: unknown, o: object, cb: Cb): void
  _batch(ops: unknown[], o: object, cb: Cb): void
  _chainedBatch(): { _write(o: object, cb: Cb): void }
}

/** leveldown with every write made durable (or only counted): what PouchDB's leveldb adapter opens. */
function syncLeveldown(location: string): Down {
  const db = (leveldown as unknown as (l: string) => Down)(location)
  const opts = (o: object): object => {
    counts.writes++
    if (sync) counts.syncWrites++
    return sync ? { ...o, sync: true } : o
  }
  const put = db._put.bind(db)
  const del = db._del.bind(db)
  const batch = db._batch.bind(db)
  const chained = db._chainedBatch.bind(db)
  db._put = (k, v, o, cb) => put(k, v, opts(o), cb)
  db._del = (k, o, cb) => del(k, opts(o), cb)
  db._batch = (ops, o, cb) => batch(ops, opts(o), cb)
  db._chainedBatch = () => {
    const b = chained()
    const write = b._write.bind(b)
    b._write = (o, cb) => write(opts(o), cb)
    return b
  }
  return db
}

PouchDB.plugin(leveldbAdapter)
const ServerPouch = PouchDB.defaults({ adapter: 'leveldb', db: syncLeveldown, prefix: dir + path.sep })
const app = express()
app.get('/_bench/writes', (_req: unknown, res: { json(v: unknown): void }) => res.json(counts))
app.use('/', expressPouch(ServerPouch, { mode: 'minimumForPouchDB', inMemoryConfig: true, logPath: path.join(path.dirname(dir), `express-pouchdb-${process.pid}.log`) }))
const server = app.listen(port, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as { port: number }).port }) + '\n')
})
server.keepAliveTimeout = 10 * 60_000
server.headersTimeout = 10 * 60_000 + 1000
process.on('SIGTERM', () => {
  server.closeAllConnections?.()
  server.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
})
process.on('disconnect', () => process.exit(0))
