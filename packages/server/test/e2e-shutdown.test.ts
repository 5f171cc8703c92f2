/**
 * A clean stop under way: SIGTERM while a request is in flight (a deploy waiting for a slow app's
 * health check) lets that request finish with its answer, then the server exits 0.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { api, serverWithProject } from "./support/server.js"

// An app that takes 3 s before it listens, so a deploy stays in flight that long.
const slowApp = {
  "package.json": JSON.stringify({ name: "slow", version: "1.0.0", scripts: { start: "node server.js" } }),
  "server.js": `setTimeout(() => {
  require("node:http").createServer((_, res) => res.end("up")).listen(Number(process.env.PORT), "127.0.0.1")
}, 3000)
`
}

describe("paas-server end to end: shutdown", () => {
  it.scopedLive(
    "SIGTERM lets an in-flight request finish, then exits 0",
    () =>
      Effect.gen(function* () {
        const { server, token, user, id } = yield* serverWithProject({ username: "patient" })
        yield* user.commit(slowApp, "slow")
        assert.strictEqual((yield* user.push(id)).code, 0)

        const deploy = yield* Effect.fork(
          api(server, "PATCH", `/projects/${id}/deploy`, { token, body: { env_vars: { ROUND: "2" } } })
        )
        yield* Effect.sleep("1 second")
        const stopped = yield* Effect.fork(server.stop("SIGTERM"))
        const answer = yield* Fiber.join(deploy)
        assert.strictEqual(answer.status, 200, JSON.stringify(answer.body))
        assert.strictEqual(answer.body.content.release, 2)
        assert.strictEqual(yield* Fiber.join(stopped), 0)
      }),
    120_000
  )
})
