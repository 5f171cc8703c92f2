// A lean HTTP/1.1 client for the proxy's side towards apps: a pool of keep-alive sockets per app
// address, requests written as one string, responses parsed by a small state machine.
//
// Why not node's http.request: profiling the proxy showed node's client (ClientRequest, the
// Agent's bookkeeping, an IncomingMessage per response) costing about as much as everything else
// together; this client roughly doubles the proxy's throughput. The side facing users stays on
// node's http server, whose parser (llhttp) is the hardened one: requests are parsed there and
// written out again from the parsed form, so nothing ambiguous reaches an app. What this parser
// reads comes from the apps, and a malformed answer only costs that app its connection.
import { connect, type Socket } from "node:net"
import type { Readable } from "node:stream"

/** A request to forward: headers as a flat [name, value, …] array, already filtered. */
export interface UpstreamRequest {
  readonly method: string
  readonly path: string
  readonly headers: ReadonlyArray<string>
  /** The body to stream, or null when there is none. */
  readonly body: Readable | null
  /** Whether the body must be framed as chunks (the client sent it chunked). */
  readonly chunked: boolean
}

/** What the proxy does with the answer. */
export interface ResponseHandler {
  /** The status line and the end-to-end headers (hop-by-hop ones removed). */
  head(status: number, reason: string, headers: Array<string>): void
  /** A piece of the body; `last` when it completes the body. False asks to pause. */
  body(chunk: Buffer, last: boolean): boolean
  /** The response is complete (after the last `body`, if any). */
  end(): void
  /** No (complete) answer; `retryable` when nothing was received on a reused connection. */
  error(reason: string, retryable: boolean): void
}

/** A request in progress. */
export interface Exchange {
  /** The client went away: drop the connection. */
  abort(): void
  /** Resumes reading after `body` returned false. */
  resume(): void
}

const MAX_HEAD = 64 * 1024
const MAX_LINE = 4 * 1024
const CRLF = Buffer.from("\r\n")
const CRLFCRLF = Buffer.from("\r\n\r\n")
const LAST_CHUNK = "0\r\n\r\n"
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/
const HEX = /^[0-9a-fA-F]{1,12}$/
/** Response headers that concern one connection, never forwarded (RFC 9110 §7.6.1). */
export const RESPONSE_HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade"
])

// The parser's states.
const State = {
  Idle: 0,
  Head: 1,
  Length: 2,
  ChunkSize: 3,
  ChunkData: 4,
  ChunkEnd: 5,
  Trailers: 6,
  UntilClose: 7
} as const
type State = (typeof State)[keyof typeof State]

class ProtocolError extends Error {}

interface Current {
  readonly handler: ResponseHandler
  readonly method: string
  readonly hasBody: boolean
  requestDone: boolean
  received: boolean
}

/** One keep-alive connection to an app, with its response parser. */
class Connection implements Exchange {
  readonly socket: Socket
  current: Current | null = null
  reused = false
  idleSince = 0
  private state: State = State.Idle
  private carry: Buffer | null = null
  private remaining = 0
  private keepAlive = true
  private trailerBytes = 0
  private onDrain: (() => void) | null = null

  constructor(
    private readonly pool: UpstreamPool,
    host: string,
    port: number
  ) {
    const socket = connect({ host, port, noDelay: true })
    this.socket = socket
    socket.on("data", (chunk: Buffer) => this.onData(chunk))
    socket.on("drain", () => this.onDrain?.())
    socket.on("end", () => this.onEnd())
    socket.on("error", (error: NodeJS.ErrnoException) => this.fail(error.code ?? error.message))
    socket.on("close", () => this.fail("the app closed the connection"))
  }

