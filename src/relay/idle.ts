/**
 * Keeps the relay's memory bounded: a document nobody has talked about for `idleMs` is written to
 * storage and dropped from the Repo's memory; the next message about it loads it again from storage
 * (automerge-repo's CollectionSynchronizer calls `repo.find`, which reads the document's chunks).
 *
 * Activity: the relay calls {@link IdleUnloader.touch} for every message in or out about a
 * document. A sweep also counts a change of the document's heads since its previous look as
 * activity (local changes, the hub's own writes, anything that did not pass through `touch`), and a
 * document it sees for the first time as just active. So a document is unloaded only when its heads
 * have not moved and nothing touched it for `idleMs`.
 *
 * Unloading one document: `await repo.flush([id])`, then, only if nothing touched it and its heads
 * did not move meanwhile and it is still the same ready handle, mute its save trigger for the
 * unloaded state (below) and `repo.removeFromCache(id)`.
 *
 * What `removeFromCache` does in automerge-repo 2.5.6 (read in node_modules/@automerge/automerge-repo
 * src/Repo.ts, DocHandle.ts, storage/StorageSubsystem.ts, helpers/throttle.ts):
 * 1. awaits the handle in ready/unloaded/deleted/unavailable, then calls `handle.doc()`, which throws
 *    "DocHandle is not ready" for anything but a ready handle (so only ready handles are unloaded);
 * 2. `handle.unload()`: the state machine enters `unloaded`, whose entry action replaces the
 *    document with `A.init()`. The handle notices the heads changed (old heads → none) and emits
 *    `heads-changed` with that empty document. The Repo's save listener (`#saveFn`, registered on
 *    every handle) hands it to the per-document `asyncThrottle`d `storageSubsystem.saveDoc`. That
 *    call also cancels any pending throttled save of the real content;
 * 3. deletes the handle, its progress and its throttled save function from the Repo's caches (the
 *    already scheduled empty save still fires), and `synchronizer.removeDocument(id)` ends sync with
 *    every peer and forgets the document's sync states (in memory; stored sync states stay).
 * The empty save then runs: `#shouldSave` sees heads [] ≠ the stored heads, and for a document
 * whose snapshot is under 1 KiB (most of ours) `#shouldCompact` is true, so `#saveTotal` writes a
 * 14-byte empty snapshot and removes every chunk it knew of: the document is gone from disk (issue
 * #435). A flush first does NOT prevent it (checked on 2.5.6 with DurableFsStorageAdapter: flushed
 * document, removeFromCache, then reload gave `{}`). Larger documents take the incremental path,
 * where `A.saveSince(empty, heads)` writes nothing, which is probably why a flush seemed enough.
 *
 * Why our sequence is safe:
 * - the guard: before `removeFromCache`, every `heads-changed` listener of the handle is replaced by
 *   one that drops the event while the handle is unloaded. The only `heads-changed` in that state is
 *   the swap to `A.init()`, so the empty save is never scheduled; a real change that slips in before
 *   the unload (the handle is still ready) still reaches the Repo's save as usual. `unload` emits no
 *   `change` (the diff from the old heads to an empty document is empty), so the synchronizer sends
 *   nothing about the empty document either. The handle object is discarded, nothing reuses it.
 * - the flush writes every change the handle holds (`saveDoc` of the current document; a no-op when
 *   the stored heads already match), and we unload only if the heads after it equal the heads before
 *   it, so everything in memory is on disk.
 * - a throttled save still pending from before (at most the Repo's `saveDebounceRate`, 100 ms by
 *   default, after the last change) carries the same heads as the flush, so it finds nothing to save
 *   and writes nothing. It could only do harm (an older snapshot compacting away newer chunks) if the
 *   document were reloaded and changed before it fired: `idleMs` is therefore at least 1 s, and the
 *   heads must have been still since the previous sweep.
 * - the relay's "on disk before a sync message leaves" holds: the flush above precedes the unload,
 *   and a message queued for a handle that is no longer ready is sent without a new flush.
 * Left in memory per unloaded document by 2.5.6 itself (small, not the document): the storage
 * subsystem's saved heads and chunk list, the synchronizer's record of who requested it.
 * Handles that are not ready (unavailable: asked for but never received) are not unloaded, as
 * `removeFromCache` throws on them in 2.5.6.
 */
import type { DocHandle, DocumentId, Repo } from '@automerge/automerge-repo'
import type { Logger } from 'pino'

export interface IdleUnloaderOptions {
  repo: Repo
  /** A document without messages or changes for this long is unloaded; at least 1000. */
  idleMs: number
  /** How often {@link IdleUnloader.start} sweeps; default `idleMs / 4` (at least 1 s). */
  sweepMs?: number
  logger: Logger
  /** Documents never unloaded (the catalog, say). */
  pinned?: (documentId: string) => boolean
  now?: () => number
  onUnloaded?: (documentId: string) => void
  /** Documents flushed and unloaded at once in a sweep; default 8. */
  concurrency?: number
}

/** The smallest `idleMs`: well above the Repo's save throttle (100 ms), see the header comment. */
export const MIN_IDLE_MS = 1000

/** What the unloader knows of one loaded document. */
interface Activity {
  /** Last touch or observed change (options.now). */
  at: number
  /** Bumped by every touch: a flush that sees it move was overtaken by a message. */
  seq: number
  /** The heads at the last sweep that looked, joined; undefined before the first look. */
  heads?: string
}

