/**
 * One process per data folder. Two site processes on one folder each keep their own in-memory
 * view of the documents and overwrite each other's saves, so one's acknowledged movements can be
 * gone after a restart. Node has no flock(2), so the lock is a listening socket whose name is
 * derived from the folder: binding it is atomic, a second bind fails, and the kernel frees it
 * the moment the holder dies (crash, SIGKILL, power loss): no stale lock file to clean up by hand.
 *
 * Two such sockets make one lock, both held until `release()` (or death):
 * - the path lock, named after the folder's resolved path (realpath). It exists before the folder
 *   does, so two first starts on one new folder cannot both provision it.
 * - the identity lock, named after the folder itself: `st_dev:st_ino` of the folder. It catches
 *   what a path cannot: the same folder reached through a bind mount (`mount --bind D /x`), or
 *   spelt in another case on a case-insensitive filesystem. A folder that does not exist yet has
 *   no identity: `lockDataFolder` takes the identity lock when the folder exists, and whoever
 *   creates the folder calls `holdIdentity()` right after `mkdir` and before writing anything into
 *   it. Two processes that both got a path lock for one missing folder through different paths
 *   (a bind mount of a parent) are then decided by the identity lock: the second `holdIdentity()`
 *   is refused, before either wrote a file. There is no moment where both hold the folder.
 *
 * An identity outlives its folder: a folder removed while held (or renamed, or removed and made
 * again) frees its inode number, and the kernel gives it to the next folder made, often at once.
 * The holder's identity lock must not lock that new folder, so a holder only conflicts while its
 * folder still has the identity: each holder, asked on its identity socket, also says which
 * identity its folder has at that moment (stat in its own mount namespace: the asker may not see
 * the holder's path, or may see another folder there, e.g. a container sharing the host's network
 * but not its mounts). A holder whose folder provably has another identity (or none) is stale for
 * this one; a holder that does not answer, or cannot tell, still conflicts. So that a new folder
 * can be locked while a stale holder keeps the socket, an identity has generations of sockets
 * (`dev:ino`, `dev:ino:1`, … `dev:ino:15`): a lock binds the first generation that is free or
 * held by a stale holder, then asks every other generation for a live holder of the identity (one
 * at a higher generation outlives the stale holder that made it skip a lower one) and, if there
 * is one, lets its own go and is refused. Two processes racing for one folder each bind before
 * they ask, so at least one sees the other (both may be refused, never both admitted).
 *
 * Mechanisms:
 * - Linux: abstract-namespace unix sockets `\0stockmesh-lock:<sha256(realpath)>` and
 *   `\0stockmesh-lock-id:<sha256(dev:ino[:generation])>`. Write nothing into the folder (a start
 *   that is refused must leave the folder exactly as it was).
 * - Windows: named pipes `\\?\pipe\stockmesh-lock-<sha256(lower-cased realpath)>` and
 *   `\\?\pipe\stockmesh-lock-id-<sha256(dev:ino[:generation])>` (dev is the volume serial number, ino the
 *   file index).
 * - macOS and other unixes (no abstract namespace): socket files. The path lock is
 *   `<dir>/.lock.sock` (the folder is created if missing); the identity lock is
 *   `/tmp/stockmesh-lock-id-<hash>.sock`. A holder that died leaves its files behind; a connection
 *   to one is then refused, so it is removed and the bind retried once.
 *
 * The holder answers every connection, on either socket, with one JSON line describing itself
 * (`LockHolder`, including the folder as it named it), so a refused process can say who holds the
 * folder and through which path; on an identity socket the line also carries `identity`, the
 * `dev:ino` the holder's folder has now (null: none, it is gone).
 *
 * Limits:
 * - Abstract sockets are per network namespace: two containers with their own network namespace
 *   that mount the same folder do not see each other's lock (neither lock).
 * - A folder on a network share used by two machines is not covered (the lock is per kernel).
 * - The identity is only as good as the filesystem's `st_dev:st_ino`: a filesystem that reports
 *   no inode number (0) gets the path lock only, and one whose numbers are not stable for a
 *   folder (some FUSE filesystems) can give two paths two identities.
 * - A folder that is removed and created again while held gets a new identity that nobody holds
 *   until the holder calls `holdIdentity()` again (which takes it and lets the old one go).
 * - A folder renamed or moved while held is no longer its holder's (the holder goes on using the
 *   old path): another process can lock it under its new name.
 * - A stale holder that does not answer (stopped) still blocks a new folder with its old inode
 *   number, and so do 16 running stale holders of one `dev:ino` (an error says so).
 * - A version of this lock without generations sees only generation 0, and takes it for a folder
 *   whose identity a newer process holds at a higher generation (one that skipped a stale holder).
 * - macOS socket files: two processes that find the same stale file at the same instant can both
 *   remove it and one can unlink the other's fresh socket; that needs a crash followed by two
 *   simultaneous starts. A folder path too long for a socket address (over 103 bytes) gets its
 *   path lock through `/tmp/stockmesh-lock-<hash>.sock` instead.
 * - The same process asking twice for one folder, by any path, is refused too (the second lock
 *   would not protect anything).
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
  /** The folder as the holder named it, resolved (differs from the refused one through a bind mount). */
  dir?: string
}

