/** Running the `stockmesh` command to its end, and a recursive listing of a folder to compare. */
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import path from 'node:path'

const BIN = path.resolve(import.meta.dirname, '../../bin/stockmesh.mjs')

export interface CliResult {
  status: number | null
  stdout: string
  stderr: string
}

/**
 * Runs `stockmesh …` to its end without blocking this process (a site child started by the
 * test keeps being served). STOCKMESH_API_TOKEN is removed from the environment so --token is
 * exactly what the test gives.
 */
export function runCli(args: string[], timeoutMs = 20_000): Promise<CliResult> {
  const env = { ...process.env }
  delete env.STOCKMESH_API_TOKEN
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`stockmesh ${args.join(' ')} did not end within ${timeoutMs} ms:\n${stdout}${stderr}`))
    }, timeoutMs)
    child.once('exit', (status) => {
      clearTimeout(timer)
      resolve({ status, stdout, stderr })
    })
  })
}

/**
 * Every file and folder under `dir` with its size and modification time, sorted: two listings
 * are equal only if nothing was created, removed, written or renamed (a temp file created and
 * removed again still changes its folder's mtime). `null` when `dir` does not exist.
 */
export function folderListing(dir: string): string[] | null {
  if (!existsSync(dir)) return null
  const out: string[] = []
  const walk = (at: string) => {
    for (const name of readdirSync(at).sort()) {
      const full = path.join(at, name)
      const st = statSync(full)
      out.push(`${path.relative(dir, full)}${st.isDirectory() ? '/' : ''} ${st.isDirectory() ? '' : st.size} ${st.mtimeMs}`)
      if (st.isDirectory()) walk(full)
    }
  }
  out.push(`. ${statSync(dir).mtimeMs}`)
  walk(dir)
  return out
}
