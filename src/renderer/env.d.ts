/** Types tsc cannot see by itself: .vue modules (compiled by Vite) and the preload's bridge. */

declare module '*.vue' {
  import type { DefineComponent } from 'vue'
  const component: DefineComponent<object, object, unknown>
  export default component
}

interface Window {
  /** Set by the Electron preload; absent when a plain browser opens the site node. */
  readonly stockmesh?: import('../preload/index.ts').StockmeshBridge
}
