/**
 * `stockmesh catalog import`: fills or updates the catalog of a data folder's site from CSV files.
 * The header says what a file holds: `sku,name,unit[,active][,lots]` products (`lots`: yes when
 * the product is tracked by lot and expiry), `code,label` adjustment
 * reasons, `id,name,type` sites. Every row is validated before anything is written, and one bad
 * row refuses the whole import: a half-imported catalog is worse than none, since the user would
 * have to find out which rows made it.
 */
import { existsSync, promises as fsp } from 'node:fs'
import path from 'node:path'
import { parse } from 'csv-parse/sync'
import type { Logger } from 'pino'
import type { z } from 'zod'
import { importCatalog, type CatalogImportCounts, type ImportCounts } from '../docs/catalog.ts'
import { ProductImport, ReasonInput, SiteInput, type CatalogImport } from '../schema/catalog.ts'
import { DataFolderLockedError, describeHolder, lockDataFolder } from './dataFolderLock.ts'
import { SiteNode } from './siteNode.ts'
import type { AutomergeUrl } from '@automerge/automerge-repo'
import { changeOptions } from '../docs/history.ts'
import type { CatalogDoc } from '../schema/catalog.ts'
import { isHubFolder, lockHubFolder, openHub } from '../hub/hubFolder.ts'

export type CatalogKind = keyof CatalogImport

interface KindSpec {
  required: readonly string[]
  optional: readonly string[]
  schema: z.ZodType
  /** The column that identifies a row; listed twice in one file is an error. */
  key: string
}

/** Checked in this order: the first whose key column the header has decides the kind. */
const KINDS: Record<CatalogKind, KindSpec> = {
  products: { key: 'sku', required: ['sku', 'name', 'unit'], optional: ['active', 'lots'], schema: ProductImport },
  reasons: { key: 'code', required: ['code', 'label'], optional: [], schema: ReasonInput },
  sites: { key: 'id', required: ['id', 'name', 'type'], optional: [], schema: SiteInput },
}

const HEADERS = 'sku,name,unit[,active][,lots] (products), code,label (reasons) or id,name,type (sites)'

/** One thing wrong with a file: a row's field, a row, or (line 1) the header. */
export interface RowProblem {
  line: number
  /** The column at fault, '' for the whole row. */
  field: string
  message: string
}

/** A file that cannot be imported; `problems` lists every bad row (empty for a whole-file error). */
export class CatalogFileError extends Error {
  override readonly name = 'CatalogFileError'
  constructor(
    readonly file: string,
    summary: string,
    readonly problems: RowProblem[] = [],
  ) {
    super([`${file}: ${summary}`, ...problems.map(formatProblem)].join('\n'))
  }
}

/** `line 7: sku: must be …` */
export function formatProblem(p: RowProblem): string {
  return `  line ${p.line}: ${p.field ? `${p.field}: ` : ''}${p.message}`
}

export interface ParsedCatalogFile {
  kind: CatalogKind
  rows: CatalogImport
}

const TRUE = new Set(['true', 'yes', 'y', '1'])
const FALSE = new Set(['false', 'no', 'n', '0'])

/**
 * Parses and validates one CSV file (UTF-8, with or without a BOM; comma, semicolon or tab
 * separated, as spreadsheets export). Throws `CatalogFileError` naming every bad row.
 */
