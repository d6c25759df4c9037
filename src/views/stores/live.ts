/**
 * One event stream from the site node for the whole page (`GET /api/events`): whether the page
 * hears the node now, and every event handed to the stores that asked. The other stores read
 * their data again when an event says it changed, and on every (re)connection (`hello`).
 */
import { defineStore } from 'pinia'
import { onScopeDispose, ref } from 'vue'
import { listenToNode, type EventStream, type NodeEvent } from './events.ts'

export const useLiveStore = defineStore('live', () => {
  /** Whether the page hears the node's events now (false: it shows what it read last). */
  const connected = ref(false)
  const handlers = new Set<(e: NodeEvent) => void>()
  let stream: EventStream | undefined

  function start(): void {
    stream ??= listenToNode(
      (e) => handlers.forEach((h) => h(e)),
      (up) => (connected.value = up),
    )
  }

  function stop(): void {
    stream?.stop()
    stream = undefined
    connected.value = false
  }

  /** Calls `handler` for each event until the calling scope (a store, a component) is disposed. */
  function subscribe(handler: (e: NodeEvent) => void): () => void {
    handlers.add(handler)
    const off = () => handlers.delete(handler)
    onScopeDispose(off, true)
    return off
  }

  return { connected, start, stop, subscribe }
})

/**
 * A reader that runs `read` again when asked, at most one read at a time and one more queued,
 * however many events arrive meanwhile.
 */
export function coalesced(read: () => Promise<void>): () => void {
  let running: Promise<void> | undefined
  let again = false
  const run = (): void => {
    if (running) {
      again = true
      return
    }
    running = read().finally(() => {
      running = undefined
      if (again) {
        again = false
        run()
      }
    })
  }
  return run
}
