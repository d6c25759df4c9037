/**
 * Who did what and when, per document, read from Automerge change metadata. Every change the
 * app makes carries a small JSON message made by `changeMessage`.
 */
import { getChangesMetaSince, type Doc } from '@automerge/automerge'

export interface ChangeNote {
  /** What was done, e.g. 'order.submit', 'ledger.post'. */
  op: string
  user: string
  device?: string
  /** Optional short detail: an id, a reference. */
  ref?: string
}

export interface HistoryEntry extends ChangeNote {
  /** unix ms (Automerge keeps seconds). */
  at: number
  actor: string
  hash: string
}

/** The message to pass as `{ message }` to `handle.change`. */
export function changeMessage(note: ChangeNote): string {
  return JSON.stringify(note)
}

/** Change options with message and time, for `handle.change(fn, changeOptions(note, ms))`. */
export function changeOptions(note: ChangeNote, at: number): { message: string; time: number } {
  return { message: changeMessage(note), time: Math.floor(at / 1000) }
}

function parseNote(message: string | null): ChangeNote {
  if (!message) return { op: 'unknown', user: '' }
  try {
    const value = JSON.parse(message) as Partial<ChangeNote>
    if (typeof value.op === 'string' && typeof value.user === 'string') {
      const note: ChangeNote = { op: value.op, user: value.user }
      if (typeof value.device === 'string') note.device = value.device
      if (typeof value.ref === 'string') note.ref = value.ref
      return note
    }
  } catch {
    // a change made by other software: keep its message as the operation
  }
  return { op: message.slice(0, 200), user: '' }
}

/**
 * The document's history, oldest first. Automerge keeps whole seconds; within one second changes
 * keep their causal order (a stable sort over Automerge's topological order). Changes without a
 * message are left out: the empty change that creates a document, and ledger postings, whose
 * movements carry who, which device and when themselves.
 */
export function documentHistory(doc: Doc<unknown>): HistoryEntry[] {
  return getChangesMetaSince(doc, [])
    .filter((meta) => meta.message)
    .map((meta) => ({ ...parseNote(meta.message), at: meta.time * 1000, actor: meta.actor, hash: meta.hash }))
    .sort((a, b) => a.at - b.at)
}
