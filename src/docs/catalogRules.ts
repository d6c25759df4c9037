/**
 * What orders, manifests and movements name, checked against a site's catalog: SKUs must be
 * products of the catalog and active, sites must be sites of the catalog (unless it lists none,
 * see `isKnownSite`), reason codes must be reasons of the catalog or built in. Movements are
 * checked inside `planMovement` (LedgerBook's `knownSku` and `knownReasons` options); orders and
 * manifests by the site node, with the functions below, before anything is written.
 *
 * Pure and read-only: each takes the catalog document and input already validated by its zod
 * schema (`CreateOrderInput`, `SetLineInput`, `PlanManifestInput`, `LedgerDecisionInput`), and
 * throws a `RuleError` (422 over HTTP) whose `field` is the path of the first bad value and whose
 * message lists every bad value (the first few). Rules: docs/conflict-rules.md, "Input rules".
 */
import { BUILT_IN_REASONS, type CatalogDoc } from '../schema/catalog.ts'
import { RuleError } from '../schema/errors.ts'
import { own } from '../schema/ownProperty.ts'
import { isKnownSite, reasonCodes, siteIds } from './catalog.ts'

/** How many bad values, and how many known ones, a refusal lists before "and N more". */
const LISTED = 5

interface Problem {
  code: 'unknown-sku' | 'unknown-site' | 'unknown-reason' | 'lot-required' | 'expiry-required' | 'not-lot-tracked'
  field: string
  text: string
}

/** `a, b, c, d, e and 3 more` */
function few(values: string[]): string {
  const shown = values.slice(0, LISTED).join(', ')
  return values.length > LISTED ? `${shown} and ${values.length - LISTED} more` : shown
}

function skuProblem(catalog: CatalogDoc, sku: string, field: string): Problem | undefined {
  const product = own(catalog.products, sku)
  if (product?.active === true) return undefined
  const text = product ? `SKU ${sku} is inactive in this site's catalog` : `SKU ${sku} is not in this site's catalog`
  return { code: 'unknown-sku', field, text }
}

function siteProblem(catalog: CatalogDoc, site: string, field: string): Problem | undefined {
  return isKnownSite(catalog, site) ? undefined : { code: 'unknown-site', field, text: `site ${site} is not in this site's catalog` }
}

function reasonProblem(known: ReadonlySet<string>, code: string, field: string): Problem | undefined {
  return known.has(code) || BUILT_IN_REASONS.has(code) ? undefined : { code: 'unknown-reason', field, text: `${code} is not a reason in this site's catalog` }
}

/** What a refusal adds after the problems: the known sites or reasons, when one of them was bad. */
function knownLists(problems: Problem[], sites: () => string[], reasons: () => string[]): string {
  const out: string[] = []
  if (problems.some((p) => p.code === 'unknown-site')) out.push(`The catalog lists the sites ${few(sites())}.`)
  if (problems.some((p) => p.code === 'unknown-reason')) {
    const listed = reasons()
    const known = [...new Set([...listed, ...BUILT_IN_REASONS])].sort()
    out.push(listed.length > 0 ? `Known reasons: ${few(known)}.` : `The catalog lists no reasons yet (built in: ${few([...BUILT_IN_REASONS].sort())}): add them to the catalog first.`)
  }
  return out.length > 0 ? ` ${out.join(' ')}` : ''
}

/** A shipped line of a product tracked by lot names its lot and expiry; a line of any other product names neither. */
function lotProblem(catalog: CatalogDoc, line: { sku: string; lot?: string; expiry?: string }, field: string): Problem | undefined {
  const tracked = own(catalog.products, line.sku)?.lots === true
  if (tracked && line.lot === undefined) return { code: 'lot-required', field: `${field}.lot`, text: `${line.sku} is tracked by lot: name the lot shipped` }
  if (tracked && line.expiry === undefined) return { code: 'expiry-required', field: `${field}.expiry`, text: `${line.sku} is tracked by lot: give the expiry of lot ${line.lot}` }
  if (!tracked && (line.lot !== undefined || line.expiry !== undefined)) return { code: 'not-lot-tracked', field: `${field}.${line.lot !== undefined ? 'lot' : 'expiry'}`, text: `${line.sku} is not tracked by lot in the catalog` }
  return undefined
}

/** Throws for the first problem, listing them all (the first few). */
function refuse(problems: Array<Problem | undefined>, sites: () => string[], reasons: () => string[] = () => []): void {
  const found = problems.filter((p): p is Problem => p !== undefined)
  const first = found[0]
  if (!first) return
  const listed = found.slice(0, LISTED).map((p) => `${p.field}: ${p.text}`)
  if (found.length > LISTED) listed.push(`and ${found.length - LISTED} more`)
  throw new RuleError(first.code, `${listed.join('; ')}.${knownLists(found, sites, reasons)}`, first.field)
}

