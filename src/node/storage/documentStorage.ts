/**
 * How a site node's Repo loads and saves documents: automerge-repo 2.5.6's own StorageSubsystem
 * `loadDoc` / `saveDoc` replaced on the Repo's instance, over the same storage adapter and the same
 * key layout (`[id, 'snapshot', headsHash]`, `[id, 'incremental', sha256]`), so a data folder
 * written either way loads either way.
 *
 * Why (BENCHMARKS.md sections 1, 2; issue 7):
 * - Loading: automerge-repo loads with `A.loadIncremental(A.init(), chunks)`, 2–3x the CPU of
 *   `A.load(chunks)` (which takes the same concatenated snapshot + incremental chunks, in any order).
 *   A restarted site loads its catalog and latest journals before it can record.
 * - Saving: automerge-repo compacts a document (rewrites it as one snapshot, then removes every
 *   superseded chunk) inside the save that finds its incrementals outgrew its snapshot, so the
 *   movement whose flush triggers it waits for `A.save` of the whole journal and hundreds of file
 *   removals. Here a save only ever appends an incremental chunk; compaction is a separate step
 *   ({@link DocumentStorage.compact}) the node runs when no movement is being recorded.
 * - Unloading: `repo.removeFromCache` swaps the document for an empty one and that empty document
 *   reaches `saveDoc` (automerge-repo #435: the stock rule then writes an empty snapshot and deletes
 *   every chunk). Here a save never removes anything, and an empty document is never saved over a
 *   document with content, so unloading a flushed journal and loading it again loses nothing.
 *
 * A save appends `A.saveSince(doc, heads saved before)`: changes already saved may be saved again
 * (harmless: a chunk is named by its content, and loading skips changes it has). Saves of one
 * document run one at a time. Nothing is cached but each document's saved heads and chunk list.
 */
import { createHash } from 'node:crypto'
import { crc32 } from 'node:zlib'
import * as A from '@automerge/automerge'
import type { DocumentId, Repo, StorageAdapterInterface, StorageKey } from '@automerge/automerge-repo'

interface ChunkInfo {
  key: StorageKey
  type: 'snapshot' | 'incremental'
  size: number
}

/** An adapter that can append to a file durably (DurableFsStorageAdapter): incrementals go to one log per document. */
interface Appending {
  append(key: StorageKey, data: Uint8Array): Promise<void>
  truncate(key: StorageKey, length: number): Promise<void>
}

/** The key of a document's change log: `[id, 'log', 'changes']`. */
export const logKey = (documentId: string): StorageKey => [documentId, 'log', 'changes']

/** A log record: payload length (u32 LE), CRC-32 of the payload (u32 LE), payload. */
function frame(payload: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(8 + payload.length)
  out.writeUInt32LE(payload.length, 0)
  out.writeUInt32LE(crc32(payload), 4)
  out.set(payload, 8)
  return out
}

/** The payloads of a log's complete records, and where the last complete record ends (a crash may leave a torn one after it). */
export function readLog(log: Uint8Array): { payloads: Uint8Array[]; valid: number } {
  const buf = Buffer.from(log.buffer, log.byteOffset, log.byteLength)
  const payloads: Uint8Array[] = []
  let at = 0
  while (at + 8 <= buf.length) {
    const length = buf.readUInt32LE(at)
    const end = at + 8 + length
    if (end > buf.length) break
    const payload = buf.subarray(at + 8, end)
    if (crc32(payload) !== buf.readUInt32LE(at + 4)) break
    payloads.push(payload)
    at = end
  }
  return { payloads, valid: at }
}

interface DocState {
  /** Heads of what is on disk (at least). */
  heads: A.Heads
  chunks: ChunkInfo[]
  /**
   * True once every chunk on disk is known to be in memory (a load that succeeded, or nothing on
   * disk): only then may a compaction remove chunks.
   */
  complete: boolean
  /** Bytes of whole records in the change log, as far as this process knows. */
  logLength: number
  /** The tail of this document's saves and compactions, run one at a time. */
  queue: Promise<unknown>
}

const sha256hex = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex')
/** automerge-repo's `headsHash`: sha256 of the concatenated hex heads. */
const headsHash = (heads: A.Heads) => sha256hex(heads.join(''))
/** Same heads, in any order (document heads here, or the encoded heads of a handle's sync info). */
export function sameHeads(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  const set = new Set(a)
  return b.every((h) => set.has(h))
}

