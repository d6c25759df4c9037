/**
 * automerge-repo's WebSocketServerAdapter with each socket bound to the peer id authenticated at
 * its upgrade (src/relay/server.ts calls {@link AuthenticatedWebSocketServerAdapter.accept}):
 * - a `join` (or any message) whose sender is not the bound peer id closes the socket;
 * - a `join` for a peer id that another open socket holds is refused and closes the newcomer (the
 *   stock adapter would close the existing one, letting anyone push a peer off);
 * - a frame that is not CBOR, not a message object, or fails in automerge-repo closes that socket,
 *   never the relay.
 */
import { cbor, type PeerId } from '@automerge/automerge-repo'
import { WebSocketServerAdapter } from '@automerge/automerge-repo-network-websocket'
import type { Logger } from 'pino'
import type { WebSocket, WebSocketServer } from 'ws'
import { CLOSE_MALFORMED, CLOSE_POLICY, closeReason, type RefusalCode } from '../network/authProtocol.ts'
import { CONTROL_TYPE, ControlMessage, type ControlFrame } from '../network/control.ts'
import { parsePeerId } from '../network/peerId.ts'

export interface AdapterHooks {
  /** Every well-formed message from a bound socket, before automerge-repo sees it. */
  onMessage?: (message: { type: string; senderId: string; documentId?: string; data?: Uint8Array }, bytes: number, peerId: string) => void
  onBytesOut?: (bytes: number) => void
  /**
   * A control message from a relay chained below this one (src/network/control.ts), parsed; it is
   * not handed to automerge-repo. Only relay peers may send them.
   */
  onControl?: (control: ControlMessage, peerId: string) => void
  /** Whether a peer is a relay below this one (may send control messages); default: its peer id says relay. */
  isRelayBelow?: (peerId: string) => boolean
  /**
   * Whether `peerId` may use `storageId` as its own (automerge-repo records what a peer holds per
   * storage id): false when it is this repo's, the upstream's or another connected peer's. A join
   * claiming one of those keeps its link, without a storage id.
   */
  storageIdFree?: (storageId: string, peerId: string) => boolean
  /** A socket closed for bad input or by policy (`why`: the refusal code). */
  onRejected?: (why: RefusalCode | 'slow-client', peerId: string) => void
}

/** The message types of automerge-repo 2.5.6's websocket protocol and Repo. */
const KNOWN_TYPES = new Set(['join', 'leave', 'sync', 'request', 'ephemeral', 'doc-unavailable', 'remote-subscription-change', 'remote-heads-changed'])

type RawMessage = Parameters<WebSocketServerAdapter['receiveMessage']>[0]

export class AuthenticatedWebSocketServerAdapter extends WebSocketServerAdapter {
  readonly #bound = new WeakMap<object, string>()
  readonly #logger: Logger | undefined
  readonly #hooks: AdapterHooks

  readonly #maxBuffered: number

  readonly #readyAtOnce: boolean

  /**
   * `maxBufferedBytes`: a socket with more than this waiting to be sent is dropped (default 64 MiB).
   * `readyAtOnce`: ready before any peer connects. The stock adapter is ready only after its first
   * connection, and automerge-repo holds every `find` until all adapters are ready: a site node's
   * LAN port that nobody has dialled yet must not stop the node finding documents on its other links.
   */
  constructor(server: WebSocketServer, options: { keepAliveInterval?: number; logger?: Logger; hooks?: AdapterHooks; maxBufferedBytes?: number; readyAtOnce?: boolean } = {}) {
    // `as never`: the package's types see ws's CommonJS declarations, ours the ESM ones; same class.
    super(server as never, options.keepAliveInterval ?? 5000)
    this.#logger = options.logger
    this.#hooks = options.hooks ?? {}
    this.#maxBuffered = options.maxBufferedBytes ?? 64 * 1024 * 1024
    this.#readyAtOnce = options.readyAtOnce ?? false
  }

  override isReady(): boolean {
    return this.#readyAtOnce || super.isReady()
  }

  override whenReady(): Promise<void> {
    return this.#readyAtOnce ? Promise.resolve() : super.whenReady()
  }

