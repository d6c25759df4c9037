/**
 * What a site node tells its listeners (the app, the ERP bridge, carrier mode) instead of being
 * polled: a typed event map for Node's EventEmitter, as automerge-repo types its own events.
 */
import type { Posting } from '../docs/ledger.ts'
import type { PeerIdParts } from '../network/peerId.ts'

/** Document kinds a node lists and loads. */
export type NodeDocumentKind = 'order' | 'manifest' | 'journal'

export interface SiteNodeEvents {
  /**
   * Movements that reached this node's ledger: recorded here (`local`, emitted once durable) or
   * arrived from another device (`sync`).
   */
  movements: [{ postings: Posting[]; source: 'local' | 'sync' }]
  /** A document created here (`added`), loaded from disk or arriving by sync (`loaded`), or another site's listed in this site's directory (`shared`). */
  document: [{ kind: NodeDocumentKind; id: string; url: string; how: 'added' | 'loaded' | 'shared' }]
  /**
   * An order, manifest, the site's ledger or the deployment's catalog changed, here or by sync (the
   * page reads it again). The ledger's id is `ledger`, the catalog's `catalog`; journals are
   * announced as `movements` instead.
   */
  changed: [{ kind: 'order' | 'manifest' | 'ledger' | 'catalog'; id: string }]
  /** A review decision recorded here. */
  decision: [{ doc: 'ledger' | 'order' | 'manifest'; id: string; item: string; by: string }]
  /** A peer connected or went away; `peer` is undefined for a peer id that is not ours. */
  peer: [{ peerId: string; peer: PeerIdParts | undefined; state: 'connected' | 'disconnected' }]
}
