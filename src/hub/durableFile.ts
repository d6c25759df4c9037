/**
 * Small files written crash-safely: a unique temp file in the same folder, written and fsynced,
 * renamed over the target, then the folder fsynced. A reader (or a restart after power loss) sees
 * the complete old file or the complete new one, never a torn one.
 */
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'

/** Filesystems that cannot fsync a directory (tmpfs on some kernels, SMB, Windows). */
const NO_DIR_FSYNC = new Set(['EISDIR', 'EINVAL', 'EPERM', 'EACCES', 'ENOTSUP', 'EBADF'])

export async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined
  try {
    fh = await fsp.open(dir, 'r')
    await fh.sync()
  } catch (error) {
    if (!NO_DIR_FSYNC.has((error as NodeJS.ErrnoException).code ?? '')) throw error
  } finally {
    await fh?.close()
  }
}

/**
 * Writes `data` to `file` crash-safely with permissions `mode` (0600 for anything secret: the temp
 * file is created with it, so the secret is never readable by others, not even for a moment).
 * `exclusive`: refuse (EEXIST) when `file` exists already; the check and the rename are not one
 * atomic step, so callers that need it hold the folder's lock.
 */
export async function writeFileDurably(file: string, data: string | Uint8Array, options: { mode?: number; exclusive?: boolean } = {}): Promise<void> {
  const dir = path.dirname(file)
  const mode = options.mode ?? 0o644
  if (options.exclusive) {
    const exists = await fsp.lstat(file).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return false
        throw error
      },
    )
    if (exists) throw Object.assign(new Error(`${file} exists already`), { code: 'EEXIST' })
  }
  const tmp = path.join(dir, `.tmp-${process.pid}-${randomBytes(8).toString('hex')}`)
  try {
    const fh = await fsp.open(tmp, 'wx', mode)
    try {
      await fh.chmod(mode) // the umask may have narrowed it; never widened beyond `mode`
      await fh.writeFile(data)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await fsp.rename(tmp, file)
  } catch (error) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined)
    throw error
  }
  await fsyncDir(dir)
}

/** `value` as pretty JSON with a final newline, written with `writeFileDurably`. */
export function writeJsonDurably(file: string, value: unknown, options: { mode?: number; exclusive?: boolean } = {}): Promise<void> {
  return writeFileDurably(file, `${JSON.stringify(value, null, 2)}\n`, options)
}

/** What reading a JSON file against a schema found: the value, no file, or why it is damaged. */
export type JsonFileRead<T> = { state: 'ok'; value: T } | { state: 'missing' } | { state: 'damaged'; why: string }

/**
 * Reads `file` as JSON checked by `schema` (zod). A missing file and a damaged one (not JSON, or
 * not the schema: `why` names the first issue) are answered, not thrown: each caller says what
 * they mean to the user. Other read errors (permissions, I/O) are thrown.
 */
export async function readJsonFile<T>(file: string, schema: { safeParse(value: unknown): { success: true; data: T } | { success: false; error: { issues: Array<{ path: PropertyKey[]; message: string }> } } }): Promise<JsonFileRead<T>> {
  let text: string
  try {
    text = await fsp.readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' }
    throw error
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return { state: 'damaged', why: 'not JSON' }
  }
  const parsed = schema.safeParse(raw)
  if (parsed.success) return { state: 'ok', value: parsed.data }
  const issue = parsed.error.issues[0]
  return { state: 'damaged', why: `${issue?.path.join('.') || 'the file'}: ${issue?.message ?? 'invalid'}` }
}
