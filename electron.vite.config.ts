/**
 * Desktop build: `npm run build:electron` (electron-vite build) writes out/main, out/preload and
 * out/renderer. Building needs only the electron npm package, not its binary.
 */
import { defineConfig } from 'electron-vite'
import { RENDERER_ROOT, uiPlugins } from './vite.ui.config.ts'

export default defineConfig({
  main: {
    // electron-vite 6 keeps every package.json `dependencies` entry external in main by default
    // (build.externalizeDeps): @automerge/* must stay so, bundled their wasm is not found.
    build: { lib: { entry: 'src/main/index.ts' } },
  },
  preload: {
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
