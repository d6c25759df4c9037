/**
 * How two site nodes of one deployment find and prove each other on a LAN, with no server:
 *
 * - Each enrolled node advertises a DNS-SD service `_stockmesh._tcp` whose TXT says the deployment
 *   (`dep`), site, device, role and LAN protocol version (`pv`), and browses for the others.
 * - Of two nodes that see each other, the one with the smaller peer id dials (one connection per
 *   pair); the other only accepts.
 * - The dialler authenticates as with a relay (src/network/authProtocol.ts: a challenge from the
 *   server, its deployment-signed credential, a proof over the challenge), and adds a fresh
 *   `nonce` and its protocol version `proto`. The server checks it (signed by this deployment,
 *   valid now, not on the revocation list this node holds, a device or carrier — never a relay),
 *   then answers the upgrade with its own credential and a proof over the nonce in the headers
 *   below, which the dialler checks the same way before a single sync message flows. A stranger,
 *   another deployment, an expired or revoked credential gets nothing, in either direction.
 * - Versions: a TXT `pv` or a `proto` other than {@link LAN_PROTOCOL} is not dialled / refused
 *   (`incompatible-protocol`), said in the log and in `GET /api/sync`. TXT `sv` lists the document
 *   schemas the node writes: a peer with other ones is linked (each side reads a document of a
 *   newer schema and leaves it unchanged) and reported the same way.
 * - Two carriers: the one whose peer id sorts first dials the other (src/relay/server.ts
 *   `linkCarrier`); devices always dial carriers, which never dial devices.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { randomBytes } from 'node:crypto'
import { peerIdOfCredential, type RefusalBody } from '../network/authProtocol.ts'
import { formatPeerId } from '../network/peerId.ts'
import { isId } from '../schema/ids.ts'
import { CATALOG_SCHEMA } from '../schema/catalog.ts'
import { LEDGER_SCHEMA, JOURNAL_SCHEMA } from '../schema/ledger.ts'
import { MANIFEST_SCHEMA } from '../schema/manifest.ts'
import { ORDER_SCHEMA } from '../schema/order.ts'
import { SITE_DIRECTORY_SCHEMA } from '../schema/siteDirectory.ts'
import { SITE_INDEX_SCHEMA } from '../schema/siteIndex.ts'
import { signStatement, verifyCredential, verifyStatement } from '../network/credential.ts'
import type { CredentialClaims, DeploymentPublic } from '../schema/credential.ts'

/** DNS-SD service type: `_stockmesh._tcp`. */
export const SERVICE_TYPE = 'stockmesh'
/** The LAN protocol this code speaks (TXT `pv`, upgrade parameter `proto`). */
/** 2: carriers state each document's owner before its first sync message (site nodes list by it). */
export const LAN_PROTOCOL = 2

export const HEADER = {
  credential: 'x-stockmesh-credential',
  proof: 'x-stockmesh-proof',
  peer: 'x-stockmesh-peer',
} as const

/**
 * The document schemas this code writes (TXT `sv`: kind letter and version, `c1.i1.d1.l3.j4.o2.m2`).
 * Automerge merges documents of any schema; a node reads one of a newer schema than it knows
 * read-only (src/schema/migrations.ts). A peer with other versions is linked and reported.
 */
export const SCHEMAS: Readonly<Record<string, number>> = { c: CATALOG_SCHEMA, i: SITE_INDEX_SCHEMA, d: SITE_DIRECTORY_SCHEMA, l: LEDGER_SCHEMA, j: JOURNAL_SCHEMA, o: ORDER_SCHEMA, m: MANIFEST_SCHEMA }
const SCHEMA_NAMES: Readonly<Record<string, string>> = { c: 'catalog', i: 'site index', d: 'site directory', l: 'ledger', j: 'journal', o: 'order', m: 'manifest' }
export const SCHEMA_TXT = Object.entries(SCHEMAS)
  .map(([k, v]) => `${k}${v}`)
  .join('.')

/**
 * How a peer's schemas compare with this node's: `same`, `newer` (it writes some document of a
 * schema this node only reads), `older` (this node writes some its peer only reads), or `unknown`
 * (it did not say). `detail` says which, for the log and GET /api/sync.
 */