  send(request: UpstreamRequest, handler: ResponseHandler) {
    const current: Current = {
      handler,
      method: request.method,
      hasBody: request.body !== null,
      requestDone: request.body === null,
      received: false
    }
    this.current = current
    this.state = State.Head
    this.carry = null
    if (this.socket.isPaused()) this.socket.resume()
    const h = request.headers
    let head = `${request.method} ${request.path} HTTP/1.1\r\n`
    for (let i = 0; i < h.length; i += 2) head += `${h[i]}: ${h[i + 1]}\r\n`
    // Header values come from node's parser as latin1 strings: writing them back as latin1
    // reproduces the client's bytes exactly.
    this.socket.write(`${head}\r\n`, "latin1")
    const body = request.body
    if (body === null) return
    const socket = this.socket
    const chunked = request.chunked
    this.onDrain = () => body.resume()
    body.on("data", (chunk: Buffer) => {
      if (this.current !== current || chunk.length === 0) return
      let ok: boolean
      if (chunked) {
        socket.write(`${chunk.length.toString(16)}\r\n`, "latin1")
        socket.write(chunk)
        ok = socket.write(CRLF)
      } else ok = socket.write(chunk)
      if (!ok) body.pause()
    })
    body.on("end", () => {
      if (this.current !== current) return
      if (chunked) socket.write(LAST_CHUNK, "latin1")
      current.requestDone = true
    })
  }

  abort() {
    if (this.current === null) return
    this.current = null
    this.destroy()
  }

  resume() {
    this.socket.resume()
  }

  destroy() {
    this.state = State.Idle
    this.pool.forget(this)
    this.socket.destroy()
  }

  private fail(reason: string) {
    const current = this.current
    this.current = null
    this.destroy()
    if (current === null) return
    // An app may close a pooled connection just as it is reused; nothing was sent back then, so
    // sending the request again is safe when it has no body (the proxy also checks the method).
    current.handler.error(reason, this.reused && !current.received && !current.hasBody)
  }

  private onEnd() {
    if (this.current !== null && this.state === State.UntilClose) this.finish(false)
    else this.fail("the app closed the connection before answering")
  }

  private finish(reusable: boolean) {
    const current = this.current!
    this.current = null
    this.state = State.Idle
    this.onDrain = null
    current.handler.end()
    if (reusable && this.keepAlive && current.requestDone) {
      this.reused = true
      this.pool.release(this)
    } else this.destroy()
  }

  private onData(chunk: Buffer) {
    const current = this.current
    if (current === null) {
      // Bytes nobody asked for: the connection is out of step, never reuse it.
      this.destroy()
      return
    }
    current.received = true
    let buf = chunk
    if (this.carry !== null) {
      buf = Buffer.concat([this.carry, chunk])
      this.carry = null
    }
    try {
      this.parse(buf, current)
    } catch (error) {
      this.fail(
        error instanceof ProtocolError ? `invalid response from the app: ${error.message}` : String(error)
      )
    }
  }

  private keep(buf: Buffer, from: number, limit: number) {
    if (buf.length - from > limit) throw new ProtocolError("line too long")
    this.carry = buf.subarray(from)
  }

