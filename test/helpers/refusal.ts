/**
 * Asserts that a document operation refuses and writes nothing. The operation runs inside
 * `A.change` and its error is caught there, so a write made before the throw would be committed
 * and show up as new heads: this checks "validate first, then mutate", not Automerge's rollback.
 */
import * as A from '@automerge/automerge'
import { expect } from 'vitest'

export interface ExpectedRefusal {
  name: 'InputError' | 'RuleError' | 'ReadOnlyDocumentError' | 'ConflictError'
  code?: string
  field?: string
}

export function expectRefused<T>(doc: A.Doc<T>, op: (d: T) => unknown, expected: ExpectedRefusal): Error {
  const saved = A.save(doc)
  const heads = A.getHeads(doc)
  let thrown: unknown
  const after = A.change(doc, (d) => {
    try {
      op(d)
    } catch (error) {
      thrown = error
    }
  })
  expect(thrown, 'the operation should have thrown').toBeInstanceOf(Error)
  const error = thrown as Error & { code?: string; field?: string }
  expect(error.name).toBe(expected.name)
  if (expected.code !== undefined) expect(error.code).toBe(expected.code)
  if (expected.field !== undefined) expect(error.field).toBe(expected.field)
  expect(A.getHeads(after)).toEqual(heads)
  expect(A.save(after)).toEqual(saved)
  return error
}
