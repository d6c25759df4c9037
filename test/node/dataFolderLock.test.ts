/**
 * The data folder lock, with real processes where it matters: a holder in another process is
 * named, a SIGKILLed holder frees the folder at once, and nothing is written into the folder.
 * The identity lock (`st_dev:st_ino`) is tested through real bind mounts (`mount --bind`, which
 * needs root: those tests are skipped, saying why, where mounting is not permitted), and with
 * folders removed while held whose inode number the kernel gives to a new folder (skipped, saying
 * why, on a filesystem that does not reuse them, like tmpfs).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, existsSync, rmdirSync, rmSync, statSync, symlinkSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { afterEach, describe, expect, it, onTestFinished } from 'vitest'
import { canonicalDataDir, DataFolderLockedError, lockDataFolder, type DataFolderLock, type LockHolder } from '../../src/node/dataFolderLock.ts'
import { tempDir } from '../helpers/tempDir.ts'

/** Where the lock is an abstract socket and writes nothing (macOS uses a socket file in the folder). */
const linux = process.platform === 'linux'

const MODULE = path.resolve(import.meta.dirname, '../../src/node/dataFolderLock.ts')
const ROOT = path.resolve(import.meta.dirname, '../..')

/**
 * A process that takes the lock of `dir` and holds it until killed (it prints `locked`). With
 * `mountedFrom`, it runs in a mount namespace of its own in which `dir` is a bind mount of
 * `mountedFrom` (`unshare`, root only); `dir` stays what it was in this one.
 */
function holder(dir: string, mountedFrom?: string): Promise<ChildProcess> {
  const code = `
    const { lockDataFolder } = await import(${JSON.stringify(MODULE)})
    await lockDataFolder(process.argv[1], { command: 'test holder', url: 'http://127.0.0.1:1/' })
    console.log('locked')
    setInterval(() => {}, 60_000) // the lock itself does not keep a process alive
  `
  const node = [process.execPath, '--import', 'tsx', '--input-type=module', '-e', code, dir]
  const [command, ...args] =
    mountedFrom === undefined ? node : ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" "$1" && shift && exec "$@"', mountedFrom, dir, ...node]
  const child = spawn(command!, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let out = ''
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes('locked')) resolve(child)
    })
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()))
    child.once('exit', (code) => reject(new Error(`holder exited with ${code}:\n${out}`)))
  })
}

/** What a `remote()` process answers to one command. */
type RemoteAnswer = { ok: boolean; dir?: string } | { error: string; message: string; holder?: LockHolder }

/**
 * A process that locks, holds the identity of, and releases a folder when told to (one JSON
 * command a line on stdin, one JSON answer a line on stdout): for two processes taking turns.
 */
interface Remote {
  child: ChildProcess
  send(command: 'lock', dir: string): Promise<RemoteAnswer>
  send(command: 'hold' | 'release'): Promise<RemoteAnswer>
}

function remote(): Remote {
  const code = `
    const { lockDataFolder } = await import(${JSON.stringify(MODULE)})
    const { createInterface } = await import('node:readline')
    let lock
    for await (const line of createInterface({ input: process.stdin })) {
      const [command, dir] = JSON.parse(line)
      let answer
      try {
        if (command === 'lock') {
          lock = await lockDataFolder(dir, { command: 'test remote' })
          answer = { ok: true, dir: lock.dir }
        } else if (command === 'hold') answer = { ok: await lock.holdIdentity() }
        else answer = { ok: (await lock.release(), true) }
      } catch (error) {
        answer = { error: error.name, message: error.message, holder: error.holder }
      }
      console.log(JSON.stringify(answer))
    }
  `
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
  children.push(child)
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const waiting: Array<{ resolve: (answer: RemoteAnswer) => void; reject: (error: Error) => void }> = []
  createInterface({ input: child.stdout! }).on('line', (line) => waiting.shift()?.resolve(JSON.parse(line) as RemoteAnswer))
  child.once('exit', (code, signal) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`remote exited (${code ?? signal}):\n${stderr}`))
  })
  return {
    child,
    send: (command: string, dir?: string) =>
      new Promise<RemoteAnswer>((resolve, reject) => {
        waiting.push({ resolve, reject })
        child.stdin!.write(`${JSON.stringify([command, dir])}\n`)
      }),
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

const children: ChildProcess[] = []
const locks: DataFolderLock[] = []
const take = async (dir: string) => {
  const lock = await lockDataFolder(dir, { command: 'test' })
  locks.push(lock)
  return lock
}

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited(child)
  }
  for (const lock of locks.splice(0)) await lock.release()
})

