/**
 * DurableGate set-ups for running automerge-repo's network adapter acceptance suite behind the gate.
 */
import { DurableGate } from '../../src/network/durableGate.ts'

/** A gate as the site node uses it, plus how to stop it at teardown. */
export interface TestGate {
  gate: DurableGate
  stop(): void
}

/** A gate that is never held: the wrapped adapter must behave exactly as the bare one. */
export function openGate(): TestGate {
  return { gate: new DurableGate(), stop: () => {} }
}

/**
 * A gate held for `heldMs` out of every `periodMs`, as if a change were being fsynced most of the
 * time, so the suite's messages (handshakes included, they go through `send` too) queue behind it
 * and are sent late, in bursts. The last hold is always released, even after `stop()`, so nothing
 * stays queued.
 */
export function churningGate(periodMs = 4, heldMs = 3): TestGate {
  const gate = new DurableGate()
  const timer = setInterval(() => {
    gate.hold()
    setTimeout(() => gate.release(), heldMs)
  }, periodMs)
  return { gate, stop: () => clearInterval(timer) }
}
