/**
 * automerge-repo's network adapter acceptance suite over the authenticated client adapter against
 * the relay (startRelay: challenge, credential, proof of key, socket bound to the peer id). The
 * suite names its peers (alice, bob, left, …), so the peer-id binding is the only thing replaced:
 * any name is accepted for the suite's devices, still proven with their keys.
 */
import { describe } from 'vitest'
import '@automerge/automerge-repo'
import { Repo, type NetworkAdapterInterface } from '@automerge/automerge-repo'
import { runNetworkAdapterTests } from '@automerge/automerge-repo/helpers/tests/network-adapter-tests.js'
import { AuthenticatedWebSocketClientAdapter } from '../../src/network/AuthenticatedWebSocketClientAdapter.ts'
import { testDeployment, testRelay } from '../relay/helpers.ts'

function setup() {
  return async () => {
    const dep = testDeployment()
    const { relay, cleanup } = await testRelay(dep, {
      // The suite gives the adapter to its own Repo; the relay's own Repo has no network.
      openRepo: () => new Repo({ network: [] }),
      bindsPeer: () => true,
    })
    const client = (device: string) => {
      const d = dep.device('suite', device)
      return new AuthenticatedWebSocketClientAdapter({ url: relay.url, credential: d.credential, privateKey: d.keys.privateKey, minRetryMs: 50, maxRetryMs: 200 })
    }
    const alice = client('alice')
    const bob = client('bob')
    const teardown = () => {
      alice.disconnect()
      bob.disconnect()
      void cleanup()
    }
    return { adapters: [alice, relay.adapter, bob] as [NetworkAdapterInterface, NetworkAdapterInterface, NetworkAdapterInterface], teardown }
  }
}

// The suite's own 50 ms pause races the handshakes (see websocketGate.test.ts); ours adds a challenge round trip.
describe('authenticated WebSocket adapters through the relay', { retry: 5 }, () => {
  runNetworkAdapterTests(setup(), 'authenticated')
})
