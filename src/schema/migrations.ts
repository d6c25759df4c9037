/**
 * Schema versions and migrations of every document kind. A document older than the code is
 * upgraded by its numbered migrations in order; a document newer than the code is kept intact and
 * reported read-only, never rewritten.
 */
import { ReadOnlyDocumentError } from './errors.ts'
import { journalMigrations } from './migrations/journal.ts'
import { ledgerMigrations } from './migrations/ledger.ts'
import type { Migration } from './migrations/types.ts'
import { LEDGER_SCHEMA, JOURNAL_SCHEMA } from './ledger.ts'
import { CATALOG_SCHEMA } from './catalog.ts'
import { SITE_INDEX_SCHEMA } from './siteIndex.ts'
import { orderSchema } from './order.ts'
import { manifestSchema } from './manifest.ts'

export type { Migration }

export type DocKind = 'ledger' | 'journal' | 'order' | 'manifest' | 'catalog' | 'siteIndex'

interface KindSchema {
  current: number
  migrations: Migration[]
}

const registry: Record<string, KindSchema> = {
  ledger: { current: LEDGER_SCHEMA, migrations: ledgerMigrations },
  journal: { current: JOURNAL_SCHEMA, migrations: journalMigrations },
  catalog: { current: CATALOG_SCHEMA, migrations: [] },
  siteIndex: { current: SITE_INDEX_SCHEMA, migrations: [] },
  order: orderSchema,
  manifest: manifestSchema,
}

/** Registers a kind's current version and migrations (order and manifest register themselves). */
export function registerSchema(kind: DocKind, current: number, migrations: Migration[]): void {
  const versions = migrations.map((m) => m.version)
  versions.forEach((v, i) => {
    if (v !== (versions[0] ?? 0) + i || v > current) throw new Error(`internal: ${kind} migrations must be numbered consecutively up to ${current}`)
  })
  if (versions.length > 0 && versions[versions.length - 1] !== current) {
    throw new Error(`internal: ${kind} migrations end at ${versions[versions.length - 1]}, current is ${current}`)
  }
  registry[kind] = { current, migrations }
}

function schemaOf(kind: string): KindSchema {
  const schema = registry[kind]
  if (!schema) throw new Error(`internal: unknown document kind ${kind}`)
  return schema
}

export type SchemaState = 'current' | 'outdated' | 'newer'

/** Where a document stands against this code. A document without a version counts as version 1. */
export function schemaState(kind: DocKind, doc: { schema?: number }): { version: number; current: number; state: SchemaState } {
  const { current } = schemaOf(kind)
  const version = typeof doc.schema === 'number' ? doc.schema : 1
  const state = version === current ? 'current' : version < current ? 'outdated' : 'newer'
  return { version, current, state }
}

/** Throws `ReadOnlyDocumentError` when the document is newer than this code. */
export function assertWritable(kind: DocKind, doc: { schema?: number }): void {
  const { version, current, state } = schemaState(kind, doc)
  if (state === 'newer') throw new ReadOnlyDocumentError(kind, version, current)
}

/**
 * Upgrades `doc` in place (call inside `handle.change`). Returns the names of the migrations run.
 * Never touches a newer document.
 */
export function migrate(kind: DocKind, doc: { schema?: number }): string[] {
  const { version, state } = schemaState(kind, doc)
  if (state !== 'outdated') return []
  const ran: string[] = []
  for (const migration of schemaOf(kind).migrations) {
    if (migration.version <= version) continue
    migration.up(doc)
    doc.schema = migration.version
    ran.push(`${kind} v${migration.version}: ${migration.name}`)
  }
  return ran
}
