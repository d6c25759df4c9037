import type { Migration } from './types.ts'

/**
 * The step every document with review decisions takes when decisions moved to a key per decision
 * (src/schema/reviewDecision.ts). It rewrites nothing: decisions stored under their item id are
 * still read as they are. The version alone matters: an app that knows only item-id keys would
 * not see the new decisions and would let an item be decided again, so it must keep such a
 * document read-only.
 */
export function decisionKeysMigration(version: number): Migration {
  return { version, name: 'review decisions stored under a key per decision', up() {} }
}
