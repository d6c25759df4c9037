import { spawn } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { Repo, type AutomergeUrl, type StorageAdapterInterface, type StorageKey } from "@automerge/automerge-repo"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import { DurableFsStorageAdapter } from "../../../src/node/storage/DurableFsStorageAdapter.ts"
import { runStorageAdapterContract } from "../../helpers/storageContract.ts"
import { chaosSeeds, prng, testSeed } from "../../helpers/seed.ts"
import { CRASH_KEYS } from "./fixtures/crashWriter.ts"

const ROOT = fileURLToPath(new URL("../../..", import.meta.url))
const WRITER = fileURLToPath(new URL("./fixtures/crashWriter.ts", import.meta.url))

runStorageAdapterContract("DurableFsStorageAdapter", dir => new DurableFsStorageAdapter(dir))
runStorageAdapterContract("NodeFSStorageAdapter (stock, reference)", dir => new NodeFSStorageAdapter(dir))

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "stockmesh-durable-"))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Every path under `root` (files and directories) whose name marks it as a temp entry. */
async function tempEntries(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true }).catch(() => [] as string[])
  return entries.filter(p => path.basename(p).startsWith(".tmp-"))
}

type Ledger = { lines: string[]; items: { sku: string; qty: number }[] }

async function writeLedger(repo: Repo, changes: number) {
  const handle = repo.create<Ledger>({ lines: [], items: [] })
  for (let i = 0; i < changes; i++) {
    handle.change(d => {
      d.lines.push(`move ${i}`)
      d.items.push({ sku: `SKU-${i % 7}`, qty: i })
    })
  }
  await repo.flush()
  const expected = structuredClone(handle.doc())
  await repo.shutdown()
  return { url: handle.url, expected }
}

async function readLedger(storage: StorageAdapterInterface, url: AutomergeUrl) {
  const repo = new Repo({ storage, network: [] })
  try {
    const handle = await repo.find<Ledger>(url)
    return structuredClone(handle.doc())
  } finally {
    await repo.shutdown()
  }
}

describe("DurableFsStorageAdapter with a real Repo", () => {
  it("reads a data folder written by the stock NodeFSStorageAdapter (and vice versa)", async () => {
    const fromStock = await writeLedger(new Repo({ storage: new NodeFSStorageAdapter(dir), network: [] }), 20)
    expect(await readLedger(new DurableFsStorageAdapter(dir), fromStock.url)).toEqual(fromStock.expected)

    const fromOurs = await writeLedger(new Repo({ storage: new DurableFsStorageAdapter(dir), network: [] }), 20)
    expect(await readLedger(new NodeFSStorageAdapter(dir), fromOurs.url)).toEqual(fromOurs.expected)
  })

  it("round-trips a document changed many times through flush, shutdown and a new Repo", async () => {
    const calls: Record<string, number> = {}
    const counting = new Proxy(new DurableFsStorageAdapter(dir), {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver)
        if (typeof value !== "function") return value
        return (...args: unknown[]) => {
          calls[String(prop)] = (calls[String(prop)] ?? 0) + 1
          return value.apply(target, args)
        }
      },
    })
    const { url, expected } = await writeLedger(new Repo({ storage: counting, network: [] }), 500)
    console.log(`[storage calls] 500 synchronous changes + flush + shutdown: ${JSON.stringify(calls)}`)
    expect(expected.lines).toHaveLength(500)
    expect(await readLedger(new DurableFsStorageAdapter(dir), url)).toEqual(expected)
    expect(await tempEntries(dir)).toEqual([])
  })
})

