import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/tempDir.ts'

const BIN = path.resolve(import.meta.dirname, '../../bin/stockmesh.mjs')
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 })

describe('the stockmesh command', () => {
  it.each([[[]], [['site']], [['demo']], [['catalog']], [['catalog', 'import']]])('prints help for %j', (args) => {
    const res = run(...args, '--help')
    expect(res.status).toBe(0)
    expect(res.stdout).toMatch(/^Usage: stockmesh/)
    if (args[0] === 'site') expect(res.stdout).toMatch(/--data <dir>[\s\S]*--site <id>[\s\S]*--port <n>[\s\S]*--token <secret>/)
    if (args[1] === 'import') expect(res.stdout).toMatch(/^Usage: stockmesh catalog import \[options\] <file\.\.\.>[\s\S]*sku,name,unit\[,active\][\s\S]*--data <dir>/)
  })

  it('says what is missing when a new data folder has no site id', () => {
    const res = run('site', '--data', tempDir(), '--port', '0')
    expect(res.status).toBe(1)
    expect(res.stderr).toMatch(/not provisioned yet: give the site id \(--site\)/)
  })

  it('refuses a port that is not a port', () => {
    const res = run('site', '--data', tempDir(), '--port', '99999')
    expect(res.status).not.toBe(0)
    expect(res.stderr).toMatch(/port number/)
  })
})
