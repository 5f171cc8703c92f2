// The in-process reverse proxy: a node http server that looks the Host header up in a table of
// routes and forwards the request to the app's address over a keep-alive connection pool.
//
// The hot path works on `rawHeaders` (one pass, no header object is built) and forwards headers
// as flat arrays, which node accepts on both sides without re-parsing them.
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse
} from "node:http"
import type { Socket } from "node:net"
import type { Duplex } from "node:stream"
import type { ProjectId } from "@paas/core/Project"
import type { Route } from "@paas/core/Router"
import type { Address } from "@paas/core/RuntimeDriver"
import { type Exchange, RESPONSE_HOP_BY_HOP, type ResponseHandler, UpstreamPool } from "./upstream.js"

/** The connection pool and counters of one upstream address. */
interface Upstream {
  readonly key: string
  readonly host: string
  readonly port: number
  readonly pool: UpstreamPool
  /** Routes pointing here. */
  refs: number
  /** HTTP requests forwarded and not yet finished. */
  inFlight: number
  /** Upgraded (WebSocket) connections. */
  readonly tunnels: Set<Duplex>
  /** Resolved when `inFlight` drops to zero. */
  idleWaiters: Array<() => void>
}

interface Entry {
  readonly route: Route
  readonly upstream: Upstream
}

// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the ones we set.
// Transfer-Encoding is kept on requests: node then frames the forwarded body as chunks again.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "upgrade",
  "expect",
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "host"
])
// Methods that can be sent again when a pooled connection turns out to be closed.
const RETRYABLE = new Set(["GET", "HEAD", "OPTIONS"])
const CONNECTION_TOKENS_ALWAYS = new Set(["keep-alive", "close", "upgrade"])

