/**
 * Build of the browser UI into `out/ui`, which the site node serves (`stockmesh site --ui out/ui`;
 * `npm start` builds it and passes it to `stockmesh demo`). `npm run build:ui`. The Electron shell
 * serves its own renderer build (out/renderer, electron.vite.config.ts) through `startSite`.
 *
 * No wasm plugin yet: the renderer only talks to the site node's JSON API. When the renderer gets
 * its own Automerge replica (over a websocket to the site node), add `vite-plugin-wasm` to
 * `uiPlugins()`; on vite 8 it needs no top-level-await plugin (see shared/ENVIRONMENT.md).
 */
import vue from '@vitejs/plugin-vue'
import { fileURLToPath } from 'node:url'
import { defineConfig, type PluginOption } from 'vite'

const here = (relative: string) => fileURLToPath(new URL(relative, import.meta.url))

/** The plugins of every renderer build; electron.vite.config.ts uses the same. */
export function uiPlugins(): PluginOption[] {
  // The UI uses only the Composition API: leaving the Options API out makes the bundle smaller.
  return [vue({ features: { optionsAPI: false } })]
}

/** The renderer's source folder, root of both the browser and the Electron renderer build. */
export const RENDERER_ROOT = here('./src/renderer')

export default defineConfig({
  root: RENDERER_ROOT,
  // Relative asset URLs: the files work at whatever path they are served from.
  base: './',
  plugins: uiPlugins(),
  build: {
    outDir: here('./out/ui'),
    emptyOutDir: true,
  },
  server: {
    // `vite --config vite.ui.config.ts` next to a running `npm start`: the API stays on the site node.
    proxy: { '/api': process.env.STOCKMESH_API ?? 'http://127.0.0.1:8470' },
  },
})