  #connected!: () => void
  /** Resolves once a Repo has connected the adapter (automerge-repo does it after loading its storage id). */
  readonly connected = new Promise<void>((resolve) => (this.#connected = resolve))

  override connect(peerId: PeerId, peerMetadata?: Parameters<WebSocketServerAdapter['connect']>[1]): void {
    super.connect(peerId, peerMetadata)
    this.#connected()
  }

  /** True when an open socket holds this peer id. */
  isConnected(peerId: string): boolean {
    const socket = this.sockets[peerId as PeerId] as unknown as WebSocket | undefined
    return socket !== undefined && socket.readyState === 1
  }

  /** Closes the connection of `peerId`, if any, with a policy close and `reason` (shown to the device). */
  closePeer(peerId: string, code: RefusalCode, reason: string): boolean {
    const socket = this.sockets[peerId as PeerId] as unknown as WebSocket | undefined
    if (!socket || socket.readyState !== 1) return false
    this.#close(socket, CLOSE_POLICY, code, peerId, reason)
    return true
  }

  /** Sends a control message (src/network/control.ts) to a connected relay peer; false when it is not connected. */
  sendControl(peerId: string, control: ControlMessage): boolean {
    const socket = this.sockets[peerId as PeerId] as unknown as WebSocket | undefined
    if (!socket || socket.readyState !== 1 || !this.peerId) return false
    const frame: ControlFrame = { type: CONTROL_TYPE, senderId: this.peerId, targetId: peerId, control }
    socket.send(cbor.encode(frame))
    return true
  }

  /** Hands an authenticated, upgraded socket to the adapter, bound to `peerId`. */
  accept(server: WebSocketServer, socket: WebSocket, peerId: string, request: unknown): void {
    this.#bound.set(socket, peerId)
    const send = socket.send.bind(socket) as (data: unknown, ...rest: unknown[]) => void
    const count = this.#hooks.onBytesOut
    ;(socket as { send: unknown }).send = (data: unknown, ...rest: unknown[]) => {
      // A client that does not read: its backlog is not kept for ever (it resyncs when it reconnects).
      if (socket.bufferedAmount > this.#maxBuffered) {
        this.#logger?.warn({ peer: peerId, buffered: socket.bufferedAmount }, 'relay dropped a client that does not read')
        this.#hooks.onRejected?.('slow-client', peerId)
        socket.terminate()
        return
      }
      count?.((data as ArrayBuffer | Uint8Array).byteLength ?? 0)
      send(data, ...rest)
    }
    // automerge-repo's keep-alive drops a socket whose pong has not come by the next ping (5 s);
    // on a slow link the pong waits behind the device's upload. Any frame received shows the device
    // is there: count it as alive too (a half-open connection still sends nothing and is dropped).
    socket.on('message', () => {
      ;(socket as WebSocket & { isAlive?: boolean }).isAlive = true
    })
    // A frame still arriving counts as well: a week's catch-up is one sync message of a megabyte or
    // more, minutes long over 64 kbit/s, during which no whole frame (nor the pong behind it)
    // arrives. Bytes on the TCP socket show the device is there (ws keeps it as `_socket`).
    ;(socket as unknown as { _socket?: NodeJS.EventEmitter })._socket?.on('data', () => {
      ;(socket as WebSocket & { isAlive?: boolean }).isAlive = true
    })
    // Before the Repo connected the adapter nobody listens for connections yet: hold the socket's
    // frames until it has (the stream is paused, so nothing is read and lost meanwhile).
    socket.pause()
    void this.connected.then(() => {
      if (socket.readyState !== 1) return
      server.emit('connection', socket, request)
      socket.resume()
    })
  }

  #close(socket: WebSocket, code: number, why: RefusalCode, peerId: string, detail: string): void {
    this.#logger?.warn({ peer: peerId, why, detail }, 'relay closed a connection')
    this.#hooks.onRejected?.(why, peerId)
    try {
      socket.close(code, closeReason(why, detail))
    } catch {
      socket.terminate()
    }
  }

  override receiveMessage(messageBytes: RawMessage, socket: unknown): void {
    const ws = socket as WebSocket
    const peerId = this.#bound.get(ws)
    if (peerId === undefined) {
      ws.terminate() // never happens: only accept() hands sockets over
      return
    }
    let message: unknown
    try {
      message = cbor.decode(messageBytes as Uint8Array)
    } catch {
      this.#close(ws, CLOSE_MALFORMED, 'malformed', peerId, 'the frame is not CBOR')
      return
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message) || typeof (message as { type?: unknown }).type !== 'string') {
      this.#close(ws, CLOSE_MALFORMED, 'malformed', peerId, 'the frame is not a message')
      return
    }
    const msg = message as { type: string; senderId?: unknown; documentId?: unknown; data?: unknown; targetId?: unknown }
    if (msg.senderId !== peerId) {
      this.#close(ws, CLOSE_POLICY, 'wrong-peer-id', peerId, `messages must come from ${peerId}`)
      return
    }
    if ('documentId' in msg && typeof msg.documentId !== 'string') {
      this.#close(ws, CLOSE_MALFORMED, 'malformed', peerId, 'the document id is not a string')
      return
    }
    if ('data' in msg && msg.data !== undefined && !(msg.data instanceof Uint8Array)) {
      this.#close(ws, CLOSE_MALFORMED, 'malformed', peerId, 'the data is not bytes')
      return
    }
    const relayBelow = this.#hooks.isRelayBelow ? this.#hooks.isRelayBelow(peerId) : parsePeerId(peerId)?.role === 'relay'
    if (msg.type === CONTROL_TYPE && relayBelow && msg.targetId === this.peerId) {
      const control = ControlMessage.safeParse((msg as { control?: unknown }).control)
      if (!control.success) {
        this.#close(ws, CLOSE_MALFORMED, 'malformed', peerId, `a control message that is not one: ${control.error.issues[0]?.message}`)
        return
      }
      this.#hooks.onControl?.(control.data, peerId)
      return
    }
    if (!KNOWN_TYPES.has(msg.type)) {
      this.#close(ws, CLOSE_MALFORMED, 'unknown-message', peerId, `unknown message type ${JSON.stringify(msg.type.slice(0, 40))}`)
      return
    }
    if (msg.type === 'join') {
      const holder = this.sockets[peerId as PeerId] as unknown as WebSocket | undefined
      if (holder === ws) return // a repeated join on the same socket: nothing to do
      if (holder && holder.readyState === 1) {
        this.#close(ws, CLOSE_POLICY, 'peer-already-connected', peerId, `${peerId} is already connected`)
        return
      }
    } else if (msg.type !== 'leave') {
      // Messages to the relay's repo must name it as the target.
      if (msg.targetId !== this.peerId) {
        this.#close(ws, CLOSE_MALFORMED, 'malformed', peerId, 'messages must be addressed to the relay')
        return
      }
    }
    const size = (messageBytes as Uint8Array).byteLength ?? 0
    // A peer that claims another's storage id would write its heads into what this repo records of
    // that other (a relay's "held on its disk"): it keeps its link, with no storage id.
    const metadata = (msg as { peerMetadata?: { storageId?: unknown } }).peerMetadata
    if (msg.type === 'join' && typeof metadata?.storageId === 'string' && this.#hooks.storageIdFree && !this.#hooks.storageIdFree(metadata.storageId, peerId)) {
      this.#hooks.onRejected?.('storage-id-in-use' as never, peerId)
      this.#logger?.warn({ peer: peerId, storageId: metadata.storageId }, 'the peer claims a storage id this node or another peer has: linked without one')
      const { storageId: _taken, ...rest } = metadata
      messageBytes = cbor.encode({ ...msg, peerMetadata: { ...rest, isEphemeral: true } }) as never
    }
    try {
      this.#hooks.onMessage?.(msg as never, size, peerId)
      super.receiveMessage(messageBytes, socket as never)
    } catch (error) {
      this.#close(ws, CLOSE_MALFORMED, 'malformed', peerId, `the message failed: ${(error as Error).message}`)
    }
  }
}
