#!/usr/bin/env node
// The `stockmesh` command. Runs the JavaScript compiled into dist/ by `npm run build` (no TypeScript
// transpiler at run time); `npm start` and `npm test` build it first.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

// dist/stockmesh.mjs is the CLI bundled into one file (scripts/bundleCli.mjs): it starts faster.
const cli = new URL('../dist/stockmesh.mjs', import.meta.url)
if (!existsSync(cli)) {
  console.error(`stockmesh: ${fileURLToPath(cli)} is missing: run npm run build first`)
  process.exit(1)
}
const { main } = await import(cli.href)
await main(process.argv)