/**
 * Checks a new order (`CreateOrderInput`, or just `{lines}`) against the catalog: `from` and `to`
 * must be sites of the catalog (any well-formed id if it lists none), every line's SKU a product
 * of the catalog and active. Throws `RuleError` 'unknown-site' / 'unknown-sku' naming the first bad
 * field (`from`, `to`, `lines.2.sku`), listing every bad value in the message.
 */
export function checkOrderAgainstCatalog(catalog: CatalogDoc, order: { from?: string; to?: string; lines?: ReadonlyArray<{ sku: string; lot?: string }> }): void {
  refuse(
    [
      order.from === undefined ? undefined : siteProblem(catalog, order.from, 'from'),
      order.to === undefined ? undefined : siteProblem(catalog, order.to, 'to'),
      ...(order.lines ?? []).flatMap((line, i) => [skuProblem(catalog, line.sku, `lines.${i}.sku`), orderLotProblem(catalog, line, `lines.${i}`)]),
    ],
    () => siteIds(catalog),
  )
}

/**
 * Checks an order line being set (`SetLineInput`): its SKU must be a product of the catalog and
 * active. Throws `RuleError` 'unknown-sku' with field `sku`.
 */
export function checkOrderLineAgainstCatalog(catalog: CatalogDoc, line: { sku: string; lot?: string }): void {
  refuse([skuProblem(catalog, line.sku, 'sku'), orderLotProblem(catalog, line, '')], () => siteIds(catalog))
}

/** An order line may ask for a lot only of a product tracked by lot (it need not: the supplier then serves first-expiry-first-out). */
function orderLotProblem(catalog: CatalogDoc, line: { sku: string; lot?: string }, field: string): Problem | undefined {
  if (line.lot === undefined || own(catalog.products, line.sku)?.lots === true) return undefined
  return { code: 'not-lot-tracked', field: field ? `${field}.lot` : 'lot', text: `${line.sku} is not tracked by lot in the catalog` }
}

/**
 * Checks a manifest being planned (`PlanManifestInput`): the hub `from` and every stop's site must
 * be sites of the catalog (any well-formed id if it lists none), every line's SKU a product of the
 * catalog and active. Throws `RuleError` 'unknown-site' / 'unknown-sku' naming the first bad field
 * (`from`, `stops.0.site`, `stops.1.lines.2.sku`), listing every bad value in the message.
 */
export function checkManifestAgainstCatalog(
  catalog: CatalogDoc,
  plan: { from: string; stops: ReadonlyArray<{ site: string; lines: ReadonlyArray<{ sku: string; lot?: string; expiry?: string }> }> },
): void {
  refuse(
    [
      siteProblem(catalog, plan.from, 'from'),
      ...plan.stops.flatMap((stop, s) => [
        siteProblem(catalog, stop.site, `stops.${s}.site`),
        ...stop.lines.flatMap((line, l) => [skuProblem(catalog, line.sku, `stops.${s}.lines.${l}.sku`), lotProblem(catalog, line, `stops.${s}.lines.${l}`)]),
      ]),
    ],
    () => siteIds(catalog),
  )
}

/**
 * Checks the compensating adjustments of a ledger review decision (`LedgerDecisionInput`) before
 * anything is posted, so a refusal names `adjustments.1.reason` rather than the movement the
 * LedgerBook would post (it checks them too, as it checks every movement). Throws `RuleError`
 * 'unknown-sku' / 'unknown-reason'.
 */
export function checkLedgerDecisionAgainstCatalog(catalog: CatalogDoc, decision: { adjustments: ReadonlyArray<{ sku: string; reason: string }> }): void {
  const known = new Set(reasonCodes(catalog))
  refuse(
    decision.adjustments.flatMap((a, i) => [skuProblem(catalog, a.sku, `adjustments.${i}.sku`), reasonProblem(known, a.reason, `adjustments.${i}.reason`)]),
    () => siteIds(catalog),
    () => reasonCodes(catalog),
  )
}

/**
 * Checks a movement's reason code against the codes the catalog lists (`known`) and the built-in
 * ones (`BUILT_IN_REASONS`). Throws `RuleError` 'unknown-reason' naming `field` and listing the
 * known reasons (the first few). Used by `planMovement`, which is handed the codes, not the catalog.
 */
export function checkReason(code: string, known: ReadonlySet<string>, field = 'reason'): void {
  refuse([reasonProblem(known, code, field)], () => [], () => [...known])
}
