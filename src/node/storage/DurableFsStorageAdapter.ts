import { promises as fsp } from "node:fs"
import path from "node:path"
import { randomBytes } from "node:crypto"
import type { Chunk, StorageAdapterInterface, StorageKey } from "@automerge/automerge-repo"

// Why this exists: the stock NodeFSStorageAdapter (2.5.6) writes each chunk in place with
// fs.writeFile — no temp file, no fsync, no rename — so a crash mid-write leaves a torn
// snapshot and the document no longer loads ("unable to parse chunk: not enough data").
// It also caches every chunk it ever saved in memory. Upstream fix in progress:
// https://github.com/automerge/automerge-repo/pull/600 (see also
// https://github.com/automerge/automerge-repo/issues).

/** Names starting with this are ours (in-flight writes or removals), never keys. */
const TMP = ".tmp-"
/** Temp paths this process is using right now, shared by every adapter instance. */
const inFlight = new Set<string>()
/** Filesystems that cannot fsync a directory (tmpfs on some kernels, SMB, Windows). */
const NO_DIR_FSYNC = new Set(["EISDIR", "EINVAL", "EPERM", "EACCES", "ENOTSUP", "EBADF"])

const tmpName = () => `${TMP}${process.pid}-${randomBytes(8).toString("hex")}`
const code = (e: unknown) => (e as NodeJS.ErrnoException)?.code
const isMissing = (e: unknown) => ["ENOENT", "ENOTDIR", "EISDIR"].includes(code(e) ?? "")
/** `fallback` if the path (or a parent) does not exist; any other failure propagates. */
const orMissing = <T, F>(p: Promise<T>, fallback: F): Promise<T | F> =>
  p.catch((e: unknown) => {
    if (isMissing(e)) return fallback
    throw e
  })

/**
 * A crash-safe automerge-repo storage adapter for Node, drop-in compatible with the on-disk
 * layout of `NodeFSStorageAdapter` (`[docId, kind, x]` → `<base>/<docId[0:2]>/<docId[2:]>/<kind>/<x>`).
 *
 * Every save writes a unique `.tmp-<pid>-<rand>` file in the target directory, fsyncs it,
 * renames it over the target and fsyncs the directory; new directories are fsynced into their
 * parents. A reader therefore only ever sees a complete old or complete new chunk, and a
 * resolved save survives power loss. Removals rename the file/directory to a temp name first,
 * so a crash never leaves half of one `removeRange`. Stale temp entries of dead processes are
 * swept before the first operation. No chunk data is cached in memory; all errors are rejections.
 *
 * `loadRange` returns chunks in save order, as automerge-repo's acceptance suite expects (the stock
 * adapter gets that order from its in-memory chunk cache). The file layout has no room for a
 * sequence number, so that order is only known for keys this instance saved: it remembers their
 * names (not their data) and lists them last, after any older chunks found on disk, which come
 * sorted by key. Automerge loads concatenated chunks in any order, so nothing depends on it for
 * correctness; it only makes loadRange deterministic and agree with the other adapters.
 */
export class DurableFsStorageAdapter implements StorageAdapterInterface {
  readonly #base: string
  #swept: Promise<void> | undefined
  /** Key (joined with "/") → position of its first save by this instance; see the class comment. */
  readonly #saveOrder = new Map<string, number>()
  #nextSave = 0

  /** @param baseDirectory - data folder; created on first save if missing. */
  constructor(baseDirectory: string) {
    this.#base = path.resolve(baseDirectory)
  }

  async load(key: StorageKey): Promise<Uint8Array | undefined> {
    return this.#op("load", key, async () => orMissing(fsp.readFile(this.#path(key)).then(b => new Uint8Array(b)), undefined))
  }

