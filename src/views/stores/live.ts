/**
 * One event stream from the site node for the whole page (`GET /api/events`): whether the page
 * hears the node now, and every event handed to the stores that asked. The other stores read
 * their data again when an event says it changed, and on every (re)connection (`hello`).
 */
import { defineStore } from 'pinia'
import { onMounted, onScopeDispose, onUnmounted, ref } from 'vue'
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
 * Whether a page shows a store's data now. A store whose data is costly to read (the review queue,
 * an item's movements, a document's history) re-reads on events only while one does, and once when
 * a page shows it again: a storekeeper scanning on the stock page does not pay for the review queue
 * they looked at an hour ago.
 */
export function shownIn(onShow: () => void) {
  let pages = 0
  return {
    get shown(): boolean {
      return pages > 0
    },
    /** Called in a page's setup: counts the page while it is mounted, and reads when it appears. */
    use(): void {
      onMounted(() => {
        pages++
        onShow()
      })
      onUnmounted(() => pages--)
    },
  }
}

/** Shortest time between two reads of one reader while events keep coming (a large sync). */
const READ_GAP_MS = 250

/**
 * A reader that runs `read` again when asked, at most one read at a time and one more queued,
 * however many events arrive meanwhile, and the queued one no sooner than READ_GAP_MS after the
 * previous one ended.
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
      if (!again) {
        running = undefined
        return
      }
      again = false
      setTimeout(() => {
        running = undefined
        run()
      }, READ_GAP_MS)
    })
  }
  return run
}
