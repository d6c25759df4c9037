/**
 * A JSON-RPC client for Tryton 6.0 (trytond's web interface): `POST {url}/{database}/` with
 * `{method, params, id}`, a session from `common.db.login`, sent as
 * `Authorization: Session base64(user:uid:key)`. Decimals travel as `{__class__: 'Decimal'}`.
 *
 * Errors are sorted for the bridge (src/erp/bridge.ts): the ERP unreachable, timing out or
 * answering 5xx is {@link ErpUnavailable} (retried with backoff); a Tryton error answer (a user
 * error, a missing record) is {@link TrytonError}, with Tryton's own message.
 */

export class ErpUnavailable extends Error {
  override readonly name = 'ErpUnavailable'
}

/** Tryton answered with an error: `[kind, [message, description]]` (UserError, UserWarning, …). */
export class TrytonError extends Error {
  override readonly name = 'TrytonError'
  constructor(
    readonly kind: string,
    message: string,
    /** The warning's name, for a UserWarning (acknowledged with res.user.warning). */
    readonly warning?: string,
  ) {
    super(message)
  }
}

export interface TrytonRpcOptions {
  /** http://host:port (trytond's [web] listen) */
  url: string
  database: string
  user: string
  password: string
  timeoutMs?: number
}

export function decimal(value: number | string): { __class__: 'Decimal'; decimal: string } {
  return { __class__: 'Decimal', decimal: String(value) }
}

export class TrytonRpc {
  readonly #options: TrytonRpcOptions
  #session: string | undefined
  #id = 0
  /** The logged-in user's id (after `login`). */
  uid: number | undefined

  constructor(options: TrytonRpcOptions) {
    this.#options = options
  }

  get endpoint(): string {
    return `${this.#options.url.replace(/\/+$/, '')}/${encodeURIComponent(this.#options.database)}/`
  }

  async #post(method: string, params: unknown[], session: string | undefined): Promise<unknown> {
    let response: Response
    try {
      response = await fetch(this.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(session ? { authorization: `Session ${session}` } : {}) },
        body: JSON.stringify({ method, params, id: ++this.#id }),
        signal: AbortSignal.timeout(this.#options.timeoutMs ?? 30_000),
      })
    } catch (error) {
      throw new ErpUnavailable(`Tryton at ${this.endpoint} cannot be reached: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}`)
    }
    if (response.status === 401 || response.status === 403) {
      this.#session = undefined
      throw new TrytonError('auth', `Tryton refused the login of ${this.#options.user} (HTTP ${response.status}): check the user and password`)
    }
    if (response.status >= 500 || response.status === 429 || response.status === 503) throw new ErpUnavailable(`Tryton answered HTTP ${response.status}`)
    if (!response.ok) throw new TrytonError('http', `Tryton answered HTTP ${response.status} to ${method}: is ${this.endpoint} a Tryton database?`)
    let body: { result?: unknown; error?: unknown }
    try {
      body = (await response.json()) as typeof body
    } catch {
      throw new ErpUnavailable(`Tryton answered ${method} with something that is not JSON`)
    }
    if (body.error !== undefined && body.error !== null) {
      const [kind, detail] = Array.isArray(body.error) ? (body.error as [string, unknown]) : ['error', body.error]
      // UserWarning: [name, message, description]; UserError: [message, description]
      if (kind === 'UserWarning' && Array.isArray(detail)) throw new TrytonError(kind, String(detail[1] ?? detail[0]), String(detail[0]))
      if (kind === 'NotLogged' || kind === 'LoginException') {
        this.#session = undefined
        throw new TrytonError(String(kind), 'the Tryton session ended')
      }
      // Tryton's refusals (UserError: access and validation errors are of it) name themselves; any
      // other error comes as [message, traceback] (a locked database, a serialization failure, a
      // bug): an outage, tried again, never a reason to park a fact.
      if (kind !== 'UserError') throw new ErpUnavailable(`Tryton failed on ${method}: ${String(kind).split('\n')[0]!.slice(0, 300)}`)
      const message = Array.isArray(detail) ? detail.filter((x) => typeof x === 'string' && x).join(': ') : String(detail)
      throw new TrytonError(String(kind), message || String(kind))
    }
    return body.result
  }

  async login(): Promise<void> {
    const result = await this.#post('common.db.login', [this.#options.user, { password: this.#options.password }, 'en'], undefined)
    if (!Array.isArray(result) || result.length < 2) throw new TrytonError('auth', `Tryton refused the login of ${this.#options.user}: check the user and password`)
    this.uid = Number(result[0])
    this.#session = Buffer.from(`${this.#options.user}:${result[0]}:${result[1]}`).toString('base64')
  }

  /** Calls `method` with `params` (the context appended by the caller), logging in first or again. */
  async call<T = unknown>(method: string, params: unknown[]): Promise<T> {
    if (!this.#session) await this.login()
    try {
      return (await this.#post(method, params, this.#session)) as T
    } catch (error) {
      // A session expired or dropped by a restart: once more, with a new one.
      if (error instanceof TrytonError && (error.kind === 'NotLogged' || error.kind === 'auth' || error.kind === 'LoginException') && this.#session === undefined) {
        await this.login()
        return (await this.#post(method, params, this.#session)) as T
      }
      throw error
    }
  }

  searchRead<T>(model: string, domain: unknown[], fields: string[], context: Record<string, unknown> = {}): Promise<T[]> {
    return this.call<T[]>(`model.${model}.search_read`, [domain, 0, null, null, fields, context])
  }

  create(model: string, values: Array<Record<string, unknown>>, context: Record<string, unknown> = {}): Promise<number[]> {
    return this.call<number[]>(`model.${model}.create`, [values, context])
  }

  write(model: string, ids: number[], values: Record<string, unknown>, context: Record<string, unknown> = {}): Promise<void> {
    return this.call<void>(`model.${model}.write`, [ids, values, context])
  }

  /** A button or class method on records (`stock.shipment.internal.done`, …). */
  button(model: string, method: string, ids: number[], context: Record<string, unknown> = {}): Promise<unknown> {
    return this.call(`model.${model}.${method}`, [ids, context])
  }
}