/** A held data folder lock. */
export interface DataFolderLock {
  /** The folder, resolved: absolute, symlinks followed. */
  readonly dir: string
  /** Changes what the holder tells a refused process (e.g. the API url once it is known); not the folder. */
  update(info: Partial<Omit<LockHolder, 'dir'>>): void
  /**
   * Takes the folder's identity lock (see the module comment) if it is not held yet: call it right
   * after creating the folder and before writing anything into it (the site node, when it
   * provisions), and before using a folder that did not exist when the lock was taken.
   * Resolves true once the identity lock is held (no-op if it already was), false when the folder
   * does not exist and no identity lock was held (nothing is taken or created). Throws
   * `DataFolderLockedError` naming the holder when another process (or another lock of this one)
   * holds the same folder through another path; the path lock stays held until `release()`.
   * Idempotent; concurrent calls share one attempt. Rejects once `release()` was called.
   */
  holdIdentity(): Promise<boolean>
  /** Frees the folder: both locks. Idempotent. */
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
    const alias = holder?.dir !== undefined && holder.dir !== dir ? ` (the same folder as ${holder.dir})` : ''
    super(`data folder ${dir}${alias} is in use by ${describeHolder(holder)}; stop it first, or use another folder`)
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

/** A lock address this process holds or is binding: who (what it answers) and for which folder. */
interface Claim {
  holder: LockHolder
  /** The folder, resolved (what `holder.dir` says, kept apart from what `update()` can reach). */
  dir: string
}

/** Locks this process holds, by socket address: a second ask is refused without touching the OS. */
const heldHere = new Map<string, Claim>()

/** Forgets `claim` of `address`, if it is still the one there. */
function unclaim(address: string, claim: Claim): void {
  if (heldHere.get(address) === claim) heldHere.delete(address)
}

/** The holder of `claim` as a refused process sees it (a copy: later updates do not change an error). */
const holderOf = (claim: Claim): LockHolder => ({ ...claim.holder, dir: claim.dir })

/** How long a refused process waits for the holder to say who it is. */
const ASK_TIMEOUT_MS = 2000
/** Longest holder line read; anything longer is not ours. */
const MAX_ANSWER = 4096
/** Longest unix socket path (macOS sun_path is 104 bytes with the NUL). */
const MAX_SOCKET_PATH = 103
/** Identity lock generations per `dev:ino` (see the module comment). */
const GENERATIONS = 16

interface Endpoint {
  address: string
  /** A socket file that outlives a crashed holder (macOS and other unixes). */
  file: boolean
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')

/** The path lock's address. */
function pathEndpoint(dir: string): Endpoint {
  const hash = sha256(process.platform === 'win32' ? dir.toLowerCase() : dir)
  if (process.platform === 'linux') return { address: `\0stockmesh-lock:${hash}`, file: false }
  if (process.platform === 'win32') return { address: `\\\\?\\pipe\\stockmesh-lock-${hash}`, file: false }
  const inside = path.join(dir, '.lock.sock')
  if (Buffer.byteLength(inside) <= MAX_SOCKET_PATH) return { address: inside, file: true }
  return { address: `/tmp/stockmesh-lock-${hash.slice(0, 32)}.sock`, file: true }
}

/**
 * The address of generation `generation` of the identity lock of `identity` = `dev:ino`.
 * Generation 0 is named as before generations existed, so that such a version and this one meet.
 */
function identityEndpoint(identity: string, generation: number): Endpoint {
  const hash = sha256(generation === 0 ? identity : `${identity}:${generation}`)
  if (process.platform === 'linux') return { address: `\0stockmesh-lock-id:${hash}`, file: false }
  if (process.platform === 'win32') return { address: `\\\\?\\pipe\\stockmesh-lock-id-${hash}`, file: false }
  // Not inside the folder: a folder path too long for an address would have no place for it.
  return { address: `/tmp/stockmesh-lock-id-${hash.slice(0, 32)}.sock`, file: true }
}

/**
 * `st_dev:st_ino` of the folder (bigint: an inode number can exceed 2^53), or undefined when the
 * folder does not exist or the filesystem reports no inode number.
 */
function folderIdentity(dir: string): string | undefined {
  let stat: fs.BigIntStats
  try {
    stat = fs.statSync(dir, { bigint: true })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    throw new Error(`cannot lock data folder ${dir}: ${(error as Error).message}`, { cause: error })
  }
  return stat.ino === 0n ? undefined : `${stat.dev}:${stat.ino}`
}

/**
 * The identity `dir` has now, as a holder reports it: null when it has none (removed, or no inode
 * number), undefined when that cannot be told (e.g. no permission to stat it).
 */
function identityNow(dir: string): string | null | undefined {
  try {
    return folderIdentity(dir) ?? null
  } catch {
    return undefined
  }
}

/** A holder of `identity` whose folder now has `now` no longer holds that folder; one that cannot tell (undefined) still does. */
const isStale = (now: string | null | undefined, identity: string): boolean => now !== undefined && now !== identity

/** One bound lock socket. */
interface Held {
  address: string
  claim: Claim
  server: net.Server
  sockets: Set<net.Socket>
}

/** The line a holder answers with: its `LockHolder`, and `extra` (evaluated at each answer). */
const answerOf = (claim: Claim, extra: () => object = () => ({})) => () => `${JSON.stringify({ ...holderOf(claim), ...extra() })}\n`

/**
 * Claims `ep` in this process (the caller checked nobody here has) and binds it: the bound socket,
 * or who has it ('taken': undefined when it did not answer). The claim is dropped unless bound.
 */
async function claimAndBind(ep: Endpoint, claim: Claim, answer: () => string): Promise<Held | { taken: Answer | undefined }> {
  // Claimed before the first await: two calls in this process cannot both reach the bind.
  heldHere.set(ep.address, claim)
  try {
    const bound = await listenExclusive(claim.dir, ep, answer)
    if ('taken' in bound) unclaim(ep.address, claim)
    return 'taken' in bound ? bound : { address: ep.address, claim, ...bound }
  } catch (error) {
    unclaim(ep.address, claim)
    throw error
  }
}

/** Takes the path lock `ep` for `claim`, or throws `DataFolderLockedError` naming who has it (this process included). */
async function takePath(ep: Endpoint, claim: Claim): Promise<Held> {
  const here = heldHere.get(ep.address)
  if (here) throw new DataFolderLockedError(claim.dir, holderOf(here))
  const bound = await claimAndBind(ep, claim, answerOf(claim))
  if ('taken' in bound) throw new DataFolderLockedError(claim.dir, bound.taken?.holder)
  return bound
}

/**
 * Who holds generation `generation` of `identity` and still has it (this process included):
 * undefined when nobody does (free, or a stale holder), `{ holder: undefined }` for a holder that
 * did not answer.
 */
async function liveHolder(identity: string, generation: number): Promise<{ holder: LockHolder | undefined } | undefined> {
  const { address } = identityEndpoint(identity, generation)
  const here = heldHere.get(address)
  if (here) return isStale(identityNow(here.dir), identity) ? undefined : { holder: holderOf(here) }
  const answer = await askHolder(address)
  if (answer === 'gone') return undefined
  return answer && isStale(answer.identity, identity) ? undefined : { holder: answer?.holder }
}

/**
 * Takes the identity lock of `identity` for `claim` (see the module comment: the first generation
 * that is free or stale, then no live holder at any other), or throws `DataFolderLockedError`
 * naming a live holder (this process included).
 */
async function takeIdentity(identity: string, claim: Claim): Promise<Held> {
  const answer = answerOf(claim, () => ({ identity: identityNow(claim.dir) }))
  let held: Held | undefined
  let generation = 0
  let stale: LockHolder | undefined
  for (; generation < GENERATIONS; generation++) {
    const ep = identityEndpoint(identity, generation)
    const here = heldHere.get(ep.address)
    if (here) {
      if (isStale(identityNow(here.dir), identity)) {
        stale = holderOf(here)
        continue
      }
      throw new DataFolderLockedError(claim.dir, holderOf(here))
    }
    const bound = await claimAndBind(ep, claim, answer)
    if (!('taken' in bound)) {
      held = bound
      break
    }
    if (!bound.taken || !isStale(bound.taken.identity, identity)) throw new DataFolderLockedError(claim.dir, bound.taken?.holder)
    stale = bound.taken.holder
  }
  if (!held) {
    throw new Error(
      `cannot lock data folder ${claim.dir}: its identity (${identity}) is still held by ${GENERATIONS} locks whose folders no longer have it (removed, or replaced), e.g. by ${describeHolder(stale)}; stop them`,
    )
  }
  const mine = generation
  const others = await Promise.all(Array.from({ length: GENERATIONS }, (_, g) => (g === mine ? undefined : liveHolder(identity, g))))
  const conflict = others.find((other) => other !== undefined)
  if (conflict) {
    await close(held)
    throw new DataFolderLockedError(claim.dir, conflict.holder)
  }
  return held
}

function close(held: Held): Promise<void> {
  return new Promise<void>((resolve) => {
    held.server.close(() => resolve())
    // close() waits for open connections; a refused process that never reads would hold it.
    for (const socket of held.sockets) socket.destroy()
  }).finally(() => unclaim(held.address, held.claim))
}

/**
 * Takes the exclusive lock of data folder `dir` or throws `DataFolderLockedError` naming the
 * folder and the holder: the path lock, and the identity lock too when the folder exists (when it
 * does not, call `holdIdentity()` once it is created). Released by `release()` and by the OS when
 * the process dies (crash, SIGKILL). Writes nothing into the folder on Linux and Windows, and does
 * not create it. The lock does not keep the process alive. See the module comment for what it
 * does not cover.
 */
export async function lockDataFolder(dir: string, holder: Omit<LockHolder, 'pid' | 'startedAt' | 'dir'>): Promise<DataFolderLock> {
  const canonical = canonicalDataDir(dir)
  const info: LockHolder = { ...holder, pid: process.pid, startedAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'), dir: canonical }
  const claim: Claim = { holder: info, dir: canonical }
  const byPath = await takePath(pathEndpoint(canonical), claim)

  /** The identity lock and the `dev:ino` it is for. */
  let byIdentity: { held: Held; identity: string } | undefined
  /** The `holdIdentity()` under way, shared by concurrent calls. */
  let holding: Promise<boolean> | undefined
  let released: Promise<void> | undefined
  const acquireIdentity = async (): Promise<boolean> => {
    const identity = folderIdentity(canonical)
    if (identity === undefined) return byIdentity !== undefined
    if (identity === byIdentity?.identity) return true
    // First time, or the folder was removed and made again (a new inode): lock the folder there is now.
    const held = await takeIdentity(identity, claim)
    const previous = byIdentity
    byIdentity = { held, identity }
    if (previous) await close(previous.held)
    return true
  }
  const holdIdentity = (): Promise<boolean> => {
    if (released) return Promise.reject(new Error(`the lock of data folder ${canonical} was released`))
    return (holding ??= acquireIdentity().finally(() => (holding = undefined)))
  }

  try {
    await holdIdentity()
  } catch (error) {
    await close(byPath)
    throw error
  }
  return {
    dir: canonical,
    // The folder is what the lock is for: not something to change (and always answered as locked).
    update: ({ dir: _dir, ...change }: Partial<LockHolder>) => void Object.assign(info, change),
    holdIdentity,
    release: () =>
      (released ??= (async () => {
        // An identity lock being taken right now is released too, once bound.
        await holding?.catch(() => undefined)
        await Promise.all([close(byPath), ...(byIdentity ? [close(byIdentity.held)] : [])])
      })()),
  }
}

/** Binds `ep`, answering each connection with `answer()`: the server, or who has it ('taken'). */
async function listenExclusive(
  dir: string,
  ep: Endpoint,
  answer: () => string,
): Promise<{ server: net.Server; sockets: Set<net.Socket> } | { taken: Answer | undefined }> {
  if (ep.file) await fs.promises.mkdir(path.dirname(ep.address), { recursive: true })
  for (let attempt = 1; ; attempt++) {
    const sockets = new Set<net.Socket>()
    const server = net.createServer((socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      socket.on('error', () => undefined) // the asker went away: nothing to do
      socket.unref()
      socket.end(answer())
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
      const asked = await askHolder(ep.address)
      // Nobody listens: the holder just released it (abstract socket, pipe) or died and left its
      // socket file behind (macOS): bind again, a bounded number of times.
      if (asked === 'gone' && attempt < 3) {
        if (ep.file) await fs.promises.unlink(ep.address).catch(() => undefined)
        continue
      }
      return { taken: asked === 'gone' ? undefined : asked }
    }
    server.on('error', () => undefined) // a listening server's later errors cannot undo the lock
    server.unref()
    return { server, sockets }
  }
}

/** What a holder answered. */
interface Answer {
  holder: LockHolder
  /** On an identity socket: the `dev:ino` its folder has now; null: none; undefined: not said. */
  identity?: string | null
}

/** Asks the holder who it is: its answer, undefined if it does not say, 'gone' if nobody listens. */
function askHolder(address: string): Promise<Answer | undefined | 'gone'> {
  return new Promise((resolve) => {
    let text = ''
    const socket = net.connect({ path: address })
    const done = (value: Answer | undefined | 'gone') => {
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

function parseHolder(line: string): Answer | undefined {
  try {
    const value = JSON.parse(line) as Partial<LockHolder> & { identity?: unknown }
    if (typeof value.pid !== 'number' || typeof value.command !== 'string' || typeof value.startedAt !== 'string') return undefined
    return {
      holder: {
        pid: value.pid,
        command: value.command,
        startedAt: value.startedAt,
        ...(typeof value.url === 'string' ? { url: value.url } : {}),
        ...(typeof value.dir === 'string' ? { dir: value.dir } : {}),
      },
      ...(typeof value.identity === 'string' || value.identity === null ? { identity: value.identity } : {}),
    }
  } catch {
    return undefined
  }
}
