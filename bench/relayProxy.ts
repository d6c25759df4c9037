/**
 * A throttling TCP proxy for the relay benchmark: one per device, standing for that device's link.
 * Every connection the device opens through it (the challenge request, the websocket, PouchDB's
 * HTTP requests) shares one budget per direction: `bytesPerSecond` (8,000 for 64 kbit/s; Infinity
 * for a plain counting proxy) and `oneWayMs` of added latency. Counts the TCP payload bytes each
 * way (HTTP and websocket framing included; TCP/IP headers not).
 */
import net from 'node:net'

class Direction {
  bytes = 0
  #free = 0
  constructor(
    readonly rate: number,
    readonly delay: number,
  ) {}
  /** When a chunk arriving now may be delivered: after the link is free and the latency has passed. */
  departure(size: number): number {
    this.bytes += size
    const now = performance.now()
    if (!Number.isFinite(this.rate)) return now + this.delay
    const start = Math.max(now, this.#free)
    this.#free = start + (size / this.rate) * 1000
    return this.#free + this.delay
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
    // Chunks leave in order: each is written at its departure time, after the one before it.
    let last = 0
    from.on('data', (chunk: Buffer) => {
      const at = Math.max(dir.departure(chunk.length), last)
      last = at
      const wait = at - performance.now()
      if (wait <= 0 && Number.isFinite(dir.rate) === false && dir.delay === 0) to.write(chunk)
      else setTimeout(() => to.destroyed || to.write(chunk), Math.max(0, wait))
    })
    from.on('end', () => setTimeout(() => to.end(), Math.max(0, last - performance.now()) + 1))
    from.on('error', () => to.destroy())
    from.on('close', () => setTimeout(() => to.destroy(), Math.max(0, last - performance.now()) + 5))
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
