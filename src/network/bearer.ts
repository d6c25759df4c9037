/**
 * The bearer token check of every HTTP API here (the site node's, the relay's data endpoints):
 * `Authorization: Bearer <token>`, compared as SHA-256 digests in constant time, so that neither
 * the token nor its length shows in how long a refusal takes.
 */
import { createHash, timingSafeEqual } from 'node:crypto'

export function bearerMatches(header: string | undefined, token: string): boolean {
  const given = header?.startsWith('Bearer ') ? header.slice(7) : ''
  const digest = (text: string) => createHash('sha256').update(text).digest()
  return timingSafeEqual(digest(given), digest(token))
}