export class DocumentStorage {
  readonly #docs = new Map<DocumentId, DocState>()
  readonly #log: Appending | undefined
  /** Set on documents whose incrementals outgrew their snapshot (compact them when idle). */
  readonly #toCompact = new Set<DocumentId>()
  /** Called after a save leaves a document worth compacting. */
  onCompactable: ((documentId: DocumentId) => void) | undefined
  /** Called after a save leaves a document overdue for compaction (see `#overdue`). */
  onOverdue: ((documentId: DocumentId) => void) | undefined
  /** Called after the first save of a document this process did not load: created here, or arrived by sync. */
  onFirstSaved: ((documentId: DocumentId, doc: A.Doc<unknown>) => void) | undefined
  /** Called after a document was loaded from disk (by `find`, or because a peer asked for it). */
  onLoaded: ((documentId: DocumentId) => void) | undefined
  /** Called when a change log held damaged records before its end (a copy is kept beside it). */
  onDamage: ((documentId: DocumentId, detail: { valid: number; length: number; copy: StorageKey }) => void) | undefined

  constructor(readonly adapter: StorageAdapterInterface & Partial<Appending>) {
    const { append, truncate } = adapter
    this.#log = append && truncate ? { append: append.bind(adapter), truncate: truncate.bind(adapter) } : undefined
  }

  /** Replaces the Repo's document load and save with this one's (see the file comment). */
  install(repo: Repo): this {
    const subsystem = repo.storageSubsystem
    if (!subsystem) throw new Error('internal: the Repo has no storage')
    subsystem.loadDoc = (documentId) => this.load(documentId)
    subsystem.saveDoc = (documentId, doc) => this.save(documentId, doc)
    const removeDoc = subsystem.removeDoc.bind(subsystem)
    subsystem.removeDoc = async (documentId) => {
      this.#docs.delete(documentId)
      this.#toCompact.delete(documentId)
      await removeDoc(documentId)
      await this.adapter.removeRange([documentId, 'log'])
    }
    return this
  }

