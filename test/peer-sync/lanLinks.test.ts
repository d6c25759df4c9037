/**
 * LAN links between site nodes of one deployment, with no relay and no server: real nodes in this
 * process, each with its LAN sync port on loopback, linked by `dial()` (discovery over multicast is
 * tested in namespaces: lanDiscovery.test.ts). Both sides prove themselves; strangers, another
 * deployment, revoked and expired devices get nothing either way; a device of another site gets
 * only what its site is party to.
 */
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { readEnrolmentFile } from '../../src/hub/enrol.ts'
import { recordMovements } from '../../src/node/ledger.ts'
import { changeOrder, createOrder } from '../../src/node/orders.ts'
import { approve, orderStatus, submit as submitOrder } from '../../src/docs/order.ts'
import type { OrderDoc } from '../../src/schema/order.ts'
import { SiteNode } from '../../src/node/siteNode.ts'
import { hubDeployment, ok } from '../helpers/deployment.ts'
import { tempDir } from '../helpers/tempDir.ts'
import { until } from '../helpers/until.ts'

const HOUR = 3_600_000

async function node(file: string, now?: () => number): Promise<SiteNode> {
  const { enrolment } = await readEnrolmentFile(file)
  const opened = await SiteNode.open({ dataDir: tempDir('lan-'), enrolment, logger: pino({ level: 'silent' }), ...(now ? { now } : {}) })
  onTestFinished(() => opened.close())
  await opened.startLan({ host: '127.0.0.1', port: 0, discover: false, minRetryMs: 100, maxRetryMs: 400, refusedRetryMs: 60_000 })
  return opened
}

const url = (n: SiteNode) => `ws://127.0.0.1:${n.lan!.port}`
const receipt = (id: string, quantity: number) => ({ id, kind: 'receipt', sku: 'AMOX-500', quantity, user: 'amina' })
const onHand = (n: SiteNode) => n.book.onHand().get('AMOX-500') ?? 0
const lanPeer = (n: SiteNode, peerId: string) => n.lan!.peers().find((p) => p.peerId === peerId)

