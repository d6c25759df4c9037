/**
 * The site node's connection to its relay: automerge-repo's websocket protocol (CBOR `join`/`peer`
 * messages, the stock WebSocketServerAdapter's counterpart) behind the relay's authentication
 * (src/network/authProtocol.ts). Before each (re)connect it fetches a challenge, signs it with the
 * device's key and opens the socket with its credential. It reconnects with exponential backoff and
 * jitter; when the relay refuses (401/403/409) it records why ({@link lastRefusal}), logs it, and
 * retries slowly (minutes), so a revoked or expired device never hammers the relay.
 *
 * The stock WebSocketClientAdapter cannot be extended for this: it opens its socket synchronously
 * with a fixed URL, retries at a fixed interval, and throws from its error handler on an HTTP
 * refusal (an uncaught exception in Node).
 */
import { CONTROL_TYPE, ControlMessage, type ControlFrame } from './control.ts'
import { cbor, NetworkAdapter, type Message, type PeerId, type PeerMetadata } from '@automerge/automerge-repo'
import type { IncomingHttpHeaders } from 'node:http'
import type { Logger } from 'pino'
import WebSocket from 'ws'
import { proveKey } from './credential.ts'
import { CHALLENGE_PATH, CLOSE_POLICY, parseCloseReason, parseRefusal, refusalStatus, relayHttpUrl, syncUrl, type ChallengeResponse, type RefusalBody } from './authProtocol.ts'

export interface AuthenticatedClientOptions {
  /** `ws://host:port` of the relay. */
  url: string
  /** The device's credential (compact token) and its private key (PKCS#8 PEM). */
  credential: string
  privateKey: string
  logger?: Logger
  /** First retry delay; doubles up to `maxRetryMs`. */
  minRetryMs?: number
  maxRetryMs?: number
  /** Delay after a refusal (401/403/409): minutes by default. */
  refusedRetryMs?: number
  /** Timeout of the challenge request and of the handshake. */
  timeoutMs?: number
  /**
   * The relay pings every few seconds (automerge-repo's server adapter: 5 s); with no ping for this
   * long the connection is taken as dead (a half-open TCP connection) and made again.
   */
  deadAfterMs?: number
  /** Control messages from the relay (src/network/control.ts): a relay chained under another takes them. */
  onControl?: (control: ControlMessage, from: PeerId) => void
  /** Whether the peer may use this storage id (not this node's, nor another peer's): else it is linked without one. */
  storageIdFree?: (storageId: string, peerId: string) => boolean
  /**
   * A LAN peer proves itself too (src/peer-sync/lanProtocol.ts): `params` adds parameters to each
   * upgrade (a fresh nonce, the protocol version), `verify` checks the server's answer to it. A
   * server that fails is refused like a refusal by it (recorded, retried slowly), and a `peer`
   * message from another peer id than the proven one closes the socket.
   */
  peerCheck?: {
    /** The proof over the server's challenge (a LAN peer's own kind, bound to the server it means to reach). */
    prove(challenge: string, peerId: string): string
    params(): Record<string, string>
    verify(headers: IncomingHttpHeaders, params: Record<string, string>): { ok: true; peerId: string } | { ok: false; refusal: RefusalBody }
  }
  /** How the logs name the other side (default "relay"). */
  label?: string
}

/** Why the relay refused this device last, with the HTTP status and when. */
export interface RefusalRecord extends RefusalBody {
  status: number
  at: number
}

export class AuthenticatedWebSocketClientAdapter extends NetworkAdapter {
  readonly url: string
  socket: WebSocket | undefined
  remotePeerId: PeerId | undefined
  /** The last refusal by the relay; cleared when a connection is accepted. */
  lastRefusal: RefusalRecord | undefined
  /** The last failure to reach the relay at all (network error, timeout). */
  lastError: string | undefined

  readonly #options: Required<Omit<AuthenticatedClientOptions, 'logger' | 'onControl' | 'peerCheck' | 'storageIdFree'>> & Pick<AuthenticatedClientOptions, 'logger' | 'onControl' | 'peerCheck' | 'storageIdFree'>
  /** The peer id the server proved at the upgrade (LAN peers), for the `peer` message to match. */
  #proven: string | undefined
  #running = false
  #attempt = 0
  #timer: ReturnType<typeof setTimeout> | undefined
  #watchdog: ReturnType<typeof setTimeout> | undefined
  #generation = 0
  #ready = false
  #resolveReady!: () => void
  readonly #readyPromise = new Promise<void>((resolve) => (this.#resolveReady = resolve))

  constructor(options: AuthenticatedClientOptions) {
    super()
    this.url = options.url
    this.#options = { minRetryMs: 500, maxRetryMs: 60_000, refusedRetryMs: 5 * 60_000, timeoutMs: 10_000, deadAfterMs: 30_000, label: 'relay', ...options }
  }

  isReady(): boolean {
    return this.#ready
  }

  whenReady(): Promise<void> {
    return this.#readyPromise
  }

