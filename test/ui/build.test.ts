import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { build } from 'vite'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { tempDir } from '../helpers/tempDir.ts'

describe('vite.ui.config.ts', () => {
  it('builds the renderer into an index.html and a JS bundle holding the stock table', async () => {
    const outDir = tempDir('stockmesh-ui-')
    // Vitest sets NODE_ENV=test, which would make Vite bundle Vue's development build.
    vi.stubEnv('NODE_ENV', 'production')
    onTestFinished(() => void vi.unstubAllEnvs())
    await build({ configFile: path.resolve('vite.ui.config.ts'), logLevel: 'silent', build: { outDir, emptyOutDir: true } })

    const html = readFileSync(path.join(outDir, 'index.html'), 'utf8')
    const scripts = [...html.matchAll(/<script[^>]+src="([^"]+\.js)"/g)].map((m) => m[1] ?? '')
    expect(scripts).toHaveLength(1)
    // base './': the page must load from wherever it is served.
    expect(scripts[0]).toMatch(/^\.\/assets\//)
    expect(readdirSync(path.join(outDir, 'assets'))).toContain(path.basename(scripts[0] ?? ''))

    const js = readFileSync(path.join(outDir, scripts[0] ?? ''), 'utf8')
    for (const heading of ['SKU', 'Product', 'On hand', 'Unit']) expect(js).toContain(heading)
    expect(js).toContain('/api/stock')
    expect(js).not.toContain('[Vue warn]')
  })
})