export class IdleUnloader {
  readonly #repo: Repo
  readonly #idleMs: number
  readonly #sweepMs: number
  readonly #logger: Logger
  readonly #pinned: (documentId: string) => boolean
  readonly #now: () => number
  readonly #onUnloaded?: (documentId: string) => void
  readonly #concurrency: number
  readonly #activity = new Map<string, Activity>()
  #timer: ReturnType<typeof setInterval> | undefined
  #sweeping: Promise<string[]> | undefined
  #unloadedTotal = 0

  constructor(options: IdleUnloaderOptions) {
    if (!(options.idleMs >= MIN_IDLE_MS)) throw new RangeError(`idleMs must be at least ${MIN_IDLE_MS} (got ${options.idleMs})`)
    this.#repo = options.repo
    this.#idleMs = options.idleMs
    this.#sweepMs = Math.max(options.sweepMs ?? options.idleMs / 4, MIN_IDLE_MS)
    this.#logger = options.logger
    this.#pinned = options.pinned ?? (() => false)
    this.#now = options.now ?? Date.now
    this.#onUnloaded = options.onUnloaded
    this.#concurrency = Math.max(1, options.concurrency ?? 8)
  }

  /** Documents unloaded since this unloader was made. */
  get unloadedTotal(): number {
    return this.#unloadedTotal
  }

  /** Records activity on a document (a message in or out about it). Cheap: call it on every message. */
  touch(documentId: string): void {
    const activity = this.#activity.get(documentId)
    if (activity) {
      activity.at = this.#now()
      activity.seq++
    } else this.#activity.set(documentId, { at: this.#now(), seq: 0 })
  }

  /**
   * Unloads every ready, unpinned document idle for `idleMs`; resolves with their ids. One sweep at
   * a time: a call during a sweep gets that sweep's promise. Never rejects (failures are logged).
   */
  sweep(): Promise<string[]> {
    this.#sweeping ??= this.#sweepOnce().finally(() => (this.#sweeping = undefined))
    return this.#sweeping
  }

  /** Sweeps every `sweepMs` until {@link stop}; the timer does not keep the process alive. */
  start(): void {
    if (this.#timer) return
    this.#timer = setInterval(() => void this.sweep(), this.#sweepMs)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }

  async #sweepOnce(): Promise<string[]> {
    const unloaded: string[] = []
    try {
      const idle = this.#idleDocuments()
      for (let i = 0; i < idle.length; i += this.#concurrency) {
        const batch = idle.slice(i, i + this.#concurrency)
        const done = await Promise.all(batch.map((documentId) => this.#unloadIfStillIdle(documentId)))
        batch.forEach((documentId, k) => done[k] && unloaded.push(documentId))
      }
      if (unloaded.length > 0) this.#logger.info({ unloaded: unloaded.length, loaded: Object.keys(this.#repo.handles).length }, 'idle documents unloaded from memory')
    } catch (error) {
      this.#logger.error({ err: error }, 'idle sweep failed')
    }
    return unloaded
  }

  /** Ready, unpinned documents idle for `idleMs`; notes heads and forgets documents no longer loaded. */
  #idleDocuments(): string[] {
    const handles = this.#repo.handles
    for (const documentId of this.#activity.keys()) if (!(documentId in handles)) this.#activity.delete(documentId)
    const now = this.#now()
    const idle: string[] = []
    for (const handle of Object.values(handles)) {
      if (!handle.isReady() || this.#pinned(handle.documentId)) continue
      const heads = headsKey(handle)
      const activity = this.#activity.get(handle.documentId)
      if (!activity) this.#activity.set(handle.documentId, { at: now, seq: 0, heads })
      else if (activity.heads !== heads) {
        activity.heads = heads
        activity.at = now
      } else if (now - activity.at >= this.#idleMs) idle.push(handle.documentId)
    }
    return idle
  }

  /** Flushes the document, then unloads it if nothing happened to it during the flush. */
  async #unloadIfStillIdle(documentId: string): Promise<boolean> {
    try {
      const handle = this.#repo.handles[documentId as DocumentId]
      const activity = this.#activity.get(documentId)
      if (!handle || !handle.isReady() || !activity) return false
      const seq = activity.seq
      const heads = headsKey(handle)
      await this.#repo.flush([handle.documentId])
      const same = this.#repo.handles[documentId as DocumentId] === handle && handle.isReady()
      if (!same || activity.seq !== seq || headsKey(handle) !== heads || this.#pinned(documentId)) {
        this.#logger.debug({ documentId }, 'idle document became active while it was saved: kept')
        return false
      }
      muteUnloadedSave(handle)
      await this.#repo.removeFromCache(handle.documentId)
      this.#activity.delete(documentId)
      this.#unloadedTotal++
      this.#onUnloaded?.(documentId)
      return true
    } catch (error) {
      this.#logger.error({ err: error, documentId }, 'could not unload an idle document: kept in memory')
      return false
    }
  }
}

/**
 * Wraps every `heads-changed` listener of a handle about to be unloaded so that the event emitted
 * when `unload()` swaps in an empty document is dropped: without this the Repo saves that empty
 * document over the stored one (automerge-repo issue #435, see the header comment).
 */
function muteUnloadedSave(handle: DocHandle<unknown>): void {
  for (const listener of handle.listeners('heads-changed')) {
    handle.off('heads-changed', listener)
    handle.on('heads-changed', (payload) => {
      if (!handle.isUnloaded()) listener(payload)
    })
  }
}

function headsKey(handle: DocHandle<unknown>): string {
  return handle.heads().join(',')
}
