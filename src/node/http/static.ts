/** Serves the built UI, or a placeholder page until the UI is built. */
import { open, stat } from 'node:fs/promises'
import path from 'node:path'
import type { ServerResponse } from 'node:http'
import { pipeline } from 'node:stream/promises'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
}

const PLACEHOLDER = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stockmesh</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px system-ui,sans-serif;margin:2rem;max-width:48rem}table{border-collapse:collapse}td,th{padding:.3rem .8rem;border-bottom:1px solid #ddd;text-align:left}td.n{text-align:right}</style>
</head><body>
<h1>stockmesh — <span id="site">site</span></h1>
<p id="status">Loading…</p>
<table><thead><tr><th>SKU</th><th>Product</th><th>On hand</th><th>Unit</th></tr></thead><tbody id="stock"></tbody></table>
<h2>Review</h2><ul id="review"></ul>
<script type="module">
const get = (p) => fetch(p).then((r) => r.json())
const [health, stock, review] = await Promise.all([get('/api/health'), get('/api/stock'), get('/api/review')])
document.getElementById('site').textContent = health.site
document.getElementById('status').textContent = 'Device ' + health.node + ' · ' + health.journals + ' journals loaded'
const cell = (text, cls) => Object.assign(document.createElement('td'), { textContent: text, className: cls ?? '' })
for (const row of stock.items) { const tr = document.createElement('tr'); tr.append(cell(row.sku), cell(row.name), cell(row.onHand, 'n'), cell(row.unit)); document.getElementById('stock').append(tr) }
for (const item of review.items) document.getElementById('review').append(Object.assign(document.createElement('li'), { textContent: '[' + item.status + '] ' + item.summary }))
</script>
</body></html>
`

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/**
 * Serves `pathname` (as it came in the URL, percent-encoded) from `uiDir`, any other path as the
 * UI's index.html (the UI routes in the browser), or the placeholder page when there is no UI.
 */
export async function sendStatic(res: ServerResponse, pathname: string, uiDir: string | undefined): Promise<void> {
  let decoded: string
  try {
    decoded = decodeURIComponent(pathname)
  } catch {
    return sendText(res, 400, 'the path is not valid percent-encoding')
  }
  // A NUL byte would make the file system calls throw; no file of the UI has one.
  if (decoded.includes('\0')) return sendText(res, 404, 'not found')
  if (uiDir) {
    const root = path.resolve(uiDir)
    const wanted = path.resolve(root, '.' + (decoded === '/' ? '/index.html' : decoded))
    if (wanted.startsWith(root + path.sep)) {
      const info = await stat(wanted).catch(() => undefined)
      const file = info?.isFile() ? wanted : path.join(root, 'index.html')
      // Open before answering, so that a file that vanished or cannot be read is a 404, not a
      // 200 with no body.
      const handle = await open(file).catch(() => undefined)
      const opened = handle && (await handle.stat().catch(() => undefined))
      if (handle && opened?.isFile()) {
        res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'x-content-type-options': 'nosniff' })
        // pipeline, not pipe: a read error must end this response, not go unhandled and end the process.
        await pipeline(handle.createReadStream(), res).catch(() => res.destroy())
        return
      }
      await handle?.close()
    }
  }
  if (decoded !== '/' && decoded !== '/index.html') return sendText(res, 404, 'not found')
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
  res.end(PLACEHOLDER)
}
