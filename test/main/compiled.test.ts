/**
 * `npm start`, the `stockmesh` bin and the Electron main process run compiled JavaScript: no
 * TypeScript transpiler (tsx) at run time, and every package they import is a runtime dependency.
 * dist/ is written by `npm run build:node`, which `npm test` runs before vitest.
 */
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import ts from 'typescript'
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { tempDir } from '../helpers/tempDir.ts'

const ROOT = path.resolve(import.meta.dirname, '../..')
const BIN = path.join(ROOT, 'bin/stockmesh.mjs')
const DIST = path.join(ROOT, 'dist')
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
}

/** Packages only for building, type-checking, testing or bundling into the UI: never in `dependencies`. */
const DEV_ONLY = ['tsx', 'typescript', 'vitest', 'vite', 'electron', 'electron-vite', '@vitejs/plugin-vue', 'vite-plugin-wasm', 'fast-check', 'vue', 'pinia', 'vue-router']

/** The environment of a child that must not inherit a loader (e.g. `--import tsx`) from this one. */
function plainEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  return env
}

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => /\.[cm]?js$/.test(file))
    .map((file) => path.join(dir, file))
}

/** Every module specifier a JavaScript file imports: static, re-exports and dynamic `import('…')`. */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true)
  return info.importedFiles.map((f) => f.fileName)
}

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/')
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!
}

const isBuiltin = (specifier: string) => specifier.startsWith('node:') || builtinModules.includes(specifier.split('/')[0]!)
const isRelative = (specifier: string) => specifier.startsWith('.') || specifier.startsWith('/')

/** What is wrong with the imports of compiled files: tsx, .ts files, or packages not in `dependencies`. */
function importProblems(files: string[], alsoAllowed: string[] = []): string[] {
  const problems: string[] = []
  for (const file of files) {
    for (const specifier of importsOf(file)) {
      const where = `${path.relative(ROOT, file)} imports '${specifier}'`
      if (isRelative(specifier)) {
        if (/\.[cm]?tsx?$/.test(specifier)) problems.push(`${where}: a TypeScript file`)
        else if (!existsSync(path.resolve(path.dirname(file), specifier))) problems.push(`${where}: no such file`)
      } else if (!isBuiltin(specifier)) {
        const name = packageOf(specifier)
        if (name === 'tsx') problems.push(`${where}: a TypeScript transpiler`)
        else if (!(name in pkg.dependencies) && !alsoAllowed.includes(name)) problems.push(`${where}: not in package.json dependencies`)
      }
    }
  }
  return problems
}

