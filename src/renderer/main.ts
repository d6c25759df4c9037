/** Renderer entry: the Vue app with its Pinia stores and its pages. */
import { createPinia } from 'pinia'
import { createApp } from 'vue'
import { router } from '../views/router.ts'
import App from './App.vue'

createApp(App).use(createPinia()).use(router).mount('#app')
