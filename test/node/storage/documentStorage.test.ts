/**
 * The site node's document storage (src/node/storage/documentStorage.ts) over the real crash-safe
 * adapter: changes are appended to one log per document, a record torn by a crash is cut off (it
 * was never acknowledged) while every whole record loads, compaction leaves one snapshot with
 * nothing lost, and an emptied (unloaded) document is never saved over one with content.
 */
import { appendFileSync, existsSync, readdirSync, statSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import * as A from '@automerge/automerge'
import type { DocumentId } from '@automerge/automerge-repo'
import { describe, expect, it } from 'vitest'
import { DocumentStorage, logKey, readLog } from '../../../src/node/storage/documentStorage.ts'
import { DurableFsStorageAdapter } from '../../../src/node/storage/DurableFsStorageAdapter.ts'
import { tempDir } from '../../helpers/tempDir.ts'

type Doc = { items: Record<string, number> }
const ID = '3xyzDocumentIdForTests' as DocumentId

function fileOf(base: string, key: string[]): string {
  const [first, ...rest] = key
  return path.join(base, first!.slice(0, 2), first!.slice(2), ...rest)
}

/** A document saved once (snapshot), then `n` changes each saved on its own. */
async function writeChanges(storage: DocumentStorage, n: number): Promise<A.Doc<Doc>> {
  let doc = A.from<Doc>({ items: {} })
  await storage.save(ID, doc)
  for (let i = 0; i < n; i++) {
    doc = A.change(doc, (d) => {
      d.items[`k${i}`] = i
    })
    await storage.save(ID, doc)
  }
  return doc
}

describe('the document storage', () => {
  it('appends each change to one log file, and loads the snapshot and every logged change', async () => {
    const base = tempDir()
    const doc = await writeChanges(new DocumentStorage(new DurableFsStorageAdapter(base)), 20)
    // One snapshot and one log: no file per change.
    expect(readdirSync(path.join(base, ID.slice(0, 2), ID.slice(2))).sort()).toEqual(['log', 'snapshot'])
    const loaded = await new DocumentStorage(new DurableFsStorageAdapter(base)).load<Doc>(ID)
    expect(loaded).toEqual(doc)
    expect(A.getHeads(loaded!)).toEqual(A.getHeads(doc))
  })

  it('cuts a record a crash tore off the end of the log, keeps every whole one, and appends after them', async () => {
    const base = tempDir()
    await writeChanges(new DocumentStorage(new DurableFsStorageAdapter(base)), 5)
    const log = fileOf(base, logKey(ID))
    const whole = statSync(log).size
    // A crash in the middle of the next append: a length and CRC, then only part of the payload.
    appendFileSync(log, Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9]))
    const storage = new DocumentStorage(new DurableFsStorageAdapter(base))
    const loaded = await storage.load<Doc>(ID)
    expect(Object.keys(loaded!.items)).toHaveLength(5)
    expect(statSync(log).size).toBe(whole)
    // Later changes are appended after the last whole record and load again.
    const next = A.change(loaded!, (d) => {
      d.items.after = 1
    })
    await storage.save(ID, next)
    const again = await new DocumentStorage(new DurableFsStorageAdapter(base)).load<Doc>(ID)
    expect(again!.items.after).toBe(1)
    expect(Object.keys(again!.items)).toHaveLength(6)
  })

  it('reads no record past a corrupted one (its CRC does not match)', () => {
    const payload = Buffer.from('hello')
    const record = Buffer.alloc(8 + payload.length)
    record.writeUInt32LE(payload.length, 0)
    record.writeUInt32LE(0xdeadbeef, 4)
    payload.copy(record, 8)
    expect(readLog(record)).toEqual({ payloads: [], valid: 0 })
  })

  it('compacts into one snapshot holding everything, and loads it', async () => {
    const base = tempDir()
    const storage = new DocumentStorage(new DurableFsStorageAdapter(base))
    const doc = await writeChanges(storage, 200)
    expect(storage.compactable()).toContain(ID)
    await storage.compact(ID, doc)
    expect(existsSync(fileOf(base, logKey(ID)))).toBe(false)
    expect(readdirSync(path.join(base, ID.slice(0, 2), ID.slice(2), 'snapshot'))).toHaveLength(1)
    const loaded = await new DocumentStorage(new DurableFsStorageAdapter(base)).load<Doc>(ID)
    expect(Object.keys(loaded!.items)).toHaveLength(200)
  })

  it('says a document is overdue once its log is several times its snapshot (a burst left no idle moment to compact)', async () => {
    const storage = new DocumentStorage(new DurableFsStorageAdapter(tempDir()))
    const overdue: string[] = []
    storage.onOverdue = (id) => overdue.push(id)
    let doc = A.from<{ blobs: Record<string, string> }>({ blobs: {} })
    await storage.save(ID, doc)
    for (let i = 0; i < 40 && overdue.length === 0; i++) {
      doc = A.change(doc, (d) => {
        d.blobs[`b${i}`] = randomBytes(6000).toString('base64') // ~8 KB that do not compress
      })
      await storage.save(ID, doc)
    }
    // 256 KiB of log (4 x the 64 KiB floor) is reached after ~32 changes, not before.
    expect(overdue).toEqual([ID])
    expect(Object.keys(doc.blobs).length).toBeGreaterThanOrEqual(30)
  })

  it('never saves an emptied document over one with content (automerge-repo #435)', async () => {
    const base = tempDir()
    const storage = new DocumentStorage(new DurableFsStorageAdapter(base))
    await writeChanges(storage, 3)
    await storage.save(ID, A.init<Doc>())
    const loaded = await new DocumentStorage(new DurableFsStorageAdapter(base)).load<Doc>(ID)
    expect(Object.keys(loaded!.items)).toHaveLength(3)
  })
})