/**
 * A new folder beside the test's temp folders with the identity (`dev:ino`) of one just removed:
 * the kernel reuses inode numbers, that is how a new folder meets a lock held for a removed one.
 * Removed when the test ends. Undefined when none of `tries` new folders got the number.
 */
function folderWithIdentity({ dev, ino }: { dev: bigint; ino: bigint }, tries = 100): string | undefined {
  const misses: string[] = []
  try {
    for (let i = 0; i < tries; i++) {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'stockmesh-'))
      const stat = statSync(dir, { bigint: true })
      if (stat.dev === dev && stat.ino === ino) {
        onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
        return dir
      }
      misses.push(dir) // kept until the end: the next one gets another number
    }
    return undefined
  } finally {
    for (const miss of misses) rmdirSync(miss)
  }
}

/** Removes `dir` (held by a lock) and makes a new folder with its inode number, or skips the test saying why. */
function replaceByNewFolder(dir: string, skip: (note: string) => never): string {
  const identity = statSync(dir, { bigint: true })
  rmSync(dir, { recursive: true })
  return (
    folderWithIdentity(identity) ??
    skip(`the filesystem of ${os.tmpdir()} gave inode ${identity.ino} of a removed folder to none of 100 new folders (tmpfs never reuses one)`)
  )
}

async function refusal(dir: string): Promise<DataFolderLockedError> {
  const error = await take(dir).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(DataFolderLockedError)
  return error as DataFolderLockedError
}

