/**
 * Holds outgoing sync messages while a change is not yet on disk, so that no peer ever holds a
 * change its author could lose in a crash. Without it a node could sync a posting, crash before
 * fsync, restart without it and reuse its sequence number for a different movement.
 * automerge-repo sends changes as soon as its sync throttle fires, regardless of storage.
 */
import type { Message, NetworkAdapterInterface } from '@automerge/automerge-repo'

export class DurableGate {
  #holds = 0
  #queue: Array<() => void> = []

  /** Routes an adapter's outgoing messages through the gate. Returns the adapter. */
  wrap<A extends NetworkAdapterInterface>(adapter: A): A {
    const send = adapter.send.bind(adapter)
    adapter.send = (message: Message) => {
      if (this.#holds > 0) this.#queue.push(() => send(message))
      else send(message)
    }
    return adapter
  }

  /** Closes the gate until the matching `release()`. */
  hold(): void {
    this.#holds++
  }

  /** Opens the gate again once no hold is left, sending what waited, in order. */
  release(): void {
    if (this.#holds === 0) throw new Error('internal: DurableGate released more often than held')
    if (--this.#holds > 0) return
    for (const send of this.#queue.splice(0)) {
      try {
        send()
      } catch {
        // A peer that went away meanwhile: automerge-repo resyncs when it reconnects.
      }
    }
  }
}
