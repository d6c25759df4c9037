/**
 * Raw sockets against a site node's HTTP API, for what fetch cannot send (malformed requests,
 * silence, a request line sent byte by byte), and a pino logger whose lines a test can read.
 */
import net from 'node:net'
import pino from 'pino'
import { onTestFinished } from 'vitest'

/** What came back on a socket and whether the server closed it. */
export interface RawExchange {
  /** Everything the server sent, as latin1 text. */
  text: string
  /** True when the server closed the connection; false when the wait ran out first. */
  closed: boolean
  /** Milliseconds from connecting to the close (or to the end of the wait). */
  elapsed: number
}

/** Opens a socket to `url`'s host and port; destroyed when the test ends. */
export function connect(url: string): Promise<net.Socket> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => resolve(socket))
    socket.once('error', reject)
    onTestFinished(() => {
      socket.destroy()
    })
  })
}

/** Collects what `socket` receives until the server closes it or `waitMs` pass. */
export function untilClosed(socket: net.Socket, waitMs: number, since = performance.now()): Promise<RawExchange> {
  return new Promise((resolve) => {
    let text = ''
    // A reset is a close too; the test reads `closed`.
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1')
    })
    const timer = setTimeout(() => resolve({ text, closed: false, elapsed: performance.now() - since }), waitMs)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve({ text, closed: true, elapsed: performance.now() - since })
    })
  })
}

/** Sends `data` on a new connection and collects the answer until the server closes it. */
export async function exchange(url: string, data: string | Buffer, waitMs = 5_000): Promise<RawExchange> {
  const socket = await connect(url)
  const done = untilClosed(socket, waitMs)
  socket.write(data)
  return done
}

/** The status and JSON body of the first response in `text` (body undefined when not JSON). */
export function firstResponse(text: string): { status: number; body: any } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? NaN)
  const end = text.indexOf('\r\n\r\n')
  const head = text.slice(0, end)
  const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN)
  const raw = Number.isNaN(length) ? text.slice(end + 4) : text.slice(end + 4, end + 4 + length)
  try {
    return { status, body: JSON.parse(raw) }
  } catch {
    return { status, body: undefined }
  }
}

/** A request with the Host a loopback site node accepts; `extra` are header lines without CRLF. */
export function request(method: string, target: string, extra: string[] = [], body = ''): string {
  return [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', ...extra, 'Connection: close', '', body].join('\r\n')
}

export interface LogLine {
  level: number
  msg: string
  [key: string]: unknown
}

/** A pino logger at debug level whose lines land in `lines`, parsed. */
export function capturedLogger() {
  const lines: LogLine[] = []
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) })
  return { logger, lines, errors: () => lines.filter((l) => l.level >= 50) }
}

/** Polls `check` until it holds or `ms` pass; returns whether it held. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 5_000): Promise<boolean> {
  const until = performance.now() + ms
  while (performance.now() < until) {
    if (await check()) return true
    await new Promise((r) => setTimeout(r, 25))
  }
  return check()
}
