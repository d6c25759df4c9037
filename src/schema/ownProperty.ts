/**
 * Lookups in maps keyed by ids that come from outside (SKUs, reason codes, site ids, order and
 * manifest ids, line and stop ids). Documents read outside `change` are plain objects whose
 * prototype is `Object.prototype`, so `map['constructor']`, `map['toString']` or `key in map`
 * find an inherited function for an id that was never stored: an order `constructor` would look
 * like it already exists, a SKU `toString` like a product. These read only what the map itself
 * holds. (`__proto__` cannot reach a map: ids must start with a letter or digit, src/schema/ids.ts.)
 */

/** The value `map` itself holds under `key`, or undefined (never one inherited from Object.prototype). */
export function own<T>(map: Readonly<Record<string, T>> | null | undefined, key: string): T | undefined {
  return map != null && Object.hasOwn(map, key) ? map[key] : undefined
}

/** Whether `map` itself holds `key` (never true for an inherited `constructor`, `toString`, …). */
export function hasOwnKey(map: object | null | undefined, key: string): boolean {
  return map != null && Object.hasOwn(map, key)
}