/** `Host` without its port, lower-cased, without a trailing dot; IPv6 literals keep their brackets. */
export const normalizeHost = (value: string): string => {
  let host = value
  if (host.charCodeAt(0) === 91 /* [ */) {
    const end = host.indexOf("]")
    host = end > 0 ? host.slice(0, end + 1) : host
  } else {
    const colon = host.indexOf(":")
    if (colon >= 0) host = host.slice(0, colon)
  }
  if (host.endsWith(".")) host = host.slice(0, -1)
  return host.toLowerCase()
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`).slice(0, 300)

const page = (title: string, body: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>` +
  `<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}` +
  `code{background:#f3f3f3;padding:.1em .3em}</style></head><body><h1>${title}</h1>${body}</body></html>\n`

/** The page for a host no route serves. */
export const notFoundPage = (host: string) =>
  page(
    "404 – no app here",
    `<p>No app is deployed at <code>${escapeHtml(host)}</code>.</p>` +
      "<p>Check the address, or deploy the project: apps answer at " +
      "<code>&lt;project-id&gt;.user-app.&lt;domain&gt;</code> once a release is running.</p>"
  )

/** The page for an app that is routed but does not answer. */
export const badGatewayPage = (host: string) =>
  page(
    "502 – the app is not answering",
    `<p>The app at <code>${escapeHtml(host)}</code> is deployed, but it did not answer this request.</p>` +
      "<p>It may be restarting or have crashed; its logs tell more. Try again in a moment.</p>"
  )

const sendPage = (res: ServerResponse, status: number, html: string) => {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const body = Buffer.from(html)
  res.writeHead(status, [
    "Content-Type",
    "text/html; charset=utf-8",
    "Content-Length",
    String(body.length),
    "Cache-Control",
    "no-store"
  ])
  res.end(body)
}

const clientAddress = (socket: Socket) => {
  const address = socket.remoteAddress ?? ""
  return address.startsWith("::ffff:") ? address.slice(7) : address
}

/** Options of the proxy's connection handling. */
export interface ProxyOptions {
  /** Idle pooled connections to an app close after this long; keep it below the apps' keep-alive. */
  readonly upstreamIdleMs: number
  /** Idle pooled connections kept per app. */
  readonly maxIdlePerUpstream: number
}

/** The routing table and the HTTP server that serves it. */
export class HttpProxy {
  readonly server: Server
  private readonly routes = new Map<ProjectId, Entry>()
  private readonly hosts = new Map<string, Entry>()
  private readonly upstreams = new Map<string, Upstream>()
  private readonly tunnels = new Set<Duplex>()

  constructor(private readonly options: ProxyOptions) {
    this.server = createServer({ keepAlive: true, noDelay: true })
    this.server.on("request", (req, res) => this.handle(req, res))
    this.server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.handleUpgrade(req, socket, head)
    )
    // A malformed request or a reset connection is the client's problem; never the server's.
    this.server.on("clientError", (error: NodeJS.ErrnoException, socket: Duplex) => {
      if (error.code !== "ECONNRESET" && socket.writable)
        socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
      socket.destroy()
    })
  }

  // ---- the table --------------------------------------------------------------------------------

  /** Replaces an app's route in one step; fails (changing nothing) on a host another app holds. */
  set(route: Route): string | undefined {
    const hosts = [...new Set(route.hosts.map(normalizeHost))]
    for (const host of hosts) {
      if (host === "" || /[\s/\\]/.test(host)) return `invalid host name ${JSON.stringify(host)}`
      const holder = this.hosts.get(host)
      if (holder !== undefined && holder.route.appId !== route.appId)
        return `host ${host} is already routed to app ${holder.route.appId}`
    }
    const upstream = this.acquire(route.target)
    const entry: Entry = { route: { ...route, hosts }, upstream }
    const previous = this.routes.get(route.appId)
    // Synchronous from here on: a request sees either the old table or the new one, never a mix.
    if (previous !== undefined) for (const host of previous.route.hosts) this.hosts.delete(host)
    for (const host of hosts) this.hosts.set(host, entry)
    this.routes.set(route.appId, entry)
    if (previous !== undefined) this.release(previous.upstream)
    return undefined
  }

  remove(appId: ProjectId) {
    const previous = this.routes.get(appId)
    if (previous === undefined) return
    for (const host of previous.route.hosts) this.hosts.delete(host)
    this.routes.delete(appId)
    this.release(previous.upstream)
  }

  list(appId?: ProjectId): Array<Route> {
    if (appId !== undefined) {
      const entry = this.routes.get(appId)
      return entry ? [entry.route] : []
    }
    return [...this.routes.values()].map((e) => e.route)
  }

  lookup(host: string): Route | undefined {
    return this.hosts.get(normalizeHost(host))?.route
  }

  inFlight(target: Address): number {
    return this.upstreams.get(`${target.host}:${target.port}`)?.inFlight ?? 0
  }

  /** Calls `done` once nothing is in flight to `target` (at once if nothing is). */
  onIdle(target: Address, done: () => void): () => void {
    const upstream = this.upstreams.get(`${target.host}:${target.port}`)
    if (upstream === undefined || upstream.inFlight === 0) {
      if (upstream !== undefined) this.maybeDispose(upstream)
      done()
      return () => {}
    }
    upstream.idleWaiters.push(done)
    return () => {
      upstream.idleWaiters = upstream.idleWaiters.filter((w) => w !== done)
    }
  }

  /** Stops accepting, and cuts every connection: the server is going away. */
  close(done: () => void) {
    this.server.close(() => done())
    this.server.closeAllConnections()
    for (const socket of this.tunnels) socket.destroy()
    for (const upstream of this.upstreams.values()) upstream.pool.destroy()
    this.upstreams.clear()
    this.routes.clear()
    this.hosts.clear()
  }

  private acquire(target: Address): Upstream {
    const key = `${target.host}:${target.port}`
    let upstream = this.upstreams.get(key)
    if (upstream === undefined) {
      upstream = {
        key,
        host: target.host,
        port: target.port,
        // Closing idle connections before the app does avoids reusing one it is closing.
        pool: new UpstreamPool(
          target.host,
          target.port,
          this.options.upstreamIdleMs,
          this.options.maxIdlePerUpstream
        ),
        refs: 0,
        inFlight: 0,
        tunnels: new Set(),
        idleWaiters: []
      }
      this.upstreams.set(key, upstream)
    }
    upstream.refs++
    return upstream
  }

  private release(upstream: Upstream) {
    upstream.refs--
    this.maybeDispose(upstream)
  }

  // An upstream no route uses closes its pooled connections once its last request is done, so a
  // retiring app is not kept busy by idle sockets. Tunnels are left to end with the app.
  private maybeDispose(upstream: Upstream) {
    if (upstream.refs > 0 || upstream.inFlight > 0) return
    if (this.upstreams.get(upstream.key) === upstream) this.upstreams.delete(upstream.key)
    upstream.pool.close()
  }

  private finished(upstream: Upstream) {
    upstream.inFlight--
    if (upstream.inFlight > 0) return
    if (upstream.idleWaiters.length > 0) {
      const waiters = upstream.idleWaiters
      upstream.idleWaiters = []
      for (const w of waiters) w()
    }
    this.maybeDispose(upstream)
  }

  // ---- requests -----------------------------------------------------------------------------------

  // One pass over the raw headers: copies them minus hop-by-hop ones (and those the Connection
  // header names), adds the X-Forwarded-* trio, and picks out what routing needs.
  private forwardHeaders(req: IncomingMessage, keepUpgrade: boolean) {
    const raw = req.rawHeaders
    let out: Array<string> = []
    let host = ""
    let forwardedFor = ""
    let upgrade = ""
    let connection = ""
    let hasBody = false
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!
      const value = raw[i + 1]!
      const lower = name.toLowerCase()
      if (HOP_BY_HOP.has(lower)) {
        if (lower === "host") host = value
        else if (lower === "x-forwarded-for")
          forwardedFor = forwardedFor ? `${forwardedFor}, ${value}` : value
        else if (lower === "upgrade") upgrade = value
        else if (lower === "connection") connection = connection ? `${connection},${value}` : value
        continue
      }
      if ((lower === "content-length" && value !== "0") || lower === "transfer-encoding") hasBody = true
      out.push(name, value)
    }
    if (connection !== "") {
      let extra: Set<string> | undefined
      for (const token of connection.split(",")) {
        const t = token.trim().toLowerCase()
        if (t === "" || CONNECTION_TOKENS_ALWAYS.has(t)) continue
        extra ??= new Set()
        extra.add(t)
      }
      if (extra !== undefined) {
        const named = extra
        const kept: Array<string> = []
        for (let i = 0; i < out.length; i += 2)
          if (!named.has(out[i]!.toLowerCase())) kept.push(out[i]!, out[i + 1]!)
        out = kept
      }
    }
    const client = clientAddress(req.socket)
    out.push(
      "Host",
      host,
      "X-Forwarded-For",
      forwardedFor ? `${forwardedFor}, ${client}` : client,
      "X-Forwarded-Proto",
      "http",
      "X-Forwarded-Host",
      host
    )
    if (keepUpgrade) out.push("Connection", "Upgrade", "Upgrade", upgrade)
    return { headers: out, host, hasBody }
  }

  private handle(req: IncomingMessage, res: ServerResponse) {
    const { headers, host: hostHeader, hasBody } = this.forwardHeaders(req, false)
    if (hostHeader === "") {
      sendPage(
        res,
        400,
        page("400 – no Host header", "<p>This server routes requests by their Host header.</p>")
      )
      return
    }
    const entry = this.hosts.get(normalizeHost(hostHeader))
    if (entry === undefined) {
      sendPage(res, 404, notFoundPage(hostHeader))
      return
    }
    const upstream = entry.upstream
    upstream.inFlight++
    let done = false
    const finish = () => {
      if (done) return
      done = true
      this.finished(upstream)
    }
    const method = req.method ?? "GET"
    const request = {
      method,
      path: req.url ?? "/",
      headers,
      body: hasBody ? req : null,
      chunked: hasBody && req.headers["transfer-encoding"] !== undefined
    }
    let head: { status: number; reason: string; headers: Array<string> } | undefined
    let ended = false
    let retried = false
    let exchange: Exchange | undefined
    const resume = () => exchange?.resume()
    // Writes the app's status and headers; an app sending what node refuses to write gets a 502.
    const writeHead = () => {
      if (head === undefined) return true
      const h = head
      head = undefined
      try {
        res.writeHead(h.status, h.reason === "" ? undefined : h.reason, h.headers)
        return true
      } catch {
        exchange?.abort()
        sendPage(res, 502, badGatewayPage(hostHeader))
        return false
      }
    }
    const handler: ResponseHandler = {
      head: (status, reason, headers) => {
        head = { status, reason, headers }
      },
      body: (chunk, last) => {
        if (ended || !writeHead()) return true
        if (last) {
          ended = true
          res.end(chunk)
          return true
        }
        const ok = res.write(chunk)
        if (!ok) res.once("drain", resume)
        return ok
      },
      end: () => {
        if (ended || !writeHead()) return
        ended = true
        res.end()
      },
      error: (_reason, retryable) => {
        // A pooled connection the app closed just as we reused it: safe to send again once.
        if (retryable && !retried && RETRYABLE.has(method)) {
          retried = true
          exchange = upstream.pool.request(request, handler, true)
          return
        }
        if (res.headersSent || ended) res.destroy()
        else sendPage(res, 502, badGatewayPage(hostHeader))
      }
    }
    // The client went away: stop the work upstream too, and count the request as finished.
    res.on("close", () => {
      finish()
      if (!res.writableFinished) exchange?.abort()
    })
    exchange = upstream.pool.request(request, handler)
  }

  private handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
    socket.on("error", () => socket.destroy())
    const { headers, host: hostHeader } = this.forwardHeaders(req, true)
    const entry = hostHeader === "" ? undefined : this.hosts.get(normalizeHost(hostHeader))
    if (entry === undefined) {
      const body = notFoundPage(hostHeader)
      socket.end(
        `HTTP/1.1 404 Not Found\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
      )
      return
    }
    const upstream = entry.upstream
    const upReq = httpRequest({
      host: upstream.host,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers,
      agent: false,
      setHost: false
    })
    const fail = () => {
      if (!socket.writable) return socket.destroy()
      const body = badGatewayPage(hostHeader)
      socket.end(
        `HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
      )
    }
    upReq.on("error", fail)
    socket.on("close", () => upReq.destroy())
    // The app refused to switch protocols: pass its answer on and close.
    upReq.on("response", (upRes: IncomingMessage) => {
      let head = `HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}\r\n`
      const raw = upRes.rawHeaders
      for (let i = 0; i < raw.length; i += 2)
        if (!RESPONSE_HOP_BY_HOP.has(raw[i]!.toLowerCase())) head += `${raw[i]}: ${raw[i + 1]}\r\n`
      socket.write(`${head}Connection: close\r\n\r\n`)
      upRes.pipe(socket)
    })
    upReq.on("upgrade", (upRes: IncomingMessage, upSocket: Socket, upHead: Buffer) => {
      let response = `HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}\r\n`
      const raw = upRes.rawHeaders
      for (let i = 0; i < raw.length; i += 2) response += `${raw[i]}: ${raw[i + 1]}\r\n`
      socket.write(`${response}\r\n`)
      if (upHead.length > 0) socket.write(upHead)
      if (head.length > 0) upSocket.write(head)
      upSocket.setNoDelay(true)
      upstream.tunnels.add(upSocket)
      this.tunnels.add(socket)
      const cleanup = () => {
        upstream.tunnels.delete(upSocket)
        this.tunnels.delete(socket)
        upSocket.destroy()
        socket.destroy()
      }
      upSocket.on("error", cleanup)
      upSocket.on("close", cleanup)
      socket.on("close", cleanup)
      upSocket.pipe(socket)
      socket.pipe(upSocket)
    })
    upReq.end()
  }
}