export function parseCatalogCsv(input: Uint8Array | string, file: string): ParsedCatalogFile {
  const text = decode(input, file).replace(/\r\n?/g, '\n')
  if (text.trim() === '') throw new CatalogFileError(file, `the file is empty: the first line must be a header, ${HEADERS}`)
  const firstLine = text.split('\n', 1)[0]!
  const delimiter = firstLine.includes(',') ? ',' : firstLine.includes(';') ? ';' : firstLine.includes('\t') ? '\t' : ','
  let records: { record: string[]; info: { lines: number } }[]
  try {
    records = parse(text, { delimiter, info: true, relax_column_count: true, skip_empty_lines: true, skip_records_with_empty_values: true }) as unknown as typeof records
  } catch (error) {
    const line = (error as { lines?: unknown }).lines
    throw new CatalogFileError(file, `not a readable CSV file${typeof line === 'number' ? ` (line ${line})` : ''}: ${(error as Error).message}`)
  }
  const [header, ...body] = records
  if (!header) throw new CatalogFileError(file, `the file is empty: the first line must be a header, ${HEADERS}`)
  const columns = header.record.map((c) => c.trim().toLowerCase() || '(empty)')
  const kind = kindOf(columns, file, lineOf(header))
  if (body.length === 0) throw new CatalogFileError(file, `the file has a header (${columns.join(',')}) but no rows`)

  const spec = KINDS[kind]
  const problems: RowProblem[] = []
  const rows: unknown[] = []
  const firstSeen = new Map<string, number>()
  for (const entry of body) {
    const line = lineOf(entry)
    if (entry.record.length !== columns.length) {
      problems.push({ line, field: '', message: `has ${entry.record.length} fields, the header has ${columns.length} (${columns.join(',')})` })
      continue
    }
    const row: Record<string, unknown> = {}
    let bad = false
    columns.forEach((column, i) => {
      const cell = entry.record[i]!.trim()
      if (column !== 'active' && column !== 'lots') row[column] = cell
      else if (TRUE.has(cell.toLowerCase())) row[column] = true
      else if (FALSE.has(cell.toLowerCase())) row[column] = false
      else if (cell !== '') {
        problems.push({ line, field: column, message: 'must be true or false (yes/no, 1/0), or empty to keep it as it is' })
        bad = true
      }
    })
    const result = spec.schema.safeParse(row)
    if (!result.success) {
      for (const issue of result.error.issues) problems.push({ line, field: issue.path.map(String).join('.'), message: issue.message })
      continue
    }
    const id = String(row[spec.key])
    const seen = firstSeen.get(id)
    if (seen !== undefined) problems.push({ line, field: spec.key, message: `${id} is listed twice (also on line ${seen})` })
    else firstSeen.set(id, line)
    if (!bad) rows.push(result.data)
  }
  if (problems.length > 0) {
    const lines = new Set(problems.map((p) => p.line)).size
    throw new CatalogFileError(file, `${lines} bad ${lines === 1 ? 'row' : 'rows'}`, problems)
  }
  return { kind, rows: { products: [], reasons: [], sites: [], [kind]: rows } as CatalogImport }
}

function decode(input: Uint8Array | string, file: string): string {
  if (typeof input === 'string') return input.replace(/^\uFEFF/, '')
  if ((input[0] === 0xff && input[1] === 0xfe) || (input[0] === 0xfe && input[1] === 0xff)) {
    throw new CatalogFileError(file, 'the file is UTF-16 text: save it as "CSV UTF-8"')
  }
  try {
    // Strips a UTF-8 BOM (spreadsheets write one).
    return new TextDecoder('utf-8', { fatal: true }).decode(input)
  } catch {
    throw new CatalogFileError(file, 'the file is not UTF-8 text: save it as "CSV UTF-8"')
  }
}

/** The line a record starts on: csv-parse counts the line it ends on, and a quoted field may span lines. */
function lineOf(entry: { record: string[]; info: { lines: number } }): number {
  return entry.info.lines - entry.record.reduce((n, cell) => n + (cell.match(/\n/g)?.length ?? 0), 0)
}

function kindOf(columns: string[], file: string, line: number): CatalogKind {
  const kind = (Object.keys(KINDS) as CatalogKind[]).find((k) => columns.includes(KINDS[k].key))
  if (!kind) throw new CatalogFileError(file, `line ${line}: the header (${columns.join(',')}) does not say what the file holds: it must be ${HEADERS}`)
  const spec = KINDS[kind]
  const doubled = columns.filter((c, i) => columns.indexOf(c) !== i)
  const unknown = columns.filter((c) => !spec.required.includes(c) && !spec.optional.includes(c))
  const missing = spec.required.filter((c) => !columns.includes(c))
  const what = `a ${kind} file has ${spec.required.join(',')}${spec.optional.map((c) => `[,${c}]`).join('')}`
  if (doubled.length > 0) throw new CatalogFileError(file, `line ${line}: ${plural(doubled, 'column')} listed twice: ${[...new Set(doubled)].join(', ')}`)
  if (unknown.length > 0) throw new CatalogFileError(file, `line ${line}: unknown ${plural(unknown, 'column')} ${unknown.join(', ')} (${what})`)
  if (missing.length > 0) throw new CatalogFileError(file, `line ${line}: missing ${plural(missing, 'column')} ${missing.join(', ')} (${what})`)
  return kind
}

const plural = (list: unknown[], word: string) => (list.length === 1 ? word : `${word}s`)

/**
 * Reads and validates every file; all or nothing. At most one file per kind, so a SKU cannot be
 * listed in two files with different names.
 */