  // Consumes `buf`; stops when the response is complete (anything after it spoils the connection).
  private parse(buf: Buffer, current: Current) {
    let i = 0
    const n = buf.length
    while (i < n) {
      if (this.current !== current) return
      switch (this.state) {
        case State.Head: {
          const end = buf.indexOf(CRLFCRLF, i)
          if (end < 0) return this.keep(buf, i, MAX_HEAD)
          const skip = this.parseHead(buf.toString("latin1", i, end), current)
          i = end + 4
          if (skip) continue
          // parseHead moved the state on; TypeScript cannot see that.
          if ((this.state as State) === State.Idle) return this.complete(buf, i)
          break
        }
        case State.Length: {
          const take = Math.min(this.remaining, n - i)
          this.remaining -= take
          const last = this.remaining === 0
          this.deliver(current, buf.subarray(i, i + take), last)
          i += take
          if (last) return this.complete(buf, i)
          break
        }
        case State.ChunkSize: {
          const end = buf.indexOf(CRLF, i)
          if (end < 0) return this.keep(buf, i, MAX_LINE)
          const line = buf.toString("latin1", i, end)
          const semi = line.indexOf(";")
          const hex = (semi < 0 ? line : line.slice(0, semi)).trim()
          if (!HEX.test(hex)) throw new ProtocolError("bad chunk size")
          this.remaining = Number.parseInt(hex, 16)
          i = end + 2
          this.state = this.remaining === 0 ? State.Trailers : State.ChunkData
          this.trailerBytes = 0
          break
        }
        case State.ChunkData: {
          const take = Math.min(this.remaining, n - i)
          this.remaining -= take
          this.deliver(current, buf.subarray(i, i + take), false)
          i += take
          if (this.remaining === 0) this.state = State.ChunkEnd
          break
        }
        case State.ChunkEnd: {
          if (n - i < 2) return this.keep(buf, i, 2)
          if (buf[i] !== 13 || buf[i + 1] !== 10) throw new ProtocolError("missing CRLF after a chunk")
          i += 2
          this.state = State.ChunkSize
          break
        }
        case State.Trailers: {
          const end = buf.indexOf(CRLF, i)
          if (end < 0) return this.keep(buf, i, MAX_LINE)
          // Trailers are dropped: node's server would need them declared up front.
          this.trailerBytes += end - i
          if (this.trailerBytes > MAX_HEAD) throw new ProtocolError("trailers too large")
          const empty = end === i
          i = end + 2
          if (empty) {
            this.state = State.Idle
            return this.complete(buf, i)
          }
          break
        }
        case State.UntilClose: {
          this.deliver(current, i === 0 ? buf : buf.subarray(i), false)
          return
        }
        default:
          throw new ProtocolError("data outside a response")
      }
    }
  }

  private complete(buf: Buffer, at: number) {
    // More bytes than the response declared: the app is out of step; do not reuse the connection.
    this.finish(at === buf.length)
  }

  private deliver(current: Current, chunk: Buffer, last: boolean) {
    if (chunk.length === 0 && !last) return
    // The client reads slower than the app writes: stop reading until it catches up.
    if (!current.handler.body(chunk, last) && !last) this.socket.pause()
  }

  // Parses a status line and headers; returns true for an interim (1xx) response to skip.
  private parseHead(head: string, current: Current): boolean {
    const lines = head.split("\r\n")
    const status = STATUS_LINE.exec(lines[0]!)
    if (status === null) throw new ProtocolError("bad status line")
    const code = Number(status[2])
    if (code >= 100 && code < 200) {
      if (code === 101) throw new ProtocolError("unexpected protocol switch")
      return true
    }
    const http10 = status[1] === "0"
    let keepAlive = !http10
    let length = -1
    let chunked = false
    let hasTransferEncoding = false
    let connectionTokens: Array<string> | null = null
    const headers: Array<string> = []
    for (let l = 1; l < lines.length; l++) {
      const line = lines[l]!
      const colon = line.indexOf(":")
      if (colon <= 0 || line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9)
        throw new ProtocolError("bad header line")
      const name = line.slice(0, colon)
      const value = line.slice(colon + 1).trim()
      const lower = name.toLowerCase()
      if (lower === "content-length") {
        if (!/^\d{1,15}$/.test(value)) throw new ProtocolError("bad content-length")
        const parsed = Number(value)
        if (length >= 0 && length !== parsed) throw new ProtocolError("conflicting content-length")
        length = parsed
      } else if (lower === "transfer-encoding") {
        hasTransferEncoding = true
        chunked = value.toLowerCase().split(",").pop()?.trim() === "chunked"
      } else if (lower === "connection") {
        const tokens = value
          .toLowerCase()
          .split(",")
          .map((t) => t.trim())
        if (tokens.includes("close")) keepAlive = false
        else if (tokens.includes("keep-alive")) keepAlive = true
        connectionTokens = connectionTokens === null ? tokens : connectionTokens.concat(tokens)
      }
      if (RESPONSE_HOP_BY_HOP.has(lower)) continue
      // With Transfer-Encoding the length is the chunks', and node frames the client's copy itself.
      if (lower === "content-length" && hasTransferEncoding) continue
      headers.push(name, value)
    }
    if (connectionTokens !== null) {
      const named = new Set(connectionTokens)
      for (let h = headers.length - 2; h >= 0; h -= 2)
        if (named.has(headers[h]!.toLowerCase())) headers.splice(h, 2)
    }
    if (hasTransferEncoding && length >= 0) {
      // RFC 9112 §6.1: Transfer-Encoding wins, and the connection must not be reused.
      keepAlive = false
      for (let h = headers.length - 2; h >= 0; h -= 2)
        if (headers[h]!.toLowerCase() === "content-length") headers.splice(h, 2)
    }
    this.keepAlive = keepAlive
    current.handler.head(code, status[3] ?? "", headers)
    if (current.method === "HEAD" || code === 204 || code === 304) {
      this.state = State.Idle
      current.handler.body(Buffer.alloc(0), true)
    } else if (hasTransferEncoding) {
      this.state = chunked ? State.ChunkSize : State.UntilClose
    } else if (length >= 0) {
      this.remaining = length
      if (length === 0) {
        this.state = State.Idle
        current.handler.body(Buffer.alloc(0), true)
      } else this.state = State.Length
    } else this.state = State.UntilClose
    if (this.state === State.UntilClose) this.keepAlive = false
    return false
  }
}