describe('LAN links', () => {
  it('two devices of a store link both ways proven and sync; a device of another store gets the catalog and nothing of the store', async () => {
    const { enrol, file } = await hubDeployment()
    await enrol('a1', 'store-a')
    await enrol('a2', 'store-a')
    await enrol('b1', 'store-b')
    const [a1, a2, b1] = await Promise.all([node(file('a1')), node(file('a2')), node(file('b1'))])
    // b1 is linked before a1 records anything: the journal a1 then opens must not reach it.
    a1.lan!.dial(b1.peerId, url(b1))
    await until('b1 linked first', () => (lanPeer(b1, a1.peerId)?.state === 'linked' ? true : undefined), 15_000)
    await recordMovements(a1, [receipt('r1', 30)])
    // The smaller peer id dials: site/store-a/a1 < site/store-a/a2 < site/store-b/b1.
    a1.lan!.dial(a2.peerId, url(a2))
    await until('a2 to hold a1\'s receipt', () => (onHand(a2) === 30 ? true : undefined), 15_000)
    await recordMovements(a2, [receipt('r2', 5)])
    await until('a1 to hold a2\'s receipt', () => (onHand(a1) === 35 ? true : undefined), 15_000)
    expect(lanPeer(a1, a2.peerId)).toMatchObject({ state: 'linked', direction: 'out', site: 'store-a', device: 'a2', role: 'device' })
    expect(lanPeer(a2, a1.peerId)).toMatchObject({ state: 'linked', direction: 'in', site: 'store-a', device: 'a1' })
    // Storage ids: a peer may use its own, never this node's or another peer's (a copied folder, or a lie).
    const [id1, id2] = await Promise.all([a1.repo.storageId(), a2.repo.storageId()])
    expect(a1.storageIdFree(id2!, a2.peerId)).toBe(true)
    expect(a1.storageIdFree(id2!, b1.peerId)).toBe(false)
    expect(a1.storageIdFree(id1!, a2.peerId)).toBe(false)
    expect(a1.storageIdFree('a-fresh-one', b1.peerId)).toBe(true)

    // b1 is linked to a1 too, and holds the deployment's catalog…
    await until('b1 linked', () => (lanPeer(b1, a1.peerId)?.state === 'linked' ? true : undefined), 15_000)
    expect(b1.repo.peers).toContain(a1.peerId)
    // …but a1 shares nothing of store-a with it: asked for a1's ledger, it is unavailable.
    expect(a1.mayShare(b1.peerId, a1.store.ledger.handle.documentId)).toBe(false)
    expect(a1.mayShare(b1.peerId, a1.catalog.documentId)).toBe(true)
    const asked = b1.repo.find(a1.store.ledger.url as never)
    await expect(asked).rejects.toThrow(/unavailable/)
    // Nor its journal, held on a1's disk.
    const journal = [...a1.store.journals()][0]!.url
    await expect(b1.repo.find(journal as never)).rejects.toThrow(/unavailable/)
    expect(a1.mayShare(b1.peerId, journal.slice('automerge:'.length))).toBe(false)
    expect(onHand(b1)).toBe(0)
    // Nothing of store A's own is held by b1, in any form: not its index, ledger, directory or any journal.
    await recordMovements(a1, [receipt('r3', 1)])
    await new Promise((resolve) => setTimeout(resolve, 500))
    const ownOfA = [a1.index.documentId, a1.store.ledger.handle.documentId, ...[...a1.store.journals()].map((j) => j.handle.documentId)]
    for (const id of ownOfA) expect(b1.repo.handles[id as never]?.isReady() ?? false, `b1 holds ${id}`).toBe(false)

    // An order of store A to store B reaches b1 with no relay, is listed there, and B's approval comes back.
    const ctx = (n: SiteNode, user: string) => ({ user, device: n.identity.node, at: Date.now() }) as never
    await createOrder(a1, { id: 'po-lan', from: 'store-a', to: 'store-b', lines: [{ sku: 'AMOX-500', requested: 12 }] }, ctx(a1, 'amina'))
    await changeOrder(a1, 'po-lan', 'order.submit', (d, input, c) => submitOrder(d, input, c), {}, ctx(a1, 'amina'))
    await until('b1 to list the order', () => (b1.orders.has('po-lan') ? true : undefined), 15_000)
    await until('b1 to see it submitted', () => (orderStatus(b1.orders.get('po-lan')!.doc() as OrderDoc) === 'submitted' ? true : undefined), 15_000)
    await changeOrder(b1, 'po-lan', 'order.approve', approve, {}, ctx(b1, 'otieno'))
    await until('a1 to see B\'s approval', () => (orderStatus(a1.orders.get('po-lan')!.doc() as OrderDoc) === 'approved' ? true : undefined), 15_000)
    // a2 (store A) gets it too; b1 still has nothing else of store A.
    await until('a2 to list it', () => (a2.orders.has('po-lan') ? true : undefined), 15_000)
    expect(a1.mayShare(b1.peerId, a1.orders.get('po-lan')!.documentId)).toBe(true)
    expect(a1.mayShare(b1.peerId, a1.index.documentId)).toBe(false)
  }, 60_000)

  it('refuses, in both directions, a node of another deployment, a revoked device and an expired credential', async () => {
    const { hub, enrol, file } = await hubDeployment()
    await enrol('r1', 'store-a')
    await ok(['revoke', '--data', hub, '--device', 'r1'])
    await enrol('a1', 'store-a') // holds the list naming r1
    await enrol('e1', 'store-a', ['--expires', '1h'])
    const other = await hubDeployment()
    await other.enrol('x1', 'store-a')
    const a1 = await node(file('a1'), () => Date.now() + 2 * HOUR) // e1 has expired by a1's clock
    const [r1, e1, x1] = await Promise.all([node(file('r1')), node(file('e1')), node(other.file('x1'))])
    await recordMovements(a1, [receipt('secret', 99)])

    // They dial a1: a1 refuses each, saying why.
    for (const stranger of [r1, e1, x1]) stranger.lan!.dial(a1.peerId, url(a1))
    await until('the three refusals', () => ([r1, e1, x1].every((s) => lanPeer(s, a1.peerId)?.state === 'refused') ? true : undefined), 15_000)
    expect(lanPeer(r1, a1.peerId)?.reason).toMatch(/revoked/)
    expect(lanPeer(e1, a1.peerId)?.reason).toMatch(/expired/)
    expect(lanPeer(x1, a1.peerId)?.reason).toMatch(/deployment|signature/)
    // a1 dials them: it refuses each of them as a server (a node proves itself too).
    for (const stranger of [r1, e1, x1]) a1.lan!.dial(stranger.peerId, url(stranger))
    await until('a1 to refuse the three', () => ([r1, e1, x1].every((s) => lanPeer(a1, s.peerId)?.state === 'refused') ? true : undefined), 15_000)
    expect(lanPeer(a1, r1.peerId)?.reason).toMatch(/revoked/)
    expect(lanPeer(a1, e1.peerId)?.reason).toMatch(/expired/)
    expect(lanPeer(a1, x1.peerId)?.reason).toMatch(/deployment|signature/)
    // Nothing moved: not one peer linked, nothing of a1's received.
    for (const n of [a1, r1, e1, x1]) expect(n.repo.peers).toEqual([])
    for (const stranger of [r1, e1, x1]) expect(onHand(stranger)).toBe(0)
  }, 60_000)

  it('cuts off a linked peer whose credential expires, in either direction, and it stays out', async () => {
    const { enrol, file } = await hubDeployment()
    await enrol('a1', 'store-a')
    await enrol('a2', 'store-a', ['--expires', '1h'])
    await enrol('a3', 'store-a', ['--expires', '1h'])
    let ahead = 0
    const a1 = await node(file('a1'), () => Date.now() + ahead)
    const [a2, a3] = await Promise.all([node(file('a2')), node(file('a3'))])
    a1.lan!.dial(a2.peerId, url(a2)) // a1 dialled a2
    a3.lan!.dial(a1.peerId, url(a1)) // a3 dialled a1
    await until('both linked', () => (lanPeer(a1, a2.peerId)?.state === 'linked' && lanPeer(a1, a3.peerId)?.state === 'linked' ? true : undefined), 15_000)
    expect(a1.lan!.revalidate()).toEqual([])
    // Two hours later by a1's clock, both credentials have expired.
    ahead = 2 * HOUR
    expect(a1.lan!.revalidate().sort()).toEqual([a2.peerId, a3.peerId].sort())
    await until('both links gone', () => (!a1.repo.peers.includes(a2.peerId as never) && !a1.repo.peers.includes(a3.peerId as never) ? true : undefined), 10_000)
    for (const p of [a2, a3]) expect(lanPeer(a1, p.peerId)).toMatchObject({ state: 'refused', reason: expect.stringMatching(/expired/) })
    // a3 dials again: refused at the door.
    await recordMovements(a1, [receipt('after', 3)])
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    expect(a1.repo.peers).toEqual([])
    expect(onHand(a3)).toBe(0)
    expect(onHand(a2)).toBe(0)
  }, 60_000)
})
