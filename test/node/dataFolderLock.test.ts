/**
 * The data folder lock, with real processes where it matters: a holder in another process is
 * named, a SIGKILLed holder frees the folder at once, and nothing is written into the folder.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, readdirSync, existsSync, symlinkSync } from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { canonicalDataDir, DataFolderLockedError, lockDataFolder, type DataFolderLock } from '../../src/node/dataFolderLock.ts'
import { tempDir } from '../helpers/tempDir.ts'

/** Where the lock is an abstract socket and writes nothing (macOS uses a socket file in the folder). */
const linux = process.platform === 'linux'

const MODULE = path.resolve(import.meta.dirname, '../../src/node/dataFolderLock.ts')
const ROOT = path.resolve(import.meta.dirname, '../..')

/** A process that takes the lock of `dir` and holds it until killed (it prints `locked`). */
function holder(dir: string): Promise<ChildProcess> {
  const code = `
    const { lockDataFolder } = await import(${JSON.stringify(MODULE)})
    await lockDataFolder(process.argv[1], { command: 'test holder', url: 'http://127.0.0.1:1/' })
    console.log('locked')
    setInterval(() => {}, 60_000) // the lock itself does not keep a process alive
  `
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, dir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
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
    expect(error.holder).toMatchObject({ pid: child.pid, command: 'test holder', url: 'http://127.0.0.1:1/' })
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

  it('tells a refused process what update() said', async () => {
    const dir = tempDir()
    const lock = await take(dir)
    lock.update({ url: 'http://127.0.0.1:8470/' })
    expect((await refusal(dir)).holder?.url).toBe('http://127.0.0.1:8470/')
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
