/**
 * Requests to apps through the server's router, by Host header, as a browser would send them to
 * `http://<project-id>.user-app.localhost:<router port>`.
 */
import { request } from "node:http"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"

/** What the router answered. */
export interface AppReply {
  readonly status: number
  readonly body: string
}

/** One GET through the router; a network error is a status of 0. */
export const getApp = (routerPort: number, host: string, path = "/", timeoutMs = 10_000) =>
  Effect.async<AppReply>((resume) => {
    const req = request(
      { host: "127.0.0.1", port: routerPort, path, headers: { host }, timeout: timeoutMs, agent: false },
      (res) => {
        let body = ""
        res.setEncoding("utf8")
        res.on("data", (chunk: string) => {
          body += chunk
        })
        res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, body })))
        res.on("error", (e) => resume(Effect.succeed({ status: 0, body: String(e) })))
      }
    )
    req.on("timeout", () => req.destroy(new Error("timed out")))
    req.on("error", (e) => resume(Effect.succeed({ status: 0, body: String(e) })))
    req.end()
  })

/** Polls until `accept` holds for a reply (at most `attempts` × 100 ms); returns the last reply. */
export const waitForApp = (
  routerPort: number,
  host: string,
  accept: (reply: AppReply) => boolean,
  attempts = 150
) =>
  Effect.gen(function* () {
    let last: AppReply = { status: 0, body: "" }
    for (let i = 0; i < attempts; i++) {
      last = yield* getApp(routerPort, host)
      if (accept(last)) return last
      yield* Effect.sleep("100 millis")
    }
    return last
  })

/**
 * Runs `during` while `concurrency` clients keep requesting the app through the router (each
 * request waits for the previous one); counts what answered 200 and keeps what did not.
 */
export const loadDuring = <A, E, R>(
  routerPort: number,
  host: string,
  concurrency: number,
  during: Effect.Effect<A, E, R>
) =>
  Effect.gen(function* () {
    let ok = 0
    const failures: Array<string> = []
    let loading = true
    const client = Effect.gen(function* () {
      for (let i = 0; i < 100_000 && loading; i++) {
        const reply = yield* getApp(routerPort, host)
        if (reply.status === 200) ok++
        else failures.push(`${reply.status} ${reply.body.slice(0, 200)}`)
      }
    })
    const load = yield* Effect.fork(
      Effect.all(
        Array.from({ length: concurrency }, () => client),
        { concurrency }
      )
    )
    const result = yield* during.pipe(
      Effect.ensuring(
        Effect.suspend(() => {
          loading = false
          return Fiber.join(load)
        })
      )
    )
    return { result, ok, failures }
  })