describe('lockDataFolder', () => {
  it('refuses a folder another process holds, naming the folder and the holder', async () => {
    const dir = tempDir()
    const child = await holder(dir)
    const error = await refusal(dir)
    expect(error.dir).toBe(canonicalDataDir(dir))
    expect(error.holder).toMatchObject({ pid: child.pid, command: 'test holder', url: 'http://127.0.0.1:1/', dir: canonicalDataDir(dir) })
    expect(error.message).toContain(`data folder ${canonicalDataDir(dir)} is in use by process ${child.pid} (test holder, since `)
    expect(error.message).toMatch(/stop it first, or use another folder$/)
  })

  it.skipIf(process.platform === 'win32')('is the same lock whatever the path spelling: relative, trailing slash, dot segments, a symlink', async () => {
    const parent = tempDir()
    const dir = path.join(parent, 'data')
    mkdirSync(dir)
    const link = path.join(parent, 'link')
    symlinkSync(dir, link)
    const child = await holder(link)
    for (const spelling of [dir, `${dir}/`, path.join(parent, '.', 'x', '..', 'data'), path.relative(process.cwd(), dir), link]) {
      const error = await refusal(spelling)
      expect(error.holder?.pid, spelling).toBe(child.pid)
      expect(error.dir).toBe(canonicalDataDir(dir))
    }
  })

  it.skipIf(!linux)('is the same lock for a folder that does not exist yet, and does not create it', async () => {
    const parent = tempDir()
    const link = path.join(parent, 'link')
    symlinkSync(parent, link)
    const fresh = path.join(parent, 'new', 'site')
    const child = await holder(fresh)
    expect((await refusal(path.join(link, 'new', 'site'))).holder?.pid).toBe(child.pid)
    expect(existsSync(path.join(parent, 'new'))).toBe(false)
  })

  it('is free at once when the holder is killed with SIGKILL', async () => {
    const dir = tempDir()
    const child = await holder(dir)
    await refusal(dir)
    child.kill('SIGKILL')
    await exited(child)
    const lock = await take(dir)
    expect(lock.dir).toBe(canonicalDataDir(dir))
  })

  it('is free after release(), in this process and for another one', async () => {
    const dir = tempDir()
    const first = await take(dir)
    await first.release()
    await first.release() // idempotent
    const second = await take(dir)
    await second.release()
    const child = await holder(dir)
    expect((await refusal(dir)).holder?.pid).toBe(child.pid)
  })

  it('refuses the same process asking twice, even at the same instant', async () => {
    const dir = tempDir()
    const results = await Promise.allSettled([take(dir), take(dir)])
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    const error = await refusal(dir)
    expect(error.holder?.pid).toBe(process.pid)
    expect(error.message).toContain(`process ${process.pid} (this process: test, since`)
  })

  it('tells a refused process what update() said, and always the folder it locked', async () => {
    const dir = tempDir()
    const lock = await take(dir)
    lock.update({ url: 'http://127.0.0.1:8470/', ...{ dir: '/somewhere/else' } })
    expect((await refusal(dir)).holder).toMatchObject({ url: 'http://127.0.0.1:8470/', dir: canonicalDataDir(dir) })
  })

  it('does not mix up different folders, nor a folder and its parent', async () => {
    const a = tempDir()
    const b = tempDir()
    const nested = path.join(a, 'inner')
    const held = await Promise.all([take(a), take(b), take(nested)])
    expect(held.map((l) => l.dir)).toEqual([a, b, nested].map(canonicalDataDir))
  })

  it.skipIf(!linux)('writes nothing into the folder', async () => {
    const dir = tempDir()
    const child = await holder(dir)
    await refusal(dir)
    expect(readdirSync(dir)).toEqual([])
    child.kill('SIGKILL')
    await exited(child)
    await take(dir)
    expect(readdirSync(dir)).toEqual([])
  })

  it('does not keep a process alive', async () => {
    const script = `const { lockDataFolder } = await import(${JSON.stringify(MODULE)}); await lockDataFolder(process.argv[1], { command: 'x' })`
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, tempDir()], { cwd: ROOT, stdio: 'ignore' })
    children.push(child)
    const exitCode = await new Promise<number | null>((resolve) => child.once('exit', resolve))
    expect(exitCode).toBe(0)
  })

  it.skipIf(!linux)('holdIdentity(): false and nothing created while the folder is missing, true once it exists; idempotent; rejected after release()', async () => {
    const dir = path.join(tempDir(), 'site')
    const lock = await take(dir)
    expect(await lock.holdIdentity()).toBe(false)
    expect(existsSync(dir)).toBe(false)
    mkdirSync(dir)
    expect(await Promise.all([lock.holdIdentity(), lock.holdIdentity()])).toEqual([true, true])
    expect(await lock.holdIdentity()).toBe(true)
    expect(readdirSync(dir)).toEqual([])
    await lock.release()
    await expect(lock.holdIdentity()).rejects.toThrow(`the lock of data folder ${canonicalDataDir(dir)} was released`)
    await take(dir) // both free
  })

  it('a lock of a folder removed while held does not lock a new folder that gets its inode number (this process)', async ({ skip }) => {
    const removed = tempDir()
    const stale = await take(removed)
    expect(await stale.holdIdentity()).toBe(true)
    const dir = replaceByNewFolder(removed, skip)

    const lock = await take(dir)
    expect(lock.dir).toBe(canonicalDataDir(dir))
    expect(await lock.holdIdentity()).toBe(true)
    await stale.release() // still works, and lets go of its own sockets only
    expect((await refusal(dir)).holder).toMatchObject({ pid: process.pid, dir: canonicalDataDir(dir) })
    await lock.release()
    await take(dir)
    await take(removed) // the stale lock's path is free too
  })

  it('a lock whose folder was removed and made again at its path does not lock a new folder with the old inode number', async ({ skip }) => {
    const removed = tempDir()
    const stale = await take(removed)
    const dir = replaceByNewFolder(removed, skip)
    mkdirSync(removed) // a new inode number: the holder's folder exists, with another identity

    const lock = await take(dir)
    expect(await lock.holdIdentity()).toBe(true)
    expect(await stale.holdIdentity()).toBe(true) // takes its folder's new identity, free
  })

  it('a process holding a folder that was removed does not lock a new folder that gets its inode number; a second process on the new folder is refused', async ({
    skip,
  }) => {
    const removed = tempDir()
    const stale = remote()
    expect(await stale.send('lock', removed)).toMatchObject({ ok: true })
    const dir = replaceByNewFolder(removed, skip)

    const lock = await take(dir) // this process, past the stale holder
    expect(await lock.holdIdentity()).toBe(true)
    // Through a bind mount only the identity lock can refuse it; through the path, the path lock does.
    const second = remote()
    const holder = refusedBy(await second.send('lock', bindMountUnavailable === undefined ? bindMount(dir) : dir))
    expect(holder).toMatchObject({ pid: process.pid, command: 'test', dir: canonicalDataDir(dir) })
    expect(readdirSync(dir)).toEqual([])
  })

  it.skipIf(process.platform === 'win32')('a stopped holder of a removed folder still blocks a new folder with its inode number (it cannot say it is stale)', async ({
    skip,
  }) => {
    const removed = tempDir()
    const child = await holder(removed)
    child.kill('SIGSTOP')
    try {
      const dir = replaceByNewFolder(removed, skip)
      const error = await refusal(dir)
      expect(error.holder).toBeUndefined()
      expect(error.message).toContain(`data folder ${canonicalDataDir(dir)} is in use by another process (it did not say which)`)
    } finally {
      child.kill('SIGCONT')
    }
  })

  it.skipIf(process.platform === 'win32')('refuses without a holder name when the holder does not answer (stopped process)', async () => {
    const dir = tempDir()
    const child = await holder(dir)
    child.kill('SIGSTOP')
    try {
      const error = await refusal(dir)
      expect(error.holder).toBeUndefined()
      expect(error.message).toContain('in use by another process (it did not say which)')
    } finally {
      child.kill('SIGCONT')
    }
  })
})

