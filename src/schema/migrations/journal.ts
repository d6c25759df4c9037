import type { Migration } from './types.ts'

/**
 * Journal migrations. Unlike every other kind, a journal has one writer, its device: only that
 * device runs them, on its own current journal, in the change of its first posting after the
 * upgrade (LedgerBook). Creating a map here is therefore safe (no other replica creates it too),
 * and a journal of another device is never migrated here, only read.
 *
 * Schemas 2 and 3 changed how new journals are written (packed movements, sharded totals), not
 * what an existing journal holds: a journal keeps the format it was opened with, feature by
 * feature (`t0`, `tt`), and reads as before.
 */
export const journalMigrations: Migration[] = [
  {
    version: 4,
    name: 'lot totals and opening balances per lot (none yet: every movement so far is without a lot)',
    up(doc) {
      if (doc.lt === undefined) doc.lt = {}
      if (doc.ol === undefined) doc.ol = {}
    },
  },
]
