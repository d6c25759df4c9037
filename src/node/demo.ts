/** The demo site `npm start` opens: a small catalog of health commodities and one store. */
import { upsertProduct, upsertReason, upsertSite } from '../docs/catalog.ts'
import type { CatalogDoc } from '../schema/catalog.ts'

export const DEMO_SITE = 'demo-store'

export function demoCatalog(doc: CatalogDoc): void {
  for (const site of [
    { id: DEMO_SITE, name: 'Demo district store', type: 'store' },
    { id: 'demo-hub', name: 'Demo regional hub', type: 'hub' },
    { id: 'demo-clinic', name: 'Demo clinic', type: 'clinic' },
  ]) upsertSite(doc, site)
  for (const product of [
    { sku: 'AMOX-500', name: 'Amoxicillin 500 mg capsules', unit: 'pack of 100' },
    { sku: 'ORS-1L', name: 'Oral rehydration salts, 1 L sachet', unit: 'sachet' },
    { sku: 'ZINC-20', name: 'Zinc sulfate 20 mg dispersible tablets', unit: 'blister of 10' },
    { sku: 'RDT-MAL', name: 'Malaria rapid diagnostic test', unit: 'test' },
    { sku: 'GLOVE-M', name: 'Examination gloves, medium', unit: 'box of 100' },
    // Tracked by lot and expiry: receipts name the batch and its expiry, issues are served first-expiry-first-out.
    { sku: 'AL-6X1', name: 'Artemether/lumefantrine 20/120 mg, 6x1 blister', unit: 'blister', lots: true },
  ]) upsertProduct(doc, product)
  for (const reason of [
    { code: 'damaged', label: 'Damaged' },
    { code: 'expired', label: 'Expired' },
    { code: 'cycle-count', label: 'Cycle count' },
    { code: 'found', label: 'Found in store' },
    { code: 'correction', label: 'Correction after review' },
  ]) upsertReason(doc, reason)
}
