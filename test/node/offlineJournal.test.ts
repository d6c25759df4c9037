/**
 * After a long relay outage the next movement goes into a new journal, once per outage: what is
 * recorded offline then reaches the relay as a document it has never seen, sent whole (~37 B per
 * movement) rather than change by change (~200 B each; BENCHMARKS.md sections 3 and 5). A real
 * enrolment from the hub; the relay address leads nowhere, so the link stays down.
 */
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { journalEntries } from '../../src/docs/ledger.ts'
import { readEnrolmentFile } from '../../src/hub/enrol.ts'
import { recordMovements } from '../../src/node/ledger.ts'
import { SiteNode } from '../../src/node/siteNode.ts'
import { freePort, hubDeployment } from '../helpers/deployment.ts'
import { tempDir } from '../helpers/tempDir.ts'

describe('a long relay outage', () => {
  it('opens one new journal for what is recorded during it, carrying on hand', async () => {
    const { enrol, file } = await hubDeployment()
    await enrol('desk-1', 'store-a')
    const { enrolment } = await readEnrolmentFile(file('desk-1'))
    const node = await SiteNode.open({ dataDir: tempDir(), enrolment, logger: pino({ level: 'silent' }), offlineJournalAfterMs: 0 })
    onTestFinished(() => node.close())
    const mv = (id: string, quantity: number) => ({ id, kind: 'receipt', sku: 'AMOX-500', quantity, user: 'amina' })

    await recordMovements(node, [mv('before', 10)])
    const mine = () => journalEntries(node.store.ledger.doc()).filter((e) => e.node === 'desk-1').map((e) => e.n)
    expect(mine()).toEqual([1])
    // Not enrolled with a relay link yet: no outage, no new journal.
    await recordMovements(node, [mv('still-1', 1)])
    expect(mine()).toEqual([1])

    node.connectRelay(`ws://127.0.0.1:${await freePort()}`)
    await recordMovements(node, [mv('offline-1', 2)])
    await recordMovements(node, [mv('offline-2', 3)])
    expect(mine()).toEqual([1, 2])
    expect(node.book.onHand().get('AMOX-500')).toBe(16)
    expect(node.book.check()).toEqual([])
  })
})
