#!/usr/bin/env node
// The static file server of @paas/builder, for apps built with `build.method: static` (or detected
// as a folder of files). Plain JavaScript with no dependencies, so that it runs as it is from the
// package's sources and from an installed package alike.
//
//   node static-server.mjs <folder>        listens on $PORT (8080 when unset), on $HOST if set
//
// GET and HEAD only; `/` and directories serve their index.html (a directory asked for without its
// trailing slash is redirected); a missing file is a 404 (with the folder's 404.html when there is
// one); nothing outside the folder is ever served, symbolic links included.

import { createReadStream } from "node:fs"
import { realpath, stat } from "node:fs/promises"
import { createServer } from "node:http"
import { extname, join, resolve, sep } from "node:path"

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".htm": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".cjs": "text/javascript; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".webmanifest": "application/manifest+json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
  ".csv": "text/csv; charset=utf-8",
  ".xml": "application/xml; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".avif": "image/avif",
  ".ico": "image/x-icon",
  ".bmp": "image/bmp",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".ttf": "font/ttf",
  ".otf": "font/otf",
  ".eot": "application/vnd.ms-fontobject",
  ".wasm": "application/wasm",
  ".pdf": "application/pdf",
  ".zip": "application/zip",
  ".gz": "application/gzip",
  ".mp3": "audio/mpeg",
  ".ogg": "audio/ogg",
  ".wav": "audio/wav",
  ".mp4": "video/mp4",
  ".webm": "video/webm"
}

const folder = process.argv[2]
if (folder === undefined) {
  process.stderr.write("usage: static-server.mjs <folder>\n")
  process.exit(2)
}
const root = await realpath(resolve(folder)).catch(() => {
  process.stderr.write(`static-server: no such folder: ${folder}\n`)
  process.exit(1)
})
const port = Number(process.env.PORT ?? "8080")
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`static-server: PORT must be a port number, got ${JSON.stringify(process.env.PORT)}\n`)
  process.exit(2)
}

const inside = (path) => path === root || path.startsWith(root + sep)

// The file a URL path names, resolved through links, or null when it is missing or outside.
const locate = async (urlPath) => {
  let decoded
  try {
    decoded = decodeURIComponent(urlPath)
  } catch {
    return null
  }
  if (decoded.includes("\0") || decoded.includes("\\")) return null
  const wanted = resolve(root, `.${decoded.startsWith("/") ? decoded : `/${decoded}`}`)
  if (!inside(wanted)) return null
  try {
    const real = await realpath(wanted)
    if (!inside(real)) return null
    return { path: real, stats: await stat(real) }
  } catch {
    return null
  }
}

const send = (req, res, status, headers, file) => {
  res.writeHead(status, { "X-Content-Type-Options": "nosniff", ...headers })
  if (req.method === "HEAD" || file === undefined) {
    res.end()
    return
  }
  const stream = createReadStream(file)
  stream.on("error", () => res.destroy())
  stream.pipe(res)
}

const sendFile = (req, res, status, found) => {
  const type = TYPES[extname(found.path).toLowerCase()] ?? "application/octet-stream"
  const modified = found.stats.mtime.toUTCString()
  const since = req.headers["if-modified-since"]
  if (
    status === 200 &&
    since !== undefined &&
    Date.parse(since) >= Math.floor(found.stats.mtimeMs / 1000) * 1000
  ) {
    send(req, res, 304, { "Last-Modified": modified })
    return
  }
  send(
    req,
    res,
    status,
    { "Content-Type": type, "Content-Length": String(found.stats.size), "Last-Modified": modified },
    found.path
  )
}

const notFound = async (req, res) => {
  const page = await locate("/404.html")
  if (page?.stats.isFile()) sendFile(req, res, 404, page)
  else {
    const body = "Not Found\n"
    res.writeHead(404, {
      "Content-Type": "text/plain; charset=utf-8",
      "Content-Length": String(Buffer.byteLength(body)),
      "X-Content-Type-Options": "nosniff"
    })
    res.end(req.method === "HEAD" ? undefined : body)
  }
}

const server = createServer(async (req, res) => {
  try {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD", "Content-Length": "0" })
      res.end()
      return
    }
    const url = new URL(req.url ?? "/", "http://localhost")
    const found = await locate(url.pathname)
    if (found === null) return await notFound(req, res)
    if (found.stats.isDirectory()) {
      if (!url.pathname.endsWith("/")) {
        send(req, res, 301, { Location: `${url.pathname}/${url.search}`, "Content-Length": "0" })
        return
      }
      const index = await locate(join(url.pathname, "index.html"))
      if (index?.stats.isFile()) return sendFile(req, res, 200, index)
      return await notFound(req, res)
    }
    if (!found.stats.isFile()) return await notFound(req, res)
    sendFile(req, res, 200, found)
  } catch {
    if (!res.headersSent) res.writeHead(500, { "Content-Length": "0" })
    res.end()
  }
})

const stop = () => {
  server.close(() => process.exit(0))
  server.closeAllConnections()
  setTimeout(() => process.exit(0), 2000).unref()
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)

server.listen(port, process.env.HOST, () => {
  const address = server.address()
  const shown = typeof address === "object" && address !== null ? address.port : port
  process.stdout.write(`serving ${root} on port ${shown}\n`)
})
