/**
 * Branded identifiers. A value becomes a `Sku` (or any other id) only by passing its guard, so a
 * string from disk, the network, HTTP, IPC or the ERP cannot reach a document operation unchecked.
 */
import { z } from 'zod'

declare const brand: unique symbol
/** A string that has been checked to be a valid id of kind `B`. */
export type Brand<T, B extends string> = T & { readonly [brand]: B }

/**
 * Letters, digits and `._:-`, 1–128 chars, starting with a letter or digit: safe in keys, URLs, file
 * names and ERP references, and never `__proto__` (a key that plain objects and Automerge treat
 * specially). Other names of Object.prototype (`constructor`, `toString`) are valid ids: look them
 * up with `own` / `hasOwnKey` (src/schema/ownProperty.ts).
 */
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/
const ID_HINT = '1–128 characters: letters, digits and . _ : - (starting with a letter or digit)'

function idSchema<B extends string>(what: string) {
  return z
    .string({ error: `${what} must be a string` })
    .regex(ID_PATTERN, { error: `${what} must be ${ID_HINT}` }) as unknown as z.ZodType<Brand<string, B>>
}

export type SiteId = Brand<string, 'SiteId'>
export type Sku = Brand<string, 'Sku'>
export type MovementId = Brand<string, 'MovementId'>
export type DeviceId = Brand<string, 'DeviceId'>
export type UserId = Brand<string, 'UserId'>
export type OrderId = Brand<string, 'OrderId'>
export type ManifestId = Brand<string, 'ManifestId'>
export type StopId = Brand<string, 'StopId'>
export type LineId = Brand<string, 'LineId'>
export type ReasonCode = Brand<string, 'ReasonCode'>
export type LotId = Brand<string, 'LotId'>

export const SiteId = idSchema<'SiteId'>('site id')
export const Sku = idSchema<'Sku'>('SKU')
export const MovementId = idSchema<'MovementId'>('movement id')
export const DeviceId = idSchema<'DeviceId'>('device id')
export const UserId = idSchema<'UserId'>('user id')
export const OrderId = idSchema<'OrderId'>('order id')
export const ManifestId = idSchema<'ManifestId'>('manifest id')
export const StopId = idSchema<'StopId'>('stop id')
export const LineId = idSchema<'LineId'>('line id')
export const ReasonCode = idSchema<'ReasonCode'>('reason code')
/** A batch (lot) of a product, as printed on its packs: unique per SKU, not across SKUs. */
export const LotId = idSchema<'LotId'>('lot')

export type ExpiryDate = Brand<string, 'ExpiryDate'>
/** A calendar date, YYYY-MM-DD (an expiry: the lot may be used up to and including that day). */
export const ExpiryDate = z
  .string({ error: 'expiry must be a date, YYYY-MM-DD' })
  .regex(/^\d{4}-\d{2}-\d{2}$/, { error: 'expiry must be a date, YYYY-MM-DD' })
  .refine((s) => {
    const d = new Date(`${s}T00:00:00Z`)
    return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s
  }, { error: 'expiry must be a real calendar date, YYYY-MM-DD' }) as unknown as z.ZodType<ExpiryDate>

/** True when `value` is a well-formed id of any kind (the guard behind every branded id). */
export function isId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value)
}

/**
 * Brands a value that our own code built from ids already checked (for example a movement id
 * derived from a manifest line). Throws on a malformed value: that is a bug, not bad input.
 */
export function asId<T extends string>(value: string): T {
  if (!ID_PATTERN.test(value)) throw new Error(`internal: not a valid id: ${JSON.stringify(value)}`)
  return value as T
}
