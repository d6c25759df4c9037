/**
 * An automerge-repo network adapter over one node `MessagePort` (a `MessageChannel` between two
 * repos in one process, or between a process and a worker). It uses the same arrive/welcome/leave
 * handshake as `@automerge/automerge-repo-network-messagechannel`, which is not a dependency here.
 * It can also count what it sends, for the wire benchmark (bench/wire.ts).
 *
 * Passes automerge-repo's own `runNetworkAdapterTests` (test/network/MessagePortNetworkAdapter.test.ts).
 */
import type { MessagePort } from 'node:worker_threads'
import { NetworkAdapter, cbor, type Message, type PeerId, type PeerMetadata } from '@automerge/automerge-repo'

/** Tally of the messages one adapter sent: counts, sync payload bytes, and bytes as framed on a WebSocket. */
export class WireCount {
  /** Messages sent. */
  messages = 0
  /** Bytes of every message's `data` (the Automerge sync payload). */
  dataBytes = 0
  /** Bytes of the whole message CBOR-encoded, as the WebSocket adapter would frame it. */
  framedBytes = 0
  /** Messages sent by message type. */
  byType = new Map<string, number>()
  /** Sync payload bytes by document id. */
  byDoc = new Map<string, number>()

  /** Starts the tally over, e.g. after the setup phase of a benchmark. */
  reset(): void {
    this.byDoc.clear()
    this.messages = 0
    this.dataBytes = 0
    this.framedBytes = 0
    this.byType.clear()
  }

  /** Adds one sent message to the tally. */
  add(message: Message): void {
    this.messages++
    this.byType.set(message.type, (this.byType.get(message.type) ?? 0) + 1)
    const data = (message as { data?: Uint8Array }).data
    if (data) {
      this.dataBytes += data.byteLength
      const doc = (message as { documentId?: string }).documentId ?? '?'
      this.byDoc.set(doc, (this.byDoc.get(doc) ?? 0) + data.byteLength)
    }
    this.framedBytes += cbor.encode(message).byteLength
  }
}

/** Options of {@link MessagePortNetworkAdapter}. */
export interface MessagePortNetworkAdapterOptions {
  /** Tally every message this adapter sends into this counter (costs a CBOR encode per message). */
  count?: WireCount
  /**
   * How long the adapter waits for the other side before it reports ready anyway, in ms. Repo waits
   * for its adapters to be ready before it declares a document unavailable, so this bounds that wait
   * when the other end of the port is not (yet) listening. Default 1000, as upstream's adapters.
   */
  peerWaitMs?: number
}

/** Handshake messages of the adapter itself; everything else on the port is a repo `Message`. */
type Control =
  | { type: 'arrive' | 'welcome'; senderId: PeerId; peerMetadata?: PeerMetadata }
  | { type: 'leave'; senderId: PeerId }
type Envelope = Control | Message

const isControl = (m: Envelope): m is Control => m.type === 'arrive' || m.type === 'welcome' || m.type === 'leave'

/**
 * A point-to-point automerge-repo network adapter over one end of a `MessageChannel`; the other end
 * must be given to another `MessagePortNetworkAdapter` (in this process or in a worker).
 *
 * - `connect()` announces this peer ("arrive"); the other side answers ("welcome") and each side
 *   emits `peer-candidate` for the other once.
 * - `disconnect()` tells the other side ("leave"), emits `peer-disconnected`, and drops messages in
 *   both directions until `connect()` is called again; the port stays open so that works.
 * - `close()` disconnects and closes the port for good. Either end closing the port (or the worker
 *   holding it exiting) ends the connection and emits `close`.
 *
 * @example
 * ```ts
 * const { port1, port2 } = new MessageChannel()
 * const a = new Repo({ network: [new MessagePortNetworkAdapter(port1)] })
 * const b = new Repo({ network: [new MessagePortNetworkAdapter(port2, { count: new WireCount() })] })
 * ```
 */
export class MessagePortNetworkAdapter extends NetworkAdapter {
  /** The port this adapter talks over. */
  readonly port: MessagePort
  /** Tally of what this adapter sent, if one was given. */
  readonly count: WireCount | undefined
  /** `performance.now()` of the last message sent or received, to tell when a sync has gone quiet. */
  lastActivity = performance.now()