/** Why `mount --bind` cannot be used here, or undefined when it can (tried once, on an empty folder). */
const bindMountUnavailable = probeBindMount()

function probeBindMount(): string | undefined {
  if (process.platform !== 'linux') return 'bind mounts are a Linux feature'
  const base = mkdtempSync(path.join(os.tmpdir(), 'stockmesh-mount-probe-'))
  const source = path.join(base, 'source')
  const target = path.join(base, 'target')
  mkdirSync(source)
  mkdirSync(target)
  try {
    const mounted = spawnSync('mount', ['--bind', source, target], { encoding: 'utf8' })
    if (mounted.error) return `mount cannot be run: ${mounted.error.message}`
    if (mounted.status !== 0) return `mount --bind is not permitted here (it needs root / CAP_SYS_ADMIN): ${mounted.stderr.trim() || `exit ${mounted.status}`}`
    unmount(target)
    return undefined
  } finally {
    // rmdir, never a recursive removal: that would go through a mount left behind.
    for (const dir of [target, source, base]) rmdirSync(dir)
  }
}

function unmount(target: string): void {
  const plain = spawnSync('umount', [target], { encoding: 'utf8' })
  if (plain.status === 0) return
  // Busy (a process still inside it): detach it now, the kernel finishes when it is left.
  const lazy = spawnSync('umount', ['-l', target], { encoding: 'utf8' })
  if (lazy.status !== 0) throw new Error(`cannot unmount ${target}: ${plain.stderr.trim()} / ${lazy.stderr.trim()}`)
}

