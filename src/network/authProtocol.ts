/**
 * The relay's authentication wire protocol, shared by the relay (src/relay/server.ts) and the site
 * node's client adapter (AuthenticatedWebSocketClientAdapter):
 *
 * 1. `GET /auth/challenge` → `200 { challenge, expiresInMs }`: a single-use random challenge.
 * 2. WebSocket upgrade on `/sync?peer=P&credential=C&challenge=N&proof=S`, where C is the device's
 *    deployment-signed credential and S = proveKey(N, P, devicePrivateKey). The relay answers
 *    `101` or, before any websocket exists, a `401`/`403`/`409`/`503` with a JSON {@link RefusalBody}.
 * 3. Over the socket: automerge-repo's websocket protocol (CBOR `join`/`peer`/… messages), with the
 *    `join`'s sender id bound to P.
 */
import { STATUS_CODES } from 'node:http'
import { formatPeerId } from './peerId.ts'
import type { CredentialClaims } from '../schema/credential.ts'

export const CHALLENGE_PATH = '/auth/challenge'

/**
 * The peer id a credential's holder must use with a relay: `site|carrier|relay/<site>/<device>`
 * (role `device` is a `site` peer). The site node uses it as its Repo's peer id.
 */
export function peerIdOfCredential(claims: Pick<CredentialClaims, 'role' | 'site' | 'device'>): string {
  return formatPeerId({ role: claims.role === 'relay' ? 'relay' : claims.role === 'carrier' ? 'carrier' : 'site', site: claims.site, device: claims.device })
}
export const SYNC_PATH = '/sync'

/** What `GET /auth/challenge` answers. */
export interface ChallengeResponse {
  challenge: string
  expiresInMs: number
}

/** Why a connection was refused: a stable code for programs. */
export type RefusalCode =
  | 'missing-credential'
  | 'malformed'
  | 'bad-signature'
  | 'wrong-deployment'
  | 'expired'
  | 'not-yet-valid'
  | 'revoked'
  | 'bad-proof'
  | 'unknown-challenge'
  | 'wrong-peer-id'
  | 'peer-already-connected'
  | 'busy'
  | 'not-served'
  // LAN peers (src/peer-sync): either side refuses the other
  | 'incompatible-protocol'
  | 'wrong-role'
  | 'server-unproven'
  // After the upgrade (a websocket close with CLOSE_POLICY / CLOSE_MALFORMED, reason `<code>: <words>`):
  | 'too-many-denials'
  | 'unknown-message'

/** The body of a refused upgrade: `error` is the code, `reason` words a device can show. */
export interface RefusalBody {
  error: RefusalCode
  reason: string
}

/** HTTP status of each refusal. */
export function refusalStatus(code: RefusalCode): number {
  switch (code) {
    case 'revoked':
    case 'not-served':
    case 'wrong-role':
      return 403
    case 'incompatible-protocol':
      return 426
    case 'peer-already-connected':
      return 409
    case 'busy':
      return 503
    default:
      return 401
  }
}

/** The raw HTTP answer refusing an upgrade (no websocket exists yet), with its {@link RefusalBody}. */
export function refusalResponse(code: RefusalCode, reason: string): string {
  const body = JSON.stringify({ error: code, reason } satisfies RefusalBody)
  const status = refusalStatus(code)
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
}

/** The parameters of the sync upgrade. */
export interface SyncParams {
  peer: string
  credential: string
  challenge: string
  proof: string
}

/** `ws://host:port[/prefix]` → the http(s) URL of a relay path. */
export function relayHttpUrl(relayUrl: string, path: string): URL {
  const url = new URL(relayUrl)
  if (url.protocol === 'ws:') url.protocol = 'http:'
  else if (url.protocol === 'wss:') url.protocol = 'https:'
  url.pathname = url.pathname.replace(/\/+$/, '') + path
  url.search = ''
  return url
}

/** The websocket URL of the sync upgrade; `extra`: more parameters (a LAN peer's nonce and protocol version). */
export function syncUrl(relayUrl: string, params: SyncParams, extra: Record<string, string> = {}): string {
  const url = new URL(relayUrl)
  url.pathname = url.pathname.replace(/\/+$/, '') + SYNC_PATH
  url.search = new URLSearchParams({ peer: params.peer, credential: params.credential, challenge: params.challenge, proof: params.proof, ...extra }).toString()
  return url.toString()
}

/** Reads the sync parameters of an upgrade request's URL; missing ones are empty strings. */
export function readSyncParams(search: URLSearchParams): SyncParams {
  const one = (name: string) => search.get(name) ?? ''
  return { peer: one('peer'), credential: one('credential'), challenge: one('challenge'), proof: one('proof') }
}

/** A refusal body from outside (a relay's answer), or undefined when it is not one. */
export function parseRefusal(text: string): RefusalBody | undefined {
  try {
    const value = JSON.parse(text) as unknown
    if (value && typeof value === 'object' && typeof (value as RefusalBody).error === 'string' && typeof (value as RefusalBody).reason === 'string') {
      return { error: (value as RefusalBody).error, reason: (value as RefusalBody).reason.slice(0, 1000) }
    }
  } catch {
    // not JSON
  }
  return undefined
}

/** The reason of a relay's websocket close: `<code>: <words>`, at most 123 bytes (the protocol's limit). */
export function closeReason(code: RefusalCode, words: string): string {
  let text = `${code}: ${words}`
  while (Buffer.byteLength(text) > 123) text = text.slice(0, -1)
  return text
}

/** The refusal in a relay's websocket close reason, if it is one. */
export function parseCloseReason(reason: string): RefusalBody | undefined {
  const m = /^([a-z-]+): (.*)$/s.exec(reason)
  return m ? { error: m[1] as RefusalCode, reason: m[2]! } : undefined
}

/** WebSocket close codes the relay uses after the upgrade. */
export const CLOSE_POLICY = 1008
export const CLOSE_TOO_BIG = 1009
export const CLOSE_MALFORMED = 1007
