/**
 * automerge-repo's own network adapter acceptance suite against MessagePortNetworkAdapter, bare and
 * behind the DurableGate, in the two topologies upstream's MessageChannel adapter is tested with.
 * The package exports `./helpers/*.js`, so the suite is imported by its public path.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { Repo, type NetworkAdapterInterface, type PeerId } from '@automerge/automerge-repo'
import { runNetworkAdapterTests, type SetupFn } from '@automerge/automerge-repo/helpers/tests/network-adapter-tests.js'
import { MessagePortNetworkAdapter, WireCount, type MessagePortNetworkAdapterOptions } from '../../src/network/MessagePortNetworkAdapter.ts'
import { churningGate, openGate, type TestGate } from './gates.ts'

/** Builds the adapter (possibly wrapped) for one end of a channel. */
type Make = (port: MessagePort) => NetworkAdapterInterface

const bare: Make = (port) => new MessagePortNetworkAdapter(port)
/**
 * In both topologies some adapters never get a peer in the 2-peer tests (Bob's link to Charlie), and
 * Repo waits for every adapter to be ready, i.e. for `peerWaitMs`. The default (1 s, as upstream's
 * adapters) is tested bare; the other variants shorten it so this file stays quick.
 */
const quick = (options: MessagePortNetworkAdapterOptions = {}): Make => (port) => new MessagePortNetworkAdapter(port, { peerWaitMs: 100, ...options })

/** A set-up of three peers, given how to build each adapter. */
type Topology = (make: Make, onTeardown?: () => void) => SetupFn

/** Bob is the hub; Alice and Charlie only reach each other through him. */
const hubAndSpoke: Topology = (make, onTeardown = () => {}) => {
  return async () => {
    const ab = new MessageChannel()
    const bc = new MessageChannel()
    const ports: MessagePort[] = [ab.port1, ab.port2, bc.port1, bc.port2]
    const a = make(ab.port1)
    const b = [make(ab.port2), make(bc.port1)]
    const c = make(bc.port2)
    const teardown = () => {
      onTeardown()
      for (const port of ports) port.close()
    }
    return { adapters: [a, b, c], teardown }
  }
}

/** Every peer has its own channel to each other peer. */
const allToAll: Topology = (make, onTeardown = () => {}) => {
  return async () => {
    const ab = new MessageChannel()
    const bc = new MessageChannel()
    const ac = new MessageChannel()
    const ports: MessagePort[] = [ab.port1, ab.port2, bc.port1, bc.port2, ac.port1, ac.port2]
    const a = [make(ab.port1), make(ac.port1)]
    const b = [make(ab.port2), make(bc.port1)]
    const c = [make(bc.port2), make(ac.port2)]
    const teardown = () => {
      onTeardown()
      for (const port of ports) port.close()
    }
    return { adapters: [a, b, c], teardown }
  }
}

/** Each setup gets its own gate, so one test's queue never spills into the next. */
function gated(topology: Topology, makeGate: () => TestGate): SetupFn {
  return async () => {
    const { gate, stop } = makeGate()
    return topology((port) => gate.wrap(quick()(port)), stop)()
  }
}

describe('MessagePortNetworkAdapter', () => {
  runNetworkAdapterTests(hubAndSpoke(bare), 'hub and spoke')
  runNetworkAdapterTests(allToAll(bare), 'all-to-all')
  // The wire benchmark's configuration: every adapter counting what it sends.
  runNetworkAdapterTests(hubAndSpoke(quick({ count: new WireCount() })), 'hub and spoke, counting')
})

describe('MessagePortNetworkAdapter behind a DurableGate', () => {
  runNetworkAdapterTests(gated(hubAndSpoke, openGate), 'open gate, hub and spoke')
  runNetworkAdapterTests(gated(allToAll, openGate), 'open gate, all-to-all')
  runNetworkAdapterTests(gated(hubAndSpoke, churningGate), 'gate held most of the time, hub and spoke')
  runNetworkAdapterTests(gated(allToAll, churningGate), 'gate held most of the time, all-to-all')
})

describe('MessagePortNetworkAdapter specifics', () => {
  it('counts what it sends, only when given a counter, and announces each peer once', async () => {
    const { port1, port2 } = new MessageChannel()
    const count = new WireCount()
    const counted = new MessagePortNetworkAdapter(port1, { count })
    const plain = new MessagePortNetworkAdapter(port2)
    const candidates: string[] = []
    counted.on('peer-candidate', ({ peerId }) => candidates.push(`counted saw ${peerId}`))
    plain.on('peer-candidate', ({ peerId }) => candidates.push(`plain saw ${peerId}`))
    const a = new Repo({ network: [counted], peerId: 'a' as PeerId })
    const b = new Repo({ network: [plain], peerId: 'b' as PeerId })
    const handle = a.create<{ n: number }>({ n: 1 })
    const found = await b.find<{ n: number }>(handle.url)
    expect(found.doc().n).toBe(1)
    expect(count.messages).toBeGreaterThan(0)
    expect(count.dataBytes).toBeGreaterThan(0)
    expect(count.framedBytes).toBeGreaterThan(count.dataBytes)
    expect(count.byDoc.get(handle.documentId)).toBeGreaterThan(0)
    expect(plain.count).toBeUndefined()
    // Both sides arrive at once, so each gets an arrive and a welcome: still one peer-candidate each.
    expect(candidates.sort()).toEqual(['counted saw b', 'plain saw a'])
    await Promise.all([a.shutdown(), b.shutdown()])
    counted.close()
  })

  it('reports ready after peerWaitMs when nobody is at the other end', async () => {
    const { port1, port2 } = new MessageChannel()
    const lonely = new MessagePortNetworkAdapter(port1, { peerWaitMs: 20 })
    lonely.connect('lonely' as PeerId)
    expect(lonely.isReady()).toBe(false)
    await lonely.whenReady()
    expect(lonely.isReady()).toBe(true)
    lonely.close()
    port2.close()
  })

  it('ends the connection and emits close when the other end closes the port', async () => {
    const { port1, port2 } = new MessageChannel()
    const left = new MessagePortNetworkAdapter(port1)
    const right = new MessagePortNetworkAdapter(port2)
    const connected = new Promise((resolve) => left.once('peer-candidate', resolve))
    left.connect('left' as PeerId)
    right.connect('right' as PeerId)
    await connected
    const events: string[] = []
    const closed = new Promise<void>((resolve) => left.once('close', () => resolve()))
    left.on('peer-disconnected', ({ peerId }) => events.push(`disconnected ${peerId}`))
    left.on('close', () => events.push('close'))
    port2.close()
    await closed
    expect(events).toEqual(['disconnected right', 'close'])
    expect(() => left.connect('left' as PeerId)).toThrow(/closed/)
  })
})