export function compareSchemas(theirs: string | undefined): { state: 'same' | 'newer' | 'older' | 'unknown'; detail?: string } {
  if (!theirs || !/^([a-z][0-9]{1,4})(\.[a-z][0-9]{1,4}){0,31}$/.test(theirs)) return { state: 'unknown' }
  const peer = new Map(theirs.split('.').map((part) => [part[0]!, Number(part.slice(1))]))
  const newer: string[] = []
  const older: string[] = []
  for (const [kind, ours] of Object.entries(SCHEMAS)) {
    const v = peer.get(kind)
    if (v === undefined) continue
    if (v > ours) newer.push(`${SCHEMA_NAMES[kind]} ${v} (this node: ${ours})`)
    else if (v < ours) older.push(`${SCHEMA_NAMES[kind]} ${v} (this node: ${ours})`)
  }
  for (const kind of peer.keys()) if (!(kind in SCHEMAS)) newer.push(`a document kind '${kind}' this node does not know`)
  if (newer.length) return { state: 'newer', detail: `the peer writes ${newer.join(', ')}: this node reads those documents and does not change them; upgrade it` }
  if (older.length) return { state: 'older', detail: `the peer knows ${older.join(', ')}: it reads what this node writes of those and does not change them; upgrade it` }
  return { state: 'same' }
}

/** What a node advertises: enough to decide whether to dial, nothing secret. */
export interface LanTxt {
  dep: string
  site: string
  dev: string
  role: string
  pv: string
  /** Document schemas ({@link SCHEMA_TXT}); absent from nodes before it was added. */
  sv?: string
}

export function txtOf(claims: Pick<CredentialClaims, 'deployment' | 'site' | 'device' | 'role'>): LanTxt {
  return { dep: claims.deployment, site: claims.site, dev: claims.device, role: claims.role, pv: String(LAN_PROTOCOL), sv: SCHEMA_TXT }
}

/** A TXT record as another host sent it, or undefined when it is not a stockmesh one. */
export function parseTxt(txt: unknown): LanTxt | undefined {
  if (!txt || typeof txt !== 'object') return undefined
  const t = txt as Record<string, unknown>
  const field = (k: string) => (typeof t[k] === 'string' ? (t[k] as string) : Buffer.isBuffer(t[k]) ? (t[k] as Buffer).toString('utf8') : undefined)
  const [dep, site, dev, role, pv, sv] = ['dep', 'site', 'dev', 'role', 'pv', 'sv'].map(field)
  if (!dep || !site || !dev || !role || !pv) return undefined
  return { dep, site, dev, role, pv, ...(sv ? { sv: sv.slice(0, 200) } : {}) }
}

/** A stockmesh service of this deployment as another host advertised it (checked), or undefined. */
export interface LanService {
  peerId: string
  /** ws://address:port */
  url: string
  txt: LanTxt
}

export function lanServiceOf(service: { txt?: unknown; port?: unknown; host?: unknown; referer?: { address?: unknown }; addresses?: unknown }, deployment: string): LanService | undefined {
  const txt = parseTxt(service.txt)
  const port = service.port
  if (!txt || txt.dep !== deployment || !isId(txt.site) || !isId(txt.dev) || typeof port !== 'number' || !Number.isInteger(port) || port <= 0 || port > 65535) return undefined
  const addresses = Array.isArray(service.addresses) ? service.addresses.filter((a): a is string => typeof a === 'string') : []
  const address = [service.referer?.address, addresses.find((a) => a.includes('.')), service.host].find((a): a is string => typeof a === 'string' && a.length > 0 && a.length < 256)
  if (!address) return undefined
  const peerId = formatPeerId({ role: txt.role === 'carrier' ? 'carrier' : txt.role === 'relay' ? 'relay' : 'site', site: txt.site, device: txt.dev })
  return { peerId, url: `ws://${address.includes(':') ? `[${address}]` : address}:${port}`, txt }
}

/** The roles that meet on a LAN: devices of sites, and carriers. Relays are reached as relays. */
export const LAN_ROLES: ReadonlySet<string> = new Set(['device', 'carrier'])

