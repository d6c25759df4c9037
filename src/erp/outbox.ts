/**
 * The ERP bridge's durable record of what became of each fact: forwarded (the ERP holds it) or
 * parked (it cannot be forwarded until someone fixes something: the reason says what). A fact with
 * no record is pending. The facts themselves are in the documents (src/erp/facts.ts); this file is
 * what is not.
 *
 * `DIR/outbox.jsonl`, append-only, one line per change of state, fsynced before the bridge moves
 * on: `{"k":key,"s":"f","t":ms}` forwarded, `{"k":key,"s":"p","r":reason,"t":ms}` parked. Read at
 * start (the last line of a key wins; a torn last line from a crash is dropped), rewritten compact
 * (temp file, fsync, rename) when it holds more than twice the lines it needs.
 *
 * Exactly once in effect does not rest on this file alone: a crash after the ERP took a batch and
 * before its lines were written loses them here, so the bridge asks the ERP before every send
 * whether it holds the keys already (src/erp/tryton.ts), and records what it finds.
 */
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { fsyncDir, writeFileDurably } from '../hub/durableFile.ts'

export interface Parked {
  reason: string
  since: number
}

const FILE = 'outbox.jsonl'

export class Outbox {
  readonly #dir: string
  readonly forwarded = new Set<string>()
  readonly parked = new Map<string, Parked>()
  #lines = 0
  #file: fsp.FileHandle | undefined

  private constructor(dir: string) {
    this.#dir = dir
  }

  static async open(dir: string): Promise<Outbox> {
    const outbox = new Outbox(dir)
    await fsp.mkdir(dir, { recursive: true })
    await outbox.#load()
    return outbox
  }

  get #path(): string {
    return path.join(this.#dir, FILE)
  }

  async #load(): Promise<void> {
    let text = ''
    let fresh = false
    try {
      text = await fsp.readFile(this.#path, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
      fresh = true
    }
    const lines = text.split('\n')
    let damaged = false
    for (const [i, line] of lines.entries()) {
      if (!line) continue
      let record: { k?: unknown; s?: unknown; r?: unknown; t?: unknown }
      try {
        record = JSON.parse(line) as typeof record
      } catch {
        // Only the last line may be torn (a crash while appending): anything else is damage.
        if (i >= lines.length - 2) {
          damaged = true
          continue
        }
        throw new Error(`${this.#path} line ${i + 1} is not readable: restore the folder from a backup (the ERP holds what was forwarded; the bridge asks it again)`)
      }
      if (typeof record.k !== 'string') continue
      this.#lines++
      if (record.s === 'f') {
        this.forwarded.add(record.k)
        this.parked.delete(record.k)
      } else if (record.s === 'p') this.parked.set(record.k, { reason: String(record.r ?? ''), since: Number(record.t ?? 0) })
    }
    if (damaged || this.#stale()) await this.#compact()
    this.#file = await fsp.open(this.#path, 'a')
    // A new file's name on disk too, before anything is recorded in it.
    if (fresh) await fsyncDir(this.#dir)
  }

  /** Most lines are stale (a key written again): time to rewrite the file compact. */
  #stale(): boolean {
    return this.#lines > 2 * (this.forwarded.size + this.parked.size) + 1000
  }

  async #compact(): Promise<void> {
    const now = Date.now()
    const lines = [...[...this.forwarded].map((k) => JSON.stringify({ k, s: 'f', t: now })), ...[...this.parked].map(([k, p]) => JSON.stringify({ k, s: 'p', r: p.reason, t: p.since }))]
    await writeFileDurably(this.#path, lines.length ? `${lines.join('\n')}\n` : '')
    this.#lines = lines.length
  }

  /** Records these outcomes, on disk (fsync) before it returns. */
  async record(all: Array<{ key: string; forwarded: true } | { key: string; parked: string }>): Promise<void> {
    // Parked again for the same reason: nothing new to write.
    const outcomes = all.filter((o) => !('parked' in o) || this.parked.get(o.key)?.reason !== o.parked)
    if (outcomes.length === 0) return
    const now = Date.now()
    const lines = outcomes.map((o) => JSON.stringify('forwarded' in o ? { k: o.key, s: 'f', t: now } : { k: o.key, s: 'p', r: o.parked, t: now }))
    const file = this.#file
    if (!file) throw new Error('the ERP outbox is closed')
    await file.appendFile(`${lines.join('\n')}\n`)
    await file.datasync()
    this.#lines += lines.length
    for (const o of outcomes) {
      if ('forwarded' in o) {
        this.forwarded.add(o.key)
        this.parked.delete(o.key)
      } else if (!this.parked.has(o.key)) this.parked.set(o.key, { reason: o.parked, since: now })
      else this.parked.get(o.key)!.reason = o.parked
    }
    // Compacted while running too, when most lines are stale (the appended ones are on disk already).
    if (this.#stale()) {
      await this.#compact()
      const reopened = await fsp.open(this.#path, 'a')
      await file.close()
      this.#file = reopened
    }
  }

  async close(): Promise<void> {
    await this.#file?.close()
    this.#file = undefined
    await fsyncDir(this.#dir).catch(() => undefined)
  }
}
