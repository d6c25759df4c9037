/**
 * The LedgerStore of a site node: automerge-repo handles, made durable with `repo.flush`
 * (which awaits the DurableFsStorageAdapter's fsync), with outgoing sync held until then.
 */
import type { DocHandle, Repo } from '@automerge/automerge-repo'
import type { DocRef, LedgerStore } from '../docs/ledgerBook.ts'
import type { JournalDoc, LedgerDoc } from '../schema/ledger.ts'
import type { DurableGate } from '../network/durableGate.ts'

/**
 * A DocRef over a handle. Each change holds the durability gate until the store makes this
 * document durable, so peers never receive a change before it is on this disk.
 */
export class HandleRef<T> implements DocRef<T> {
  /** Gate holds taken by changes not yet made durable. */
  holds = 0

  constructor(
    readonly handle: DocHandle<T>,
    private readonly gate: DurableGate,
  ) {}
  get url(): string {
    return this.handle.url
  }
  doc(): T {
    return this.handle.doc() as T
  }
  change(fn: (doc: T) => void, options?: { message?: string; time: number }): void {
    this.gate.hold()
    try {
      this.handle.change(fn as (doc: T) => void, options ?? {})
      this.holds++
    } catch (error) {
      // Automerge rolled the change back: nothing to wait for.
      this.gate.release()
      throw error
    }
  }
}

export class RepoLedgerStore implements LedgerStore {
  readonly ledger: HandleRef<LedgerDoc>
  readonly #journals = new Map<string, HandleRef<JournalDoc>>()

  constructor(
    readonly repo: Repo,
    ledger: DocHandle<LedgerDoc>,
    readonly gate: DurableGate,
  ) {
    this.ledger = this.ref(ledger)
  }

  /** A ref over any handle of this repo, behind this store's gate. */
  ref<T>(handle: DocHandle<T>): HandleRef<T> {
    return new HandleRef(handle, this.gate)
  }

  /** Adds a loaded journal; returns its ref. */
  addJournal(handle: DocHandle<JournalDoc>): HandleRef<JournalDoc> {
    let ref = this.#journals.get(handle.url)
    if (!ref) this.#journals.set(handle.url, (ref = this.ref(handle)))
    return ref
  }

  /** Drops a journal that is being unloaded from the Repo. */
  removeJournal(url: string): void {
    this.#journals.delete(url)
  }

  journal(url: string): HandleRef<JournalDoc> | undefined {
    return this.#journals.get(url)
  }

  journals(): Iterable<HandleRef<JournalDoc>> {
    return this.#journals.values()
  }

  createJournal(init: (doc: JournalDoc) => void): HandleRef<JournalDoc> {
    const ref = this.addJournal(this.repo.create<JournalDoc>())
    ref.change(init)
    return ref
  }

  /** Flushes the documents, then releases the gate holds of their changes (and only theirs). */
  async durable(refs: Array<DocRef<unknown>>): Promise<void> {
    const handleRefs = refs as Array<HandleRef<unknown>>
    const holds = handleRefs.map((ref) => ref.holds)
    try {
      await this.repo.flush(handleRefs.map((ref) => ref.handle.documentId))
    } finally {
      handleRefs.forEach((ref, i) => {
        ref.holds -= holds[i]!
        for (let n = 0; n < holds[i]!; n++) this.gate.release()
      })
    }
  }
}
