/**
 * The LedgerStore of a site node: automerge-repo handles, made durable with `repo.flush`
 * (which awaits the DurableFsStorageAdapter's fsync), with outgoing sync held until then.
 */
import type { DocHandle, Repo } from '@automerge/automerge-repo'
import type { DocRef, LedgerStore } from '../docs/ledgerBook.ts'
import type { JournalDoc, LedgerDoc } from '../schema/ledger.ts'
import type { DurableGate } from './durableGate.ts'

/** A DocRef over a handle. Each change holds the gate until the next `durable()` of its store. */
export class HandleRef<T> implements DocRef<T> {
  constructor(
    readonly handle: DocHandle<T>,
    private readonly gate: { hold(): void; abort(): void },
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
    } catch (error) {
      // Automerge rolled the change back: nothing to wait for.
      this.gate.abort()
      throw error
    }
  }
}

export class RepoLedgerStore implements LedgerStore {
  readonly ledger: HandleRef<LedgerDoc>
  readonly #journals = new Map<string, HandleRef<JournalDoc>>()
  #pendingHolds = 0

  constructor(
    readonly repo: Repo,
    ledger: DocHandle<LedgerDoc>,
    readonly gate: DurableGate,
  ) {
    this.ledger = this.ref(ledger)
  }

  ref<T>(handle: DocHandle<T>): HandleRef<T> {
    return new HandleRef(handle, {
      hold: () => {
        this.gate.hold()
        this.#pendingHolds++
      },
      abort: () => {
        this.#pendingHolds--
        this.gate.release()
      },
    })
  }

  /** Adds a loaded journal; returns its ref. */
  addJournal(handle: DocHandle<JournalDoc>): HandleRef<JournalDoc> {
    let ref = this.#journals.get(handle.url)
    if (!ref) this.#journals.set(handle.url, (ref = this.ref(handle)))
    return ref
  }

  journal(url: string): HandleRef<JournalDoc> | undefined {
    return this.#journals.get(url)
  }

  journals(): Iterable<HandleRef<JournalDoc>> {
    return this.#journals.values()
  }

  createJournal(init: (doc: JournalDoc) => void): HandleRef<JournalDoc> {
    this.gate.hold()
    this.#pendingHolds++
    const handle = this.repo.create<JournalDoc>()
    handle.change(init)
    return this.addJournal(handle)
  }

  async durable(refs: Array<DocRef<unknown>>): Promise<void> {
    try {
      await this.repo.flush(refs.map((ref) => (ref as HandleRef<unknown>).handle.documentId))
    } finally {
      const holds = this.#pendingHolds
      this.#pendingHolds = 0
      for (let i = 0; i < holds; i++) this.gate.release()
    }
  }

}
