/**
 * The site node's event stream (`GET /api/events`, Server-Sent Events), read with `fetch` so that
 * an API token would travel in the Authorization header like every other request. Reconnects with
 * backoff and jitter when the stream drops; each (re)connection is announced with `hello`, after
 * which a listener reads the state afresh (events are notifications, not a log to replay).
 */
import { authHeaders, tokenRequired } from '../api.ts'

export interface NodeEvent {
  event: string
  data: unknown
}

export interface EventStream {
  stop(): void
}

/** Reads the stream until `stop()`; `onEvent` for each event, `onState` when the link comes and goes. */
/** The node sends a heartbeat every 5 s: a stream silent this long is a dead link (a half-open socket, a stuck node). */
const SILENCE_MS = 15_000

export function listenToNode(onEvent: (e: NodeEvent) => void, onState: (connected: boolean) => void, path = '/api/events'): EventStream {
  let stopped = false
  let controller: AbortController | undefined
  let attempt = 0
  let watchdog: ReturnType<typeof setTimeout> | undefined
  const run = async () => {
    while (!stopped) {
      controller = new AbortController()
      const current = controller
      const heard = () => {
        clearTimeout(watchdog)
        watchdog = setTimeout(() => current.abort(), SILENCE_MS)
      }
      heard()
      try {
        const res = await fetch(path, { headers: { accept: 'text/event-stream', ...authHeaders() }, signal: controller.signal })
        if (res.status === 401) tokenRequired.value = true
        if (!res.ok || !res.body) throw new Error(`the event stream answered ${res.status}`)
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
        let buffer = ''
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          heard()
          buffer += value
          let end
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const frame = buffer.slice(0, end)
            buffer = buffer.slice(end + 2)
            const event = /^event: (.*)$/m.exec(frame)?.[1]
            const data = /^data: (.*)$/m.exec(frame)?.[1]
            if (event === undefined || data === undefined) continue
            if (event === 'hello') {
              attempt = 0
              onState(true)
            }
            onEvent({ event, data: JSON.parse(data) as unknown })
          }
        }
      } catch {
        // Dropped, refused, unreachable or silent too long: try again below.
      }
      clearTimeout(watchdog)
      if (stopped) return
      onState(false)
      attempt++
      const wait = Math.min(10_000, 500 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random() / 2)
      await new Promise((resolve) => setTimeout(resolve, wait))
    }
  }
  void run()
  return {
    stop() {
      stopped = true
      clearTimeout(watchdog)
      controller?.abort()
    },
  }
}
