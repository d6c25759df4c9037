/**
 * Section 4 (diagnosis): small raw-Automerge experiments behind the findings. Each isolates one
 * cost of the chosen shape and shows what an alternative layout would cost instead.
 */
import * as A from '@automerge/automerge'
import { ImmutableString } from '@automerge/automerge'
import { cpuMs, median, log } from './workload.ts'

export interface ShapeResult {
  /** One A.change appending one movement to a journal holding `entries` movements. */
  journalAppend: Array<{ entries: number; flat: number; bucketed: number }>
  /** One A.change incrementing one counter and advancing the posted mark, 2,000 counters. */
  counterChange: { flat: number; bucketed: number }
  /** One increment (low-level, no JS object) on a counter that already has `prior` increments. */
  hotCounter: Array<{ prior: number; ms: number; coldMs: number }>
  /** Opening a 5,000-movement journal: what automerge-repo does vs A.load. */
  openJournal: { loadIncremental: number; diff: number; load: number; bytes: number }
}

const movement = (seq: number) => ({
  id: new ImmutableString(`01KBENCH${String(seq).padStart(18, '0')}`),
  k: 2,
  sku: new ImmutableString(`AMOX-${1000 + (seq % 2000)}`),
  q: -3,
  t: 1767571200000 + seq * 120_960,
  by: new ImmutableString('user-03'),
  dev: new ImmutableString('scanner-a-2'),
  ref: new ImmutableString(`REQ-${seq}`),
})

type Flat = { m: Record<string, ReturnType<typeof movement>> }
type Bucketed = { m: Record<string, Record<string, ReturnType<typeof movement>>> }
const BUCKET = 100
/** Inside a change, `(a[k] ??= {})[x] = v` writes into a detached plain object: assign, then read back. */
function put(d: Bucketed, s: number): void {
  const b = String(Math.floor(s / BUCKET))
  if (d.m[b] === undefined) d.m[b] = {}
  d.m[b]![String(s)] = movement(s)
}

/** Median CPU ms of `n` runs of `fn`, after `warm` untimed runs. */
function timeIt(n: number, fn: (i: number) => void, warm = 5): number {
  for (let i = 0; i < warm; i++) fn(-1 - i)
  const v: number[] = []
  for (let i = 0; i < n; i++) {
    const c0 = process.cpuUsage()
    fn(i)
    v.push(cpuMs(c0))
  }
  return median(v)
}

function journalAppend(entries: number): { entries: number; flat: number; bucketed: number } {
  let flat = A.change(A.init<Flat>(), (d) => {
    d.m = {}
    for (let s = 1; s <= entries; s++) d.m[String(s)] = movement(s)
  })
  let bucketed = A.change(A.init<Bucketed>(), (d) => {
    d.m = {}
    for (let s = 1; s <= entries; s++) put(d, s)
  })
  let next = entries + 1
  const f = timeIt(200, () => {
    const s = next++
    flat = A.change(flat, (d) => void (d.m[String(s)] = movement(s)))
  })
  next = entries + 1
  const b = timeIt(200, () => {
    const s = next++
    bucketed = A.change(bucketed, (d) => put(d, s))
  })
  const inBuckets = Object.values(bucketed.m).reduce((n, b) => n + Object.keys(b).length, 0)
  if (inBuckets !== entries + 205 || Object.keys(flat.m).length !== entries + 205) throw new Error(`shape: ${inBuckets} movements in buckets`)
  return { entries, flat: f, bucketed: b }
}

type Q = { q: Record<string, A.Counter>; posted: Record<string, { seq: number }> }
type QB = { q: Record<string, Record<string, A.Counter>>; posted: Record<string, { seq: number }> }

