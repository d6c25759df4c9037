/**
 * Errors of the site node's services that every caller (HTTP, the app, the relay, the ERP bridge)
 * turns into its own answer: the HTTP API maps them to 404 and 409.
 */

/** The document or item asked for is not held by this node. */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError'
}

/**
 * The request conflicts with what the node holds: a document id that exists already, an item
 * that was already decided. Nothing was changed.
 */
export class ConflictError extends Error {
  override readonly name = 'ConflictError'
  constructor(
    message: string,
    /** The field of the request that conflicts, '' for the whole request. */
    readonly field = '',
  ) {
    super(message)
  }
}