describe("DurableFsStorageAdapter edge cases", () => {
  const key: StorageKey = ["5kEdgeCaseDocument9x", "snapshot", "s"]

  it("concurrent saves of one key never interleave: the result is exactly one of them", async () => {
    const adapter = new DurableFsStorageAdapter(dir)
    const versions = Array.from({ length: 8 }, () => new Uint8Array(randomBytes(1024 * 1024)))
    await Promise.all(versions.map(v => adapter.save(key, v)))
    const loaded = Buffer.from((await new DurableFsStorageAdapter(dir).load(key))!)
    expect(versions.filter(v => loaded.equals(Buffer.from(v)))).toHaveLength(1)
    expect(await tempEntries(dir)).toEqual([])
  })

  it("a failing save rejects with a descriptive Error instead of throwing synchronously", async () => {
    const base = path.join(dir, "data")
    await writeFile(base, "this is a file, not a directory")
    const adapter = new DurableFsStorageAdapter(base)
    let pending: Promise<void> | undefined
    expect(() => {
      pending = adapter.save(key, new Uint8Array([1]))
    }).not.toThrow()
    const error = await pending!.then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(Error)
    expect((error as Error).message).toMatch(/DurableFsStorageAdapter\.save\(.*5kEdgeCaseDocument9x.*\) in .*data failed: .*ENOTDIR/)
    expect(((error as Error).cause as NodeJS.ErrnoException).code).toBe("ENOTDIR")
    // Reads of a broken base are "nothing there", not crashes.
    expect(await adapter.load(key)).toBeUndefined()
    expect(await adapter.loadRange([key[0]!])).toEqual([])
  })

  it("rejects keys that could not round-trip or would be mistaken for temp files", async () => {
    const adapter = new DurableFsStorageAdapter(dir)
    for (const bad of [[], ["ab"], ["docdocdoc", "../escape"], ["docdocdoc", ".tmp-123-abc"], ["docdocdoc", ""]]) {
      await expect(adapter.save(bad, new Uint8Array([1]))).rejects.toThrow(/invalid storage key|3\+ chars|empty storage key/)
    }
  })

  it("loadRange lists this instance's saves in save order, after older chunks sorted by key", async () => {
    const doc = "7pLoadRangeOrderDoc"
    const older = new DurableFsStorageAdapter(dir)
    await older.save([doc, "sync-state", "b"], new Uint8Array([1]))
    await older.save([doc, "snapshot", "a"], new Uint8Array([2]))
    const adapter = new DurableFsStorageAdapter(dir)
    // Across directories and against key order, as upstream's acceptance suite saves them.
    await adapter.save([doc, "sync-state", "z"], new Uint8Array([3]))
    await adapter.save([doc, "incremental", "y"], new Uint8Array([4]))
    await adapter.save([doc, "sync-state", "x"], new Uint8Array([5]))
    await adapter.save([doc, "sync-state", "z"], new Uint8Array([6])) // an overwrite keeps its place
    const keys = async (prefix: StorageKey) => (await adapter.loadRange(prefix)).map(c => c.key.slice(1).join("/"))
    expect(await keys([doc])).toEqual(["snapshot/a", "sync-state/b", "sync-state/z", "incremental/y", "sync-state/x"])
    expect(await keys([doc, "sync-state"])).toEqual(["sync-state/b", "sync-state/z", "sync-state/x"])
    // Removed keys lose their place: saved again, they go last.
    await adapter.remove([doc, "sync-state", "z"])
    await adapter.save([doc, "sync-state", "z"], new Uint8Array([7]))
    await adapter.removeRange([doc, "incremental"])
    await adapter.save([doc, "incremental", "y"], new Uint8Array([8]))
    expect(await keys([doc])).toEqual(["snapshot/a", "sync-state/b", "sync-state/x", "sync-state/z", "incremental/y"])
  })

  it("sweeps stale temp entries of dead writers, leaves live ones, never returns them", async () => {
    const adapter = new DurableFsStorageAdapter(dir)
    await adapter.save(key, new Uint8Array([1, 2, 3]))
    const keyDir = path.join(dir, "5k", "EdgeCaseDocument9x", "snapshot")
    const dead = path.join(keyDir, ".tmp-999999999-deadbeef") // no such pid
    const live = path.join(keyDir, `.tmp-${process.ppid}-cafe`) // our parent: alive, not ours
    await writeFile(dead, "torn")
    await writeFile(live, "in flight elsewhere")
    expect((await adapter.loadRange([key[0]!])).map(c => c.key)).toEqual([key])
    const fresh = new DurableFsStorageAdapter(dir)
    expect((await fresh.loadRange([key[0]!])).map(c => c.key)).toEqual([key])
    expect((await tempEntries(dir)).map(p => path.basename(p))).toEqual([path.basename(live)])
  })
})

// ---------------------------------------------------------------------------------------------
// Crash test: a child process saves large chunks flat out and is SIGKILLed at random moments.

type Entry = { key: number; announced: number; lastRename: number; acked: boolean }
type Log = { bySha: Map<string, Entry>; seq: number }

