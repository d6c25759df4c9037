#!/usr/bin/env node
/**
 * `npm run desktop [-- --enrol FILE | --site ID]`: builds the desktop app (electron-vite: out/main,
 * out/preload, out/renderer) and opens its window around a site node — an enrolled device when
 * given its enrolment file (first start; later starts find the folder enrolled), else the demo
 * site or the named one. The Electron binary is not downloaded by `npm ci` here (package.json
 * `allowScripts`); without it this says so and how to get it, and exits 1.
 * STOCKMESH_ELECTRON names another Electron binary.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { parseArgs } from 'node:util'

const ROOT = path.resolve(import.meta.dirname, '..')
const usage = 'usage: npm run desktop [-- --enrol <enrolment.json> | --site <site id>] [--skip-build]'

let values
try {
  ;({ values } = parseArgs({ options: { enrol: { type: 'string' }, site: { type: 'string' }, 'skip-build': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }))
} catch (error) {
  console.error(`${error.message}\n${usage}`)
  process.exit(2)
}
if (values.help) {
  console.log(usage)
  process.exit(0)
}
if (values.enrol !== undefined && values.site !== undefined) {
  console.error(`--enrol and --site: give one (an enrolment file names its site)\n${usage}`)
  process.exit(2)
}
if (values.enrol !== undefined && !existsSync(values.enrol)) {
  console.error(`--enrol: no file ${values.enrol}`)
  process.exit(2)
}

/** The Electron binary, or undefined when it was never downloaded. */
function electronBinary() {
  if (process.env.STOCKMESH_ELECTRON) return process.env.STOCKMESH_ELECTRON
  try {
    const binary = createRequire(import.meta.url)('electron')
    return typeof binary === 'string' && existsSync(binary) ? binary : undefined
  } catch {
    return undefined
  }
}

const binary = electronBinary()
if (!binary) {
  console.error(
    [
      'The Electron binary is not installed: npm ci does not download it here (package.json allowScripts).',
      'On a machine with internet: `npm rebuild electron` (or set STOCKMESH_ELECTRON to an Electron binary), then `npm run desktop` again.',
      'The same app runs in any browser meanwhile: `npm start` prints its URL.',
    ].join('\n'),
  )
  process.exit(1)
}

if (!values['skip-build']) {
  const built = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/electron-vite/bin/electron-vite.js'), 'build', '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' })
  if (built.status !== 0) process.exit(built.status ?? 1)
}

const env = { ...process.env }
if (values.enrol !== undefined) env.STOCKMESH_ENROL = path.resolve(values.enrol)
if (values.site !== undefined) env.STOCKMESH_SITE = values.site
const app = spawn(binary, [ROOT], { cwd: ROOT, env, stdio: 'inherit' })
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => app.kill(signal))
app.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
