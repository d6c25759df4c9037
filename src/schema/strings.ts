/**
 * Every string field in a document is an Automerge `ImmutableString`: a plain string becomes a
 * collaborative text object that costs twice the bytes and 2–3x the load time
 * (../shared/research/automerge-performance.md). These two helpers are the only way in and out.
 */
import { ImmutableString, isImmutableString } from '@automerge/automerge'

export type Str = ImmutableString

/** Wraps a string for storage in a document. */
export function imm(value: string): Str {
  return new ImmutableString(value)
}

/** Reads a string field back, whether it was stored as ImmutableString, text or plain string. */
export function str(value: Str | string | undefined | null): string {
  if (value === undefined || value === null) return ''
  return typeof value === 'string' ? value : value.val
}

/** True for a string field (ImmutableString, or a plain string) rather than a map. */
export function isImmutable(value: unknown): value is Str | string {
  return typeof value === 'string' || isImmutableString(value)
}