/** The parameters a dialler adds to its upgrade: a fresh nonce for the server to sign, and its protocol. */
export function dialParams(): Record<string, string> {
  return { nonce: randomBytes(32).toString('base64url'), proto: String(LAN_PROTOCOL) }
}

/**
 * What each side signs. Tags of their own (never a relay's `stockmesh-auth`): a LAN signature is
 * valid nowhere else. The dialler signs the server's challenge for the peer it means to reach (its
 * audience), the server signs the dialler's nonce for the dialler it answers: a proof taken by a
 * stranger posing as a node is good for that stranger only, and one node's answer cannot be handed
 * to another dialler.
 */
export const LAN_CLIENT_TAG = 'stockmesh-lan-client:v1'
export const LAN_SERVER_TAG = 'stockmesh-lan-server:v1'

/** The dialler's proof: the server's challenge, who dials, and whom it means to reach. */
export function clientProof(challenge: string, client: string, server: string, privateKey: string): string {
  return signStatement(LAN_CLIENT_TAG, [challenge, client, server], privateKey)
}

export function checkClientProof(proof: unknown, challenge: string, client: string, server: string, publicKey: string): boolean {
  return verifyStatement(proof, LAN_CLIENT_TAG, [challenge, client, server], publicKey)
}

/** The headers with which a server proves itself to `client`, whose upgrade carried `nonce`. */
export function proofHeaders(credential: string, privateKey: string, peerId: string, nonce: string, client: string): string[] {
  return [`${HEADER.peer}: ${peerId}`, `${HEADER.credential}: ${credential}`, `${HEADER.proof}: ${signStatement(LAN_SERVER_TAG, [nonce, peerId, client], privateKey)}`]
}

/**
 * Makes `wss` answer each upgrade registered with the returned function with this node's proof
 * (the nonce its dialler sent, signed for that dialler): the site node's LAN port and a carrier's.
 */
export function answerWithProof(wss: { on(event: 'headers', listener: (headers: string[], req: IncomingMessage) => void): unknown }, prove: { credential: string; privateKey: string; peerId: string }): (req: IncomingMessage, nonce: string, client: string) => void {
  const asked = new WeakMap<IncomingMessage, { nonce: string; client: string }>()
  wss.on('headers', (headers, req) => {
    const a = asked.get(req)
    if (a !== undefined) headers.push(...proofHeaders(prove.credential, prove.privateKey, prove.peerId, a.nonce, a.client))
  })
  return (req, nonce, client) => void asked.set(req, { nonce, client })
}

export interface TrustOptions {
  deployment: DeploymentPublic
  isRevoked: (device: string) => boolean
  now?: () => number
}

const one = (value: string | string[] | undefined): string => (Array.isArray(value) ? '' : (value ?? ''))

/** Checks a LAN server's answer to our upgrade (its proof over our nonce). */
export function verifyServer(headers: IncomingHttpHeaders, params: Record<string, string>, trust: TrustOptions, client: string): { ok: true; peerId: string; claims: CredentialClaims } | { ok: false; refusal: RefusalBody } {
  const refuse = (error: RefusalBody['error'], reason: string) => ({ ok: false as const, refusal: { error, reason } })
  const credential = one(headers[HEADER.credential])
  if (!credential) return refuse('server-unproven', 'the peer answered without a credential: not a stockmesh node of this deployment')
  const verified = verifyCredential(credential, trust.deployment, (trust.now ?? Date.now)())
  if (!verified.ok) return refuse(verified.reason, `the peer's credential: ${verified.message}`)
  const claims = verified.claims
  if (trust.isRevoked(claims.device)) return refuse('revoked', `the peer is device ${claims.device}, revoked by the deployment`)
  if (!LAN_ROLES.has(claims.role)) return refuse('wrong-role', `the peer is a ${claims.role}: only devices and carriers meet on a LAN`)
  const peerId = peerIdOfCredential(claims)
  if (one(headers[HEADER.peer]) !== peerId) return refuse('wrong-peer-id', `the peer's credential is for ${peerId}`)
  if (!verifyStatement(one(headers[HEADER.proof]), LAN_SERVER_TAG, [params.nonce ?? '', peerId, client], claims.publicKey)) return refuse('bad-proof', `the peer did not prove it holds the key of device ${claims.device}`)
  return { ok: true, peerId, claims }
}
