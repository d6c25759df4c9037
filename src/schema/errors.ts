/**
 * Errors that reach a user. `InputError` is bad input from outside (HTTP, IPC, files, the ERP):
 * it names the field and the request changes nothing. `RuleError` is a valid request the
 * document's rules refuse (an order transition that is not allowed, an unknown SKU).
 */
import type { z } from 'zod'

export class InputError extends Error {
  override readonly name = 'InputError'
  constructor(
    /** Dotted path of the offending field, '' for the whole input. */
    readonly field: string,
    message: string,
  ) {
    super(field ? `${field}: ${message}` : message)
  }
}

export class RuleError extends Error {
  override readonly name = 'RuleError'
  constructor(
    /** Short machine-readable code, e.g. 'unknown-sku', 'transition-not-allowed'. */
    readonly code: string,
    message: string,
    readonly field = '',
  ) {
    super(message)
  }
}

/** A document written by newer code than this one: it is kept intact and shown read-only. */
export class ReadOnlyDocumentError extends Error {
  override readonly name = 'ReadOnlyDocumentError'
  constructor(readonly kind: string, readonly version: number, readonly known: number) {
    super(`this ${kind} document has schema version ${version}, newer than this app knows (${known}); it is read-only here until the app is upgraded`)
  }
}

/** Turns the first zod issue into an `InputError` that names the field. */
export function inputErrorFrom(error: z.ZodError): InputError {
  const issue = error.issues[0]
  if (!issue) return new InputError('', 'invalid input')
  const field = issue.path.map(String).join('.')
  return new InputError(field, issue.message)
}

/** Parses outside input with a zod schema, throwing an `InputError` naming the field. */
export function parseInput<T>(schema: z.ZodType<T>, input: unknown): T {
  const result = schema.safeParse(input)
  if (!result.success) throw inputErrorFrom(result.error)
  return result.data
}

/** The document or item asked for is not held here. */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError'
}

/**
 * The request conflicts with what is held: an id that exists already with other content, an item
 * already decided. Nothing was changed.
 */
export class ConflictError extends Error {
  override readonly name = 'ConflictError'
  constructor(
    message: string,
    /** The field of the request that conflicts, '' for the whole request. */
    readonly field = '',
  ) {
    super(message)
  }
}
