/** Reading a JSON request body with a size limit. */
import type { IncomingMessage } from 'node:http'
import { InputError } from '../../schema/errors.ts'

/** A request the server refuses before looking at its content (size, type). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

/** Reads and parses a JSON body of at most `limit` bytes; refuses anything else clearly. */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  if (type !== 'application/json') throw new HttpError(415, 'send the body as JSON with Content-Type: application/json')
  const declared = Number(req.headers['content-length'] ?? NaN)
  if (declared > limit) {
    req.resume()
    throw new HttpError(413, `the body is ${declared} bytes; the limit is ${limit}`)
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) {
      req.resume()
      throw new HttpError(413, `the body is over the limit of ${limit} bytes`)
    }
    chunks.push(chunk)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') throw new InputError('', 'the body is empty; send a JSON object')
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new InputError('', `the body is not valid JSON (${(error as Error).message})`)
  }
}