function counterChange(): { flat: number; bucketed: number } {
  const keys = Array.from({ length: 2000 }, (_, i) => `AMOX-${1000 + i}@node-a`)
  const bucketOf = (k: string) => String(k.length + k.charCodeAt(5) + k.charCodeAt(6) * 7 + k.charCodeAt(7) * 13).slice(-2)
  let flat = A.change(A.init<Q>(), (d) => {
    d.q = {}
    d.posted = { 'node-a': { seq: 0 } }
    for (const k of keys) d.q[k] = new A.Counter(0)
  })
  let bucketed = A.change(A.init<QB>(), (d) => {
    d.q = {}
    d.posted = { 'node-a': { seq: 0 } }
    for (const k of keys) {
      if (d.q[bucketOf(k)] === undefined) d.q[bucketOf(k)] = {}
      d.q[bucketOf(k)]![k] = new A.Counter(0)
    }
  })
  let seq = 0
  const f = timeIt(300, (i) => {
    const k = keys[Math.abs(i * 7919) % keys.length]!
    flat = A.change(flat, (d) => {
      d.q[k]!.increment(-2)
      d.posted['node-a']!.seq = ++seq
    })
  })
  const b = timeIt(300, (i) => {
    const k = keys[Math.abs(i * 7919) % keys.length]!
    bucketed = A.change(bucketed, (d) => {
      d.q[bucketOf(k)]![k]!.increment(-2)
      d.posted['node-a']!.seq = ++seq
    })
  })
  return { flat: f, bucketed: b }
}

function hotCounter(): ShapeResult['hotCounter'] {
  const doc = A.change(A.init<Q>(), (d) => {
    d.q = { hot: new A.Counter(0) }
    for (let i = 0; i < 2000; i++) d.q[`k${i}`] = new A.Counter(0)
  })
  const am = A.getBackend(A.clone(doc))
  const q = A.getObjectId(doc.q)!
  const out: ShapeResult['hotCounter'] = []
  let done = 0
  for (const prior of [0, 2_000, 5_000, 10_000]) {
    while (done < prior) {
      am.increment(q, 'hot', 1)
      am.commit(null, 1)
      done++
    }
    const ms = timeIt(
      500,
      () => {
        am.increment(q, 'hot', 1)
        am.commit(null, 1)
        done++
      },
      0,
    )
    const coldMs = timeIt(500, (i) => {
      am.increment(q, `k${Math.abs(i) % 2000}`, 1)
      am.commit(null, 1)
    }, 0)
    out.push({ prior, ms, coldMs })
  }
  return out
}

function openJournal(): ShapeResult['openJournal'] {
  let doc = A.change(A.init<Flat>(), (d) => {
    d.m = {}
  })
  for (let s = 1; s <= 5000; s += 500) {
    doc = A.change(doc, (d) => {
      for (let i = s; i < s + 500; i++) d.m[String(i)] = movement(i)
    })
  }
  const bytes = A.save(doc)
  if (Object.keys(A.load<Flat>(bytes).m).length !== 5000) throw new Error('journal')
  const v = { loadIncremental: [] as number[], diff: [] as number[], load: [] as number[] }
  for (let i = 0; i < 3; i++) {
    let c0 = process.cpuUsage()
    const d1 = A.loadIncremental(A.init<Flat>(), bytes)
    v.loadIncremental.push(cpuMs(c0))
    c0 = process.cpuUsage()
    A.diff(d1, [], A.getHeads(d1))
    v.diff.push(cpuMs(c0))
    c0 = process.cpuUsage()
    const d2 = A.load<Flat>(bytes)
    if (Object.keys(d2.m).length !== 5000) throw new Error('load')
    v.load.push(cpuMs(c0))
  }
  return { loadIncremental: median(v.loadIncremental), diff: median(v.diff), load: median(v.load), bytes: bytes.length }
}

export function shapeBench(): ShapeResult {
  log('shape experiments: journal append flat vs bucketed')
  const journal = [1000, 5000].map(journalAppend)
  log('shape experiments: counters flat vs bucketed, hot counter, journal open')
  return { journalAppend: journal, counterChange: counterChange(), hotCounter: hotCounter(), openJournal: openJournal() }
}
