/**
 * The app's pages. Hash history: the node serves one index.html, and the same build works at any
 * path and inside Electron without server-side fallbacks.
 */
import { createRouter, createWebHashHistory } from 'vue-router'
import StockView from './stock/StockView.vue'

export const router = createRouter({
  history: createWebHashHistory(),
  routes: [
    { path: '/', name: 'stock', component: StockView, meta: { title: 'Stock' } },
    { path: '/items/:sku', name: 'item', component: () => import('./stock/ItemView.vue'), props: true, meta: { title: 'Item' } },
    { path: '/orders', name: 'orders', component: () => import('./orders/OrdersView.vue'), meta: { title: 'Orders' } },
    { path: '/orders/:id', name: 'order', component: () => import('./orders/OrderView.vue'), props: true, meta: { title: 'Order' } },
    { path: '/deliveries', name: 'deliveries', component: () => import('./deliveries/DeliveriesView.vue'), meta: { title: 'Deliveries' } },
    { path: '/deliveries/:id', name: 'delivery', component: () => import('./deliveries/ManifestView.vue'), props: true, meta: { title: 'Delivery' } },
    { path: '/review', name: 'review', component: () => import('./review/ReviewView.vue'), meta: { title: 'Review' } },
    { path: '/history', name: 'history', component: () => import('./history/HistoryView.vue'), meta: { title: 'History' } },
    { path: '/sync', name: 'sync', component: () => import('./sync/SyncView.vue'), meta: { title: 'Sync' } },
    { path: '/:rest(.*)*', redirect: '/' },
  ],
})

router.afterEach((to) => {
  document.title = `${String(to.meta.title ?? 'stockmesh')} · stockmesh`
})
