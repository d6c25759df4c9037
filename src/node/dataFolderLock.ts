/**
 * One process per data folder. Two site processes on one folder each keep their own in-memory
 * view of the documents and overwrite each other's saves, so one's acknowledged movements can be
 * gone after a restart. Node has no flock(2), so the lock is a listening socket whose name is
 * derived from the folder: binding it is atomic, a second bind fails, and the kernel frees it
 * the moment the holder dies (crash, SIGKILL, power loss): no stale lock file to clean up by hand.
 *
 * - Linux: an abstract-namespace unix socket `\0stockmesh-lock:<sha256(realpath)>`. Writes nothing
 *   into the folder (a start that is refused must leave the folder exactly as it was).
 * - Windows: a named pipe `\\?\pipe\stockmesh-lock-<sha256(lower-cased realpath)>`.
 * - macOS and other unixes (no abstract namespace): a socket file `<dir>/.lock.sock` (the folder
 *   is created if missing). A holder that died leaves the file behind; a connection to it is then
 *   refused, so it is removed and the bind retried once.
 *
 * The holder answers every connection with one JSON line describing itself (`LockHolder`), so a
 * refused process can say who holds the folder.
 *
 * Limits:
 * - Abstract sockets are per network namespace: two containers with their own network namespace
 *   that mount the same folder do not see each other's lock.
 * - A folder on a network share used by two machines is not covered (the lock is per kernel).
 * - macOS socket file: two processes that find the same stale file at the same instant can both
 *   remove it and one can unlink the other's fresh socket; that needs a crash followed by two
 *   simultaneous starts. A folder path too long for a socket address (over 103 bytes) locks
 *   through `/tmp/stockmesh-lock-<hash>.sock` instead.
 * - The same process asking twice for one folder is refused too (the second lock would not
 *   protect anything).
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'

/** Who holds a data folder: what a refused process prints. */
export interface LockHolder {
  pid: number
  /** What the holder runs, e.g. `stockmesh site`. */
  command: string
  /** ISO time the lock was taken. */
  startedAt: string
  /** Where the holder serves its API, once it listens. */
  url?: string
}

/** A held data folder lock. */
export interface DataFolderLock {
  /** The folder, resolved: absolute, symlinks followed. */
  readonly dir: string
  /** Changes what the holder tells a refused process (e.g. the API url once it is known). */
  update(info: Partial<LockHolder>): void
  /** Frees the folder. Idempotent. */
  release(): Promise<void>
}

/** The folder is locked by another process (or already by this one). */
export class DataFolderLockedError extends Error {
  override readonly name = 'DataFolderLockedError'
  constructor(
    /** The folder, resolved. */
    readonly dir: string,
    /** Who holds it; undefined when the holder did not answer in time. */
    readonly holder?: LockHolder,
  ) {
    super(`data folder ${dir} is in use by ${describeHolder(holder)}; stop it first, or use another folder`)
  }
}

/** `process 12345 (stockmesh site, since …, http://…)`, for messages. */
export function describeHolder(holder: LockHolder | undefined): string {
  if (!holder) return 'another process (it did not say which)'
  const details = [holder.command, `since ${holder.startedAt}`, ...(holder.url ? [holder.url] : [])]
  return `process ${holder.pid} (${holder.pid === process.pid ? 'this process: ' : ''}${details.join(', ')})`
}

/**
 * The folder as the lock knows it: absolute, symlinks resolved. A folder that does not exist yet
 * (a first start) resolves through its nearest existing parent, so `./d`, `/abs/d` and a symlink
 * to it name the same lock before and after it is created.
 */
export function canonicalDataDir(dir: string): string {
  const missing: string[] = []
  let at = path.resolve(dir)
  for (;;) {
    try {
      return path.join(fs.realpathSync.native(at), ...missing.reverse())
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
      const parent = path.dirname(at)
      if (parent === at) return path.resolve(dir)
      missing.push(path.basename(at))
      at = parent
    }
  }
}

/** Locks this process holds, by key: a second ask is refused without touching the OS. */
const heldHere = new Map<string, LockHolder>()

/** How long a refused process waits for the holder to say who it is. */
const ASK_TIMEOUT_MS = 2000
/** Longest holder line read; anything longer is not ours. */
const MAX_ANSWER = 4096
/** Longest unix socket path (macOS sun_path is 104 bytes with the NUL). */
const MAX_SOCKET_PATH = 103

interface Endpoint {
  address: string
  /** A socket file that outlives a crashed holder (macOS and other unixes). */
  file: boolean
}