describe('the compiled node code (dist/)', () => {
  beforeAll(() => {
    if (!existsSync(path.join(DIST, 'cli.js'))) throw new Error('dist/cli.js is missing: run npm run build:node (npm test does) before vitest')
  })

  it('holds the CLI and nothing of the UI or the Electron shell', () => {
    const files = jsFiles(DIST).map((file) => path.relative(DIST, file).split(path.sep).join('/'))
    expect(files).toContain('cli.js')
    expect(files).toContain('node/siteNode.js')
    expect(files.filter((file) => /^(renderer|views|main|preload)\//.test(file))).toEqual([])
  })

  it('imports neither tsx nor .ts files, and only packages listed in dependencies', () => {
    const files = jsFiles(DIST)
    expect(files.length).toBeGreaterThan(10)
    expect(importProblems(files)).toEqual([])
  })

  it('runs `stockmesh --help` with plain node: no loader, no NODE_OPTIONS', () => {
    const res = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8', env: plainEnv(), timeout: 20_000 })
    expect(res.stderr).toBe('')
    expect(res.status).toBe(0)
    expect(res.stdout).toMatch(/^Usage: stockmesh/)
    expect(res.stdout).toMatch(/^\s+site\b/m)
    expect(res.stdout).toMatch(/^\s+demo\b/m)
  })

  it('starts a site and answers its API while any TypeScript file or tsx import would throw', async () => {
    // A module hook that refuses tsx and every .ts file: the whole module graph of a running
    // site node must load without them.
    const dir = tempDir()
    const hooks = path.join(dir, 'no-typescript.mjs')
    writeFileSync(
      hooks,
      `export async function resolve(specifier, context, next) {
  if (specifier === 'tsx' || specifier.startsWith('tsx/')) throw new Error('tsx imported at run time: ' + specifier)
  const resolved = await next(specifier, context)
  if (/\\.[cm]?tsx?$/.test(new URL(resolved.url).pathname)) throw new Error('TypeScript loaded at run time: ' + resolved.url)
  return resolved
}
`,
    )
    const register = `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(hooks).href)})`
    const args = ['--import', `data:text/javascript,${encodeURIComponent(register)}`, BIN, 'site', '--data', path.join(dir, 'data'), '--site', 'compiled-check', '--port', '0']
    const child = spawn(process.execPath, args, { env: plainEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    onTestFinished(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
    })
    let out = ''
    const url = await new Promise<string>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        out += chunk.toString()
        const m = /ready at (http:\/\/\S+?)\/?\s/.exec(out)
        if (m) resolve(m[1]!)
      }
      child.stdout.on('data', onData)
      child.stderr.on('data', onData)
      child.once('exit', (code) => reject(new Error(`the site exited with ${code} before it was ready:\n${out}`)))
    })
    const health = await fetch(`${url}/api/health`)
    expect(health.status).toBe(200)
    expect(await health.json()).toMatchObject({ status: 'ok', site: 'compiled-check' })
    expect(out).not.toMatch(/TypeScript loaded|tsx imported/)
  })

  it('says to build when dist/ is missing, without a stack trace', () => {
    const dir = tempDir()
    mkdirSync(path.join(dir, 'bin'))
    copyFileSync(BIN, path.join(dir, 'bin/stockmesh.mjs'))
    const res = spawnSync(process.execPath, [path.join(dir, 'bin/stockmesh.mjs'), '--help'], { encoding: 'utf8', env: plainEnv(), timeout: 20_000 })
    expect(res.status).toBe(1)
    expect(res.stdout).toBe('')
    expect(res.stderr).toMatch(/^stockmesh: .*dist[/\\]stockmesh\.mjs is missing: run npm run build first\n$/)
  })
})

describe('package.json', () => {
  it('lists no build, test or UI-bundled package in dependencies', () => {
    const deps = Object.keys(pkg.dependencies)
    expect(deps.filter((name) => DEV_ONLY.includes(name) || name.startsWith('@types/'))).toEqual([])
    expect(deps.filter((name) => name in pkg.devDependencies)).toEqual([])
  })

  it('starts the demo from the compiled bin, serving the built UI, after building it', () => {
    const { scripts } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    // npm start builds what it runs (the node code and the browser UI), not the desktop app.
    expect(scripts.prestart).toBe('npm run build:node && npm run build:ui')
    // npm run build builds everything: node code, browser UI, Electron main, preload and renderer.
    expect(scripts.build).toBe('npm run build:node && npm run build:ui && npm run build:electron')
    expect(scripts['build:electron']).toBe('electron-vite build')
    expect(scripts.desktop).toBe('node scripts/desktop.mjs')
    expect(scripts.start).toMatch(/^node bin\/stockmesh\.mjs demo --ui out\/ui$/)
    expect(scripts.start).not.toMatch(/tsx/)
  })
})

describe('the Electron main bundle (electron-vite build)', () => {
  it('holds our own code and imports only electron, builtins and runtime dependencies, with automerge external', () => {
    const outDir = tempDir('stockmesh-electron-')
    const res = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/electron-vite/bin/electron-vite.js'), 'build', '--outDir', outDir, '--logLevel', 'warn'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...plainEnv(), NODE_ENV: 'production' },
      timeout: 60_000,
    })
    expect(res.status, res.stderr).toBe(0)
    const main = jsFiles(path.join(outDir, 'main'))
    expect(main.map((file) => path.basename(file))).toEqual(['index.js'])
    expect(importProblems(main, ['electron'])).toEqual([])
    const imported = importsOf(main[0]!)
    // Our code is inside the bundle, not imported from src/.
    expect(imported.filter(isRelative)).toEqual([])
    expect(imported).toEqual(expect.arrayContaining(['electron', '@automerge/automerge', '@automerge/automerge-repo']))
    const code = readFileSync(main[0]!, 'utf8')
    expect(code).toContain('demo-store')
    // The preload is one CommonJS file carrying the app version, not the whole package.json.
    const preload = readFileSync(path.join(outDir, 'preload/index.cjs'), 'utf8')
    expect(preload).toContain(JSON.stringify((JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version))
    expect(preload).not.toContain('devDependencies')
  })
})
