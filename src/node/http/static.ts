/** Serves the built UI, or a placeholder page until the UI is built. */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import type { ServerResponse } from 'node:http'

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

export async function sendStatic(res: ServerResponse, pathname: string, uiDir: string | undefined): Promise<void> {
  if (uiDir) {
    const root = path.resolve(uiDir)
    const wanted = path.resolve(root, '.' + (pathname === '/' ? '/index.html' : pathname))
    if (wanted.startsWith(root + path.sep)) {
      const info = await stat(wanted).catch(() => undefined)
      const file = info?.isFile() ? wanted : path.join(root, 'index.html')
      const exists = await stat(file).catch(() => undefined)
      if (exists?.isFile()) {
        res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' })
        createReadStream(file).pipe(res)
        return
      }
    }
  }
  if (pathname !== '/' && pathname !== '/index.html') {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
    res.end('not found')
    return
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
  res.end(PLACEHOLDER)
}
