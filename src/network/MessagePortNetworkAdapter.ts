/**
 * A minimal automerge-repo network adapter over a node MessagePort (the same arrive/welcome
 * handshake as @automerge/automerge-repo-network-messagechannel, which is not installed here),
 * counting what it sends: the bytes of every message's `data` (the Automerge sync payload) and of
 * the whole message CBOR-encoded as a WebSocket adapter would frame it.
 */
import type { MessagePort } from 'node:worker_threads'
import { NetworkAdapter, cbor, type Message, type PeerId, type PeerMetadata } from '@automerge/automerge-repo'

export class WireCount {
  messages = 0
  dataBytes = 0
  framedBytes = 0
  byType = new Map<string, number>()
  /** Sync payload bytes by document id. */
  byDoc = new Map<string, number>()
  reset(): void {
    this.byDoc.clear()
    this.messages = 0
    this.dataBytes = 0
    this.framedBytes = 0
    this.byType.clear()
  }
}

type Envelope = { type: 'arrive' | 'welcome'; senderId: PeerId; peerMetadata?: PeerMetadata } | { type: 'leave'; senderId: PeerId } | Message

export class PortAdapter extends NetworkAdapter {
  #ready = false
  #peer: PeerId | undefined
  #closed = false
  lastActivity = performance.now()

  constructor(
    readonly port: MessagePort,
    readonly count: WireCount,
  ) {
    super()
  }

  isReady(): boolean {
    return this.#ready
  }

  whenReady(): Promise<void> {
    return Promise.resolve()
  }

  connect(peerId: PeerId, peerMetadata?: PeerMetadata): void {
    this.peerId = peerId
    if (peerMetadata) this.peerMetadata = peerMetadata
    this.#ready = true
    this.port.on('message', (m: Envelope) => {
      if (this.#closed) return
      this.lastActivity = performance.now()
      switch (m.type) {
        case 'arrive':
          this.#post({ type: 'welcome', senderId: peerId, ...(this.peerMetadata ? { peerMetadata: this.peerMetadata } : {}) })
          this.#announce(m.senderId, (m as { peerMetadata?: PeerMetadata }).peerMetadata)
          break
        case 'welcome':
          this.#announce(m.senderId, (m as { peerMetadata?: PeerMetadata }).peerMetadata)
          break
        case 'leave':
          this.emit('peer-disconnected', { peerId: m.senderId })
          break
        default: {
          const msg = m as Message
          this.emit('message', 'data' in msg && msg.data ? ({ ...msg, data: new Uint8Array(msg.data) } as Message) : msg)
        }
      }
    })
    this.#post({ type: 'arrive', senderId: peerId, ...(this.peerMetadata ? { peerMetadata: this.peerMetadata } : {}) })
  }

  #announce(peerId: PeerId, peerMetadata: PeerMetadata | undefined): void {
    this.#peer = peerId
    this.emit('peer-candidate', { peerId, peerMetadata: peerMetadata ?? {} })
  }

  #post(m: Envelope): void {
    this.port.postMessage(m)
  }

  send(message: Message): void {
    if (this.#closed) return
    this.lastActivity = performance.now()
    this.count.messages++
    this.count.byType.set(message.type, (this.count.byType.get(message.type) ?? 0) + 1)
    const data = (message as { data?: Uint8Array }).data
    if (data) {
      this.count.dataBytes += data.byteLength
      const doc = (message as { documentId?: string }).documentId ?? '?'
      this.count.byDoc.set(doc, (this.count.byDoc.get(doc) ?? 0) + data.byteLength)
    }
    this.count.framedBytes += cbor.encode(message).byteLength
    this.#post(message)
  }

  disconnect(): void {
    if (this.#closed) return
    this.#post({ type: 'leave', senderId: this.peerId! })
    this.#closed = true
    if (this.#peer) this.emit('peer-disconnected', { peerId: this.#peer })
    this.port.close()
  }
}
