/** Reading a JSON request body with a size limit. */
import type { IncomingMessage } from 'node:http'
import { InputError } from '../../schema/errors.ts'

/** A request the server refuses before looking at its content (size, type). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** What was wrong: 'path', 'content-type', 'content-encoding', 'body', or '' for the request. */
    readonly field = '',
  ) {
    super(message)
  }
}

const JSON_TYPE = 'send the body as JSON with Content-Type: application/json'

/**
 * Refuses a Content-Type other than `application/json`, with no charset or charset UTF-8.
 * JSON is UTF-8 (RFC 8259); a body declared in another charset would be misread byte by byte,
 * so it is refused rather than guessed at. `utf8` is accepted too: it is a label of the same
 * encoding (WHATWG Encoding) and common in scripts.
 */
function checkContentType(header: string | undefined): void {
  const [type = '', ...params] = (header ?? '').split(';')
  if (type.trim().toLowerCase() !== 'application/json') throw new HttpError(415, JSON_TYPE, 'content-type')
  for (const param of params) {
    const eq = param.indexOf('=')
    if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== 'charset') continue
    let charset = param.slice(eq + 1).trim()
    if (charset.length >= 2 && charset.startsWith('"') && charset.endsWith('"')) charset = charset.slice(1, -1)
    if (!['utf-8', 'utf8'].includes(charset.toLowerCase())) {
      throw new HttpError(415, `the body is declared as charset ${JSON.stringify(charset)}; send it as UTF-8 (Content-Type: application/json; charset=utf-8)`, 'content-type')
    }
  }
}

/**
 * Reads and parses a JSON object body of at most `limit` bytes; refuses anything else clearly.
 * Every endpoint that takes a body takes an object, so an array, `null` or a bare value is a 400
 * here rather than a confusing message from whichever field check meets it first. `ready` is
 * called once the headers pass and the body is about to be read (the server answers
 * `Expect: 100-continue` there).
 */
export async function readJson(req: IncomingMessage, limit: number, ready?: () => void): Promise<Record<string, unknown>> {
  checkContentType(req.headers['content-type'])
  // A compressed body would fail the UTF-8 check below with a message that blames the client's text.
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase()
  if (encoding !== 'identity') throw new HttpError(415, `Content-Encoding ${encoding} is not supported; send the body uncompressed`, 'content-encoding')
  const declared = Number(req.headers['content-length'] ?? NaN)
  if (declared > limit) {
    req.resume()
    throw new HttpError(413, `the body is ${declared} bytes; the limit is ${limit}`, 'body')
  }
  ready?.()
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) {
      req.resume()
      throw new HttpError(413, `the body is over the limit of ${limit} bytes`, 'body')
    }
    chunks.push(chunk)
  }
  let text: string
  try {
    // fatal: a byte sequence that is not UTF-8 is refused, not silently turned into U+FFFD and stored.
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks))
  } catch {
    throw new InputError('', 'the body is not valid UTF-8; send JSON text encoded as UTF-8')
  }
  if (text.trim() === '') throw new InputError('', 'the body is empty; send a JSON object')
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new InputError('', `the body is not valid JSON (${(error as Error).message})`)
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    const what = parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : `a ${typeof parsed}`
    throw new InputError('', `the body must be a JSON object, not ${what}`)
  }
  return parsed as Record<string, unknown>
}
