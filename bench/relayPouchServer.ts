/**
 * Child process of the relay benchmark: the PouchDB anchor's server, express-pouchdb (the
 * CouchDB-compatible HTTP server of pouchdb-server) over in-memory PouchDB databases, on a free
 * loopback port. Prints `{"port":…}`; exits on SIGTERM.
 */
import express from 'express'
import expressPouch from 'express-pouchdb'
import PouchDB from 'pouchdb-core'
import mem from 'pouchdb-adapter-memory'
import os from 'node:os'
import path from 'node:path'

PouchDB.plugin(mem)
const ServerPouch = PouchDB.defaults({ adapter: 'memory' })
const app = express()
app.use('/', expressPouch(ServerPouch, { mode: 'minimumForPouchDB', inMemoryConfig: true, logPath: path.join(os.tmpdir(), `stockmesh-pouch-${process.pid}.log`) }))
const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as { port: number }).port }) + '\n')
})
// Idle keep-alive sockets stay open (node's default closes them after 5 s, and a request already on
// its way over a slow link then meets a closed socket).
server.keepAliveTimeout = 10 * 60_000
server.headersTimeout = 10 * 60_000 + 1000
process.on('SIGTERM', () => server.close(() => process.exit(0)))
process.on('disconnect', () => process.exit(0))