  #state(documentId: DocumentId): DocState {
    let state = this.#docs.get(documentId)
    if (!state) this.#docs.set(documentId, (state = { heads: [], chunks: [], complete: false, logLength: 0, queue: Promise.resolve() }))
    return state
  }

  /** Runs `task` after every earlier save or compaction of the document. */
  #serial<T>(documentId: DocumentId, task: (state: DocState) => Promise<T>): Promise<T> {
    const state = this.#state(documentId)
    const run = state.queue.then(() => task(state))
    state.queue = run.catch(() => undefined)
    return run
  }

  async load<T>(documentId: DocumentId): Promise<A.Doc<T> | null> {
    const doc = await this.#serial(documentId, async (state) => {
      const [snapshots, incrementals, log] = await Promise.all([
        this.adapter.loadRange([documentId, 'snapshot']),
        this.adapter.loadRange([documentId, 'incremental']),
        this.#log ? this.adapter.load(logKey(documentId)) : undefined,
      ])
      const chunks: ChunkInfo[] = []
      const binaries: Uint8Array[] = []
      for (const [type, list] of [['snapshot', snapshots], ['incremental', incrementals]] as const) {
        for (const chunk of list) {
          if (!chunk.data) continue
          chunks.push({ key: chunk.key, type, size: chunk.data.length })
          binaries.push(chunk.data)
        }
      }
      let logLength = 0
      if (log && log.length > 0) {
        const { payloads, valid } = readLog(log)
        if (valid < log.length) await this.#cutLog(documentId, log, valid)
        logLength = valid
        if (valid > 0) chunks.push({ key: logKey(documentId), type: 'incremental', size: valid })
        binaries.push(...payloads)
      }
      if (binaries.length === 0) {
        Object.assign(state, { chunks, heads: [], complete: true, logLength })
        return null
      }
      const bytes = Buffer.concat(binaries)
      let loaded: A.Doc<T>
      try {
        loaded = A.load<T>(bytes)
      } catch {
        // A.load refuses chunks whose dependencies are missing; automerge-repo's way keeps what it can.
        loaded = A.loadIncremental(A.init<T>(), bytes)
      }
      // Known only now: a load that throws leaves the state incomplete (never compacted).
      Object.assign(state, { chunks, heads: A.getHeads(loaded), complete: true, logLength })
      if (this.#worthCompacting(state)) this.#toCompact.add(documentId)
      return loaded
    })
    if (doc) this.onLoaded?.(documentId)
    return doc
  }

  /**
   * The change log holds bytes after its last whole record. A record cut short at the very end is
   * what a crash mid-append leaves (never acknowledged): cut it off. Anything else is damage: a copy
   * of the whole log is kept beside it (`[id, 'log', 'damaged-<ms>']`) and reported before the cut,
   * so that appends follow the last whole record.
   */
  async #cutLog(documentId: DocumentId, log: Uint8Array, valid: number): Promise<void> {
    const rest = log.length - valid
    const torn = rest < 8 || Buffer.from(log.buffer, log.byteOffset + valid, 4).readUInt32LE(0) + 8 > rest
    if (!torn) {
      const copy: StorageKey = [documentId, 'log', `damaged-${Date.now()}`]
      await this.adapter.save(copy, log)
      this.onDamage?.(documentId, { valid, length: log.length, copy })
    }
    await this.#log!.truncate(logKey(documentId), valid)
  }

  async save(documentId: DocumentId, doc: A.Doc<unknown>): Promise<void> {
    await this.#serial(documentId, async (state) => {
      const heads = A.getHeads(doc)
      // An unloaded handle's empty document (automerge-repo #435), or nothing new.
      if (heads.length === 0 || sameHeads(heads, state.heads)) return
      if (state.heads.length === 0) {
        // First save of a document this process did not load (new, or arrived by sync): one
        // snapshot. Chunks already on disk (a crash before the first save finished) stay: loading
        // merges them.
        const binary = A.save(doc)
        const key: StorageKey = [documentId, 'snapshot', headsHash(heads)]
        await this.adapter.save(key, binary)
        // Never loaded by this process: nothing of it was on disk unless a load said so.
        if (state.chunks.length === 0) state.complete = true
        state.chunks.push({ key, type: 'snapshot', size: binary.length })
        this.onFirstSaved?.(documentId, doc)
      } else {
        const binary = A.saveSince(doc, state.heads)
        if (binary.length === 0) return
        if (this.#log) {
          // One fdatasync, no new file: appended to the document's change log. A failed append may
          // leave part of the record: cut back to the last whole one before anything follows it.
          const record = frame(binary)
          try {
            await this.#log.append(logKey(documentId), record)
          } catch (error) {
            await this.#log.truncate(logKey(documentId), state.logLength).catch(() => undefined)
            throw error
          }
          state.logLength += record.length
          const log = state.chunks.find((c) => c.key[1] === 'log')
          if (log) log.size += record.length
          else state.chunks.push({ key: logKey(documentId), type: 'incremental', size: record.length })
        } else {
          const key: StorageKey = [documentId, 'incremental', sha256hex(binary)]
          await this.adapter.save(key, binary)
          state.chunks.push({ key, type: 'incremental', size: binary.length })
        }
      }
      state.heads = heads
      if (this.#worthCompacting(state) && !this.#toCompact.has(documentId)) {
        this.#toCompact.add(documentId)
        this.onCompactable?.(documentId)
      }
      if (this.#overdue(state)) this.onOverdue?.(documentId)
    })
  }

  /**
   * A document whose incrementals are several times its snapshot: compaction has waited too long
   * for an idle moment (a sustained burst of postings) and should run even between busy postings.
   */
  #overdue(state: DocState): boolean {
    let snapshot = 0
    let incremental = 0
    for (const chunk of state.chunks) {
      if (chunk.type === 'snapshot') snapshot += chunk.size
      else incremental += chunk.size
    }
    return incremental >= 4 * Math.max(snapshot, 64 * 1024)
  }

  /** Once the incrementals add up to the snapshot (automerge-repo's rule), and to at least 4 KiB. */
  #worthCompacting(state: DocState): boolean {
    let snapshot = 0
    let incremental = 0
    let pieces = 0
    for (const chunk of state.chunks) {
      if (chunk.type === 'snapshot') snapshot += chunk.size
      else incremental += chunk.size
      pieces++
    }
    return pieces > 1 && incremental >= Math.max(snapshot, 4096)
  }

  /** Documents waiting for a compaction. */
  compactable(): DocumentId[] {
    return [...this.#toCompact]
  }

  /**
   * Rewrites the document as one snapshot of `doc` (its current state: everything saved before is
   * in it), durably, then removes the chunks it supersedes. A crash in between leaves extra chunks,
   * which loading merges and the next compaction removes.
   */
  async compact(documentId: DocumentId, doc: A.Doc<unknown>): Promise<void> {
    await this.#serial(documentId, async (state) => {
      this.#toCompact.delete(documentId)
      const heads = A.getHeads(doc)
      if (heads.length === 0 || !state.complete) return
      // The document given must hold everything on disk: it does when it is the handle's current
      // document (every save came from it, and loading read every chunk into it).
      const binary = A.save(doc)
      const key: StorageKey = [documentId, 'snapshot', headsHash(heads)]
      const name = key.join('/')
      await this.adapter.save(key, binary)
      const superseded = state.chunks.filter((c) => c.key.join('/') !== name)
      for (const chunk of superseded) await this.adapter.remove(chunk.key)
      state.chunks = [{ key, type: 'snapshot', size: binary.length }]
      state.heads = heads
      state.logLength = 0
    })
  }

  /**
   * An unloaded document is no longer worth compacting (its handle is gone). What is known of its
   * chunks stays: its saves and loads keep running in order on the same queue.
   */
  forget(documentId: DocumentId): void {
    this.#toCompact.delete(documentId)
  }
}
