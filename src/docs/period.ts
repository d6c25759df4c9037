/** Journal periods are ISO weeks ('2026-W47'): they sort as strings and hold a few thousand movements. */

/** The ISO-8601 week of a unix-ms time, in UTC. */
export function periodOf(ms: number): string {
  const date = new Date(ms)
  const day = (date.getUTCDay() + 6) % 7 // Monday = 0
  const thursday = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() - day + 3)
  const year = new Date(thursday).getUTCFullYear()
  const firstThursday = Date.UTC(year, 0, 4)
  const firstDay = (new Date(firstThursday).getUTCDay() + 6) % 7
  const week = 1 + Math.round((thursday - (firstThursday - firstDay * 86_400_000 + 3 * 86_400_000)) / (7 * 86_400_000))
  return `${year}-W${String(week).padStart(2, '0')}`
}
