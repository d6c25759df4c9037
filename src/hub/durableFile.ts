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
