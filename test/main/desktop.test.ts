/**
 * `npm run desktop` (scripts/desktop.mjs): what it does on these machines, where the Electron
 * binary cannot be downloaded (a clear message, exit 1), and what it hands to an Electron binary
 * when there is one (a stand-in script here: the project folder, the enrolment file, its exit code).
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/tempDir.ts'

const ROOT = path.resolve(import.meta.dirname, '../..')
const SCRIPT = path.join(ROOT, 'scripts/desktop.mjs')

function desktop(args: string[], env: NodeJS.ProcessEnv) {
  const clean = { ...process.env }
  delete clean.STOCKMESH_ELECTRON
  delete clean.NODE_OPTIONS
  return spawnSync(process.execPath, [SCRIPT, ...args], { env: { ...clean, ...env }, encoding: 'utf8', timeout: 30_000 })
}

describe('npm run desktop', () => {
  it('says the Electron binary is missing and how to get it, and exits 1', () => {
    // ELECTRON_OVERRIDE_DIST_PATH: the electron package looks in an empty folder, as on a fresh npm ci here.
    const res = desktop([], { ELECTRON_OVERRIDE_DIST_PATH: tempDir('no-electron-') })
    expect(res.status).toBe(1)
    expect(res.stderr).toContain('The Electron binary is not installed')
    expect(res.stderr).toContain('npm start')
  })

  it('refuses bad arguments with a usage line, and an enrolment file that does not exist', () => {
    const both = desktop(['--enrol', 'a.json', '--site', 'store-a'], {})
    expect(both.status).toBe(2)
    expect(both.stderr).toContain('give one')
    const unknown = desktop(['--port', '1'], {})
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toContain('usage: npm run desktop')
    const missing = desktop(['--enrol', path.join(tempDir(), 'nope.json')], {})
    expect(missing.status).toBe(2)
    expect(missing.stderr).toContain('no file')
  })

  it('opens Electron on the project with the enrolment file of the device, and passes its exit code on', () => {
    const dir = tempDir('fake-electron-')
    const record = path.join(dir, 'launched.json')
    const fake = path.join(dir, 'electron')
    writeFileSync(fake, `#!${process.execPath}\nrequire('node:fs').writeFileSync(${JSON.stringify(record)}, JSON.stringify({ argv: process.argv.slice(2), enrol: process.env.STOCKMESH_ENROL, site: process.env.STOCKMESH_SITE ?? null }))\nprocess.exit(3)\n`)
    chmodSync(fake, 0o755)
    const enrolment = path.join(dir, 'a1.json')
    writeFileSync(enrolment, '{}')
    const res = desktop(['--enrol', path.relative(process.cwd(), enrolment), '--skip-build'], { STOCKMESH_ELECTRON: fake })
    expect(res.status).toBe(3)
    expect(JSON.parse(readFileSync(record, 'utf8'))).toEqual({ argv: [ROOT], enrol: enrolment, site: null })
    // package.json's main is what Electron runs in that folder: the electron-vite build of src/main.
    expect(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).main).toBe('out/main/index.js')
  })
})
