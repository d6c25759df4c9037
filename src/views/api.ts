/**
 * The page's client for the site node's JSON API (same origin: the node serves the page). Reads
 * are GETs; writes are commands (POST) that count as done only when the node answers, which it
 * does once the change is on its disk. Every failure becomes an `ApiError` whose message is fit
 * to show to a storekeeper, with the field the node blamed (shown next to that field).
 */
import { ref } from 'vue'

export class ApiError extends Error {
  override readonly name = 'ApiError'
  constructor(
    message: string,
    /** HTTP status; 0 when the node could not be reached at all. */
    readonly status: number,
    /** The input field the node refused (`sku`, `quantity`, `lot`…), when it named one. */
    readonly field?: string,
    /** The rule that refused it (`unknown-sku`, `insufficient-lot-stock`…), when one did. */
    readonly code?: string,
  ) {
    super(message)
  }
  /** True when the node was not reached: what was typed must stay for a retry. */
  get unreachable(): boolean {
    return this.status === 0
  }
}

const TOKEN_KEY = 'stockmesh.token'
/**
 * True once the node refused this page for a missing or wrong API token (a site started with
 * `--token`): the shell then asks for it. The token is kept for this tab only (sessionStorage).
 */
export const tokenRequired = ref(false)

/** The Authorization header of every request, when a token was given. */
export function authHeaders(): Record<string, string> {
  let token: string | null = null
  try {
    token = sessionStorage.getItem(TOKEN_KEY)
  } catch {
    // no storage: no token
  }
  return token ? { authorization: `Bearer ${token}` } : {}
}

/** Keeps `token` for this tab's requests (and the event stream's next reconnection). */
export function setToken(token: string): void {
  try {
    sessionStorage.setItem(TOKEN_KEY, token)
  } catch {
    // no storage: nothing to keep it in
  }
  tokenRequired.value = false
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null

async function request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  let res: Response
  try {
    res = await fetch(path, {
      method,
      headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...authHeaders() },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
  } catch {
    throw new ApiError(
      method === 'GET'
        ? 'Cannot reach the site node: what is shown is what was read last.'
        : 'Cannot reach the site node, or its answer was lost: what you typed is kept. Trying again cannot record it twice.',
      0,
    )
  }
  const answer: unknown = await res.json().catch(() => undefined)
  if (res.status === 401) tokenRequired.value = true
  if (!res.ok) {
    const error = isRecord(answer) && typeof answer.error === 'string' ? answer.error : `${res.status} ${res.statusText}`
    const field = isRecord(answer) && typeof answer.field === 'string' && answer.field !== '' ? answer.field : undefined
    const code = isRecord(answer) && typeof answer.code === 'string' ? answer.code : undefined
    throw new ApiError(error, res.status, field, code)
  }
  if (answer === undefined) throw new ApiError(`The site node answered ${path} with something that is not JSON`, res.status)
  return answer
}

/** GET a JSON path. */
export const getJson = <T>(path: string): Promise<T> => request('GET', path) as Promise<T>
/** POST a command; resolves once the node has it on disk. */
export const post = <T>(path: string, body: unknown): Promise<T> => request('POST', path, body) as Promise<T>

/** The message to show for anything thrown. */
export const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/**
 * A fresh id for a command the node records once (a movement, an order, a line): time first so
 * ids sort by creation, then randomness. Kept with what was typed, so a retry after the node was
 * unreachable is the same movement, never a second one.
 */
export function newId(prefix: string): string {
  const random = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, '0')).join('')
  return `${prefix}-${Date.now().toString(36)}-${random}`
}
