/**
 * `GET /api/events`: the node's events pushed to the page as Server-Sent Events (text/event-stream),
 * so that another device's movement, a document arriving or a peer going away shows on screen
 * within a second, without polling and without a reload (issue 9; docs/DESIGN.md "The app").
 *
 * Each event is `event: <name>` + `data: <json>`: `hello` (the site and device, once), `movements`
 * (each posting as the movement list shows it, and whether it was recorded here or arrived by
 * sync), `document`, `changed` (an order, manifest or the ledger changed, here or by sync), `decision` and `peer` as SiteNode emits them. A comment line every
 * `heartbeatMs` keeps the connection from looking idle (the API closes idle connections) and lets
 * the page notice a dead link. A client that stops reading is dropped once 1 MiB waits for it:
 * the page then reconnects and reads the state afresh. The page reads with `fetch` (not
 * EventSource), so the API token travels in the Authorization header as on every request.
 */
import type { ServerResponse } from 'node:http'
import type { Posting } from '../../docs/ledger.ts'
import type { SiteNode } from '../siteNode.ts'
import type { SiteNodeEvents } from '../events.ts'

export const EVENTS_PATH = '/api/events'
/** Longest backlog a slow reader may have before it is dropped, bytes. */
const MAX_BACKLOG = 1024 * 1024

/** A movement as the page shows it (the same fields as `GET /api/movements`). */
export type MovementView = (p: Posting, node?: SiteNode) => unknown

export function streamEvents(node: SiteNode, res: ServerResponse, view: MovementView, heartbeatMs: number): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    // No proxy buffering: each event must reach the page as it happens.
    'x-accel-buffering': 'no',
  })
  const send = (event: string, data: unknown) => {
    if (res.destroyed || res.writableEnded) return
    if (res.writableLength > MAX_BACKLOG) {
      node.log.debug({ backlog: res.writableLength }, 'an event reader stopped reading: dropped')
      res.destroy()
      return
    }
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
  }
  // How long the page waits before reconnecting (EventSource reads it; fetch-based readers may too).
  res.write('retry: 2000\n\n')
  send('hello', { site: node.identity.site, node: node.identity.node })

  const onMovements = ({ postings, source }: SiteNodeEvents['movements'][0]) => send('movements', { source, movements: postings.map((p) => view(p, node)) })
  const onDocument = (e: SiteNodeEvents['document'][0]) => send('document', e)
  const onChanged = (e: SiteNodeEvents['changed'][0]) => send('changed', e)
  const onDecision = (e: SiteNodeEvents['decision'][0]) => send('decision', e)
  const onPeer = (e: SiteNodeEvents['peer'][0]) => send('peer', { peerId: e.peerId, state: e.state, ...(e.peer ? { role: e.peer.role, site: e.peer.site, device: e.peer.device } : {}) })
  node.events.on('movements', onMovements)
  node.events.on('document', onDocument)
  node.events.on('changed', onChanged)
  node.events.on('decision', onDecision)
  node.events.on('peer', onPeer)
  const heartbeat = setInterval(() => {
    if (!res.destroyed && !res.writableEnded) res.write(`: ${Date.now()}\n\n`)
  }, heartbeatMs)
  heartbeat.unref()
  const stop = () => {
    clearInterval(heartbeat)
    node.events.off('movements', onMovements)
    node.events.off('document', onDocument)
    node.events.off('changed', onChanged)
    node.events.off('decision', onDecision)
    node.events.off('peer', onPeer)
  }
  // The response closes when the reader goes (or is dropped); the request may end long before.
  res.on('close', stop)
}
