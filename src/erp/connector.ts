/**
 * What the ERP bridge (src/erp/bridge.ts) needs of a parent ERP: one interface, a connector per
 * ERP (src/erp/tryton.ts, src/erp/openlmis.ts).
 */
import type { Fact } from './facts.ts'

export type Outcome = { key: string; forwarded: true } | { key: string; parked: string }

export interface ErpProduct {
  sku: string
  name: string
  unit: string
  /** Tracked by lot and expiry. */
  lots: boolean
}

export interface ErpSite {
  id: string
  name: string
}

export interface ErpConnector {
  /** For logs and the API: `tryton http://…/db`. */
  readonly description: string
  /**
   * Forwards `facts`: each comes back forwarded (the ERP holds it: taken now, or found there
   * already) or parked with the reason it cannot be taken until something is fixed. Safe to call
   * again with the same facts: what the ERP holds already is found, not sent twice. Throws
   * ErpUnavailable when the ERP cannot be reached (nothing is decided; the bridge retries).
   */
  forward(facts: Fact[]): Promise<Outcome[]>
  /** Master data down: the products and sites as the ERP has them (undefined: this ERP does not say). */
  masterData?(): Promise<{ products: ErpProduct[]; sites: ErpSite[] }>
}