function endpoint(dir: string): Endpoint {
  const key = process.platform === 'win32' ? dir.toLowerCase() : dir
  const hash = createHash('sha256').update(key).digest('hex')
  if (process.platform === 'linux') return { address: `\0stockmesh-lock:${hash}`, file: false }
  if (process.platform === 'win32') return { address: `\\\\?\\pipe\\stockmesh-lock-${hash}`, file: false }
  const inside = path.join(dir, '.lock.sock')
  if (Buffer.byteLength(inside) <= MAX_SOCKET_PATH) return { address: inside, file: true }
  return { address: `/tmp/stockmesh-lock-${hash.slice(0, 32)}.sock`, file: true }
}

/**
 * Takes the exclusive lock of data folder `dir` or throws `DataFolderLockedError` naming the
 * folder and the holder. Released by `release()` and by the OS when the process dies (crash,
 * SIGKILL). Writes nothing into the folder on Linux and Windows, and does not create it. The lock
 * does not keep the process alive. See the module comment for what it does not cover.
 */
export async function lockDataFolder(dir: string, holder: Omit<LockHolder, 'pid' | 'startedAt'>): Promise<DataFolderLock> {
  const canonical = canonicalDataDir(dir)
  const ep = endpoint(canonical)
  const mine = heldHere.get(ep.address)
  if (mine) throw new DataFolderLockedError(canonical, { ...mine })
  // Claimed before the first await: two calls in this process cannot both reach the bind.
  const info: LockHolder = { ...holder, pid: process.pid, startedAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') }
  heldHere.set(ep.address, info)
  try {
    const { server, sockets } = await listenExclusive(canonical, ep, info)
    let released: Promise<void> | undefined
    return {
      dir: canonical,
      update: (change) => void Object.assign(info, change),
      release: () =>
        (released ??= new Promise<void>((resolve) => {
          server.close(() => resolve())
          // close() waits for open connections; a refused process that never reads would hold it.
          for (const socket of sockets) socket.destroy()
        }).finally(() => heldHere.delete(ep.address))),
    }
  } catch (error) {
    heldHere.delete(ep.address)
    throw error
  }
}

async function listenExclusive(dir: string, ep: Endpoint, info: LockHolder): Promise<{ server: net.Server; sockets: Set<net.Socket> }> {
  if (ep.file) await fs.promises.mkdir(path.dirname(ep.address), { recursive: true })
  for (let attempt = 1; ; attempt++) {
    const sockets = new Set<net.Socket>()
    const server = net.createServer((socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      socket.on('error', () => undefined) // the asker went away: nothing to do
      socket.unref()
      socket.end(`${JSON.stringify(info)}\n`)
    })
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen({ path: ep.address, exclusive: true }, () => {
          server.off('error', reject)
          resolve()
        })
      })
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') {
        throw new Error(`cannot lock data folder ${dir}: ${(error as Error).message}`, { cause: error })
      }
      const answer = await askHolder(ep.address)
      // Nobody listens: the holder just released it (abstract socket, pipe) or died and left its
      // socket file behind (macOS): bind again, a bounded number of times.
      if (answer === 'gone' && attempt < 3) {
        if (ep.file) await fs.promises.unlink(ep.address).catch(() => undefined)
        continue
      }
      throw new DataFolderLockedError(dir, answer === 'gone' ? undefined : answer)
    }
    server.on('error', () => undefined) // a listening server's later errors cannot undo the lock
    server.unref()
    return { server, sockets }
  }
}

/** Asks the holder who it is: its `LockHolder`, undefined if it does not say, 'gone' if nobody listens. */
function askHolder(address: string): Promise<LockHolder | undefined | 'gone'> {
  return new Promise((resolve) => {
    let text = ''
    const socket = net.connect({ path: address })
    const done = (value: LockHolder | undefined | 'gone') => {
      clearTimeout(timer)
      socket.destroy()
      resolve(value)
    }
    const timer = setTimeout(() => done(undefined), ASK_TIMEOUT_MS)
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      text += chunk
      const end = text.indexOf('\n')
      if (end >= 0) done(parseHolder(text.slice(0, end)))
      else if (text.length > MAX_ANSWER) done(undefined)
    })
    socket.on('end', () => done(parseHolder(text)))
    socket.on('error', (error: NodeJS.ErrnoException) => done(error.code === 'ECONNREFUSED' || error.code === 'ENOENT' ? 'gone' : undefined))
  })
}

function parseHolder(line: string): LockHolder | undefined {
  try {
    const value = JSON.parse(line) as Partial<LockHolder>
    if (typeof value.pid !== 'number' || typeof value.command !== 'string' || typeof value.startedAt !== 'string') return undefined
    return { pid: value.pid, command: value.command, startedAt: value.startedAt, ...(typeof value.url === 'string' ? { url: value.url } : {}) }
  } catch {
    return undefined
  }
}