  readonly #peerWaitMs: number
  /** Between `connect()` and `disconnect()`: only then are messages sent and received. */
  #connected = false
  /** The port is closed (by us or the other side): the adapter is finished. */
  #closed = false
  #listening = false
  /** The peer at the other end, once announced, until it leaves. */
  #remote: PeerId | undefined
  #ready = false
  #markReady!: () => void
  readonly #whenReady = new Promise<void>((resolve) => {
    this.#markReady = () => {
      this.#ready = true
      resolve()
    }
  })

  /**
   * @param port - one end of a `MessageChannel`, not used by anything else.
   * @param options - see {@link MessagePortNetworkAdapterOptions}.
   */
  constructor(port: MessagePort, options: MessagePortNetworkAdapterOptions = {}) {
    super()
    this.port = port
    this.count = options.count
    this.#peerWaitMs = options.peerWaitMs ?? 1000
  }

  /** True once the other side answered, or `peerWaitMs` after the first `connect()`. */
  isReady(): boolean {
    return this.#ready
  }

  /** Resolves when {@link isReady} becomes true. */
  whenReady(): Promise<void> {
    return this.#whenReady
  }

  /** Starts (or, after `disconnect()`, restarts) the connection as `peerId`. */
  connect(peerId: PeerId, peerMetadata?: PeerMetadata): void {
    if (this.#closed) throw new Error('MessagePortNetworkAdapter: connect() after the port was closed')
    this.peerId = peerId
    this.peerMetadata = peerMetadata
    this.#connected = true
    if (!this.#listening) {
      // One listener for the adapter's life: adding one per connect() would deliver every message twice after a reconnect.
      this.#listening = true
      this.port.on('message', (m: Envelope) => this.#receive(m))
      this.port.on('close', () => this.#onPortClosed())
      // Unref'd: a lone adapter whose peer never answers must not hold up the repo, nor the process.
      setTimeout(() => this.#markReady(), this.#peerWaitMs).unref()
    }
    this.port.ref() // undone by disconnect()
    this.#post({ type: 'arrive', senderId: peerId, ...(peerMetadata ? { peerMetadata } : {}) })
  }

  /** Sends a repo message to the other side; dropped while disconnected, as the contract requires. */
  send(message: Message): void {
    if (!this.#connected) return
    this.lastActivity = performance.now()
    this.count?.add(message)
    this.#post(message)
  }

  /** Leaves the connection; `connect()` may be called again later. */
  disconnect(): void {
    if (!this.#connected) return
    this.#post({ type: 'leave', senderId: this.peerId! })
    this.#connected = false
    this.#forgetRemote()
    // While disconnected the open port must not keep the process alive (the benchmark exits with disconnected adapters).
    this.port.unref()
  }

  /** Disconnects and closes the port; the adapter cannot be used again. */
  close(): void {
    if (this.#closed) return
    this.disconnect() // posts "leave" first: messages posted before close() are still delivered
    this.port.close()
  }

  #receive(m: Envelope): void {
    if (!this.#connected) return
    this.lastActivity = performance.now()
    if (!isControl(m)) {
      // Structured clone turns Buffers into plain Uint8Arrays already; copy only if something else arrived.
      const data = (m as { data?: unknown }).data
      this.emit('message', data === undefined || data instanceof Uint8Array ? m : ({ ...m, data: new Uint8Array(data as ArrayBuffer) } as Message))
      return
    }
    switch (m.type) {
      case 'arrive':
        // The other side (re)started: answer, and announce it even if known, so Repo syncs afresh.
        this.#post({ type: 'welcome', senderId: this.peerId!, ...(this.peerMetadata ? { peerMetadata: this.peerMetadata } : {}) })
        this.#announce(m.senderId, m.peerMetadata)
        break
      case 'welcome':
        // Both sides arriving at once each get an arrive and a welcome: announce once, not twice.
        if (this.#remote !== m.senderId) this.#announce(m.senderId, m.peerMetadata)
        break
      case 'leave':
        if (this.#remote === m.senderId) this.#forgetRemote()
        break
    }
  }

  #announce(peerId: PeerId, peerMetadata: PeerMetadata | undefined): void {
    this.#remote = peerId
    this.#markReady()
    this.emit('peer-candidate', { peerId, peerMetadata: peerMetadata ?? {} })
  }

  #forgetRemote(): void {
    const remote = this.#remote
    this.#remote = undefined
    if (remote !== undefined) this.emit('peer-disconnected', { peerId: remote })
  }

  #onPortClosed(): void {
    this.#closed = true
    this.#connected = false
    this.#forgetRemote()
    this.emit('close')
  }

  #post(m: Envelope): void {
    this.port.postMessage(m)
  }
}