/** The keep-alive connections to one app address. */
export class UpstreamPool {
  private readonly idle: Array<Connection> = []
  private readonly all = new Set<Connection>()
  private closed = false
  private sweeper: ReturnType<typeof setInterval> | undefined

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly idleTimeoutMs: number,
    private readonly maxIdle: number
  ) {}

  /** Sends a request on a pooled connection (or a new one when `fresh` or none is idle). */
  request(request: UpstreamRequest, handler: ResponseHandler, fresh = false): Exchange {
    let conn = fresh ? undefined : this.idle.pop()
    if (conn === undefined) {
      conn = new Connection(this, this.host, this.port)
      this.all.add(conn)
    }
    conn.send(request, handler)
    return conn
  }

  /** Takes a connection back after a complete exchange. */
  release(conn: Connection) {
    if (this.closed || this.idle.length >= this.maxIdle) {
      conn.destroy()
      return
    }
    conn.idleSince = Date.now()
    this.idle.push(conn)
    this.sweepLater()
  }

  /** Drops a connection that closed or failed. */
  forget(conn: Connection) {
    this.all.delete(conn)
    const at = this.idle.indexOf(conn)
    if (at >= 0) this.idle.splice(at, 1)
  }

  /** Closes idle connections now and busy ones when their exchange ends. */
  close() {
    this.closed = true
    for (const conn of this.idle.splice(0)) conn.destroy()
    this.stopSweeping()
  }

  /** Cuts every connection, busy or not. */
  destroy() {
    this.close()
    for (const conn of [...this.all]) conn.destroy()
  }

  // One timer per pool, not one per socket: idle connections are closed before the app's own
  // keep-alive timeout would close them under us.
  private sweepLater() {
    if (this.sweeper !== undefined) return
    this.sweeper = setInterval(
      () => {
        const limit = Date.now() - this.idleTimeoutMs
        // The list is in release order, oldest first.
        while (this.idle.length > 0 && this.idle[0]!.idleSince <= limit) this.idle.shift()!.destroy()
        if (this.idle.length === 0) this.stopSweeping()
      },
      Math.max(100, Math.floor(this.idleTimeoutMs / 4))
    )
    this.sweeper.unref()
  }

  private stopSweeping() {
    if (this.sweeper !== undefined) clearInterval(this.sweeper)
    this.sweeper = undefined
  }
}
