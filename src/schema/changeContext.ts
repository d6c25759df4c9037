/**
 * Who makes a change, on which device and when. The site node fills it from the authenticated
 * session and its own clock and hands it to every document operation, so that operations stay
 * pure: they never read a clock, a session or a random source themselves.
 */
import { z } from 'zod'
import { InputError } from './errors.ts'
import { DeviceId, UserId } from './ids.ts'

/** A time in unix milliseconds (after 1970, before the year 10000). */
export const UnixMs = z
  .number({ error: 'must be a time in unix milliseconds' })
  .int({ error: 'must be a whole number of milliseconds' })
  .positive({ error: 'must be a time in unix milliseconds' })
  .max(253_402_300_799_999, { error: 'must be a time in unix milliseconds' })

export const ChangeContext = z.strictObject({ user: UserId, device: DeviceId, at: UnixMs })
export type ChangeContext = z.infer<typeof ChangeContext>

/** Checks a context; a bad one throws an `InputError` naming `ctx.<field>`. */
export function parseContext(ctx: unknown): ChangeContext {
  const result = ChangeContext.safeParse(ctx)
  if (result.success) return result.data
  const issue = result.error.issues[0]
  throw new InputError(['ctx', ...(issue?.path ?? []).map(String)].join('.'), issue?.message ?? 'invalid context')
}
