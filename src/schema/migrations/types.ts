/** A numbered, pure migration: runs inside `handle.change`, touches only the document given. */
export interface Migration {
  /** The schema version this migration produces; it runs on documents at `version - 1`. */
  version: number
  /** What it changes, for the log. */
  name: string
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  up(doc: any): void
}
