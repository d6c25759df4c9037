/**
 * The site node's layering: domain steps are node services that the HTTP API, the app, the relay
 * and the ERP bridge all call, so nothing in src/node outside src/node/http imports the HTTP layer,
 * and the pure document code (src/docs, src/schema) imports no node, socket or file API.
 */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const ROOT = path.resolve(import.meta.dirname, '../..')

function files(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)))
}

function imports(file: string): string[] {
  return ts.preProcessFile(readFileSync(path.join(ROOT, file), 'utf8'), true, true).importedFiles.map((i) => i.fileName)
}

describe('layers', () => {
  it('keeps src/node outside src/node/http free of imports from the HTTP layer', () => {
    const offenders = files('src/node')
      .filter((f) => !f.startsWith('src/node/http/'))
      .flatMap((f) => imports(f).filter((i) => path.resolve(path.dirname(path.join(ROOT, f)), i).startsWith(path.join(ROOT, 'src/node/http'))).map((i) => `${f} imports ${i}`))
    expect(offenders).toEqual([])
  })

  it('keeps src/docs and src/schema pure: no file, socket, process or timer modules', () => {
    const io = /^(node:)?(fs|fs\/promises|net|http|https|dgram|child_process|worker_threads|timers|os)$/
    const offenders = [...files('src/docs'), ...files('src/schema')].flatMap((f) => imports(f).filter((i) => io.test(i) || i.includes('/node/')).map((i) => `${f} imports ${i}`))
    expect(offenders).toEqual([])
  })
})
