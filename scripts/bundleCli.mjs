// Bundles the compiled CLI (dist/cli.js and everything it imports, node_modules included) into one
// file, dist/stockmesh.mjs, which bin/stockmesh.mjs runs: resolving and reading some 400 module files
// took 300–500 ms of every start (BENCHMARKS.md section 6). Automerge stays outside: its Node entry
// reads its wasm file next to itself.
import { build } from 'esbuild'

await build({
  entryPoints: ['dist/cli.js'],
  outfile: 'dist/stockmesh.mjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  external: ['@automerge/automerge', '@automerge/automerge/*'],
  // CommonJS dependencies (pino, ws, commander, …) call require(): give the bundle one.
  banner: { js: "import { createRequire as __stockmeshRequire } from 'node:module'; const require = __stockmeshRequire(import.meta.url);" },
  logLevel: 'warning',
})
