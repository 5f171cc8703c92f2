import { createServer, type IncomingMessage, request, type ServerResponse } from "node:http"
import { type AddressInfo, createServer as createTcpServer, type Socket } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import type { ProjectId } from "@paas/core/Project"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import WebSocket, { WebSocketServer } from "ws"
import * as ProxyRouter from "../src/ProxyRouter.js"
import { eventually, get, newAppId } from "./support.js"

/** An HTTP server on 127.0.0.1 standing in for an app; closed with the scope. */
const upstream = (handler: (req: IncomingMessage, res: ServerResponse) => void) =>
  Effect.acquireRelease(
    Effect.async<{ server: ReturnType<typeof createServer>; port: number; connections: () => number }>(
      (resume) => {
        let connections = 0
        const server = createServer(handler)
        server.on("connection", () => connections++)
        server.listen(0, "127.0.0.1", () =>
          resume(
            Effect.succeed({
              server,
              port: (server.address() as AddressInfo).port,
              connections: () => connections
            })
          )
        )
      }
    ),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

const named = (name: string) =>
  upstream((req, res) => {
    res.setHeader("content-type", "application/json")
    res.end(JSON.stringify({ name, url: req.url, headers: req.headers, raw: req.rawHeaders }))
  })

/** A TCP server answering each request head with `answer(path, nth request on the connection)`. */
const rawUpstream = (answer: (path: string, nth: number, socket: Socket) => void) =>
  Effect.acquireRelease(
    Effect.async<{ port: number; close: () => void }>((resume) => {
      const sockets = new Set<Socket>()
      const server = createTcpServer((socket) => {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
        socket.on("error", () => {})
        let buffered = ""
        let nth = 0
        socket.on("data", (chunk: Buffer) => {
          buffered += chunk.toString("latin1")
          let end = buffered.indexOf("\r\n\r\n")
          while (end >= 0) {
            const head = buffered.slice(0, end)
            buffered = buffered.slice(end + 4)
            answer(head.split(" ")[1] ?? "/", ++nth, socket)
            end = buffered.indexOf("\r\n\r\n")
          }
        })
      })
      server.listen(0, "127.0.0.1", () =>
        resume(
          Effect.succeed({
            port: (server.address() as AddressInfo).port,
            close: () => {
              for (const s of sockets) s.destroy()
              server.close()
            }
          })
        )
      )
    }),
    ({ close }) => Effect.sync(close)
  )

const router = ProxyRouter.make({ port: 0 })

const route = (appId: ProjectId, hosts: ReadonlyArray<string>, port: number) => ({
  appId,
  hosts,
  instanceId: `i-${port}`,
  target: { host: "127.0.0.1", port }
})

describe("ProxyRouter", () => {
  it.scopedLive("routes by Host, ignoring the port and case, to the app's custom hosts too", () =>
    Effect.gen(function* () {
      const r = yield* router
      const a = yield* named("a")
      const b = yield* named("b")
      const appA = newAppId()
      const appB = newAppId()
      yield* r.set(route(appA, [`${appA}.user-app.localhost`, "www.Example.com"], a.port))
      yield* r.set(route(appB, [`${appB}.user-app.localhost`], b.port))
      const nameAt = (host: string) =>
        Effect.map(get(r.port, "/x?y=1", { host }), (res) => JSON.parse(res.body))
      assert.strictEqual((yield* nameAt(`${appA}.user-app.localhost`)).name, "a")
      assert.strictEqual((yield* nameAt(`${appA}.user-app.localhost:8000`)).name, "a")
      assert.strictEqual((yield* nameAt(`${appA.toUpperCase()}.USER-APP.localhost.`)).name, "a")
      assert.strictEqual((yield* nameAt("www.example.com:8000")).name, "a")
      assert.strictEqual((yield* nameAt(`${appB}.user-app.localhost:${r.port}`)).name, "b")
      assert.strictEqual((yield* nameAt(`${appB}.user-app.localhost`)).url, "/x?y=1")
      assert.deepStrictEqual((yield* r.list(appA))[0]?.hosts, [
        `${appA}.user-app.localhost`,
        "www.example.com"
      ])
      assert.lengthOf(yield* r.list(), 2)
      assert.strictEqual((yield* r.lookup("WWW.example.com:80"))?.appId, appA)

      // A host already held by another app is refused, and nothing changes.
      const clash = yield* Effect.flip(r.set(route(appB, ["www.example.com"], b.port)))
      assert.include(clash.message, `host www.example.com is already routed to app ${appA}`)
      assert.strictEqual((yield* nameAt(`${appB}.user-app.localhost`)).name, "b")

      yield* r.remove(appA)
      yield* r.remove(appA)
      assert.strictEqual((yield* get(r.port, "/", { host: "www.example.com" })).status, 404)
    })
  )

  it.scopedLive("sets X-Forwarded-*, keeps Host, and drops hop-by-hop headers", () =>
    Effect.gen(function* () {
      const r = yield* router
      const a = yield* named("a")
      const app = newAppId()
      const host = `${app}.user-app.localhost`
      yield* r.set(route(app, [host], a.port))
      const res = yield* get(r.port, "/", {
        host: `${host}:8000`,
        headers: {
          "X-Forwarded-For": "203.0.113.7",
          "X-Forwarded-Proto": "https",
          Connection: "keep-alive, X-Private",
          "X-Private": "do not forward",
          "Keep-Alive": "timeout=5",
          "Proxy-Authorization": "Basic secret",
          "X-Custom": "kept"
        }
      })
      const seen = JSON.parse(res.body).headers as Record<string, string>
      assert.strictEqual(seen.host, `${host}:8000`)
      assert.strictEqual(seen["x-forwarded-for"], "203.0.113.7, 127.0.0.1")
      assert.strictEqual(seen["x-forwarded-proto"], "http")
      assert.strictEqual(seen["x-forwarded-host"], `${host}:8000`)
      assert.strictEqual(seen["x-custom"], "kept")
      assert.isUndefined(seen["x-private"])
      assert.isUndefined(seen["keep-alive"])
      assert.isUndefined(seen["proxy-authorization"])
      // And on the way back, the app's own connection headers do not reach the client.
      assert.strictEqual(res.headers["content-type"], "application/json")
    })
  )

  it.scopedLive("answers 404 with a page naming the host when no app is routed there", () =>
    Effect.gen(function* () {
      const r = yield* router
      const res = yield* get(r.port, "/", { host: "nobody.user-app.localhost:8000" })
      assert.strictEqual(res.status, 404)
      assert.match(String(res.headers["content-type"]), /^text\/html/)
      assert.include(res.body, "No app is deployed at <code>nobody.user-app.localhost:8000</code>")
      const evil = yield* get(r.port, "/", { host: "<script>x</script>" })
      assert.notInclude(evil.body, "<script>")
    })
  )

  it.scopedLive("answers 502 when the app does not answer, and recovers when it does", () =>
    Effect.gen(function* () {
      const r = yield* router
      const app = newAppId()
      const host = `${app}.user-app.localhost`
      const gone = yield* Effect.scoped(Effect.map(named("gone"), (u) => u.port))
      yield* r.set(route(app, [host], gone))
      const res = yield* get(r.port, "/", { host })
      assert.strictEqual(res.status, 502)
      assert.include(res.body, "is deployed, but it did not answer")
      const back = yield* named("back")
      yield* r.set(route(app, [host], back.port))
      assert.strictEqual(JSON.parse((yield* get(r.port, "/", { host })).body).name, "back")
    })
  )

  it.scopedLive("reuses pooled connections to the app and streams request bodies", () =>
    Effect.gen(function* () {
      const r = yield* router
      const echo = yield* upstream((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => res.end(`${req.method} ${Buffer.concat(chunks).length}`))
      })
      const app = newAppId()
      const host = `${app}.user-app.localhost`
      yield* r.set(route(app, [host], echo.port))
      for (let i = 0; i < 20; i++) assert.strictEqual((yield* get(r.port, "/", { host })).body, "GET 0")
      assert.strictEqual(echo.connections(), 1)
      // A chunked body and a sized one, each a megabyte.
      const upload = (headers: Record<string, string>) =>
        Effect.async<string, Error>((resume) => {
          const req = request(
            { host: "127.0.0.1", port: r.port, method: "POST", path: "/", headers: { host, ...headers } },
            (res) => {
              let body = ""
              res.on("data", (c) => (body += c))
              res.on("end", () => resume(Effect.succeed(body)))
            }
          )
          req.on("error", (e) => resume(Effect.fail(e)))
          for (let i = 0; i < 10; i++) req.write(Buffer.alloc(100_000, i))
          req.end()
        })
      assert.strictEqual(yield* upload({}), "POST 1000000")
      assert.strictEqual(yield* upload({ "content-length": "1000000" }), "POST 1000000")
      assert.strictEqual(echo.connections(), 1)
      const sized = yield* get(r.port, "/", {
        host,
        method: "PUT",
        headers: { "content-length": "0" }
      })
      assert.strictEqual(sized.body, "PUT 0")
    })
  )

  it.scopedLive("relays chunked, large, HEAD, 204 and 304 responses faithfully", () =>
    Effect.gen(function* () {
      const r = yield* router
      const big = Buffer.alloc(5 * 1024 * 1024, "x")
      const app = yield* upstream((req, res) => {
        switch (req.url) {
          case "/chunked":
            res.write("one,")
            setTimeout(() => {
              res.write("two,")
              res.end("three")
            }, 20)
            return
          case "/big":
            res.setHeader("content-length", big.length)
            res.end(req.method === "HEAD" ? undefined : big)
            return
          case "/204":
            res.writeHead(204).end()
            return
          case "/304":
            res.writeHead(304, { etag: '"v1"' }).end()
            return
        }
      })
      const appId = newAppId()
      const host = `${appId}.user-app.localhost`
      yield* r.set(route(appId, [host], app.port))
      const chunked = yield* get(r.port, "/chunked", { host })
      assert.strictEqual(chunked.body, "one,two,three")
      assert.strictEqual(chunked.headers["transfer-encoding"], "chunked")
      const whole = yield* get(r.port, "/big", { host })
      assert.strictEqual(whole.body.length, big.length)
      assert.isTrue(whole.body === big.toString())
      const head = yield* get(r.port, "/big", { host, method: "HEAD" })
      assert.strictEqual(head.headers["content-length"], String(big.length))
      assert.strictEqual(head.body, "")
      assert.strictEqual((yield* get(r.port, "/204", { host })).status, 204)
      const notModified = yield* get(r.port, "/304", { host })
      assert.strictEqual(notModified.status, 304)
      assert.strictEqual(notModified.headers.etag, '"v1"')
      // Everything above went over one pooled connection, and it still works.
      assert.strictEqual((yield* get(r.port, "/chunked", { host })).body, "one,two,three")
      assert.strictEqual(app.connections(), 1)
    })
  )

  it.scopedLive("copes with odd and broken answers from an app without ever crashing", () =>
    Effect.gen(function* () {
      const r = yield* router
      const app = yield* rawUpstream((path, nth, socket) => {
        switch (path) {
          case "/http10":
            socket.end("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the connection closes")
            return
          case "/garbage":
            socket.write("SMTP READY\r\n\r\n")
            return
          case "/cut":
            socket.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
            setTimeout(() => socket.destroy(), 20)
            return
          case "/hints":
            socket.write(
              "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            )
            return
          case "/trailers":
            socket.write(
              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
                "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n"
            )
            return
          case "/bad-header":
            socket.write("HTTP/1.1 200 OK\r\nX-Bad: a\u0001b\r\nContent-Length: 2\r\n\r\nok")
            return
          case "/stale":
            // Answers the first request of a connection, and drops the connection on the next one,
            // as an app does when its keep-alive timeout fires just as the proxy reuses it.
            if (nth === 1) socket.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
            else socket.destroy()
            return
        }
      })
      const appId = newAppId()
      const host = `${appId}.user-app.localhost`
      yield* r.set(route(appId, [host], app.port))
      assert.strictEqual((yield* get(r.port, "/http10", { host })).body, "until the connection closes")
      const garbage = yield* get(r.port, "/garbage", { host })
      assert.strictEqual(garbage.status, 502)
      const cut = yield* Effect.either(get(r.port, "/cut", { host }))
      // A body cut short must not look like a complete answer.
      assert.strictEqual(cut._tag, "Left")
      assert.strictEqual((yield* get(r.port, "/hints", { host })).body, "ok")
      const trailers = yield* get(r.port, "/trailers", { host })
      assert.strictEqual(trailers.body, "abcde")
      assert.strictEqual((yield* get(r.port, "/bad-header", { host })).status, 502)
      assert.strictEqual((yield* get(r.port, "/stale", { host })).body, "fresh")
      // The pooled connection is dropped under the second request: a GET is sent again, fresh.
      assert.strictEqual((yield* get(r.port, "/stale", { host })).body, "fresh")
      // A POST is not repeated behind the client's back: it may have had an effect.
      const post = yield* get(r.port, "/stale", { host, method: "POST", headers: { "content-length": "0" } })
      assert.strictEqual(post.status, 502)
    })
  )

  it.scopedLive("a client that goes away aborts the request to the app", () =>
    Effect.gen(function* () {
      const r = yield* router
      let closed = 0
      let received = 0
      const hold = yield* upstream((req) => {
        received++
        req.socket.on("close", () => closed++)
      })
      const app = newAppId()
      const host = `${app}.user-app.localhost`
      yield* r.set(route(app, [host], hold.port))
      const target = { host: "127.0.0.1", port: hold.port }
      const req = request({ host: "127.0.0.1", port: r.port, path: "/", headers: { host } })
      req.on("error", () => {})
      req.end()
      yield* eventually(
        Effect.sync(() => received === 1),
        "the app to get the request"
      )
      assert.strictEqual(yield* r.inFlight(target), 1)
      req.destroy()
      yield* eventually(
        Effect.sync(() => closed === 1),
        "the app's request to be aborted"
      )
      yield* eventually(
        Effect.map(r.inFlight(target), (n) => n === 0),
        "nothing in flight"
      )
    })
  )

  it.scopedLive("awaitIdle waits for in-flight requests, and times out when they take too long", () =>
    Effect.gen(function* () {
      const r = yield* router
      const slow = yield* upstream((_req, res) => setTimeout(() => res.end("done"), 600))
      const app = newAppId()
      const host = `${app}.user-app.localhost`
      const target = { host: "127.0.0.1", port: slow.port }
      yield* r.set(route(app, [host], slow.port))
      const pending = yield* Effect.fork(get(r.port, "/", { host }))
      yield* eventually(
        Effect.map(r.inFlight(target), (n) => n === 1),
        "a request in flight"
      )
      assert.isFalse(yield* r.awaitIdle(target, "50 millis"))
      yield* r.remove(app)
      assert.isTrue(yield* r.awaitIdle(target, "10 seconds"))
      assert.strictEqual((yield* pending).body, "done")
      assert.isTrue(yield* r.awaitIdle({ host: "127.0.0.1", port: 1 }, "1 second"))
    })
  )

  it.scopedLive("flips a route atomically: requests after `set` reach the new app, none fail", () =>
    Effect.gen(function* () {
      const r = yield* router
      const a = yield* upstream((_req, res) => setTimeout(() => res.end("a"), 5))
      const b = yield* upstream((_req, res) => res.end("b"))
      const app = newAppId()
      const host = `${app}.user-app.localhost`
      yield* r.set(route(app, [host], a.port))
      let flipped = false
      let stop = false
      const results: Array<{ readonly afterFlip: boolean; readonly body: string; readonly status: number }> =
        []
      const failures: Array<string> = []
      const worker = Effect.gen(function* () {
        // Bounded: stops at `stop` or after 2000 requests, whichever comes first.
        for (let i = 0; i < 2_000 && !stop; i++) {
          const afterFlip = flipped
          const res = yield* Effect.either(get(r.port, "/", { host }))
          if (res._tag === "Left") failures.push(res.left.message)
          else results.push({ afterFlip, body: res.right.body, status: res.right.status })
        }
      })
      const workers = yield* Effect.fork(
        Effect.all(
          Array.from({ length: 8 }, () => worker),
          { concurrency: 8 }
        )
      )
      yield* eventually(
        Effect.sync(() => results.length >= 100),
        "traffic on the old route"
      )
      yield* r.set(route(app, [host], b.port))
      flipped = true
      yield* eventually(
        Effect.sync(() => results.filter((x) => x.afterFlip).length >= 100),
        "traffic after the flip"
      )
      stop = true
      yield* workers
      assert.deepStrictEqual(failures, [])
      assert.isTrue(results.every((x) => x.status === 200))
      assert.isTrue(results.filter((x) => x.afterFlip).every((x) => x.body === "b"))
      assert.isTrue(results.some((x) => x.body === "a"))
    })
  )

  it.scopedLive("forwards WebSocket upgrades both ways", () =>
    Effect.gen(function* () {
      const r = yield* router
      const app = yield* upstream((_req, res) => res.end("plain"))
      const wss = new WebSocketServer({ server: app.server })
      wss.on("connection", (socket, req) => {
        socket.send(`hello ${req.headers["x-forwarded-host"]}`)
        socket.on("message", (data) => socket.send(`echo ${String(data)}`))
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => wss.close()))
      const appId = newAppId()
      const host = `${appId}.user-app.localhost`
      yield* r.set(route(appId, [host], app.port))
      const messages = yield* Effect.async<Array<string>, Error>((resume) => {
        const ws = new WebSocket(`ws://127.0.0.1:${r.port}/chat`, { headers: { host } })
        const got: Array<string> = []
        ws.on("message", (data) => {
          got.push(String(data))
          if (got.length === 1) ws.send("ping")
          if (got.length === 2) ws.close()
        })
        ws.on("close", () => resume(Effect.succeed(got)))
        ws.on("error", (e) => resume(Effect.fail(e)))
        return Effect.sync(() => ws.terminate())
      }).pipe(Effect.timeout("15 seconds"))
      assert.deepStrictEqual(messages, [`hello ${host}`, "echo ping"])

      // No route: the upgrade is refused with the 404 page.
      const refused = yield* Effect.exit(
        Effect.async<void, Error>((resume) => {
          const ws = new WebSocket(`ws://127.0.0.1:${r.port}/`, { headers: { host: "nobody.localhost" } })
          ws.on("open", () => resume(Effect.void))
          ws.on("error", (e) => resume(Effect.fail(e)))
          return Effect.sync(() => ws.terminate())
        }).pipe(Effect.timeout("15 seconds"))
      )
      assert.isTrue(Exit.isFailure(refused))
      assert.include(String(Exit.isFailure(refused) ? refused.cause : ""), "404")
    })
  )

  it.scopedLive("closing its scope stops the listener and cuts open connections", () =>
    Effect.gen(function* () {
      const a = yield* named("a")
      const app = newAppId()
      const host = `${app}.user-app.localhost`
      const port = yield* Effect.scoped(
        Effect.gen(function* () {
          const r = yield* router
          yield* r.set(route(app, [host], a.port))
          assert.strictEqual((yield* get(r.port, "/", { host })).status, 200)
          return r.port
        })
      )
      const after = yield* Effect.either(get(port, "/", { host }))
      assert.strictEqual(after._tag, "Left")
    })
  )

  it.scopedLive("refuses to start on a port already taken, with a clear error", () =>
    Effect.gen(function* () {
      const r = yield* router
      const error = yield* Effect.flip(ProxyRouter.make({ port: r.port }))
      assert.strictEqual(error._tag, "RouterError")
      assert.include(error.message, `the router cannot listen on 127.0.0.1:${r.port}: EADDRINUSE`)
    })
  )
})