  #forceReady(): void {
    if (!this.#ready) {
      this.#ready = true
      this.#resolveReady()
    }
  }

  connect(peerId: PeerId, peerMetadata?: PeerMetadata): void {
    if (this.#running) this.disconnect() // connect twice: one connection, made again
    this.peerId = peerId
    this.peerMetadata = peerMetadata ?? {}
    this.#running = true
    this.#attempt = 0
    // Do not hold automerge-repo's lookups for ever when the relay is away (as the stock adapter).
    setTimeout(() => this.#forceReady(), 1000).unref?.()
    void this.#open()
  }

  disconnect(): void {
    this.#running = false
    this.#generation++
    clearTimeout(this.#timer)
    clearTimeout(this.#watchdog)
    this.#timer = undefined
    const socket = this.socket
    this.socket = undefined
    if (socket) {
      socket.removeAllListeners()
      socket.on('error', () => {})
      if (socket.readyState === WebSocket.OPEN) socket.send(cbor.encode({ type: 'leave', senderId: this.peerId }))
      socket.close()
    }
    this.#lostPeer()
  }

  send(message: Message): void {
    if ('data' in message && message.data?.byteLength === 0) throw new Error('Tried to send a zero-length message')
    const socket = this.socket
    // Not connected: drop; automerge-repo syncs again when the peer comes back.
    if (!socket || socket.readyState !== WebSocket.OPEN || !this.remotePeerId) return
    socket.send(cbor.encode(message))
  }

  /** Sends a control message (src/network/control.ts) to the relay; false when not connected. */
  sendControl(control: ControlMessage): boolean {
    const socket = this.socket
    if (!socket || socket.readyState !== WebSocket.OPEN || !this.remotePeerId || !this.peerId) return false
    const frame: ControlFrame = { type: CONTROL_TYPE, senderId: this.peerId, targetId: this.remotePeerId, control }
    socket.send(cbor.encode(frame))
    return true
  }

  #lostPeer(): void {
    if (this.remotePeerId) {
      const peerId = this.remotePeerId
      this.remotePeerId = undefined
      this.emit('peer-disconnected', { peerId })
    }
  }

  #retry(delayMs: number): void {
    if (!this.#running) return
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => void this.#open(), delayMs)
  }

  /** Exponential backoff with full jitter in its upper half. */
  #backoff(): number {
    const base = Math.min(this.#options.maxRetryMs, this.#options.minRetryMs * 2 ** Math.min(this.#attempt++, 20))
    return Math.round(base / 2 + Math.random() * (base / 2))
  }

  /** `how`: "refused this device" (the other side said no) or "refused by this device" (a LAN peer that did not prove itself). */
  #refused(status: number, body: string, how = 'refused this device'): void {
    const refusal = parseRefusal(body) ?? { error: 'malformed' as const, reason: `the ${this.#options.label} answered HTTP ${status}` }
    this.lastRefusal = { ...refusal, status, at: Date.now() }
    this.#options.logger?.warn({ [this.#options.label]: this.url, status, error: refusal.error }, how === 'refused this device' ? `the ${this.#options.label} refused this device: ${refusal.reason}` : `the ${this.#options.label} at ${this.url} was refused: ${refusal.reason}`)
    this.#forceReady()
    const slow = this.#options.refusedRetryMs
    this.#retry(Math.round(slow * (0.75 + Math.random() * 0.5)))
  }

  #failed(what: string): void {
    this.lastError = what
    this.#options.logger?.debug({ relay: this.url, error: what }, 'relay not reachable')
    this.#retry(this.#backoff())
  }

  async #open(): Promise<void> {
    if (!this.#running || !this.peerId) return
    const generation = ++this.#generation
    const peerId = this.peerId
    let challenge: ChallengeResponse
    try {
      const response = await fetch(relayHttpUrl(this.url, CHALLENGE_PATH), { signal: AbortSignal.timeout(this.#options.timeoutMs) })
      const text = await response.text()
      if (generation !== this.#generation) return
      if (!response.ok) {
        if (response.status === 503) return this.#failed(`challenge: HTTP 503`)
        return this.#refused(response.status, text)
      }
      challenge = JSON.parse(text) as ChallengeResponse
      if (typeof challenge.challenge !== 'string') throw new Error('no challenge in the answer')
    } catch (error) {
      if (generation !== this.#generation) return
      return this.#failed(`challenge: ${(error as Error).message}`)
    }
    const check = this.#options.peerCheck
    const extra = check?.params() ?? {}
    const proof = check ? check.prove(challenge.challenge, peerId) : proveKey(challenge.challenge, peerId, this.#options.privateKey)
    const url = syncUrl(this.url, { peer: peerId, credential: this.#options.credential, challenge: challenge.challenge, proof }, extra)
    const socket = new WebSocket(url, { handshakeTimeout: this.#options.timeoutMs, maxPayload: 256 * 1024 * 1024 })
    socket.binaryType = 'nodebuffer'
    this.socket = socket
    this.#proven = undefined
    if (check) {
      // Before 'open': the server's answer must prove it holds a credential of this deployment.
      socket.on('upgrade', (response) => {
        const verdict = check.verify(response.headers, extra)
        if (verdict.ok) {
          this.#proven = verdict.peerId
          return
        }
        socket.removeAllListeners('close')
        socket.removeAllListeners('open')
        socket.on('error', () => {})
        socket.terminate()
        this.socket = undefined
        if (generation === this.#generation) this.#refused(0, JSON.stringify(verdict.refusal), 'refused by this device')
      })
    }
    socket.on('unexpected-response', (_request, response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => {
        if (body.length < 64 * 1024) body += chunk
      })
      response.on('end', () => {
        socket.terminate() // the handshake is over: let the socket go
        if (generation === this.#generation) this.#refused(response.statusCode ?? 0, body)
      })
      response.on('error', () => {})
      socket.removeAllListeners('close')
      socket.on('error', () => {})
      this.socket = undefined
    })
    const alive = () => {
      clearTimeout(this.#watchdog)
      this.#watchdog = setTimeout(() => {
        this.#options.logger?.warn({ relay: this.url }, 'no word from the relay: connecting again')
        socket.terminate()
      }, this.#options.deadAfterMs)
      this.#watchdog.unref?.()
    }
    socket.on('ping', alive)
    socket.on('open', () => {
      alive()
      // A frame still arriving counts too: a catch-up download may take minutes over a slow link,
      // with the relay's pings queued behind it (ws keeps the TCP socket as `_socket`).
      ;(socket as unknown as { _socket?: NodeJS.EventEmitter })._socket?.on('data', alive)
      socket.send(cbor.encode({ type: 'join', senderId: peerId, peerMetadata: this.peerMetadata, supportedProtocolVersions: ['1'] }))
    })
    // Any frame from the relay shows it is there (its ping may wait behind a download on a slow link).
    socket.on('message', (data: Buffer) => {
      alive()
      this.#receive(socket, data)
    })
    socket.on('error', (error) => {
      this.lastError = error.message
    })
    socket.on('close', (code, reason) => {
      if (this.socket !== socket) return
      clearTimeout(this.#watchdog)
      this.socket = undefined
      this.#lostPeer()
      const refusal = parseCloseReason(reason.toString())
      if (code === CLOSE_POLICY && refusal) {
        // Closed by the relay's policy after the upgrade (revoked meanwhile, expired, peer id in use…).
        this.#refused(refusalStatus(refusal.error), JSON.stringify(refusal))
      } else this.#failed(`connection closed (${code})`)
    })
  }

  #receive(socket: WebSocket, data: Buffer): void {
    let message: { type?: unknown; senderId?: PeerId; peerMetadata?: PeerMetadata; message?: string }
    try {
      message = cbor.decode(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    } catch {
      this.#options.logger?.warn({ relay: this.url }, 'the relay sent a frame that is not CBOR')
      return
    }
    if (!message || typeof message !== 'object') return
    if (message.type === 'peer' && message.senderId) {
      if (this.#proven !== undefined && message.senderId !== this.#proven) {
        this.#options.logger?.warn({ [this.#options.label]: this.url, proven: this.#proven, said: message.senderId }, 'the peer named itself other than its credential: closed')
        socket.terminate()
        return
      }
      this.#attempt = 0
      this.lastRefusal = undefined
      this.lastError = undefined
      this.remotePeerId = message.senderId
      this.#forceReady()
      // A peer may not pass for another's storage (what it holds taken for what the relay holds).
      let peerMetadata = message.peerMetadata ?? {}
      const claimed = (peerMetadata as { storageId?: unknown }).storageId
      if (typeof claimed === 'string' && this.#options.storageIdFree && !this.#options.storageIdFree(claimed, message.senderId)) {
        this.#options.logger?.warn({ [this.#options.label]: this.url, peer: message.senderId }, 'the peer claims a storage id another peer (or this node) has: linked without one')
        const { storageId: _taken, ...rest } = peerMetadata as Record<string, unknown>
        peerMetadata = { ...rest, isEphemeral: true } as typeof peerMetadata
      }
      this.emit('peer-candidate', { peerId: message.senderId, peerMetadata })
    } else if (message.type === CONTROL_TYPE) {
      if (socket !== this.socket || !this.remotePeerId || !this.#options.onControl) return
      const control = ControlMessage.safeParse((message as { control?: unknown }).control)
      if (control.success) this.#options.onControl(control.data, this.remotePeerId)
      else this.#options.logger?.warn({ relay: this.url, error: control.error.issues[0]?.message }, 'the relay sent a control message that is not one: ignored')
    } else if (message.type === 'error') {
      this.#options.logger?.warn({ relay: this.url }, `the relay reported an error: ${String(message.message)}`)
    } else if (socket === this.socket && this.remotePeerId) {
      // A LAN peer speaks only for itself, and only to this node: automerge-repo would take a sync
      // message in anyone's name (its access rule asks about the named sender).
      const m = message as { senderId?: unknown; targetId?: unknown }
      if (this.#proven !== undefined && (m.senderId !== this.#proven || m.targetId !== this.peerId)) {
        this.#options.logger?.warn({ [this.#options.label]: this.url, proven: this.#proven, said: String(m.senderId).slice(0, 100) }, 'the peer sent a message in another name: closed')
        socket.terminate()
        return
      }
      this.emit('message', message as Message)
    }
  }
}
