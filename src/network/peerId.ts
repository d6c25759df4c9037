/**
 * Peer ids of stockmesh nodes: `<role>/<site>/<device>`. automerge-repo takes any string a peer
 * claims as its id; ours can be parsed back and bound to an authenticated device (the relay checks
 * that the id a connection claims is the one its credential names). `/` cannot occur in a site or
 * device id (src/schema/ids.ts), so the parts are never ambiguous.
 */
import type { PeerId } from '@automerge/automerge-repo'
import { DeviceId, isId, SiteId } from '../schema/ids.ts'
import type { Brand } from '../schema/ids.ts'

/** What a node is to its peers. */
export const PEER_ROLES = ['site', 'carrier', 'relay', 'ui'] as const
export type PeerRole = (typeof PEER_ROLES)[number]

/** A peer id that has been checked to be `<role>/<site>/<device>`. */
export type StockmeshPeerId = Brand<PeerId, 'StockmeshPeerId'>

export interface PeerIdParts {
  role: PeerRole
  site: SiteId
  device: DeviceId
}

const SEPARATOR = '/'

/** The peer id of a node. Throws on parts that are not valid ids: a bug, not bad input. */
export function formatPeerId(parts: { role: PeerRole; site: string; device: string }): StockmeshPeerId {
  if (!PEER_ROLES.includes(parts.role)) throw new Error(`internal: unknown peer role ${JSON.stringify(parts.role)}`)
  SiteId.parse(parts.site)
  DeviceId.parse(parts.device)
  return [parts.role, parts.site, parts.device].join(SEPARATOR) as StockmeshPeerId
}

/** The parts of a peer id from outside (a connection, a message), or undefined when it is not one of ours. */
export function parsePeerId(value: unknown): PeerIdParts | undefined {
  if (typeof value !== 'string') return undefined
  const parts = value.split(SEPARATOR)
  if (parts.length !== 3) return undefined
  const [role, site, device] = parts as [string, string, string]
  if (!(PEER_ROLES as readonly string[]).includes(role) || !isId(site) || !isId(device)) return undefined
  return { role: role as PeerRole, site: site as SiteId, device: device as DeviceId }
}

/** True when `value` is a well-formed stockmesh peer id. */
export function isPeerId(value: unknown): value is StockmeshPeerId {
  return parsePeerId(value) !== undefined
}
