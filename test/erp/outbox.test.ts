/** The ERP outbox on disk: what was forwarded or parked survives a restart and a torn last line. */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { Outbox } from '../../src/erp/outbox.ts'
import { tempDir } from '../helpers/tempDir.ts'

describe('the ERP outbox', () => {
  it('keeps forwarded and parked facts across a reopen; a later line wins; forwarded ends parked', async () => {
    const dir = tempDir('outbox-')
    const a = await Outbox.open(dir)
    await a.record([{ key: 's/1/n:1', forwarded: true }, { key: 's/2/n:2', parked: 'SKU X unknown' }, { key: 't/3/n:3', parked: 'site t has no location' }])
    await a.record([{ key: 't/3/n:3', forwarded: true }])
    await a.close()
    const b = await Outbox.open(dir)
    expect([...b.forwarded].sort()).toEqual(['s/1/n:1', 't/3/n:3'])
    expect([...b.parked.keys()]).toEqual(['s/2/n:2'])
    expect(b.parked.get('s/2/n:2')!.reason).toBe('SKU X unknown')
    await b.close()
  })

  it('drops a torn last line (a crash while appending) and refuses damage anywhere else', async () => {
    const dir = tempDir('outbox-')
    const a = await Outbox.open(dir)
    await a.record([{ key: 's/1/n:1', forwarded: true }])
    await a.close()
    appendFileSync(path.join(dir, 'outbox.jsonl'), '{"k":"s/2/n:2","s":"f"')
    const b = await Outbox.open(dir)
    expect([...b.forwarded]).toEqual(['s/1/n:1'])
    // Rewritten whole: appending goes on from a clean line.
    await b.record([{ key: 's/3/n:3', forwarded: true }])
    await b.close()
    const c = await Outbox.open(dir)
    expect([...c.forwarded].sort()).toEqual(['s/1/n:1', 's/3/n:3'])
    await c.close()
    writeFileSync(path.join(dir, 'outbox.jsonl'), `not json\n${readFileSync(path.join(dir, 'outbox.jsonl'), 'utf8')}`)
    await expect(Outbox.open(dir)).rejects.toThrow(/line 1 is not readable/)
  })
})