export async function readCatalogFiles(files: string[]): Promise<CatalogImport> {
  const parsed: ParsedCatalogFile[] = []
  const errors: string[] = []
  for (const file of files) {
    let bytes: Uint8Array
    try {
      bytes = await fsp.readFile(file)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      errors.push(`${file}: cannot read it: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : (error as Error).message}`)
      continue
    }
    try {
      parsed.push(parseCatalogCsv(bytes, file))
    } catch (error) {
      if (!(error instanceof CatalogFileError)) throw error
      errors.push(error.message)
    }
  }
  for (const kind of Object.keys(KINDS) as CatalogKind[]) {
    if (parsed.filter((p) => p.kind === kind).length > 1) errors.push(`more than one ${kind} file: put all ${kind} in one file`)
  }
  if (errors.length > 0) throw new Error([...errors, 'nothing was imported'].join('\n'))
  const rows: CatalogImport = { products: [], reasons: [], sites: [] }
  for (const p of parsed) rows[p.kind] = p.rows[p.kind] as never
  return rows
}

export interface CatalogImportResult {
  /** The site whose catalog it was; for a hub folder, the deployment (`deployment`). */
  site: string
  deployment?: string
  counts: CatalogImportCounts
}

/**
 * Imports `files` into the catalog of the site in `dataDir`, with the folder's lock held (a
 * running site would not see the change and could overwrite it). Validates every file before the
 * folder is touched; refuses an unprovisioned folder without provisioning it.
 */
export async function importCatalogFiles(options: { dataDir: string; files: string[]; logger: Logger }): Promise<CatalogImportResult> {
  const { dataDir, files, logger } = options
  const rows = await readCatalogFiles(files)
  const notProvisioned = `${dataDir} is not provisioned yet: start the site once (stockmesh site --data ${dataDir} --site <id>), stop it, then import`
  // Checked before the lock, which on some platforms creates the folder.
  if (!existsSync(dataDir)) throw new Error(notProvisioned)
  if (isHubFolder(dataDir)) return importIntoHub(dataDir, rows, files, logger)
  const lock = await lockDataFolder(dataDir, { command: 'stockmesh catalog import' }).catch((error: unknown) => {
    if (!(error instanceof DataFolderLockedError)) throw error
    throw new Error(`data folder ${error.dir} is in use by ${describeHolder(error.holder)}: stop the site first, then import`, { cause: error })
  })
  try {
    // No site id: SiteNode.open provisions only when given one, and refuses an unprovisioned
    // folder before it writes anything.
    const node = await SiteNode.open({ dataDir, logger, lock }).catch((error: unknown) => {
      throw /is not provisioned yet/.test((error as Error).message) ? new Error(notProvisioned, { cause: error }) : error
    })
    try {
      const counts = await node.commit(node.catalog, (d) => importCatalog(d, rows), {
        op: 'catalog.import',
        user: 'cli',
        ref: files.map((f) => path.basename(f)).join(', '),
      })
      return { site: node.identity.site, counts }
    } finally {
      await node.close()
    }
  } finally {
    await lock.release()
  }
}

/** A hub folder: the deployment's one catalog, read by every enrolled site. */
async function importIntoHub(dataDir: string, rows: CatalogImport, files: string[], logger: Logger): Promise<CatalogImportResult> {
  const lock = await lockHubFolder(dataDir, 'stockmesh catalog import').catch((error: unknown) => {
    throw new Error(`${(error as Error).message.replace(/: stop it first$/, '')}: stop the relay first, then import`, { cause: error })
  })
  try {
    const hub = await openHub(dataDir, { logger, lock })
    try {
      const catalog = await hub.repo.find<CatalogDoc>(hub.catalogUrl as AutomergeUrl)
      let counts: CatalogImportCounts | undefined
      catalog.change((d) => {
        counts = importCatalog(d, rows)
      }, changeOptions({ op: 'catalog.import', user: 'cli', ref: files.map((f) => path.basename(f)).join(', ') }, Date.now()))
      await hub.repo.flush([catalog.documentId])
      return { site: hub.deployment.id, deployment: hub.deployment.id, counts: counts! }
    } finally {
      await hub.close()
    }
  } finally {
    await lock.release()
  }
}

/** `catalog of site S: 3 added, 1 renamed, 10 unchanged (products); 2 added (reasons)` */
export function importSummary({ site, deployment, counts }: CatalogImportResult): string {
  const parts = (Object.keys(counts) as CatalogKind[]).flatMap((kind) => {
    const c: ImportCounts = counts[kind]
    const said = (['added', 'renamed', 'updated', 'unchanged'] as const).filter((k) => c[k] > 0).map((k) => `${c[k]} ${k}`)
    return said.length > 0 ? [`${said.join(', ')} (${kind})`] : []
  })
  return `catalog of ${deployment ? `deployment ${deployment}` : `site ${site}`}: ${parts.join('; ')}`
}
