/**
 * Who is at the counter: the user id every change made from this page is recorded under. Kept in
 * this browser's local storage, so a shared counter keeps its storekeeper until someone else
 * signs in by typing their own.
 */
import { defineStore } from 'pinia'
import { ref, watch } from 'vue'

const KEY = 'stockmesh.user'
/** The user ids the node accepts (src/schema/ids.ts). */
export const USER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/

function stored(): string {
  try {
    return localStorage.getItem(KEY) ?? ''
  } catch {
    return ''
  }
}

export const useSessionStore = defineStore('session', () => {
  const user = ref(stored())
  watch(user, (value) => {
    try {
      if (USER_PATTERN.test(value)) localStorage.setItem(KEY, value)
    } catch {
      // Storage refused (private window): the name lasts as long as the page.
    }
  })
  /** Why the current user id cannot sign a change, or undefined when it can. */
  function problem(): string | undefined {
    if (user.value === '') return 'Type your user id (top right) first: every change records who made it.'
    if (!USER_PATTERN.test(user.value)) return 'Your user id may hold letters, digits and . _ : - only (no spaces).'
    return undefined
  }
  return { user, problem }
})
