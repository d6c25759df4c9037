/**
 * A throttling TCP proxy for the relay benchmark: one per device, standing for that device's link.
 * Every connection the device opens through it (the challenge request, the websocket, PouchDB's
 * HTTP requests) shares one budget per direction: `bytesPerSecond` (8,000 for 64 kbit/s; Infinity
 * for a plain counting proxy) and `oneWayMs` of added latency. Counts the TCP payload bytes each
 * way (HTTP and websocket framing included; TCP/IP headers not).
 */
import net from 'node:net'

/** Bytes a link delivers at a time. */
const PIECE = 1024

/**
 * One direction of the link: chunks are serialised onto it one after another at `rate` bytes/s, in
 * arrival order across the device's connections, and delivered `delay` ms after they were sent.
 * A connection that closes loses what it still had queued (as TCP does), which frees the link.
 */
class Direction {
  bytes = 0
  readonly #queue: Array<{ to: net.Socket; chunk: Buffer }> = []
  /** Chunks per socket not yet written (queued, on the link, or in flight). */
  readonly #pending = new Map<net.Socket, number>()
  #busy = false
  constructor(
    readonly rate: number,
    readonly delay: number,
  ) {}
  push(to: net.Socket, chunk: Buffer): void {
    if (!Number.isFinite(this.rate) && this.delay === 0) {
      this.bytes += chunk.length
      to.write(chunk)
      return
    }
    // In pieces of at most 1 KiB, as a slow link delivers bytes: a 64 KiB chunk read at once from a
    // fast socket must not arrive 8 s later all together (the receiver would see nothing meanwhile).
    for (let at = 0; at < chunk.length; at += PIECE) {
      this.#pending.set(to, (this.#pending.get(to) ?? 0) + 1)
      this.#queue.push({ to, chunk: chunk.subarray(at, at + PIECE) })
    }
    this.#pump()
  }
  #done(to: net.Socket): void {
    const n = (this.#pending.get(to) ?? 1) - 1
    if (n > 0) this.#pending.set(to, n)
    else this.#pending.delete(to)
  }
  /** Resolves once everything queued for `to` has been sent and delivered. */
  drained(to: net.Socket): Promise<void> {
    return new Promise((resolve) => {
      const check = () => (this.#pending.has(to) ? setTimeout(check, 10) : resolve())
      check()
    })
  }
  #pump(): void {
    if (this.#busy) return
    let next = this.#queue.shift()
    while (next && next.to.destroyed) {
      this.#done(next.to)
      next = this.#queue.shift()
    }
    if (!next) return
    const { to, chunk } = next
    this.#busy = true
    this.bytes += chunk.length
    const txMs = Number.isFinite(this.rate) ? (chunk.length / this.rate) * 1000 : 0
    setTimeout(() => {
      this.#busy = false
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk)
        this.#done(to)
      }, this.delay)
      this.#pump()
    }, txMs)
  }
}

export interface Proxy {
  readonly url: string
  readonly port: number
  /** Bytes device → relay and relay → device so far. */
  readonly up: number
  readonly down: number
  close(): Promise<void>
}

export async function startProxy(target: { host: string; port: number }, bytesPerSecond = Infinity, oneWayMs = 0): Promise<Proxy> {
  const up = new Direction(bytesPerSecond, oneWayMs)
  const down = new Direction(bytesPerSecond, oneWayMs)
  const sockets = new Set<net.Socket>()
  const pipe = (from: net.Socket, to: net.Socket, dir: Direction) => {
    from.on('data', (chunk: Buffer) => dir.push(to, chunk))
    from.on('end', () => void dir.drained(to).then(() => to.end()))
    from.on('error', () => to.destroy())
    from.on('close', () => void dir.drained(to).then(() => to.destroy()))
  }
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host)
    sockets.add(client).add(upstream)
    client.on('close', () => sockets.delete(client))
    upstream.on('close', () => sockets.delete(upstream))
    pipe(client, upstream, up)
    pipe(upstream, client, down)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  return {
    url: `ws://127.0.0.1:${port}`,
    port,
    get up() {
      return up.bytes
    },
    get down() {
      return down.bytes
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
