import { mkdtemp, rm } from "node:fs/promises"
import os from "node:os"
import path from "node:path"
import { randomBytes } from "node:crypto"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import type { Chunk, StorageAdapterInterface, StorageKey } from "@automerge/automerge-repo"

/**
 * The behaviour automerge-repo relies on from a storage adapter, as a reusable vitest suite.
 * Run it against the stock adapter too, so the contract is the real one and not our reading of it.
 * `makeAdapter(dir)` may be called more than once per test for the same dir (to check persistence).
 */
export function runStorageAdapterContract(name: string, makeAdapter: (dir: string) => StorageAdapterInterface): void {
  describe(`storage adapter contract: ${name}`, () => {
    let dir: string
    let adapter: StorageAdapterInterface

    beforeEach(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), "stockmesh-contract-"))
      adapter = makeAdapter(dir)
    })
    afterEach(async () => {
      await rm(dir, { recursive: true, force: true })
    })

    // Realistic ids (base58, like automerge DocumentIds); A and B share the 2-char fan-out directory.
    const docA = "3nTYgmTvTg9k7zvd3yDjGm1yx4Ye"
    const docB = "3nQxkB8iFq2W9pVzJ5r7cLmHdTue"
    const docC = "9ZcJ2Pq5wXbT8kLmN4rV7sYhGdFe"
    const bytes = (...xs: number[]) => new Uint8Array(xs)
    const sortChunks = (cs: Chunk[]) =>
      cs.map(c => ({ key: c.key, data: c.data && Array.from(c.data) })).sort((x, y) => x.key.join("/").localeCompare(y.key.join("/")))

    it("round-trips save/load, also through a fresh adapter on the same folder", async () => {
      const key: StorageKey = [docA, "snapshot", "abc123"]
      await adapter.save(key, bytes(1, 2, 3))
      expect(await adapter.load(key)).toEqual(bytes(1, 2, 3))
      expect(await makeAdapter(dir).load(key)).toEqual(bytes(1, 2, 3))
    })

    it("round-trips a single-component key like storage-adapter-id", async () => {
      const id = new TextEncoder().encode("8d6c5f3e-uuid")
      await adapter.save(["storage-adapter-id"], id)
      expect(await makeAdapter(dir).load(["storage-adapter-id"])).toEqual(id)
    })

    it("loads a missing key as undefined and a missing range as []", async () => {
      expect(await adapter.load([docA, "snapshot", "nope"])).toBeUndefined()
      expect(await adapter.loadRange([docA])).toEqual([])
      expect(await adapter.loadRange([docA, "incremental"])).toEqual([])
    })

    it("loadRange returns every chunk under a prefix and a nested prefix, and nothing else", async () => {
      await adapter.save([docA, "snapshot", "s1"], bytes(1))
      await adapter.save([docA, "incremental", "i1"], bytes(2))
      await adapter.save([docA, "incremental", "i2"], bytes(3))
      await adapter.save([docB, "snapshot", "s1"], bytes(4))
      await adapter.save([docC, "snapshot", "s1"], bytes(5))
      await adapter.save(["storage-adapter-id"], bytes(6))

      for (const a of [adapter, makeAdapter(dir)]) {
        expect(sortChunks(await a.loadRange([docA]))).toEqual([
          { key: [docA, "incremental", "i1"], data: [2] },
          { key: [docA, "incremental", "i2"], data: [3] },
          { key: [docA, "snapshot", "s1"], data: [1] },
        ])
        expect(sortChunks(await a.loadRange([docA, "incremental"]))).toEqual([
          { key: [docA, "incremental", "i1"], data: [2] },
          { key: [docA, "incremental", "i2"], data: [3] },
        ])
        expect(sortChunks(await a.loadRange([docB]))).toEqual([{ key: [docB, "snapshot", "s1"], data: [4] }])
      }
    })

    it("remove deletes one key and tolerates a missing one", async () => {
      await adapter.save([docA, "incremental", "i1"], bytes(1))
      await adapter.save([docA, "incremental", "i2"], bytes(2))
      await adapter.remove([docA, "incremental", "i1"])
      await adapter.remove([docA, "incremental", "never-existed"])
      await adapter.remove([docC, "snapshot", "never-existed"])
      for (const a of [adapter, makeAdapter(dir)]) {
        expect(await a.load([docA, "incremental", "i1"])).toBeUndefined()
        expect(sortChunks(await a.loadRange([docA]))).toEqual([{ key: [docA, "incremental", "i2"], data: [2] }])
      }
    })

    it("removeRange deletes everything under a prefix only, and tolerates a missing prefix", async () => {
      await adapter.save([docA, "snapshot", "s1"], bytes(1))
      await adapter.save([docA, "incremental", "i1"], bytes(2))
      await adapter.save([docB, "snapshot", "s1"], bytes(3))
      await adapter.removeRange([docA, "incremental"])
      expect(sortChunks(await adapter.loadRange([docA]))).toEqual([{ key: [docA, "snapshot", "s1"], data: [1] }])
      await adapter.removeRange([docA])
      await adapter.removeRange([docC])
      await adapter.removeRange([docC, "sync-state"])
      for (const a of [adapter, makeAdapter(dir)]) {
        expect(await a.loadRange([docA])).toEqual([])
        expect(await a.load([docA, "snapshot", "s1"])).toBeUndefined()
        expect(sortChunks(await a.loadRange([docB]))).toEqual([{ key: [docB, "snapshot", "s1"], data: [3] }])
      }
    })

    it("overwrites the same key, shorter after longer, with no leftover bytes", async () => {
      const key: StorageKey = [docA, "sync-state", "peer-storage-id"]
      await adapter.save(key, new Uint8Array(4096).fill(7))
      await adapter.save(key, bytes(9, 9))
      expect(await adapter.load(key)).toEqual(bytes(9, 9))
      expect(await makeAdapter(dir).load(key)).toEqual(bytes(9, 9))
      expect(await adapter.loadRange([docA, "sync-state"])).toHaveLength(1)
    })

    it("keeps binary data intact: every byte value, empty, and a 3 MB random blob", async () => {
      const all = Uint8Array.from({ length: 256 }, (_, i) => i)
      const big = new Uint8Array(randomBytes(3 * 1024 * 1024))
      await adapter.save([docA, "snapshot", "all"], all)
      await adapter.save([docA, "snapshot", "empty"], new Uint8Array(0))
      await adapter.save([docA, "snapshot", "big"], big)
      const fresh = makeAdapter(dir)
      expect(await fresh.load([docA, "snapshot", "all"])).toEqual(all)
      expect(await fresh.load([docA, "snapshot", "empty"])).toEqual(new Uint8Array(0))
      const loaded = await fresh.load([docA, "snapshot", "big"])
      expect(loaded).toBeInstanceOf(Uint8Array)
      expect(Buffer.from(loaded!).equals(Buffer.from(big))).toBe(true)
    })
  })
}
