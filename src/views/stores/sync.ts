/**
 * Whether what was done here has left the device (GET /api/sync): Offline, Syncing or Up to date,
 * how many local changes the relay does not hold yet, when the last sync was, and each peer. Read
 * on every event of the node and every 2 s besides (the relay's acknowledgements carry no event).
 */
import { defineStore } from 'pinia'
import { computed, onScopeDispose, ref, shallowRef } from 'vue'
import { getJson, messageOf } from '../api.ts'
import { coalesced, useLiveStore } from './live.ts'

export type SyncState = 'offline' | 'syncing' | 'up-to-date'

export interface SyncStatus {
  state: SyncState
  relay: { url: string; connected: boolean; lastSyncAt: string | null; refusal?: { error: string; reason: string; status: number; at: string }; revocations: { seq: number; devices: number } | null } | null
  peers: Array<{ peerId: string; role: string | null; site: string | null; device: string | null; connected: boolean; lastSyncAt: string | null }>
  pending: { documents: number; changes: number }
  documents: Array<{ kind: string; id: string; url: string; pending: number; missing?: true }>
  /** The LAN mesh: its port and each LAN peer (linked, linking, refused and why, incompatible). Null when off. */
  lan: { port: number; peers: Array<{ peerId: string; site: string; device: string; role: string; address: string; state: 'linked' | 'linking' | 'refused' | 'incompatible'; direction: 'in' | 'out'; reason?: string; schemas?: { state: 'same' | 'newer' | 'older' | 'unknown'; detail?: string }; since: string }> } | null
}

const POLL_MS = 2_000

export const LABELS: Record<SyncState, string> = { offline: 'Offline', syncing: 'Syncing', 'up-to-date': 'Up to date' }

export const useSyncStore = defineStore('sync', () => {
  const live = useLiveStore()
  const status = shallowRef<SyncStatus | undefined>()
  const error = ref<string | undefined>()

  async function load(): Promise<void> {
    try {
      status.value = await getJson<SyncStatus>('/api/sync')
      error.value = undefined
    } catch (caught) {
      error.value = messageOf(caught)
    }
  }
  const reload = coalesced(load)
  live.subscribe(() => reload())
  const timer = setInterval(reload, POLL_MS)
  onScopeDispose(() => clearInterval(timer))

  /** Offline too when the page cannot hear its own node: nothing it shows is current then. */
  const state = computed<SyncState>(() => (!live.connected || !status.value || error.value !== undefined ? 'offline' : status.value.state))
  const label = computed(() => LABELS[state.value])

  return { status, error, state, label, load }
})
