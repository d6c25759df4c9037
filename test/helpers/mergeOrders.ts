/**
 * Random full-delivery orders for convergence properties: each replica merges every other
 * replica's final state in its own shuffled order, with some merges repeated.
 */
import * as A from '@automerge/automerge'
import fc from 'fast-check'

export type MergePlan = { final: Array<[number[], number[]]>; targets: number[] }

/** For `n` replicas: per replica a shuffled order of all replicas plus a few repeats, and the order replicas take their turn. */
export function mergePlanArb(n: number): fc.Arbitrary<MergePlan> {
  const all = [...Array(n).keys()]
  return fc.record({
    final: fc.array(fc.tuple(fc.shuffledSubarray(all, { minLength: n }), fc.array(fc.nat(n - 1), { maxLength: 3 })), { minLength: n, maxLength: n }),
    targets: fc.shuffledSubarray(all, { minLength: n }),
  })
}

/** Merges per the plan, every replica receiving from snapshots taken before any merge. */
export function mergeByPlan<T>(replicas: A.Doc<T>[], { final, targets }: MergePlan): A.Doc<T>[] {
  const snapshots = replicas.map((r) => A.clone(r))
  const out = replicas.map((r) => A.clone(r))
  for (const t of targets) {
    const [order, again] = final[t]!
    for (const s of [...order, ...again]) out[t] = A.merge(out[t]!, snapshots[s]!)
  }
  return out
}
