/**
 * Times a client gives (a movement's `at`, a delivery's `receivedAt`) are facts the client
 * reports, not the node's clock, and they sort movements and deliveries for ever: a movement
 * dated in the year 2255 would be the latest one on every replica until then. So a client time
 * must lie in a window around the clock of the node that accepts it:
 *
 * - at most 24 hours after it: a scanner's or tablet's clock may be off by hours (time zone set
 *   wrong, no network time), not by days;
 * - at most 400 days before it: a scanner batch recorded offline and uploaded late is still
 *   accepted, across a year-end stock take.
 *
 * The check needs the node's clock, so it is made where the clock is known (`planMovement` with
 * `PlanContext.now`, `deliverStop` with `ctx.at`), after the shape is checked by `ClientTime`.
 * Rules: docs/conflict-rules.md, "Input rules".
 */
import { z } from 'zod'
import { InputError } from './errors.ts'

const HOUR = 3_600_000
const DAY = 24 * HOUR

/** How far after the node's clock a client time may be. */
export const CLIENT_TIME_MAX_AHEAD_MS = 24 * HOUR
/** How far before the node's clock a client time may be. */
export const CLIENT_TIME_MAX_BEHIND_MS = 400 * DAY

/** The window in words, as every refusal says it. */
export const CLIENT_TIME_RULE = "no more than 400 days before and 24 hours after this site's clock"

/**
 * The shape of a client-given time: a whole, positive number of unix milliseconds. How far it
 * may be from now is checked by `checkClientTime`, whose refusal says the window.
 */
export const ClientTime = z
  .number({ error: 'must be a time in unix milliseconds' })
  .int({ error: 'must be a whole number of milliseconds' })
  .positive({ error: 'must be a time in unix milliseconds' })

/** The earliest and latest client time accepted when the node's clock reads `now`. */
export function clientTimeWindow(now: number): { earliest: number; latest: number } {
  return { earliest: now - CLIENT_TIME_MAX_BEHIND_MS, latest: now + CLIENT_TIME_MAX_AHEAD_MS }
}

/** ISO 8601 when `ms` is a date JavaScript can show (±8.64e15 ms), else the number itself. */
function describeTime(ms: number): string {
  const date = new Date(ms)
  return Number.isNaN(date.getTime()) ? `${ms} ms, not a date` : date.toISOString()
}

/**
 * Throws an `InputError` naming `field` when `at` is outside the window around `now` (the
 * node's clock, unix ms); the message says the window in words and as ISO dates.
 */
export function checkClientTime(field: string, at: number, now: number): void {
  const { earliest, latest } = clientTimeWindow(now)
  if (at >= earliest && at <= latest) return
  const side = at > latest ? 'after' : 'before'
  throw new InputError(
    field,
    `must be ${CLIENT_TIME_RULE} (${describeTime(now)}): from ${describeTime(earliest)} to ${describeTime(latest)}; ` +
      `${describeTime(at)} is ${side} that. Check the device's date and time`,
  )
}