  async save(key: StorageKey, data: Uint8Array): Promise<void> {
    return this.#op("save", key, async () => {
      const file = this.#path(key)
      // Numbered when the save starts, not when it lands, so concurrent saves list in the order they were asked for.
      const id = key.join("/")
      const isNew = !this.#saveOrder.has(id)
      if (isNew) this.#saveOrder.set(id, this.#nextSave++)
      try {
        await this.#write(file, data)
      } catch (e) {
        if (isNew) this.#saveOrder.delete(id)
        throw e
      }
    })
  }

  /** Temp file, fsync, rename over `file`, fsync the directory. */
  async #write(file: string, data: Uint8Array): Promise<void> {
    const dir = path.dirname(file)
    // A concurrent removeRange may move the directory away mid-save: retry once into a fresh one.
    for (let attempt = 1; ; attempt++) {
      await ensureDir(dir)
      const tmp = path.join(dir, tmpName())
      inFlight.add(tmp)
      try {
        const fh = await fsp.open(tmp, "wx")
        try {
          await fh.writeFile(data)
          await fh.sync()
        } finally {
          await fh.close()
        }
        await fsp.rename(tmp, file)
        break
      } catch (e) {
        await fsp.rm(tmp, { force: true }).catch(() => {})
        if (attempt >= 2 || code(e) !== "ENOENT") throw e
      } finally {
        inFlight.delete(tmp)
      }
    }
    await fsyncDir(dir)
  }

  /** Files `append` created and whose directory entry is durable. */
  readonly #appendable = new Set<string>()

  /**
   * Appends `data` to the file of `key` (created when missing) and returns once it is on disk: one
   * fdatasync, plus a directory fsync the first time this instance appends to a file. Cheaper than
   * `save` (temp file, fsync, rename, directory fsync) for a log that grows by small records; the
   * caller frames its records so that a torn tail after a crash can be recognised and cut
   * (`truncate`). Appends to one key must not run concurrently.
   */
  async append(key: StorageKey, data: Uint8Array): Promise<void> {
    return this.#op("append", key, async () => {
      const file = this.#path(key)
      const dir = path.dirname(file)
      const known = this.#appendable.has(file)
      if (!known) await ensureDir(dir)
      const fh = await fsp.open(file, "a")
      try {
        await fh.writeFile(data) // every byte (a single write may be short, e.g. on a full disk)
        await fh.datasync()
      } finally {
        await fh.close()
      }
      if (!known) {
        await fsyncDir(dir)
        this.#appendable.add(file)
      }
    })
  }

  /** Cuts the file of `key` to `length` bytes, durably (a torn record at the end of a log). */
  async truncate(key: StorageKey, length: number): Promise<void> {
    return this.#op("truncate", key, async () => {
      const fh = await fsp.open(this.#path(key), "r+")
      try {
        await fh.truncate(length)
        await fh.sync()
      } finally {
        await fh.close()
      }
    })
  }

  /** The size in bytes of the file of `key`, or undefined when there is none. */
  async sizeOf(key: StorageKey): Promise<number | undefined> {
    return this.#op("sizeOf", key, async () => orMissing(fsp.stat(this.#path(key)).then((st) => st.size), undefined))
  }

  async remove(key: StorageKey): Promise<void> {
    return this.#op("remove", key, async () => {
      this.#appendable.delete(this.#path(key))
      // No directory fsync: automerge-repo removes a chunk only after the snapshot that supersedes
      // it is durable, so a chunk a crash brings back is a harmless duplicate. Fsyncing the
      // directory for each of hundreds of removes made every compaction a 140–290 ms stall inside
      // a user's posting (BENCHMARKS.md).
      await orMissing(fsp.unlink(this.#path(key)), undefined)
      this.#saveOrder.delete(key.join("/"))
    })
  }

  async loadRange(keyPrefix: StorageKey): Promise<Chunk[]> {
    return this.#op("loadRange", keyPrefix, async () => {
      const files = await walk(this.#path(keyPrefix), true)
      const chunks = await Promise.all(
        files.map(async (file): Promise<Chunk | undefined> => {
          const [a, b, ...rest] = path.relative(this.#base, file).split(path.sep)
          if (a === undefined || b === undefined) return undefined // stray file, not a key
          const data = await orMissing(fsp.readFile(file), undefined) // undefined: removed since listed
          return data && { key: [a + b, ...rest], data: new Uint8Array(data) }
        }),
      )
      return this.#inSaveOrder(chunks.filter((c): c is Chunk => c !== undefined))
    })
  }

  /**
   * The keys stored under `keyPrefix`, without reading the data (a directory listing): e.g. the
   * chunk names of a document, which change whenever its content does (src/node/journalCache.ts).
   */
  async listKeys(keyPrefix: StorageKey): Promise<StorageKey[]> {
    return this.#op("listKeys", keyPrefix, async () => {
      const files = await walk(this.#path(keyPrefix), true)
      return files.flatMap((file) => {
        const [a, b, ...rest] = path.relative(this.#base, file).split(path.sep)
        return a === undefined || b === undefined ? [] : [[a + b, ...rest]]
      })
    })
  }

  async removeRange(keyPrefix: StorageKey): Promise<void> {
    return this.#op("removeRange", keyPrefix, async () => {
      // Rename first (atomic, and invisible to loadRange), make that durable, then delete at leisure:
      // a crash never leaves half of the prefix behind.
      const victim = this.#path(keyPrefix)
      for (const file of this.#appendable) if (file === victim || file.startsWith(victim + path.sep)) this.#appendable.delete(file)
      const prefix = keyPrefix.join("/")
      for (const id of this.#saveOrder.keys()) if (id === prefix || id.startsWith(`${prefix}/`)) this.#saveOrder.delete(id)
      const tmp = path.join(path.dirname(victim), tmpName())
      inFlight.add(tmp)
      try {
        await fsp.rename(victim, tmp)
        await fsyncDir(path.dirname(victim))
        await fsp.rm(tmp, { recursive: true, force: true })
      } catch (e) {
        if (!isMissing(e)) throw e
      } finally {
        inFlight.delete(tmp)
      }
    })
  }

  /** Chunks not saved by this instance first, by key; then this instance's, in the order they were first saved. */
  #inSaveOrder(chunks: Chunk[]): Chunk[] {
    const rank = (c: Chunk) => this.#saveOrder.get(c.key.join("/")) ?? -1
    const byKey = (a: Chunk, b: Chunk) => {
      const x = a.key.join("/")
      const y = b.key.join("/")
      return x < y ? -1 : x > y ? 1 : 0
    }
    return chunks.sort((a, b) => rank(a) - rank(b) || byKey(a, b))
  }

  /** Run one operation after the startup sweep, turning every failure into a descriptive rejection. */
  async #op<T>(name: string, key: StorageKey, fn: () => Promise<T>): Promise<T> {
    this.#swept ??= sweep(this.#base).catch(() => {}) // best effort: a failed sweep never fails an op
    await this.#swept
    try {
      return await fn()
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e)
      throw new Error(`DurableFsStorageAdapter.${name}(${JSON.stringify(key)}) in ${this.#base} failed: ${why}`, { cause: e })
    }
  }

  /** Same mapping as NodeFSStorageAdapter; rejects keys that would not round-trip through loadRange. */
  #path(key: StorageKey): string {
    for (const part of key) {
      if (!part || part === "." || part === ".." || /[/\\\0]/.test(part) || part.startsWith(TMP))
        throw new Error(`invalid storage key component ${JSON.stringify(part)}`)
    }
    const [first, ...rest] = key
    if (first === undefined) throw new Error("empty storage key")
    if (first.length < 3) throw new Error(`first storage key component must be 3+ chars, got ${JSON.stringify(first)}`)
    return path.join(this.#base, first.slice(0, 2), first.slice(2), ...rest)
  }
}

