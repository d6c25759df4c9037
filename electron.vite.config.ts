/**
 * Desktop build: `npm run build:electron` (electron-vite build) writes out/main, out/preload and
 * out/renderer. Building needs only the electron npm package, not its binary.
 */
import { defineConfig } from 'electron-vite'
import pkg from './package.json' with { type: 'json' }
import { RENDERER_ROOT, uiPlugins } from './vite.ui.config.ts'

/** Automerge packages the main process may import; each loads a wasm file next to its own code. */
const AUTOMERGE = [
  '@automerge/automerge',
  '@automerge/automerge-repo',
  '@automerge/automerge-repo-network-broadcastchannel',
  '@automerge/automerge-repo-network-websocket',
  '@automerge/automerge-repo-storage-nodefs',
]

export default defineConfig({
  main: {
    // One ES module file: our own code (src/main, src/node, src/docs, src/schema…) is bundled in,
    // so the main process runs no TypeScript at run time. Packages stay external (imported from
    // node_modules): electron-vite 6 keeps every package.json `dependencies` entry so by default
    // (build.externalizeDeps). @automerge/* are named as well, so they stay external even if they
    // ever leave `dependencies`: bundled, their wasm file is not found at run time.
    build: { lib: { entry: 'src/main/index.ts' }, externalizeDeps: { include: AUTOMERGE } },
  },
  preload: {
    // The version alone, not the whole package.json that importing it would bundle.
    define: { __STOCKMESH_VERSION__: JSON.stringify(pkg.version) },
    build: {
      lib: { entry: 'src/preload/index.ts' },
      // A sandboxed preload cannot be an ES module and cannot require packages: one CommonJS file,
      // named .cjs because package.json says "type": "module".
      externalizeDeps: false,
      rolldownOptions: { output: { format: 'cjs', entryFileNames: '[name].cjs' } },
    },
  },
  renderer: {
    root: RENDERER_ROOT,
    plugins: uiPlugins(),
  },
})
