/**
 * Requests to apps through the server's router, by Host header, as a browser would send them to
 * `http://<project-id>.user-app.localhost:<router port>`.
 */
import { request } from "node:http"
import * as Effect from "effect/Effect"

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
