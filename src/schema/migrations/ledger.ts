import { ImmutableString } from '@automerge/automerge'
import { decisionKeysMigration } from './decisions.ts'
import type { Migration } from './types.ts'

/** Replaces a collaborative-text value by the same string as an ImmutableString. */
function toImmutable(obj: Record<string, unknown>, key: string): void {
  const value = obj[key]
  if (value !== undefined && !(value instanceof ImmutableString)) obj[key] = new ImmutableString(String(value))
}

/**
 * Ledger migrations. Every step must be safe to run on two replicas at once: it may only set
 * scalar values that both replicas compute alike (the merge then holds equal values), never
 * create a map or list that the other replica would create too (Automerge keeps one of two
 * concurrently created objects and drops what was written into the other).
 */
export const ledgerMigrations: Migration[] = [
  {
    version: 2,
    name: 'store the site and journal URLs as ImmutableString instead of collaborative text',
    up(doc) {
      toImmutable(doc, 'site')
      for (const key of Object.keys(doc.journals ?? {})) toImmutable(doc.journals, key)
    },
  },
  decisionKeysMigration(3),
]