/** `mount --bind source <fresh folder>`, unmounted (and the folder removed) when the test ends, failed or not. */
function bindMount(source: string): string {
  const target = mkdtempSync(path.join(os.tmpdir(), 'stockmesh-bind-'))
  const mounted = spawnSync('mount', ['--bind', source, target], { encoding: 'utf8' })
  if (mounted.status !== 0) {
    rmdirSync(target)
    throw new Error(`mount --bind ${source} ${target} failed: ${mounted.stderr.trim()}`)
  }
  onTestFinished(() => {
    unmount(target)
    rmdirSync(target)
  })
  return target
}

function refusedBy(answer: RemoteAnswer): LockHolder | undefined {
  expect(answer).toMatchObject({ error: 'DataFolderLockedError' })
  return 'error' in answer ? answer.holder : undefined
}

describe.skipIf(bindMountUnavailable !== undefined)(
  `the identity lock: the same folder through a bind mount${bindMountUnavailable ? ` (skipped: ${bindMountUnavailable})` : ''}`,
  () => {
    it('refuses a second process that reaches a held folder through a bind mount, naming the holder and its path', async () => {
      const dir = tempDir()
      const child = await holder(dir)
      const mount = bindMount(dir)
      expect(canonicalDataDir(mount)).not.toBe(canonicalDataDir(dir)) // the path lock alone would let it in

      const error = await refusal(mount)
      expect(error.dir).toBe(canonicalDataDir(mount))
      expect(error.holder).toMatchObject({ pid: child.pid, command: 'test holder', url: 'http://127.0.0.1:1/', dir: canonicalDataDir(dir) })
      expect(error.message).toContain(
        `data folder ${canonicalDataDir(mount)} (the same folder as ${canonicalDataDir(dir)}) is in use by process ${child.pid} (test holder, since `,
      )

      // Another process than this test's, too.
      const other = remote()
      expect(refusedBy(await other.send('lock', mount))?.pid).toBe(child.pid)
      expect(readdirSync(dir)).toEqual([])
    })

    it('refuses this process asking again through a bind mount', async () => {
      const dir = tempDir()
      await take(dir)
      const error = await refusal(bindMount(dir))
      expect(error.holder?.pid).toBe(process.pid)
      expect(error.message).toContain(`is in use by process ${process.pid} (this process: test, since`)
    })

    it('a folder created after the path lock was taken: holdIdentity() after mkdir, and a bind-mount process is refused', async () => {
      const dir = path.join(tempDir(), 'site')
      const lock = await take(dir)
      expect(await lock.holdIdentity()).toBe(false) // no folder, no identity: nothing taken, nothing made
      expect(existsSync(dir)).toBe(false)
      mkdirSync(dir)
      expect(await lock.holdIdentity()).toBe(true)
      expect(await lock.holdIdentity()).toBe(true) // idempotent

      const mount = bindMount(dir)
      const other = remote()
      const holder = refusedBy(await other.send('lock', mount))
      expect(holder).toMatchObject({ pid: process.pid, command: 'test', dir: canonicalDataDir(dir) })
    })

    it('two processes that locked one missing folder through two paths: the first holdIdentity() after mkdir wins, the other is refused', async () => {
      const parent = tempDir()
      const parentMount = bindMount(parent)
      const dir = path.join(parent, 'site')
      const lock = await take(dir)
      const other = remote()
      // Different paths, no folder yet: both path locks are granted, and neither holds the folder.
      expect(await other.send('lock', path.join(parentMount, 'site'))).toMatchObject({ ok: true })
      expect(await other.send('hold')).toEqual({ ok: false })
      expect(await lock.holdIdentity()).toBe(false)

      mkdirSync(dir) // say the other created it: whoever holds the identity first is the one
      expect(await other.send('hold')).toEqual({ ok: true })
      const error = await lock.holdIdentity().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(DataFolderLockedError)
      expect((error as DataFolderLockedError).holder).toMatchObject({ pid: other.child.pid, dir: path.join(canonicalDataDir(parentMount), 'site') })
      expect(readdirSync(dir)).toEqual([])

      expect(await other.send('release')).toEqual({ ok: true })
      expect(await lock.holdIdentity()).toBe(true)
    })

    it('release() frees both the path lock and the identity lock', async () => {
      const dir = tempDir()
      const mount = bindMount(dir)
      const first = await take(dir)
      expect(await first.holdIdentity()).toBe(true)
      await first.release()

      const other = remote()
      expect(await other.send('lock', mount)).toMatchObject({ ok: true }) // the identity is free
      expect((await refusal(dir)).holder?.pid).toBe(other.child.pid) // and now held through the mount
      expect(await other.send('release')).toEqual({ ok: true })
      const again = await take(dir) // the path is free too
      expect(await again.holdIdentity()).toBe(true)
    })

    it('past a holder of a removed folder: a process racing this one for the new folder through a bind mount, one of the two gets it', async ({ skip }) => {
      const removed = tempDir()
      const stale = remote()
      expect(await stale.send('lock', removed)).toMatchObject({ ok: true })
      const dir = replaceByNewFolder(removed, skip)
      const mount = bindMount(dir)

      const other = remote()
      const [here, there] = await Promise.all([take(dir).then(() => true, (error: unknown) => error), other.send('lock', mount)])
      const winners = [here === true, 'ok' in there]
      expect(winners.filter(Boolean), JSON.stringify({ here: String(here), there })).toHaveLength(1)
      if (here === true) expect(refusedBy(there)?.pid).toBe(process.pid)
      else expect((here as DataFolderLockedError).holder?.pid).toBe(other.child.pid)
    })

    it('a live holder that skipped a stale one still blocks after the stale one is gone', async ({ skip }) => {
      const removed = tempDir()
      const stale = remote()
      expect(await stale.send('lock', removed)).toMatchObject({ ok: true })
      const dir = replaceByNewFolder(removed, skip)
      const lock = await take(dir) // past the stale holder's socket, at the next one
      expect(await lock.holdIdentity()).toBe(true)
      expect(await stale.send('release')).toEqual({ ok: true }) // its socket is free again

      const other = remote()
      const holder = refusedBy(await other.send('lock', bindMount(dir)))
      expect(holder).toMatchObject({ pid: process.pid, dir: canonicalDataDir(dir) })
      await lock.release()
      expect(await other.send('lock', bindMount(dir))).toMatchObject({ ok: true })
    })

    it.skipIf(spawnSync('unshare', ['--mount', 'true']).status !== 0)(
      'a holder in a mount namespace of its own, whose path for the folder is another folder here, still blocks (it says the identity it has)',
      async () => {
        const dir = tempDir()
        const elsewhere = tempDir() // an empty folder of its own here; `dir` in the holder's namespace
        const child = await holder(elsewhere, dir)
        const error = await refusal(dir)
        expect(error.holder).toMatchObject({ pid: child.pid, dir: canonicalDataDir(elsewhere) })
      },
    )

    it('is free at once, path and identity, when the holder is killed with SIGKILL', async () => {
      const dir = tempDir()
      const child = await holder(dir)
      const mount = bindMount(dir)
      expect((await refusal(mount)).holder?.pid).toBe(child.pid)
      expect((await refusal(dir)).holder?.pid).toBe(child.pid)
      child.kill('SIGKILL')
      await exited(child)

      const throughMount = await take(mount) // the identity was freed
      expect(await throughMount.holdIdentity()).toBe(true)
      await throughMount.release()
      const lock = await take(dir) // and the path
      expect(await lock.holdIdentity()).toBe(true)
    })
  },
)