/** Run one writer child until killed `delayMs` after it is ready; fold its stdout into `log`. */
async function crashRound(dataDir: string, kind: "durable" | "nodefs", seed: number, delayMs: number, log: Log) {
  const child = spawn(process.execPath, ["--import", "tsx", WRITER, dataDir, kind, String(seed)], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  })
  const inFlight: Entry[] = []
  let buffered = ""
  let stderr = ""
  let ready!: () => void
  const isReady = new Promise<void>(resolve => (ready = resolve))
  child.stderr.on("data", (d: Buffer) => (stderr += d))
  child.stdout.on("data", (d: Buffer) => {
    const lines = (buffered + d).split("\n")
    buffered = lines.pop()!
    for (const line of lines) {
      const [what, k, sha] = line.split(" ")
      const seq = ++log.seq
      if (what === "ready") ready()
      else if (what === "saving") {
        const entry = { key: Number(k), announced: seq, lastRename: Infinity, acked: false }
        log.bySha.set(sha!, entry)
        inFlight.push(entry)
      } else if (what === "saved") Object.assign(log.bySha.get(sha!)!, { lastRename: seq, acked: true })
    }
  })
  const exited = new Promise<NodeJS.Signals | null>(resolve => child.on("close", (_code, signal) => resolve(signal)))
  await Promise.race([isReady, exited])
  await new Promise(resolve => setTimeout(resolve, delayMs))
  child.kill("SIGKILL")
  const signal = await exited
  if (signal !== "SIGKILL") throw new Error(`writer exited by itself (${signal}): ${stderr}`)
  // A save in flight at the kill may have renamed at any point up to now, never later.
  const killedAt = ++log.seq
  for (const e of inFlight) if (!e.acked) e.lastRename = Math.min(e.lastRename, killedAt)
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest()
/** Chunks are sha256(payload) ‖ payload: complete iff the header matches. */
const isComplete = (b: Uint8Array) => b.length >= 32 && sha256(b.subarray(32)).equals(b.subarray(0, 32))

describe("crash safety under SIGKILL", () => {
  it.each(chaosSeeds("DurableFsStorageAdapter crash"))("after every kill each key holds one complete chunk, at least as new as the last acknowledged (STOCKMESH_SEED=%i)", async (seed) => {
    const rand = prng(seed)
    const log: Log = { bySha: new Map(), seq: 0 }
    const ROUNDS = 20
    let staleTemps = 0
    let unackedSurvivors = 0
    for (let round = 0; round < ROUNDS; round++) {
      const delay = 20 + Math.floor(rand() * 230)
      await crashRound(dir, "durable", seed + round, delay, log)
      staleTemps += (await tempEntries(dir)).length
      const adapter = new DurableFsStorageAdapter(dir)
      const ctx = `seed ${seed}, round ${round}, kill after ${delay} ms`

      for (const [k, key] of CRASH_KEYS.entries()) {
        const data = await adapter.load(key)
        const acked = [...log.bySha.values()].filter(e => e.key === k && e.acked)
        if (data === undefined) {
          expect(acked, `${ctx}: key ${k} acknowledged but missing`).toEqual([])
          continue
        }
        expect(isComplete(data), `${ctx}: key ${k} torn (${data.length} bytes)`).toBe(true)
        const entry = log.bySha.get(sha256(data).toString("hex"))
        expect(entry?.key, `${ctx}: key ${k} holds content never written to it`).toBe(k)
        if (!entry!.acked) unackedSurvivors++
        // Older than an acknowledged save = that save was lost: it must have renamed after every acked save began.
        const newestAckedStart = Math.max(...acked.map(e => e.announced))
        expect(entry!.lastRename, `${ctx}: key ${k} went back past an acknowledged save`).toBeGreaterThan(newestAckedStart)
      }

      const chunks = (await Promise.all([...new Set(CRASH_KEYS.map(k => k[0]!))].map(d => adapter.loadRange([d])))).flat()
      for (const chunk of chunks) {
        expect(CRASH_KEYS.map(k => k.join("/")), `${ctx}: loadRange returned ${chunk.key.join("/")}`).toContain(chunk.key.join("/"))
        expect(isComplete(chunk.data!), `${ctx}: loadRange returned a torn chunk`).toBe(true)
      }
      expect(await tempEntries(dir), `${ctx}: stale temp files survived the sweep`).toEqual([])
    }
    console.log(
      `[crash] ${ROUNDS} SIGKILL rounds, ${log.bySha.size} saves started, ` +
        `${[...log.bySha.values()].filter(e => e.acked).length} acknowledged, ` +
        `${staleTemps} stale temp entries swept, ${unackedSurvivors} key reads found an unacknowledged (in-flight) save`,
    )
  }, 60_000) // ~15 s normally (20 child starts through tsx); headroom for a loaded CI box

  it("the stock NodeFSStorageAdapter leaves torn chunks under the same treatment", async () => {
    const seed = testSeed("NodeFSStorageAdapter crash") + 1
    const rand = prng(seed)
    const log: Log = { bySha: new Map(), seq: 0 }
    let torn = 0
    let rounds = 0
    while (torn === 0 && rounds < 12) {
      await crashRound(dir, "nodefs", seed + rounds, 20 + Math.floor(rand() * 230), log)
      rounds++
      const stock = new NodeFSStorageAdapter(dir) // fresh: its cache is empty, so this reads the disk
      for (const key of CRASH_KEYS) {
        const data = await stock.load(key)
        if (data !== undefined && !isComplete(data)) torn++
      }
    }
    console.log(`[crash] stock adapter: first torn chunk after ${rounds} round(s), ${torn} torn key(s) in that round`)
    expect(torn).toBeGreaterThan(0)
  })
})