/** All complete files under `p` (or `p` itself if it is a file), skipping temp entries. */
async function walk(p: string, top = false): Promise<string[]> {
  let entries
  try {
    entries = await fsp.readdir(p, { withFileTypes: true })
  } catch (e) {
    if (top && code(e) === "ENOTDIR") return [p]
    if (isMissing(e)) return []
    throw e
  }
  const nested = await Promise.all(
    entries
      .filter(d => !d.name.startsWith(TMP))
      .map(d => (d.isDirectory() ? walk(path.join(p, d.name)) : d.isFile() ? [path.join(p, d.name)] : [])),
  )
  return nested.flat()
}

/** mkdir -p that also fsyncs each parent that gained a new entry. */
async function ensureDir(dir: string): Promise<void> {
  try {
    if ((await fsp.stat(dir)).isDirectory()) return
  } catch (e) {
    if (code(e) !== "ENOENT") throw e
  }
  const parent = path.dirname(dir)
  if (parent !== dir) await ensureDir(parent)
  try {
    await fsp.mkdir(dir)
  } catch (e) {
    if (code(e) !== "EEXIST") throw e
  }
  await fsyncDir(parent)
}

async function fsyncDir(dir: string): Promise<void> {
  let fh
  try {
    fh = await fsp.open(dir, "r")
    await fh.sync()
  } catch (e) {
    if (!NO_DIR_FSYNC.has(code(e) ?? "") && code(e) !== "ENOENT") throw e
  } finally {
    await fh?.close()
  }
}

/** Delete `.tmp-<pid>-*` entries whose writer is gone (a dead pid, or our pid but not in flight). */
async function sweep(dir: string): Promise<void> {
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => [])
  await Promise.all(
    entries.map(async d => {
      const full = path.join(dir, d.name)
      if (!d.name.startsWith(TMP)) return d.isDirectory() ? sweep(full) : undefined
      const pid = Number(d.name.slice(TMP.length).split("-")[0])
      if (pid === process.pid ? !inFlight.has(full) : !pidAlive(pid)) await fsp.rm(full, { recursive: true, force: true })
    }),
  )
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return code(e) === "EPERM" // exists, owned by someone else
  }
}
